//! Stage: the admin portal, under `/_moat/portal/` (and on every path of
//! `[portal] host`, which leads there).
//!
//! SECURITY: everything that makes the portal safe to expose is here, not
//! in the pages:
//! - HTTPS only; `[portal] enabled = false` answers 404;
//! - only a live session through one of `[portal] auth`'s sources, of
//!   someone `[portal]` names an admin (others get the 403 page naming
//!   their account); no HTTP Basic;
//! - a session with no portal request for `idle_timeout` ends;
//! - every request but GET and HEAD passes moat's cross-origin check and
//!   carries the session's CSRF token (`_csrf` form field or
//!   `X-Moat-CSRF` header), checked before the pages see it;
//! - every page gets a fresh nonce and a policy with no inline script or
//!   style, `'strict-dynamic'`, `object-src 'none'`, `base-uri 'none'`,
//!   `frame-ancestors 'none'` and Trusted Types; a page may set a stricter
//!   policy of its own (the sandboxed page view of a recording does).
//!
//! The pages are not here: they are [`PortalPages`], which the binary plugs
//! in, and which act only through the admin API under the admin's name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use moat_config::Config;
use moat_policy::csrf;
use moat_policy::login::{self, Challenge};
use moat_policy::sessions::SessionId;

use crate::admin_api::{PortalPages, Viewer};
use crate::auth::AuthState;
use crate::body::{self, Body, BoxError};
use crate::error::Rejection;
use crate::namespace::PORTAL;
use crate::pipeline::{Flow, Step, pages};
use crate::request::RequestCtx;

/// The largest form the portal takes (an app's settings, a bucket's).
const MAX_FORM: usize = 256 * 1024;

/// The portal's state: its pages, and when each session last used it.
pub struct PortalRoute {
    pages: Option<Arc<dyn PortalPages>>,
    last_seen: Mutex<HashMap<SessionId, Instant>>,
}

/// Sessions remembered before the stale ones are swept.
const SWEEP_AT: usize = 10_000;

impl PortalRoute {
    /// `pages`: `None` answers 404 (a gateway started without a portal).
    pub fn new(pages: Option<Arc<dyn PortalPages>>) -> PortalRoute {
        PortalRoute {
            pages,
            last_seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the portal is served on this request's listener.
    pub fn serves(&self, config: &Config, ctx: &RequestCtx) -> bool {
        self.pages.is_some() && config.portal.enabled && ctx.tls
    }

    /// Records a portal request of `session`; false when its previous one
    /// is older than `idle`.
    fn touch(&self, session: &SessionId, idle: std::time::Duration) -> bool {
        let now = Instant::now();
        let mut seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= SWEEP_AT {
            seen.retain(|_, t| now.duration_since(*t) <= idle);
        }
        match seen.insert(*session, now) {
            Some(last) if now.duration_since(last) > idle => {
                seen.remove(session);
                false
            }
            _ => true,
        }
    }
}

/// Whether the path is the portal's.
pub fn is_page(path: &str) -> bool {
    path.strip_prefix(PORTAL)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether the request is for the portal's own host.
pub fn is_portal_host(config: &Config, ctx: &RequestCtx) -> bool {
    let host = ctx
        .host
        .as_deref()
        .map(moat_policy::route::host_without_port);
    config.portal.host.is_some() && host == config.portal.host
}

pub async fn handle<B>(
    req: Request<B>,
    ctx: &mut RequestCtx,
    config: &Config,
    route: &PortalRoute,
    sign_in: &AuthState,
) -> Step
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Some(pages) = route.pages.as_ref().filter(|_| route.serves(config, ctx)) else {
        return Err(Rejection::not_found());
    };
    let path = req.uri().path();
    if !is_page(path) {
        // The portal's own host: every other path leads to the portal.
        return Ok(Flow::Respond(pages::see_other(&format!("{PORTAL}/"))));
    }
    if path == PORTAL {
        return Ok(Flow::Respond(pages::see_other(&format!("{PORTAL}/"))));
    }
    let portal = &config.portal;
    let session = sign_in
        .session(req.headers(), ctx.tls)
        .filter(|s| portal.sources.contains(&s.identity.source));
    let signed_in = match session {
        Some(s) => super::auth::current(s.clone(), sign_in)
            .await
            .map(|identity| (s, identity)),
        None => None,
    };
    let Some((session, identity)) = signed_in else {
        return sign_in_first(&req);
    };
    if !portal.is_admin(&identity) {
        tracing::warn!(client = %ctx.client.ip, user = identity.user, source = %identity.source, "portal refused: not an admin ([portal] admin_users, admin_groups, admin_domains)");
        return Ok(Flow::Respond(pages::not_allowed(
            &identity,
            "the admin portal",
            "The admin portal is for administrators.",
        )));
    }
    if !route.touch(&session.id, portal.idle_timeout) {
        tracing::info!(client = %ctx.client.ip, user = identity.user, "portal session ended: idle for longer than [portal] idle_timeout");
        sign_in.drop_session(&session.id).await;
        ctx.ended_session = Some(session.key.clone());
        return sign_in_first(&req);
    }
    ctx.user = Some(identity.user.clone());
    ctx.source = Some(identity.source.to_string());

    let (mut parts, body) = req.into_parts();
    let body = if matches!(parts.method, Method::GET | Method::HEAD) {
        body::empty()
    } else {
        if let csrf::Verdict::CrossOrigin(why) =
            csrf::check(&parts.method, &parts.headers, ctx.host.as_deref(), &[])
        {
            tracing::warn!(client = %ctx.client.ip, user = identity.user, "portal change refused: {why}");
            return Err(Rejection::client(StatusCode::FORBIDDEN, why));
        }
        let form = super::login::read_form(body, MAX_FORM).await?;
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let token = match parts.headers.get("x-moat-csrf") {
            Some(v) => v.to_str().ok().map(str::to_owned),
            None if is_form => login::form_field(&String::from_utf8_lossy(&form), "_csrf"),
            None => None,
        };
        if !token.is_some_and(|t| sign_in.verify_csrf_token(&session, &t)) {
            tracing::warn!(client = %ctx.client.ip, user = identity.user, "portal change refused: no valid CSRF token");
            return Err(Rejection::client(
                StatusCode::FORBIDDEN,
                "This form is out of date or did not come from the portal: reload the page and try again.",
            ));
        }
        body::full(form)
    };
    // The pages see their own paths (`/`, `/apps/NAME`).
    let inner = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .strip_prefix(PORTAL)
        .unwrap_or("/")
        .to_owned();
    parts.uri = inner.parse().map_err(|_| {
        Rejection::client(StatusCode::BAD_REQUEST, "The request path is not valid.")
    })?;
    crate::auth::strip_session_cookie(&mut parts.headers);
    let name = match &identity.source {
        moat_policy::access::Source::System => identity.user.clone(),
        other => format!("{other}/{}", identity.user),
    };
    let viewer = Viewer {
        actor: moat_store::Actor {
            name,
            source: format!("portal:{}", ctx.client.ip),
        },
        source: identity.source.to_string(),
        csrf_token: sign_in.csrf_token(&session),
        nonce: super::csp_nonce::fresh_nonce(),
        base: PORTAL,
    };
    let nonce = viewer.nonce.clone();
    let resp = pages.handle(Request::from_parts(parts, body), viewer).await;
    Ok(Flow::Respond(secure(resp, &nonce)))
}

/// The portal's policy for a page with this nonce. `'unsafe-inline'
/// https:` in `script-src` are for browsers from before nonces and
/// `'strict-dynamic'` (which ignore them), as Google's CSP Evaluator asks
/// of a strict policy.
pub fn policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}' 'strict-dynamic' 'unsafe-inline' https:; style-src 'nonce-{nonce}'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; require-trusted-types-for 'script'; trusted-types 'none'"
    )
}

/// The portal's headers, where the page did not set its own.
fn secure(mut resp: Response<Body>, nonce: &str) -> Response<Body> {
    let h = resp.headers_mut();
    let set = |h: &mut http::HeaderMap, name: http::HeaderName, value: HeaderValue| {
        h.entry(name).or_insert(value);
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&policy(nonce)).expect("the policy is ASCII"),
    );
    set(h, header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    set(
        h,
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    set(
        h,
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    set(
        h,
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    set(
        h,
        http::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    set(
        h,
        http::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// No admin session: a browser goes to the login page (and back), other
/// clients get 401.
fn sign_in_first<B>(req: &Request<B>) -> Step {
    match login::challenge(req.method(), req.headers()) {
        Challenge::LoginPage => {
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or(PORTAL);
            Ok(Flow::Respond(pages::see_other(&login::login_url(target))))
        }
        Challenge::Unauthorized => Err(Rejection::client(
            StatusCode::UNAUTHORIZED,
            "sign-in required: sign in at /_moat/login",
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("MoatLogin realm=\"moat\", login=\"/_moat/login\""),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_whole_segments() {
        assert!(is_page("/_moat/portal"));
        assert!(is_page("/_moat/portal/"));
        assert!(is_page("/_moat/portal/apps/x"));
        assert!(!is_page("/_moat/portalx"));
        assert!(!is_page("/_moat/login"));
    }

    #[test]
    fn a_session_idle_too_long_is_refused_once_and_forgotten() {
        let route = PortalRoute::new(None);
        let id = [1u8; 32];
        let idle = std::time::Duration::from_millis(20);
        assert!(route.touch(&id, idle));
        assert!(route.touch(&id, idle));
        std::thread::sleep(std::time::Duration::from_millis(40));
        assert!(!route.touch(&id, idle), "idle too long");
        assert!(
            route.touch(&id, idle),
            "a new session under the same id starts afresh"
        );
    }

    #[test]
    fn the_policy_allows_nothing_inline_to_a_browser_that_knows_nonces() {
        let p = policy("abc");
        for must in [
            "default-src 'none'",
            "script-src 'nonce-abc' 'strict-dynamic'",
            "style-src 'nonce-abc';",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(p.contains(must), "{must}: {p}");
        }
        // The fallbacks for older browsers are ignored where a nonce and
        // 'strict-dynamic' are (CSP Level 3); nothing else is unsafe.
        let script = p.split(';').find(|d| d.contains("script-src")).unwrap();
        assert!(script.contains("'unsafe-inline' https:"), "{p}");
        assert_eq!(p.matches("unsafe").count(), 1, "{p}");
    }
}
