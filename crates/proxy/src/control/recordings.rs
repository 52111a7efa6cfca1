//! Recordings: reading them back (from local disk, or fetched from their
//! bucket), deleting one outside its retention, and reapplying today's
//! storage policies to the retention dates of closed ones.

use std::path::PathBuf;

use moat_recording::VerifyError;
use moat_store::{Actor, Location, RecordingRow, RecordingState};

use super::{Control, ControlError};
use crate::recorder::StorageState;

/// Local recording storage as the status shows it.
#[derive(Debug, Clone)]
pub struct StorageStatus {
    pub state: StorageState,
    pub path: PathBuf,
    pub available_bytes: Option<u64>,
    pub minimum_available_capacity: u64,
    pub open_recordings: usize,
    pub queued_events: usize,
    pub queued_bytes: u64,
}

/// What reapplying the storage policies did, or would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reapplied {
    pub recordings: usize,
    pub changed: usize,
    pub would_delete_now: u64,
    pub applied: bool,
}

impl Control {
    /// The state moat acts on (what the once-a-second check last saw).
    pub fn storage_state(&self) -> StorageState {
        let runtime = self.runtime();
        self.parts.recorder.storage.current(
            runtime.apps.iter().any(|a| a.recording.is_some()),
            runtime.config.recording.minimum_available_capacity,
        )
    }

    pub fn storage_status(&self) -> StorageStatus {
        let recorder = &self.parts.recorder;
        let (queued_events, queued_bytes) = recorder.queue.depth();
        StorageStatus {
            state: self.storage_state(),
            path: recorder.root().to_owned(),
            available_bytes: crate::recorder::available_bytes(recorder.root()),
            minimum_available_capacity: self.runtime().config.recording.minimum_available_capacity,
            open_recordings: recorder.open_count(),
            queued_events,
            queued_bytes,
        }
    }

    /// The index row of a recording (no storage is touched).
    pub async fn recording(&self, id: &str) -> Result<RecordingRow, ControlError> {
        self.parts
            .store
            .recording(id)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("recording {id:?} not found")))
    }

    /// The index row and a local folder holding the recording. A
    /// recording already moved to its bucket is fetched into a scratch
    /// folder of this call's own (two readers of one recording never
    /// share one), removed when the answer is dropped.
    async fn locate_recording(&self, id: &str) -> Result<Located, ControlError> {
        let recorder = &self.parts.recorder;
        let row = self.recording(id).await?;
        let dir = recorder
            .dir_of(id)
            .ok_or_else(|| ControlError::NotFound(format!("recording {id:?} not found")))?;
        let Location::Bucket(bucket) = row.location.clone() else {
            return Ok(Located {
                row,
                dir,
                scratch: false,
            });
        };
        let scratch = recorder
            .root()
            .join(".fetched")
            .join(format!("{id}.{}", scratch_suffix()));
        let fetched = async {
            let cfg = crate::buckets::load(&self.parts.store, recorder.kek(), &bucket).await?;
            let os = moat_recording::bucket::open(&cfg)?;
            moat_recording::bucket::download(os.as_ref(), cfg.prefix(), id, &scratch).await
        }
        .await;
        let located = Located {
            row,
            dir: scratch,
            scratch: true,
        };
        match fetched {
            Ok(()) => Ok(located),
            Err(e) => Err(ControlError::BucketUnavailable(format!(
                "recording {id:?} is in bucket {bucket:?}, which cannot be read now: {e}"
            ))),
        }
    }

    /// Checks a closed recording's tamper evidence.
    pub async fn verify_recording(
        &self,
        id: &str,
    ) -> Result<Result<moat_recording::verify::Report, VerifyError>, ControlError> {
        let located = self.locate_recording(id).await?;
        if !located.row.state.is_closed() {
            return Err(ControlError::Conflict(format!(
                "recording {id:?} is still in progress; it can be verified once it closes"
            )));
        }
        let kek = self.parts.recorder.kek().clone();
        tokio::task::spawn_blocking(move || moat_recording::verify(&located.dir, &kek))
            .await
            .map_err(|e| ControlError::Internal(e.to_string()))
    }

    /// A closed recording's folder, ready to be read off the request path.
    async fn readable_recording(&self, id: &str) -> Result<Located, ControlError> {
        // Low storage: no playback from this node (fetching from a bucket
        // would need the room).
        let state = self.storage_state();
        if !state.allows_playback() {
            return Err(ControlError::LowStorage(format!(
                "recording storage on this node is {}: no playback from it now",
                state.as_str()
            )));
        }
        let located = self.locate_recording(id).await?;
        if !located.row.state.is_closed() {
            return Err(ControlError::Conflict(format!(
                "recording {id:?} is still in progress"
            )));
        }
        Ok(located)
    }

    /// A closed recording's metadata and all its events (for exports that
    /// need them together; a player reads [`Control::stream_recording`]).
    pub async fn read_recording(
        &self,
        id: &str,
    ) -> Result<(moat_recording::Metadata, Vec<moat_recording::Recorded>), ControlError> {
        let located = self.readable_recording(id).await?;
        let kek = self.parts.recorder.kek().clone();
        tokio::task::spawn_blocking(move || {
            Ok::<_, VerifyError>((
                moat_recording::verify::metadata(&located.dir)?,
                moat_recording::verify::events(&located.dir, &kek)?,
            ))
        })
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))?
        .map_err(unreadable)
    }

    /// A closed recording's metadata, then its events one chunk at a time:
    /// a reader holds one chunk, never the whole recording, and the
    /// reading stops when the receiver is dropped. An error while reading
    /// arrives in place of a chunk and ends the stream.
    pub async fn stream_recording(
        &self,
        id: &str,
    ) -> Result<
        (
            moat_recording::Metadata,
            tokio::sync::mpsc::Receiver<Result<Vec<moat_recording::Recorded>, ControlError>>,
        ),
        ControlError,
    > {
        let located = self.readable_recording(id).await?;
        let kek = self.parts.recorder.kek().clone();
        let (meta, chunks, located) = tokio::task::spawn_blocking(move || {
            let meta = moat_recording::verify::metadata(&located.dir)?;
            let chunks = moat_recording::verify::chunks(&located.dir, &kek)?;
            Ok::<_, VerifyError>((meta, chunks, located))
        })
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))?
        .map_err(unreadable)?;
        // One chunk in flight: the reader paces the disk.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::task::spawn_blocking(move || {
            let _located = located;
            for chunk in chunks {
                let failed = chunk.is_err();
                if tx.blocking_send(chunk.map_err(unreadable)).is_err() || failed {
                    break;
                }
            }
        });
        Ok((meta, rx))
    }

    /// Deletes a closed recording, unless its storage policy still
    /// retains it: then nobody can, and the answer says until when.
    pub async fn delete_recording(&self, actor: &Actor, id: &str) -> Result<(), ControlError> {
        let row = self
            .parts
            .store
            .recording(id)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("recording {id:?} not found")))?;
        if row.state == RecordingState::Recording {
            return Err(ControlError::Conflict(format!(
                "recording {id:?} is still in progress"
            )));
        }
        let dates = moat_policy::retention::Dates {
            retain_until_ms: row.retain_until_ms,
            delete_after_ms: row.delete_after_ms,
        };
        if !moat_policy::retention::may_delete(&dates, self.clock().now_ms()) {
            let until = match row.retain_until_ms {
                Some(t) => crate::access_log::rfc3339(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(t.max(0) as u64),
                ),
                None => "forever".into(),
            };
            return Err(ControlError::Retained(format!(
                "recording {id:?} is inside its retention period (until {until}); nobody can delete it before then"
            )));
        }
        let recorder = &self.parts.recorder;
        crate::recorder::reaper::delete_stored(
            &self.parts.store,
            recorder.kek(),
            recorder.root(),
            &row,
        )
        .await
        .map_err(|e| {
            ControlError::BucketUnavailable(format!(
                "recording {id:?} cannot be deleted from its storage now: {e}"
            ))
        })?;
        self.parts
            .store
            .remove_recording(actor, id, "recording.delete")
            .await?;
        Ok(())
    }

    /// Recomputes the retention dates of closed recordings (of `app`, or
    /// all) from today's policies. Without `confirm` nothing changes: the
    /// answer says how many dates would change and how many recordings
    /// the reaper would then delete at once (there is no undo).
    pub async fn reapply_policy(
        &self,
        actor: &Actor,
        app: Option<String>,
        confirm: bool,
    ) -> Result<Reapplied, ControlError> {
        let _inputs = self.inputs.lock().await;
        let config = self.runtime().config.clone();
        let rows = self
            .parts
            .store
            .recordings(&moat_store::RecordingQuery {
                app,
                limit: Some(u32::MAX),
                ..Default::default()
            })
            .await?;
        let now = self.clock().now_ms();
        let (mut changed, mut due_now) = (Vec::new(), 0u64);
        for r in rows.iter().filter(|r| r.state.is_closed()) {
            let ended = r.ended_at_ms.unwrap_or(r.started_at_ms);
            let app_policy = config
                .apps
                .iter()
                .find(|a| a.name == r.app)
                .and_then(|a| a.recording.as_ref());
            let retention = match app_policy {
                Some(p) => config.retention_for(p).unwrap_or(config.recording.policy),
                None => config.recording.policy,
            };
            let dates = match retention {
                Some(p) => moat_policy::retention::dates(&p, ended),
                None => moat_policy::retention::NO_POLICY,
            };
            if moat_policy::retention::due(&dates, now) {
                due_now += 1;
            }
            if (dates.retain_until_ms, dates.delete_after_ms)
                != (r.retain_until_ms, r.delete_after_ms)
            {
                changed.push((r.id.clone(), dates));
            }
        }
        if confirm {
            for (id, d) in &changed {
                self.parts
                    .store
                    .set_recording_dates(actor, id, d.retain_until_ms, d.delete_after_ms)
                    .await?;
            }
            tracing::warn!(
                actor = actor.name,
                changed = changed.len(),
                due_now,
                "storage policy reapplied to existing recordings"
            );
        }
        Ok(Reapplied {
            recordings: rows.len(),
            changed: changed.len(),
            would_delete_now: due_now,
            applied: confirm,
        })
    }
}

/// A recording's index row and the folder it can be read from.
struct Located {
    row: RecordingRow,
    dir: PathBuf,
    /// The folder is this reader's copy fetched from a bucket.
    scratch: bool,
}

impl Drop for Located {
    fn drop(&mut self) {
        if self.scratch {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn unreadable(e: VerifyError) -> ControlError {
    ControlError::Unreadable(format!("the recording cannot be read: {e}"))
}

fn scratch_suffix() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the operating system's random generator works");
    format!("{:016x}", u64::from_le_bytes(b))
}
