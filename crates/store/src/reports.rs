//! The `csp_reports` table: CSP violations browsers reported, one counted
//! row per distinct violation of an app, bounded per app.

use std::time::SystemTime;

use sqlx::Row;

use crate::{Store, StoreError, from_ms, now_ms};

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

impl Store {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
    async fn reports_are_counted_per_distinct_violation_and_app() {
        let (_dir, store) = crate::tests::temp_store().await;
        let v = |directive: &str, blocked: &str, disposition: &str| {
            (
                directive.to_owned(),
                blocked.to_owned(),
                "https://app/page".to_owned(),
                disposition.to_owned(),
            )
        };
        let img = v("img-src", "https://img.example", "enforce");
        let kept = store
            .record_csp_reports(
                "a",
                &[
                    img.clone(),
                    img.clone(),
                    v("img-src", "https://img.example", "report"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(kept, 3);
        store
            .record_csp_reports("b", &[v("script-src", "inline", "enforce")])
            .await
            .unwrap();
        let rows = store.csp_reports("a", 10).await.unwrap();
        assert_eq!(rows.len(), 2, "the disposition tells two violations apart");
        let enforced = rows.iter().find(|r| r.disposition == "enforce").unwrap();
        assert_eq!(enforced.count, 2);
        assert_eq!(
            (
                enforced.directive.as_str(),
                enforced.blocked.as_str(),
                enforced.document.as_str()
            ),
            ("img-src", "https://img.example", "https://app/page")
        );
        assert!(enforced.first_seen <= enforced.last_seen);
        assert_eq!(store.csp_reports("a", 1).await.unwrap().len(), 1);
        assert_eq!(
            store.csp_reports("b", 10).await.unwrap()[0].directive,
            "script-src"
        );
        assert_eq!(store.csp_reports("c", 10).await.unwrap(), []);
    }
}
