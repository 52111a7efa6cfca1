//! Stage: app authentication. Runs after routing (the app decides whether
//! a login is needed) and before anything reaches the app.
//!
//! `auth = "none"`: everyone passes. `auth = "cert"`: the user the
//! client-certificate stage found passes. Sign-in sources (`system`,
//! `oidc:NAME`): a live session cookie from one of the app's sources, or
//! HTTP Basic credentials over TLS for the system account (when
//! `auth.basic_auth`), lets the request through with its user in
//! [`RequestCtx::user`] once the provider's and the app's allow lists
//! admit it (a 403 page naming the account otherwise, never a login
//! loop); a browser navigation without either is sent to the login page,
//! anything else gets 401 with a challenge.
//!
//! SECURITY: moat's session cookie is removed from every request, and
//! Basic credentials moat consumed are removed too, so neither reaches an
//! upstream.

use http::{HeaderValue, Request, Response, StatusCode, header};
use moat_config::{AppAuth, Config};
use moat_policy::access::{self, Identity, Refusal, Rules, Source};
use moat_policy::login::{self, Challenge};

use crate::auth::{AuthState, SignIn, SignedIn, strip_session_cookie};
use crate::body::{self, Body};
use crate::error::Rejection;
use crate::oidc::Freshness;
use crate::pipeline::pages;
use crate::pipeline::{Flow, Step};
use crate::request::RequestCtx;
use crate::runtime::AppRuntime;

/// Lets the request continue with its user, sends a browser to the login
/// page, or refuses it.
pub async fn authenticate<B>(
    req: &mut Request<B>,
    ctx: &mut RequestCtx,
    app: &AppRuntime,
    config: &Config,
    sign_in: &AuthState,
) -> Step {
    let sources = app.auth.sources();
    let session = if sources.is_empty() {
        None
    } else {
        sign_in.session(req.headers(), ctx.tls)
    };
    strip_session_cookie(req.headers_mut());
    match app.auth {
        AppAuth::None => return Ok(Flow::Continue),
        // The client-certificate stage named the user, or refused.
        AppAuth::Cert if ctx.user.is_some() => return Ok(Flow::Continue),
        AppAuth::Cert => {
            return Err(Rejection::client(
                StatusCode::FORBIDDEN,
                "This app needs a valid client certificate.",
            ));
        }
        AppAuth::SignIn(_) => {}
    }
    // A session through a source this app does not accept is no sign-in
    // here: the person is offered the app's sources.
    if let Some(s) = session.filter(|s| sources.contains(&s.identity.source))
        && let Some(identity) = current(s.clone(), sign_in).await
    {
        let provider_rules = match &identity.source {
            Source::Oidc(name) => config.auth.provider(name).map(|p| &p.rules),
            Source::System => None,
        };
        let empty = Rules::default();
        return match access::decide(&identity, provider_rules.unwrap_or(&empty), &app.access) {
            Ok(()) => {
                ctx.source = Some(identity.source.to_string());
                ctx.user = Some(identity.user);
                ctx.email = identity.email;
                ctx.groups = identity.groups;
                ctx.session = Some(s.key);
                Ok(Flow::Continue)
            }
            Err(refusal) => {
                let why = match refusal {
                    Refusal::Provider => "The sign-in provider no longer admits this account.",
                    Refusal::App => "This app is open to some users and groups only.",
                };
                tracing::info!(app = app.name, user = identity.user, source = %identity.source, groups = ?identity.groups, "refused: the app's allowed_users, allowed_groups and allowed_domains leave this account out");
                Ok(Flow::Respond(pages::not_allowed(&identity, &app.name, why)))
            }
        };
    }
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .filter(|v| v.as_bytes().len() > 6 && v.as_bytes()[..6].eq_ignore_ascii_case(b"basic "))
        .cloned();
    let basic_ok = ctx.tls && config.auth.basic_auth && sources.contains(&Source::System);
    if let Some(authorization) = basic.filter(|_| basic_ok) {
        // Basic carries no captcha: an address that must solve one signs
        // in through the login page.
        if sign_in.captcha_required(ctx.client.ip) {
            tracing::warn!(client = %ctx.client.ip, "HTTP Basic refused: this address must pass the login page's captcha");
            return Err(unauthorized(
                false,
                "too many failed sign-ins from this address; sign in through the login page",
            ));
        }
        let verdict = sign_in
            .basic_user(
                &authorization,
                ctx.client.ip,
                &config.security,
                &config.auth,
                sign_in.admin_password(),
            )
            .await;
        return match verdict {
            SignIn::Accepted(user, key) => {
                req.headers_mut().remove(header::AUTHORIZATION);
                ctx.source = Some("system".into());
                ctx.user = Some(user);
                ctx.session = Some(key);
                Ok(Flow::Continue)
            }
            SignIn::Refused => Err(unauthorized(basic_ok, "wrong user name or password")),
            SignIn::Locked(retry) => Err(super::login::locked(retry)),
            SignIn::Busy => Err(super::login::busy()),
        };
    }
    // Only providers, none of them reachable: nobody can sign in now, and
    // the page says so rather than offering buttons that fail.
    let providers: Vec<String> = sources
        .iter()
        .filter_map(|s| match s {
            Source::Oidc(n) => Some(n.clone()),
            Source::System => None,
        })
        .collect();
    if providers.len() == sources.len() && !providers.iter().any(|p| sign_in.oidc.is_ready(p)) {
        tracing::warn!(app = app.name, providers = ?providers, "sign-in unavailable: no provider of the app is discovered yet");
        return Ok(Flow::Respond(pages::sign_in_unavailable(&providers)));
    }
    match login::challenge(req.method(), req.headers()) {
        Challenge::LoginPage => {
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            Ok(Flow::Respond(redirect(&login::login_url(target))))
        }
        Challenge::Unauthorized => Err(unauthorized(basic_ok, "sign-in required")),
    }
}

/// The session's identity now: a provider's session is checked against
/// its tokens (refreshed when they ran out, ended when the provider no
/// longer vouches for the person).
pub(crate) async fn current(s: SignedIn, sign_in: &AuthState) -> Option<Identity> {
    if s.identity.source == Source::System {
        return Some(s.identity);
    }
    match sign_in.oidc.check(&s.id).await {
        Freshness::Fresh => Some(s.identity),
        Freshness::Renewed(identity, subject, renew_at) => {
            tracing::debug!(user = identity.user, source = %identity.source, "session refreshed at its provider");
            sign_in
                .update_session(&s.id, identity.clone(), &subject, renew_at)
                .await;
            Some(identity)
        }
        Freshness::Ended(why) => {
            tracing::info!(user = s.identity.user, source = %s.identity.source, "session ended: {why}");
            sign_in.drop_session(&s.id).await;
            None
        }
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
fn unauthorized(basic: bool, why: &str) -> Rejection {
    let challenge = if basic {
        "Basic realm=\"moat\", charset=\"UTF-8\""
    } else {
        "MoatLogin realm=\"moat\", login=\"/_moat/login\""
    };
    Rejection::client(
        StatusCode::UNAUTHORIZED,
        format!("{why}: sign in at /_moat/login"),
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing;

    #[tokio::test]
    async fn a_browser_without_a_session_is_sent_to_the_login_page() {
        let rt = testing::one_app("", "auth = \"system\"");
        let app = testing::app(&rt, "app");
        let (_dir, sign_in) = testing::sign_in(&rt.config);
        let mut req = Request::get("/docs?x=1")
            .header("accept", "text/html")
            .header("sec-fetch-mode", "navigate")
            .body(())
            .unwrap();
        let mut ctx = testing::ctx(&req, "127.0.0.1", true, Some(app.clone()));
        match authenticate(&mut req, &mut ctx, &app, &rt.config, &sign_in).await {
            Ok(Flow::Respond(resp)) => {
                assert_eq!(resp.status(), StatusCode::SEE_OTHER);
                let to = resp.headers()[header::LOCATION].to_str().unwrap();
                assert!(to.starts_with("/_moat/login?next="), "{to}");
            }
            _ => panic!("redirected"),
        }
    }

    #[tokio::test]
    async fn an_api_client_gets_401_with_a_challenge_and_a_session_passes() {
        let rt = testing::one_app("", "auth = \"system\"");
        let app = testing::app(&rt, "app");
        let (_dir, sign_in) = testing::sign_in(&rt.config);
        let mut req = Request::get("/api").body(()).unwrap();
        let mut ctx = testing::ctx(&req, "127.0.0.1", true, Some(app.clone()));
        let r = authenticate(&mut req, &mut ctx, &app, &rt.config, &sign_in)
            .await
            .err()
            .expect("refused");
        assert_eq!(r.status, 401);
        assert!(r.headers.iter().any(|(n, _)| n == header::WWW_AUTHENTICATE));

        let cookie = sign_in.start_session("admin".into(), true).await;
        let pair = cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let mut req = Request::get("/api")
            .header(header::COOKIE, format!("{pair}; theme=dark"))
            .body(())
            .unwrap();
        let mut ctx = testing::ctx(&req, "127.0.0.1", true, Some(app.clone()));
        assert!(matches!(
            authenticate(&mut req, &mut ctx, &app, &rt.config, &sign_in).await,
            Ok(Flow::Continue)
        ));
        assert_eq!(ctx.user.as_deref(), Some("admin"));
        let left = req.headers()[header::COOKIE].to_str().unwrap();
        assert!(
            !left.contains("moat_session"),
            "the session cookie never reaches the app: {left}"
        );
    }

    #[tokio::test]
    async fn open_apps_pass_without_a_user() {
        let rt = testing::one_app("", "auth = \"none\"");
        let app = testing::app(&rt, "app");
        let (_dir, sign_in) = testing::sign_in(&rt.config);
        let mut req = Request::get("/").body(()).unwrap();
        let mut ctx = testing::ctx(&req, "127.0.0.1", false, Some(app.clone()));
        assert!(matches!(
            authenticate(&mut req, &mut ctx, &app, &rt.config, &sign_in).await,
            Ok(Flow::Continue)
        ));
        assert_eq!(ctx.user, None);
    }
}
