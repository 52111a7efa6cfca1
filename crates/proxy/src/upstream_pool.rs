//! Keep-alive HTTP/1.1 connections to one upstream, one idle list per
//! worker.
//!
//! A connection is driven by a task on the worker that opened it and is
//! only ever handed to requests on that worker, so using it never wakes
//! another thread. It goes back to the idle list when its response body has
//! been read to the end (or there was none); a response abandoned midway
//! leaves the connection in an unknown state, so it is closed instead.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use crate::body::Body;
use crate::workers;

/// Why an exchange with the upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connecting to {addr}: no connection within {timeout:?}")]
    ConnectTimeout { addr: String, timeout: Duration },
    #[error("HTTP handshake with {addr}: {source}")]
    Handshake { addr: String, source: hyper::Error },
    #[error("exchange with the upstream: {0}")]
    Request(hyper::Error),
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

pub struct Http1Pool {
    /// `host:port` to connect to.
    addr: String,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
    /// Indexed by worker.
    idle: Vec<Mutex<Vec<Idle>>>,
}

impl Http1Pool {
    pub fn new(addr: String, connect_timeout: Duration, workers: usize) -> Http1Pool {
        Http1Pool {
            addr,
            connect_timeout,
            idle_timeout: Duration::from_secs(90),
            max_idle: 256,
            idle: (0..workers.max(1))
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
        }
    }

    /// Sends `req` (origin-form URI, Host set) on a pooled or new connection.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<Body>,
    ) -> Result<Response<PooledBody>, PoolError> {
        let worker = workers::current() % self.idle.len();
        while let Some(mut sender) = self.checkout(worker) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(self.track(resp, sender, worker)),
                // The upstream closed this idle connection before the request
                // was written: nothing was sent, so another connection may
                // carry it safely.
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(PoolError::Request(e.into_error())),
                },
            }
        }
        let mut sender = self.connect().await?;
        match sender.try_send_request(req).await {
            Ok(resp) => Ok(self.track(resp, sender, worker)),
            Err(e) => Err(PoolError::Request(e.into_error())),
        }
    }

    fn checkout(&self, worker: usize) -> Option<SendRequest<Body>> {
        let mut idle = self.idle[worker].lock().unwrap_or_else(|e| e.into_inner());
        // Most recently used first: its socket is the least likely to have
        // been closed by the upstream's own idle timeout.
        while let Some(c) = idle.pop() {
            if !c.sender.is_closed() && c.since.elapsed() < self.idle_timeout {
                return Some(c.sender);
            }
        }
        None
    }

    fn checkin(&self, worker: usize, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle[worker].lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<SendRequest<Body>, PoolError> {
        let addr = &self.addr;
        let stream =
            match tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(addr))
                .await
            {
                Err(_) => {
                    return Err(PoolError::ConnectTimeout {
                        addr: addr.clone(),
                        timeout: self.connect_timeout,
                    });
                }
                Ok(Err(source)) => {
                    return Err(PoolError::Connect {
                        addr: addr.clone(),
                        source,
                    });
                }
                Ok(Ok(s)) => s,
            };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| PoolError::Handshake {
                addr: addr.clone(),
                source,
            })?;
        // Driven on this worker; upgrades are allowed for WebSockets.
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!("upstream connection ended: {e}");
            }
        });
        Ok(sender)
    }

    /// Wraps the response body so the connection returns to the pool when
    /// the body is done. A 101 response hands the connection over to the
    /// upgrade, so it is not pooled.
    fn track(
        self: &Arc<Self>,
        resp: Response<Incoming>,
        sender: SendRequest<Body>,
        worker: usize,
    ) -> Response<PooledBody> {
        let upgraded = resp.status() == http::StatusCode::SWITCHING_PROTOCOLS;
        resp.map(|inner| {
            let mut body = PooledBody { inner, home: None };
            if !upgraded {
                body.home = Some((self.clone(), worker, sender));
                if body.inner.is_end_stream() {
                    body.release();
                }
            }
            body
        })
    }
}

/// A response body that returns its connection to the pool once read.
pub struct PooledBody {
    inner: Incoming,
    home: Option<(Arc<Http1Pool>, usize, SendRequest<Body>)>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some((pool, worker, sender)) = self.home.take() {
            pool.checkin(worker, sender);
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            None => self.release(),
            Some(Err(_)) => self.home = None,
            Some(Ok(_)) if self.inner.is_end_stream() => self.release(),
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // Read to the end: reusable. Abandoned midway: the rest of the body
        // is still on the wire, so the connection is closed (by dropping
        // its sender) rather than reused.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}
