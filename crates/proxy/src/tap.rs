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

/// Watches one direction of a WebSocket tunnel and records each message
/// (RFC 6455 frames: client frames are masked, messages may be split into
/// frames, control frames may come between them). It only reads what
/// passes; the bytes themselves go through untouched.
pub struct WsTap {
    rec: Arc<Active>,
    conn: u64,
    req: u64,
    dir: &'static str,
    limit: u64,
    state: WsState,
    /// The data message being assembled: opcode, kept bytes, total length.
    data: Option<(u8, Vec<u8>, u64)>,
    /// The control frame being read.
    control: Option<(u8, Vec<u8>, u64)>,
    /// Per kind (ping, pong): the last one recorded (payload, when), and
    /// how many identical ones since were coalesced into a count.
    coalesced: [Coalesced; 2],
    /// The recording was closed (queue full): the tunnel must close.
    stopped: bool,
}

#[derive(Default)]
struct Coalesced {
    last: Option<(Vec<u8>, std::time::Instant)>,
    repeated: u64,
}

impl Drop for WsTap {
    fn drop(&mut self) {
        self.flush_coalesced();
    }
}

impl WsTap {
    /// Writes the control messages still only counted: the last one
    /// counted stands for itself and those before it. Called before any
    /// other message, so the recording keeps the order of events.
    fn flush_coalesced(&mut self) {
        for (i, opcode) in [(0, 9u8), (1, 10u8)] {
            let c = &mut self.coalesced[i];
            if c.repeated > 0 {
                let repeated = c.repeated - 1;
                c.repeated = 0;
                if let Some((data, _)) = c.last.take() {
                    let n = data.len() as u64;
                    self.emit((opcode, data, n), repeated);
                }
            }
        }
    }
}

enum WsState {
    Header(Vec<u8>),
    Payload {
        fin: bool,
        opcode: u8,
        mask: Option<[u8; 4]>,
        remaining: u64,
        offset: u64,
    },
    /// The stream stopped making sense: record nothing more.
    Lost,
}

impl Exchange {
    /// A tap for one direction of the WebSocket this exchange upgraded to:
    /// `client` (to the app) or `server` (to the client).
    pub fn ws_tap(&self, dir: &'static str) -> WsTap {
        WsTap {
            rec: self.rec.clone(),
            conn: self.conn,
            req: self.req,
            dir,
            limit: self.policy.body_limit,
            state: WsState::Header(Vec::new()),
            data: None,
            control: None,
            coalesced: Default::default(),
            stopped: false,
        }
    }
}

fn opcode_name(op: u8) -> &'static str {
    match op {
        1 => "text",
        2 => "binary",
        8 => "close",
        9 => "ping",
        10 => "pong",
        _ => "other",
    }
}

impl WsTap {
    /// Waits while the recorder is behind (backpressure on the side that
    /// sends); `false` if it stayed behind for long.
    pub async fn room(&self) -> bool {
        self.rec
            .queue()
            .room(std::time::Duration::from_secs(30))
            .await
    }

    /// Reads bytes passing one way; `false` once the recording has been
    /// closed (the recorder's queue was full): the caller closes the
    /// tunnel, so nothing passes unrecorded.
    pub fn feed(&mut self, mut bytes: &[u8]) -> bool {
        // A live WebSocket keeps its recording open.
        self.rec.touch();
        while !bytes.is_empty() && !self.stopped {
            match &mut self.state {
                WsState::Lost => return true,
                WsState::Header(h) => {
                    h.push(bytes[0]);
                    bytes = &bytes[1..];
                    if let Some(state) = parse_header(h) {
                        self.begin_frame(&state);
                        self.state = state;
                        self.maybe_end_frame();
                    } else if h.len() >= 14 {
                        self.state = WsState::Lost;
                    }
                }
                WsState::Payload {
                    mask,
                    remaining,
                    offset,
                    opcode,
                    ..
                } => {
                    let n = (*remaining).min(bytes.len() as u64) as usize;
                    let mut piece = bytes[..n].to_vec();
                    if let Some(m) = mask {
                        for (i, b) in piece.iter_mut().enumerate() {
                            *b ^= m[((*offset + i as u64) % 4) as usize];
                        }
                    }
                    *remaining -= n as u64;
                    *offset += n as u64;
                    let control = *opcode >= 8;
                    let limit = self.limit;
                    let target = if control {
                        &mut self.control
                    } else {
                        &mut self.data
                    };
                    if let Some((_, kept, total)) = target {
                        let room = limit.saturating_sub(kept.len() as u64) as usize;
                        kept.extend_from_slice(&piece[..piece.len().min(room)]);
                        *total += n as u64;
                    }
                    bytes = &bytes[n..];
                    self.maybe_end_frame();
                }
            }
        }
        !self.stopped
    }

    fn begin_frame(&mut self, state: &WsState) {
        if let WsState::Payload { opcode, .. } = state {
            if *opcode >= 8 {
                self.control = Some((*opcode, Vec::new(), 0));
            } else if *opcode != 0 || self.data.is_none() {
                // A new data message (opcode 0 continues the current one).
                self.data = Some((*opcode, Vec::new(), 0));
            }
        }
    }

    fn maybe_end_frame(&mut self) {
        let WsState::Payload {
            fin,
            opcode,
            remaining: 0,
            ..
        } = self.state
        else {
            return;
        };
        if opcode >= 8 {
            if let Some(m) = self.control.take() {
                self.control_message(m);
            }
        } else if fin {
            if let Some(m) = self.data.take() {
                self.flush_coalesced();
                self.emit(m, 0);
            }
        }
        self.state = WsState::Header(Vec::new());
    }

    /// A ping or pong identical to the last one recorded within a second
    /// is counted, not recorded (a flood of tiny pings is a cheap way to
    /// make a recorder work); others are recorded with the count.
    fn control_message(&mut self, m: (u8, Vec<u8>, u64)) {
        let slot = match m.0 {
            9 => 0,
            10 => 1,
            // A close is recorded as it is, after what it follows.
            _ => {
                self.flush_coalesced();
                return self.emit(m, 0);
            }
        };
        let now = std::time::Instant::now();
        let c = &mut self.coalesced[slot];
        if let Some((data, at)) = &c.last {
            if *data == m.1 && now.duration_since(*at) < std::time::Duration::from_secs(1) {
                c.repeated += 1;
                return;
            }
        }
        c.last = Some((m.1.clone(), now));
        let repeated = std::mem::take(&mut c.repeated);
        self.emit(m, repeated);
    }

    fn emit(&mut self, (opcode, kept, total): (u8, Vec<u8>, u64), repeated: u64) {
        let accepted = self.rec.record(Event::WsMessage {
            conn: self.conn,
            req: self.req,
            dir: self.dir.to_owned(),
            opcode: opcode_name(opcode).to_owned(),
            data: base64::engine::general_purpose::STANDARD.encode(&kept),
            len: total,
            truncated: (kept.len() as u64) < total,
            repeated,
        });
        if !accepted {
            self.stopped = true;
        }
    }
}

/// A complete frame header → the payload state; `None` while incomplete.
fn parse_header(h: &[u8]) -> Option<WsState> {
    if h.len() < 2 {
        return None;
    }
    let fin = h[0] & 0x80 != 0;
    let opcode = h[0] & 0x0f;
    let masked = h[1] & 0x80 != 0;
    let (len, mut at) = match h[1] & 0x7f {
        126 if h.len() >= 4 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
        127 if h.len() >= 10 => (u64::from_be_bytes(h[2..10].try_into().ok()?), 10),
        126 | 127 => return None,
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        if h.len() < at + 4 {
            return None;
        }
        let m = [h[at], h[at + 1], h[at + 2], h[at + 3]];
        at += 4;
        Some(m)
    } else {
        None
    };
    (h.len() == at).then_some(WsState::Payload {
        fin,
        opcode,
        mask,
        remaining: len,
        offset: 0,
    })
}
