//! `/api/v1/recordings`: the index, one recording, its verification,
//! events and HAR export, deletion outside retention, and reapplying
//! today's storage policies.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use moat_admin::api::{
    EventsFilter, ReapplyRequest, ReapplyResult, RecordingFilter, RecordingSummary, VerifyResult,
};
use moat_recording::{Event, Recorded};
use moat_store::{RecordingQuery, RecordingRow, RecordingState};

use crate::Ctl;
use crate::actor::Who;
use crate::error::ApiFailure;

pub async fn list(
    State(control): State<Ctl>,
    Query(p): Query<RecordingFilter>,
) -> Result<Json<Vec<RecordingSummary>>, ApiFailure> {
    let state = match p.state.as_deref() {
        None => None,
        Some(s) => Some(RecordingState::parse(s).ok_or_else(|| {
            ApiFailure::bad_request(format!(
                "state {s:?} is not one of {}",
                RecordingState::ALL.map(RecordingState::as_str).join(", ")
            ))
        })?),
    };
    let q = RecordingQuery {
        app: p.app,
        user: p.user,
        client_ip: p.client_ip,
        state,
        since_ms: p.since,
        until_ms: p.until,
        limit: Some(p.limit.unwrap_or(100).min(10_000)),
    };
    let rows = control.store().recordings(&q).await?;
    Ok(Json(rows.into_iter().map(summary).collect()))
}

pub async fn show(
    State(control): State<Ctl>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<RecordingSummary>, ApiFailure> {
    Ok(Json(summary(control.recording(&id).await?)))
}

pub async fn verify(
    State(control): State<Ctl>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<VerifyResult>, ApiFailure> {
    Ok(Json(match control.verify_recording(&id).await? {
        Ok(report) => VerifyResult {
            id,
            ok: true,
            file: None,
            error: None,
            state: Some(format!("{:?}", report.state).to_lowercase()),
            chunks: Some(report.chunks),
            events: Some(report.events),
        },
        Err(e) => VerifyResult {
            id,
            ok: false,
            file: Some(e.file.clone()),
            error: Some(e.to_string()),
            state: None,
            chunks: None,
            events: None,
        },
    }))
}

/// The events in order, each with its time in microseconds since the
/// recording started: what a player replays. The answer is NDJSON
/// (`{"session": ...}`, then one event per line), read from storage and
/// sent chunk by chunk, so neither moat nor the client holds a long
/// recording whole.
pub async fn events(
    State(control): State<Ctl>,
    UrlPath(id): UrlPath<String>,
    Query(filter): Query<EventsFilter>,
) -> Result<Response, ApiFailure> {
    let (meta, chunks) = control.stream_recording(&id).await?;
    let head = line(&serde_json::json!({ "session": meta }));
    let lines = futures_util::stream::unfold(Some(chunks), move |chunks| async move {
        let mut chunks = chunks?;
        let chunk = chunks.recv().await?;
        Some(match chunk {
            Ok(events) => {
                let mut out = Vec::new();
                for mut e in events.into_iter().filter(|e| filter.wanted(e)) {
                    if filter.bodies == Some(false) {
                        without_body(&mut e.event);
                    }
                    out.extend_from_slice(&line(&e));
                }
                (Ok::<_, std::io::Error>(Bytes::from(out)), Some(chunks))
            }
            // The status line has gone: the error ends the stream, which
            // the client sees as a body that stops without its last line.
            Err(e) => (Err(std::io::Error::other(e.to_string())), None),
        })
    });
    let body = futures_util::stream::once(async move { Ok(Bytes::from(head)) }).chain(lines);
    Ok((
        [(http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

trait Wanted {
    fn wanted(&self, e: &Recorded) -> bool;
}

impl Wanted for EventsFilter {
    fn wanted(&self, e: &Recorded) -> bool {
        let Some(want) = self.req else {
            return true;
        };
        match &e.event {
            Event::ConnOpen { .. } | Event::ConnClose { .. } => false,
            Event::RequestHead { req, .. }
            | Event::RequestBody { req, .. }
            | Event::ResponseHead { req, .. }
            | Event::ResponseBody { req, .. }
            | Event::ExchangeEnd { req, .. }
            | Event::WsMessage { req, .. }
            | Event::Error { req, .. } => *req == want,
        }
    }
}

fn without_body(e: &mut Event) {
    match e {
        Event::RequestBody { data, .. }
        | Event::ResponseBody { data, .. }
        | Event::WsMessage { data, .. } => data.clear(),
        _ => {}
    }
}

fn line(v: &impl serde::Serialize) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).expect("events serialize");
    out.push(b'\n');
    out
}

pub async fn har(
    State(control): State<Ctl>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiFailure> {
    let (meta, events) = control.read_recording(&id).await?;
    Ok(Json(moat_recording::har::to_har(&meta, &events)))
}

/// Deletes a closed recording outside its retention period.
pub async fn delete(
    State(control): State<Ctl>,
    Who(actor): Who,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, ApiFailure> {
    control.delete_recording(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Recomputes retention dates from today's policies; without `confirm`
/// only says what would change.
pub async fn reapply_policy(
    State(control): State<Ctl>,
    Who(actor): Who,
    Json(body): Json<ReapplyRequest>,
) -> Result<Json<ReapplyResult>, ApiFailure> {
    let r = control
        .reapply_policy(&actor, body.app, body.confirm)
        .await?;
    Ok(Json(ReapplyResult {
        recordings: r.recordings,
        changed: r.changed,
        would_delete_now: r.would_delete_now,
        applied: r.applied,
    }))
}

pub fn summary(r: RecordingRow) -> RecordingSummary {
    let t = |ms: i64| {
        moat_proxy::access_log::rfc3339(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64),
        )
    };
    RecordingSummary {
        id: r.id,
        app: r.app,
        user: r.user,
        client_ip: r.client_ip,
        user_agent: r.user_agent,
        started_at: t(r.started_at_ms),
        ended_at: r.ended_at_ms.map(t),
        state: r.state.as_str().to_owned(),
        closed_because: r.closed_because,
        events: r.events,
        bytes: r.bytes,
        location: r.location.to_db(),
        retain_until: r.retain_until_ms.map(t),
        delete_after: r.delete_after_ms.map(t),
    }
}
