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
use crate::error::Rejection;
use crate::pipeline::{Flow, Step};
use crate::request::RequestCtx;
use crate::runtime::AppRuntime;

/// Answers a preflight, or records the CORS headers of the response.
pub fn request<B>(req: &Request<B>, ctx: &mut RequestCtx, app: &AppRuntime) -> Step {
    let Some(policy) = &app.cors else {
        return Ok(Flow::Continue);
    };
    match policy.preflight(req.method(), req.headers()) {
        Preflight::No => {
            ctx.cors = policy.response_headers(req.headers());
            Ok(Flow::Continue)
        }
        Preflight::Allowed(headers) => {
            let mut resp = Response::new(body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            ctx.cors = headers;
            Ok(Flow::Respond(resp))
        }
        Preflight::Denied(why) => {
            tracing::debug!(app = app.name, client = %ctx.client.ip, "CORS preflight refused: {why}");
            Err(Rejection::client(
                StatusCode::FORBIDDEN,
                format!("Cross-origin request refused: {why}."),
            )
            .with_header(header::VARY, HeaderValue::from_static("Origin")))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing;

    fn preflight(origin: &str) -> Request<()> {
        Request::options("/x")
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .body(())
            .unwrap()
    }

    #[test]
    fn preflights_are_answered_or_refused() {
        let rt = testing::one_app(
            "",
            "auth = \"none\"\n[apps.cors]\nallow_origin = [\"https://app.example\"]\nallow_methods = [\"GET\", \"PUT\"]",
        );
        let app = testing::app(&rt, "app");
        let req = preflight("https://app.example");
        let mut ctx = testing::ctx(&req, "127.0.0.1", true, Some(app.clone()));
        match request(&req, &mut ctx, &app) {
            Ok(Flow::Respond(resp)) => assert_eq!(resp.status(), 204),
            _ => panic!("an allowed preflight is answered"),
        }
        assert!(!ctx.cors.is_empty(), "its headers go on the answer");

        let req = preflight("https://evil.example");
        let mut ctx = testing::ctx(&req, "127.0.0.1", true, Some(app.clone()));
        let r = request(&req, &mut ctx, &app).err().expect("refused");
        assert_eq!(r.status, 403);
        assert!(
            r.headers
                .iter()
                .any(|(n, v)| n == header::VARY && v == "Origin")
        );
    }

    #[test]
    fn apps_without_managed_cors_are_left_alone() {
        let rt = testing::one_app("", "auth = \"none\"");
        let app = testing::app(&rt, "app");
        let req = preflight("https://app.example");
        let mut ctx = testing::ctx(&req, "127.0.0.1", true, Some(app.clone()));
        assert!(matches!(request(&req, &mut ctx, &app), Ok(Flow::Continue)));
        let mut resp = Response::new(body::empty());
        resp.headers_mut()
            .insert("access-control-allow-origin", HeaderValue::from_static("*"));
        response(&mut resp, &ctx, &app);
        assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    }
}
