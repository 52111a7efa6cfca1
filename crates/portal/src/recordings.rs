//! Recordings: the list with filters, and one recording's page (what it
//! holds, its verify badge, the player, its HAR export, deletion where
//! the retention policy allows it, with the reason where it does not).
//! The player itself is `assets/player.js`, fed by the events stream
//! passed on from the admin API.

use http::{HeaderValue, Method, Response, StatusCode, header};
use maud::html;
use moat_admin::api::{
    ApiError, EventsFilter, RecordingFilter, RecordingSummary, VerifyResult, paths,
};
use moat_proxy::admin_api::Viewer;
use moat_proxy::body::Body;

use crate::api::{Api, seg};
use crate::forms::{date_ms, query_param};
use crate::layout::{Notice, Page, button_form, failure, row, see_other};
use crate::overview::size;

pub async fn list(api: &Api, viewer: &Viewer, query: &str) -> Response<Body> {
    let text = |k: &str| query_param(query, k);
    let (since, until) = crate::forms::date_range(query);
    let filter = RecordingFilter {
        app: text("app"),
        user: text("user"),
        client_ip: text("client_ip"),
        state: text("state"),
        since,
        until,
        limit: Some(500),
    };
    let recordings: Vec<RecordingSummary> =
        match api.get(&viewer.actor, &paths::recordings(&filter)).await {
            Ok(r) => r,
            Err(e) => return failure(viewer, "/recordings", &e),
        };
    let field = |id: &str, name: &str, label: &str, kind: &str, hint: &str| {
        crate::layout::filter_field(query, id, name, label, kind, hint)
    };
    let state = text("state").unwrap_or_default();
    let content = html! {
        form.filters method="get" action={ (viewer.base) "/recordings" } aria-label="Filter the recordings" {
            (field("r-app", "app", "App", "text", "an app's name"))
            (field("r-user", "user", "User", "text", ""))
            (field("r-client", "client_ip", "Client address", "text", "203.0.113.7"))
            div.field {
                label for="r-state" { "State" }
                select #r-state name="state" {
                    @for (value, label) in [("", "any"), ("recording", "recording"), ("complete", "complete"), ("incomplete", "incomplete")] {
                        @if value == state { option value=(value) selected { (label) } } @else { option value=(value) { (label) } }
                    }
                }
            }
            (field("r-since", "since", "From", "date", ""))
            (field("r-until", "until", "To", "date", ""))
            button type="submit" { "Filter" }
        }
        @if recordings.is_empty() {
            p { "No recordings match." }
        } @else {
            div.scroll {
                table.recordings {
                    thead { tr {
                        th scope="col" { "Started" } th scope="col" { "Duration" } th scope="col" { "User" }
                        th scope="col" { "App" } th scope="col" { "Client" } th scope="col" { "Events" }
                        th scope="col" { "Size" } th scope="col" { "State" } th scope="col" { "Kept until" }
                        th scope="col" { "Deleted after" } th scope="col" { "Location" }
                    } }
                    tbody {
                        @for r in &recordings {
                            tr {
                                td { a href={ (viewer.base) "/recordings/" (seg(&r.id)) } { (r.started_at) } }
                                td { (duration(r)) }
                                td { (r.user.as_deref().unwrap_or("—")) }
                                td { (r.app) }
                                td { (r.client_ip) }
                                td { (r.events) }
                                td { (size(r.bytes.max(0) as u64)) }
                                td { (r.state) }
                                td { (kept_until(r)) }
                                td { (r.delete_after.as_deref().unwrap_or("never")) }
                                td { (r.location) }
                            }
                        }
                    }
                }
            }
        }
    };
    Page {
        viewer,
        title: "Recordings",
        section: "/recordings",
        status: StatusCode::OK,
    }
    .render(None, content)
}

/// Until when nobody may delete the recording: `forever` (the API's
/// null), `not kept` where no policy retains it (the API's epoch), or the
/// date.
fn kept_until(r: &RecordingSummary) -> &str {
    match r.retain_until.as_deref() {
        None => "forever",
        Some(t) if t.starts_with("1970-01-01T00:00:00") => "no retention",
        Some(t) => t,
    }
}

/// From start to end, `in progress` while open.
fn duration(r: &RecordingSummary) -> String {
    let ms = |t: &str| -> Option<i64> {
        // RFC 3339 as the API writes it: 2026-12-06T03:16:26.714Z.
        let (date, time) = t.split_once('T')?;
        let day = date_ms(date)?;
        let time = time.trim_end_matches('Z');
        let mut parts = time.split(':');
        let (h, m, s) = (
            parts.next()?.parse::<i64>().ok()?,
            parts.next()?.parse::<i64>().ok()?,
            parts.next()?.parse::<f64>().ok()?,
        );
        Some(day + (h * 3600 + m * 60) * 1000 + (s * 1000.0) as i64)
    };
    match r.ended_at.as_deref() {
        None => "in progress".into(),
        Some(end) => match (ms(&r.started_at), ms(end)) {
            (Some(a), Some(b)) => {
                let s = (b - a).max(0) / 1000;
                if s < 60 {
                    format!("{s} s")
                } else if s < 3600 {
                    format!("{} min {} s", s / 60, s % 60)
                } else {
                    format!("{} h {} min", s / 3600, s / 60 % 60)
                }
            }
            _ => "—".into(),
        },
    }
}

/// The badge `verify` earns: `valid` (every chunk and the signature
/// check out, closed normally), `incomplete` (checks out, but moat stopped
/// before closing it), `altered` (a file does not match what was signed).
fn badge(v: &Result<VerifyResult, ApiError>) -> (&'static str, String) {
    match v {
        Ok(r) if r.ok && r.state.as_deref() == Some("complete") => {
            ("valid", "Every chunk and the signature check out.".into())
        }
        Ok(r) if r.ok => (
            "incomplete",
            "What was kept checks out, but moat stopped before closing the recording.".into(),
        ),
        Ok(r) => (
            "altered",
            r.error
                .clone()
                .unwrap_or_else(|| "a file does not match what was signed".into()),
        ),
        Err(e) => ("unknown", e.error.clone()),
    }
}

pub async fn detail(api: &Api, viewer: &Viewer, id: &str, query: &str) -> Response<Body> {
    let actor = &viewer.actor;
    let r: RecordingSummary = match api.get(actor, &paths::recording(id)).await {
        Ok(r) => r,
        Err(e) => return failure(viewer, "/recordings", &e),
    };
    let closed = r.state != "recording";
    let verified = if closed {
        Some(
            api.send::<_, VerifyResult>(
                actor,
                Method::POST,
                &paths::recording_verify(id),
                &serde_json::Value::Null,
            )
            .await,
        )
    } else {
        None
    };
    let failed = query_param(query, "failed");
    let content = html! {
        section aria-labelledby="summary-h" {
            h2 #summary-h { "Session" }
            dl {
                (row("App", html! { (r.app) }))
                (row("User", html! { (r.user.as_deref().unwrap_or("—")) }))
                (row("Client", html! { (r.client_ip) }))
                (row("Browser", html! { (r.user_agent.as_deref().unwrap_or("—")) }))
                (row("Started", html! { (r.started_at) }))
                (row("Ended", html! { (r.ended_at.as_deref().unwrap_or("in progress")) @if let Some(w) = &r.closed_because { " (" (w) ")" } }))
                (row("Duration", html! { (duration(&r)) }))
                (row("Events", html! { (r.events) }))
                (row("Size", html! { (size(r.bytes.max(0) as u64)) }))
                (row("Location", html! { (r.location) }))
                (row("Kept until", html! { (kept_until(&r)) }))
                (row("Deleted after", html! { (r.delete_after.as_deref().unwrap_or("never")) }))
                @if let Some(v) = &verified {
                    @let (word, why) = badge(v);
                    (row("Integrity", html! { span class={ "badge " (word) } #verify-badge { (word) } " " span.hint { (why) } }))
                }
            }
        }
        @if closed {
            section #player aria-labelledby="player-h"
                data-events={ (viewer.base) "/recordings/" (seg(id)) "/events" }
                data-view={ (viewer.base) "/recordings/" (seg(id)) "/view/" } {
                h2 #player-h { "Playback" }
                p.hint #player-fallback { "The player needs JavaScript. The HAR download below holds the same exchanges." }
            }
            script src={ (viewer.base) "/assets/player.js" } nonce=(viewer.nonce) defer {}
            section aria-labelledby="export-h" {
                h2 #export-h { "Export and delete" }
                p { a.button #har-download href={ (viewer.base) "/recordings/" (seg(id)) "/har" } download={ "moat-" (id) ".har" } { "Download HAR" } }
                (button_form(viewer, &format!("/recordings/{}/delete", seg(id)), &[], "Delete this recording", "danger", Some("Delete this recording for good? The audit log keeps that you did.")))
            }
        }
    };
    Page {
        viewer,
        title: "Recording",
        section: "/recordings",
        status: StatusCode::OK,
    }
    .render(failed.as_deref().map(Notice::Failed), content)
}

/// The recording's events as the admin API streams them (NDJSON), for the
/// player: `req` narrows them to one exchange, `bodies=false` leaves the
/// bodies out.
pub async fn events(api: &Api, viewer: &Viewer, id: &str, query: &str) -> Response<Body> {
    let filter = EventsFilter {
        req: query_param(query, "req").and_then(|r| r.parse().ok()),
        bodies: query_param(query, "bodies").map(|b| b != "false"),
    };
    match api
        .stream(&viewer.actor, &paths::recording_events(id, &filter))
        .await
    {
        Ok(mut resp) => {
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            let mut resp = Response::new(moat_proxy::body::full(
                serde_json::to_vec(&e).unwrap_or_default(),
            ));
            *resp.status_mut() = crate::api::status_of(&e);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
    }
}

/// The recording as HAR 1.2, as a download.
pub async fn har(api: &Api, viewer: &Viewer, id: &str) -> Response<Body> {
    match api
        .get::<serde_json::Value>(&viewer.actor, &paths::recording_har(id))
        .await
    {
        Ok(har) => {
            let mut resp = Response::new(moat_proxy::body::full(har.to_string()));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let name = format!(
                "attachment; filename=\"moat-{}.har\"",
                id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
            );
            if let Ok(v) = HeaderValue::from_str(&name) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            resp
        }
        Err(e) => failure(viewer, "/recordings", &e),
    }
}

pub async fn delete(api: &Api, viewer: &Viewer, id: &str) -> Response<Body> {
    match api.delete(&viewer.actor, &paths::recording(id)).await {
        Ok(_) => see_other(viewer, "/recordings"),
        Err(e) => see_other(
            viewer,
            &format!("/recordings/{}?failed={}", seg(id), seg(&e.error)),
        ),
    }
}
