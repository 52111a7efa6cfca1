//! Accept loops and per-connection serving.
//!
//! The accept loop ([`accept_loop`]) owns the listening socket and the
//! connection cap; each accepted connection is served on its own task
//! ([`serve_connection`]), and errors from one connection are logged there,
//! never passed up.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio_rustls::TlsAcceptor;

use crate::gateway::Shared;
use crate::pipeline::{self, ConnInfo};

/// What a listener does with requests.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    /// Serve the apps, over TLS or not.
    Apps { tls: bool },
    /// Plain HTTP that redirects every request to HTTPS on this port.
    RedirectToHttps { https_port: u16 },
}

/// Accepts connections until `shutdown` turns true.
///
/// # Errors
/// Accept errors (such as running out of file descriptors) are logged and
/// retried after a short pause rather than ending the loop: a listener that
/// stops accepting takes the whole gateway down with it.
pub async fn accept_loop(
    listener: TcpListener,
    role: Role,
    shared: Arc<Shared>,
    graceful: Arc<GracefulShutdown>,
    mut shutdown: watch::Receiver<bool>,
) {
    let local = listener
        .local_addr()
        .expect("bound listener has an address");
    loop {
        let (stream, peer) = tokio::select! {
            res = listener.accept() => match res {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::error!(listener = %local, "accept failed: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Some(client_permit) = shared.client_connections.acquire(&shared, peer.ip()) else {
            // SECURITY: one address cannot hold all the connections.
            tracing::warn!(%peer, "connection cap per client (rate_limit.max_connections_per_client) reached; connection closed");
            drop(stream);
            continue;
        };
        let Ok(global) = shared.conn_limit.clone().try_acquire_owned() else {
            // SECURITY: at the cap a new connection is closed at once rather
            // than queued, so a flood cannot hold memory or starve the
            // connections already being served.
            tracing::warn!(%peer, "connection limit (server.max_connections) reached; connection closed");
            drop(stream);
            continue;
        };
        let permit = ConnPermit {
            _global: global,
            _client: client_permit,
        };
        let _ = stream.set_nodelay(true);
        static NEXT_CONN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let conn = ConnInfo {
            id: NEXT_CONN.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            peer,
            local,
            tls: matches!(role, Role::Apps { tls: true }),
        };
        let shared = shared.clone();
        let watcher = graceful.watcher();
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
                serve_tls(stream, conn, role, shared, watcher, permit).await
            } else {
                serve_connection(TokioIo::new(stream), conn, role, shared, watcher, permit).await
            }
        });
    }
}

async fn serve_tls(
    stream: TcpStream,
    conn: ConnInfo,
    role: Role,
    shared: Arc<Shared>,
    graceful: Watcher,
    permit: ConnPermit,
) {
    let Some(tls) = shared.tls.as_ref() else {
        return;
    };
    let acceptor = TlsAcceptor::from(tls.server_config.load_full());
    let timeout = shared.runtime.load().config.server.tls_handshake_timeout;
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls_stream)) => {
            serve_connection(
                TokioIo::new(tls_stream),
                conn,
                role,
                shared,
                graceful,
                permit,
            )
            .await
        }
        Ok(Err(e)) => tracing::debug!(peer = %conn.peer, "TLS handshake failed: {e}"),
        Err(_) => tracing::debug!(peer = %conn.peer, "TLS handshake timed out"),
    }
}

async fn serve_connection<I>(
    io: TokioIo<I>,
    conn: ConnInfo,
    role: Role,
    shared: Arc<Shared>,
    graceful: Watcher,
    _permit: ConnPermit,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let runtime = shared.runtime.load_full();
    let server = &runtime.config.server;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // A client must send its whole head in time; this also closes idle
        // keep-alive connections, since waiting for the next head is the
        // same wait.
        .header_read_timeout(server.header_read_timeout)
        // hyper answers 431 when a head outgrows its buffer; the exact
        // configured limit is checked again in the pipeline.
        .max_buf_size((server.max_header_size + server.max_uri_length + 1024).max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(server.max_header_size as u32)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    if !server.http2 || !conn.tls {
        // h2c from clients is not offered: browsers never use it, and
        // without TLS nothing tells a client it may.
        builder = builder.http1_only();
    }
    drop(runtime);

    let service = service_fn(move |req| {
        let shared = shared.clone();
        let conn = conn.clone();
        async move {
            let resp = match role {
                Role::RedirectToHttps { https_port } => {
                    let resp = pipeline::redirect::to_https(&req, https_port);
                    shared.log_redirect(&req, &conn, resp.status());
                    resp
                }
                Role::Apps { .. } => pipeline::handle(req, &conn, &shared).await,
            };
            Ok::<_, Infallible>(resp)
        }
    });
    let connection = builder.serve_connection_with_upgrades(io, service);
    if let Err(e) = graceful.watch(connection.into_owned()).await {
        tracing::debug!("connection ended with an error: {e}");
    }
}

/// The address a bound listener ended up on (for port 0 in tests).
pub fn local_addr(l: &TcpListener) -> SocketAddr {
    l.local_addr().expect("bound listener has an address")
}

/// Held for as long as a connection is open.
pub struct ConnPermit {
    _global: OwnedSemaphorePermit,
    _client: Option<ClientPermit>,
}

/// Open connections per client address, for
/// `rate_limit.max_connections_per_client`.
#[derive(Default)]
pub struct ClientConnections {
    open: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

/// One open connection of a client; dropping it releases the slot.
pub struct ClientPermit {
    ip: std::net::IpAddr,
    open: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

impl ClientConnections {
    /// A slot for a new connection from `ip`: `Some(None)` when no cap
    /// applies (cap 0, a trusted proxy, an exempt address), `None` at the
    /// cap.
    fn acquire(&self, shared: &Shared, ip: std::net::IpAddr) -> Option<Option<ClientPermit>> {
        let runtime = shared.runtime.load();
        let config = &runtime.config;
        let cap = config.rate_limit.max_connections_per_client;
        let ip = moat_policy::client_ip::canonical(ip);
        if cap == 0
            || config.security.trusted_proxies.contains(ip)
            || config.rate_limit.exempt.iter().any(|n| n.contains(&ip))
        {
            return Some(None);
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Some(ClientPermit {
            ip,
            open: self.open.clone(),
        }))
    }
}

impl Drop for ClientPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
