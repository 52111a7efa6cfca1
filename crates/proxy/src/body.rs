//! Body types, and wrappers that keep bodies streaming while enforcing
//! limits: nothing here buffers a whole body.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use tokio::time::{Instant, Sleep};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response moat produces and every request it
/// forwards.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn boxed<B>(body: B) -> Body
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// The request body was larger than the app allows.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit of {0} bytes")]
pub struct BodyTooLarge(pub u64);

/// A body that was idle (no frame) for longer than its timeout.
#[derive(Debug, thiserror::Error)]
#[error("no data for {0:?}")]
pub struct IdleTimeoutElapsed(pub Duration);

pin_project_lite::pin_project! {
    /// Fails when no frame arrives for `timeout`; the clock restarts with
    /// every frame, so a slow but live stream is never cut.
    pub struct IdleTimeout<B> {
        #[pin]
        inner: B,
        timeout: Duration,
        #[pin]
        sleep: Sleep,
    }
}

impl<B> IdleTimeout<B> {
    pub fn new(inner: B, timeout: Duration) -> Self {
        IdleTimeout {
            inner,
            timeout,
            sleep: tokio::time::sleep(timeout),
        }
    }
}

impl<B> HttpBody for IdleTimeout<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep.as_mut().reset(Instant::now() + *this.timeout);
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                ready!(this.sleep.poll(cx));
                Poll::Ready(Some(Err(Box::new(IdleTimeoutElapsed(*this.timeout)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// Counts the bytes of a response body and calls `done` once, when the
    /// body ends or is dropped (client gone), so the access log sees the real
    /// size and duration of streamed responses.
    pub struct Counted<B, F: FnOnce(u64)> {
        #[pin]
        inner: B,
        bytes: u64,
        done: Option<F>,
    }

    impl<B, F: FnOnce(u64)> PinnedDrop for Counted<B, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(done) = this.done.take() {
                done(*this.bytes);
            }
        }
    }
}

impl<B, F: FnOnce(u64)> Counted<B, F> {
    pub fn new(inner: B, done: F) -> Self {
        Counted {
            inner,
            bytes: 0,
            done: Some(done),
        }
    }
}

impl<B, F> HttpBody for Counted<B, F>
where
    B: HttpBody<Data = Bytes>,
    F: FnOnce(u64),
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(f)) = &frame {
            if let Some(d) = f.data_ref() {
                *this.bytes += d.len() as u64;
            }
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

/// What went wrong with a client's request body, for the status code: a
/// failure of the client's own body is the client's (4xx), never a 502
/// blamed on the app.
#[derive(Debug, Default)]
pub struct BodyFault(std::sync::atomic::AtomicU8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Over the app's `max_body_size`: 413.
    TooLarge,
    /// Slower than `server.min_body_rate`, or idle too long: 408.
    TooSlow,
    /// Malformed framing (a bad chunk) or cut off: 400.
    Malformed,
}

impl BodyFault {
    fn set(&self, f: Fault) {
        let v = match f {
            Fault::None => 0,
            Fault::TooLarge => 1,
            Fault::TooSlow => 2,
            Fault::Malformed => 3,
        };
        // The first fault is the cause; later ones follow from it.
        let _ = self
            .0
            .compare_exchange(0, v, Ordering::AcqRel, Ordering::Acquire);
    }

    pub fn get(&self) -> Fault {
        match self.0.load(Ordering::Acquire) {
            1 => Fault::TooLarge,
            2 => Fault::TooSlow,
            3 => Fault::Malformed,
            _ => Fault::None,
        }
    }
}

/// The body arrived slower than the minimum rate.
#[derive(Debug, thiserror::Error)]
#[error("request body slower than {0} bytes/s")]
pub struct TooSlow(pub u64);

pin_project_lite::pin_project! {
    /// A client's request body on its way to an app: at most `limit`
    /// bytes, and at least `min_rate` bytes per second of the time spent
    /// waiting for the client (after `grace`; time the app
    /// spends not reading is not the client's). SECURITY: a trickled upload
    /// cannot hold an upstream connection for the whole idle timeout. Any
    /// failure is recorded in `fault` so the caller answers for the client.
    pub struct ClientBody<B> {
        #[pin]
        inner: B,
        remaining: u64,
        limit: u64,
        min_rate: u64,
        grace: Duration,
        received: u64,
        // Time spent waiting on the client so far.
        waited: Duration,
        waiting_since: Option<Instant>,
        #[pin]
        deadline: Sleep,
        fault: Arc<BodyFault>,
    }
}

impl<B> ClientBody<B> {
    /// `grace`: how long the client may keep moat waiting before the rate
    /// applies (a rate measured over a few bytes is noise).
    pub fn new(
        inner: B,
        limit: u64,
        (min_rate, grace): (u64, Duration),
        fault: Arc<BodyFault>,
    ) -> Self {
        ClientBody {
            inner,
            remaining: limit,
            limit,
            min_rate,
            grace,
            received: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            deadline: tokio::time::sleep(Duration::ZERO),
            fault,
        }
    }
}

/// How long the client may have kept moat waiting, having sent `received`
/// bytes.
fn wait_budget(received: u64, min_rate: u64, grace: Duration) -> Duration {
    grace + Duration::from_secs_f64(received as f64 / min_rate as f64)
}

impl<B> HttpBody for ClientBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let polled = this.inner.poll_frame(cx);
        if polled.is_ready() {
            if let Some(since) = this.waiting_since.take() {
                *this.waited += since.elapsed();
            }
        }
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > *this.remaining {
                        this.fault.set(Fault::TooLarge);
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge(*this.limit)))));
                    }
                    *this.remaining -= len;
                    *this.received += len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e: BoxError = e.into();
                this.fault.set(if e.is::<IdleTimeoutElapsed>() {
                    Fault::TooSlow
                } else {
                    Fault::Malformed
                });
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending if *this.min_rate == 0 => Poll::Pending,
            Poll::Pending => {
                if this.waiting_since.is_none() {
                    let now = Instant::now();
                    *this.waiting_since = Some(now);
                    let left = wait_budget(*this.received, *this.min_rate, *this.grace)
                        .saturating_sub(*this.waited);
                    this.deadline.as_mut().reset(now + left);
                }
                ready!(this.deadline.poll(cx));
                this.fault.set(Fault::TooSlow);
                Poll::Ready(Some(Err(Box::new(TooSlow(*this.min_rate)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
