//! moat's metadata store: state that changes while moat runs and must
//! survive a restart, in one SQLite file in the data directory.
//!
//! It holds the apps created through the admin API, CSP approvals and
//! reports, storage buckets, the index of session recordings, sign-in
//! sessions, and the audit log of every admin change. A change and its audit entry are written in
//! one transaction, so there is never a change without its record.
//!
//! Must not validate app definitions (the config crate does that before
//! anything is stored) or know about the running gateway.
//!
//! # Layout
//! One module per table, each an `impl Store` block with its own tests:
//! - this file: [`Store`] (open, creating and migrating; close),
//!   [`StoreError`], [`Actor`], and `write_audit`, which writes a change's
//!   audit entry inside the change's transaction.
//! - `apps`: apps created through the admin API ([`StoredApp`]).
//! - `audit`: reading the audit log ([`AuditEntry`], [`AuditQuery`]), and
//!   [`Store::record`] for admin actions that change no row.
//! - `csp`: CSP approvals granted through the admin API.
//! - `reports`: CSP violation reports ([`CspReport`]).
//! - `buckets`: storage buckets recordings move to.
//! - `recordings`: the recording index ([`RecordingRow`],
//!   [`RecordingQuery`]).
//! - `sessions`: sign-in sessions by the hash of their id
//!   ([`StoredSession`]).
//! - `totp`: the system account's second factor ([`TotpEnrolment`]) and
//!   its recovery codes (hashed).
//! - `migrations/`: the schema, one numbered SQL file per change, embedded
//!   in the binary and applied at open.

mod apps;
mod audit;
mod buckets;
mod csp;
mod recordings;
mod reports;
mod sessions;
mod states;
mod totp;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub use apps::StoredApp;
pub use audit::{AuditEntry, AuditQuery};
pub use recordings::{RecordingQuery, RecordingRow};
pub use reports::{CspReport, MAX_REPORTS_PER_APP};
pub use sessions::StoredSession;
pub use states::{Location, RecordingState};
pub use totp::TotpEnrolment;

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
    (
        7,
        "sessions",
        include_str!("../migrations/0007_sessions.sql"),
    ),
    (8, "totp", include_str!("../migrations/0008_totp.sql")),
    (
        9,
        "session_sources",
        include_str!("../migrations/0009_session_sources.sql"),
    ),
];

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

    /// Closes the pool, checkpointing the write-ahead log.
    pub async fn close(&self) {
        self.pool.close().await;
    }
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

/// Writes an admin change's audit entry inside the change's own
/// transaction `tx`, so the change commits with its record or not at all.
/// Every audited write of every table goes through here.
async fn write_audit(
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

    /// An admin on the socket, the actor of most tests.
    pub(crate) fn admin() -> Actor {
        Actor {
            name: "admin".into(),
            source: "unix:uid=0".into(),
        }
    }

    /// A store in a fresh temporary folder (dropped with the folder).
    pub(crate) async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("moat.db")).await.unwrap();
        (dir, store)
    }

    async fn applied_migrations(store: &Store) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success")
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .get("n")
    }

    #[tokio::test]
    async fn open_makes_a_private_file_with_every_migration_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.db");
        let store = Store::open(&path).await.unwrap();
        assert_eq!(applied_migrations(&store).await, MIGRATIONS.len() as i64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        store.close().await;
        let store = Store::open(&path).await.unwrap();
        assert_eq!(applied_migrations(&store).await, MIGRATIONS.len() as i64);
    }

    #[tokio::test]
    async fn open_names_the_file_it_cannot_open() {
        let path = Path::new("/nonexistent/moat/moat.db");
        let Err(e) = Store::open(path).await else {
            panic!("a store opened in a folder that does not exist");
        };
        assert!(
            matches!(&e, StoreError::Open { path: p, .. } if p == path),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("metadata store /nonexistent/moat/moat.db: "),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_audit_entry_lives_and_dies_with_its_transaction() {
        let (_dir, store) = temp_store().await;
        let after = serde_json::json!({"n": 1});
        let mut tx = store.pool.begin().await.unwrap();
        write_audit(
            &mut tx,
            5,
            &admin(),
            "x.rolled_back",
            "t",
            None,
            Some(&after),
        )
        .await
        .unwrap();
        drop(tx);
        let mut tx = store.pool.begin().await.unwrap();
        write_audit(&mut tx, 7, &admin(), "x.kept", "t", Some(&after), None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let log = store.audit_log(&AuditQuery::default()).await.unwrap();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0].action, "x.kept");
        assert_eq!(log[0].at, from_ms(7));
        assert_eq!(
            (log[0].actor.as_str(), log[0].source.as_str()),
            ("admin", "unix:uid=0")
        );
        assert_eq!(log[0].before, Some(after));
        assert_eq!(log[0].after, None);
    }

    #[test]
    fn milliseconds_round_trip_and_clamp_before_the_epoch() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(from_ms(to_ms(t)), t);
        assert_eq!(from_ms(-5), UNIX_EPOCH);
        assert_eq!(to_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
