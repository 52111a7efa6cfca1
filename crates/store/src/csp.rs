//! The `csp_approvals` table: sources an app's manifest requested that an
//! admin approved through the admin API.

use sqlx::Row;

use crate::{Actor, Store, StoreError, now_ms, write_audit};

impl Store {
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
            write_audit(&mut tx, now, actor, "csp.approve", app, None, Some(&after)).await?;
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
            write_audit(&mut tx, now, actor, "csp.revoke", app, Some(&before), None).await?;
        }
        tx.commit().await?;
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditQuery;

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

    #[tokio::test]
    async fn approvals_are_per_app_and_revoking_nothing_is_not_logged() {
        let (_dir, store) = crate::tests::temp_store().await;
        let actor = crate::tests::admin();
        let pair = |d: &str, s: &str| (d.to_owned(), s.to_owned());
        store
            .approve_csp(&actor, "b", &[pair("img-src", "https://i.example")])
            .await
            .unwrap();
        store
            .approve_csp(&actor, "a", &[pair("img-src", "https://i.example")])
            .await
            .unwrap();
        assert_eq!(
            store.csp_approvals().await.unwrap(),
            [
                (
                    "a".to_owned(),
                    "img-src".to_owned(),
                    "https://i.example".to_owned()
                ),
                (
                    "b".to_owned(),
                    "img-src".to_owned(),
                    "https://i.example".to_owned()
                ),
            ]
        );
        let gone = store
            .revoke_csp(&actor, "a", |d, _| d == "script-src")
            .await
            .unwrap();
        assert_eq!(gone, []);
        let gone = store.revoke_csp(&actor, "a", |_, _| true).await.unwrap();
        assert_eq!(gone, [pair("img-src", "https://i.example")]);
        assert_eq!(
            store.csp_approvals().await.unwrap().len(),
            1,
            "b keeps its own"
        );
        let log = store.audit_log(&AuditQuery::default()).await.unwrap();
        let actions: Vec<_> = log
            .iter()
            .map(|e| (e.action.as_str(), e.target.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("csp.revoke", "a"),
                ("csp.approve", "a"),
                ("csp.approve", "b")
            ]
        );
        assert_eq!(
            log[0].before,
            Some(serde_json::json!({"approved": ["img-src https://i.example"]}))
        );
    }
}
