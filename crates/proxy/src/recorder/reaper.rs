//! The reaper and deletion: recordings whose storage policy's deletion
//! date has come are removed from their storage and the index; a deletion
//! an admin asks for goes the same way.

use std::path::Path;

use moat_recording::Kek;
use moat_store::{RecordingRow, Store};

/// Deletes a closed recording from where it is (local disk or its bucket).
pub async fn delete_stored(
    store: &Store,
    kek: &Kek,
    root: &Path,
    row: &RecordingRow,
) -> Result<(), String> {
    if let Some(bucket) = row.location.bucket() {
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
            state: moat_store::RecordingState::Complete,
            closed_because: Some("logout".into()),
            events: 1,
            bytes: 1,
            location: moat_store::Location::Local,
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
