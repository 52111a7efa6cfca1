//! Thread-per-core workers, the way nginx runs worker processes.
//!
//! Each worker is a thread with a single-threaded tokio runtime. An accepted
//! connection is handed to one worker and stays there, together with the
//! upstream connections it uses (each app keeps one pool per worker), so
//! serving a request never wakes another thread. With one shared
//! work-stealing runtime, the client connection and the pooled upstream
//! connection often sat on different threads, and the cross-CPU wake-ups
//! cost about as much as the proxying itself (see bench/README.md).

use std::cell::Cell;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    static WORKER_INDEX: Cell<usize> = const { Cell::new(0) };
}

/// The index of the worker running the current thread (0 elsewhere).
pub fn current() -> usize {
    WORKER_INDEX.with(Cell::get)
}

pub struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stop: Mutex<Vec<oneshot::Sender<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    /// Starts `n` workers (at least one).
    pub fn start(n: usize) -> std::io::Result<Workers> {
        let n = n.max(1);
        let (mut handles, mut stop, mut threads) = (Vec::new(), Vec::new(), Vec::new());
        for index in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            handles.push(rt.handle().clone());
            stop.push(stop_tx);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("moat-worker-{index}"))
                    .spawn(move || {
                        WORKER_INDEX.with(|w| w.set(index));
                        rt.block_on(async {
                            let _ = stop_rx.await;
                        });
                        // Dropping the runtime cancels whatever is still running.
                    })?,
            );
        }
        Ok(Workers {
            handles,
            next: AtomicUsize::new(0),
            stop: Mutex::new(stop),
            threads: Mutex::new(threads),
        })
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Runs a task on the next worker, round-robin. The closure is called
    /// on that worker, so sockets it creates or adopts belong to the
    /// worker's reactor.
    pub fn spawn<F, Fut>(&self, make: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        self.handles[i].spawn(async move { make().await });
    }

    /// Stops every worker, cancelling what they still run, and waits.
    pub fn stop(&self) {
        for s in self
            .stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = s.send(());
        }
        for t in self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = t.join();
        }
    }
}
