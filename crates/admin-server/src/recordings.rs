//! `/api/v1/recordings`: the index, one recording, its verification,
//! events and HAR export, deletion outside retention, and reapplying
//! today's storage policies.

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use moat_admin::api::{
    ReapplyRequest, ReapplyResult, RecordingFilter, RecordingSummary, VerifyResult,
};
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
    let (row, _) = control.locate_recording(&id).await?;
    Ok(Json(summary(row)))
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
/// recording started: what a player replays.
pub async fn events(
    State(control): State<Ctl>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiFailure> {
    let (meta, events) = control.read_recording(&id).await?;
    Ok(Json(serde_json::json!({"session": meta, "events": events})))
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
