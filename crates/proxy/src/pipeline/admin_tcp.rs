//! Stage: the admin API over TCP, under `/_moat/api/`.
//!
//! SECURITY: off by default, and then the namespace answers 404 whatever
//! the apps are. On (`admin_over_tcp`), it is served only on the HTTPS
//! listener, every request needs the admin user's HTTP Basic credentials,
//! and failed attempts lock the client address out for a while. The
//! password check (bcrypt) runs off the worker thread, so a burst of logins
//! cannot stall the requests sharing it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;
use moat_policy::basic_auth;
use moat_policy::throttle::{Attempt, Limits, Verdict};
use tower::ServiceExt;

use crate::admin;
use crate::body::{self, Body};
use crate::error::Rejection;
use crate::gateway::Shared;
use crate::pipeline::RequestCtx;
use crate::runtime::Runtime;

/// moat's own namespace on the app listeners.
pub const NAMESPACE: &str = "/_moat";
const API: &str = "/_moat/api/";

/// Five failures in five minutes lock an address out for fifteen.
pub const THROTTLE: Limits = Limits {
    max_failures: 5,
    window: Duration::from_secs(300),
    lockout: Duration::from_secs(900),
    capacity: 100_000,
};

pub fn is_admin_path(path: &str) -> bool {
    path.starts_with(API) || path == "/_moat/api"
}

pub async fn handle(
    req: Request<Incoming>,
    ctx: &RequestCtx,
    runtime: &Runtime,
    shared: &Arc<Shared>,
) -> Result<Response<Body>, Rejection> {
    let security = &runtime.config.security;
    if !(ctx.tls && security.admin_over_tcp) {
        return Err(Rejection::not_found());
    }
    let ip = ctx.client.ip;
    // One attempt at a time per address, reserved before the hash runs.
    match throttle(shared).begin(&ip, Instant::now()) {
        Attempt::Reserved => {}
        Attempt::Locked { retry_after } => return Ok(locked(retry_after)),
        Attempt::Busy => return Ok(busy()),
    }
    let _reserved = AdminAttempt { shared, ip };
    let credentials = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic_auth::parse);
    let Some((user, password)) = credentials else {
        return Ok(unauthorized("credentials required"));
    };
    let user_ok = basic_auth::constant_time_eq(user.as_bytes(), security.admin_user.as_bytes());
    let hash = shared.admin_password.load_full();
    // The hash is checked even for a wrong user, so timing does not tell
    // which of the two was wrong.
    let Some(password_ok) = shared.auth.verify_password(hash, password).await else {
        return Ok(busy());
    };
    if !(user_ok && password_ok) {
        tracing::warn!(client = %ip, user, "admin API over TCP: failed login");
        return Ok(match throttle(shared).failure(&ip, Instant::now()) {
            Verdict::Locked { retry_after } => locked(retry_after),
            Verdict::Allow => unauthorized("wrong user name or password"),
        });
    }
    throttle(shared).success(&ip);

    // Hand the request to the same routes the Unix socket serves, without
    // the namespace prefix.
    let (mut parts, incoming) = req.into_parts();
    let inner = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .trim_start_matches(NAMESPACE)
        .to_owned();
    parts.uri = inner.parse().map_err(|_| {
        Rejection::client(StatusCode::BAD_REQUEST, "The request path is not valid.")
    })?;
    // Changes are audited under the admin user and the client address.
    parts.extensions.insert(moat_store::Actor {
        name: security.admin_user.clone(),
        source: format!("tcp:{ip}"),
    });
    let req = Request::from_parts(parts, axum::body::Body::new(incoming));
    let resp = admin::router(shared.clone())
        .oneshot(req)
        .await
        .map_err(|e| Rejection::internal(e.to_string()))?;
    Ok(resp.map(body::boxed))
}

fn throttle(
    shared: &Shared,
) -> std::sync::MutexGuard<'_, moat_policy::throttle::Throttle<std::net::IpAddr>> {
    shared
        .admin_throttle
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Releases the address's reserved attempt however the check ends.
struct AdminAttempt<'a> {
    shared: &'a Shared,
    ip: std::net::IpAddr,
}

impl Drop for AdminAttempt<'_> {
    fn drop(&mut self) {
        throttle(self.shared).end(&self.ip);
    }
}

fn busy() -> Response<Body> {
    let mut resp = admin::error(
        StatusCode::TOO_MANY_REQUESTS,
        "another login from this address is being checked; try again in a moment".to_owned(),
        "too_many_attempts",
    )
    .map(body::boxed);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

fn unauthorized(why: &str) -> Response<Body> {
    let mut resp =
        admin::error(StatusCode::UNAUTHORIZED, why.to_owned(), "unauthorized").map(body::boxed);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"moat admin\", charset=\"UTF-8\""),
    );
    resp
}

fn locked(retry_after: Duration) -> Response<Body> {
    let secs = retry_after.as_secs().max(1);
    let mut resp = admin::error(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed logins from this address; try again in {secs}s"),
        "too_many_attempts",
    )
    .map(body::boxed);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}
