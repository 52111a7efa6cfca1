//! Stage: sign-in through an OpenID Connect provider, in moat's namespace.
//!
//! - `GET /_moat/oidc/NAME/start?next=PATH` sends the browser to the
//!   provider (authorization code flow, PKCE S256, fresh `state` and
//!   `nonce`), setting the cookie that binds the login to this browser.
//! - `GET /_moat/oidc/NAME/callback?code=…&state=…` completes it: the
//!   login under way is used up, the code exchanged, the ID token checked,
//!   the provider's own rules applied, and a session started.
//!
//! The redirect URI is the callback on the host the login began on, so
//! the session cookie is set where the person is going; register
//! `https://HOST/_moat/oidc/NAME/callback` for each host at the provider.
//!
//! Every refusal is logged with the provider's name and never starts a
//! session.

use http::{HeaderValue, Request, Response, StatusCode, header};
use moat_config::Config;
use moat_policy::login::{self, html_escape};

use crate::auth::AuthState;
use crate::body::Body;
use crate::error::Rejection;
use crate::namespace;
use crate::oidc::{BINDING_COOKIE, BINDING_COOKIE_PLAIN, BeginError, CallbackError};
use crate::pipeline::pages::{self, page, shell};
use crate::pipeline::{Flow, Step};
use crate::request::RequestCtx;

/// Whether the path is one of this stage's.
pub fn is_page(path: &str) -> bool {
    path.starts_with(namespace::OIDC_PREFIX)
}

pub async fn handle<B>(
    req: &Request<B>,
    ctx: &mut RequestCtx,
    config: &Config,
    sign_in: &AuthState,
) -> Step {
    if !matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
        return Err(Rejection::client(
            StatusCode::METHOD_NOT_ALLOWED,
            "This method is not allowed here.",
        ));
    }
    let rest = &req.uri().path()[namespace::OIDC_PREFIX.len()..];
    let Some((name, action)) = rest.split_once('/') else {
        return Err(Rejection::not_found());
    };
    if config.auth.provider(name).is_none() {
        return Err(Rejection::not_found());
    }
    match action {
        "start" => start(req, ctx, name, sign_in).map(Flow::Respond),
        "callback" => callback(req, ctx, name, config, sign_in)
            .await
            .map(Flow::Respond),
        _ => Err(Rejection::not_found()),
    }
}

fn binding_cookie_name(tls: bool) -> &'static str {
    if tls {
        BINDING_COOKIE
    } else {
        BINDING_COOKIE_PLAIN
    }
}

/// The callback URL on the host this request came to.
fn redirect_uri(ctx: &RequestCtx, name: &str) -> Result<String, Rejection> {
    let host = ctx
        .host
        .as_deref()
        .ok_or_else(|| Rejection::client(StatusCode::BAD_REQUEST, "The request names no host."))?;
    Ok(format!(
        "{}://{host}{}",
        ctx.proto(),
        namespace::oidc_callback_path(name)
    ))
}

fn start<B>(
    req: &Request<B>,
    ctx: &RequestCtx,
    name: &str,
    sign_in: &AuthState,
) -> Result<Response<Body>, Rejection> {
    let next = login::safe_next(login::query_param(req.uri().query(), "next").as_deref());
    let redirect = redirect_uri(ctx, name)?;
    match sign_in.oidc.begin(name, &redirect, &next) {
        Ok((url, binding)) => {
            let mut resp = pages::see_other(&url);
            let secure = if ctx.tls { "; Secure" } else { "" };
            // Lax: the provider's redirect back is a top-level GET from
            // another site, which must carry it.
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{}={binding}; Path=/; HttpOnly; SameSite=Lax; Max-Age=600{secure}",
                binding_cookie_name(ctx.tls)
            )) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            Ok(resp)
        }
        Err(BeginError::UnknownProvider) => Err(Rejection::not_found()),
        Err(BeginError::Unavailable(why)) => {
            tracing::warn!(provider = name, client = %ctx.client.ip, "sign-in not begun: the provider is unavailable ({})", why.as_deref().unwrap_or("not discovered yet"));
            Ok(pages::sign_in_unavailable(&[name.to_owned()]))
        }
    }
}

async fn callback<B>(
    req: &Request<B>,
    ctx: &mut RequestCtx,
    name: &str,
    config: &Config,
    sign_in: &AuthState,
) -> Result<Response<Body>, Rejection> {
    let binding = login::cookie(req.headers(), binding_cookie_name(ctx.tls));
    let (tokens, next) = match sign_in.oidc.finish(name, req.uri().query(), binding).await {
        Ok(done) => done,
        Err(e) => return Ok(refused(ctx, name, e)),
    };
    let identity = tokens.identity.clone();
    // The provider's own rules first: someone it does not admit gets no
    // session at all. An app's narrower rules are applied when they reach
    // it (with a 403 that names the account, not a login loop).
    let provider_rules = config
        .auth
        .provider(name)
        .map(|p| p.rules.clone())
        .unwrap_or_default();
    // A provider's user named like the system account would pass for it
    // with every app that trusts X-Moat-User alone.
    if identity.user == config.security.admin_user {
        tracing::warn!(provider = name, client = %ctx.client.ip, user = identity.user, "sign-in refused: the provider names the account like moat's system account (security.admin_user)");
        return Ok(refused(
            ctx,
            name,
            CallbackError::Invalid("the account's name is the system account's".into()),
        ));
    }
    if !provider_rules.allow(&identity) {
        tracing::warn!(provider = name, client = %ctx.client.ip, user = identity.user, groups = ?identity.groups, "sign-in refused: the provider's allowed_users, allowed_groups and allowed_domains leave this account out");
        return Ok(page(
            StatusCode::FORBIDDEN,
            shell(
                "Not allowed",
                &format!(
                    r#"<p class="message error" role="alert">The account {} signed in at {}, but this server does not admit it.</p>
<p>Ask an administrator to add the account, or <a href="{}">sign in with another one</a>.</p>"#,
                    html_escape(&identity.user),
                    html_escape(name),
                    login::LOGIN_PATH
                ),
            ),
        ));
    }
    tracing::info!(provider = name, client = %ctx.client.ip, user = identity.user, "signed in");
    let (cookie, _) = sign_in
        .start_identity_session(identity, Some(&tokens), ctx.tls)
        .await;
    let mut resp = pages::see_other(&next);
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    // The binding has done its work.
    let secure = if ctx.tls { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
        binding_cookie_name(ctx.tls)
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// A callback that signs nobody in: a page saying what to do, and the
/// reason in the log.
fn refused(ctx: &RequestCtx, name: &str, e: CallbackError) -> Response<Body> {
    let (status, text) = match &e {
        CallbackError::UnknownState => {
            tracing::warn!(provider = name, client = %ctx.client.ip, "sign-in refused: the answer matches no sign-in begun in this browser (replayed, expired, or from another browser)");
            (
                StatusCode::BAD_REQUEST,
                "This sign-in link has expired or was already used.",
            )
        }
        CallbackError::Provider(why) => {
            tracing::warn!(provider = name, client = %ctx.client.ip, "sign-in refused by the provider: {why}");
            (
                StatusCode::FORBIDDEN,
                "The provider did not sign you in (it refused, or you cancelled).",
            )
        }
        CallbackError::Invalid(why) => {
            tracing::warn!(provider = name, client = %ctx.client.ip, "sign-in refused: {why}");
            (
                StatusCode::BAD_GATEWAY,
                "The provider's answer failed moat's checks, so nobody was signed in.",
            )
        }
    };
    page(
        status,
        shell(
            "Sign-in failed",
            &format!(
                r#"<p class="message error" role="alert">{text}</p>
<p><a href="{}">Start again</a></p>"#,
                login::LOGIN_PATH
            ),
        ),
    )
}
