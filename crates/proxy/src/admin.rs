//! The admin API, served on a Unix socket in the data directory.
//!
//! SECURITY: the socket is created with mode 0600 inside a 0700 data
//! directory, so only moat's own user can connect; file permissions are the
//! authentication. The API is never served over TCP here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::gateway::Shared;

#[derive(Debug, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub listeners: Vec<ListenerStatus>,
    pub apps: Vec<AppStatus>,
}

#[derive(Debug, Serialize)]
pub struct ListenerStatus {
    pub address: String,
    pub role: &'static str,
}

#[derive(Debug, Serialize)]
pub struct AppStatus {
    pub name: String,
    pub host: Option<String>,
    pub path: String,
    pub source: String,
}

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
    let app = Router::new()
        .route("/api/v1/status", get(status))
        .with_state(shared);
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

async fn status(State(shared): State<Arc<Shared>>) -> Json<Status> {
    Json(shared.status())
}
