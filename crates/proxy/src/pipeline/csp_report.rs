//! moat's CSP violation report endpoint, `/_moat/csp-report/APP`: the
//! `report-uri` and Reporting API endpoint of every app's policy.
//!
//! SECURITY: anyone can post here (browsers send reports without
//! credentials), so input is bounded: bodies up to 64 KiB arriving within
//! 10 s, a fixed number of report bodies per client address and per app per
//! minute (429 past it), and distinct violations per app capped in the
//! store, where a violation seen once gives way to a new one. Reports for
//! an unknown app get the same answer as any other and are dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use moat_policy::csp_report::{self, ReportError};
use moat_store::Store;

use crate::body::{self, BoxError};
use crate::error::Rejection;
use crate::namespace::CSP_REPORT_PREFIX as PREFIX;
use crate::pipeline::{Flow, Step};
use crate::request::RequestCtx;
use crate::runtime::Runtime;

/// Report bodies accepted per app per minute.
const PER_MINUTE: u32 = 120;

/// The endpoint's state: its limits, and where reports are kept.
pub struct Reports {
    pub limiter: ReportLimiter,
    pub store: Store,
}

/// Report bodies accepted per client address per minute, so one client
/// cannot spend an app's whole budget.
const PER_CLIENT_PER_MINUTE: u32 = 20;

/// Client addresses tracked at most; past it, windows that have ended go.
const MAX_CLIENTS: usize = 10_000;

/// The longest a report body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Fixed one-minute windows of accepted report bodies, per app and per
/// client address.
#[derive(Default)]
pub struct ReportLimiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
    clients: Mutex<HashMap<std::net::IpAddr, (Instant, u32)>>,
}

fn take(entry: &mut (Instant, u32), now: Instant, per_minute: u32) -> bool {
    if now.duration_since(entry.0) >= Duration::from_secs(60) {
        *entry = (now, 0);
    }
    entry.1 += 1;
    entry.1 <= per_minute
}

impl ReportLimiter {
    fn allow(&self, app: &str, client: std::net::IpAddr, now: Instant) -> bool {
        {
            let mut c = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            if c.len() >= MAX_CLIENTS && !c.contains_key(&client) {
                c.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
                if c.len() >= MAX_CLIENTS {
                    // Every tracked client is in an open window: refuse
                    // newcomers rather than forget a counted one.
                    return false;
                }
            }
            if !take(
                c.entry(client).or_insert((now, 0)),
                now,
                PER_CLIENT_PER_MINUTE,
            ) {
                return false;
            }
        }
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        take(w.entry(app.to_owned()).or_insert((now, 0)), now, PER_MINUTE)
    }
}

pub async fn handle<B>(
    req: Request<B>,
    ctx: &RequestCtx,
    runtime: &Runtime,
    reports: &Reports,
) -> Step
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<BoxError>,
{
    if req.method() != http::Method::POST {
        return Err(Rejection::client(
            StatusCode::METHOD_NOT_ALLOWED,
            "Reports are sent with POST.",
        ));
    }
    let app = req.uri().path()[PREFIX.len()..].to_owned();
    // SECURITY: an unknown app gets the same answer as a known one, so the
    // endpoint does not tell anyone which app names exist.
    let known = runtime.apps.iter().any(|a| a.name == app);
    // Unknown names share one window, so inventing names grows nothing.
    let window = if known { app.as_str() } else { "" };
    if !reports.limiter.allow(window, ctx.client.ip, Instant::now()) {
        return Err(Rejection::client(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many reports; some were dropped.",
        ));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // SECURITY: a stalled body is not held: reports are small.
    let body = match tokio::time::timeout(
        BODY_TIMEOUT,
        Limited::new(req.into_body(), csp_report::MAX_BODY).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            return Err(Rejection::client(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The report is too large.",
            ));
        }
        Err(_) => {
            return Err(Rejection::client(
                StatusCode::REQUEST_TIMEOUT,
                "The report did not arrive in time.",
            ));
        }
    };
    let violations = match csp_report::parse(&content_type, &body) {
        Ok(v) => v,
        Err(ReportError::UnsupportedType) => {
            return Err(Rejection::client(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Reports are application/csp-report or application/reports+json.",
            ));
        }
        Err(ReportError::Malformed(why)) => {
            tracing::debug!(app, client = %ctx.client.ip, "malformed CSP report: {why}");
            return Err(Rejection::client(
                StatusCode::BAD_REQUEST,
                "The report is not valid JSON of a known format.",
            ));
        }
    };
    let rows: Vec<_> = violations
        .into_iter()
        .map(|v| (v.directive, v.blocked, v.document, v.disposition))
        .collect();
    if known && !rows.is_empty() {
        reports
            .store
            .record_csp_reports(&app, &rows)
            .await
            .map_err(|e| Rejection::internal(e.to_string()))?;
    }
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(Flow::Respond(resp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing;
    use http_body_util::Full;

    fn report(app: &str, content_type: &str, body: &str) -> Request<Full<bytes::Bytes>> {
        Request::post(format!("{PREFIX}{app}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(bytes::Bytes::from(body.to_owned())))
            .unwrap()
    }

    async fn status(rt: &Runtime, reports: &Reports, req: Request<Full<bytes::Bytes>>) -> u16 {
        let ctx = testing::ctx(&req, "127.0.0.1", true, None);
        match handle(req, &ctx, rt, reports).await {
            Ok(Flow::Respond(resp)) => resp.status().as_u16(),
            Ok(Flow::Continue) => panic!("the endpoint always answers"),
            Err(r) => r.status.as_u16(),
        }
    }

    #[tokio::test]
    async fn reports_are_stored_for_known_apps_only() {
        let dir = tempfile::tempdir().unwrap();
        let reports = Reports {
            limiter: Default::default(),
            store: Store::open(&dir.path().join("moat.db")).await.unwrap(),
        };
        let rt = testing::one_app("", "auth = \"none\"");
        let body = r#"{"csp-report":{"document-uri":"https://a/","violated-directive":"script-src","effective-directive":"script-src","blocked-uri":"https://evil.example/x.js","disposition":"enforce"}}"#;
        assert_eq!(
            status(&rt, &reports, report("app", "application/csp-report", body)).await,
            204
        );
        assert_eq!(
            status(
                &rt,
                &reports,
                report("ghost", "application/csp-report", body)
            )
            .await,
            204
        );
        let kept = reports.store.csp_reports("app", 10).await.unwrap();
        assert_eq!(kept.len(), 1);
        assert!(kept[0].blocked.contains("evil.example"));
        assert!(
            reports
                .store
                .csp_reports("ghost", 10)
                .await
                .unwrap()
                .is_empty()
        );

        assert_eq!(
            status(&rt, &reports, report("app", "text/plain", "x")).await,
            415
        );
        assert_eq!(
            status(&rt, &reports, report("app", "application/csp-report", "{")).await,
            400
        );
        let get = Request::get(format!("{PREFIX}app"))
            .body(Full::new(bytes::Bytes::new()))
            .unwrap();
        assert_eq!(status(&rt, &reports, get).await, 405);
    }

    #[test]
    fn one_client_cannot_spend_an_apps_budget() {
        let l = ReportLimiter::default();
        let now = Instant::now();
        let a: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..PER_CLIENT_PER_MINUTE {
            assert!(l.allow("app", a, now));
        }
        assert!(!l.allow("app", a, now));
        assert!(l.allow("app", "127.0.0.2".parse().unwrap(), now));
        assert!(
            l.allow("app", a, now + Duration::from_secs(61)),
            "a new window"
        );
    }
}
