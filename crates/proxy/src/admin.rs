//! The admin API, served on a Unix socket in the data directory.
//!
//! SECURITY: the socket is created with mode 0600 inside a 0700 data
//! directory, so only moat's own user can connect; file permissions are the
//! authentication. The API is never served over TCP here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use moat_admin::api::{ApiError, AppDetail, AppSummary, Listener, Status, Timeouts};
use moat_config::{App, AppSource, Config};
use moat_policy::units::format_duration;
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
    let app = router(shared);
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
        .route("/api/v1/apps", get(list_apps))
        .route("/api/v1/apps/{name}", get(show_app))
        .route("/api/v1/openapi.json", get(openapi))
        .fallback(not_found)
        .with_state(shared)
}

async fn status(State(shared): State<Arc<Shared>>) -> Json<Status> {
    let config = shared.runtime.load().config.clone();
    Json(Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: shared.uptime().as_secs(),
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
        }),
    )
        .into_response()
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
        defined_in: "config".to_owned(),
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
    }
}
