//! The `audit_log` table: every admin change, newest first. Entries are
//! written by `write_audit` (in lib.rs) inside the change's own transaction;
//! this module reads them, and records actions that change no row.

use std::time::SystemTime;

use serde_json::Value;
use sqlx::Row;

use crate::{Actor, Store, StoreError, from_ms, now_ms, to_ms, write_audit};

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
    /// Only entries before this time.
    pub until: Option<SystemTime>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub actor: Option<String>,
}

impl Store {
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
        write_audit(&mut tx, now_ms(), actor, action, target, before, after).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Audit entries, newest first.
    pub async fn audit_log(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, source, action, target, before, after FROM audit_log \
             WHERE at >= ? AND at < ? AND (? IS NULL OR action = ?) AND (? IS NULL OR target = ?) \
             AND (? IS NULL OR actor = ?) \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(q.since.map(to_ms).unwrap_or(0))
        .bind(q.until.map(to_ms).unwrap_or(i64::MAX))
        .bind(&q.action)
        .bind(&q.action)
        .bind(&q.target)
        .bind(&q.target)
        .bind(&q.actor)
        .bind(&q.actor)
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
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tests::{admin, temp_store};

    #[tokio::test]
    async fn recorded_actions_are_listed_newest_first_and_filtered() {
        let (_dir, store) = temp_store().await;
        let other = Actor {
            name: "ops".into(),
            source: "tcp:192.0.2.1:5000".into(),
        };
        let start = SystemTime::now();
        store
            .record(&admin(), "config.reload", "moat.toml", None, None)
            .await
            .unwrap();
        store
            .record(
                &other,
                "config.reload",
                "other.toml",
                Some(&json!({"apps": 1})),
                Some(&json!({"apps": 2})),
            )
            .await
            .unwrap();
        store
            .record(&admin(), "key.rotate", "moat.toml", None, None)
            .await
            .unwrap();

        let all = store.audit_log(&AuditQuery::default()).await.unwrap();
        let actions: Vec<_> = all.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["key.rotate", "config.reload", "config.reload"]);
        assert!(all[0].id > all[1].id && all[1].id > all[2].id);
        assert_eq!(
            (all[1].actor.as_str(), all[1].source.as_str()),
            ("ops", "tcp:192.0.2.1:5000")
        );
        assert_eq!(all[1].before, Some(json!({"apps": 1})));
        assert_eq!(all[1].after, Some(json!({"apps": 2})));
        assert!(
            all.iter()
                .all(|e| e.at >= start - std::time::Duration::from_secs(1))
        );

        let q = |f: fn(&mut AuditQuery)| {
            let mut q = AuditQuery::default();
            f(&mut q);
            q
        };
        let reloads = store
            .audit_log(&q(|q| q.action = Some("config.reload".into())))
            .await
            .unwrap();
        assert_eq!(reloads.len(), 2);
        let on_file = store
            .audit_log(&q(|q| q.target = Some("moat.toml".into())))
            .await
            .unwrap();
        assert_eq!(on_file.len(), 2);
        let newest = store.audit_log(&q(|q| q.limit = Some(1))).await.unwrap();
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].action, "key.rotate");
        let future = store
            .audit_log(&q(|q| {
                q.since = Some(SystemTime::now() + std::time::Duration::from_secs(3600))
            }))
            .await
            .unwrap();
        assert_eq!(future, []);
    }
}
