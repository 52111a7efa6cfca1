//! CORS stages for apps whose CORS moat manages (`[apps.cors]`).
//!
//! Request: a preflight is answered here (204 with the headers, or 403),
//! before auth, since browsers send preflights without credentials; for
//! other requests the response headers are worked out from the `Origin`.
//! Response: the upstream's CORS headers are replaced by moat's, and
//! `Vary: Origin` is always added so caches keep answers per origin.

use http::{HeaderValue, Request, Response, StatusCode, header};
use moat_policy::cors::{self, Preflight};

use crate::body::{self, Body};
use crate::pipeline::RequestCtx;
use crate::runtime::AppRuntime;

/// Answers a preflight, or records the CORS headers of the response.
pub fn request<B>(
    req: &Request<B>,
    ctx: &mut RequestCtx,
    app: &AppRuntime,
) -> Result<(), Response<Body>> {
    let Some(policy) = &app.cors else {
        return Ok(());
    };
    match policy.preflight(req.method(), req.headers()) {
        Preflight::No => {
            ctx.cors = policy.response_headers(req.headers());
            Ok(())
        }
        Preflight::Allowed(headers) => {
            let mut resp = Response::new(body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            ctx.cors = headers;
            Err(resp)
        }
        Preflight::Denied(why) => {
            tracing::debug!(app = app.name, client = %ctx.client.ip, "CORS preflight refused: {why}");
            let mut resp = crate::error::error_page(
                StatusCode::FORBIDDEN,
                &format!("Cross-origin request refused: {why}."),
            );
            resp.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Origin"));
            Err(resp)
        }
    }
}

/// Replaces the upstream's CORS headers with moat's.
pub fn response(response: &mut Response<Body>, ctx: &RequestCtx, app: &AppRuntime) {
    if app.cors.is_none() {
        return;
    }
    let h = response.headers_mut();
    for name in cors::RESPONSE_HEADERS.iter() {
        h.remove(name);
    }
    let mut vary_set = false;
    for (name, value) in &ctx.cors {
        if *name == header::VARY {
            vary_set = true;
            h.append(name.clone(), value.clone());
        } else {
            h.insert(name.clone(), value.clone());
        }
    }
    if !vary_set {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}
