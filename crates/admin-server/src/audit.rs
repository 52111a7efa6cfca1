//! `GET /api/v1/audit`: the audit log of admin changes, newest first.

use axum::Json;
use axum::extract::{Query, State};
use moat_admin::api::{AuditEntry, AuditFilter};
use moat_store::AuditQuery;

use crate::Ctl;
use crate::error::ApiFailure;

pub async fn list(
    State(control): State<Ctl>,
    Query(params): Query<AuditFilter>,
) -> Result<Json<Vec<AuditEntry>>, ApiFailure> {
    let q = AuditQuery {
        limit: Some(params.limit.unwrap_or(100).min(10_000)),
        since: params.since.map(at_ms),
        until: params.until.map(at_ms),
        action: params.action,
        target: params.target,
        actor: params.actor,
    };
    let entries = control.store().audit_log(&q).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditEntry {
                id: e.id,
                time: moat_proxy::access_log::rfc3339(e.at),
                actor: e.actor,
                source: e.source,
                action: e.action,
                target: e.target,
                before: e.before,
                after: e.after,
            })
            .collect(),
    ))
}

fn at_ms(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
}
