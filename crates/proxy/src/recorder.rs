//! The recorder: turns the events of recorded sessions into recordings on
//! local disk, off the request path.
//!
//! Request handling only sends events over a channel; one thread owns the
//! open recordings, writes them (compression, hashing, fsync), flushes
//! every second so a crash loses at most a second of events, and updates
//! the index. A recording is one session's visit to one app: it starts at
//! the first recorded request and ends at sign-out, after the sign-in idle
//! or absolute timeout, or when moat stops.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moat_recording::{Event, Kek, Metadata, Writer};
use moat_store::{RecordingRow, Store};

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

    fn try_reserve(&self, size: u64) -> bool {
        if self.events.load(Ordering::SeqCst) >= MAX_QUEUED_EVENTS
            || self.bytes.load(Ordering::SeqCst) + size > MAX_QUEUED_BYTES
        {
            return false;
        }
        self.events.fetch_add(1, Ordering::SeqCst);
        self.bytes.fetch_add(size, Ordering::SeqCst);
        true
    }

    fn release(&self, size: u64) {
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
    fn is_busy(&self) -> bool {
        let (e, b) = self.depth();
        e >= MAX_QUEUED_EVENTS / 2 || b >= MAX_QUEUED_BYTES / 2
    }
}

/// Roughly what an event costs in the queue.
fn event_size(e: &Event) -> u64 {
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

/// One recording in progress, shared by the requests of its session.
pub struct Active {
    /// Shared, so each event carries it without a copy.
    pub id: Arc<str>,
    pub app: String,
    session: String,
    started: Instant,
    /// Milliseconds after `started` of the last activity (a request, or
    /// a WebSocket message): the idle timeout counts from it.
    last_seen_ms: AtomicU64,
    next_req: AtomicU64,
    conns: Mutex<std::collections::HashSet<u64>>,
    /// The client address that started it (for the per-client cap).
    client: String,
    tx: mpsc::Sender<Cmd>,
    queue: Arc<Queue>,
    /// An event did not fit in the queue: the recording was closed.
    overflowed: AtomicBool,
}

impl Active {
    pub fn next_req(&self) -> u64 {
        self.next_req.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues an event; `false` when the recording has been closed because
    /// the queue was full (the caller should stop what produces events).
    pub fn record(&self, event: Event) -> bool {
        if self.overflowed.load(Ordering::Relaxed) {
            return false;
        }
        let size = event_size(&event);
        if !self.queue.try_reserve(size) {
            if !self.overflowed.swap(true, Ordering::Relaxed) {
                crate::log_limit::warn_every(
                    "recorder-queue",
                    "",
                    Duration::from_secs(5),
                    |suppressed| {
                        tracing::warn!(
                            recording = &*self.id,
                            app = self.app,
                            suppressed,
                            "the recorder queue is full: the recording is closed (recorder queue full)"
                        )
                    },
                );
                // Control messages are not counted: the close must arrive.
                let _ = self
                    .tx
                    .send(Cmd::End(self.id.clone(), "recorder queue full"));
            }
            return false;
        }
        if self
            .tx
            .send(Cmd::Event(self.id.clone(), event, size))
            .is_err()
        {
            // The recorder is gone: give the room back.
            self.queue.release(size);
            return false;
        }
        true
    }

    /// Marks the recording active now (its idle timeout restarts).
    pub fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_seen_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The recorder's queue this recording's events go through.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The recording was closed because the recorder fell behind.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Records the connection's opening the first time it carries a
    /// request of this recording.
    pub fn saw_conn(&self, conn: u64, client: &str, tls: bool) {
        let first = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(conn);
        if first {
            self.record(Event::ConnOpen {
                conn,
                client: client.to_owned(),
                tls,
            });
        }
    }
}

enum Cmd {
    /// A new recording, and the bucket it goes to when it closes.
    Start(Box<Metadata>, Option<String>),
    /// An event and its size in the queue.
    Event(Arc<str>, Event, u64),
    End(Arc<str>, &'static str),
    Stop(mpsc::Sender<()>),
}

pub struct Recorder {
    /// The last storage state seen, to log changes.
    pub last_state: Mutex<Option<StorageState>>,
    pub queue: Arc<Queue>,
    tx: mpsc::Sender<Cmd>,
    active: Mutex<HashMap<(String, String), Arc<Active>>>,
    root: PathBuf,
    kek: Kek,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Local storage as the recorder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageState {
    Available,
    /// Free space is below the minimum: no new recorded session starts.
    Low,
    /// Free space is below half the minimum.
    CriticallyLow,
    OutOfStorage,
    /// Free space could not be read.
    Unknown,
    /// No app records sessions.
    NotConfigured,
}

impl StorageState {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageState::Available => "available",
            StorageState::Low => "low storage",
            StorageState::CriticallyLow => "critically low storage",
            StorageState::OutOfStorage => "out of storage",
            StorageState::Unknown => "unknown",
            StorageState::NotConfigured => "not configured",
        }
    }
}

/// Free bytes on the file system holding `path`.
pub fn available_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs writes into `s`, a zeroed struct of the right type,
    // and reads the NUL-terminated path `c`.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some(s.f_bavail as u64 * s.f_frsize as u64)
}

pub fn storage_state(path: &Path, minimum: u64) -> StorageState {
    match available_bytes(path) {
        None => StorageState::Unknown,
        Some(0) => StorageState::OutOfStorage,
        Some(free) if free < minimum / 2 => StorageState::CriticallyLow,
        Some(free) if free < minimum => StorageState::Low,
        Some(_) => StorageState::Available,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Recorder {
    /// Starts the recorder thread, which first seals recordings a previous
    /// run left open (a crash) as incomplete.
    pub fn start(
        root: PathBuf,
        kek: Kek,
        store: Store,
        handle: tokio::runtime::Handle,
    ) -> std::io::Result<Recorder> {
        crate::tls::create_private_dir(&root)?;
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(&root) {
                if m.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        path = %root.display(),
                        "the recordings folder can be read by other local users (mode {:o}); each recording inside is kept 0700, but chmod 700 the folder",
                        m.permissions().mode() & 0o777
                    );
                }
            }
        }
        let (tx, rx) = mpsc::channel();
        let thread_root = root.clone();
        let thread_kek = kek.clone();
        let queue = Arc::new(Queue::default());
        let thread_queue = queue.clone();
        let thread = std::thread::Builder::new()
            .name("moat-recorder".into())
            .spawn(move || run(rx, thread_root, thread_kek, store, handle, thread_queue))?;
        Ok(Recorder {
            last_state: Mutex::new(None),
            queue,
            tx,
            active: Mutex::new(HashMap::new()),
            root,
            kek,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The key-encryption key (verification checks key attestations).
    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    /// The folder of a recording on local disk. `id` must be a recording
    /// id (letters and digits), never a path.
    pub fn dir_of(&self, id: &str) -> Option<PathBuf> {
        (!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| self.root.join(id))
    }

    /// Recordings in progress.
    pub fn open_count(&self) -> usize {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The recording of `session` at `app`, started if there is none.
    /// `None` when a new one may not start: `caps` (open recordings in
    /// all, and per client address) are reached, or the queue is busy.
    pub fn session(
        &self,
        app: &str,
        session: &str,
        client: &str,
        caps: (usize, usize),
        bucket: Option<String>,
        meta: impl FnOnce(String) -> Metadata,
    ) -> Result<Arc<Active>, &'static str> {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        let key = (app.to_owned(), session.to_owned());
        if let Some(a) = active.get(&key) {
            if !a.overflowed() {
                a.touch();
                return Ok(a.clone());
            }
            // Closed for a full queue: the session's next request starts
            // a new recording (once the queue has room).
            active.remove(&key);
        }
        let (max_open, max_per_client) = caps;
        if active.len() >= max_open {
            return Err("recording.max_open recordings are in progress");
        }
        if active.values().filter(|a| a.client == client).count() >= max_per_client {
            return Err("recording.max_open_per_client recordings of this client are in progress");
        }
        if self.queue.is_busy() {
            return Err("the recorder is behind (its queue is over half full)");
        }
        let id = new_id();
        let _ = self.tx.send(Cmd::Start(Box::new(meta(id.clone())), bucket));
        let a = Arc::new(Active {
            id: id.into(),
            app: app.to_owned(),
            session: session.to_owned(),
            started: Instant::now(),
            last_seen_ms: AtomicU64::new(0),
            next_req: AtomicU64::new(1),
            conns: Mutex::new(Default::default()),
            client: client.to_owned(),
            tx: self.tx.clone(),
            queue: self.queue.clone(),
            overflowed: AtomicBool::new(false),
        });
        active.insert(key, a.clone());
        Ok(a)
    }

    /// Ends every recording of a session (sign-out).
    pub fn end_session(&self, session: &str, why: &'static str) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        active.retain(|(_, s), a| {
            if s == session {
                let _ = self.tx.send(Cmd::End(a.id.clone(), why));
                false
            } else {
                true
            }
        });
    }

    /// Ends recordings idle longer than `idle`, or older than `absolute`.
    pub fn sweep(&self, idle: Duration, absolute: Duration) {
        let now = Instant::now();
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        active.retain(|_, a| {
            let last = a.started + Duration::from_millis(a.last_seen_ms.load(Ordering::Relaxed));
            let why = if now.duration_since(last) >= idle {
                Some("idle timeout")
            } else if now.duration_since(a.started) >= absolute {
                Some("absolute timeout")
            } else {
                None
            };
            match why {
                Some(why) => {
                    let _ = self.tx.send(Cmd::End(a.id.clone(), why));
                    tracing::debug!(app = a.app, session = a.session, "recording ended: {why}");
                    false
                }
                None => true,
            }
        });
    }

    /// Ends every recording in progress (critically low storage), cleanly.
    pub fn end_all(&self, why: &'static str) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        for (_, a) in active.drain() {
            let _ = self.tx.send(Cmd::End(a.id.clone(), why));
        }
    }

    /// Ends every recording and waits until they are sealed.
    pub fn stop(&self) {
        let ids: Vec<Arc<str>> = {
            let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
            active.drain().map(|(_, a)| a.id.clone()).collect()
        };
        for id in ids {
            let _ = self.tx.send(Cmd::End(id, "moat stopped"));
        }
        let (done_tx, done_rx) = mpsc::channel();
        if self.tx.send(Cmd::Stop(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(Duration::from_secs(30));
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// A sortable, unique recording id: the start time and random bits.
fn new_id() -> String {
    let mut r = [0u8; 6];
    getrandom::fill(&mut r).expect("the operating system's random generator works");
    format!(
        "r{:013x}{}",
        now_ms(),
        r.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn row(meta: &Metadata, state: &str, bucket: Option<String>) -> RecordingRow {
    RecordingRow {
        id: meta.id.clone(),
        app: meta.app.clone(),
        user: meta.user.clone(),
        client_ip: meta.client_ip.clone(),
        user_agent: meta.user_agent.clone(),
        started_at_ms: meta.started_at_ms,
        ended_at_ms: None,
        state: state.to_owned(),
        closed_because: None,
        events: 0,
        bytes: 0,
        location: "local".into(),
        bucket,
        retain_until_ms: None,
        delete_after_ms: None,
    }
}

/// The retention dates of a recording that closed at `ended_ms`, from the
/// policy its session.json names.
pub fn dates_for(meta: &Metadata, ended_ms: i64) -> moat_policy::retention::Dates {
    match (meta.policy.retain_for_days, meta.policy.delete_after_days) {
        (Some(r), Some(d)) => moat_policy::retention::dates(
            &moat_policy::retention::Retention {
                retain_for_days: r,
                retain_overridable: true,
                delete_after_days: d,
                delete_overridable: true,
            },
            ended_ms,
        ),
        _ => moat_policy::retention::NO_POLICY,
    }
}

fn index(store: &Store, handle: &tokio::runtime::Handle, r: RecordingRow) {
    if let Err(e) = handle.block_on(store.put_recording(&r)) {
        tracing::error!(recording = r.id, "cannot index the recording: {e}");
    }
}

/// Seals the recordings a previous run left open.
fn recover(root: &Path, kek: &Kek, store: &Store, handle: &tokio::runtime::Handle) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let dir = e.path();
        if !dir.join(moat_recording::files::SESSION).exists()
            || dir.join(moat_recording::files::MANIFEST).exists()
        {
            continue;
        }
        match moat_recording::seal::recover(&dir, kek, now_ms()) {
            Ok(m) => {
                tracing::warn!(
                    recording = m.id,
                    chunks = m.chunks.len(),
                    "a recording left open by an unclean stop was sealed as incomplete"
                );
                if let Ok(meta) = moat_recording::verify::metadata(&dir) {
                    // The index knows the bucket it was meant for: it is
                    // moved there like any other.
                    let bucket = handle
                        .block_on(store.recording(&meta.id))
                        .ok()
                        .flatten()
                        .and_then(|r| r.bucket);
                    let events = moat_recording::verify::events(&dir, kek)
                        .map(|e| e.len())
                        .unwrap_or(0);
                    index(
                        store,
                        handle,
                        RecordingRow {
                            ended_at_ms: Some(m.ended_at_ms),
                            retain_until_ms: dates_for(&meta, m.ended_at_ms).retain_until_ms,
                            delete_after_ms: dates_for(&meta, m.ended_at_ms).delete_after_ms,
                            state: "incomplete".into(),
                            closed_because: Some(m.closed_because.clone()),
                            events: events as i64,
                            bytes: m.chunks.iter().map(|c| c.size as i64).sum(),
                            ..row(&meta, "incomplete", bucket)
                        },
                    );
                }
            }
            Err(e) => {
                tracing::error!(dir = %dir.display(), "cannot seal a recording left open: {e}")
            }
        }
    }
}

fn run(
    rx: mpsc::Receiver<Cmd>,
    root: PathBuf,
    kek: Kek,
    store: Store,
    handle: tokio::runtime::Handle,
    queue: Arc<Queue>,
) {
    // First, on this thread (it may block on the store), seal what a
    // previous run left open.
    recover(&root, &kek, &store, &handle);
    // Recordings closed but not yet moved to their bucket (moat stopped,
    // or the bucket was down): move them now.
    match handle.block_on(store.pending_uploads()) {
        Ok(rows) => {
            for r in rows {
                if let Some(b) = r.bucket {
                    crate::buckets::spawn_upload(
                        &handle,
                        store.clone(),
                        kek.clone(),
                        root.join(&r.id),
                        r.id,
                        b,
                    );
                }
            }
        }
        Err(e) => tracing::error!("cannot list recordings waiting for upload: {e}"),
    }
    let mut open: HashMap<String, (Writer, Option<String>)> = HashMap::new();
    let mut last_flush = Instant::now();
    loop {
        let cmd = rx.recv_timeout(Duration::from_millis(250));
        match cmd {
            Ok(Cmd::Start(meta, bucket)) => match Writer::create(&root, *meta, &kek) {
                Ok(w) => {
                    index(
                        &store,
                        &handle,
                        row(w.metadata(), "recording", bucket.clone()),
                    );
                    tracing::info!(
                        recording = w.metadata().id,
                        app = w.metadata().app,
                        "recording started"
                    );
                    open.insert(w.metadata().id.clone(), (w, bucket));
                }
                Err(e) => tracing::error!("cannot start a recording: {e}"),
            },
            Ok(Cmd::Event(id, event, size)) => {
                queue.release(size);
                if let Some((w, _)) = open.get_mut(&*id) {
                    if let Err(e) = w.record(event) {
                        tracing::error!(recording = &*id, "cannot write the recording: {e}");
                    }
                }
            }
            Ok(Cmd::End(id, why)) => {
                if let Some((w, bucket)) = open.remove(&*id) {
                    let meta = w.metadata().clone();
                    let events = w.events();
                    let dir = w.dir().to_owned();
                    match w.finish(why, now_ms()) {
                        Ok(m) => {
                            index(
                                &store,
                                &handle,
                                RecordingRow {
                                    ended_at_ms: Some(m.ended_at_ms),
                                    retain_until_ms: dates_for(&meta, m.ended_at_ms)
                                        .retain_until_ms,
                                    delete_after_ms: dates_for(&meta, m.ended_at_ms)
                                        .delete_after_ms,
                                    state: "complete".into(),
                                    closed_because: Some(why.to_owned()),
                                    events: events as i64,
                                    bytes: m.chunks.iter().map(|c| c.size as i64).sum(),
                                    ..row(&meta, "complete", bucket.clone())
                                },
                            );
                            tracing::info!(recording = &*id, why, "recording closed");
                            if let Some(b) = bucket {
                                crate::buckets::spawn_upload(
                                    &handle,
                                    store.clone(),
                                    kek.clone(),
                                    dir,
                                    id.to_string(),
                                    b,
                                );
                            }
                        }
                        Err(e) => {
                            tracing::error!(recording = &*id, "cannot seal the recording: {e}")
                        }
                    }
                }
            }
            Ok(Cmd::Stop(done)) => {
                let _ = done.send(());
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if last_flush.elapsed() >= Duration::from_secs(1) {
            for (id, (w, _)) in open.iter_mut() {
                if let Err(e) = w.flush() {
                    tracing::error!(recording = id, "cannot flush the recording: {e}");
                }
            }
            last_flush = Instant::now();
        }
    }
}

/// Deletes a closed recording from where it is (local disk or its bucket).
pub async fn delete_stored(
    store: &Store,
    kek: &Kek,
    root: &Path,
    row: &RecordingRow,
) -> Result<(), String> {
    if let Some(bucket) = row.location.strip_prefix("bucket:") {
        let cfg = crate::buckets::load(store, kek, bucket).await?;
        let os = moat_recording::bucket::open(&cfg)?;
        moat_recording::bucket::delete(os.as_ref(), cfg.prefix(), &row.id).await
    } else {
        match std::fs::remove_dir_all(root.join(&row.id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The reaper: deletes every recording whose deletion date has come (and
/// whose retention has ended) at `now_ms`, from storage and the index.
/// Returns how many. The clock is passed in, so it is tested without
/// waiting days.
pub async fn reap(store: &Store, kek: &Kek, root: &Path, now_ms: i64) -> usize {
    let due = match store.recordings_due(now_ms).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("reaper: cannot list recordings: {e}");
            return 0;
        }
    };
    let reaper = moat_store::Actor {
        name: "moat".into(),
        source: "reaper".into(),
    };
    let mut done = 0;
    for row in due {
        // Decided again here, with the pure rule, whatever the query said.
        let dates = moat_policy::retention::Dates {
            retain_until_ms: row.retain_until_ms,
            delete_after_ms: row.delete_after_ms,
        };
        if !moat_policy::retention::due(&dates, now_ms) {
            continue;
        }
        match delete_stored(store, kek, root, &row).await {
            Ok(()) => match store
                .remove_recording(&reaper, &row.id, "recording.reap")
                .await
            {
                Ok(()) => {
                    tracing::info!(
                        recording = row.id,
                        app = row.app,
                        "reaper: recording deleted (its storage policy's deletion date has come)"
                    );
                    done += 1;
                }
                Err(e) => tracing::error!(
                    recording = row.id,
                    "reaper: deleted, but not removed from the index: {e}"
                ),
            },
            Err(e) => tracing::warn!(
                recording = row.id,
                "reaper: cannot delete it now, will try again: {e}"
            ),
        }
    }
    done
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
    use moat_policy::retention::DAY_MS;

    fn row(id: &str, ended: i64, retain: Option<i64>, delete: Option<i64>) -> RecordingRow {
        RecordingRow {
            id: id.into(),
            app: "a".into(),
            user: None,
            client_ip: "127.0.0.1".into(),
            user_agent: None,
            started_at_ms: ended - 1000,
            ended_at_ms: Some(ended),
            state: "complete".into(),
            closed_because: Some("logout".into()),
            events: 1,
            bytes: 1,
            location: "local".into(),
            bucket: None,
            retain_until_ms: retain,
            delete_after_ms: delete,
        }
    }

    /// The reaper with a controllable clock: nothing inside retention or
    /// before its deletion date goes; what is due goes, from disk and the
    /// index, audited.
    #[tokio::test]
    async fn the_reaper_deletes_what_is_due_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("moat.db")).await.unwrap();
        let root = dir.path().join("recordings");
        let kek = Kek::from_bytes([1; 32]);
        let t0 = 10_000 * DAY_MS;
        let rows = [
            row("due", t0, Some(t0 + 30 * DAY_MS), Some(t0 + 90 * DAY_MS)),
            row("later", t0, Some(t0 + 30 * DAY_MS), Some(t0 + 400 * DAY_MS)),
            row("forever", t0, None, None),
            row("never_reaped", t0, Some(t0), None),
        ];
        for r in &rows {
            std::fs::create_dir_all(root.join(&r.id)).unwrap();
            store.put_recording(r).await.unwrap();
        }
        assert_eq!(reap(&store, &kek, &root, t0 + 89 * DAY_MS).await, 0);
        assert_eq!(reap(&store, &kek, &root, t0 + 90 * DAY_MS).await, 1);
        assert!(!root.join("due").exists());
        assert!(root.join("later").exists() && root.join("forever").exists());
        assert_eq!(
            reap(&store, &kek, &root, i64::MAX / 2).await,
            1,
            "later, eventually"
        );
        let left: Vec<String> = store
            .recordings(&Default::default())
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left.len(), 2);
        assert!(left.contains(&"forever".to_owned()) && left.contains(&"never_reaped".to_owned()));
        let log = store.audit_log(&Default::default()).await.unwrap();
        assert!(
            log.iter()
                .all(|e| e.action == "recording.reap" && e.source == "reaper")
        );
        assert_eq!(log.len(), 2);
    }
}
