//! Every open client connection: the caps, which connection gives way when
//! a cap is reached, when an idle connection is closed, and the drain at
//! shutdown.
//!
//! SECURITY: a connection that holds no request costs the client nothing
//! and moat a socket and memory, so it must never be what keeps anyone
//! else out. Each connection carries its own activity ([`Tracked`]): the
//! requests in flight and since when it has been idle. An idle connection
//! is closed after `header_read_timeout` if it never sent a request, after
//! `keepalive_timeout` between requests (HTTP/1.1 keep-alive and HTTP/2
//! with no open stream alike); and when a pool is full, the connection idle
//! longest is closed to make room, so a flood of silent connections cannot
//! shut out a client that has something to ask.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Notify;

/// Which listener a connection came in on; each has its own cap, so the
/// plain-HTTP redirect listener can never fill the HTTPS listener's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pool {
    Apps,
    Redirect,
}

/// The registry of open connections.
pub struct Connections {
    epoch: Instant,
    inner: Mutex<Inner>,
    /// Woken whenever a connection closes, for the drain at shutdown.
    closed: Notify,
}

#[derive(Default)]
struct Inner {
    open: HashMap<u64, Arc<Tracked>>,
    /// Connections per pool that count against its cap (evicted ones do
    /// not: they are already closing).
    counted: HashMap<Pool, usize>,
}

/// One connection's activity.
pub struct Tracked {
    id: u64,
    pool: Pool,
    epoch: Instant,
    in_flight: AtomicU32,
    /// Milliseconds since the registry's epoch when the connection last
    /// became idle (accept, or the end of its last response).
    idle_since_ms: AtomicU64,
    /// A request has been seen: later idleness is keep-alive.
    served: AtomicBool,
    evicted: AtomicBool,
    evict: Notify,
}

/// Held by a connection's task for as long as it is open.
pub struct Slot {
    pub tracked: Arc<Tracked>,
    registry: Arc<Connections>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            epoch: Instant::now(),
            inner: Mutex::new(Inner::default()),
            closed: Notify::new(),
        }
    }
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits connection `id` into `pool` under `cap`. At the cap the
    /// pool's connection idle longest is told to close and the new one
    /// takes its place; with none idle, `None`: the caller closes the new
    /// connection.
    pub fn admit(self: &Arc<Self>, id: u64, pool: Pool, cap: usize) -> Option<Slot> {
        let now = self.now_ms();
        let mut inner = self.lock();
        let counted = inner.counted.get(&pool).copied().unwrap_or(0);
        if counted >= cap {
            let victim = inner
                .open
                .values()
                .filter(|t| t.pool == pool && !t.evicted.load(Ordering::Relaxed) && t.is_idle())
                .min_by_key(|t| t.idle_since_ms.load(Ordering::Relaxed))
                .cloned()?;
            victim.evicted.store(true, Ordering::Relaxed);
            victim.evict.notify_one();
            *inner.counted.entry(pool).or_insert(0) -= 1;
            tracing::debug!(pool = ?pool, evicted = victim.id, "pool full: the connection idle longest gives way");
        }
        let tracked = Arc::new(Tracked {
            id,
            pool,
            epoch: self.epoch,
            in_flight: AtomicU32::new(0),
            idle_since_ms: AtomicU64::new(now),
            served: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        });
        inner.open.insert(id, tracked.clone());
        *inner.counted.entry(pool).or_insert(0) += 1;
        Some(Slot {
            tracked,
            registry: self.clone(),
        })
    }

    /// Open connections (all pools, closing ones included).
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every connection has closed.
    pub async fn drained(&self) {
        loop {
            let notified = self.closed.notified();
            if self.is_empty() {
                return;
            }
            notified.await;
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Slot {
    /// The connection's id, unique for the life of the process.
    pub fn id(&self) -> u64 {
        self.tracked.id
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if inner.open.remove(&self.tracked.id).is_some()
            && !self.tracked.evicted.load(Ordering::Relaxed)
        {
            if let Some(n) = inner.counted.get_mut(&self.tracked.pool) {
                *n = n.saturating_sub(1);
            }
        }
        drop(inner);
        self.registry.closed.notify_waiters();
    }
}

impl Tracked {
    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A request began; the returned guard ends it when dropped (with the
    /// response body, so a streaming response keeps the connection busy).
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.served.store(true, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// How long until the connection has been idle too long, given the
    /// timeouts; `None` while a request is in flight.
    pub fn idle_deadline(&self, first_request: Duration, keepalive: Duration) -> Option<Duration> {
        if !self.is_idle() {
            return None;
        }
        let limit = if self.served.load(Ordering::Relaxed) {
            keepalive
        } else {
            first_request
        };
        let idle = Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.idle_since_ms.load(Ordering::Relaxed)),
        );
        Some(limit.saturating_sub(idle))
    }

    /// Resolves when the registry chose this connection to make room.
    pub async fn evicted(&self) {
        if self.evicted.load(Ordering::Relaxed) {
            return;
        }
        self.evict.notified().await
    }
}

/// One request in flight on a connection.
pub struct InFlight(Arc<Tracked>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let t = &self.0;
        t.idle_since_ms.store(t.now_ms(), Ordering::Relaxed);
        t.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pin_project_lite::pin_project! {
    /// A body that holds guards until it is done or dropped: the request
    /// counts as in flight while its response streams.
    pub struct Guarded<B, G> {
        #[pin]
        inner: B,
        guard: Option<G>,
    }
}

impl<B, G> Guarded<B, G> {
    pub fn new(inner: B, guard: G) -> Self {
        Guarded {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B: HttpBody<Data = Bytes>, G> HttpBody for Guarded<B, G> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(None) = polled {
            this.guard.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Counts per client address (open connections, or requests in flight)
/// against a cap.
#[derive(Default, Clone)]
pub struct PerClient {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One unit of a client's count; dropping it gives it back.
pub struct ClientPermit {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerClient {
    /// A unit for `ip` under `cap`, or `None` at the cap.
    pub fn acquire(&self, ip: IpAddr, cap: usize) -> Option<ClientPermit> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(ClientPermit {
            ip,
            open: self.open.clone(),
        })
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

/// Descriptors kept free of client connections: for upstream connections
/// beyond one per client, the store, recordings, logs and the admin socket.
pub const FD_RESERVE: u64 = 256;

/// Raises the soft open-file limit to the hard one and returns it. A
/// gateway holds two descriptors per proxied request (client and
/// upstream); the usual soft limit of 1024 is far too low for that.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Ok(lim.rlim_cur as u64)
}

/// The most client connections `nofile` descriptors carry with the
/// reserve kept: each may hold an upstream connection too.
pub fn connections_for_descriptors(nofile: u64) -> usize {
    usize::try_from(nofile.saturating_sub(FD_RESERVE) / 2)
        .unwrap_or(usize::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_pool_evicts_the_connection_idle_longest() {
        let reg = Arc::new(Connections::default());
        let a = reg.admit(1, Pool::Apps, 2).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = reg.admit(2, Pool::Apps, 2).unwrap();
        // b is busy: only a may give way.
        let busy = b.tracked.request_started();
        let c = reg
            .admit(3, Pool::Apps, 2)
            .expect("an idle connection gives way");
        assert!(a.tracked.evicted.load(Ordering::Relaxed));
        assert!(!b.tracked.evicted.load(Ordering::Relaxed));
        // Now b (busy) and c (idle, newest): c gives way next.
        let d = reg.admit(4, Pool::Apps, 2).unwrap();
        assert!(c.tracked.evicted.load(Ordering::Relaxed));
        // Both counted ones busy: a new connection is refused.
        let _busy_d = d.tracked.request_started();
        assert!(reg.admit(5, Pool::Apps, 2).is_none());
        // Another pool has its own cap.
        assert!(reg.admit(6, Pool::Redirect, 1).is_some());
        drop(busy);
        assert!(reg.admit(7, Pool::Apps, 2).is_some(), "b idle again");
        drop((a, b, c, d));
    }

    #[test]
    fn idle_deadline_follows_the_state() {
        let reg = Arc::new(Connections::default());
        let s = reg.admit(1, Pool::Apps, 10).unwrap();
        let first = Duration::from_secs(10);
        let keep = Duration::from_secs(60);
        assert!(s.tracked.idle_deadline(first, keep).unwrap() <= first);
        let g = s.tracked.request_started();
        assert_eq!(s.tracked.idle_deadline(first, keep), None);
        drop(g);
        let left = s.tracked.idle_deadline(first, keep).unwrap();
        assert!(
            left > first && left <= keep,
            "keep-alive applies after a request"
        );
    }

    #[test]
    fn per_client_caps() {
        let p = PerClient::default();
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        let a = p.acquire(ip, 2).unwrap();
        let _b = p.acquire(ip, 2).unwrap();
        assert!(p.acquire(ip, 2).is_none());
        drop(a);
        assert!(p.acquire(ip, 2).is_some());
    }
}

/// Held for as long as a connection is open.
pub struct ConnPermit {
    pub(crate) slot: Slot,
    pub(crate) _client: Option<ClientPermit>,
}

/// A connection's place in the caps, handed to a WebSocket tunnel in the
/// request's extensions: once upgraded, the HTTP connection's task ends,
/// and without this the tunnel would hold a socket outside every cap.
#[derive(Clone)]
pub struct ConnHold(pub(crate) Arc<ConnPermit>);

impl ConnHold {
    /// Keeps the connection counted, and busy (never the idle one to give
    /// way), until the returned value is dropped.
    pub fn keep(&self) -> (ConnHold, InFlight) {
        (self.clone(), self.0.slot.tracked.request_started())
    }
}
