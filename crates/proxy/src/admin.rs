//! The admin API, served on a Unix socket in the data directory.
//!
//! SECURITY: the socket is created with mode 0600 inside a 0700 data
//! directory, so only moat's own user can connect; file permissions are the
//! authentication. The API is never served over TCP here (see
//! `pipeline::admin_tcp` for the opt-in HTTPS route to the same handlers).
//!
//! Every change is written to the metadata store with its audit entry
//! before it is served; apps from the config file are read-only here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{FromRequestParts, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use axum::{Json, Router};
use moat_admin::api::{
    ApiError, AppDetail, AppSummary, AuditEntry, CspChange, CspChangeRequest, CspDirective,
    CspExplain, CspPair, CspPending, CspRefused, CspSource, CspViolation, FieldProblem, Listener,
    RecordingStorage, RecordingSummary, Status, Timeouts, VerifyResult,
};
use moat_config::raw::RawApp;
use moat_config::{App, AppSource, Config};
use moat_policy::units::format_duration;
use moat_store::{Actor, AuditQuery, StoreError};
use serde_json::Value;
use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::gateway::Shared;
use crate::listener::Role;

/// Binds the socket. A socket file left by a crashed moat is replaced; one
/// that still answers belongs to a running moat and is an error.
pub async fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!(
                    "{} is in use: another moat is running with this data directory",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = router(shared).into_make_service_with_connect_info::<UnixPeer>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!("admin API stopped: {e}");
    }
    let _ = std::fs::remove_file(&path);
}

/// The API's routes; served on the Unix socket, and behind authentication
/// on the HTTPS listener when `admin_over_tcp` is on.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/apps", get(list_apps).post(create_app))
        .route(
            "/api/v1/apps/{name}",
            get(show_app)
                .put(replace_app)
                .patch(patch_app)
                .delete(delete_app),
        )
        .route("/api/v1/apps/{name}/reload", post(reload_app))
        .route("/api/v1/apps/{name}/csp", get(csp_explain))
        .route("/api/v1/apps/{name}/csp/approve", post(csp_approve))
        .route("/api/v1/apps/{name}/csp/revoke", post(csp_revoke))
        .route("/api/v1/apps/{name}/csp/reports", get(csp_reports))
        .route("/api/v1/audit", get(audit_log))
        .route("/api/v1/buckets", get(list_buckets).post(create_bucket))
        .route(
            "/api/v1/buckets/{name}",
            get(show_bucket).put(update_bucket).delete(delete_bucket),
        )
        .route("/api/v1/recordings", get(recordings))
        .route("/api/v1/recordings/reapply-policy", post(reapply_policy))
        .route(
            "/api/v1/recordings/{id}",
            get(recording).delete(delete_recording),
        )
        .route("/api/v1/recordings/{id}/verify", post(verify_recording))
        .route("/api/v1/recordings/{id}/events", get(recording_events))
        .route("/api/v1/recordings/{id}/har", get(recording_har))
        .route("/api/v1/openapi.json", get(openapi))
        .fallback(not_found)
        .with_state(shared)
}

async fn status(State(shared): State<Arc<Shared>>) -> Json<Status> {
    let config = shared.runtime.load().config.clone();
    Json(Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: shared.uptime().as_secs(),
        recording_storage: Some(RecordingStorage {
            state: crate::gateway::current_storage_state(&shared)
                .as_str()
                .to_owned(),
            path: shared.recorder.root().display().to_string(),
            available_bytes: crate::recorder::available_bytes(shared.recorder.root()),
            minimum_available_capacity: config.recording.minimum_available_capacity,
            open_recordings: shared.recorder.open_count() as u64,
            queued_events: shared.recorder.queue.depth().0 as u64,
            queued_bytes: shared.recorder.queue.depth().1,
        }),
        listeners: shared
            .listeners()
            .iter()
            .map(|(addr, role)| Listener {
                address: addr.to_string(),
                role: match role {
                    Role::Apps { tls: true } => "https",
                    Role::Apps { tls: false } => "http",
                    Role::RedirectToHttps { .. } => "http-redirect",
                }
                .to_owned(),
            })
            .collect(),
        apps: summaries(&config),
    })
}

async fn list_apps(State(shared): State<Arc<Shared>>) -> Json<Vec<AppSummary>> {
    Json(summaries(&shared.runtime.load().config))
}

async fn show_app(State(shared): State<Arc<Shared>>, UrlPath(name): UrlPath<String>) -> Response {
    let config = shared.runtime.load().config.clone();
    match config.apps.iter().find(|a| a.name == name) {
        Some(app) => Json(detail(app)).into_response(),
        None if config.apps.is_empty() && name == "welcome" => {
            Json(welcome_detail()).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            format!("app {name:?} not found"),
            "not_found",
        ),
    }
}

/// The API's description; the repo keeps the same file (docs/openapi.json).
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such API endpoint".to_owned(),
        "not_found",
    )
}

pub fn error(status: StatusCode, error: String, code: &str) -> Response {
    (
        status,
        Json(ApiError {
            error,
            code: code.to_owned(),
            problems: Vec::new(),
        }),
    )
        .into_response()
}

/// The peer of an admin-socket connection.
#[derive(Debug, Clone, Copy)]
pub struct UnixPeer {
    uid: Option<u32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for UnixPeer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        UnixPeer {
            uid: stream.io().peer_cred().ok().map(|c| c.uid()),
        }
    }
}

/// Who makes a change: the admin-TCP stage puts an [`Actor`] in the
/// request; on the socket it is the local account of the peer's uid.
struct Who(Actor);

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(actor) = parts.extensions.get::<Actor>() {
            return Ok(Who(actor.clone()));
        }
        let uid = parts
            .extensions
            .get::<ConnectInfo<UnixPeer>>()
            .and_then(|c| c.0.uid);
        Ok(Who(match uid {
            Some(uid) => Actor {
                name: user_name(uid).unwrap_or_else(|| format!("uid {uid}")),
                source: format!("unix:uid={uid}"),
            },
            None => Actor {
                name: "unknown".into(),
                source: "unix".into(),
            },
        }))
    }
}

/// The account name of a uid, from the system's user database.
fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes only into `pwd` and `buf`, both owned here
    // and sized as passed; `result` is null or points at `pwd`.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points at a NUL-terminated string in `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

fn invalid(problems: Vec<FieldProblem>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(ApiError {
            error: "the app definition is not valid".into(),
            code: "invalid".into(),
            problems,
        }),
    )
        .into_response()
}

/// A JSON body → a validated app, or the 400 that says what is wrong.
fn parse_definition(body: Value) -> Result<(App, Value), Response> {
    let raw: RawApp = serde_json::from_value(body).map_err(|e| {
        invalid(vec![FieldProblem {
            key: String::new(),
            message: e.to_string(),
            fix: Some("send the fields of an [[apps]] entry, e.g. {\"name\": \"wiki\", \"path\": \"/wiki\", \"upstream\": \"http://127.0.0.1:3000\"}".into()),
        }])
    })?;
    let app = moat_config::validate::validate_api_app(&raw).map_err(|problems| {
        invalid(
            problems
                .into_iter()
                .map(|p| FieldProblem {
                    key: p.key,
                    message: p.message,
                    fix: p.fix,
                })
                .collect(),
        )
    })?;
    let normalized = serde_json::to_value(&raw).expect("RawApp serializes");
    Ok((app, normalized))
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::AppExists(name) => error(
            StatusCode::CONFLICT,
            format!("an app named {name:?} already exists"),
            "conflict",
        ),
        StoreError::AppNotFound(name) => error(
            StatusCode::NOT_FOUND,
            format!("app {name:?} not found"),
            "not_found",
        ),
        other => {
            tracing::error!("admin API: {other}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                other.to_string(),
                "internal",
            )
        }
    }
}

/// Refuses a change to an app that the config file defines.
fn read_only(shared: &Shared, name: &str) -> Option<Response> {
    let file = shared.file_config();
    file.apps.iter().any(|a| a.name == name).then(|| {
        let where_ = file
            .source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the config file".into());
        error(
            StatusCode::CONFLICT,
            format!(
                "app {name:?} is defined in {where_}; it is read-only through the API (change it there and reload with SIGHUP)"
            ),
            "read_only",
        )
    })
}

/// Checks `new` against the served apps and that it builds, stores the
/// change with `write`, then serves it.
async fn change_apps<F, Fut>(
    shared: &Arc<Shared>,
    replacing: Option<&str>,
    new: Option<App>,
    write: F,
) -> Result<(), Response>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    if let Some(app) = &new {
        let served = shared.runtime.load().config.clone();
        if let Some(why) = served.conflict(app, replacing) {
            return Err(error(StatusCode::CONFLICT, why, "conflict"));
        }
        let zones: Vec<String> = served
            .rate_limit
            .zones
            .iter()
            .map(|z| z.name.clone())
            .collect();
        if let Some(why) = moat_config::validate::unknown_zone(&zones, app) {
            return Err(invalid(vec![FieldProblem {
                key: "rate_limit".into(),
                message: why,
                fix: Some(
                    "name a zone defined under [[rate_limit.zones]] in the config file".into(),
                ),
            }]));
        }
    }
    let mut apps: Vec<App> = shared
        .api_apps()
        .into_iter()
        .filter(|a| Some(a.name.as_str()) != replacing)
        .collect();
    apps.extend(new);
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    let prepared = shared
        .prepare_api_apps(&apps)
        .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string(), "invalid"))?;
    write().await.map_err(store_error)?;
    shared.install_api_apps(prepared);
    Ok(())
}

fn served_detail(shared: &Shared, name: &str) -> Response {
    let config = shared.runtime.load().config.clone();
    match config.apps.iter().find(|a| a.name == name) {
        Some(app) => Json(detail(app)).into_response(),
        None => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("app {name:?} was stored but is not served; see moat's log"),
            "internal",
        ),
    }
}

async fn create_app(
    State(shared): State<Arc<Shared>>,
    Who(actor): Who,
    Json(body): Json<Value>,
) -> Response {
    let (app, definition) = match parse_definition(body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let _guard = shared.admin_writes.lock().await;
    let name = app.name.clone();
    let result = change_apps(&shared, None, Some(app), || async {
        shared.store.create_app(&actor, &name, &definition).await
    })
    .await;
    match result {
        Ok(()) => {
            tracing::info!(
                app = name,
                actor = actor.name,
                source = actor.source,
                "app created through the admin API"
            );
            let mut resp = served_detail(&shared, &name);
            *resp.status_mut() = StatusCode::CREATED;
            resp
        }
        Err(resp) => resp,
    }
}

async fn replace_app(
    State(shared): State<Arc<Shared>>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
    Json(mut body): Json<Value>,
) -> Response {
    if let Some(resp) = read_only(&shared, &name) {
        return resp;
    }
    // The name comes from the URL; a body may repeat it but not change it.
    match body.get("name").and_then(Value::as_str) {
        Some(n) if n != name => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body names app {n:?} but the URL names {name:?}; an app cannot be renamed (create the new one and delete the old)"
                ),
                "bad_request",
            );
        }
        _ => {}
    }
    if let Some(obj) = body.as_object_mut() {
        obj.insert("name".into(), Value::String(name.clone()));
    }
    update(shared, actor, name, body).await
}

/// JSON merge patch (RFC 7396) on the stored definition: fields given
/// replace, `null` removes, the rest stay.
async fn patch_app(
    State(shared): State<Arc<Shared>>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
    Json(patch): Json<Value>,
) -> Response {
    if let Some(resp) = read_only(&shared, &name) {
        return resp;
    }
    let mut definition = match shared.store.app(&name).await {
        Ok(stored) => stored.definition,
        Err(e) => return store_error(e),
    };
    merge_patch(&mut definition, &patch);
    if definition.get("name").and_then(Value::as_str) != Some(name.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "an app cannot be renamed (create the new one and delete the old)".into(),
            "bad_request",
        );
    }
    update(shared, actor, name, definition).await
}

async fn update(shared: Arc<Shared>, actor: Actor, name: String, body: Value) -> Response {
    let (app, definition) = match parse_definition(body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let _guard = shared.admin_writes.lock().await;
    // An unknown name fails in the store (404) after the checks.
    let result = change_apps(&shared, Some(&name), Some(app), || async {
        shared
            .store
            .update_app(&actor, &name, &definition)
            .await
            .map(drop)
    })
    .await;
    match result {
        Ok(()) => {
            tracing::info!(
                app = name,
                actor = actor.name,
                source = actor.source,
                "app updated through the admin API"
            );
            served_detail(&shared, &name)
        }
        Err(resp) => resp,
    }
}

async fn delete_app(
    State(shared): State<Arc<Shared>>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
) -> Response {
    if let Some(resp) = read_only(&shared, &name) {
        return resp;
    }
    let _guard = shared.admin_writes.lock().await;
    let result = change_apps(&shared, Some(&name), None, || async {
        shared.store.delete_app(&actor, &name).await.map(drop)
    })
    .await;
    match result {
        Ok(()) => {
            tracing::info!(
                app = name,
                actor = actor.name,
                source = actor.source,
                "app deleted through the admin API"
            );
            StatusCode::NO_CONTENT.into_response()
        }
        Err(resp) => resp,
    }
}

/// Reads the app's bundle manifest again and starts fresh upstream
/// connections (the whole runtime is rebuilt from the same definitions).
async fn reload_app(
    State(shared): State<Arc<Shared>>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let served = shared.runtime.load().config.clone();
    if !served.apps.iter().any(|a| a.name == name) {
        return error(
            StatusCode::NOT_FOUND,
            format!("app {name:?} not found"),
            "not_found",
        );
    }
    let _guard = shared.admin_writes.lock().await;
    if let Err(e) = shared.rebuild() {
        return error(StatusCode::BAD_REQUEST, e.to_string(), "invalid");
    }
    if let Err(e) = shared
        .store
        .record(&actor, "app.reload", &name, None, None)
        .await
    {
        return store_error(e);
    }
    tracing::info!(
        app = name,
        actor = actor.name,
        source = actor.source,
        "app reloaded through the admin API"
    );
    Json(serde_json::json!({"reloaded": name})).into_response()
}

fn served_app(shared: &Shared, name: &str) -> Result<Arc<crate::runtime::AppRuntime>, Response> {
    shared
        .runtime
        .load()
        .apps
        .iter()
        .find(|a| a.name == name)
        .cloned()
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                format!("app {name:?} not found"),
                "not_found",
            )
        })
}

fn explain(app: &crate::runtime::AppRuntime) -> CspExplain {
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

/// Single-quotes a source for a shell when it needs it ('self' does).
fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:/".contains(&b))
    {
        s.to_owned()
    } else {
        format!("\"{s}\"")
    }
}

async fn csp_explain(
    State(shared): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    match served_app(&shared, &name) {
        Ok(app) => Json(explain(&app)).into_response(),
        Err(resp) => resp,
    }
}

/// Which pending requests a change names.
fn selected<'a>(
    candidates: impl Iterator<Item = &'a moat_policy::csp::Grant>,
    req: &CspChangeRequest,
) -> Vec<(String, String)> {
    candidates
        .filter(|g| req.names(&g.directive, &g.source))
        .map(|g| (g.directive.clone(), g.source.clone()))
        .collect()
}

async fn reload_grants(shared: &Shared) -> Result<(), Response> {
    let grants = crate::gateway::load_csp_grants(&shared.store)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), "internal"))?;
    shared
        .set_csp_grants(grants)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), "internal"))
}

async fn csp_approve(
    State(shared): State<Arc<Shared>>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
    Json(req): Json<CspChangeRequest>,
) -> Response {
    if req.source.is_none() && !req.all {
        return error(
            StatusCode::BAD_REQUEST,
            "name a source to approve, or all".into(),
            "bad_request",
        );
    }
    let _guard = shared.admin_writes.lock().await;
    let app = match served_app(&shared, &name) {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let c = &app.response_policy.csp;
    let pairs = selected(c.pending.iter(), &req);
    if pairs.is_empty() {
        // Say why: dangerous requests cannot be approved here at all.
        if let Some((g, why)) = c
            .refused
            .iter()
            .find(|(g, _)| req.source.as_deref() == Some(g.source.as_str()))
        {
            return error(
                StatusCode::CONFLICT,
                format!(
                    "{g} is dangerous ({why}); only the app's admin layer can accept it, with allow_unsafe = [\"{g}\"]"
                ),
                "conflict",
            );
        }
        return error(
            StatusCode::NOT_FOUND,
            match &req.source {
                Some(s) if !req.all => format!(
                    "app {name:?} has no pending request for {s}; `moat csp show {name}` lists them"
                ),
                _ => format!("app {name:?} has no pending requests"),
            },
            "not_found",
        );
    }
    if let Err(e) = shared.store.approve_csp(&actor, &name, &pairs).await {
        return store_error(e);
    }
    if let Err(resp) = reload_grants(&shared).await {
        return resp;
    }
    tracing::info!(
        app = name,
        actor = actor.name,
        source = actor.source,
        approved = pairs.len(),
        "CSP requests approved through the admin API"
    );
    csp_change(&shared, &name, pairs)
}

async fn csp_revoke(
    State(shared): State<Arc<Shared>>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
    Json(req): Json<CspChangeRequest>,
) -> Response {
    if req.source.is_none() && !req.all {
        return error(
            StatusCode::BAD_REQUEST,
            "name a source to revoke, or all".into(),
            "bad_request",
        );
    }
    let _guard = shared.admin_writes.lock().await;
    let gone = shared
        .store
        .revoke_csp(&actor, &name, |d, s| req.names(d, s))
        .await;
    let gone = match gone {
        Ok(g) if g.is_empty() => {
            return error(
                StatusCode::NOT_FOUND,
                format!("app {name:?} has no such approval"),
                "not_found",
            );
        }
        Ok(g) => g,
        Err(e) => return store_error(e),
    };
    if let Err(resp) = reload_grants(&shared).await {
        return resp;
    }
    tracing::info!(
        app = name,
        actor = actor.name,
        source = actor.source,
        revoked = gone.len(),
        "CSP approvals revoked through the admin API"
    );
    csp_change(&shared, &name, gone)
}

fn csp_change(shared: &Shared, name: &str, pairs: Vec<(String, String)>) -> Response {
    let policy = served_app(shared, name)
        .map(|a| a.response_policy.csp_value.clone())
        .unwrap_or_default();
    Json(CspChange {
        changed: pairs.into_iter().map(|(d, s)| format!("{d} {s}")).collect(),
        policy,
    })
    .into_response()
}

#[derive(serde::Deserialize)]
struct ReportParams {
    limit: Option<u32>,
}

async fn csp_reports(
    State(shared): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
    Query(params): Query<ReportParams>,
) -> Response {
    if let Err(resp) = served_app(&shared, &name) {
        return resp;
    }
    let limit = params.limit.unwrap_or(100).min(1000);
    match shared.store.csp_reports(&name, limit).await {
        Ok(reports) => Json(
            reports
                .into_iter()
                .map(|r| CspViolation {
                    directive: r.directive,
                    blocked: r.blocked,
                    document: r.document,
                    disposition: r.disposition,
                    count: r.count,
                    first_seen: crate::access_log::rfc3339(r.first_seen),
                    last_seen: crate::access_log::rfc3339(r.last_seen),
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => store_error(e),
    }
}

#[derive(serde::Deserialize)]
struct RecordingParams {
    app: Option<String>,
    user: Option<String>,
    client_ip: Option<String>,
    state: Option<String>,
    /// Unix milliseconds.
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<u32>,
}

fn recording_summary(r: moat_store::RecordingRow) -> RecordingSummary {
    let t = |ms: i64| {
        crate::access_log::rfc3339(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64),
        )
    };
    RecordingSummary {
        id: r.id,
        app: r.app,
        user: r.user,
        client_ip: r.client_ip,
        user_agent: r.user_agent,
        started_at: t(r.started_at_ms),
        ended_at: r.ended_at_ms.map(t),
        state: r.state,
        closed_because: r.closed_because,
        events: r.events,
        bytes: r.bytes,
        location: r.location,
    }
}

async fn recordings(
    State(shared): State<Arc<Shared>>,
    Query(p): Query<RecordingParams>,
) -> Response {
    let q = moat_store::RecordingQuery {
        app: p.app,
        user: p.user,
        client_ip: p.client_ip,
        state: p.state,
        since_ms: p.since,
        until_ms: p.until,
        limit: Some(p.limit.unwrap_or(100).min(10_000)),
    };
    match shared.store.recordings(&q).await {
        Ok(rows) => {
            Json(rows.into_iter().map(recording_summary).collect::<Vec<_>>()).into_response()
        }
        Err(e) => store_error(e),
    }
}

/// The index row and a local folder holding the recording, or the 404.
/// A recording already moved to its bucket is fetched into a scratch
/// folder first.
async fn find_recording(
    shared: &Shared,
    id: &str,
) -> Result<(moat_store::RecordingRow, std::path::PathBuf), Response> {
    let missing = || {
        error(
            StatusCode::NOT_FOUND,
            format!("recording {id:?} not found"),
            "not_found",
        )
    };
    let row = shared
        .store
        .recording(id)
        .await
        .map_err(store_error)?
        .ok_or_else(missing)?;
    let dir = shared.recorder.dir_of(id).ok_or_else(missing)?;
    if let Some(bucket) = row.location.strip_prefix("bucket:") {
        let scratch = shared.recorder.root().join(".fetched").join(id);
        let _ = std::fs::remove_dir_all(&scratch);
        let kek = shared.recorder.kek();
        let fetched = async {
            let cfg = crate::buckets::load(&shared.store, kek, bucket).await?;
            let os = moat_recording::bucket::open(&cfg)?;
            moat_recording::bucket::download(os.as_ref(), cfg.prefix(), id, &scratch).await
        }
        .await;
        return match fetched {
            Ok(()) => Ok((row, scratch)),
            Err(e) => Err(error(
                StatusCode::BAD_GATEWAY,
                format!("recording {id:?} is in bucket {bucket:?}, which cannot be read now: {e}"),
                "bucket_unavailable",
            )),
        };
    }
    Ok((row, dir))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Deletes a closed recording, unless its storage policy still retains it:
/// then nobody can, and the answer says until when.
async fn delete_recording(
    State(shared): State<Arc<Shared>>,
    Who(actor): Who,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let row = match shared.store.recording(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("recording {id:?} not found"),
                "not_found",
            );
        }
        Err(e) => return store_error(e),
    };
    if row.state == "recording" {
        return error(
            StatusCode::CONFLICT,
            format!("recording {id:?} is still in progress"),
            "conflict",
        );
    }
    let dates = moat_policy::retention::Dates {
        retain_until_ms: row.retain_until_ms,
        delete_after_ms: row.delete_after_ms,
    };
    if !moat_policy::retention::may_delete(&dates, now_ms()) {
        let until = match row.retain_until_ms {
            Some(t) => crate::access_log::rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(t.max(0) as u64),
            ),
            None => "forever".into(),
        };
        return error(
            StatusCode::CONFLICT,
            format!(
                "recording {id:?} is inside its retention period (until {until}); nobody can delete it before then"
            ),
            "retained",
        );
    }
    if let Err(e) = crate::recorder::delete_stored(
        &shared.store,
        shared.recorder.kek(),
        shared.recorder.root(),
        &row,
    )
    .await
    {
        return error(
            StatusCode::BAD_GATEWAY,
            format!("recording {id:?} cannot be deleted from its storage now: {e}"),
            "bucket_unavailable",
        );
    }
    match shared
        .store
        .remove_recording(&actor, &id, "recording.delete")
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => store_error(e),
    }
}

#[derive(serde::Deserialize)]
struct ReapplyBody {
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    confirm: bool,
}

/// Recomputes the retention dates of closed recordings from today's
/// policies. Without `confirm` nothing changes: the answer says how many
/// dates would change and how many recordings the reaper would then
/// delete at once (there is no undo).
async fn reapply_policy(
    State(shared): State<Arc<Shared>>,
    Who(actor): Who,
    Json(body): Json<ReapplyBody>,
) -> Response {
    let _guard = shared.admin_writes.lock().await;
    let config = shared.runtime.load().config.clone();
    let rows = match shared
        .store
        .recordings(&moat_store::RecordingQuery {
            app: body.app.clone(),
            limit: Some(u32::MAX),
            ..Default::default()
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return store_error(e),
    };
    let now = now_ms();
    let (mut changed, mut due_now) = (Vec::new(), 0u64);
    for r in rows.iter().filter(|r| r.state != "recording") {
        let ended = r.ended_at_ms.unwrap_or(r.started_at_ms);
        let app_policy = config
            .apps
            .iter()
            .find(|a| a.name == r.app)
            .and_then(|a| a.recording.as_ref());
        let retention = match app_policy {
            Some(p) => config.retention_for(p).unwrap_or(config.recording.policy),
            None => config.recording.policy,
        };
        let dates = match retention {
            Some(p) => moat_policy::retention::dates(&p, ended),
            None => moat_policy::retention::NO_POLICY,
        };
        if moat_policy::retention::due(&dates, now) {
            due_now += 1;
        }
        if (dates.retain_until_ms, dates.delete_after_ms) != (r.retain_until_ms, r.delete_after_ms)
        {
            changed.push((r.id.clone(), dates));
        }
    }
    if body.confirm {
        for (id, d) in &changed {
            if let Err(e) = shared
                .store
                .set_recording_dates(&actor, id, d.retain_until_ms, d.delete_after_ms)
                .await
            {
                return store_error(e);
            }
        }
        tracing::warn!(
            actor = actor.name,
            changed = changed.len(),
            due_now,
            "storage policy reapplied to existing recordings"
        );
    }
    Json(serde_json::json!({
        "recordings": rows.len(),
        "changed": changed.len(),
        "would_delete_now": due_now,
        "applied": body.confirm,
    }))
    .into_response()
}

#[derive(serde::Deserialize)]
struct BucketBody {
    #[serde(default)]
    name: Option<String>,
    config: moat_recording::bucket::BucketConfig,
}

fn bucket_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn list_buckets(State(shared): State<Arc<Shared>>) -> Response {
    let kek = shared.recorder.kek();
    match shared.store.buckets().await {
        Ok(rows) => {
            let mut out = Vec::new();
            for (name, _) in rows {
                match crate::buckets::load(&shared.store, kek, &name).await {
                    Ok(cfg) => {
                        out.push(serde_json::json!({"name": name, "config": cfg.redacted()}))
                    }
                    Err(e) => out.push(serde_json::json!({"name": name, "error": e})),
                }
            }
            Json(out).into_response()
        }
        Err(e) => store_error(e),
    }
}

async fn show_bucket(
    State(shared): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    match crate::buckets::load(&shared.store, shared.recorder.kek(), &name).await {
        Ok(cfg) => {
            Json(serde_json::json!({"name": name, "config": cfg.redacted()})).into_response()
        }
        Err(e) => error(StatusCode::NOT_FOUND, e, "not_found"),
    }
}

/// Proves access (write, read back, delete a probe object), then stores.
async fn put_bucket(
    shared: &Shared,
    actor: &Actor,
    name: &str,
    cfg: moat_recording::bucket::BucketConfig,
    create: bool,
) -> Response {
    if !bucket_name_ok(name) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{name:?} is not a valid bucket name (1-64 letters, digits, '-', '_')"),
            "invalid",
        );
    }
    let probe = async {
        let os = moat_recording::bucket::open(&cfg)?;
        moat_recording::bucket::probe(os.as_ref(), cfg.prefix()).await
    }
    .await;
    if let Err(e) = probe {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "bucket {name:?} refused: moat could not write, read and delete a probe object there: {e}"
            ),
            "bucket_unavailable",
        );
    }
    let shown = serde_json::to_value(cfg.redacted()).expect("serializes");
    let stored = crate::buckets::sealed_json(shared.recorder.kek(), name, cfg.clone());
    match shared
        .store
        .put_bucket(actor, name, &stored, &shown, create)
        .await
    {
        Ok(()) => {
            tracing::info!(bucket = name, actor = actor.name, create, "bucket stored");
            let status = if create {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (
                status,
                Json(serde_json::json!({"name": name, "config": cfg.redacted()})),
            )
                .into_response()
        }
        Err(StoreError::BucketExists(n)) => error(
            StatusCode::CONFLICT,
            format!("a bucket named {n:?} already exists"),
            "conflict",
        ),
        Err(StoreError::BucketNotFound(n)) => error(
            StatusCode::NOT_FOUND,
            format!("bucket {n:?} not found"),
            "not_found",
        ),
        Err(e) => store_error(e),
    }
}

async fn create_bucket(
    State(shared): State<Arc<Shared>>,
    Who(actor): Who,
    Json(body): Json<BucketBody>,
) -> Response {
    let Some(name) = body.name else {
        return error(
            StatusCode::BAD_REQUEST,
            "the bucket needs a name".into(),
            "invalid",
        );
    };
    let _guard = shared.admin_writes.lock().await;
    put_bucket(&shared, &actor, &name, body.config, true).await
}

async fn update_bucket(
    State(shared): State<Arc<Shared>>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
    Json(body): Json<BucketBody>,
) -> Response {
    let _guard = shared.admin_writes.lock().await;
    put_bucket(&shared, &actor, &name, body.config, false).await
}

async fn delete_bucket(
    State(shared): State<Arc<Shared>>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let _guard = shared.admin_writes.lock().await;
    // A bucket still in use stays: an app sending recordings there, or
    // recordings stored in it or waiting to go, would be stranded.
    let config = shared.runtime.load().config.clone();
    if let Some(app) = config
        .apps
        .iter()
        .find(|a| a.recording.as_ref().and_then(|r| r.bucket.as_deref()) == Some(name.as_str()))
    {
        return error(
            StatusCode::CONFLICT,
            format!(
                "app {:?} sends its recordings to bucket {name:?}; change the app first",
                app.name
            ),
            "conflict",
        );
    }
    let using = match shared
        .store
        .recordings(&moat_store::RecordingQuery {
            limit: Some(u32::MAX),
            ..Default::default()
        })
        .await
    {
        Ok(rows) => rows
            .iter()
            .filter(|r| {
                r.bucket.as_deref() == Some(name.as_str()) || r.location == format!("bucket:{name}")
            })
            .count(),
        Err(e) => return store_error(e),
    };
    if using > 0 {
        return error(
            StatusCode::CONFLICT,
            format!(
                "{using} recording(s) are stored in bucket {name:?} or waiting to go there; delete them first"
            ),
            "conflict",
        );
    }
    match shared.store.delete_bucket(&actor, &name).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(StoreError::BucketNotFound(n)) => error(
            StatusCode::NOT_FOUND,
            format!("bucket {n:?} not found"),
            "not_found",
        ),
        Err(e) => store_error(e),
    }
}

async fn recording(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>) -> Response {
    match find_recording(&shared, &id).await {
        Ok((row, _)) => Json(recording_summary(row)).into_response(),
        Err(resp) => resp,
    }
}

async fn verify_recording(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let (row, dir) = match find_recording(&shared, &id).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if row.state == "recording" {
        return error(
            StatusCode::CONFLICT,
            format!("recording {id:?} is still in progress; it can be verified once it closes"),
            "conflict",
        );
    }
    let kek = shared.recorder.kek().clone();
    let result = tokio::task::spawn_blocking(move || moat_recording::verify(&dir, &kek)).await;
    Json(match result {
        Ok(Ok(report)) => VerifyResult {
            id,
            ok: true,
            file: None,
            error: None,
            state: Some(format!("{:?}", report.state).to_lowercase()),
            chunks: Some(report.chunks),
            events: Some(report.events),
        },
        Ok(Err(e)) => VerifyResult {
            id,
            ok: false,
            file: Some(e.file.clone()),
            error: Some(e.to_string()),
            state: None,
            chunks: None,
            events: None,
        },
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), "internal"),
    })
    .into_response()
}

/// A closed recording's metadata and events, read off the request path.
async fn read_recording(
    shared: &Shared,
    id: &str,
) -> Result<(moat_recording::Metadata, Vec<moat_recording::Recorded>), Response> {
    // Low storage: no playback from this node (fetching from a bucket
    // would need the room).
    let state = crate::gateway::current_storage_state(shared);
    if !matches!(
        state,
        crate::recorder::StorageState::Available | crate::recorder::StorageState::NotConfigured
    ) {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "recording storage on this node is {}: no playback from it now",
                state.as_str()
            ),
            "low_storage",
        ));
    }
    let (row, dir) = find_recording(shared, id).await?;
    if row.state == "recording" {
        return Err(error(
            StatusCode::CONFLICT,
            format!("recording {id:?} is still in progress"),
            "conflict",
        ));
    }
    let kek = shared.recorder.kek().clone();
    tokio::task::spawn_blocking(move || {
        Ok::<_, moat_recording::VerifyError>((
            moat_recording::verify::metadata(&dir)?,
            moat_recording::verify::events(&dir, &kek)?,
        ))
    })
    .await
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), "internal"))?
    .map_err(|e| {
        error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the recording cannot be read: {e}"),
            "invalid",
        )
    })
}

/// The events in order, each with its time in microseconds since the
/// recording started: what a player replays.
async fn recording_events(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    match read_recording(&shared, &id).await {
        Ok((meta, events)) => {
            Json(serde_json::json!({"session": meta, "events": events})).into_response()
        }
        Err(resp) => resp,
    }
}

async fn recording_har(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    match read_recording(&shared, &id).await {
        Ok((meta, events)) => Json(moat_recording::har::to_har(&meta, &events)).into_response(),
        Err(resp) => resp,
    }
}

#[derive(serde::Deserialize)]
struct AuditParams {
    limit: Option<u32>,
    action: Option<String>,
    target: Option<String>,
}

async fn audit_log(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<AuditParams>,
) -> Response {
    let q = AuditQuery {
        limit: Some(params.limit.unwrap_or(100).min(10_000)),
        since: None,
        action: params.action,
        target: params.target,
    };
    match shared.store.audit_log(&q).await {
        Ok(entries) => Json(
            entries
                .into_iter()
                .map(|e| AuditEntry {
                    id: e.id,
                    time: crate::access_log::rfc3339(e.at),
                    actor: e.actor,
                    source: e.source,
                    action: e.action,
                    target: e.target,
                    before: e.before,
                    after: e.after,
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => store_error(e),
    }
}

/// RFC 7396: objects merge key by key, `null` deletes, anything else
/// replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in patch {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_rfc7396() {
        let mut t = serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(
            &mut t,
            &serde_json::json!({"a": null, "b": {"c": 5}, "e": "x"}),
        );
        assert_eq!(t, serde_json::json!({"b": {"c": 5, "d": 3}, "e": "x"}));
    }
}

fn summaries(config: &Config) -> Vec<AppSummary> {
    if config.apps.is_empty() {
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
        auth: a.auth.as_str().to_owned(),
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
