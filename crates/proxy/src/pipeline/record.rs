//! Stage: recording the exchanges of apps with `[apps.recording]`.
//!
//! Finds (or starts) the session's recording and records the request
//! head with the policy's headers redacted; the bodies and the response
//! are recorded by the taps of the [`Exchange`] it returns
//! (`crate::tap`). A client faster than the recorder waits for it here.
//!
//! The session is the signed-in session, or for `auth = "none"` apps a
//! visit cookie moat sets (`__Host-moat_visit`).

use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use moat_config::StorageFailure;
use moat_recording::{Event, Metadata, Policy};

use crate::error::Rejection;
use crate::recorder::{Recorder, StorageState};
use crate::request::RequestCtx;
use crate::runtime::{AppRuntime, Runtime};
use crate::tap::{Exchange, redacted};

pub const VISIT_COOKIE: &str = "__Host-moat_visit";
pub const VISIT_COOKIE_PLAIN: &str = "moat_visit";

/// The recorder's name for a signed-in session's recordings (a visit's
/// are `visit:...`): what a sign-out ends.
pub fn signed_in(session_key: &str) -> String {
    format!("session:{session_key}")
}

/// Backpressure before a recorded request: while the recorder's queue is
/// over half full, the request waits for it to drain (up to 10 s), so a
/// client that outpaces the recorder is slowed to its pace.
pub async fn wait_for_room(app: &AppRuntime, queue: &crate::recorder::Queue) {
    if app.recording.is_some() {
        let _ = queue.room(std::time::Duration::from_secs(10)).await;
    }
}

/// Starts recording a request, or refuses it when it cannot be recorded
/// and the app says no recording, no session. The one stage with an
/// output besides its [`RequestCtx`] notes: the exchange the app's answer
/// is recorded through.
pub fn begin<B>(
    req: &mut Request<B>,
    ctx: &mut RequestCtx,
    app: &AppRuntime,
    runtime: &Runtime,
    recorder: &Recorder,
) -> Result<Option<Exchange>, Rejection> {
    let Some(policy) = &app.recording else {
        strip_visit_cookie(req);
        return Ok(None);
    };
    let session = match &ctx.session {
        Some(s) => signed_in(s),
        None => format!("visit:{}", visit(req.headers(), ctx)),
    };
    strip_visit_cookie(req);
    // The state the once-a-second check saw (no system call per
    // request).
    let state = recorder
        .storage
        .for_request(runtime.config.recording.minimum_available_capacity);
    if state != StorageState::Available {
        tracing::warn!(
            app = app.name,
            state = state.as_str(),
            "a recorded session cannot be recorded"
        );
        return match policy.on_storage_failure {
            StorageFailure::Refuse => Err(Rejection::client(
                StatusCode::SERVICE_UNAVAILABLE,
                "This app is recorded, and recording storage is not available now.",
            )),
            StorageFailure::AllowUnrecorded => Ok(None),
        };
    }
    // A policy the app may not have is reported when the config loads; an
    // API app's is checked here, and falls back to the global one.
    let retention = runtime.config.retention_for(policy).unwrap_or_else(|e| {
        tracing::warn!(
            app = app.name,
            "recording policy: {e}; the global policy applies"
        );
        runtime.config.recording.policy
    });
    let caps = (
        runtime.config.recording.max_open,
        runtime.config.recording.max_open_per_client,
    );
    let client = ctx.client.ip.to_string();
    let started_at_ms = recorder.clock().now_ms();
    let rec = recorder.session(
        &app.name,
        &session,
        &client,
        caps,
        policy.bucket.clone(),
        |id| Metadata {
            format: 1,
            id,
            app: app.name.clone(),
            user: ctx.user.clone(),
            client_ip: ctx.client.ip.to_string(),
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            started_at_ms,
            moat_version: env!("CARGO_PKG_VERSION").into(),
            policy: Policy {
                body_limit: policy.body_limit,
                redact_headers: policy.redactor.headers().to_vec(),
                redact_json_fields: policy.redactor.fields().to_vec(),
                retain_for_days: retention.map(|r| r.retain_for_days),
                delete_after_days: retention.map(|r| r.delete_after_days),
            },
        },
    );
    let rec = match rec {
        Ok(rec) => rec,
        Err(why) => {
            crate::log_limit::warn_every(
                "recording-cap",
                &app.name,
                std::time::Duration::from_secs(5),
                |suppressed| tracing::warn!(app = app.name, client = %ctx.client.ip, suppressed, "a recorded session cannot be recorded: {why}"),
            );
            return match policy.on_storage_failure {
                StorageFailure::Refuse => Err(Rejection::client(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "This app is recorded, and no new recording can start now.",
                )),
                StorageFailure::AllowUnrecorded => Ok(None),
            };
        }
    };
    rec.saw_conn(ctx.conn_id, &ctx.client.ip.to_string(), ctx.tls);
    let n = rec.next_req();
    rec.record(Event::RequestHead {
        conn: ctx.conn_id,
        req: n,
        method: req.method().to_string(),
        // Credentials in the query are never kept (the access log leaves
        // queries out altogether).
        uri: policy.redactor.uri(&req.uri().to_string()),
        version: format!("{:?}", req.version()),
        headers: redacted(req.headers(), policy),
    });
    Ok(Some(Exchange::new(rec, ctx.conn_id, n, policy.clone())))
}

/// The visit cookie is moat's: no app sees it.
fn strip_visit_cookie<B>(req: &mut Request<B>) {
    crate::auth::strip_cookies(req.headers_mut(), &[VISIT_COOKIE, VISIT_COOKIE_PLAIN]);
}

/// The visit cookie's id, or a new one (set on the response).
fn visit(headers: &HeaderMap, ctx: &mut RequestCtx) -> String {
    let name = if ctx.tls {
        VISIT_COOKIE
    } else {
        VISIT_COOKIE_PLAIN
    };
    if let Some(v) = moat_policy::login::cookie(headers, name) {
        if v.len() == 24 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
            return v.to_owned();
        }
    }
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).expect("the operating system's random generator works");
    let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let secure = if ctx.tls { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{name}={id}; Path=/; HttpOnly; SameSite=Lax{secure}"
    )) {
        ctx.set_cookies.push(v);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing;
    use std::sync::Arc;

    fn recorder(dir: &std::path::Path) -> Recorder {
        let store = tokio::runtime::Handle::current()
            .block_on(moat_store::Store::open(&dir.join("moat.db")))
            .unwrap();
        Recorder::start(
            Arc::new(crate::clock::FixedClock::at_ms(1_700_000_000_000)),
            dir.join("recordings"),
            moat_recording::Kek::from_bytes([7; 32]),
            store,
            tokio::runtime::Handle::current(),
        )
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unrecorded_apps_pass_and_lose_the_visit_cookie() {
        let dir = tempfile::tempdir().unwrap();
        let rec = tokio::task::block_in_place(|| recorder(dir.path()));
        let rt = testing::one_app("", "auth = \"none\"");
        let app = testing::app(&rt, "app");
        let mut req = Request::get("/")
            .header(header::COOKIE, format!("{VISIT_COOKIE}=abc; keep=1"))
            .body(())
            .unwrap();
        let mut ctx = testing::ctx(&req, "127.0.0.1", true, Some(app.clone()));
        assert!(
            begin(&mut req, &mut ctx, &app, &rt, &rec)
                .unwrap()
                .is_none()
        );
        assert_eq!(req.headers()[header::COOKIE], "keep=1");
        tokio::task::block_in_place(|| rec.stop());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recorded_request_starts_a_dated_recording_with_its_head_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let rec = tokio::task::block_in_place(|| recorder(dir.path()));
        let rt = testing::one_app("", "auth = \"none\"\n[apps.recording]\nenabled = true");
        let app = testing::app(&rt, "app");
        let mut req = Request::get("/x?token=s3cret")
            .header(header::AUTHORIZATION, "Bearer s3cret")
            .body(())
            .unwrap();
        let mut ctx = testing::ctx(&req, "127.0.0.1", true, Some(app.clone()));
        let ex = begin(&mut req, &mut ctx, &app, &rt, &rec).unwrap();
        assert!(ex.is_some(), "recorded");
        assert_eq!(ctx.set_cookies.len(), 1, "a visit cookie names the session");
        assert_eq!(rec.open_count(), 1);
        drop(ex);
        tokio::task::block_in_place(|| rec.stop());
        let folder = std::fs::read_dir(dir.path().join("recordings"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with('r'))
            .expect("a recording folder");
        let meta = moat_recording::verify::metadata(&folder.path()).unwrap();
        assert_eq!(
            meta.started_at_ms, 1_700_000_000_000,
            "dated by the recorder's clock"
        );
        let events = moat_recording::verify::events(
            &folder.path(),
            &moat_recording::Kek::from_bytes([7; 32]),
        )
        .unwrap();
        let text = serde_json::to_string(&events).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
    }
}
