//! Apps: the list, one app's page (its settings, its composed CSP with
//! each source's layer and approval, the requests waiting for an admin,
//! what browsers blocked), approving and revoking requested sources, and
//! adding, changing and deleting API apps through one form whose errors
//! are the config checker's.
//!
//! One file (a little over 500 lines): the list, the page and the form
//! share the app's fields and notices.

use http::{Method, Request, StatusCode};
use maud::{Markup, html};
use moat_admin::api::{
    AppDetail, AppSummary, CspChange, CspChangeRequest, CspExplain, CspViolation, FieldProblem,
    ReportFilter, paths,
};
use moat_proxy::admin_api::Viewer;
use moat_proxy::body::Body;
use serde_json::{Map, Value};

use crate::api::{Api, seg};
use crate::forms::{Form, query_param};
use crate::layout::{Notice, Page, button_form, csrf_field, failure, row, see_other};

/// The message a `?done=` key stands for (fixed texts: a link cannot make
/// the portal say something else).
pub fn notice_of(query: &str) -> Option<&'static str> {
    Some(match query_param(query, "done")?.as_str() {
        "approved" => "Approved: the app's policy includes it now.",
        "revoked" => "Revoked: the app's policy no longer includes it.",
        "created" => "The app was added and is served now.",
        "updated" => "The app's settings were saved and are in force now.",
        "deleted" => "The app was deleted: moat no longer serves it.",
        "nothing" => "Nothing changed: it was not waiting (or not approved) any more.",
        _ => return None,
    })
}

pub async fn list(api: &Api, viewer: &Viewer, query: &str) -> http::Response<Body> {
    let apps: Vec<AppSummary> = match api.get(&viewer.actor, paths::APPS).await {
        Ok(a) => a,
        Err(e) => return failure(viewer, "/apps", &e),
    };
    let content = html! {
        @if apps.is_empty() {
            p { "No apps yet." }
        } @else {
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "App" } th scope="col" { "Mount" } th scope="col" { "Target" }
                        th scope="col" { "Sign-in" } th scope="col" { "Recorded" } th scope="col" { "Defined in" }
                    } }
                    tbody {
                        @for a in &apps {
                            tr {
                                td { a href={ (viewer.base) "/apps/" (seg(&a.name)) } { (a.name) } }
                                td { code { (mount(a)) } }
                                td { code { (a.target) } }
                                td { (a.auth) }
                                td { @if a.recording { "on" } @else { "off" } }
                                td { (a.defined_in) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="add-h" {
            h2 #add-h { "Add an app" }
            (app_form(viewer, None, &Form::parse(""), &[]))
        }
    };
    Page {
        viewer,
        title: "Apps",
        section: "/apps",
        status: StatusCode::OK,
    }
    .render(notice_of(query).map(Notice::Done), content)
}

fn mount(a: &AppSummary) -> String {
    format!("{}{}", a.host.as_deref().unwrap_or(""), a.path)
}

pub async fn detail(api: &Api, viewer: &Viewer, name: &str, query: &str) -> http::Response<Body> {
    let actor = &viewer.actor;
    let app: AppDetail = match api.get(actor, &paths::app(name)).await {
        Ok(a) => a,
        Err(e) => return failure(viewer, "/apps", &e),
    };
    let csp: Option<CspExplain> = api.get(actor, &paths::csp(name)).await.ok();
    let reports: Vec<CspViolation> = api
        .get(
            actor,
            &paths::csp_reports(name, &ReportFilter { limit: Some(50) }),
        )
        .await
        .unwrap_or_default();
    let s = &app.summary;
    let failed = query_param(query, "failed");
    let notice = match (&failed, notice_of(query)) {
        (Some(f), _) => Some(Notice::Failed(f.as_str())),
        (None, Some(m)) => Some(Notice::Done(m)),
        _ => None,
    };
    let content = html! {
        @if s.defined_in == "config" {
            p.note { "This app is defined in the config file: change it there (then " code { "moat serve" } " reloads on SIGHUP). The portal shows it read-only." }
        }
        section aria-labelledby="settings-h" {
            h2 #settings-h { "Settings" }
            dl {
                (row("Mount", html! { code { (mount(s)) } }))
                (row("Kind", html! { (s.kind) }))
                (row("Target", html! { code { (s.target) } }))
                (row("Sign-in", html! { (s.auth) }))
                (row("Recorded", html! { @if s.recording { "on" } @else { "off" } }))
                (row("Defined in", html! { (s.defined_in) }))
                (row("Largest request body", html! { (crate::overview::size(app.max_body_size)) }))
                (row("Timeouts", html! { "connect " (app.timeouts.connect) ", response header " (app.timeouts.response_header) ", idle " (app.timeouts.idle) }))
                (row("Identity token", html! { @if app.identity_jwt { "sent (X-Moat-Identity)" } @else { "not sent" } }))
            }
        }
        @if s.defined_in == "api" {
            section aria-labelledby="edit-h" {
                h2 #edit-h { "Change this app" }
                (app_form(viewer, Some(name), &current(s), &[]))
                (button_form(viewer, &format!("/apps/{}/delete", seg(name)), &[], "Delete this app", "danger", Some("Delete this app? moat stops serving it at once; the audit log keeps its definition.")))
            }
        }
        @if let Some(csp) = &csp {
            (csp_section(viewer, name, csp))
        }
        section aria-labelledby="reports-h" {
            h2 #reports-h { "What browsers blocked" }
            @if reports.is_empty() {
                p { "No violation reports." }
            } @else {
                div.scroll {
                    table {
                        thead { tr {
                            th scope="col" { "Directive" } th scope="col" { "Blocked" } th scope="col" { "Page" }
                            th scope="col" { "Mode" } th scope="col" { "Count" } th scope="col" { "First seen" } th scope="col" { "Last seen" }
                        } }
                        tbody {
                            @for r in &reports {
                                tr {
                                    td { code { (r.directive) } }
                                    td { code { (r.blocked) } }
                                    td { code { (r.document) } }
                                    td { (r.disposition) }
                                    td { (r.count) }
                                    td { (r.first_seen) }
                                    td { (r.last_seen) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Page {
        viewer,
        title: &format!("App {name}"),
        section: "/apps",
        status: StatusCode::OK,
    }
    .render(notice, content)
}

/// The composed policy: each directive's sources with their layer and
/// approval (revocable where an admin granted it), the requests waiting,
/// and the ones refused as dangerous, with the reason.
fn csp_section(viewer: &Viewer, app: &str, csp: &CspExplain) -> Markup {
    let granted = moat_policy::csp::Approval::Granted.describe();
    let action = |verb: &str| format!("/apps/{}/csp/{verb}", seg(app));
    html! {
        section #csp aria-labelledby="csp-h" {
            h2 #csp-h { "Content-Security-Policy" }
            p { "Sent as " code { (csp.header) } ":" }
            pre.policy { code { (csp.policy) } }
            h3 { "Waiting for approval" }
            @if csp.pending.is_empty() {
                p { "The app's manifest asks for nothing that is not approved." }
            } @else {
                p { "The app's manifest asks for these sources. None is in the policy until an admin approves it." }
                ul.requests {
                    @for p in &csp.pending {
                        li {
                            code { (p.directive) " " (p.source) }
                            " "
                            (button_form(viewer, &action("approve"), &[("directive", &p.directive), ("source", &p.source)], "Approve", "approve", None))
                        }
                    }
                }
            }
            @if !csp.refused.is_empty() {
                h3 { "Refused" }
                ul {
                    @for r in &csp.refused {
                        li { code { (r.directive) " " (r.source) } ": " (r.reason) }
                    }
                }
            }
            h3 { "Sources in force" }
            div.scroll {
                table {
                    thead { tr { th scope="col" { "Directive" } th scope="col" { "Source" } th scope="col" { "Layer" } th scope="col" { "Approval" } th scope="col" { span.visually-hidden { "Action" } } } }
                    tbody {
                        @for d in &csp.directives {
                            @for s in &d.sources {
                                tr {
                                    td { code { (d.directive) } }
                                    td { code { (s.source) } }
                                    td { (s.layer) @if let Some(from) = &s.inherited_from { " (from " code { (from) } ")" } }
                                    td { (s.approval) }
                                    td {
                                        @if s.layer == "manifest" && s.approval == granted && s.inherited_from.is_none() {
                                            (button_form(viewer, &action("revoke"), &[("directive", &d.directive), ("source", &s.source)], "Revoke", "revoke", Some("Revoke this source? The app's policy stops allowing it at once.")))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Approves or revokes one requested source (one directive).
pub async fn csp_change(
    api: &Api,
    viewer: &Viewer,
    app: &str,
    verb: &str,
    req: Request<Body>,
) -> http::Response<Body> {
    let form = Form::read(req).await;
    let change = CspChangeRequest {
        source: form.opt("source"),
        directive: form.opt("directive"),
        all: false,
    };
    let page = format!("/apps/{}", seg(app));
    let result: Result<CspChange, _> = api
        .send(
            &viewer.actor,
            Method::POST,
            &format!("{}/{verb}", paths::csp(app)),
            &change,
        )
        .await;
    match result {
        Ok(c) if c.changed.is_empty() => see_other(viewer, &format!("{page}?done=nothing#csp")),
        Ok(_) if verb == "approve" => see_other(viewer, &format!("{page}?done=approved#csp")),
        Ok(_) => see_other(viewer, &format!("{page}?done=revoked#csp")),
        Err(e) => see_other(viewer, &format!("{page}?failed={}#csp", seg(&e.error))),
    }
}

/// An app's settings as the form shows them.
fn current(s: &AppSummary) -> Form {
    let target = if s.kind == "static" {
        "static"
    } else {
        "upstream"
    };
    Form::from_pairs([
        ("name".to_owned(), s.name.clone()),
        ("path".to_owned(), s.path.clone()),
        ("host".to_owned(), s.host.clone().unwrap_or_default()),
        (target.to_owned(), s.target.clone()),
        ("auth".to_owned(), s.auth.clone()),
        (
            "recording".to_owned(),
            if s.recording { "on" } else { "" }.to_owned(),
        ),
    ])
}

/// The definition fields a form gives. Editing, a field left empty is
/// removed (`null` in the merge patch), so a cleared host is gone.
fn definition_of(form: &Form, editing: bool) -> Map<String, Value> {
    let mut def = Map::new();
    if !editing {
        def.insert("name".into(), Value::String(form.get("name").to_owned()));
    }
    for key in ["path", "host", "upstream", "static"] {
        match form.opt(key) {
            Some(v) => {
                def.insert(key.into(), Value::String(v));
            }
            None if editing => {
                def.insert(key.into(), Value::Null);
            }
            None => {}
        }
    }
    // Only `enabled`: the recording's other settings (limits, redaction,
    // bucket) stay as the API or the CLI set them.
    let record = form.get("recording") == "on";
    if record || editing {
        let mut recording = Map::new();
        recording.insert("enabled".into(), Value::Bool(record));
        def.insert("recording".into(), Value::Object(recording));
    }
    if editing && form.opt("auth").is_none() {
        // Cleared: back to the default sign-in.
        def.insert("auth".into(), Value::Null);
    }
    if let Some(auth) = form.opt("auth") {
        let list: Vec<Value> = auth
            .split(',')
            .map(|s| Value::String(s.trim().to_owned()))
            .filter(|v| v.as_str() != Some(""))
            .collect();
        def.insert(
            "auth".into(),
            if list.len() == 1 {
                list[0].clone()
            } else {
                Value::Array(list)
            },
        );
    }
    def
}

/// The checker's problems of a refused change, or its error as one.
fn problems_of(e: &moat_admin::api::ApiError) -> Vec<FieldProblem> {
    if e.problems.is_empty() {
        vec![FieldProblem {
            key: String::new(),
            message: e.error.clone(),
            fix: None,
        }]
    } else {
        e.problems.clone()
    }
}

/// Adds an app from the form; its mistakes come back next to their fields.
pub async fn create(api: &Api, viewer: &Viewer, req: Request<Body>) -> http::Response<Body> {
    let form = Form::read(req).await;
    let result: Result<AppDetail, _> = api
        .send(
            &viewer.actor,
            Method::POST,
            paths::APPS,
            &Value::Object(definition_of(&form, false)),
        )
        .await;
    match result {
        Ok(app) => see_other(
            viewer,
            &format!("/apps/{}?done=created", seg(&app.summary.name)),
        ),
        Err(e) => Page {
            viewer,
            title: "Add an app",
            section: "/apps",
            status: crate::api::status_of(&e),
        }
        .render(
            Some(Notice::Failed(
                "The app was not added: correct the fields marked below.",
            )),
            app_form(viewer, None, &form, &problems_of(&e)),
        ),
    }
}

/// Changes an API app from its form (a merge patch of the fields the
/// form has: its other settings stay); mistakes come back at their fields.
pub async fn update(
    api: &Api,
    viewer: &Viewer,
    name: &str,
    req: Request<Body>,
) -> http::Response<Body> {
    let form = Form::read(req).await;
    let result: Result<AppDetail, _> = api
        .send(
            &viewer.actor,
            Method::PATCH,
            &paths::app(name),
            &Value::Object(definition_of(&form, true)),
        )
        .await;
    match result {
        Ok(_) => see_other(viewer, &format!("/apps/{}?done=updated", seg(name))),
        Err(e) => Page {
            viewer,
            title: &format!("Change app {name}"),
            section: "/apps",
            status: crate::api::status_of(&e),
        }
        .render(
            Some(Notice::Failed(
                "Nothing was changed: correct the fields marked below.",
            )),
            app_form(viewer, Some(name), &form, &problems_of(&e)),
        ),
    }
}

pub async fn delete(api: &Api, viewer: &Viewer, name: &str) -> http::Response<Body> {
    match api.delete(&viewer.actor, &paths::app(name)).await {
        Ok(_) => see_other(viewer, "/apps?done=deleted"),
        Err(e) => see_other(
            viewer,
            &format!("/apps/{}?failed={}", seg(name), seg(&e.error)),
        ),
    }
}

/// The form that adds an app (or with `editing`, changes that one): a
/// name, a mount, and an upstream or a static folder; the checker's
/// problems shown at their fields.
pub fn app_form(
    viewer: &Viewer,
    editing: Option<&str>,
    form: &Form,
    problems: &[FieldProblem],
) -> Markup {
    let fields: [(&str, &str, &str, &str); 6] = [
        (
            "name",
            "Name",
            "letters, digits, - or _, e.g. grafana",
            "grafana",
        ),
        (
            "path",
            "Path prefix",
            "where it is mounted, e.g. /grafana",
            "/grafana",
        ),
        (
            "host",
            "Host (optional)",
            "a host name instead of or with the path",
            "grafana.example.com",
        ),
        (
            "upstream",
            "Upstream URL",
            "the app's address, e.g. http://127.0.0.1:3000",
            "http://127.0.0.1:3000",
        ),
        (
            "static",
            "Or a static folder",
            "an absolute path holding manifest.json",
            "/srv/apps/notes",
        ),
        (
            "auth",
            "Sign-in",
            "system (default), none, cert, oidc:NAME, or several separated by commas",
            "system",
        ),
    ];
    let known: Vec<&str> = fields.iter().map(|f| f.0).collect();
    let other: Vec<&FieldProblem> = problems
        .iter()
        .filter(|p| !known.contains(&field_of(&p.key)))
        .collect();
    let action = match editing {
        Some(name) => format!("{}/apps/{}", viewer.base, seg(name)),
        None => format!("{}/apps", viewer.base),
    };
    html! {
        form.app-form method="post" action=(action) novalidate {
            (csrf_field(viewer))
            @if !other.is_empty() {
                ul.problems role="alert" {
                    @for p in &other { li { (problem_text(p)) } }
                }
            }
            @for (name, label, hint, placeholder) in fields {
                @let mine: Vec<&FieldProblem> = problems.iter().filter(|p| field_of(&p.key) == name).collect();
                @let hint_id = format!("{name}-hint");
                @let error_id = format!("{name}-error");
                div.field {
                    label for={ "app-" (name) } { (label) }
                    @if name == "name" && editing.is_some() {
                        input id={ "app-" (name) } name=(name) value=(form.get(name)) readonly aria-describedby=(hint_id);
                    } @else if mine.is_empty() {
                        input id={ "app-" (name) } name=(name) value=(form.get(name)) placeholder=(placeholder) aria-describedby=(hint_id);
                    } @else {
                        input id={ "app-" (name) } name=(name) value=(form.get(name)) placeholder=(placeholder) aria-invalid="true" aria-describedby={ (error_id) " " (hint_id) };
                        p.field-error id=(error_id) {
                            @for p in &mine { (problem_text(p)) " " }
                        }
                    }
                    p.hint id=(hint_id) { (hint) }
                }
            }
            div.field {
                label.check for="app-recording" {
                    @if form.get("recording") == "on" {
                        input #app-recording name="recording" type="checkbox" checked aria-describedby="recording-hint";
                    } @else {
                        input #app-recording name="recording" type="checkbox" aria-describedby="recording-hint";
                    }
                    " Record its sessions"
                }
                p.hint #recording-hint { "every exchange and WebSocket message, credentials redacted, signed; played back under Recordings" }
            }
            button type="submit" { @if editing.is_some() { "Save changes" } @else { "Add the app" } }
        }
    }
}

/// The form field a problem's key names (`upstream`, `timeouts.connect`).
fn field_of(key: &str) -> &str {
    key.split(['.', '[']).next().unwrap_or(key)
}

fn problem_text(p: &FieldProblem) -> String {
    let key = if p.key.is_empty() {
        String::new()
    } else {
        format!("{}: ", p.key)
    };
    match &p.fix {
        Some(fix) => format!("{key}{} (fix: {fix})", p.message),
        None => format!("{key}{}", p.message),
    }
}
