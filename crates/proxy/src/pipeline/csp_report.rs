//! moat's CSP violation report endpoint, `/_moat/csp-report/APP`: the
//! `report-uri` and Reporting API endpoint of every app's policy.
//!
//! SECURITY: anyone can post here (browsers send reports without
//! credentials), so input is bounded: bodies up to 64 KiB, a fixed number
//! of report bodies per app per minute (429 past it), distinct violations
//! per app capped in the store, and only known apps accepted.

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

/// Fixed one-minute windows of accepted report bodies, per app.
#[derive(Default)]
pub struct ReportLimiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl ReportLimiter {
    fn allow(&self, app: &str, now: Instant) -> bool {
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let entry = w.entry(app.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= PER_MINUTE
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
    if !shared.runtime.load().apps.iter().any(|a| a.name == app) {
        return Err(Rejection::not_found());
    }
    if !shared.report_limiter.allow(&app, Instant::now()) {
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
    let body = Limited::new(req.into_body(), csp_report::MAX_BODY)
        .collect()
        .await
        .map_err(|_| Rejection::client(StatusCode::PAYLOAD_TOO_LARGE, "The report is too large."))?
        .to_bytes();
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
    if !rows.is_empty() {
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
