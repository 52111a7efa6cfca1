//! Forwards a request to an app's upstream and streams the answer back.
//!
//! Bodies stream both ways; the request body is limited to the app's
//! maximum as it flows, and either body is cut if it goes idle. WebSocket
//! upgrades are passed through: after the upstream's 101 both connections are
//! joined byte for byte.

use std::sync::Arc;
use std::time::Duration;

use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use hyper_util::rt::TokioIo;
use moat_policy::{forwarding, hop_by_hop};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::auth::AuthState;
use crate::body::{self, Body, BodyFault, ClientBody, Fault, IdleTimeout};
use crate::error::Rejection;
use crate::request::RequestCtx;
use crate::runtime::AppRuntime;
use crate::runtime::apps::{Transport, UpstreamApp};
use crate::tap::Exchange;
use crate::upstream_pool::PoolError;

/// Why the exchange failed, for the status code.
enum Failure {
    Connect { timed_out: bool, detail: String },
    Exchange(String),
}

impl UpstreamApp {
    /// One exchange with the upstream, up to the response head.
    async fn send(&self, mut req: Request<Body>) -> Result<Response<Body>, Failure> {
        match &self.transport {
            Transport::Http1(pool) => {
                // HTTP/1.1 requests carry the origin form; Host says where.
                let pq = req
                    .uri()
                    .path_and_query()
                    .cloned()
                    .unwrap_or_else(|| PathAndQuery::from_static("/"));
                *req.uri_mut() = Uri::from(pq);
                match pool.send(req).await {
                    Ok(resp) => Ok(resp.map(body::boxed)),
                    Err(e @ PoolError::ConnectTimeout { .. }) => Err(Failure::Connect {
                        timed_out: true,
                        detail: e.to_string(),
                    }),
                    Err(e @ (PoolError::Connect { .. } | PoolError::Handshake { .. })) => {
                        Err(Failure::Connect {
                            timed_out: false,
                            detail: error_chain(&e),
                        })
                    }
                    Err(e) => Err(Failure::Exchange(error_chain(&e))),
                }
            }
            Transport::H2c(clients) => match clients[crate::workers::current() % clients.len()]
                .request(req)
                .await
            {
                Ok(resp) => Ok(resp.map(body::boxed)),
                Err(e) => {
                    let detail = error_chain(&e);
                    if e.is_connect() {
                        let timed_out = detail.contains("timed out") || detail.contains("timeout");
                        Err(Failure::Connect { timed_out, detail })
                    } else {
                        Err(Failure::Exchange(detail))
                    }
                }
            },
        }
    }

    pub async fn forward<B>(
        &self,
        mut req: Request<B>,
        ctx: &RequestCtx,
        app: &AppRuntime,
        sign_in: &AuthState,
        recording: Option<&Exchange>,
    ) -> Result<Response<Body>, Rejection>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<crate::body::BoxError>,
    {
        let websocket =
            req.version() == Version::HTTP_11 && hop_by_hop::is_websocket_upgrade(req.headers());
        // The client connection's place in the caps, for the tunnel.
        let conn_hold = websocket
            .then(|| {
                req.extensions()
                    .get::<crate::connections::ConnHold>()
                    .cloned()
            })
            .flatten();
        let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));

        let (mut parts, incoming) = req.into_parts();
        parts.uri = self.upstream_uri(&parts.uri, &app.prefix)?;
        parts.version = if self.h2c {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        let h = &mut parts.headers;
        hop_by_hop::strip(h);
        forwarding::strip_moat_headers(h);
        forwarding::strip_underscore_headers(h, &self.allow_underscore_headers);
        // Identity after the strip: only moat's own X-Moat-* reach the app.
        if let Some(user) = &ctx.user {
            if let Ok(v) = HeaderValue::from_str(user) {
                h.insert(forwarding::USER_HEADER, v);
            }
            if let Some(v) = ctx
                .source
                .as_deref()
                .and_then(|s| HeaderValue::from_str(s).ok())
            {
                h.insert(forwarding::SOURCE_HEADER, v);
            }
            if let Some(v) = ctx
                .email
                .as_deref()
                .and_then(|e| HeaderValue::from_str(e).ok())
            {
                h.insert(forwarding::EMAIL_HEADER, v);
            }
            if !ctx.groups.is_empty()
                && let Ok(v) =
                    HeaderValue::from_str(&moat_policy::access::groups_header(&ctx.groups))
            {
                h.insert(forwarding::GROUPS_HEADER, v);
            }
            if app.identity_jwt {
                if let Some(token) = sign_in.identity_token(
                    user,
                    ctx.source.as_deref(),
                    ctx.email.as_deref(),
                    &ctx.groups,
                    &app.name,
                ) {
                    h.insert(forwarding::IDENTITY_HEADER, token);
                }
            }
        }
        forwarding::rebuild(
            h,
            &forwarding::Origin {
                client: ctx.client.ip,
                proto: ctx.proto(),
                host: ctx.host.as_deref(),
            },
        );
        if self.preserve_host {
            if let Some(host) = ctx
                .host
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                h.insert(header::HOST, host);
            }
        } else {
            h.remove(header::HOST);
            if let Some(auth) = self.origin.authority() {
                h.insert(
                    header::HOST,
                    HeaderValue::from_str(auth.as_str()).expect("authority is a valid header"),
                );
            }
        }
        if websocket {
            h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        }

        let fault = Arc::new(BodyFault::default());
        // Most requests have no body; they skip the limit and timers.
        let body = if http_body::Body::is_end_stream(&incoming) {
            body::empty()
        } else {
            body::boxed(ClientBody::new(
                IdleTimeout::new(incoming, self.timeouts.idle),
                app.max_body_size,
                self.min_body_rate,
                fault.clone(),
            ))
        };
        let upstream_req = Request::from_parts(parts, body);

        // A free upstream slot, waited for a bounded time: a busy app
        // answers 503 quickly rather than queueing without end.
        let slot = match self.in_flight.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => match tokio::time::timeout(
                self.timeouts.queue,
                self.in_flight.clone().acquire_owned(),
            )
            .await
            {
                Ok(Ok(slot)) => slot,
                _ => {
                    return Err(Rejection::upstream(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The app is busy. Try again shortly.",
                        format!(
                            "every upstream connection (max_upstream_connections) stayed busy for {:?}",
                            self.timeouts.queue
                        ),
                    ));
                }
            },
        };
        let result =
            tokio::time::timeout(self.timeouts.response_header, self.send(upstream_req)).await;
        let mut resp = match result {
            Err(_) => {
                return Err(Rejection::upstream(
                    StatusCode::GATEWAY_TIMEOUT,
                    "The app did not answer in time.",
                    format!(
                        "no response head within {:?}",
                        self.timeouts.response_header
                    ),
                ));
            }
            Ok(Err(failure)) => return Err(classify(failure, &fault)),
            Ok(Ok(resp)) => resp,
        };

        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                return Err(Rejection::upstream(
                    StatusCode::BAD_GATEWAY,
                    "The app sent an invalid response.",
                    "101 to a request that asked for no upgrade",
                ));
            };
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            let idle = self.timeouts.idle;
            let name = app.name.clone();
            let taps = recording.map(|ex| (ex.ws_tap("client"), ex.ws_tap("server")));
            let conn_hold = conn_hold.map(|h| h.keep());
            tokio::spawn(async move {
                // The tunnel holds its upstream connection, and its client
                // connection's place in the caps, until it ends.
                let _slot = slot;
                let _conn = conn_hold;
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((c, u)) => {
                        if let Err(e) = tunnel(TokioIo::new(c), TokioIo::new(u), idle, taps).await {
                            tracing::debug!(app = name, "websocket ended: {e}");
                        }
                    }
                    Err(e) => tracing::debug!(app = name, "websocket upgrade failed: {e}"),
                }
            });
            let (mut parts, _) = resp.into_parts();
            hop_by_hop::strip(&mut parts.headers);
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts
                .headers
                .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            return Ok(Response::from_parts(parts, body::empty()));
        }

        let (mut parts, incoming) = resp.into_parts();
        hop_by_hop::strip(&mut parts.headers);
        Ok(Response::from_parts(
            parts,
            body::boxed(crate::connections::Guarded::new(
                IdleTimeout::new(incoming, self.timeouts.idle),
                slot,
            )),
        ))
    }

    /// The URI sent upstream: the upstream's origin and base path, then the
    /// request path (without the mount prefix when `strip_path` is on) and
    /// query.
    fn upstream_uri(&self, uri: &Uri, prefix: &str) -> Result<Uri, Rejection> {
        let path = uri.path();
        let path = if self.strip_path && prefix != "/" {
            &path[prefix.len().min(path.len())..]
        } else {
            path
        };
        let path = if path.is_empty() { "/" } else { path };
        let mut pq = String::with_capacity(
            self.base_path.len() + path.len() + 1 + uri.query().map_or(0, str::len),
        );
        pq.push_str(&self.base_path);
        pq.push_str(path);
        if let Some(q) = uri.query() {
            pq.push('?');
            pq.push_str(q);
        }
        let mut parts = self.origin.clone().into_parts();
        parts.path_and_query = Some(PathAndQuery::try_from(pq).map_err(|_| {
            Rejection::client(StatusCode::BAD_REQUEST, "The request path is not valid.")
        })?);
        Uri::from_parts(parts).map_err(|e| Rejection::internal(e.to_string()))
    }
}

/// Maps a failed upstream exchange to a status: our own body limit is the
/// client's fault (413), a connect timeout is 504, anything else 502.
fn classify(failure: Failure, fault: &BodyFault) -> Rejection {
    // The client's own body failed: the client's error, not the app's.
    match fault.get() {
        Fault::TooLarge => return crate::pipeline::limits::too_large(),
        Fault::TooSlow => {
            return Rejection::client(
                StatusCode::REQUEST_TIMEOUT,
                "The request body arrived too slowly.",
            );
        }
        Fault::Malformed => {
            return Rejection::client(
                StatusCode::BAD_REQUEST,
                "The request body was malformed or cut off.",
            );
        }
        Fault::None => {}
    }
    match failure {
        Failure::Connect {
            timed_out: true,
            detail,
        } => Rejection::upstream(
            StatusCode::GATEWAY_TIMEOUT,
            "The app did not answer in time.",
            detail,
        ),
        Failure::Connect {
            timed_out: false,
            detail,
        } => Rejection::upstream(StatusCode::BAD_GATEWAY, "The app is not reachable.", detail),
        Failure::Exchange(detail) => {
            Rejection::upstream(StatusCode::BAD_GATEWAY, "The app failed to answer.", detail)
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The recording of a tunnel was closed (the recorder's queue was full).
fn recorder_full() -> std::io::Error {
    std::io::Error::other("its recording was closed (recorder queue full)")
}

/// Joins two upgraded connections until either side closes or nothing has
/// moved in either direction for `idle`.
/// Copies bytes both ways until both sides close or nothing moves for
/// `idle`. `taps` (a recorded session) see the bytes from the client and
/// from the upstream as they pass.
async fn tunnel<A, B>(
    a: A,
    b: B,
    idle: Duration,
    mut taps: Option<(crate::tap::WsTap, crate::tap::WsTap)>,
) -> std::io::Result<()>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let mut abuf = vec![0u8; 16 * 1024];
    let mut bbuf = vec![0u8; 16 * 1024];
    let (mut a_open, mut b_open) = (true, true);
    while a_open || b_open {
        tokio::select! {
            n = ar.read(&mut abuf), if a_open => {
                let n = n?;
                if n == 0 { a_open = false; bw.shutdown().await?; } else {
                    if let Some((from_client, _)) = taps.as_mut() {
                        if !from_client.room().await || !from_client.feed(&abuf[..n]) { return Err(recorder_full()); }
                    }
                    bw.write_all(&abuf[..n]).await?;
                }
            }
            n = br.read(&mut bbuf), if b_open => {
                let n = n?;
                if n == 0 { b_open = false; aw.shutdown().await?; } else {
                    if let Some((_, from_upstream)) = taps.as_mut() {
                        if !from_upstream.room().await || !from_upstream.feed(&bbuf[..n]) { return Err(recorder_full()); }
                    }
                    aw.write_all(&bbuf[..n]).await?;
                }
            }
            _ = tokio::time::sleep(idle) => {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("idle for {idle:?}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing;

    fn upstream_of(rt: &crate::runtime::Runtime) -> Arc<AppRuntime> {
        testing::app(rt, "app")
    }

    fn uri_for(extra: &str, path: &str) -> String {
        let rt = testing::runtime(&format!(
            "[[apps]]\nname = \"app\"\npath = \"/wiki\"\nupstream = \"http://127.0.0.1:9/base\"\n{extra}\n"
        ));
        let app = upstream_of(&rt);
        let crate::runtime::AppKind::Upstream(up) = &app.kind else {
            panic!("an upstream app");
        };
        up.upstream_uri(&path.parse().unwrap(), &app.prefix)
            .unwrap()
            .to_string()
    }

    #[test]
    fn the_upstream_uri_keeps_or_strips_the_mount() {
        assert_eq!(
            uri_for("", "/wiki/a?b=1"),
            "http://127.0.0.1:9/base/wiki/a?b=1"
        );
        assert_eq!(
            uri_for("strip_path = true", "/wiki/a?b=1"),
            "http://127.0.0.1:9/base/a?b=1"
        );
        assert_eq!(
            uri_for("strip_path = true", "/wiki"),
            "http://127.0.0.1:9/base/"
        );
    }

    #[test]
    fn failures_are_told_apart() {
        let none = BodyFault::default();
        let r = classify(
            Failure::Connect {
                timed_out: true,
                detail: "t".into(),
            },
            &none,
        );
        assert_eq!(
            (r.status.as_u16(), r.side),
            (504, crate::error::Side::Upstream)
        );
        let r = classify(
            Failure::Connect {
                timed_out: false,
                detail: "refused".into(),
            },
            &none,
        );
        assert_eq!(
            (r.status.as_u16(), r.side),
            (502, crate::error::Side::Upstream)
        );
        let r = classify(Failure::Exchange("reset".into()), &none);
        assert_eq!(r.status.as_u16(), 502);
    }
}
