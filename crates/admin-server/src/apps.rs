//! `/api/v1/apps`: list, show, create, replace, merge-patch, delete and
//! reload apps. API apps change through the control interface; apps of
//! the config file are read-only here.

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use moat_admin::api::{AppDetail, AppSummary, FieldProblem, Reloaded, Timeouts};
use moat_config::raw::RawApp;
use moat_config::{App, AppSource, Config};
use moat_policy::units::format_duration;
use serde_json::Value;

use crate::Ctl;
use crate::actor::Who;
use crate::error::{ApiFailure, field_problem};
use crate::merge_patch::merge_patch;

pub async fn list(State(control): State<Ctl>) -> Json<Vec<AppSummary>> {
    Json(summaries(&control.runtime().config))
}

pub async fn show(
    State(control): State<Ctl>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<AppDetail>, ApiFailure> {
    let config = control.runtime().config.clone();
    match config.apps.iter().find(|a| a.name == name) {
        Some(app) => Ok(Json(detail(app))),
        None if moat_proxy::welcome::served(&config) && name == "welcome" => {
            Ok(Json(welcome_detail()))
        }
        None => Err(ApiFailure::not_found(format!("app {name:?} not found"))),
    }
}

pub async fn create(
    State(control): State<Ctl>,
    Who(actor): Who,
    Json(body): Json<Value>,
) -> Result<Response, ApiFailure> {
    let (app, definition) = parse_definition(body)?;
    let name = app.name.clone();
    control.create_app(&actor, app, &definition).await?;
    let mut resp = served_detail(&control, &name)?.into_response();
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

pub async fn replace(
    State(control): State<Ctl>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
    Json(mut body): Json<Value>,
) -> Result<Json<AppDetail>, ApiFailure> {
    control.check_writable(&name).await?;
    // The name comes from the URL; a body may repeat it but not change it.
    if let Some(n) = body.get("name").and_then(Value::as_str) {
        if n != name {
            return Err(ApiFailure::bad_request(format!(
                "the body names app {n:?} but the URL names {name:?}; an app cannot be renamed (create the new one and delete the old)"
            )));
        }
    }
    if let Some(obj) = body.as_object_mut() {
        obj.insert("name".into(), Value::String(name.clone()));
    }
    update(&control, &actor, &name, body).await
}

/// JSON merge patch (RFC 7396) on the stored definition: fields given
/// replace, `null` removes, the rest stay.
pub async fn patch(
    State(control): State<Ctl>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
    Json(patch): Json<Value>,
) -> Result<Json<AppDetail>, ApiFailure> {
    let mut definition = control.stored_definition(&name).await?;
    merge_patch(&mut definition, &patch);
    if definition.get("name").and_then(Value::as_str) != Some(name.as_str()) {
        return Err(ApiFailure::bad_request(
            "an app cannot be renamed (create the new one and delete the old)",
        ));
    }
    update(&control, &actor, &name, definition).await
}

async fn update(
    control: &Ctl,
    actor: &moat_store::Actor,
    name: &str,
    body: Value,
) -> Result<Json<AppDetail>, ApiFailure> {
    let (app, definition) = parse_definition(body)?;
    control.update_app(actor, app, &definition).await?;
    served_detail(control, name)
}

pub async fn delete(
    State(control): State<Ctl>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
) -> Result<StatusCode, ApiFailure> {
    control.delete_app(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads the app's bundle manifest again and starts fresh upstream
/// connections.
pub async fn reload(
    State(control): State<Ctl>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Reloaded>, ApiFailure> {
    control.reload_app(&actor, &name).await?;
    Ok(Json(Reloaded { reloaded: name }))
}

/// A JSON body → a validated app and the definition to store, or the 400
/// that says what is wrong.
pub fn parse_definition(body: Value) -> Result<(App, Value), ApiFailure> {
    let raw: RawApp = serde_json::from_value(body).map_err(|e| {
        ApiFailure::invalid(vec![FieldProblem {
            key: String::new(),
            message: e.to_string(),
            fix: Some("send the fields of an [[apps]] entry, e.g. {\"name\": \"wiki\", \"path\": \"/wiki\", \"upstream\": \"http://127.0.0.1:3000\"}".into()),
        }])
    })?;
    let app = moat_config::validate::validate_api_app(&raw)
        .map_err(|problems| ApiFailure::invalid(problems.iter().map(field_problem).collect()))?;
    let normalized = serde_json::to_value(&raw).expect("RawApp serializes");
    Ok((app, normalized))
}

fn served_detail(control: &Ctl, name: &str) -> Result<Json<AppDetail>, ApiFailure> {
    let config = control.runtime().config.clone();
    match config.apps.iter().find(|a| a.name == name) {
        Some(app) => Ok(Json(detail(app))),
        None => Err(ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            moat_admin::api::ErrorCode::Internal,
            format!("app {name:?} was stored but is not served; see moat's log"),
        )),
    }
}

pub fn summaries(config: &Config) -> Vec<AppSummary> {
    if moat_proxy::welcome::served(config) {
        return vec![welcome_detail().summary];
    }
    config.apps.iter().map(summary).collect()
}

fn summary(a: &App) -> AppSummary {
    let (kind, target) = match &a.source {
        AppSource::Upstream(u) => (
            "upstream",
            format!(
                "{}{}",
                u.origin.to_string().trim_end_matches('/'),
                u.base_path
            ),
        ),
        AppSource::Static(s) => ("static", s.dir.display().to_string()),
    };
    AppSummary {
        name: a.name.clone(),
        host: a.host.clone(),
        path: a.path.clone(),
        kind: kind.to_owned(),
        target,
        defined_in: a.origin.as_str().to_owned(),
        auth: a.auth.to_string(),
        recording: a.recording.is_some(),
    }
}

fn detail(a: &App) -> AppDetail {
    AppDetail {
        summary: summary(a),
        preserve_host: a.preserve_host,
        strip_path: a.strip_path,
        h2c: matches!(&a.source, AppSource::Upstream(u) if u.h2c),
        max_body_size: a.max_body_size,
        timeouts: Timeouts {
            connect: format_duration(a.timeouts.connect),
            response_header: format_duration(a.timeouts.response_header),
            idle: format_duration(a.timeouts.idle),
        },
        identity_jwt: a.identity_jwt,
    }
}

/// The built-in welcome app, served while no app is configured.
fn welcome_detail() -> AppDetail {
    AppDetail {
        summary: AppSummary {
            name: "welcome".into(),
            host: None,
            path: "/".into(),
            kind: "built-in".into(),
            target: "built-in welcome page".into(),
            defined_in: "built-in".into(),
            auth: "system".into(),
            recording: false,
        },
        preserve_host: false,
        strip_path: false,
        h2c: false,
        max_body_size: 0,
        timeouts: Timeouts {
            connect: "0s".into(),
            response_header: "0s".into(),
            idle: "0s".into(),
        },
        identity_jwt: false,
    }
}
