//! The `buckets` table: storage buckets recordings move to, with their
//! config (secrets encrypted by the caller), each change audited.

use serde_json::Value;
use sqlx::Row;

use crate::{Actor, Store, StoreError, now_ms, write_audit};

impl Store {
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
        write_audit(&mut tx, now, actor, action, name, None, Some(shown)).await?;
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
        write_audit(&mut tx, now, actor, "bucket.delete", name, None, None).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::AuditQuery;
    use crate::tests::{admin, temp_store};

    #[tokio::test]
    async fn buckets_are_created_updated_and_deleted_with_audits() {
        let (_dir, store) = temp_store().await;
        let shown = json!({"kind": "s3", "secret": "(set)"});
        store
            .put_bucket(&admin(), "b", r#"{"v":1}"#, &shown, true)
            .await
            .unwrap();
        store
            .put_bucket(&admin(), "a", r#"{"v":0}"#, &shown, true)
            .await
            .unwrap();
        assert!(matches!(
            store.put_bucket(&admin(), "b", "{}", &shown, true).await,
            Err(StoreError::BucketExists(n)) if n == "b"
        ));
        assert!(matches!(
            store.put_bucket(&admin(), "nope", "{}", &shown, false).await,
            Err(StoreError::BucketNotFound(n)) if n == "nope"
        ));
        store
            .put_bucket(&admin(), "b", r#"{"v":2}"#, &shown, false)
            .await
            .unwrap();
        assert_eq!(
            store.buckets().await.unwrap(),
            [
                ("a".to_owned(), r#"{"v":0}"#.to_owned()),
                ("b".to_owned(), r#"{"v":2}"#.to_owned())
            ]
        );
        store.delete_bucket(&admin(), "a").await.unwrap();
        assert!(matches!(
            store.delete_bucket(&admin(), "a").await,
            Err(StoreError::BucketNotFound(_))
        ));
        assert_eq!(store.buckets().await.unwrap().len(), 1);

        let log = store.audit_log(&AuditQuery::default()).await.unwrap();
        let actions: Vec<_> = log
            .iter()
            .map(|e| (e.action.as_str(), e.target.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("bucket.delete", "a"),
                ("bucket.update", "b"),
                ("bucket.create", "a"),
                ("bucket.create", "b")
            ],
            "refused changes are not logged"
        );
        assert_eq!(
            log[1].after,
            Some(shown),
            "the audit shows what the caller shows"
        );
    }
}
