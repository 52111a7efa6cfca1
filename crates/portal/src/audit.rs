//! The audit log: every admin change, newest first, filtered by app,
//! actor, action and time, each with what it changed.

use maud::{Markup, html};
use moat_admin::api::AuditEntry;
use moat_proxy::admin_api::Viewer;
use moat_proxy::body::Body;

use crate::api::{Api, seg};
use crate::forms::query_param;
use crate::layout::{Page, failure};

pub async fn page(api: &Api, viewer: &Viewer, query: &str) -> http::Response<Body> {
    let action = query_param(query, "action");
    let target = query_param(query, "target");
    let mut path = "audit?limit=200".to_owned();
    if let Some(a) = &action {
        path.push_str(&format!("&action={}", seg(a)));
    }
    if let Some(t) = &target {
        path.push_str(&format!("&target={}", seg(t)));
    }
    let entries: Vec<AuditEntry> = match api.get(&viewer.actor, &path).await {
        Ok(e) => e,
        Err(e) => return failure(viewer, "/audit", &e),
    };
    let content = html! {
        form.filters method="get" action={ (viewer.base) "/audit" } {
            div.field {
                label for="f-action" { "Action" }
                input #f-action name="action" value=(action.as_deref().unwrap_or("")) placeholder="app.create";
            }
            div.field {
                label for="f-target" { "Target" }
                input #f-target name="target" value=(target.as_deref().unwrap_or("")) placeholder="an app's name";
            }
            button type="submit" { "Filter" }
        }
        (table(viewer, &entries, true))
    };
    Page {
        viewer,
        title: "Audit log",
        section: "/audit",
        status: http::StatusCode::OK,
    }
    .render(None, content)
}

/// Entries as a table; `changes`: with what each changed.
pub fn table(_viewer: &Viewer, entries: &[AuditEntry], changes: bool) -> Markup {
    html! {
        @if entries.is_empty() {
            p { "No changes recorded." }
        } @else {
            div.scroll {
                table.audit {
                    thead { tr {
                        th scope="col" { "Time" } th scope="col" { "Who" } th scope="col" { "From" }
                        th scope="col" { "Action" } th scope="col" { "Target" }
                        @if changes { th scope="col" { "Change" } }
                    } }
                    tbody {
                        @for e in entries {
                            tr {
                                td { (e.time) }
                                td { (e.actor) }
                                td { (e.source) }
                                td { code { (e.action) } }
                                td { (e.target) }
                                @if changes {
                                    td { (change(e)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn change(e: &AuditEntry) -> Markup {
    let show = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
    };
    html! {
        @match (show(&e.before), show(&e.after)) {
            (None, None) => "—",
            (before, after) => details {
                summary { "What changed" }
                @if let Some(b) = before { p { "Before:" } pre { code { (b) } } }
                @if let Some(a) = after { p { "After:" } pre { code { (a) } } }
            }
        }
    }
}
