//! The `apps` table: apps created through the admin API, each change
//! audited in its own transaction.

use std::time::SystemTime;

use serde_json::Value;
use sqlx::Row;

use crate::{Actor, Store, StoreError, from_ms, now_ms, write_audit};

/// An app created through the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredApp {
    pub name: String,
    /// The app's settings, in the config file's field names.
    pub definition: Value,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

impl Store {
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
        write_audit(
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
        write_audit(
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
        write_audit(&mut tx, now, actor, "app.delete", name, Some(&before), None).await?;
        tx.commit().await?;
        Ok(before)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::AuditQuery;
    use crate::tests::{admin, temp_store};

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

    #[tokio::test]
    async fn an_app_is_read_back_by_name() {
        let (_dir, store) = temp_store().await;
        let def = |path: &str| json!({"path": path, "upstream": "http://127.0.0.1:1"});
        store.create_app(&admin(), "b", &def("/b")).await.unwrap();
        store.create_app(&admin(), "a", &def("/a")).await.unwrap();
        let names: Vec<_> = store
            .apps()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["a", "b"], "listed by name");
        let b = store.app("b").await.unwrap();
        assert_eq!(b.definition, def("/b"));
        assert_eq!(b.created_at, b.updated_at);
        std::thread::sleep(std::time::Duration::from_millis(5));
        store.update_app(&admin(), "b", &def("/c")).await.unwrap();
        let b2 = store.app("b").await.unwrap();
        assert_eq!(b2.created_at, b.created_at);
        assert!(b2.updated_at > b.updated_at);
        assert!(matches!(
            store.app("nope").await,
            Err(StoreError::AppNotFound(n)) if n == "nope"
        ));
        assert!(matches!(
            store.update_app(&admin(), "nope", &def("/x")).await,
            Err(StoreError::AppNotFound(_))
        ));
    }
}
