//! Storage buckets as moat keeps them, and moving closed recordings to
//! them.
//!
//! A bucket's settings live in the metadata store with the secret access
//! key encrypted under the recordings' key-encryption key, bound to the
//! bucket's name; the API never shows it back. Uploads retry with backoff
//! until they succeed; the local copy is removed only after every object
//! was read back and matched, and recordings still waiting are picked up
//! again at the next start.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use moat_recording::Kek;
use moat_recording::bucket::{self, BucketConfig};
use moat_store::{Location, Store};

/// The settings as stored: the secret sealed.
pub fn sealed_json(kek: &Kek, name: &str, mut cfg: BucketConfig) -> String {
    if let BucketConfig::S3 {
        secret_access_key: Some(s),
        ..
    } = &mut cfg
    {
        *s = kek.seal_secret(&format!("bucket:{name}"), s);
    }
    serde_json::to_string(&cfg).expect("serializes")
}

/// A bucket's settings from the store, the secret opened.
pub async fn load(store: &Store, kek: &Kek, name: &str) -> Result<BucketConfig, String> {
    let stored = store
        .buckets()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|(n, _)| n == name)
        .ok_or_else(|| format!("no bucket is named {name:?} (moat bucket create)"))?
        .1;
    let mut cfg: BucketConfig = serde_json::from_str(&stored).map_err(|e| e.to_string())?;
    if let BucketConfig::S3 {
        secret_access_key: Some(s),
        ..
    } = &mut cfg
    {
        *s = kek
            .open_secret(&format!("bucket:{name}"), s)
            .map_err(|e| e.to_string())?;
    }
    Ok(cfg)
}

/// Upload tasks that have an attempt ahead of them or under way (not
/// those waiting to retry), so that shutdown can let them finish before
/// the metadata store closes: an upload whose index update is lost would
/// leave the index pointing at a local copy that is gone.
struct Uploads {
    busy: AtomicUsize,
    stopping: AtomicBool,
    /// An attempt finished (for the drain).
    changed: Notify,
    /// Shutdown began (for tasks waiting to retry). Separate from
    /// `changed`, so one task's finished attempt does not cut another's
    /// backoff short.
    stop: Notify,
}

static UPLOADS: Uploads = Uploads {
    busy: AtomicUsize::new(0),
    stopping: AtomicBool::new(false),
    changed: Notify::const_new(),
    stop: Notify::const_new(),
};

/// One upload task with an attempt ahead of it or under way.
struct Busy;

impl Busy {
    fn new() -> Busy {
        UPLOADS.busy.fetch_add(1, Ordering::SeqCst);
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        UPLOADS.busy.fetch_sub(1, Ordering::SeqCst);
        UPLOADS.changed.notify_waiters();
    }
}

/// Starts moving a closed recording to its bucket (see
/// [`upload_with_retry`]); counted from now, so a shutdown that begins
/// before the task first runs still waits for its first attempt.
pub fn spawn_upload(
    handle: &tokio::runtime::Handle,
    store: Store,
    kek: Kek,
    dir: PathBuf,
    id: String,
    bucket: String,
) {
    let busy = Busy::new();
    handle.spawn(upload_with_retry(store, kek, dir, id, bucket, busy));
}

/// Lets upload attempts under way (or about to start) finish, for up to
/// `within`; uploads waiting to retry stop and resume at the next start.
pub async fn drain(within: Duration) {
    UPLOADS.stopping.store(true, Ordering::SeqCst);
    UPLOADS.stop.notify_waiters();
    let wait = async {
        loop {
            let changed = UPLOADS.changed.notified();
            if UPLOADS.busy.load(Ordering::SeqCst) == 0 {
                return;
            }
            changed.await;
        }
    };
    if tokio::time::timeout(within, wait).await.is_err() {
        tracing::warn!(
            "uploads still under way at shutdown; their recordings stay on local disk and move at the next start"
        );
    }
}

/// Moves a closed recording to its bucket, retrying with backoff (1 s,
/// doubling, at most a minute) until it is there, verified, and the index
/// says so. The local copy is removed only after the index records the
/// new location. A recording whose local folder is gone is looked for in
/// the bucket: found, the index is corrected; not found, it is marked
/// `missing` with one error, never retried.
async fn upload_with_retry(
    store: Store,
    kek: Kek,
    dir: PathBuf,
    id: String,
    name: String,
    busy: Busy,
) {
    let mut wait = Duration::from_secs(1);
    let mut busy = Some(busy);
    loop {
        let _attempt = busy.take().unwrap_or_else(Busy::new);
        if !dir.join(moat_recording::files::SESSION).exists() {
            match reconcile(&store, &kek, &id, &name).await {
                Ok(()) => return,
                Err(e) => tracing::warn!(
                    recording = id,
                    bucket = name,
                    "the local copy is gone and the bucket cannot be checked; retrying in {}s: {e}",
                    wait.as_secs()
                ),
            }
        } else {
            match upload_once(&store, &kek, &dir, &id, &name).await {
                Ok(bytes) => match store
                    .set_recording_location(&id, &Location::Bucket(name.clone()))
                    .await
                {
                    Ok(()) => {
                        if let Err(e) = std::fs::remove_dir_all(&dir) {
                            tracing::warn!(
                                recording = id,
                                "uploaded, but the local copy was not removed: {e}"
                            );
                        }
                        tracing::info!(
                            recording = id,
                            bucket = name,
                            bytes,
                            "recording moved to its bucket and verified"
                        );
                        return;
                    }
                    Err(e) => tracing::error!(
                        recording = id,
                        "uploaded, but the index was not updated: {e}; the local copy stays until it is (retrying in {}s)",
                        wait.as_secs()
                    ),
                },
                Err(e) => {
                    tracing::warn!(
                        recording = id,
                        bucket = name,
                        "upload failed, the local copy stays; retrying in {}s: {e}",
                        wait.as_secs()
                    );
                }
            }
        }
        drop(_attempt);
        if UPLOADS.stopping.load(Ordering::SeqCst) {
            return;
        }
        let stopping = UPLOADS.stop.notified();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopping => {}
        }
        if UPLOADS.stopping.load(Ordering::SeqCst) {
            return;
        }
        wait = (wait * 2).min(Duration::from_secs(60));
    }
}

/// The local folder of a recording waiting for upload is gone: the bucket
/// says where it is.
async fn reconcile(store: &Store, kek: &Kek, id: &str, name: &str) -> Result<(), String> {
    let cfg = load(store, kek, name).await?;
    let os = bucket::open(&cfg)?;
    if bucket::is_sealed_in(os.as_ref(), cfg.prefix(), id).await? {
        store
            .set_recording_location(id, &Location::Bucket(name.to_owned()))
            .await
            .map_err(|e| e.to_string())?;
        tracing::warn!(
            recording = id,
            bucket = name,
            "the local copy was gone but the recording is in its bucket: the index now says so"
        );
    } else {
        store
            .set_recording_location(id, &Location::Missing)
            .await
            .map_err(|e| e.to_string())?;
        tracing::error!(
            recording = id,
            bucket = name,
            "the recording is neither on local disk nor in its bucket: marked missing (not retried)"
        );
    }
    Ok(())
}

async fn upload_once(
    store: &Store,
    kek: &Kek,
    dir: &std::path::Path,
    id: &str,
    name: &str,
) -> Result<u64, String> {
    let cfg = load(store, kek, name).await?;
    let os = bucket::open(&cfg)?;
    bucket::upload(os.as_ref(), cfg.prefix(), id, dir).await
}
