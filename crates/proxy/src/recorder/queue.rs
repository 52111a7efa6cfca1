//! The recorder's queue: events handed to the recorder thread and not yet
//! written, bounded in count and bytes.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use moat_recording::Event;

/// Events handed to the recorder thread and not yet written.
///
/// SECURITY: bounded, so traffic (a WebSocket of tiny pings, a flood of
/// recorded requests) cannot grow moat's memory faster than the disk takes
/// it. A recording whose event does not fit is closed cleanly with the
/// reason recorded ("recorder queue full"), and its WebSocket tunnels are
/// closed with it: what is recorded is never silently incomplete.
#[derive(Default)]
pub struct Queue {
    events: AtomicUsize,
    bytes: AtomicU64,
    /// Someone waits in [`Queue::room`] for the queue to drain.
    waiting: AtomicBool,
    drained: tokio::sync::Notify,
}

/// Most events waiting for the recorder thread.
pub const MAX_QUEUED_EVENTS: usize = 100_000;
/// Most bytes (of recorded data) waiting for the recorder thread.
pub const MAX_QUEUED_BYTES: u64 = 64 << 20;

impl Queue {
    /// (events, bytes) waiting now.
    pub fn depth(&self) -> (usize, u64) {
        (
            self.events.load(Ordering::SeqCst),
            self.bytes.load(Ordering::SeqCst),
        )
    }

    pub(super) fn try_reserve(&self, size: u64) -> bool {
        if self.events.load(Ordering::SeqCst) >= MAX_QUEUED_EVENTS
            || self.bytes.load(Ordering::SeqCst) + size > MAX_QUEUED_BYTES
        {
            return false;
        }
        self.events.fetch_add(1, Ordering::SeqCst);
        self.bytes.fetch_add(size, Ordering::SeqCst);
        true
    }

    pub(super) fn release(&self, size: u64) {
        self.events.fetch_sub(1, Ordering::SeqCst);
        self.bytes.fetch_sub(size, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) && !self.is_busy() {
            self.waiting.store(false, Ordering::SeqCst);
            self.drained.notify_waiters();
        }
    }

    /// Backpressure: waits (up to `within`) until the queue is at most half
    /// full. Recorded requests and WebSocket tunnels wait here before they
    /// produce more, so a client that outpaces the recorder is slowed to
    /// its pace instead of filling memory; `false` if it did not drain.
    pub async fn room(&self, within: Duration) -> bool {
        if !self.is_busy() {
            return true;
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let drained = self.drained.notified();
            self.waiting.store(true, Ordering::SeqCst);
            if !self.is_busy() {
                return true;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return !self.is_busy();
            }
        }
    }

    /// More than half full: no new recording starts until it drains.
    pub(super) fn is_busy(&self) -> bool {
        let (e, b) = self.depth();
        e >= MAX_QUEUED_EVENTS / 2 || b >= MAX_QUEUED_BYTES / 2
    }
}

/// Roughly what an event costs in the queue.
pub(super) fn event_size(e: &Event) -> u64 {
    let data = match e {
        Event::RequestBody { data, .. }
        | Event::ResponseBody { data, .. }
        | Event::WsMessage { data, .. } => data.len(),
        Event::RequestHead { headers, .. } | Event::ResponseHead { headers, .. } => {
            headers.iter().map(|(k, v)| k.len() + v.len()).sum()
        }
        _ => 0,
    };
    data as u64 + 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_bounded_in_events_and_bytes() {
        let q = Queue::default();
        assert!(q.try_reserve(MAX_QUEUED_BYTES - 10));
        assert!(!q.try_reserve(100), "bytes are bounded");
        assert!(q.is_busy());
        q.release(MAX_QUEUED_BYTES - 10);
        assert_eq!(q.depth(), (0, 0));
        for _ in 0..MAX_QUEUED_EVENTS {
            assert!(q.try_reserve(1));
        }
        assert!(!q.try_reserve(1), "events are bounded");
    }
}
