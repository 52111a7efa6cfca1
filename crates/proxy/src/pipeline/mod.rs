//! The request pipeline: the ordered stages every request passes through.
//!
//! # The stage contract
//! A request stage reads the request (by reference; mutably if it
//! rewrites it, by value only if it consumes the body and so always
//! answers), what earlier stages learned ([`RequestCtx`], which it may add
//! to), the app's runtime once routed, and the state it owns: never the
//! gateway. It returns a [`Step`]:
//! - `Ok(Flow::Continue)`: the next stage runs;
//! - `Ok(Flow::Respond(resp))`: a normal answer (a CORS preflight, a
//!   redirect to the login page, moat's own pages);
//! - `Err(Rejection)`: a refusal; every one becomes its page in the one
//!   [`rescue`], which logs by side (client, upstream, moat).
//!
//! Response stages edit the response on its way out. The order lives in
//! [`Pipeline::handle`] and nowhere else, with the reason for each place.

pub mod admin_tcp;
pub mod auth;
pub mod canonical;
pub mod client_cert;
pub mod cors;
pub mod csp_nonce;
pub mod csp_report;
pub mod csrf;
pub mod limits;
pub mod login;
pub mod oidc;
pub mod pages;
pub mod portal;
pub mod rate_limit;
pub mod record;
pub mod redirect;
pub mod response_headers;
pub mod static_files;
#[cfg(test)]
pub(crate) mod testing;
pub mod upstream;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{Request, Response, header};
use hyper::body::Incoming;
use moat_policy::client_ip;

use crate::access_log::{AccessLog, Entry};
use crate::auth::AuthState;
use crate::body::{self, Body, Counted};
use crate::error::{Rejection, Side};
use crate::recorder::Recorder;
use crate::runtime::{AppKind, AppRuntime, Current, Runtime};

pub use crate::request::{ConnInfo, RequestCtx, request_host};

/// What a request stage decided, when it did not refuse.
pub enum Flow {
    /// On to the next stage.
    Continue,
    /// Answered here; no later stage runs.
    Respond(Response<Body>),
}

/// A request stage's result.
pub type Step = Result<Flow, Rejection>;

/// Runs a stage: returns its answer, or goes on.
macro_rules! stage {
    ($e:expr) => {
        match $e? {
            Flow::Continue => {}
            Flow::Respond(resp) => return Ok(resp),
        }
    };
}

/// The state the stages own, each part handed only to its stages.
pub struct Pipeline {
    /// The config version being served (read once per request).
    pub runtime: Current,
    pub access_log: AccessLog,
    /// Sign-in sessions and password checks: the auth and login stages,
    /// identity tokens toward upstreams, the admin route's password.
    pub sign_in: Arc<AuthState>,
    /// The record stage's recorder.
    pub recorder: Arc<Recorder>,
    /// The CSP report endpoint's limits and store.
    pub reports: csp_report::Reports,
    /// The admin API over HTTPS (its throttle and the injected API).
    pub admin: admin_tcp::AdminRoute,
    /// The admin portal (its pages and its sessions' last use).
    pub portal: portal::PortalRoute,
}

impl Pipeline {
    /// Runs one request through the pipeline.
    pub async fn handle(&self, req: Request<Incoming>, conn: &ConnInfo) -> Response<Body> {
        let runtime = self.runtime.load();
        let log = &self.access_log;
        let started = Instant::now();
        let time = SystemTime::now();
        // Client IP first: every later stage and the log see the resolved
        // address, never the raw peer behind a trusted proxy.
        let client = client_ip::resolve(
            conn.peer.ip(),
            req.headers(),
            &runtime.config.security.trusted_proxies,
        );
        let mut ctx = RequestCtx::new(&req, conn, client);
        let summary = log.enabled().then(|| Summary::of(&req));

        let response = match self.request_stages(req, &mut ctx, &runtime).await {
            Ok(resp) => resp,
            Err(rejection) => rescue(rejection, &ctx),
        };
        // A sign-out ends the session's recordings with it.
        if let Some(key) = ctx.ended_session.take() {
            self.recorder
                .end_session(&record::signed_in(&key), "logout");
        }
        let mut response = response_headers::apply(response, &ctx, &runtime);
        for cookie in ctx.set_cookies.drain(..) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        if let Some(app) = &ctx.app {
            cors::response(&mut response, &ctx, app);
        }
        // After the headers: a nonce replaces the CSP value set there.
        let response = match &ctx.app {
            Some(app) => csp_nonce::apply(response, &app.response_policy),
            None => response,
        };

        match summary {
            Some(s) => s.log_on_completion(response, &ctx, log.clone(), started, time),
            None => response,
        }
    }

    /// The request stages, in order. Routing comes before the guards
    /// because each guard needs the app's settings; it is a lookup with no
    /// effects, so nothing of the app is used or revealed before the guards
    /// pass.
    async fn request_stages(
        &self,
        mut req: Request<Incoming>,
        ctx: &mut RequestCtx,
        runtime: &Runtime,
    ) -> Result<Response<Body>, Rejection> {
        // Limits first: an oversized head is refused before any work is
        // done on it.
        stage!(limits::check_head(&req, &runtime.config.server));
        // The canonical path next: every decision below, and the
        // upstream, see one spelling of the path (`//`, `.`, `..`, `%61`
        // resolved).
        stage!(canonical::apply(&mut req, ctx, runtime));
        // moat's own namespace before app routing, so no app can shadow
        // the admin API and no app is reachable through it.
        let path = req.uri().path();
        if crate::namespace::is_admin_api(path) {
            stage!(
                admin_tcp::handle(
                    req,
                    ctx,
                    &runtime.config.security,
                    &self.admin,
                    &self.sign_in
                )
                .await
            );
            return Err(Rejection::not_found());
        }
        // moat's login pages, in the same namespace for the same reason.
        if login::is_page(path) {
            stage!(login::handle(req, ctx, runtime, &self.sign_in).await);
            return Err(Rejection::not_found());
        }
        // Sign-in through an OpenID provider: the same namespace.
        if oidc::is_page(path) {
            stage!(oidc::handle(&req, ctx, &runtime.config, &self.sign_in).await);
            return Err(Rejection::not_found());
        }
        if path.starts_with(crate::namespace::CSP_REPORT_PREFIX) {
            stage!(csp_report::handle(req, ctx, runtime, &self.reports).await);
            return Err(Rejection::not_found());
        }
        // The admin portal: the same namespace, and every other path of
        // its own host.
        if portal::is_page(path)
            || (portal::is_portal_host(&runtime.config, ctx)
                && !path.starts_with(crate::namespace::NAMESPACE))
        {
            stage!(portal::handle(req, ctx, &runtime.config, &self.portal, &self.sign_in).await);
            return Err(Rejection::not_found());
        }
        // No app yet: the root leads to the portal, whose overview says
        // how to add one.
        if runtime.apps.is_empty()
            && path == "/"
            && matches!(*req.method(), http::Method::GET | http::Method::HEAD)
            && self.portal.serves(&runtime.config, ctx)
        {
            return Ok(pages::see_other(&format!("{}/", crate::namespace::PORTAL)));
        }
        // Route: which app; nothing else can be decided without it.
        let app = route(&req, ctx, runtime)?;
        // Client certificates right after: an app that requires one
        // refuses anyone without it before anything else of it runs (the
        // verdict is cached per connection, so this costs a lookup).
        stage!(client_cert::check(
            ctx,
            &app,
            rustls::pki_types::UnixTime::now()
        ));
        // Rate limits first: a client over its budget costs nothing more.
        stage!(
            rate_limit::check(
                &req,
                ctx,
                &app,
                &runtime.config.rate_limit,
                rate_limit::Phase::BeforeAuth
            )
            .await
        );
        // CORS preflights are answered before auth: browsers send them
        // without credentials.
        stage!(cors::request(&req, ctx, &app));
        // CSRF before auth, so a forged request is refused whoever's
        // session cookie it carries.
        stage!(csrf::check(&req, ctx, &app));
        // Auth: the app says whether a login is needed, and nothing of the
        // app (not even its body limit) is revealed before.
        stage!(auth::authenticate(&mut req, ctx, &app, &runtime.config, &self.sign_in).await);
        // Zones keyed by the user, now that there is one.
        stage!(
            rate_limit::check(
                &req,
                ctx,
                &app,
                &runtime.config.rate_limit,
                rate_limit::Phase::AfterAuth
            )
            .await
        );
        // A nonce app's HTML is rewritten as it streams, which compressed
        // bodies do not allow: ask for them plain.
        if app.response_policy.nonce {
            req.headers_mut().remove(http::header::ACCEPT_ENCODING);
        }
        // The body limit needs the app's setting.
        if let Err(too_large) = limits::check_declared_body(&req, &app) {
            let declared = limits::declared_length(&req);
            limits::discard_body(req.into_body(), declared).await;
            return Err(too_large);
        }
        // Recording last, so only what reaches the app is recorded; a
        // client faster than the recorder waits for it here.
        record::wait_for_room(&app, &self.recorder.queue).await;
        let exchange = record::begin(&mut req, ctx, &app, runtime, &self.recorder)?;
        match exchange {
            None => self.dispatch(req, ctx, &app, None).await,
            Some(ex) => match self.dispatch(ex.request(req), ctx, &app, Some(&ex)).await {
                Ok(resp) => Ok(ex.response(resp)),
                Err(rejection) => {
                    ex.failed(&rejection.public);
                    Err(rejection)
                }
            },
        }
    }

    /// The app: its upstream, or its bundle folder.
    async fn dispatch<B>(
        &self,
        req: Request<B>,
        ctx: &RequestCtx,
        app: &AppRuntime,
        recording: Option<&crate::tap::Exchange>,
    ) -> Result<Response<Body>, Rejection>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<crate::body::BoxError>,
    {
        match &app.kind {
            AppKind::Upstream(up) => up.forward(req, ctx, app, &self.sign_in, recording).await,
            AppKind::Static(st) => {
                // A static app reads only the head; holding the body across
                // the await would need it to be Sync.
                let (parts, _) = req.into_parts();
                st.serve(&Request::from_parts(parts, ()), &app.prefix).await
            }
        }
    }
}

fn route<B>(
    req: &Request<B>,
    ctx: &mut RequestCtx,
    runtime: &Runtime,
) -> Result<Arc<AppRuntime>, Rejection> {
    let index = runtime
        .router
        .find(ctx.host.as_deref(), req.uri().path())
        .ok_or_else(Rejection::not_found)?;
    let app = runtime.apps[index].clone();
    ctx.app = Some(app.clone());
    Ok(app)
}

/// The one place a refusal becomes a response; failures that are not the
/// client's are logged with the app name.
pub fn rescue(rejection: Rejection, ctx: &RequestCtx) -> Response<Body> {
    let app = ctx.app.as_ref().map(|a| a.name.as_str()).unwrap_or("-");
    match rejection.side {
        Side::Upstream => {
            // An upstream that is down fails every request: one line per
            // app every few seconds, with the count, not one per request.
            crate::log_limit::warn_every(
                "upstream",
                app,
                std::time::Duration::from_secs(5),
                |suppressed| tracing::warn!(app, client = %ctx.client.ip, status = rejection.status.as_u16(), suppressed, "upstream failed: {}", rejection.detail),
            )
        }
        Side::Internal => {
            tracing::error!(app, client = %ctx.client.ip, "internal error: {}", rejection.detail)
        }
        Side::Client => {
            tracing::debug!(app, client = %ctx.client.ip, status = rejection.status.as_u16(), "refused: {}", rejection.public)
        }
    }
    rejection.into_response()
}

/// The parts of the request the access log needs, taken before the request
/// is consumed.
struct Summary {
    method: String,
    path: String,
    proto: &'static str,
    user_agent: Option<String>,
    referer: Option<String>,
}

impl Summary {
    fn of<B>(req: &Request<B>) -> Self {
        let text = |name| {
            req.headers()
                .get(name)
                .and_then(|v: &http::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        Summary {
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
            proto: match req.version() {
                http::Version::HTTP_2 => "HTTP/2.0",
                http::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            user_agent: text(header::USER_AGENT),
            referer: text(header::REFERER),
        }
    }

    /// Wraps the body so the line is written when the body is done, with
    /// the bytes actually sent and the full duration.
    fn log_on_completion(
        self,
        response: Response<Body>,
        ctx: &RequestCtx,
        log: AccessLog,
        started: Instant,
        time: SystemTime,
    ) -> Response<Body> {
        let status = response.status().as_u16();
        let client_ip = ctx.client.ip;
        let app = ctx.app.as_ref().map(|a| a.name.clone());
        let host = ctx.host.clone();
        let (parts, inner) = response.into_parts();
        let counted = Counted::new(inner, move |bytes| {
            log.log(&Entry {
                time,
                client_ip,
                app,
                method: self.method,
                path: self.path,
                proto: self.proto,
                host,
                status,
                bytes,
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                user_agent: self.user_agent,
                referer: self.referer,
            })
        });
        Response::from_parts(parts, body::boxed(counted))
    }
}
