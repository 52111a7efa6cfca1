//! The request pipeline: the ordered stages every request passes through.
//!
//! Request stages take the request (and what earlier stages learned, in
//! [`RequestCtx`]) and either let it continue or refuse it with a
//! [`Rejection`]; response stages edit the response on its way out. The
//! order lives in [`handle`] and nowhere else.

pub mod admin_tcp;
pub mod auth;
pub mod canonical;
pub mod cors;
pub mod csp_nonce;
pub mod csp_report;
pub mod csrf;
pub mod limits;
pub mod login;
pub mod rate_limit;
pub mod record;
pub mod redirect;
pub mod response_headers;
pub mod static_files;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{Request, Response, header};
use hyper::body::Incoming;
use moat_policy::client_ip::{self, ClientIp};

use crate::access_log::{AccessLog, Entry};
use crate::body::{self, Body, Counted};
use crate::error::{Rejection, Side};
use crate::gateway::Shared;
use crate::runtime::{AppKind, AppRuntime, Runtime};

/// What moat knows about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Unique per connection for the life of the process.
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
}

/// What earlier stages learned about a request, for later stages and logs.
pub struct RequestCtx {
    pub client: ClientIp,
    pub tls: bool,
    /// The host the client asked for (Host header, or the HTTP/2 authority).
    pub host: Option<String>,
    pub app: Option<Arc<AppRuntime>>,
    /// The signed-in user, once the auth stage has found one.
    pub user: Option<String>,
    /// CORS headers for the response (apps whose CORS moat manages).
    pub cors: Vec<(http::HeaderName, http::HeaderValue)>,
    /// A key naming the client's session (sign-in, or a visit cookie).
    pub session: Option<String>,
    /// Cookies moat sets on the response (a recorded visit's cookie).
    pub set_cookies: Vec<http::HeaderValue>,
    /// Which client connection the request came on.
    pub conn_id: u64,
    /// For an app that allows encoded slashes: the path as a decoding
    /// upstream reads it (guards check both readings).
    pub decoded_path: Option<String>,
}

impl RequestCtx {
    pub fn proto(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}

/// Runs one request through the pipeline.
pub async fn handle(
    req: Request<Incoming>,
    conn: &ConnInfo,
    shared: &Arc<Shared>,
) -> Response<Body> {
    let runtime = shared.runtime.load_full();
    let log = &shared.access_log;
    let started = Instant::now();
    let time = SystemTime::now();
    // Stage 1, client IP: every later stage and the log see the resolved
    // address, never the raw peer behind a trusted proxy.
    let client = client_ip::resolve(
        conn.peer.ip(),
        req.headers(),
        &runtime.config.security.trusted_proxies,
    );
    let mut ctx = RequestCtx {
        client,
        tls: conn.tls,
        host: request_host(&req),
        app: None,
        user: None,
        cors: Vec::new(),
        session: None,
        set_cookies: Vec::new(),
        conn_id: conn.id,
        decoded_path: None,
    };
    let summary = log.enabled().then(|| Summary::of(&req));

    let response = match request_stages(req, &mut ctx, &runtime, shared).await {
        Ok(resp) => resp,
        Err(rejection) => rescue(rejection, &ctx),
    };
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

/// The request stages, in order. Routing comes before the guards because
/// each guard needs the app's settings; it is a lookup with no effects, so
/// nothing of the app is used or revealed before the guards pass.
async fn request_stages(
    mut req: Request<Incoming>,
    ctx: &mut RequestCtx,
    runtime: &Runtime,
    shared: &Arc<Shared>,
) -> Result<Response<Body>, Rejection> {
    // Limits first: an oversized head is refused before any work is done on it.
    limits::check_head(&req, &runtime.config.server)?;
    // The canonical path next: every decision below, and the upstream,
    // see one spelling of the path (`//`, `.`, `..`, `%61` resolved).
    ctx.decoded_path = canonical::apply(&mut req, ctx.host.as_deref(), runtime)?;
    // moat's own namespace before app routing, so no app can shadow the
    // admin API and no app is reachable through it.
    if admin_tcp::is_admin_path(req.uri().path()) {
        return admin_tcp::handle(req, ctx, runtime, shared).await;
    }
    // moat's login pages, in the same namespace for the same reason.
    if login::is_page(req.uri().path()) {
        return login::handle(req, ctx, runtime, shared).await;
    }
    if req.uri().path().starts_with(csp_report::PREFIX) {
        return csp_report::handle(req, ctx, shared).await;
    }
    // Route: which app; nothing else can be decided without it.
    let app = route(&req, ctx, runtime)?;
    // Rate limits first: a client over its budget costs nothing more.
    if let Err(answer) =
        rate_limit::check(&req, ctx, &app, runtime, rate_limit::Phase::BeforeAuth).await
    {
        return Ok(answer);
    }
    // CORS preflights are answered before auth: browsers send them
    // without credentials.
    if let Err(answer) = cors::request(&req, ctx, &app) {
        return Ok(answer);
    }
    // CSRF before auth, so a forged request is refused whoever's session
    // cookie it carries.
    if let Err(answer) = csrf::check(&req, ctx, &app) {
        return Ok(answer);
    }
    // Auth: the app says whether a login is needed, and nothing of the app
    // (not even its body limit) is revealed before.
    if let Err(answer) = auth::authenticate(&mut req, ctx, &app, runtime, shared).await {
        return Ok(answer);
    }
    // Zones keyed by the user, now that there is one.
    if let Err(answer) =
        rate_limit::check(&req, ctx, &app, runtime, rate_limit::Phase::AfterAuth).await
    {
        return Ok(answer);
    }
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
    // Recording last, so only what reaches the app is recorded; a client
    // faster than the recorder waits for it here.
    record::wait_for_room(&app, &shared.recorder.queue).await;
    let exchange = match record::begin(&mut req, ctx, &app, runtime, shared) {
        Ok(e) => e,
        Err(refused) => return Ok(refused),
    };
    match exchange {
        None => dispatch(req, ctx, &app, shared, None).await,
        Some(ex) => match dispatch(ex.request(req), ctx, &app, shared, Some(&ex)).await {
            Ok(resp) => Ok(ex.response(resp)),
            Err(rejection) => {
                ex.failed(rejection.public);
                Err(rejection)
            }
        },
    }
}

async fn dispatch<B>(
    req: Request<B>,
    ctx: &RequestCtx,
    app: &AppRuntime,
    shared: &Arc<Shared>,
    recording: Option<&record::Exchange>,
) -> Result<Response<Body>, Rejection>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::body::BoxError>,
{
    match &app.kind {
        AppKind::Upstream(up) => up.forward(req, ctx, app, shared, recording).await,
        AppKind::Static(st) => {
            // A static app reads only the head; holding the body across
            // the await would need it to be Sync.
            let (parts, _) = req.into_parts();
            st.serve(&Request::from_parts(parts, ()), &app.prefix).await
        }
    }
}

fn route(
    req: &Request<Incoming>,
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
fn rescue(rejection: Rejection, ctx: &RequestCtx) -> Response<Body> {
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

/// The host the client asked for: HTTP/2 carries it in the URI authority,
/// HTTP/1.1 in the Host header.
pub fn request_host<B>(req: &Request<B>) -> Option<String> {
    req.uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
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
