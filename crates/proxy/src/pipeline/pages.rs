//! moat's own HTML pages (sign-in, sign-out, "not allowed"): one shell,
//! one strict policy, no script.

use http::{HeaderValue, Response, StatusCode, header};
use moat_policy::access::{Identity, Source};
use moat_policy::login::html_escape;

use crate::body::{self, Body};

use super::login::STYLESHEET_PATH;

/// The pages' policy: no script at all, styles only from moat, forms only
/// to moat, no framing.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// 403 for someone signed in whom the app does not admit: who they are
/// signed in as, and a way to sign out and in as someone else (so no
/// login loop).
pub fn not_allowed(identity: &Identity, app: &str, why: &str) -> Response<Body> {
    let through = match &identity.source {
        Source::System => "moat's own account".to_owned(),
        Source::Oidc(p) => format!("the provider {p}"),
    };
    let body = format!(
        r#"<p class="message error" role="alert">{why}</p>
<p>You are signed in as <strong>{user}</strong>{email} through {through}. The app <strong>{app}</strong> is not open to this account.</p>
<p>If you should have access, ask an administrator to add you; or sign out and sign in with another account.</p>
<form method="post" action="{logout}">
<button type="submit">Sign out</button>
</form>"#,
        why = html_escape(why),
        user = html_escape(&identity.user),
        email = identity
            .email
            .as_deref()
            .filter(|e| *e != identity.user)
            .map(|e| format!(" ({})", html_escape(e)))
            .unwrap_or_default(),
        through = html_escape(&through),
        app = html_escape(app),
        logout = moat_policy::login::LOGOUT_PATH,
    );
    page(StatusCode::FORBIDDEN, shell("Not allowed", &body))
}

/// 503 while no sign-in source of an app can be used (its providers are
/// down or not discovered yet).
pub fn sign_in_unavailable(providers: &[String]) -> Response<Body> {
    let body = format!(
        r#"<p class="message error" role="alert">Sign-in is unavailable right now: moat cannot reach {}.</p>
<p>This usually passes within a minute. Try again shortly; if it lasts, tell an administrator (moat's log names the cause).</p>"#,
        html_escape(&providers.join(", "))
    );
    let mut resp = page(
        StatusCode::SERVICE_UNAVAILABLE,
        shell("Sign-in unavailable", &body),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
    resp
}

/// moat's page around `body` (trusted markup; callers escape what they
/// put in it).
pub fn shell(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · moat</title>
<link rel="stylesheet" href="{STYLESHEET_PATH}">
</head>
<body>
<main>
<h1>{title}</h1>
{body}
<footer>Protected by moat</footer>
</main>
</body>
</html>
"#
    )
}

pub fn page(status: StatusCode, html: String) -> Response<Body> {
    let mut resp = Response::new(body::full(html));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn see_other(location: &str) -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
