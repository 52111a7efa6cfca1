//! The `recordings` table: the index of session recordings (the recording
//! itself, a folder of signed chunks, is the record; this is for finding
//! it), with retention dates and where each recording is stored.

use sqlx::Row;

use crate::{Actor, Location, RecordingState, Store, StoreError, now_ms, write_audit};

/// A recording in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRow {
    pub id: String,
    pub app: String,
    pub user: Option<String>,
    pub client_ip: String,
    pub user_agent: Option<String>,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub state: RecordingState,
    pub closed_because: Option<String>,
    pub events: i64,
    pub bytes: i64,
    pub location: Location,
    /// The bucket the recording goes to, if any.
    pub bucket: Option<String>,
    /// Deletable from (Unix ms); `None`: never.
    pub retain_until_ms: Option<i64>,
    /// Reaped from (Unix ms); `None`: never.
    pub delete_after_ms: Option<i64>,
}

/// Which recordings to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct RecordingQuery {
    pub app: Option<String>,
    pub user: Option<String>,
    pub client_ip: Option<String>,
    pub state: Option<RecordingState>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: Option<u32>,
}

impl Store {
    /// Adds a recording to the index (or replaces its row).
    pub async fn put_recording(&self, r: &RecordingRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO recordings (id, app, user, client_ip, user_agent, started_at, ended_at, state, closed_because, events, bytes, location, bucket, retain_until, delete_after) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET ended_at = excluded.ended_at, state = excluded.state, \
             closed_because = excluded.closed_because, events = excluded.events, bytes = excluded.bytes, location = excluded.location, bucket = excluded.bucket, \
             retain_until = excluded.retain_until, delete_after = excluded.delete_after",
        )
        .bind(&r.id)
        .bind(&r.app)
        .bind(&r.user)
        .bind(&r.client_ip)
        .bind(&r.user_agent)
        .bind(r.started_at_ms)
        .bind(r.ended_at_ms)
        .bind(r.state.as_str())
        .bind(&r.closed_because)
        .bind(r.events)
        .bind(r.bytes)
        .bind(r.location.to_db())
        .bind(&r.bucket)
        .bind(r.retain_until_ms)
        .bind(r.delete_after_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn recordings(&self, q: &RecordingQuery) -> Result<Vec<RecordingRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM recordings WHERE (? IS NULL OR app = ?) AND (? IS NULL OR user = ?) \
             AND (? IS NULL OR client_ip = ?) AND (? IS NULL OR state = ?) \
             AND started_at >= ? AND started_at <= ? ORDER BY started_at DESC LIMIT ?",
        )
        .bind(&q.app)
        .bind(&q.app)
        .bind(&q.user)
        .bind(&q.user)
        .bind(&q.client_ip)
        .bind(&q.client_ip)
        .bind(q.state.map(RecordingState::as_str))
        .bind(q.state.map(RecordingState::as_str))
        .bind(q.since_ms.unwrap_or(0))
        .bind(q.until_ms.unwrap_or(i64::MAX))
        .bind(i64::from(q.limit.unwrap_or(100)))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(recording_row).collect())
    }

    /// Closed recordings the reaper deletes at `now_ms`: past their
    /// deletion date and out of retention.
    pub async fn recordings_due(&self, now_ms: i64) -> Result<Vec<RecordingRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM recordings WHERE state != 'recording' AND delete_after IS NOT NULL AND delete_after <= ? \
             AND retain_until IS NOT NULL AND retain_until <= ?",
        )
        .bind(now_ms)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(recording_row).collect())
    }

    /// Sets a recording's retention dates (a reapplied policy), audited.
    pub async fn set_recording_dates(
        &self,
        actor: &Actor,
        id: &str,
        retain_until_ms: Option<i64>,
        delete_after_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE recordings SET retain_until = ?, delete_after = ? WHERE id = ?")
            .bind(retain_until_ms)
            .bind(delete_after_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let after = serde_json::json!({"retain_until_ms": retain_until_ms, "delete_after_ms": delete_after_ms});
        write_audit(
            &mut tx,
            now,
            actor,
            "recording.reapply_policy",
            id,
            None,
            Some(&after),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a recording from the index, audited (`why`: `recording.delete`
    /// by an admin, `recording.reap` by the reaper).
    pub async fn remove_recording(
        &self,
        actor: &Actor,
        id: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM recordings WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        write_audit(&mut tx, now, actor, why, id, None, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a recording as moved to its bucket.
    pub async fn set_recording_location(
        &self,
        id: &str,
        location: &Location,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE recordings SET location = ? WHERE id = ?")
            .bind(location.to_db())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closed recordings still on local disk that have a bucket to go to.
    pub async fn pending_uploads(&self) -> Result<Vec<RecordingRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM recordings WHERE location = 'local' AND bucket IS NOT NULL AND state != 'recording'",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(recording_row).collect())
    }

    pub async fn recording(&self, id: &str) -> Result<Option<RecordingRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM recordings WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(recording_row))
    }
}

fn recording_row(r: &sqlx::sqlite::SqliteRow) -> RecordingRow {
    RecordingRow {
        id: r.get("id"),
        app: r.get("app"),
        user: r.get("user"),
        client_ip: r.get("client_ip"),
        user_agent: r.get("user_agent"),
        started_at_ms: r.get("started_at"),
        ended_at_ms: r.get("ended_at"),
        // A state this version does not know was written by a newer one:
        // shown as incomplete rather than dropped.
        state: RecordingState::parse(r.get("state")).unwrap_or(RecordingState::Incomplete),
        closed_because: r.get("closed_because"),
        events: r.get("events"),
        bytes: r.get("bytes"),
        location: Location::from_db(r.get("location")),
        bucket: r.get("bucket"),
        retain_until_ms: r.get("retain_until"),
        delete_after_ms: r.get("delete_after"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditQuery;
    use crate::tests::{admin, temp_store};

    fn row(id: &str, app: &str, started_at_ms: i64) -> RecordingRow {
        RecordingRow {
            id: id.into(),
            app: app.into(),
            user: Some("alice".into()),
            client_ip: "192.0.2.1".into(),
            user_agent: None,
            started_at_ms,
            ended_at_ms: None,
            state: RecordingState::Recording,
            closed_because: None,
            events: 0,
            bytes: 0,
            location: Location::Local,
            bucket: None,
            retain_until_ms: None,
            delete_after_ms: None,
        }
    }

    #[tokio::test]
    async fn recordings_are_indexed_updated_and_queried() {
        let (_dir, store) = temp_store().await;
        store.put_recording(&row("r1", "a", 1000)).await.unwrap();
        store.put_recording(&row("r2", "b", 2000)).await.unwrap();
        let mut r3 = row("r3", "a", 3000);
        r3.user = None;
        r3.client_ip = "192.0.2.9".into();
        store.put_recording(&r3).await.unwrap();

        // Closing replaces what changes; the start stays.
        let mut closed = row("r1", "a", 1000);
        closed.ended_at_ms = Some(1500);
        closed.state = RecordingState::Complete;
        closed.closed_because = Some("client closed".into());
        closed.events = 7;
        closed.bytes = 4096;
        closed.bucket = Some("archive".into());
        store.put_recording(&closed).await.unwrap();
        assert_eq!(store.recording("r1").await.unwrap(), Some(closed.clone()));
        assert_eq!(store.recording("nope").await.unwrap(), None);

        let ids = |rows: Vec<RecordingRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let all = store.recordings(&RecordingQuery::default()).await.unwrap();
        assert_eq!(ids(all), ["r3", "r2", "r1"], "newest first");
        let q = |f: fn(&mut RecordingQuery)| {
            let mut q = RecordingQuery::default();
            f(&mut q);
            q
        };
        for (query, want) in [
            (q(|q| q.app = Some("a".into())), vec!["r3", "r1"]),
            (q(|q| q.user = Some("alice".into())), vec!["r2", "r1"]),
            (q(|q| q.client_ip = Some("192.0.2.9".into())), vec!["r3"]),
            (q(|q| q.state = Some(RecordingState::Complete)), vec!["r1"]),
            (q(|q| q.since_ms = Some(2000)), vec!["r3", "r2"]),
            (q(|q| q.until_ms = Some(2000)), vec!["r2", "r1"]),
            (q(|q| q.limit = Some(1)), vec!["r3"]),
        ] {
            assert_eq!(
                ids(store.recordings(&query).await.unwrap()),
                want,
                "{query:?}"
            );
        }

        // Closed, local and with a bucket: waiting to be uploaded, until moved.
        assert_eq!(ids(store.pending_uploads().await.unwrap()), ["r1"]);
        let moved = Location::Bucket("b".into());
        store.set_recording_location("r1", &moved).await.unwrap();
        assert_eq!(store.pending_uploads().await.unwrap(), []);
        assert_eq!(
            store.recording("r1").await.unwrap().unwrap().location,
            moved
        );
    }

    #[tokio::test]
    async fn retention_dates_decide_what_is_due_and_changes_are_audited() {
        let (_dir, store) = temp_store().await;
        let mut due = row("due", "a", 1000);
        due.state = RecordingState::Complete;
        due.retain_until_ms = Some(5000);
        due.delete_after_ms = Some(6000);
        store.put_recording(&due).await.unwrap();
        let mut open = row("open", "a", 1000);
        open.retain_until_ms = Some(5000);
        open.delete_after_ms = Some(6000);
        store.put_recording(&open).await.unwrap();
        let mut forever = row("forever", "a", 1000);
        forever.state = RecordingState::Incomplete;
        forever.delete_after_ms = Some(6000);
        store.put_recording(&forever).await.unwrap();

        let ids = |rows: Vec<RecordingRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(store.recordings_due(5999).await.unwrap(), []);
        assert_eq!(
            ids(store.recordings_due(6000).await.unwrap()),
            ["due"],
            "an open recording, or one retained forever, is never due"
        );

        store
            .set_recording_dates(&admin(), "due", Some(9000), None)
            .await
            .unwrap();
        let r = store.recording("due").await.unwrap().unwrap();
        assert_eq!((r.retain_until_ms, r.delete_after_ms), (Some(9000), None));
        assert_eq!(store.recordings_due(10_000).await.unwrap(), []);

        store
            .remove_recording(&admin(), "due", "recording.reap")
            .await
            .unwrap();
        assert_eq!(store.recording("due").await.unwrap(), None);

        let log = store.audit_log(&AuditQuery::default()).await.unwrap();
        let actions: Vec<_> = log
            .iter()
            .map(|e| (e.action.as_str(), e.target.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("recording.reap", "due"),
                ("recording.reapply_policy", "due")
            ]
        );
        assert_eq!(
            log[1].after,
            Some(serde_json::json!({"retain_until_ms": 9000, "delete_after_ms": null}))
        );
    }
}
