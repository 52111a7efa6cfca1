//! The recorder thread: owns the open recordings, writes them
//! (compression, hashing, fsync), flushes every second, seals them at
//! their end, indexes them, and hands closed ones to their bucket. At
//! start it first seals what a previous run left open.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use moat_recording::{Kek, Metadata, Writer};
use moat_store::{Location, RecordingRow, RecordingState, Store};

use super::Cmd;
use super::queue::Queue;
use crate::clock::Clock;

fn row(meta: &Metadata, state: RecordingState, bucket: Option<String>) -> RecordingRow {
    RecordingRow {
        id: meta.id.clone(),
        app: meta.app.clone(),
        user: meta.user.clone(),
        client_ip: meta.client_ip.clone(),
        user_agent: meta.user_agent.clone(),
        started_at_ms: meta.started_at_ms,
        ended_at_ms: None,
        state,
        closed_because: None,
        events: 0,
        bytes: 0,
        location: Location::Local,
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
fn recover(
    clock: &dyn Clock,
    root: &Path,
    kek: &Kek,
    store: &Store,
    handle: &tokio::runtime::Handle,
) {
    // Copies fetched from buckets for reading are a reader's scratch: a
    // stop in the middle of a read leaves them behind.
    let _ = std::fs::remove_dir_all(root.join(".fetched"));
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
        match moat_recording::seal::recover(&dir, kek, clock.now_ms()) {
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
                            state: RecordingState::Incomplete,
                            closed_because: Some(m.closed_because.clone()),
                            events: events as i64,
                            bytes: m.chunks.iter().map(|c| c.size as i64).sum(),
                            ..row(&meta, RecordingState::Incomplete, bucket)
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

pub(super) fn run(
    clock: Arc<dyn Clock>,
    rx: mpsc::Receiver<Cmd>,
    root: PathBuf,
    kek: Kek,
    store: Store,
    handle: tokio::runtime::Handle,
    queue: Arc<Queue>,
) {
    // First, on this thread (it may block on the store), seal what a
    // previous run left open.
    recover(clock.as_ref(), &root, &kek, &store, &handle);
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
                        row(w.metadata(), RecordingState::Recording, bucket.clone()),
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
                    match w.finish(why, clock.now_ms()) {
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
                                    state: RecordingState::Complete,
                                    closed_because: Some(why.to_owned()),
                                    events: events as i64,
                                    bytes: m.chunks.iter().map(|c| c.size as i64).sum(),
                                    ..row(&meta, RecordingState::Complete, bucket.clone())
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
