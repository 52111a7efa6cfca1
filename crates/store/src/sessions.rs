//! The `sessions` table: sign-in sessions by the hash of their id, so a
//! restart signs nobody out. Times are Unix milliseconds.

use sqlx::Row;

use crate::{Store, StoreError};

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub id_hash: [u8; 32],
    pub user: String,
    /// Names the admin password it was signed in with (empty for a
    /// provider's session).
    pub password: String,
    /// `system` or `oidc:NAME`.
    pub source: String,
    /// What the provider said of the person (JSON), `{}` for the system
    /// account.
    pub claims: String,
    pub created: i64,
    pub last_seen: i64,
}

impl Store {
    pub async fn insert_session(&self, s: &StoredSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO sessions (id_hash, user, password, created, last_seen, source, claims) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id_hash[..])
        .bind(&s.user)
        .bind(&s.password)
        .bind(s.created)
        .bind(s.last_seen)
        .bind(&s.source)
        .bind(&s.claims)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &[u8; 32]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(&id_hash[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every session of the system account not signed in with
    /// `password` (all of them, providers' too, with `None`).
    pub async fn delete_sessions_except(&self, password: Option<&str>) -> Result<u64, StoreError> {
        let done = match password {
            Some(p) => {
                sqlx::query("DELETE FROM sessions WHERE source = 'system' AND password != ?")
                    .bind(p)
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM sessions")
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(done.rows_affected())
    }

    /// Records when sessions were last used, in one transaction.
    pub async fn touch_sessions(&self, seen: &[([u8; 32], i64)]) -> Result<(), StoreError> {
        if seen.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for (id_hash, at) in seen {
            sqlx::query("UPDATE sessions SET last_seen = MAX(last_seen, ?) WHERE id_hash = ?")
                .bind(at)
                .bind(&id_hash[..])
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes sessions idle since `idle_before` or created before
    /// `created_before`; returns how many.
    pub async fn delete_expired_sessions(
        &self,
        idle_before: i64,
        created_before: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE last_seen < ? OR created < ?")
            .bind(idle_before)
            .bind(created_before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Replaces what a provider said of a session's person (a refresh).
    pub async fn update_session_claims(
        &self,
        id_hash: &[u8; 32],
        claims: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET claims = ? WHERE id_hash = ?")
            .bind(claims)
            .bind(&id_hash[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn sessions(&self) -> Result<Vec<StoredSession>, StoreError> {
        let rows = sqlx::query(
            "SELECT id_hash, user, password, created, last_seen, source, claims FROM sessions",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let id: Vec<u8> = r.get("id_hash");
                Some(StoredSession {
                    id_hash: id.try_into().ok()?,
                    user: r.get("user"),
                    password: r.get("password"),
                    created: r.get("created"),
                    last_seen: r.get("last_seen"),
                    source: r.get("source"),
                    claims: r.get("claims"),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(n: u8, password: &str, created: i64) -> StoredSession {
        StoredSession {
            id_hash: [n; 32],
            user: "admin".into(),
            password: password.into(),
            created,
            last_seen: created,
            source: "system".into(),
            claims: "{}".into(),
        }
    }

    #[tokio::test]
    async fn sessions_are_kept_touched_expired_and_ended() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("moat.db")).await.unwrap();
        store.insert_session(&session(1, "p1", 1000)).await.unwrap();
        store.insert_session(&session(2, "p1", 2000)).await.unwrap();
        store.insert_session(&session(3, "p0", 2000)).await.unwrap();
        // A provider's session: no password, its claims kept.
        let corp = StoredSession {
            source: "oidc:corp".into(),
            claims: r#"{"groups":["eng"]}"#.into(),
            ..session(4, "", 2000)
        };
        store.insert_session(&corp).await.unwrap();
        store
            .update_session_claims(&[4; 32], r#"{"groups":["ops"]}"#)
            .await
            .unwrap();
        store
            .touch_sessions(&[([1; 32], 5000), ([9; 32], 7000)])
            .await
            .unwrap();
        let all = store.sessions().await.unwrap();
        assert_eq!(all.len(), 4);
        let kept = all.iter().find(|s| s.id_hash == [4; 32]).unwrap();
        assert_eq!(
            (kept.source.as_str(), kept.claims.as_str()),
            ("oidc:corp", r#"{"groups":["ops"]}"#)
        );
        assert_eq!(
            all.iter().find(|s| s.id_hash == [1; 32]).unwrap().last_seen,
            5000
        );
        // An older touch does not move last_seen back.
        store.touch_sessions(&[([1; 32], 10)]).await.unwrap();
        assert_eq!(
            store
                .sessions()
                .await
                .unwrap()
                .iter()
                .find(|s| s.id_hash == [1; 32])
                .unwrap()
                .last_seen,
            5000
        );
        // Sessions of another password end; the provider's stays.
        assert_eq!(store.delete_sessions_except(Some("p1")).await.unwrap(), 1);
        store.delete_session(&[4; 32]).await.unwrap();
        // Idle since before 3000: session 2.
        assert_eq!(store.delete_expired_sessions(3000, 0).await.unwrap(), 1);
        store.delete_session(&[1; 32]).await.unwrap();
        assert!(store.sessions().await.unwrap().is_empty());
        store.close().await;
    }
}
