//! `/api/v1/apps/{name}/csp`: an app's composed policy explained, approving
//! and revoking its manifest's requests, and the violations browsers
//! reported.

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use moat_admin::api::{
    CspChange, CspChangeRequest, CspDirective, CspExplain, CspPair, CspPending, CspRefused,
    CspSource, CspViolation, ReportFilter,
};
use moat_proxy::control::CspSelection;
use moat_proxy::runtime::AppRuntime;

use crate::Ctl;
use crate::error::ApiFailure;

pub async fn explain(
    State(control): State<Ctl>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<CspExplain>, ApiFailure> {
    let app = control.served_app(&name)?;
    Ok(Json(explained(&app)))
}

pub async fn approve(
    State(control): State<Ctl>,
    crate::actor::Who(actor): crate::actor::Who,
    UrlPath(name): UrlPath<String>,
    Json(req): Json<CspChangeRequest>,
) -> Result<Json<CspChange>, ApiFailure> {
    let pairs = control.approve_csp(&actor, &name, &selection(&req)).await?;
    Ok(Json(change(&control, &name, pairs)))
}

pub async fn revoke(
    State(control): State<Ctl>,
    crate::actor::Who(actor): crate::actor::Who,
    UrlPath(name): UrlPath<String>,
    Json(req): Json<CspChangeRequest>,
) -> Result<Json<CspChange>, ApiFailure> {
    let pairs = control.revoke_csp(&actor, &name, &selection(&req)).await?;
    Ok(Json(change(&control, &name, pairs)))
}

pub async fn reports(
    State(control): State<Ctl>,
    UrlPath(name): UrlPath<String>,
    Query(params): Query<ReportFilter>,
) -> Result<Json<Vec<CspViolation>>, ApiFailure> {
    control.served_app(&name)?;
    let limit = params.limit.unwrap_or(100).min(1000);
    let reports = control.store().csp_reports(&name, limit).await?;
    Ok(Json(
        reports
            .into_iter()
            .map(|r| CspViolation {
                directive: r.directive,
                blocked: r.blocked,
                document: r.document,
                disposition: r.disposition,
                count: r.count,
                first_seen: moat_proxy::access_log::rfc3339(r.first_seen),
                last_seen: moat_proxy::access_log::rfc3339(r.last_seen),
            })
            .collect(),
    ))
}

fn selection(req: &CspChangeRequest) -> CspSelection {
    CspSelection {
        source: req.source.clone(),
        directive: req.directive.clone(),
        all: req.all,
    }
}

fn change(control: &Ctl, name: &str, pairs: Vec<(String, String)>) -> CspChange {
    let policy = control
        .served_app(name)
        .map(|a| a.response_policy.csp_value.clone())
        .unwrap_or_default();
    CspChange {
        changed: pairs.into_iter().map(|(d, s)| format!("{d} {s}")).collect(),
        policy,
    }
}

/// The app's policy, each source with its layer and approval, and the
/// command that approves each pending request.
pub fn explained(app: &AppRuntime) -> CspExplain {
    let p = &app.response_policy;
    let c = &p.csp;
    let pair = |g: &moat_policy::csp::Grant| CspPair {
        directive: g.directive.clone(),
        source: g.source.clone(),
    };
    CspExplain {
        app: app.name.clone(),
        header: p.csp_header.as_str().to_owned(),
        policy: p.csp_value.clone(),
        directives: c
            .directives
            .iter()
            .map(|(d, entries)| CspDirective {
                directive: d.clone(),
                sources: entries
                    .iter()
                    .map(|e| CspSource {
                        source: e.source.clone(),
                        layer: e.layer.as_str().to_owned(),
                        approval: e.approval.describe(),
                        inherited_from: e.inherited_from.clone(),
                    })
                    .collect(),
            })
            .collect(),
        pending: c
            .pending
            .iter()
            .map(|g| CspPending {
                directive: g.directive.clone(),
                source: g.source.clone(),
                approve_with: format!(
                    "moat csp approve {} {} --directive {}",
                    app.name,
                    shell_quote(&g.source),
                    g.directive
                ),
            })
            .collect(),
        refused: c
            .refused
            .iter()
            .map(|(g, why)| CspRefused {
                directive: g.directive.clone(),
                source: g.source.clone(),
                reason: why.clone(),
            })
            .collect(),
        unrestricted: c.unrestricted.iter().map(pair).collect(),
    }
}

/// Quotes a source for a shell when it needs it ('self' does).
fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:/".contains(&b))
    {
        s.to_owned()
    } else {
        format!("\"{s}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(
            shell_quote("https://cdn.example.com"),
            "https://cdn.example.com"
        );
        assert_eq!(shell_quote("'self'"), "\"'self'\"");
        assert_eq!(shell_quote("*.example.com"), "\"*.example.com\"");
    }

    #[test]
    fn a_selection_is_the_request_as_sent() {
        let s = selection(&CspChangeRequest {
            source: Some("https://a".into()),
            directive: Some("script-src".into()),
            all: false,
        });
        assert!(s.names("script-src", "https://a"));
        assert!(!s.names("img-src", "https://a"));
        assert!(!s.names("script-src", "https://b"));
    }
}
