//! Stage: app authentication. Runs after routing (the app decides whether
//! a login is needed) and before anything reaches the app.
//!
//! `auth = "none"`: everyone passes. `auth = "system"`: a live session
//! cookie, or HTTP Basic credentials over TLS (when `auth.basic_auth`),
//! lets the request through with its user in [`RequestCtx::user`]; a
//! browser navigation without either is sent to the login page, anything
//! else gets 401 with a challenge.
//!
//! SECURITY: moat's session cookie is removed from every request, and
//! Basic credentials moat consumed are removed too, so neither reaches an
//! upstream.

use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use moat_config::AppAuth;
use moat_policy::login::{self, Challenge};

use crate::auth::{SignIn, strip_session_cookie};
use crate::body::{self, Body};
use crate::gateway::Shared;
use crate::pipeline::RequestCtx;
use crate::runtime::{AppRuntime, Runtime};

/// Lets the request continue (`Ok`) or answers it (`Err`).
pub async fn authenticate(
    req: &mut Request<Incoming>,
    ctx: &mut RequestCtx,
    app: &AppRuntime,
    runtime: &Runtime,
    shared: &Arc<Shared>,
) -> Result<(), Response<Body>> {
    let session_user = match app.auth {
        AppAuth::None => None,
        AppAuth::System => shared.auth.session_user(req.headers(), ctx.tls),
    };
    strip_session_cookie(req.headers_mut());
    if app.auth == AppAuth::None {
        return Ok(());
    }
    if let Some((user, key)) = session_user {
        ctx.user = Some(user);
        ctx.session = Some(key);
        return Ok(());
    }
    let config = &runtime.config;
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .filter(|v| v.as_bytes().len() > 6 && v.as_bytes()[..6].eq_ignore_ascii_case(b"basic "))
        .cloned();
    if let Some(authorization) = basic.filter(|_| ctx.tls && config.auth.basic_auth) {
        let verdict = shared
            .auth
            .basic_user(
                &authorization,
                ctx.client.ip,
                &config.security,
                &config.auth,
                shared.admin_password.load_full(),
            )
            .await;
        return match verdict {
            SignIn::Accepted(user, key) => {
                req.headers_mut().remove(header::AUTHORIZATION);
                ctx.user = Some(user);
                ctx.session = Some(key);
                Ok(())
            }
            SignIn::Refused => Err(unauthorized(ctx, runtime, "wrong user name or password")),
            SignIn::Locked(retry) => Err(super::login::locked_response(retry)),
            SignIn::Busy => Err(super::login::busy_response()),
        };
    }
    match login::challenge(req.method(), req.headers()) {
        Challenge::LoginPage => {
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            Err(redirect(&login::login_url(target)))
        }
        Challenge::Unauthorized => Err(unauthorized(ctx, runtime, "sign-in required")),
    }
}

fn redirect(location: &str) -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(location).expect("login URLs are percent-encoded"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// 401 with a challenge: HTTP Basic where moat accepts it, else moat's own
/// scheme naming the login page (RFC 9110 requires a challenge on a 401).
fn unauthorized(ctx: &RequestCtx, runtime: &Runtime, why: &str) -> Response<Body> {
    let challenge = if ctx.tls && runtime.config.auth.basic_auth {
        "Basic realm=\"moat\", charset=\"UTF-8\""
    } else {
        "MoatLogin realm=\"moat\", login=\"/_moat/login\""
    };
    let mut resp = crate::error::error_page(
        StatusCode::UNAUTHORIZED,
        &format!("{why}: sign in at /_moat/login"),
    );
    let h = resp.headers_mut();
    h.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
