//! The `totp` and `totp_recovery` tables: the system account's second
//! factor, its last accepted step, and its unused recovery codes (hashed).

use sqlx::Row;

use crate::{Store, StoreError, now_ms};

/// A user's second factor in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpEnrolment {
    pub secret: [u8; 20],
    pub last_step: Option<u64>,
}

impl Store {
    /// Starts (or restarts) an enrolment: a new secret, pending until a
    /// code confirms it; the second factor in force (if any) stays until
    /// then. SECURITY: audited without the secret.
    pub async fn begin_totp(
        &self,
        user: &str,
        secret: &[u8; 20],
        actor: &crate::Actor,
    ) -> Result<(), StoreError> {
        let at = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT OR REPLACE INTO totp_pending (user, secret, created) VALUES (?, ?, ?)")
            .bind(user)
            .bind(&secret[..])
            .bind(at)
            .execute(&mut *tx)
            .await?;
        crate::write_audit(&mut tx, at, actor, "totp.begin", user, None, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The secret of the enrolment under way, if any.
    pub async fn pending_totp(&self, user: &str) -> Result<Option<[u8; 20]>, StoreError> {
        let row = sqlx::query("SELECT secret FROM totp_pending WHERE user = ?")
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| r.get::<Vec<u8>, _>("secret").try_into().ok()))
    }

    /// Puts the pending enrolment in force at `step`, with its recovery
    /// codes' hashes (replacing the old factor and its codes).
    pub async fn confirm_totp(
        &self,
        user: &str,
        step: u64,
        recovery_hashes: &[[u8; 32]],
        actor: &crate::Actor,
    ) -> Result<(), StoreError> {
        let at = now_ms();
        let mut tx = self.pool.begin().await?;
        let secret: Option<Vec<u8>> = sqlx::query("SELECT secret FROM totp_pending WHERE user = ?")
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.get("secret"));
        let Some(secret) = secret else {
            return Ok(());
        };
        // The old factor and its recovery codes go (by cascade).
        sqlx::query("DELETE FROM totp WHERE user = ?")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO totp (user, secret, last_step, created) VALUES (?, ?, ?, ?)")
            .bind(user)
            .bind(&secret)
            .bind(step as i64)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM totp_pending WHERE user = ?")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        for h in recovery_hashes {
            sqlx::query("INSERT INTO totp_recovery (user, code_hash) VALUES (?, ?)")
                .bind(user)
                .bind(&h[..])
                .execute(&mut *tx)
                .await?;
        }
        crate::write_audit(&mut tx, at, actor, "totp.confirm", user, None, None).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_totp(&self, user: &str, actor: &crate::Actor) -> Result<bool, StoreError> {
        let at = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM totp_pending WHERE user = ?")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM totp WHERE user = ?")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() > 0 {
            crate::write_audit(&mut tx, at, actor, "totp.remove", user, None, None).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn totp(&self, user: &str) -> Result<Option<TotpEnrolment>, StoreError> {
        let row = sqlx::query("SELECT secret, last_step FROM totp WHERE user = ?")
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| {
            let secret: Vec<u8> = r.get("secret");
            Some(TotpEnrolment {
                secret: secret.try_into().ok()?,
                last_step: r.get::<Option<i64>, _>("last_step").map(|s| s as u64),
            })
        }))
    }

    /// Records `step` as used, only if it is later than the last one: two
    /// sign-ins racing with one code cannot both win. Returns whether it
    /// was recorded.
    pub async fn use_totp_step(&self, user: &str, step: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE totp SET last_step = ? WHERE user = ? \
             AND (last_step IS NULL OR last_step < ?)",
        )
        .bind(step as i64)
        .bind(user)
        .bind(step as i64)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Uses up a recovery code; returns whether it was one (and unused).
    pub async fn use_recovery_code(&self, user: &str, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM totp_recovery WHERE user = ? AND code_hash = ?")
            .bind(user)
            .bind(&hash[..])
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn recovery_codes_left(&self, user: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM totp_recovery WHERE user = ?")
                .bind(user)
                .fetch_one(&self.pool)
                .await?
                .get("n"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn enrolment_steps_and_recovery_codes_are_single_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("moat.db")).await.unwrap();
        let actor = crate::Actor {
            name: "admin".into(),
            source: "unix:uid=0".into(),
        };
        store.begin_totp("admin", &[7; 20], &actor).await.unwrap();
        assert_eq!(store.pending_totp("admin").await.unwrap(), Some([7; 20]));
        // Pending: nothing in force, no step is accepted.
        assert_eq!(store.totp("admin").await.unwrap(), None);
        assert!(!store.use_totp_step("admin", 5).await.unwrap());
        store
            .confirm_totp("admin", 10, &[[1; 32], [2; 32]], &actor)
            .await
            .unwrap();
        assert_eq!(store.pending_totp("admin").await.unwrap(), None);
        assert!(
            !store.use_totp_step("admin", 10).await.unwrap(),
            "the confirming step is used"
        );
        assert!(store.use_totp_step("admin", 11).await.unwrap());
        assert!(!store.use_totp_step("admin", 11).await.unwrap());
        assert!(store.use_recovery_code("admin", &[1; 32]).await.unwrap());
        assert!(!store.use_recovery_code("admin", &[1; 32]).await.unwrap());
        assert_eq!(store.recovery_codes_left("admin").await.unwrap(), 1);
        // A new enrolment begun and abandoned leaves the factor in force.
        store.begin_totp("admin", &[8; 20], &actor).await.unwrap();
        assert_eq!(store.totp("admin").await.unwrap().unwrap().secret, [7; 20]);
        // Confirmed, it replaces the old factor and its recovery codes.
        store
            .confirm_totp("admin", 20, &[[3; 32]], &actor)
            .await
            .unwrap();
        assert_eq!(store.totp("admin").await.unwrap().unwrap().secret, [8; 20]);
        assert!(!store.use_recovery_code("admin", &[2; 32]).await.unwrap());
        // The audit log names the actions, never the secret.
        let audit = store.audit_log(&Default::default()).await.unwrap();
        assert!(audit.iter().any(|a| a.action == "totp.confirm"));
        assert!(
            audit
                .iter()
                .all(|a| a.before.is_none() && a.after.is_none())
        );
        assert!(store.remove_totp("admin", &actor).await.unwrap());
        assert_eq!(
            store.recovery_codes_left("admin").await.unwrap(),
            0,
            "cascade"
        );
        store.close().await;
    }
}
