//! moat's metadata store: state that changes while moat runs and must
//! survive a restart, in one SQLite file in the data directory.
//!
//! It holds the apps created through the admin API and the audit log of
//! every admin change. A change and its audit entry are written in one
//! transaction, so there is never a change without its record.
//!
//! Must not validate app definitions (the config crate does that before
//! anything is stored) or know about the running gateway.
//!
//! # Layout
//! - [`Store`]: open (creating and migrating), apps, audit log.
//! - `migrations/`: the schema, one numbered SQL file per change, embedded
//!   in the binary and applied at open.

mod states;
pub use states::{Location, RecordingState};

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Row, SqlSafeStr};

/// The schema's migrations, oldest first. A released migration is never
/// edited: a change is a new file.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "apps and audit log",
        include_str!("../migrations/0001_apps_and_audit.sql"),
    ),
    (
        2,
        "csp approvals",
        include_str!("../migrations/0002_csp_approvals.sql"),
    ),
    (
        3,
        "csp reports",
        include_str!("../migrations/0003_csp_reports.sql"),
    ),
    (
        4,
        "recordings",
        include_str!("../migrations/0004_recordings.sql"),
    ),
    (5, "buckets", include_str!("../migrations/0005_buckets.sql")),
    (
        6,
        "retention",
        include_str!("../migrations/0006_retention.sql"),
    ),
];

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

/// Distinct violations kept per app; reports of new ones past this are
/// dropped (known ones are still counted).
pub const MAX_REPORTS_PER_APP: i64 = 1000;

/// A stored CSP violation of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspReport {
    pub directive: String,
    pub blocked: String,
    pub document: String,
    pub disposition: String,
    pub count: i64,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata store {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("metadata store {path}: applying the schema: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
    #[error("app {0:?} already exists")]
    AppExists(String),
    #[error("app {0:?} not found")]
    AppNotFound(String),
    #[error("a bucket named {0:?} already exists")]
    BucketExists(String),
    #[error("bucket {0:?} not found")]
    BucketNotFound(String),
    #[error("metadata store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("metadata store: a stored value is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Who made a change, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// A user name (`admin`, or the local account behind the socket).
    pub name: String,
    /// `unix:uid=N` for the admin socket, `tcp:ADDRESS` over HTTPS.
    pub source: String,
}

/// An app created through the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredApp {
    pub name: String,
    /// The app's settings, in the config file's field names.
    pub definition: Value,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

/// One admin change.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: SystemTime,
    pub actor: String,
    pub source: String,
    /// What was done, e.g. `app.create`.
    pub action: String,
    /// What it was done to, e.g. the app's name.
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Which audit entries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub limit: Option<u32>,
    /// Only entries at or after this time.
    pub since: Option<SystemTime>,
    pub action: Option<String>,
    pub target: Option<String>,
}

/// The metadata store. Cheap to clone (a connection pool).
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens the store at `path`, creating it (mode 0600) and applying any
    /// migrations it lacks.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(open_err)?
            .filename(path)
            .create_if_missing(true)
            // WAL: readers (listing apps, the audit log) never wait for a writer.
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        restrict_permissions(path);
        migrator()
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.to_owned(),
                source,
            })?;
        Ok(Store { pool })
    }

    /// Every stored app, by name.
    pub async fn apps(&self) -> Result<Vec<StoredApp>, StoreError> {
        let rows =
            sqlx::query("SELECT name, definition, created_at, updated_at FROM apps ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(stored_app).collect()
    }

    /// One stored app.
    pub async fn app(&self, name: &str) -> Result<StoredApp, StoreError> {
        let row =
            sqlx::query("SELECT name, definition, created_at, updated_at FROM apps WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::AppNotFound(name.to_owned()))?;
        stored_app(&row)
    }

    /// Stores a new app; an app of that name must not exist.
    pub async fn create_app(
        &self,
        actor: &Actor,
        name: &str,
        definition: &Value,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO apps (name, definition, created_at, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(definition.to_string())
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::AppExists(name.to_owned()));
        }
        audit(
            &mut tx,
            now,
            actor,
            "app.create",
            name,
            None,
            Some(definition),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces an app's definition; returns the one it replaced.
    pub async fn update_app(
        &self,
        actor: &Actor,
        name: &str,
        definition: &Value,
    ) -> Result<Value, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let before = definition_of(&mut tx, name).await?;
        sqlx::query("UPDATE apps SET definition = ?, updated_at = ? WHERE name = ?")
            .bind(definition.to_string())
            .bind(now)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            now,
            actor,
            "app.update",
            name,
            Some(&before),
            Some(definition),
        )
        .await?;
        tx.commit().await?;
        Ok(before)
    }

    /// Deletes an app; returns its last definition.
    pub async fn delete_app(&self, actor: &Actor, name: &str) -> Result<Value, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let before = definition_of(&mut tx, name).await?;
        sqlx::query("DELETE FROM apps WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, now, actor, "app.delete", name, Some(&before), None).await?;
        tx.commit().await?;
        Ok(before)
    }

    /// Records an admin action that changes no stored row (a reload, say).
    pub async fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        before: Option<&Value>,
        after: Option<&Value>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        audit(&mut tx, now_ms(), actor, action, target, before, after).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every CSP approval granted through the API: (app, directive, source).
    pub async fn csp_approvals(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT app, directive, source FROM csp_approvals ORDER BY app, directive, source",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("app"), r.get("directive"), r.get("source")))
            .collect())
    }

    /// Grants approvals for `app`, one audit entry for the lot; pairs
    /// already approved are skipped. Returns how many were new.
    pub async fn approve_csp(
        &self,
        actor: &Actor,
        app: &str,
        pairs: &[(String, String)],
    ) -> Result<usize, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let mut added = Vec::new();
        for (directive, source) in pairs {
            let done = sqlx::query(
                "INSERT INTO csp_approvals (app, directive, source, approved_by, approved_at) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(app)
            .bind(directive)
            .bind(source)
            .bind(&actor.name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() > 0 {
                added.push(format!("{directive} {source}"));
            }
        }
        if !added.is_empty() {
            let after = serde_json::json!({ "approved": added });
            audit(&mut tx, now, actor, "csp.approve", app, None, Some(&after)).await?;
        }
        tx.commit().await?;
        Ok(added.len())
    }

    /// Revokes approvals of `app` for which `matches(directive, source)`;
    /// returns the revoked pairs.
    pub async fn revoke_csp(
        &self,
        actor: &Actor,
        app: &str,
        matches: impl Fn(&str, &str) -> bool,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query("SELECT directive, source FROM csp_approvals WHERE app = ?")
            .bind(app)
            .fetch_all(&mut *tx)
            .await?;
        let gone: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r.get::<String, _>("directive"),
                    r.get::<String, _>("source"),
                )
            })
            .filter(|(d, s)| matches(d, s))
            .collect();
        for (d, s) in &gone {
            sqlx::query("DELETE FROM csp_approvals WHERE app = ? AND directive = ? AND source = ?")
                .bind(app)
                .bind(d)
                .bind(s)
                .execute(&mut *tx)
                .await?;
        }
        if !gone.is_empty() {
            let before = serde_json::json!({
                "approved": gone.iter().map(|(d, s)| format!("{d} {s}")).collect::<Vec<_>>()
            });
            audit(&mut tx, now, actor, "csp.revoke", app, Some(&before), None).await?;
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// Counts violations of `app` (directive, blocked, document,
    /// disposition); returns how many were kept.
    pub async fn record_csp_reports(
        &self,
        app: &str,
        violations: &[(String, String, String, String)],
    ) -> Result<usize, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let mut kept = 0;
        for (directive, blocked, document, disposition) in violations {
            let known = sqlx::query(
                "UPDATE csp_reports SET count = count + 1, last_seen = ? \
                 WHERE app = ? AND directive = ? AND blocked = ? AND document = ? AND disposition = ?",
            )
            .bind(now)
            .bind(app)
            .bind(directive)
            .bind(blocked)
            .bind(document)
            .bind(disposition)
            .execute(&mut *tx)
            .await?;
            if known.rows_affected() > 0 {
                kept += 1;
                continue;
            }
            let distinct: i64 = sqlx::query("SELECT COUNT(*) AS n FROM csp_reports WHERE app = ?")
                .bind(app)
                .fetch_one(&mut *tx)
                .await?
                .get("n");
            if distinct >= MAX_REPORTS_PER_APP {
                // SECURITY: anyone can post reports, so a full table gives
                // up a violation seen once (the oldest), never one seen
                // again and again: invented sources replace each other
                // while the real, repeated ones stay.
                let evicted = sqlx::query(
                    "DELETE FROM csp_reports WHERE rowid = (SELECT rowid FROM csp_reports \
                     WHERE app = ? AND count = 1 ORDER BY last_seen ASC LIMIT 1)",
                )
                .bind(app)
                .execute(&mut *tx)
                .await?;
                if evicted.rows_affected() == 0 {
                    continue;
                }
            }
            sqlx::query(
                "INSERT INTO csp_reports (app, directive, blocked, document, disposition, count, first_seen, last_seen) \
                 VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
            )
            .bind(app)
            .bind(directive)
            .bind(blocked)
            .bind(document)
            .bind(disposition)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            kept += 1;
        }
        tx.commit().await?;
        Ok(kept)
    }

    /// An app's violations, most recent first.
    pub async fn csp_reports(&self, app: &str, limit: u32) -> Result<Vec<CspReport>, StoreError> {
        let rows = sqlx::query(
            "SELECT directive, blocked, document, disposition, count, first_seen, last_seen \
             FROM csp_reports WHERE app = ? ORDER BY last_seen DESC, count DESC LIMIT ?",
        )
        .bind(app)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| CspReport {
                directive: r.get("directive"),
                blocked: r.get("blocked"),
                document: r.get("document"),
                disposition: r.get("disposition"),
                count: r.get("count"),
                first_seen: from_ms(r.get("first_seen")),
                last_seen: from_ms(r.get("last_seen")),
            })
            .collect())
    }

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
        audit(
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
        audit(&mut tx, now, actor, why, id, None, None).await?;
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

    /// Every bucket: (name, stored config JSON).
    pub async fn buckets(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT name, config FROM buckets ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("name"), r.get("config")))
            .collect())
    }

    /// Creates or replaces a bucket, audited (the config is recorded with
    /// its secrets removed by the caller).
    pub async fn put_bucket(
        &self,
        actor: &Actor,
        name: &str,
        config: &str,
        shown: &Value,
        create: bool,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM buckets WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        match (create, exists) {
            (true, true) => return Err(StoreError::BucketExists(name.to_owned())),
            (false, false) => return Err(StoreError::BucketNotFound(name.to_owned())),
            _ => {}
        }
        sqlx::query(
            "INSERT INTO buckets (name, config, created_at, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(config)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let action = if create {
            "bucket.create"
        } else {
            "bucket.update"
        };
        audit(&mut tx, now, actor, action, name, None, Some(shown)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_bucket(&self, actor: &Actor, name: &str) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM buckets WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::BucketNotFound(name.to_owned()));
        }
        audit(&mut tx, now, actor, "bucket.delete", name, None, None).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn recording(&self, id: &str) -> Result<Option<RecordingRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM recordings WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(recording_row))
    }

    /// Audit entries, newest first.
    pub async fn audit_log(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, source, action, target, before, after FROM audit_log \
             WHERE at >= ? AND (? IS NULL OR action = ?) AND (? IS NULL OR target = ?) \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(q.since.map(to_ms).unwrap_or(0))
        .bind(&q.action)
        .bind(&q.action)
        .bind(&q.target)
        .bind(&q.target)
        .bind(i64::from(q.limit.unwrap_or(100)))
        .fetch_all(&self.pool)
        .await?;
        let json = |v: Option<String>| -> Result<Option<Value>, serde_json::Error> {
            v.map(|s| serde_json::from_str(&s)).transpose()
        };
        rows.into_iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.get("id"),
                    at: from_ms(r.get("at")),
                    actor: r.get("actor"),
                    source: r.get("source"),
                    action: r.get("action"),
                    target: r.get("target"),
                    before: json(r.get("before"))?,
                    after: json(r.get("after"))?,
                })
            })
            .collect()
    }

    /// Closes the pool, checkpointing the write-ahead log.
    pub async fn close(&self) {
        self.pool.close().await;
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

fn stored_app(r: &sqlx::sqlite::SqliteRow) -> Result<StoredApp, StoreError> {
    Ok(StoredApp {
        name: r.get("name"),
        definition: serde_json::from_str(r.get::<&str, _>("definition"))?,
        created_at: from_ms(r.get("created_at")),
        updated_at: from_ms(r.get("updated_at")),
    })
}

fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

async fn definition_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    name: &str,
) -> Result<Value, StoreError> {
    let row = sqlx::query("SELECT definition FROM apps WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::AppNotFound(name.to_owned()))?;
    Ok(serde_json::from_str(row.get::<&str, _>("definition"))?)
}

async fn audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    at: i64,
    actor: &Actor,
    action: &str,
    target: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, source, action, target, before, after) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(at)
    .bind(&actor.name)
    .bind(&actor.source)
    .bind(action)
    .bind(target)
    .bind(before.map(Value::to_string))
    .bind(after.map(Value::to_string))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn admin() -> Actor {
        Actor {
            name: "admin".into(),
            source: "unix:uid=0".into(),
        }
    }

    #[tokio::test]
    async fn a_full_report_table_keeps_the_repeated_violations() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("moat.db")).await.unwrap();
        let v = |blocked: String| {
            (
                "script-src".to_owned(),
                blocked,
                "https://app/".to_owned(),
                "enforce".to_owned(),
            )
        };
        // A real violation, seen again and again.
        for _ in 0..3 {
            store
                .record_csp_reports("a", &[v("https://real.cdn".into())])
                .await
                .unwrap();
        }
        // A flood of invented ones fills the table and goes on.
        let invented: Vec<_> = (0..MAX_REPORTS_PER_APP + 50)
            .map(|i| v(format!("https://x{i}.example")))
            .collect();
        store.record_csp_reports("a", &invented).await.unwrap();
        let rows = store.csp_reports("a", 5000).await.unwrap();
        assert_eq!(rows.len() as i64, MAX_REPORTS_PER_APP);
        let real = rows.iter().find(|r| r.blocked == "https://real.cdn");
        assert_eq!(
            real.map(|r| r.count),
            Some(3),
            "the repeated violation stays"
        );
        // The newest invented one took the place of an older one.
        assert!(
            rows.iter()
                .any(|r| r.blocked == format!("https://x{}.example", MAX_REPORTS_PER_APP + 49))
        );
        assert!(!rows.iter().any(|r| r.blocked == "https://x0.example"));
    }

    #[tokio::test]
    async fn apps_persist_and_every_change_is_audited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.db");
        {
            let store = Store::open(&path).await.unwrap();
            let def = json!({"name": "a", "path": "/a", "upstream": "http://127.0.0.1:1"});
            store.create_app(&admin(), "a", &def).await.unwrap();
            assert!(matches!(
                store.create_app(&admin(), "a", &def).await,
                Err(StoreError::AppExists(_))
            ));
            let def2 = json!({"name": "a", "path": "/b", "upstream": "http://127.0.0.1:1"});
            let before = store.update_app(&admin(), "a", &def2).await.unwrap();
            assert_eq!(before, def);
            store.create_app(&admin(), "gone", &def).await.unwrap();
            store.delete_app(&admin(), "gone").await.unwrap();
            assert!(matches!(
                store.delete_app(&admin(), "gone").await,
                Err(StoreError::AppNotFound(_))
            ));
            store.close().await;
        }
        // A second open (a restart) sees the same state and migrates nothing twice.
        let store = Store::open(&path).await.unwrap();
        let apps = store.apps().await.unwrap();
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].definition["path"], "/b");
        let log = store.audit_log(&AuditQuery::default()).await.unwrap();
        let actions: Vec<_> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["app.delete", "app.create", "app.update", "app.create"]
        );
        assert_eq!(log[2].before.as_ref().unwrap()["path"], "/a");
        assert_eq!(log[2].after.as_ref().unwrap()["path"], "/b");
        assert_eq!(log[0].after, None);
        let only_a = store
            .audit_log(&AuditQuery {
                target: Some("a".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(only_a.len(), 2);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[cfg(test)]
mod csp_tests {
    use super::*;

    #[tokio::test]
    async fn approvals_persist_and_are_audited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.db");
        let actor = Actor {
            name: "admin".into(),
            source: "unix:uid=0".into(),
        };
        let store = Store::open(&path).await.unwrap();
        let pairs = [
            ("connect-src".to_owned(), "https://a.example".to_owned()),
            ("img-src".to_owned(), "https://b.example".to_owned()),
        ];
        assert_eq!(store.approve_csp(&actor, "app", &pairs).await.unwrap(), 2);
        assert_eq!(
            store.approve_csp(&actor, "app", &pairs[..1]).await.unwrap(),
            0
        );
        store.close().await;
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.csp_approvals().await.unwrap().len(), 2);
        let gone = store
            .revoke_csp(&actor, "app", |_, s| s == "https://a.example")
            .await
            .unwrap();
        assert_eq!(gone, [pairs[0].clone()]);
        let log = store.audit_log(&AuditQuery::default()).await.unwrap();
        let actions: Vec<_> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["csp.revoke", "csp.approve"],
            "the no-op approval is not logged"
        );
    }
}
