//! The recorder: turns the events of recorded sessions into recordings on
//! local disk, off the request path.
//!
//! Request handling only sends events over a channel; one thread owns the
//! open recordings, writes them (compression, hashing, fsync), flushes
//! every second so a crash loses at most a second of events, and updates
//! the index. A recording is one session's visit to one app: it starts at
//! the first recorded request and ends at sign-out, after the sign-in idle
//! or absolute timeout, or when moat stops.
//!
//! # Layout
//! - this file: the handle request handling uses ([`Recorder`], one
//!   [`Active`] recording per session and app);
//! - `queue`: the bounded queue of events not yet written;
//! - `writer`: the recorder thread;
//! - `storage`: local storage states and the once-a-second check;
//! - `reaper`: deletion, by policy or by an admin.

mod queue;
pub mod reaper;
pub mod storage;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_recording::{Event, Kek, Metadata};
use moat_store::Store;

use queue::event_size;
pub use queue::{MAX_QUEUED_BYTES, MAX_QUEUED_EVENTS, Queue};
pub use storage::{StorageMonitor, StorageState, available_bytes};

use crate::clock::Clock;

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

pub(crate) enum Cmd {
    /// A new recording, and the bucket it goes to when it closes.
    Start(Box<Metadata>, Option<String>),
    /// An event and its size in the queue.
    Event(Arc<str>, Event, u64),
    End(Arc<str>, &'static str),
    Stop(mpsc::Sender<()>),
}

pub struct Recorder {
    /// The recordings folder's storage state.
    pub storage: StorageMonitor,
    clock: Arc<dyn Clock>,
    pub queue: Arc<Queue>,
    tx: mpsc::Sender<Cmd>,
    active: Mutex<HashMap<(String, String), Arc<Active>>>,
    root: PathBuf,
    kek: Kek,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Recorder {
    /// Starts the recorder thread, which first seals recordings a previous
    /// run left open (a crash) as incomplete.
    pub fn start(
        clock: Arc<dyn Clock>,
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
            .spawn({
                let clock = clock.clone();
                move || {
                    writer::run(
                        clock,
                        rx,
                        thread_root,
                        thread_kek,
                        store,
                        handle,
                        thread_queue,
                    )
                }
            })?;
        Ok(Recorder {
            storage: StorageMonitor::new(root.clone()),
            clock,
            queue,
            tx,
            active: Mutex::new(HashMap::new()),
            root,
            kek,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The clock recordings are dated by.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
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
        let id = self.new_id();
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

    /// A sortable, unique recording id: the start time and random bits.
    fn new_id(&self) -> String {
        let mut r = [0u8; 6];
        getrandom::fill(&mut r).expect("the operating system's random generator works");
        format!(
            "r{:013x}{}",
            self.clock.now_ms(),
            r.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }
}
