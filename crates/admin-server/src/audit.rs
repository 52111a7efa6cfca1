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
        since: None,
        action: params.action,
        target: params.target,
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
