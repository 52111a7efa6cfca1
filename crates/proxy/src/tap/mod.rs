//! Recording taps: what records one exchange as it streams. A request
//! body, a response body and each direction of a WebSocket tunnel are
//! wrapped so every piece is recorded as it passes (up to `body_limit`
//! bytes per message; the rest is counted, not kept). JSON bodies of apps
//! that redact JSON fields are kept whole (up to the limit) and recorded,
//! redacted, when they end; one that does not parse is counted only, so a
//! redaction can never be skipped.
//!
//! The stage that starts a recording is `pipeline::record`; the upstream
//! app uses the taps of the exchange it is handed.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::{Body as HttpBody, Frame};
use moat_config::AppRecording;
use moat_policy::redact::Kept;
use moat_recording::Event;

use crate::body::{self, Body, BoxError};
use crate::recorder::Active;

mod ws;
pub use ws::WsTap;

/// One exchange being recorded.
pub struct Exchange {
    rec: Arc<Active>,
    conn: u64,
    req: u64,
    policy: Arc<AppRecording>,
    /// A response head or a failure was recorded: the exchange's end is
    /// theirs to record.
    answered: std::sync::atomic::AtomicBool,
}

impl Exchange {
    /// The exchange numbered `req` on connection `conn` of recording `rec`.
    pub fn new(rec: Arc<Active>, conn: u64, req: u64, policy: Arc<AppRecording>) -> Exchange {
        Exchange {
            rec,
            conn,
            req,
            policy,
            answered: Default::default(),
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // Dropped unanswered: the client went away before the app answered.
        if !self.answered.load(std::sync::atomic::Ordering::Relaxed) {
            self.rec.record(Event::Error {
                conn: self.conn,
                req: self.req,
                message: "the client went away before the response".into(),
            });
            self.rec.record(Event::ExchangeEnd {
                conn: self.conn,
                req: self.req,
            });
        }
    }
}

pub fn redacted(h: &HeaderMap, policy: &AppRecording) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| {
            let value = if policy.redactor.is_secret_header(k.as_str()) {
                "[redacted]".to_owned()
            } else if k == header::LOCATION || k == header::REFERER {
                // URLs carry credentials in their queries too (OAuth codes
                // and tokens in redirects).
                policy.redactor.uri(&String::from_utf8_lossy(v.as_bytes()))
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (k.as_str().to_owned(), value)
        })
        .collect()
}

/// The body's content type and content encoding.
fn content_type(h: &HeaderMap) -> (Option<String>, Option<String>) {
    let get = |name| {
        h.get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    (get(header::CONTENT_TYPE), get(header::CONTENT_ENCODING))
}

impl Exchange {
    /// Wraps the request body so it is recorded as it streams.
    pub fn request<B>(&self, req: Request<B>) -> Request<Body>
    where
        B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let ct = content_type(req.headers());
        req.map(|b| body::boxed(Recording::new(b, self.sink(Side::Request, ct))))
    }

    /// Records the response head and wraps its body.
    pub fn response(&self, resp: Response<Body>) -> Response<Body> {
        self.answered
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.rec.record(Event::ResponseHead {
            conn: self.conn,
            req: self.req,
            status: resp.status().as_u16(),
            headers: redacted(resp.headers(), &self.policy),
        });
        let ct = content_type(resp.headers());
        resp.map(|b| body::boxed(Recording::new(b, self.sink(Side::Response, ct))))
    }

    /// Records a request that failed before a response.
    pub fn failed(&self, why: &str) {
        self.answered
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.rec.record(Event::Error {
            conn: self.conn,
            req: self.req,
            message: why.to_owned(),
        });
        self.rec.record(Event::ExchangeEnd {
            conn: self.conn,
            req: self.req,
        });
    }

    fn sink(
        &self,
        side: Side,
        (content_type, content_encoding): (Option<String>, Option<String>),
    ) -> Sink {
        Sink {
            rec: self.rec.clone(),
            conn: self.conn,
            req: self.req,
            side,
            limit: self.policy.body_limit,
            kept: 0,
            buf: Vec::new(),
            content_type,
            content_encoding,
            total: 0,
            policy: self.policy.clone(),
            done: false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

struct Sink {
    rec: Arc<Active>,
    conn: u64,
    req: u64,
    side: Side,
    limit: u64,
    kept: u64,
    /// The kept bytes, redacted as a whole when the body ends.
    buf: Vec<u8>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    total: u64,
    policy: Arc<AppRecording>,
    done: bool,
}

impl Sink {
    fn event(&self, data: &[u8], len: u64, truncated: bool) -> Event {
        let data = base64::engine::general_purpose::STANDARD.encode(data);
        match self.side {
            Side::Request => Event::RequestBody {
                conn: self.conn,
                req: self.req,
                data,
                len,
                truncated,
            },
            Side::Response => Event::ResponseBody {
                conn: self.conn,
                req: self.req,
                data,
                len,
                truncated,
            },
        }
    }

    fn piece(&mut self, data: &[u8]) {
        let room = self.limit.saturating_sub(self.kept) as usize;
        let keep = &data[..data.len().min(room)];
        self.kept += keep.len() as u64;
        self.total += data.len() as u64;
        self.buf.extend_from_slice(keep);
    }

    fn end(&mut self, aborted: bool) {
        if self.done {
            return;
        }
        self.done = true;
        // SECURITY: a body is kept only as the redactor returns it, and
        // one it cannot be sure of (cut off, unparsable) is counted only.
        let buf = std::mem::take(&mut self.buf);
        let complete = !aborted && self.kept == self.total;
        if self.total > 0 || !buf.is_empty() {
            let e = match self.policy.redactor.body(
                self.content_type.as_deref(),
                self.content_encoding.as_deref(),
                &buf,
                complete,
            ) {
                Kept::Bytes(bytes) => self.event(&bytes, self.total, !complete),
                Kept::Nothing => self.event(&[], self.total, self.total > 0),
            };
            self.rec.record(e);
        }
        if aborted {
            self.rec.record(Event::Error {
                conn: self.conn,
                req: self.req,
                message: "the body ended early".into(),
            });
        }
        // The response ends the exchange; a request body cut short is
        // recorded as an error, and the exchange still ends with its
        // response (or with `failed`, or when the exchange is dropped).
        if self.side == Side::Response {
            self.rec.record(Event::ExchangeEnd {
                conn: self.conn,
                req: self.req,
            });
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // A body dropped before its end: the client went away, or the
        // upstream failed.
        self.end(true);
    }
}

struct Recording<B> {
    inner: B,
    sink: Sink,
}

impl<B> Recording<B> {
    fn new(inner: B, mut sink: Sink) -> Self
    where
        B: HttpBody,
    {
        // An empty body may never be polled: it has ended already.
        if inner.is_end_stream() {
            sink.end(false);
        }
        Recording { inner, sink }
    }
}

impl<B> HttpBody for Recording<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(d) = f.data_ref() {
                    this.sink.piece(d);
                }
                // A body of known length is done with its last frame: its
                // reader may never poll again for the end, and dropping it
                // then is not an abort.
                if this.inner.is_end_stream() {
                    this.sink.end(false);
                }
            }
            Some(Err(_)) => this.sink.end(true),
            None => this.sink.end(false),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
