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
use hyper::body::Incoming;
use moat_policy::csp_report::{self, ReportError};

use crate::body::{self, Body};
use crate::error::Rejection;
use crate::gateway::Shared;
use crate::pipeline::RequestCtx;

pub const PREFIX: &str = "/_moat/csp-report/";
/// The Reporting API endpoint name used in every policy.
pub const GROUP: &str = "moat-csp";

/// Report bodies accepted per app per minute.
const PER_MINUTE: u32 = 120;

/// The endpoint path of an app.
pub fn path_for(app: &str) -> String {
    format!("{PREFIX}{app}")
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

pub async fn handle(
    req: Request<Incoming>,
    ctx: &RequestCtx,
    shared: &Shared,
) -> Result<Response<Body>, Rejection> {
    if req.method() != http::Method::POST {
        return Err(Rejection::client(
            StatusCode::METHOD_NOT_ALLOWED,
            "Reports are sent with POST.",
        ));
    }
    let app = req.uri().path()[PREFIX.len()..].to_owned();
    // SECURITY: an unknown app gets the same answer as a known one, so the
    // endpoint does not tell anyone which app names exist.
    let known = shared.runtime.load().apps.iter().any(|a| a.name == app);
    // Unknown names share one window, so inventing names grows nothing.
    let window = if known { app.as_str() } else { "" };
    if !shared
        .report_limiter
        .allow(window, ctx.client.ip, Instant::now())
    {
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
        shared
            .store
            .record_csp_reports(&app, &rows)
            .await
            .map_err(|e| Rejection::internal(e.to_string()))?;
    }
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}
