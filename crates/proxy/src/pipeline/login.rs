//! moat's own pages under `/_moat/`: the login page (with the sources an
//! app accepts and the captcha), sign-out, their stylesheet and script,
//! and the public key set for identity tokens.
//!
//! One file (over 500 lines, a third of it tests) because the login form's
//! steps (captcha, password, one-time code) and the pages that answer each
//! share one form reading and one set of messages; the page shell and the
//! 403 and 503 pages are in `pages.rs`.
//!
//! SECURITY: the pages carry their own strict Content-Security-Policy (no
//! script but moat's own proof-of-work script by a fresh nonce, styles
//! only from moat, forms only to moat, no framing).
//! Sign-in and sign-out are POSTs checked for cross-origin use, so another
//! site can neither log a visitor in to an account of its choosing nor
//! log them out.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use moat_policy::access::Source;
use moat_policy::csrf;
use moat_policy::login::{self, html_escape};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::pages::{self, page, see_other, shell};
use crate::auth::{AuthState, SignIn};
use crate::body::{self, Body, BoxError};
use crate::captcha::{Refused, Widget};
use crate::error::Rejection;
use crate::pipeline::{Flow, Step};
use crate::request::RequestCtx;
use crate::runtime::Runtime;

pub const STYLESHEET_PATH: &str = "/_moat/login.css";
pub const JWKS_PATH: &str = "/_moat/jwks.json";
/// moat's proof-of-work script for the login page's captcha.
pub const POW_SCRIPT_PATH: &str = "/_moat/pow.js";
const POW_SCRIPT: &str = include_str!("login/pow.js");
const STYLESHEET: &str = include_str!("login/login.css");
/// A login form is a few hundred bytes; anything much larger is not one.
const MAX_FORM: usize = 16 * 1024;
/// The longest a sign-in form may take to arrive.
const FORM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether moat answers this path itself (rather than an app).
pub fn is_page(path: &str) -> bool {
    matches!(
        path,
        login::LOGIN_PATH | login::LOGOUT_PATH | STYLESHEET_PATH | JWKS_PATH | POW_SCRIPT_PATH
    )
}

/// Answers one of moat's pages (the request's path is one, see
/// [`is_page`]).
pub async fn handle<B>(
    req: Request<B>,
    ctx: &mut RequestCtx,
    runtime: &Runtime,
    sign_in: &AuthState,
) -> Step
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<BoxError>,
{
    answer(req, ctx, runtime, sign_in).await.map(Flow::Respond)
}

async fn answer<B>(
    req: Request<B>,
    ctx: &mut RequestCtx,
    runtime: &Runtime,
    sign_in: &AuthState,
) -> Result<Response<Body>, Rejection>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<BoxError>,
{
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::GET | Method::HEAD, login::LOGIN_PATH) => {
            let query = req.uri().query();
            let next = login::safe_next(login::query_param(query, "next").as_deref());
            let offer = Offer::for_next(runtime, ctx, &next, sign_in);
            let message = if login::query_param(query, "signed_out").is_some() {
                Some(Message::Info("You are signed out."))
            } else if offer.is_empty() {
                Some(Message::Error(
                    "Sign-in is disabled on this server (auth.system_account = false and no [[auth.oidc]] provider).",
                ))
            } else {
                None
            };
            Ok(login_page(
                StatusCode::OK,
                &next,
                "",
                message,
                &offer,
                captcha_widget(sign_in, ctx),
            ))
        }
        (Method::POST, login::LOGIN_PATH) => sign_in_form(req, ctx, runtime, sign_in).await,
        (Method::GET | Method::HEAD, login::LOGOUT_PATH) => Ok(logout_page()),
        (Method::POST, login::LOGOUT_PATH) => {
            refuse_cross_origin(&req, ctx)?;
            let (clear, ended, provider) = sign_in.end_session(req.headers(), ctx.tls).await;
            if let Some((identity, key)) = ended {
                tracing::info!(client = %ctx.client.ip, user = identity.user, source = %identity.source, "signed out");
                // A signed-out session's recordings end with it.
                ctx.ended_session = Some(key);
            }
            let signed_out = format!("{}?signed_out=1", login::LOGIN_PATH);
            // A provider's session is ended at the provider too, when it
            // offers that (RP-initiated logout), and the provider sends
            // the browser back to the login page.
            let at_provider = provider.and_then(|(name, hint)| {
                let host = ctx.host.as_deref()?;
                let back = format!("{}://{host}{signed_out}", ctx.proto());
                let url = sign_in
                    .oidc
                    .provider(&name)?
                    .end_session_url(hint.as_deref(), &back)?;
                Some((name, url))
            });
            let mut resp = match at_provider {
                Some((name, url)) => provider_logout_page(&name, &url),
                None => see_other(&signed_out),
            };
            resp.headers_mut().insert(header::SET_COOKIE, clear);
            Ok(resp)
        }
        (Method::GET | Method::HEAD, STYLESHEET_PATH) => {
            let mut resp = Response::new(body::full(STYLESHEET));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            );
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            Ok(resp)
        }
        (Method::GET | Method::HEAD, POW_SCRIPT_PATH) => {
            let mut resp = Response::new(body::full(POW_SCRIPT));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            );
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            Ok(resp)
        }
        (Method::GET | Method::HEAD, JWKS_PATH) => {
            let mut resp = Response::new(body::full(sign_in.identity.jwks().to_string()));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            );
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            Ok(resp)
        }
        _ => Err(Rejection::client(
            StatusCode::METHOD_NOT_ALLOWED,
            "This method is not allowed here.",
        )),
    }
}

async fn sign_in_form<B>(
    req: Request<B>,
    ctx: &RequestCtx,
    runtime: &Runtime,
    sign_in: &AuthState,
) -> Result<Response<Body>, Rejection>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<BoxError>,
{
    let config = &runtime.config;
    refuse_cross_origin(&req, ctx)?;
    let headers = req.headers().clone();
    let form = read_form(req.into_body(), MAX_FORM).await?;
    let form = String::from_utf8_lossy(&form);
    let next = login::safe_next(login::form_field(&form, "next").as_deref());
    let offer = Offer::for_next(runtime, ctx, &next, sign_in);
    // The second step: the token from the first and a one-time code.
    if let Some(token) = login::form_field(&form, "pending") {
        let code = login::form_field(&form, "code").unwrap_or_default();
        return match sign_in
            .check_second_factor(&token, &code, ctx.client.ip, false)
            .await
        {
            SignIn::Accepted(user, _) => Ok(signed_in(sign_in, ctx, user, &next).await),
            SignIn::Refused => Ok(code_page(
                StatusCode::UNAUTHORIZED,
                &next,
                &token,
                Some(
                    "Wrong or already used code. Enter the code your authenticator shows now, or a recovery code.",
                ),
            )),
            SignIn::Busy => Ok(code_page(
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                &token,
                Some("Another sign-in is being checked. Try again in a moment."),
            )),
            SignIn::Locked(retry) => Err(locked(retry)),
        };
    }
    let user = login::form_field(&form, "user").unwrap_or_default();
    // The captcha before the password: an address that must solve it
    // gets no password checked (and so no guess counted) without it.
    if sign_in.captcha_required(ctx.client.ip) {
        let now = unix_now();
        if let Err(refused) = sign_in
            .captcha
            .check(|name| login::form_field(&form, name), ctx.client.ip, now)
            .await
        {
            let (status, text) = match &refused {
                Refused::Missing => (
                    StatusCode::UNAUTHORIZED,
                    "Complete the check below, then sign in.",
                ),
                Refused::Wrong(why) => {
                    tracing::warn!(client = %ctx.client.ip, user, "sign-in refused: the captcha answer is {why}");
                    (
                        StatusCode::UNAUTHORIZED,
                        "The check was not passed. Complete it again, then sign in.",
                    )
                }
                Refused::Unavailable(why) => {
                    tracing::error!(client = %ctx.client.ip, "sign-in refused: the captcha could not be checked: {why}");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The check could not be verified right now. Try again in a moment.",
                    )
                }
            };
            return Ok(login_page(
                status,
                &next,
                &user,
                Some(Message::Error(text)),
                &offer,
                captcha_widget(sign_in, ctx),
            ));
        }
    }
    let password = login::form_field(&form, "password").unwrap_or_default();
    let trusted_device = sign_in.is_trusted_device(&headers, ctx.tls, &user);
    let enrolled = sign_in.has_second_factor(&user).await;
    let second_step = enrolled || config.auth.require_totp;
    let verdict = sign_in
        .check_password_step(
            &user,
            password,
            ctx.client.ip,
            &config.security,
            &config.auth,
            sign_in.admin_password(),
            trusted_device,
            second_step,
        )
        .await;
    match verdict {
        SignIn::Accepted(user, _) if second_step && !enrolled => {
            tracing::warn!(client = %ctx.client.ip, user, "sign-in refused: auth.require_totp is on and the account has no second factor");
            Ok(login_page(
                StatusCode::FORBIDDEN,
                &next,
                &user,
                Some(Message::Error(
                    "This account must sign in with a one-time code, and none is set up. An administrator sets it up with: moat totp enroll",
                )),
                &offer,
                captcha_widget(sign_in, ctx),
            ))
        }
        SignIn::Accepted(user, _) if second_step => match sign_in.second_factor_token(&user) {
            Some(token) => Ok(code_page(StatusCode::OK, &next, &token, None)),
            None => Err(Rejection::internal("the clock is before 1970")),
        },
        SignIn::Accepted(user, _) => Ok(signed_in(sign_in, ctx, user, &next).await),
        SignIn::Busy => {
            let mut resp = login_page(
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                &user,
                Some(Message::Error(
                    "Another sign-in is being checked. Try again in a moment.",
                )),
                &offer,
                captcha_widget(sign_in, ctx),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
            Ok(resp)
        }
        SignIn::Refused => Ok(login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            &user,
            Some(Message::Error("Wrong user name or password.")),
            &offer,
            captcha_widget(sign_in, ctx),
        )),
        SignIn::Locked(retry) => Err(locked(retry)),
    }
}

/// A small form's body. SECURITY: a stalled or oversized form is not held
/// open or buffered.
pub(crate) async fn read_form<B>(body: B, max: usize) -> Result<bytes::Bytes, Rejection>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<BoxError>,
{
    match tokio::time::timeout(FORM_TIMEOUT, Limited::new(body, max).collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(_)) => Err(Rejection::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is too large.",
        )),
        Err(_) => Err(Rejection::client(
            StatusCode::REQUEST_TIMEOUT,
            "The form did not arrive in time.",
        )),
    }
}

/// A sign-in that passed every step: the session and device cookies, and
/// the way back to `next`.
async fn signed_in(
    sign_in: &AuthState,
    ctx: &RequestCtx,
    user: String,
    next: &str,
) -> Response<Body> {
    tracing::info!(client = %ctx.client.ip, user, "signed in");
    let device = sign_in.device_cookie(&user, ctx.tls);
    let cookie = sign_in.start_session(user, ctx.tls).await;
    let mut resp = see_other(next);
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    // This browser may sign in again even while the account's name is
    // locked out by failures elsewhere.
    if let Some(d) = device {
        resp.headers_mut().append(header::SET_COOKIE, d);
    }
    resp
}

/// The second step: the code from the authenticator (or a recovery code),
/// carrying the first step's token.
fn code_page(status: StatusCode, next: &str, token: &str, error: Option<&str>) -> Response<Body> {
    let message = error
        .map(|m| {
            format!(
                "<p class=\"message error\" role=\"alert\">{}</p>",
                html_escape(m)
            )
        })
        .unwrap_or_default();
    let body = format!(
        r#"{message}
<form method="post" action="{action}">
<input type="hidden" name="next" value="{next}">
<input type="hidden" name="pending" value="{token}">
<label for="code">One-time code</label>
<input id="code" name="code" autocomplete="one-time-code" inputmode="numeric" required autofocus>
<p>The six digits your authenticator app shows for moat, or one of your recovery codes.</p>
<button type="submit">Sign in</button>
</form>"#,
        action = login::LOGIN_PATH,
        next = html_escape(next),
        token = html_escape(token),
    );
    page(status, shell("Sign in: one-time code", &body))
}

fn refuse_cross_origin<B>(req: &Request<B>, ctx: &RequestCtx) -> Result<(), Rejection> {
    match csrf::check(req.method(), req.headers(), ctx.host.as_deref(), &[]) {
        csrf::Verdict::Allow => Ok(()),
        csrf::Verdict::CrossOrigin(why) => {
            tracing::warn!(client = %ctx.client.ip, "sign-in form refused: {why}");
            Err(Rejection::client(StatusCode::FORBIDDEN, why))
        }
    }
}

enum Message {
    Info(&'static str),
    Error(&'static str),
}

/// The ways to sign in the login page offers: those of the app the person
/// is going to, or (going nowhere in particular) every one configured.
struct Offer {
    system: bool,
    /// Name, button text, and whether it can be used now.
    providers: Vec<(String, String, bool)>,
}

impl Offer {
    fn for_next(runtime: &Runtime, ctx: &RequestCtx, next: &str, sign_in: &AuthState) -> Offer {
        let config = &runtime.config;
        let path = next.split(['?', '#']).next().unwrap_or("/");
        // The portal's admins sign in through the portal's sources.
        let portal = super::portal::is_page(path) || super::portal::is_portal_host(config, ctx);
        let app_sources = if portal {
            Some(config.portal.sources.clone())
        } else {
            runtime
                .router
                .find(ctx.host.as_deref(), path)
                .map(|i| runtime.apps[i].auth.sources().to_vec())
                .filter(|s| !s.is_empty())
        };
        let sources = app_sources.unwrap_or_else(|| {
            let mut all = vec![Source::System];
            all.extend(
                config
                    .auth
                    .oidc
                    .iter()
                    .map(|p| Source::Oidc(p.name.clone())),
            );
            all
        });
        let mut offer = Offer {
            system: false,
            providers: Vec::new(),
        };
        for s in sources {
            match s {
                Source::System => offer.system = config.auth.system_account,
                Source::Oidc(name) => {
                    if let Some(p) = config.auth.provider(&name) {
                        let ready = sign_in.oidc.is_ready(&name);
                        offer.providers.push((name, p.display_name.clone(), ready));
                    }
                }
            }
        }
        offer
    }

    fn is_empty(&self) -> bool {
        !self.system && self.providers.is_empty()
    }
}

/// The captcha widget for this client's login page, when it is asked.
fn captcha_widget(sign_in: &AuthState, ctx: &RequestCtx) -> Option<Widget> {
    if !sign_in.captcha_required(ctx.client.ip) {
        return None;
    }
    sign_in.captcha.widget(unix_now())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The captcha's part of the form, and the page's policy with it: moat's
/// script by a fresh nonce, or the service's origins (on this page only).
fn captcha_markup(widget: Option<&Widget>) -> (String, Option<String>) {
    match widget {
        None => (String::new(), None),
        Some(Widget::Pow {
            challenge,
            difficulty,
        }) => {
            let mut n = [0u8; 16];
            getrandom::fill(&mut n).expect("the operating system's random generator works");
            let nonce = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, n);
            (
                format!(
                    r#"<input type="hidden" name="captcha_challenge" value="{challenge}">
<input type="hidden" name="captcha_solution" value="">
<p id="moat-pow" class="captcha" data-difficulty="{difficulty}">Checking your browser…</p>
<noscript><p class="message error">This sign-in needs JavaScript for a short browser check (it runs on moat, nothing is sent elsewhere).</p></noscript>
<script src="{POW_SCRIPT_PATH}" nonce="{nonce}" defer></script>
"#,
                    challenge = html_escape(challenge),
                ),
                Some(format!("{}; script-src 'nonce-{nonce}'", pages::PAGE_CSP)),
            )
        }
        Some(Widget::Hosted { service, site_key }) => (
            format!(
                r#"<div class="{class}" data-sitekey="{key}"></div>
<script src="{script}" async defer></script>
"#,
                class = service.widget_class(),
                key = html_escape(site_key),
                script = service.script(),
            ),
            Some(moat_policy::captcha::hosted_page_csp(
                pages::PAGE_CSP,
                *service,
            )),
        ),
    }
}

fn login_page(
    status: StatusCode,
    next: &str,
    user: &str,
    message: Option<Message>,
    offer: &Offer,
    captcha: Option<Widget>,
) -> Response<Body> {
    let message = match message {
        Some(Message::Info(m)) => format!("<p class=\"message\" role=\"status\">{m}</p>"),
        Some(Message::Error(m)) => format!("<p class=\"message error\" role=\"alert\">{m}</p>"),
        None => String::new(),
    };
    let mut buttons = String::new();
    for (name, display, ready) in &offer.providers {
        if *ready {
            buttons.push_str(&format!(
                "<p><a class=\"button provider\" id=\"oidc-{name}\" href=\"{start}?next={next}\">Sign in with {display}</a></p>\n",
                start = crate::namespace::oidc_start_path(name),
                next = html_escape(&utf8_percent_encode(next, NON_ALPHANUMERIC).to_string()),
                display = html_escape(display),
            ));
        } else {
            buttons.push_str(&format!(
                "<p class=\"message error\" id=\"oidc-{name}\">Sign-in with {} is unavailable right now: moat cannot reach it. Try again in a minute.</p>\n",
                html_escape(display)
            ));
        }
    }
    if !offer.system {
        return page(status, shell("Sign in", &format!("{message}\n{buttons}")));
    }
    if !buttons.is_empty() {
        buttons.push_str("<p class=\"or\">or with moat's own account:</p>\n");
    }
    let (captcha, csp) = captcha_markup(captcha.as_ref());
    let body = format!(
        r#"{message}
{buttons}<form method="post" action="{action}">
<input type="hidden" name="next" value="{next}">
<label for="user">User name</label>
<input id="user" name="user" autocomplete="username" required autofocus value="{user}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
{captcha}<button type="submit">Sign in</button>
</form>"#,
        action = login::LOGIN_PATH,
        next = html_escape(next),
        user = html_escape(user),
    );
    let mut resp = page(status, shell("Sign in", &body));
    if let Some(csp) = csp.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    resp
}

/// After signing out of moat: the browser goes on to the provider to end
/// its session there too. A page rather than a redirect, because the
/// sign-out form's `form-action 'self'` would stop a redirect to another
/// site.
fn provider_logout_page(provider: &str, url: &str) -> Response<Body> {
    let body = format!(
        r#"<p class="message" role="status">You are signed out of moat.</p>
<p><a class="button" id="provider-logout" href="{href}">Sign out of {provider} too</a></p>"#,
        href = html_escape(url),
        provider = html_escape(provider),
    );
    let mut resp = page(StatusCode::OK, shell("Signed out", &body));
    // Sent on at once where the browser allows it; the link otherwise.
    if let Ok(v) = HeaderValue::from_str(&format!("0; url={url}")) {
        resp.headers_mut()
            .insert(HeaderName::from_static("refresh"), v);
    }
    resp
}

fn logout_page() -> Response<Body> {
    let body = format!(
        r#"<form method="post" action="{}">
<button type="submit">Sign out</button>
</form>"#,
        login::LOGOUT_PATH
    );
    page(StatusCode::OK, shell("Sign out", &body))
}

/// 429 after repeated failed sign-ins, with `Retry-After`.
pub fn locked(retry_after: Duration) -> Rejection {
    Rejection::client(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many failed sign-ins. Wait a while and try again.",
    )
    .with_header(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after.as_secs().max(1)),
    )
}

/// Another check of the same address or user is under way (one at a time,
/// so parallel guesses cannot outrun the lockout).
pub fn busy() -> Rejection {
    Rejection::client(
        StatusCode::TOO_MANY_REQUESTS,
        "Another sign-in is being checked. Try again in a moment.",
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing;

    fn form(body: &str, origin: &str) -> Request<http_body_util::Full<bytes::Bytes>> {
        Request::post(login::LOGIN_PATH)
            .header("host", "moat.example")
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_owned(),
            )))
            .unwrap()
    }

    async fn answer_of(
        req: Request<http_body_util::Full<bytes::Bytes>>,
        sign_in: &AuthState,
    ) -> Result<Response<Body>, Rejection> {
        let rt = testing::one_app("", "");
        let mut ctx = testing::ctx(&req, "127.0.0.1", true, None);
        match handle(req, &mut ctx, &rt, sign_in).await? {
            Flow::Respond(resp) => Ok(resp),
            Flow::Continue => panic!("moat's pages always answer"),
        }
    }

    #[tokio::test]
    async fn the_login_page_carries_its_own_policy() {
        let config = moat_config::default_config();
        let (_dir, sign_in) = testing::sign_in(&config);
        let req = Request::get(login::LOGIN_PATH)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let resp = answer_of(req, &sign_in).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()[header::CONTENT_SECURITY_POLICY],
            crate::pipeline::pages::PAGE_CSP
        );
    }

    #[tokio::test]
    async fn signing_in_sets_a_session_and_a_wrong_password_does_not() {
        let config = moat_config::default_config();
        let (_dir, sign_in) = testing::sign_in(&config);
        let user = config.security.admin_user.clone();
        let ok = answer_of(
            form(
                &format!("user={user}&password=secret&next=/wiki"),
                "https://moat.example",
            ),
            &sign_in,
        )
        .await
        .unwrap();
        assert_eq!(ok.status(), StatusCode::SEE_OTHER);
        assert_eq!(ok.headers()[header::LOCATION], "/wiki");
        assert!(
            ok.headers()[header::SET_COOKIE]
                .to_str()
                .unwrap()
                .contains("moat_session")
        );
        let wrong = answer_of(
            form(
                &format!("user={user}&password=nope"),
                "https://moat.example",
            ),
            &sign_in,
        )
        .await
        .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(wrong.headers().get(header::SET_COOKIE).is_none());
    }

    #[tokio::test]
    async fn a_cross_origin_form_is_refused_and_sign_out_ends_the_session() {
        let config = moat_config::default_config();
        let (_dir, sign_in) = testing::sign_in(&config);
        let r = answer_of(form("user=a&password=b", "https://evil.example"), &sign_in)
            .await
            .err()
            .expect("refused");
        assert_eq!(r.status, 403);

        let cookie = sign_in.start_session("admin".into(), true).await;
        let pair = cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let req = Request::post(login::LOGOUT_PATH)
            .header("host", "moat.example")
            .header("origin", "https://moat.example")
            .header(header::COOKIE, pair.clone())
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let mut ctx = testing::ctx(&req, "127.0.0.1", true, None);
        let rt = testing::one_app("", "");
        let Ok(Flow::Respond(resp)) = handle(req, &mut ctx, &rt, &sign_in).await else {
            panic!("signed out");
        };
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert!(
            ctx.ended_session.is_some(),
            "the pipeline ends its recordings"
        );
        let mut h = http::HeaderMap::new();
        h.insert(header::COOKIE, pair.parse().unwrap());
        assert!(sign_in.session(&h, true).is_none());
    }
}
