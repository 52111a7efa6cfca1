//! The audit log: every admin change, newest first, filtered by app,
//! actor, action and time, each with what it changed.

use maud::{Markup, html};
use moat_admin::api::{AuditEntry, AuditFilter, paths};
use moat_proxy::admin_api::Viewer;
use moat_proxy::body::Body;

use crate::api::Api;
use crate::forms::query_param;
use crate::layout::{Page, failure};

pub async fn page(api: &Api, viewer: &Viewer, query: &str) -> http::Response<Body> {
    let text = |k: &str| query_param(query, k);
    let (since, until) = crate::forms::date_range(query);
    let filter = AuditFilter {
        limit: Some(200),
        action: text("action"),
        target: text("app"),
        actor: text("actor"),
        since,
        until,
    };
    let entries: Vec<AuditEntry> = match api.get(&viewer.actor, &paths::audit(&filter)).await {
        Ok(e) => e,
        Err(e) => return failure(viewer, "/audit", &e),
    };
    let field = |id: &str, name: &str, label: &str, kind: &str, hint: &str| {
        crate::layout::filter_field(query, id, name, label, kind, hint)
    };
    let content = html! {
        form.filters method="get" action={ (viewer.base) "/audit" } aria-label="Filter the audit log" {
            (field("f-app", "app", "App", "text", "an app's name"))
            (field("f-actor", "actor", "Who", "text", "admin"))
            (field("f-action", "action", "Action", "text", "app.create"))
            (field("f-since", "since", "From", "date", ""))
            (field("f-until", "until", "To", "date", ""))
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

/// The entry's change as a diff (removed, added, changed leaves).
fn change(e: &AuditEntry) -> Markup {
    use crate::diff::{Line, diff};
    let lines = diff(e.before.as_ref(), e.after.as_ref());
    html! {
        @if lines.is_empty() {
            "—"
        } @else {
            details {
                summary { (lines.len()) " change" @if lines.len() != 1 { "s" } }
                ul.diff {
                    @for l in &lines {
                        @match l {
                            Line::Removed { path, was } => li.removed { code { (path) } " " del { (was) } },
                            Line::Added { path, now } => li.added { code { (path) } " " ins { (now) } },
                            Line::Changed { path, was, now } => li.changed { code { (path) } " " del { (was) } " → " ins { (now) } },
                        }
                    }
                }
            }
        }
    }
}
