//! Accept loops and per-connection serving.
//!
//! The accept loop ([`accept_loop`]) owns the listening socket and the
//! connection cap; each accepted connection is served on its own task
//! ([`serve_connection`]), and errors from one connection are logged there,
//! never passed up.
//!
//! One file (about 500 lines) because admission, the handshake and the
//! connection's idle watchdog are one connection's life in order; the
//! caps' bookkeeping itself is in `connections`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::net::IpAddr;

use http::{Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::LazyConfigAcceptor;

use crate::access_log::{AccessLog, Entry};
use crate::body::{self, Body};
use crate::connections::{ConnHold, ConnPermit, Connections, Guarded, PerClient, Pool};
use crate::pipeline::{self, Pipeline};
use crate::request::ConnInfo;
use crate::runtime::Current;
use crate::tls::TlsState;
use crate::workers::Workers;

/// What a listener does with requests.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    /// Serve the apps, over TLS or not.
    Apps { tls: bool },
    /// Plain HTTP that redirects every request to HTTPS on this port.
    RedirectToHttps { https_port: u16 },
}

impl Role {
    /// The name the status shows.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Apps { tls: true } => "https",
            Role::Apps { tls: false } => "http",
            Role::RedirectToHttps { .. } => "http-redirect",
        }
    }
}

/// Connection state shared by the listeners: the registry of open
/// connections and the per-client counts.
#[derive(Default)]
pub struct ConnectionState {
    pub registry: Arc<Connections>,
    /// Open connections per client address on the apps listeners.
    apps_clients: PerClient,
    /// Open connections per client address on the redirect listener.
    redirect_clients: PerClient,
    /// Requests in flight per client address (all connections and streams).
    requests: PerClient,
    /// Client connections the open-file limit allows (with a reserve);
    /// `server.max_connections` above it is lowered to it.
    fd_cap: std::sync::atomic::AtomicUsize,
}

impl ConnectionState {
    /// Raises the open-file limit and sets the connection cap it allows.
    pub fn fit_to_descriptors(&self, max_connections: usize) {
        match crate::connections::raise_nofile_limit() {
            Ok(nofile) => {
                let cap = crate::connections::connections_for_descriptors(nofile);
                if cap < max_connections {
                    tracing::warn!(
                        open_file_limit = nofile,
                        "server.max_connections ({max_connections}) needs more descriptors than the open-file limit leaves; at most {cap} client connections are accepted (raise the hard limit, e.g. LimitNOFILE= in systemd)"
                    );
                }
                self.fd_cap.store(cap, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => tracing::warn!("cannot read the open-file limit: {e}"),
        }
    }

    fn fd_cap(&self) -> usize {
        match self.fd_cap.load(std::sync::atomic::Ordering::Relaxed) {
            0 => usize::MAX,
            n => n,
        }
    }
}

/// What the listeners share: the served runtime (for the connection
/// settings), TLS, the connection caps, the workers, and the pipeline
/// requests go to.
pub struct Listening {
    pub runtime: Current,
    pub tls: Option<Arc<TlsState>>,
    pub connections: ConnectionState,
    pub workers: Arc<Workers>,
    pub pipeline: Arc<Pipeline>,
    /// The redirect listener's requests are logged here.
    pub access_log: AccessLog,
}

impl Listening {
    fn log_redirect<B>(&self, req: &http::Request<B>, conn: &ConnInfo, status: StatusCode) {
        if !self.access_log.enabled() {
            return;
        }
        self.access_log.log(&Entry {
            time: std::time::SystemTime::now(),
            client_ip: moat_policy::client_ip::canonical(conn.peer.ip()),
            app: None,
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
            proto: "HTTP/1.1",
            host: crate::request::request_host(req),
            status: status.as_u16(),
            bytes: 0,
            duration_ms: 0.0,
            user_agent: None,
            referer: None,
        });
    }
}

/// Accepts connections until `shutdown` turns true.
///
/// # Errors
/// Accept errors (such as running out of file descriptors) are logged and
/// retried after a pause that doubles while they repeat (up to a second),
/// rather than ending the loop: a listener that stops accepting takes the
/// whole gateway down with it, and one that retries at once spins.
pub async fn accept_loop(
    listener: TcpListener,
    role: Role,
    shared: Arc<Listening>,
    mut shutdown: watch::Receiver<bool>,
) {
    let local = listener
        .local_addr()
        .expect("bound listener has an address");
    let mut backoff = Duration::from_millis(5);
    loop {
        let (stream, peer) = tokio::select! {
            res = listener.accept() => match res {
                Ok(pair) => {
                    backoff = Duration::from_millis(5);
                    pair
                }
                Err(e) => {
                    crate::log_limit::warn_every(
                        "accept",
                        "",
                        Duration::from_secs(5),
                        |suppressed| tracing::error!(listener = %local, suppressed, "accept failed: {e}; retrying in {backoff:?}"),
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Some(permit) = admit(&shared, role, peer) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = ConnInfo {
            id: permit.slot.id(),
            peer,
            local,
            tls: matches!(role, Role::Apps { tls: true }),
            client_cert: None,
            client_cert_asked: None,
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        // Hand the socket to a worker: it is re-registered with that
        // worker's reactor, so all its I/O is woken on the worker's thread.
        let std_stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%peer, "cannot hand the connection to a worker: {e}");
                continue;
            }
        };
        let workers = shared.workers.clone();
        workers.spawn(move || async move {
            let Ok(stream) = TcpStream::from_std(std_stream) else {
                return;
            };
            if conn.tls {
                serve_tls(stream, conn, role, shared, shutdown, permit).await
            } else {
                serve_connection(TokioIo::new(stream), conn, role, shared, shutdown, permit).await
            }
        });
    }
}

static NEXT_CONN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The caps a new connection must pass, per client first (so one address
/// cannot take the pool), then the listener's pool.
fn admit(shared: &Listening, role: Role, peer: SocketAddr) -> Option<ConnPermit> {
    let runtime = shared.runtime.peek();
    let config = &runtime.config;
    let state = &shared.connections;
    let ip = moat_policy::client_ip::canonical(peer.ip());
    let (pool, cap, clients, per_client, keys) = match role {
        Role::Apps { .. } => (
            Pool::Apps,
            config.server.max_connections.min(state.fd_cap()),
            &state.apps_clients,
            config.rate_limit.max_connections_per_client,
            (
                "rate_limit.max_connections_per_client",
                "server.max_connections",
            ),
        ),
        Role::RedirectToHttps { .. } => (
            Pool::Redirect,
            config.server.redirect_max_connections,
            &state.redirect_clients,
            config.server.redirect_max_connections_per_client,
            (
                "server.redirect_max_connections_per_client",
                "server.redirect_max_connections",
            ),
        ),
    };
    let client = if per_client == 0 || is_uncapped(config, ip) {
        None
    } else {
        match clients.acquire(ip, per_client) {
            Some(p) => Some(p),
            None => {
                // SECURITY: one address cannot hold all the connections.
                crate::log_limit::warn_every(
                    "conn-cap-client",
                    "",
                    Duration::from_secs(5),
                    |suppressed| tracing::warn!(%peer, suppressed, "connection cap per client ({}) reached; connection closed", keys.0),
                );
                return None;
            }
        }
    };
    let id = NEXT_CONN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Some(slot) = state.registry.admit(id, pool, cap) else {
        // SECURITY: at the cap with every connection busy, a new one is
        // closed at once rather than queued, so a flood cannot hold memory
        // or starve the connections already being served.
        crate::log_limit::warn_every(
            "conn-cap",
            "",
            Duration::from_secs(5),
            |suppressed| tracing::warn!(%peer, suppressed, "connection limit ({}) reached with every connection busy; connection closed", keys.1),
        );
        return None;
    };
    Some(ConnPermit {
        slot,
        _client: client,
    })
}

/// Trusted proxies and exempt addresses carry many clients: no
/// per-address cap applies to them.
fn is_uncapped(config: &moat_config::Config, ip: IpAddr) -> bool {
    config.security.trusted_proxies.contains(ip)
        || config.rate_limit.exempt.iter().any(|n| n.contains(&ip))
}

async fn serve_tls(
    stream: TcpStream,
    mut conn: ConnInfo,
    role: Role,
    shared: Arc<Listening>,
    shutdown: watch::Receiver<bool>,
    permit: ConnPermit,
) {
    let Some(tls) = shared.tls.as_ref() else {
        return;
    };
    let timeout = shared.runtime.peek().config.server.tls_handshake_timeout;
    let handshake = tokio::time::timeout(timeout, handshake(stream, tls));
    let result = tokio::select! {
        r = handshake => r,
        _ = permit.slot.tracked.evicted() => return,
    };
    match result {
        Ok(Ok(None)) => {}
        Ok(Ok(Some((tls_stream, asked)))) => {
            conn.client_cert_asked = asked;
            let session = tls_stream.get_ref().1;
            let h2 = session.alpn_protocol() == Some(b"h2");
            if let Some(chain) = session.peer_certificates() {
                conn.client_cert = Some(Arc::new(crate::tls::client_auth::PeerCert::new(
                    chain.iter().map(|c| c.clone().into_owned()).collect(),
                )));
            }
            serve_connection_as(
                TokioIo::new(tls_stream),
                conn,
                role,
                shared,
                shutdown,
                permit,
                if h2 { Proto::H2 } else { Proto::H1 },
            )
            .await
        }
        Ok(Err(e)) => tracing::debug!(peer = %conn.peer, "TLS handshake failed: {e}"),
        Err(_) => tracing::debug!(peer = %conn.peer, "TLS handshake timed out"),
    }
}

/// The TLS handshake. The ClientHello is read first: a handshake that
/// offers only `acme-tls/1` for a name with an open tls-alpn-01 challenge
/// gets the challenge certificate and nothing else (RFC 8737), and the
/// connection ends there (`None`); every other gets the server config for
/// its SNI name (asking for a client certificate where an app wants one;
/// the second part says whether, and for which name, it asked).
async fn handshake(
    stream: TcpStream,
    tls: &TlsState,
) -> std::io::Result<
    Option<(
        tokio_rustls::server::TlsStream<TcpStream>,
        Option<crate::tls::client_auth::Asked>,
    )>,
> {
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
    // The CA's tls-alpn-01 check first: it must never wait for anything,
    // least of all for the order it is part of.
    let hello = start.client_hello();
    let offers_acme = hello.alpn().is_some_and(|mut protocols| {
        protocols.next() == Some(crate::tls::acme::challenge::ACME_TLS_ALPN)
            && protocols.next().is_none()
    });
    if offers_acme {
        let Some(config) = hello.server_name().and_then(|n| tls.challenges().alpn(n)) else {
            return Err(std::io::Error::other(
                "acme-tls/1 offered for a name with no open challenge",
            ));
        };
        let mut s = start.into_stream(config).await?;
        // The CA only needs the handshake; close cleanly.
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut s).await;
        return Ok(None);
    }
    // A name moat holds no certificate for may get one now, if the
    // on-demand ask URL approves it; the handshake waits for the order.
    let now = std::time::SystemTime::now();
    if let Some(name) = hello
        .server_name()
        .filter(|n| tls.on_demand_candidate(n, now))
        .map(str::to_owned)
    {
        const WAIT: Duration = Duration::from_secs(8);
        let _ = tokio::time::timeout(WAIT, tls.on_demand(&name, now)).await;
    }
    let hello = start.client_hello();
    let (config, sni) = tls.config_for(hello.server_name());
    start.into_stream(config).await.map(|s| Some((s, sni)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

async fn serve_connection<I>(
    io: TokioIo<I>,
    conn: ConnInfo,
    role: Role,
    shared: Arc<Listening>,
    shutdown: watch::Receiver<bool>,
    permit: ConnPermit,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_connection_as(io, conn, role, shared, shutdown, permit, Proto::H1).await
}

/// Serves one connection in the protocol ALPN chose (plain HTTP is always
/// HTTP/1.1: h2c from clients is not offered, browsers never use it and
/// without TLS nothing tells a client it may), and closes it when it has
/// been idle too long, when the pool needs its place, or at shutdown.
async fn serve_connection_as<I>(
    io: TokioIo<I>,
    conn: ConnInfo,
    role: Role,
    shared: Arc<Listening>,
    mut shutdown: watch::Receiver<bool>,
    permit: ConnPermit,
    proto: Proto,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let runtime = shared.runtime.load();
    let server = &runtime.config.server;
    let redirect = matches!(role, Role::RedirectToHttps { .. });
    let first_request = server.header_read_timeout;
    let keepalive = server.keepalive_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // A client must send its whole head in time once it has begun.
        .header_read_timeout(server.header_read_timeout)
        // The redirect listener answers one request per connection: a
        // plain-HTTP client has nothing else to do there.
        .keep_alive(!redirect)
        // hyper answers 431 when a head outgrows its buffer; the exact
        // configured limit is checked again in the pipeline.
        .max_buf_size((server.max_header_size + server.max_uri_length + 1024).max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(server.max_header_size as u32)
        .max_concurrent_streams(server.http2_max_concurrent_streams)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    // The protocol is known (ALPN, or plain HTTP): no reading of a preface
    // to guess it, a read with no timeout of its own.
    builder = match proto {
        Proto::H1 => builder.http1_only(),
        Proto::H2 => builder.http2_only(),
    };
    drop(runtime);

    let peer = conn.peer;
    let permit = Arc::new(permit);
    let hold = ConnHold(permit.clone());
    let tracked = permit.slot.tracked.clone();
    let requests = shared.connections.requests.clone();
    let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        // Only an upgrade needs the connection's place (and inserting
        // into the extensions allocates: not on every request).
        if req.version() == http::Version::HTTP_11
            && moat_policy::hop_by_hop::is_websocket_upgrade(req.headers())
        {
            req.extensions_mut().insert(hold.clone());
        }
        let shared = shared.clone();
        let conn = conn.clone();
        let busy = tracked.request_started();
        let requests = requests.clone();
        async move {
            let resp = match role {
                Role::RedirectToHttps { https_port } => {
                    // An open http-01 challenge is answered before the
                    // redirect (RFC 8555 §8.3: the CA asks over plain HTTP).
                    let resp = match acme_http01(&shared, &req) {
                        Some(answer) => answer,
                        None => pipeline::redirect::to_https(&req, https_port),
                    };
                    shared.log_redirect(&req, &conn, resp.status());
                    resp
                }
                Role::Apps { .. } => {
                    // SECURITY: requests in flight per client, across its
                    // HTTP/2 connections and streams, so one address cannot
                    // multiply its connection cap by streams. An HTTP/1.1
                    // connection carries one request at a time, so its
                    // requests are bounded by max_connections_per_client
                    // already, and skip this shared count (a lock the
                    // workers would contend for on every request).
                    let ip = moat_policy::client_ip::canonical(conn.peer.ip());
                    let (cap, uncapped) = if req.version() == http::Version::HTTP_2 {
                        let rt = shared.runtime.peek();
                        (
                            rt.config.rate_limit.max_requests_in_flight_per_client,
                            is_uncapped(&rt.config, ip),
                        )
                    } else {
                        (0, true)
                    };
                    let permit = if cap == 0 || uncapped {
                        Ok(None)
                    } else {
                        requests.acquire(ip, cap).map(Some).ok_or(())
                    };
                    match permit {
                        Ok(permit) => {
                            let resp = shared.pipeline.handle(req, &conn).await;
                            let (parts, body) = resp.into_parts();
                            return Ok::<_, Infallible>(Response::from_parts(
                                parts,
                                body::boxed(Guarded::new(body, (busy, permit))),
                            ));
                        }
                        Err(()) => too_many_in_flight(&conn),
                    }
                }
            };
            let (parts, body) = resp.into_parts();
            Ok::<_, Infallible>(Response::from_parts(
                parts,
                body::boxed(Guarded::new(body, busy)),
            ))
        }
    });
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    // Once closing, a connection gets this long to finish what it sends.
    const CLOSE_GRACE: Duration = Duration::from_secs(5);
    let mut closing: Option<tokio::time::Instant> = None;
    loop {
        let idle_check = match closing {
            Some(hard) => tokio::time::sleep_until(hard),
            None => tokio::time::sleep(
                permit
                    .slot
                    .tracked
                    .idle_deadline(first_request, keepalive)
                    // Busy: look again later; the request's own timeouts
                    // bound it meanwhile.
                    .unwrap_or(keepalive),
            ),
        };
        tokio::select! {
            res = connection.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(%peer, "connection ended with an error: {e}");
                }
                return;
            }
            _ = shutdown.changed(), if closing.is_none() => {
                connection.as_mut().graceful_shutdown();
                // The drain deadline is the gateway's (shutdown_timeout).
                closing = Some(tokio::time::Instant::now() + Duration::from_secs(86_400));
            }
            _ = permit.slot.tracked.evicted(), if closing.is_none() => {
                connection.as_mut().graceful_shutdown();
                closing = Some(tokio::time::Instant::now() + CLOSE_GRACE);
            }
            _ = idle_check => {
                if closing.is_some() {
                    return;
                }
                if permit.slot.tracked.idle_deadline(first_request, keepalive).is_some_and(|d| d.is_zero()) {
                    connection.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + CLOSE_GRACE);
                }
            }
        }
    }
}

/// The key authorization for `GET /.well-known/acme-challenge/TOKEN`, when
/// an order of this moat's has that token open.
fn acme_http01<B>(shared: &Listening, req: &http::Request<B>) -> Option<Response<Body>> {
    let challenges = shared.tls.as_ref()?.challenges();
    if req.method() != http::Method::GET || !challenges.any_http01() {
        return None;
    }
    let answer = challenges.http01(req.uri().path())?;
    Response::builder()
        .header(http::header::CONTENT_TYPE, "application/octet-stream")
        .body(body::full(answer))
        .ok()
}

fn too_many_in_flight(conn: &ConnInfo) -> Response<Body> {
    crate::log_limit::warn_every(
        "in-flight-cap",
        "",
        Duration::from_secs(5),
        |suppressed| tracing::warn!(peer = %conn.peer, suppressed, "requests in flight per client (rate_limit.max_requests_in_flight_per_client) reached; answered 429"),
    );
    crate::error::Rejection::client(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests from your address are in progress. Try again shortly.",
    )
    .retry_after(Duration::from_secs(1))
    .into_response()
}

/// The address a bound listener ended up on (for port 0 in tests).
pub fn local_addr(l: &TcpListener) -> SocketAddr {
    l.local_addr().expect("bound listener has an address")
}
