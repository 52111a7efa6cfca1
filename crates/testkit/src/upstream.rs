//! Real upstream servers for tests, each on `127.0.0.1:0`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, Infallible>;

/// An HTTP upstream that answers:
/// - `/bytes/N`: N bytes, streamed in 64 KiB chunks;
/// - `/slow/MS`: after MS milliseconds;
/// - `/fingerprint`: with `Server`, `X-Powered-By` and hop-by-hop headers;
/// - `/respond-with?NAME=VALUE&...`: with those response headers;
/// - anything else: JSON describing the request it received (the TCP peer,
///   method, URI, headers, body length and SHA-256), read as a stream.
///
/// Every response carries `x-upstream: NAME`.
pub async fn echo(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(name, peer, req));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

async fn handle(
    name: &'static str,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let mut resp = if let Some(n) = path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<u64>().ok())
    {
        let chunks = futures_util::stream::unfold(n, |left| async move {
            if left == 0 {
                return None;
            }
            let len = left.min(64 * 1024);
            Some((
                Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; len as usize]))),
                left - len,
            ))
        });
        Response::new(BodyExt::boxed(StreamBody::new(chunks)))
    } else if let Some(ms) = path
        .strip_prefix("/slow/")
        .and_then(|n| n.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Response::new(full("slow"))
    } else if path == "/respond-with" {
        // Each query pair becomes a response header: a way to make the
        // upstream send exactly the headers a test needs.
        let mut r = Response::new(full("as asked"));
        for pair in req.uri().query().unwrap_or("").split('&') {
            if let Some((k, v)) = pair.split_once('=') {
                let v = percent_decode(v);
                if let (Ok(k), Ok(v)) = (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    http::HeaderValue::from_str(&v),
                ) {
                    r.headers_mut().append(k, v);
                }
            }
        }
        r
    } else if path == "/fingerprint" {
        let mut r = Response::new(full("fingerprinted"));
        let h = r.headers_mut();
        h.insert("server", "Apache/2.4.1 (Unix)".parse().unwrap());
        h.insert("x-powered-by", "PHP/5.6".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("connection", "x-hop-secret".parse().unwrap());
        h.insert("x-hop-secret", "1".parse().unwrap());
        h.insert("x-app-header", "kept".parse().unwrap());
        r
    } else {
        let method = req.method().to_string();
        let uri = req.uri().to_string();
        let version = format!("{:?}", req.version());
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = req.into_body();
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(d) = f.data_ref() {
                        len += d.len() as u64;
                        hasher.update(d);
                    }
                }
                Err(_) => break,
            }
        }
        let hash: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let json = serde_json::json!({
            "upstream": name, "peer": peer.to_string(), "method": method, "uri": uri, "version": version,
            "headers": headers, "body_len": len, "body_sha256": hash,
        });
        let mut r = Response::new(BodyExt::boxed(Full::new(Bytes::from(json.to_string()))));
        r.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        r
    };
    resp.headers_mut()
        .insert("x-upstream", name.parse().unwrap());
    Ok(resp)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(n) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(n);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn full(s: &'static str) -> Body {
    BodyExt::boxed(Full::new(Bytes::from_static(s.as_bytes())))
}

/// Helpers to read the echo JSON.
pub trait EchoExt {
    /// All values of a header the upstream received, in order.
    fn header_values(&self, name: &str) -> Vec<String>;
    fn header(&self, name: &str) -> Option<String> {
        let v = self.header_values(name);
        assert!(
            v.len() <= 1,
            "header {name} received {} times: {v:?}",
            v.len()
        );
        v.into_iter().next()
    }
}

impl EchoExt for serde_json::Value {
    fn header_values(&self, name: &str) -> Vec<String> {
        self["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|kv| kv[0].as_str().unwrap().eq_ignore_ascii_case(name))
            .map(|kv| kv[1].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A WebSocket server that echoes every message back.
pub async fn websocket_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                    echo_messages(ws).await;
                }
            });
        }
    });
    addr
}

/// A small web app for recording and playback tests, HTTP and WebSocket
/// on one port:
/// - `/`: an HTML page using `/style.css` and `/logo.png`;
/// - `/style.css`, `/logo.png` (a 1×1 PNG);
/// - `/api/data`: JSON holding a `password` field (which recordings
///   redact);
/// - `/ws`: a WebSocket that echoes every message.
///
/// Returns the address and the number of HTTP requests served so far.
pub async fn website() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                // A WebSocket handshake is told apart by its head, read
                // without consuming it.
                let mut head = vec![0u8; 8192];
                let mut seen = 0;
                for _ in 0..100 {
                    seen = stream.peek(&mut head).await.unwrap_or(0);
                    if seen == 0 || head[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let text = String::from_utf8_lossy(&head[..seen]).to_ascii_lowercase();
                if text.contains("upgrade: websocket") {
                    if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                        echo_messages(ws).await;
                    }
                    return;
                }
                let svc = service_fn(move |req: Request<Incoming>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move { Ok::<_, Infallible>(website_page(req.uri().path())) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, hits)
}

/// A 1×1 transparent PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0x60, 0xf8, 0x5f,
    0x0f, 0x00, 0x02, 0x87, 0x01, 0x80, 0xeb, 0x47, 0xba, 0x92, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn website_page(path: &str) -> Response<Full<Bytes>> {
    let (kind, body): (&str, Bytes) = match path.rsplit('/').next().unwrap_or("") {
        "style.css" => (
            "text/css",
            Bytes::from_static(b"body { background: #fafafa; } h1 { color: #0b5cad; }"),
        ),
        "logo.png" => ("image/png", Bytes::from_static(PNG)),
        "data" => (
            "application/json",
            Bytes::from_static(br#"{"items":[1,2,3],"owner":{"name":"ada","password":"hunter2"}}"#),
        ),
        _ => (
            "text/html; charset=utf-8",
            Bytes::from_static(
                b"<!doctype html><html><head><title>Website</title><link rel=\"stylesheet\" href=\"style.css\"></head>\
<body><h1>The recorded page</h1><img src=\"logo.png\" alt=\"logo\"><a href=\"https://example.com/\">out</a></body></html>",
            ),
        ),
    };
    let mut r = Response::new(Full::new(body));
    r.headers_mut()
        .insert("content-type", kind.parse().unwrap());
    r
}

/// Sends every message of a WebSocket back until it closes.
async fn echo_messages<S>(mut ws: tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() || ws.send(msg).await.is_err() {
            break;
        }
    }
}

/// A port that refuses connections (bound, then closed).
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// A fixed response served over HTTP/1.1 keep-alive; used by the benchmark
/// as the upstream every contender proxies to.
pub async fn fixed(listener: TcpListener, body: &'static [u8]) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let svc = service_fn(move |_req: Request<Incoming>| async move {
                let mut r = Response::new(Full::new(Bytes::from_static(body)));
                r.headers_mut()
                    .insert("content-type", "text/plain".parse().unwrap());
                Ok::<_, Infallible>(r)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// An upstream that answers one keep-alive response per connection and then
/// closes it, as an upstream whose idle timeout fires does. Returns the
/// address and a counter of connections accepted.
pub async fn closes_after_each_response()
-> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepted = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                // No "Connection: close": the close comes unannounced.
            });
        }
    });
    (addr, count)
}

/// A running nginx, the normalising upstream: it merges slashes, resolves
/// dot segments and decodes the path before it chooses a location, as most
/// web servers do. Stopped when dropped.
pub struct Nginx {
    pub addr: SocketAddr,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts nginx on a free port of 127.0.0.1 with `locations` as the body
/// of its one `server` block. `scripts/test` installs nginx.
pub async fn nginx(locations: &str) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = dir.path().display();
    let conf = format!(
        "master_process off;\nworker_processes 1;\ndaemon off;\npid {p}/nginx.pid;\nerror_log {p}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
           fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
           server {{\n    listen 127.0.0.1:{port};\n{locations}\n  }}\n}}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|b| std::path::Path::new(b).exists())
        .expect("nginx is installed (scripts/test installs nginx-light)");
    let child = std::process::Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        // SECURITY of the test run itself: no inherited output. A process
        // holding the test's stdout keeps `scripts/test`'s tee (and CI)
        // waiting forever; with `master_process off` there is one nginx
        // process, so killing it leaves no worker behind.
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Nginx {
                addr,
                child,
                _dir: dir,
            };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nginx did not start on {addr}");
}
