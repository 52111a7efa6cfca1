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
use std::time::Duration;

use moat_recording::Kek;
use moat_recording::bucket::{self, BucketConfig};
use moat_store::Store;

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

/// Moves a closed recording to its bucket, retrying with backoff (1 s,
/// doubling, at most a minute) until it is there and verified.
pub async fn upload_with_retry(store: Store, kek: Kek, dir: PathBuf, id: String, name: String) {
    let mut wait = Duration::from_secs(1);
    loop {
        match upload_once(&store, &kek, &dir, &id, &name).await {
            Ok(bytes) => {
                if let Err(e) = store
                    .set_recording_location(&id, &format!("bucket:{name}"))
                    .await
                {
                    tracing::error!(
                        recording = id,
                        "uploaded, but the index was not updated: {e}"
                    );
                }
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
            Err(e) => {
                tracing::warn!(
                    recording = id,
                    bucket = name,
                    "upload failed, the local copy stays; retrying in {}s: {e}",
                    wait.as_secs()
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        }
    }
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
