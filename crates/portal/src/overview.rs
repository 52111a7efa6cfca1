//! The overview: what moat serves (listeners, certificates, apps), the
//! state of recording storage, what waits for an admin (CSP requests), the
//! latest changes. With no app yet it is moat's welcome: a form to add
//! the first one.

use maud::{Markup, html};
use moat_admin::api::{AuditEntry, AuditFilter, CspExplain, Status, paths};
use moat_proxy::admin_api::Viewer;
use moat_proxy::body::Body;

use crate::api::{Api, seg};
use crate::layout::{Notice, Page, failure, row};

pub async fn page(api: &Api, viewer: &Viewer, query: &str) -> http::Response<Body> {
    let actor = &viewer.actor;
    let status: Status = match api.get(actor, paths::STATUS).await {
        Ok(s) => s,
        Err(e) => return failure(viewer, "/", &e),
    };
    let audit: Vec<AuditEntry> = api
        .get(
            actor,
            &paths::audit(&AuditFilter {
                limit: Some(8),
                ..Default::default()
            }),
        )
        .await
        .unwrap_or_default();
    let mut pending = Vec::new();
    for app in &status.apps {
        if let Ok(csp) = api.get::<CspExplain>(actor, &paths::csp(&app.name)).await
            && !csp.pending.is_empty()
        {
            pending.push((app.name.clone(), csp.pending.len()));
        }
    }
    let notice = crate::apps::notice_of(query);
    let content = html! {
        @if status.apps.is_empty() {
            (welcome(viewer))
        }
        div.cards {
            section.card aria-labelledby="apps-h" {
                h2 #apps-h { "Apps" }
                p.big { (status.apps.len()) }
                @if !status.apps.is_empty() {
                    table {
                        caption.visually-hidden { "Apps, their sign-in and recording" }
                        thead { tr { th scope="col" { "App" } th scope="col" { "Sign-in" } th scope="col" { "Recorded" } } }
                        tbody {
                            @for app in &status.apps {
                                tr {
                                    td { a href={ (viewer.base) "/apps/" (seg(&app.name)) } { (app.name) } }
                                    td { (app.auth) }
                                    td { @if app.recording { "on" } @else { "off" } }
                                }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="csp-h" {
                h2 #csp-h { "Waiting for approval" }
                @let total: usize = pending.iter().map(|(_, n)| n).sum();
                p.big { (total) }
                @if pending.is_empty() {
                    p { "No app asks for a Content-Security-Policy source." }
                } @else {
                    ul {
                        @for (app, n) in &pending {
                            li { a href={ (viewer.base) "/apps/" (seg(app)) "#csp" } { (app) ": " (n) " CSP source" @if *n != 1 { "s" } } }
                        }
                    }
                }
            }
            section.card aria-labelledby="storage-h" {
                h2 #storage-h { "Recording storage" }
                @match &status.recording_storage {
                    Some(s) => {
                        p.big { (s.state) }
                        dl {
                            (row("Folder", html! { code { (s.path) } }))
                            @if let Some(free) = s.available_bytes { (row("Free", html! { (size(free)) })) }
                            (row("Open recordings", html! { (s.open_recordings) }))
                            (row("Queued", html! { (s.queued_events) " events, " (size(s.queued_bytes)) }))
                        }
                    }
                    None => p { "Not known." },
                }
            }
            section.card aria-labelledby="moat-h" {
                h2 #moat-h { "moat" }
                dl {
                    (row("Version", html! { (status.version) }))
                    (row("Up for", html! { (uptime(status.uptime_seconds)) }))
                    @if let Some(s) = &status.sign_in {
                        (row("Sessions", html! { (s.sessions) }))
                    }
                }
            }
        }
        section aria-labelledby="listeners-h" {
            h2 #listeners-h { "Listeners" }
            ul {
                @for l in &status.listeners {
                    li { code { (l.address) } " — " (l.role) }
                }
            }
        }
        section aria-labelledby="certs-h" {
            h2 #certs-h { "Certificates" }
            @if status.certificates.is_empty() {
                p { "None: TLS is off." }
            } @else {
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Names" } th scope="col" { "Source" } th scope="col" { "Expires" } th scope="col" { "State" } } }
                        tbody {
                            @for c in &status.certificates {
                                tr {
                                    td { (c.names.join(", ")) }
                                    td { (c.source) }
                                    td { (c.not_after.as_deref().unwrap_or("—")) }
                                    td {
                                        @if let Some(e) = &c.error { span.bad { (e) } }
                                        @else if c.expires_soon { span.warn { "expires soon" } }
                                        @else { "valid" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="audit-h" {
            h2 #audit-h { "Latest changes" }
            (crate::audit::table(viewer, &audit, false))
            p { a href={ (viewer.base) "/audit" } { "The whole audit log" } }
        }
    };
    Page {
        viewer,
        title: "Overview",
        section: "/",
        status: http::StatusCode::OK,
    }
    .render(notice.as_ref().map(|m| Notice::Done(m)), content)
}

/// The empty state: moat serves nothing yet.
fn welcome(viewer: &Viewer) -> Markup {
    html! {
        section.welcome aria-labelledby="welcome-h" {
            h2 #welcome-h { "No apps yet" }
            p { "moat is running and protects nothing yet. Add an app here, or in a config file ("
                code { "moat serve -c moat.toml" } ", see " code { "moat config default" } ")." }
            (crate::apps::app_form(viewer, None, &crate::forms::Form::parse(""), &[]))
        }
    }
}

/// A byte count for people: one decimal, binary units.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

fn uptime(s: u64) -> String {
    let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}
