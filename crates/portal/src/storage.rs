//! Storage: the buckets recordings move to (added only once moat's probe
//! wrote, read and deleted an object in them; removed), and reapplying
//! today's storage policies to past recordings, first as a dry run that
//! says what would change, then with an explicit confirmation.

use http::{Method, Request, StatusCode};
use maud::{Markup, html};
use moat_admin::api::{ApiError, BucketRequest, BucketView, ReapplyRequest, ReapplyResult, paths};
use moat_proxy::admin_api::Viewer;
use moat_proxy::body::Body;
use serde_json::{Map, Value};

use crate::api::Api;
use crate::forms::{Form, query_param};
use crate::layout::{Notice, Page, button_form, csrf_field, see_other};

fn notice_of(query: &str) -> Option<&'static str> {
    Some(match query_param(query, "done")?.as_str() {
        "created" => "The bucket answered the probe and was added.",
        "deleted" => "The bucket was removed.",
        "updated" => "The bucket answered the probe and its settings were saved.",
        _ => return None,
    })
}

pub async fn page(api: &Api, viewer: &Viewer, query: &str) -> http::Response<Body> {
    let buckets: Result<Vec<BucketView>, ApiError> = api.get(&viewer.actor, paths::BUCKETS).await;
    let failed = query_param(query, "failed");
    let notice = match (&failed, notice_of(query)) {
        (Some(f), _) => Some(Notice::Failed(f.as_str())),
        (None, Some(m)) => Some(Notice::Done(m)),
        _ => None,
    };
    render(
        viewer,
        StatusCode::OK,
        notice,
        buckets,
        &Form::parse(""),
        None,
    )
}

fn render(
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<Notice<'_>>,
    buckets: Result<Vec<BucketView>, ApiError>,
    form: &Form,
    form_error: Option<&str>,
) -> http::Response<Body> {
    let content = html! {
        section aria-labelledby="buckets-h" {
            h2 #buckets-h { "Buckets" }
            @match &buckets {
                Err(e) => p.bad { (e.error) },
                Ok(list) if list.is_empty() => p { "No bucket: recordings stay on this node's disk." },
                Ok(list) => div.scroll { table {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Provider" } th scope="col" { "Where" }
                        th scope="col" { "Prefix" } th scope="col" { "Credentials" } th scope="col" { span.visually-hidden { "Action" } }
                    } }
                    tbody {
                        @for b in list {
                            @let c = b.config.as_ref().and_then(Value::as_object);
                            @let get = |k: &str| c.and_then(|c| c.get(k)).and_then(Value::as_str).unwrap_or("").to_owned();
                            tr {
                                td { (b.name) }
                                @if let Some(e) = &b.error {
                                    td colspan="4" { span.bad { (e) } }
                                } @else {
                                    td { (get("provider")) }
                                    td { code { @if get("provider") == "s3" { (get("endpoint")) " " (get("bucket")) " (" (get("region")) ")" } @else { (get("path")) } } }
                                    td { code { (get("prefix")) } }
                                    td { @if get("access_key_id").is_empty() { "from the environment" } @else { (get("access_key_id")) " with a secret (never shown)" } }
                                }
                                td {
                                    a.button href={ (viewer.base) "/storage/buckets/" (crate::api::seg(&b.name)) } aria-label={ "Edit bucket " (b.name) } { "Edit" }
                                    " "
                                    (button_form(viewer, &format!("/storage/buckets/{}/delete", crate::api::seg(&b.name)), &[], "Remove", "revoke", Some("Remove this bucket? (moat refuses while an app or a recording uses it.)")))
                                }
                            }
                        }
                    }
                } },
            }
            h3 #add-bucket-h { "Add a bucket" }
            (bucket_form(viewer, None, form, form_error))
        }
        section aria-labelledby="reapply-h" {
            h2 #reapply-h { "Storage policies" }
            p { "Retention dates are set when a recording closes. After a policy changes, reapply it to the recordings already kept: first see what would change." }
            form method="post" action={ (viewer.base) "/storage/reapply" } {
                (csrf_field(viewer))
                div.field {
                    label for="reapply-app" { "App (optional)" }
                    input #reapply-app name="app" aria-describedby="reapply-app-hint";
                    p.hint #reapply-app-hint { "Only this app's recordings; empty: all." }
                }
                button type="submit" { "See what would change" }
            }
        }
    };
    Page {
        viewer,
        title: "Storage",
        section: "/storage",
        status,
    }
    .render(notice, content)
}

/// The form that adds a bucket, or with `editing` changes that one's
/// settings (its name fixed; an empty secret keeps the stored one).
fn bucket_form(viewer: &Viewer, editing: Option<&str>, form: &Form, error: Option<&str>) -> Markup {
    let fields: [(&str, &str, &str, &str); 9] = [
        (
            "name",
            "Name",
            "text",
            "how recordings and policies name it",
        ),
        ("bucket", "S3 bucket", "text", "S3: the bucket's name"),
        ("region", "Region", "text", "S3: e.g. us-east-1"),
        (
            "endpoint",
            "Endpoint",
            "url",
            "S3-compatible stores: e.g. http://127.0.0.1:9000",
        ),
        (
            "access_key_id",
            "Access key ID",
            "text",
            "empty: from the environment",
        ),
        (
            "secret_access_key",
            "Secret access key",
            "password",
            "kept encrypted, never shown again",
        ),
        (
            "path",
            "Folder",
            "text",
            "a folder instead of S3: an absolute path",
        ),
        ("prefix", "Prefix", "text", "optional: where in the bucket"),
        (
            "path_style",
            "Path-style requests (most S3-compatible stores want them)",
            "checkbox",
            "",
        ),
    ];
    let action = match editing {
        Some(name) => format!("{}/storage/buckets/{}", viewer.base, crate::api::seg(name)),
        None => format!("{}/storage/buckets", viewer.base),
    };
    html! {
        form.bucket-form method="post" action=(action) {
            (csrf_field(viewer))
            @if let Some(e) = error {
                p.field-error #bucket-error role="alert" { (e) }
            }
            @for (name, label, kind, hint) in fields {
                @let id = format!("bucket-{name}");
                div.field {
                    @if kind == "checkbox" {
                        label.check for=(id) {
                            @if form.get(name) == "on" { input id=(id) name=(name) type="checkbox" checked; }
                            @else { input id=(id) name=(name) type="checkbox"; }
                            " " (label)
                        }
                    } @else {
                        label for=(id) { (label) }
                        @let value = if kind == "password" { "" } else { form.get(name) };
                        @if name == "name" && editing.is_some() {
                            input id=(id) name=(name) type=(kind) value=(value) readonly aria-describedby={ (id) "-hint" };
                            p.hint id={ (id) "-hint" } { "a bucket keeps its name" }
                        } @else {
                            input id=(id) name=(name) type=(kind) value=(value) autocomplete="off" aria-describedby={ (id) "-hint" };
                            @if name == "secret_access_key" && editing.is_some() {
                                p.hint id={ (id) "-hint" } { "empty: keep the stored secret (with the same access key ID)" }
                            } @else {
                                p.hint id={ (id) "-hint" } { (hint) }
                            }
                        }
                    }
                }
            }
            button type="submit" { @if editing.is_some() { "Probe and save" } @else { "Probe and add" } }
        }
    }
}

/// Adds a bucket from the form: S3 when a bucket name is given, else a
/// folder.
pub async fn create(api: &Api, viewer: &Viewer, req: Request<Body>) -> http::Response<Body> {
    let form = Form::read(req).await;
    let body = BucketRequest {
        name: form.opt("name"),
        config: config_of(&form),
    };
    match api
        .send::<_, BucketView>(&viewer.actor, Method::POST, paths::BUCKETS, &body)
        .await
    {
        Ok(_) => see_other(viewer, "/storage?done=created"),
        Err(e) => {
            let buckets = api.get(&viewer.actor, paths::BUCKETS).await;
            render(
                viewer,
                crate::api::status_of(&e),
                Some(Notice::Failed("The bucket was not added.")),
                buckets,
                &form,
                Some(&e.describe()),
            )
        }
    }
}

/// The bucket settings a form gives: S3 when no folder is given.
fn config_of(form: &Form) -> Value {
    let mut config = Map::new();
    let s3 = form.opt("path").is_none();
    config.insert(
        "provider".into(),
        Value::from(if s3 { "s3" } else { "filesystem" }),
    );
    let keys: &[&str] = if s3 {
        &[
            "bucket",
            "region",
            "endpoint",
            "access_key_id",
            "secret_access_key",
            "prefix",
        ]
    } else {
        &["path", "prefix"]
    };
    for key in keys {
        if let Some(v) = form.opt(key) {
            config.insert((*key).into(), Value::String(v));
        }
    }
    if s3 {
        config.insert(
            "path_style".into(),
            Value::Bool(form.get("path_style") == "on"),
        );
    }
    Value::Object(config)
}

/// One bucket's page: its settings in a form that changes them.
pub async fn edit_page(api: &Api, viewer: &Viewer, name: &str) -> http::Response<Body> {
    let bucket: BucketView = match api.get(&viewer.actor, &paths::bucket(name)).await {
        Ok(b) => b,
        Err(e) => return crate::layout::failure(viewer, "/storage", &e),
    };
    let mut pairs = vec![("name".to_owned(), bucket.name.clone())];
    if let Some(Value::Object(c)) = &bucket.config {
        for (k, v) in c {
            match v {
                Value::String(s) => pairs.push((k.clone(), s.clone())),
                Value::Bool(true) => pairs.push((k.clone(), "on".into())),
                _ => {}
            }
        }
    }
    edit_render(viewer, name, StatusCode::OK, &Form::from_pairs(pairs), None)
}

fn edit_render(
    viewer: &Viewer,
    name: &str,
    status: StatusCode,
    form: &Form,
    error: Option<&str>,
) -> http::Response<Body> {
    Page {
        viewer,
        title: &format!("Bucket {name}"),
        section: "/storage",
        status,
    }
    .render(
        error.map(|_| Notice::Failed("The bucket's settings were not saved.")),
        html! {
            p { "moat probes the bucket with the new settings (writes, reads and deletes an object) before it saves them." }
            (bucket_form(viewer, Some(name), form, error))
            p { a href={ (viewer.base) "/storage" } { "Back to storage" } }
        },
    )
}

/// Saves a bucket's changed settings (after the probe).
pub async fn update(
    api: &Api,
    viewer: &Viewer,
    name: &str,
    req: Request<Body>,
) -> http::Response<Body> {
    let form = Form::read(req).await;
    let body = BucketRequest {
        name: None,
        config: config_of(&form),
    };
    match api
        .send::<_, BucketView>(&viewer.actor, Method::PUT, &paths::bucket(name), &body)
        .await
    {
        Ok(_) => see_other(viewer, "/storage?done=updated"),
        Err(e) => edit_render(
            viewer,
            name,
            crate::api::status_of(&e),
            &form,
            Some(&e.describe()),
        ),
    }
}

pub async fn delete(api: &Api, viewer: &Viewer, name: &str) -> http::Response<Body> {
    match api.delete(&viewer.actor, &paths::bucket(name)).await {
        Ok(_) => see_other(viewer, "/storage?done=deleted"),
        Err(e) => see_other(
            viewer,
            &format!("/storage?failed={}", crate::api::seg(&e.error)),
        ),
    }
}

/// The dry run (what would change), or with `confirm` the change itself.
pub async fn reapply(api: &Api, viewer: &Viewer, req: Request<Body>) -> http::Response<Body> {
    let form = Form::read(req).await;
    let request = ReapplyRequest {
        app: form.opt("app"),
        confirm: form.get("confirm") == "yes",
    };
    let result: Result<ReapplyResult, ApiError> = api
        .send(&viewer.actor, Method::POST, paths::REAPPLY_POLICY, &request)
        .await;
    let scope = match &request.app {
        Some(a) => format!("the recordings of {a}"),
        None => "all recordings".to_owned(),
    };
    let content = match &result {
        Err(e) => html! { p.bad role="alert" { (e.describe()) } },
        Ok(r) if r.applied => html! {
            p.notice.done role="status" #reapply-result {
                "Applied to " (scope) ": " (r.changed) " of " (r.recordings) " retention dates changed."
            }
        },
        Ok(r) => html! {
            div #reapply-result {
                p { "A dry run over " (scope) ": nothing has changed yet." }
                dl {
                    (crate::layout::row("Recordings", html! { (r.recordings) }))
                    (crate::layout::row("Dates that would change", html! { (r.changed) }))
                    (crate::layout::row("Deleted at once", html! { (r.would_delete_now) }))
                }
                @if r.changed == 0 {
                    p { "Nothing to apply." }
                } @else {
                    form method="post" action={ (viewer.base) "/storage/reapply" } {
                        (csrf_field(viewer))
                        input type="hidden" name="confirm" value="yes";
                        @if let Some(a) = &request.app { input type="hidden" name="app" value=(a); }
                        button.danger type="submit" {
                            "Apply: change " (r.changed) " dates"
                            @if r.would_delete_now > 0 { " and delete " (r.would_delete_now) " recordings" }
                        }
                    }
                }
            }
        },
    };
    Page {
        viewer,
        title: "Reapply storage policies",
        section: "/storage",
        status: result
            .as_ref()
            .map(|_| StatusCode::OK)
            .unwrap_or_else(crate::api::status_of),
    }
    .render(
        None,
        html! {
            (content)
            p { a href={ (viewer.base) "/storage" } { "Back to storage" } }
        },
    )
}
