//! moat's admin API: the Unix socket and the handlers of every resource.
//!
//! SECURITY: the socket is created with mode 0600 inside a 0700 data
//! directory, so only moat's own user can connect; file permissions are
//! the authentication. Over HTTPS the same routes are reached only through
//! the data plane's authenticated route (`pipeline::admin_tcp`), which
//! hands requests to [`AdminServer`] as the [`AdminApi`] the gateway was
//! started with.
//!
//! Every change goes through the control interface
//! (`moat_proxy::control::Control`), which stores it with its audit entry
//! before it is served; this crate parses requests, calls one operation,
//! and turns its answer or error into JSON. It sees no lock and no
//! runtime cell.
//!
//! # Layout
//! - `socket`: bind (0600, stale-socket check), serve, peer uid → account;
//! - `actor`: who makes a change;
//! - `error`: one error type, mapped to `(status, ApiError)`;
//! - `merge_patch`: RFC 7396;
//! - one module per resource: `status`, `apps`, `csp`, `buckets`,
//!   `recordings`, `audit`.

mod actor;
mod apps;
mod audit;
mod buckets;
mod csp;
mod error;
mod merge_patch;
mod recordings;
mod socket;
mod status;
#[cfg(test)]
mod tests;
mod totp;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};
use moat_proxy::admin_api::{AdminApi, BoxFuture};
use moat_proxy::body::Body;
use moat_proxy::control::Control;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tower::ServiceExt;

pub use error::ApiFailure;
pub use socket::bind;

/// The API's description; the repo keeps the same file (docs/openapi.json).
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// The state every handler gets: the control interface, nothing else.
pub type Ctl = Arc<Control>;

/// The admin API of one gateway.
pub struct AdminServer {
    /// The routes, built once (cloning is cheap).
    router: Router,
    path: PathBuf,
    listener: Mutex<Option<UnixListener>>,
}

impl AdminServer {
    /// Binds the socket at `path`.
    pub async fn bind(control: Ctl, path: PathBuf) -> std::io::Result<AdminServer> {
        let listener = socket::bind(&path).await?;
        Ok(AdminServer {
            router: router(control),
            path,
            listener: Mutex::new(Some(listener)),
        })
    }

    /// What `Gateway::start` takes: binds the socket once the control
    /// interface exists.
    pub fn factory() -> moat_proxy::AdminFactory {
        Box::new(|control, path| {
            Box::pin(async move {
                let server: Arc<dyn AdminApi> = Arc::new(AdminServer::bind(control, path).await?);
                Ok(server.into())
            })
        })
    }
}

impl AdminApi for AdminServer {
    fn handle(
        &self,
        req: http::Request<Body>,
        actor: moat_store::Actor,
    ) -> BoxFuture<http::Response<Body>> {
        let router = self.router.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(actor);
            let req = http::Request::from_parts(parts, axum::body::Body::new(body));
            match router.oneshot(req).await {
                Ok(resp) => resp.map(moat_proxy::body::boxed),
                Err(never) => match never {},
            }
        })
    }

    fn serve(&self, shutdown: watch::Receiver<bool>) -> BoxFuture<()> {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let router = self.router.clone();
        let path = self.path.clone();
        Box::pin(async move {
            if let Some(listener) = listener {
                socket::serve(listener, path, router, shutdown).await;
            }
        })
    }
}

/// The API's routes; served on the Unix socket, and behind authentication
/// on the HTTPS listener when `admin_over_tcp` is on.
pub fn router(control: Ctl) -> Router {
    Router::new()
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/totp", axum::routing::delete(totp::remove))
        .route("/api/v1/totp/enroll", post(totp::enroll))
        .route("/api/v1/totp/confirm", post(totp::confirm))
        .route("/api/v1/apps", get(apps::list).post(apps::create))
        .route(
            "/api/v1/apps/{name}",
            get(apps::show)
                .put(apps::replace)
                .patch(apps::patch)
                .delete(apps::delete),
        )
        .route("/api/v1/apps/{name}/reload", post(apps::reload))
        .route("/api/v1/apps/{name}/csp", get(csp::explain))
        .route("/api/v1/apps/{name}/csp/approve", post(csp::approve))
        .route("/api/v1/apps/{name}/csp/revoke", post(csp::revoke))
        .route("/api/v1/apps/{name}/csp/reports", get(csp::reports))
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/buckets", get(buckets::list).post(buckets::create))
        .route(
            "/api/v1/buckets/{name}",
            get(buckets::show)
                .put(buckets::update)
                .delete(buckets::delete),
        )
        .route("/api/v1/recordings", get(recordings::list))
        .route(
            "/api/v1/recordings/reapply-policy",
            post(recordings::reapply_policy),
        )
        .route(
            "/api/v1/recordings/{id}",
            get(recordings::show).delete(recordings::delete),
        )
        .route("/api/v1/recordings/{id}/verify", post(recordings::verify))
        .route("/api/v1/recordings/{id}/events", get(recordings::events))
        .route("/api/v1/recordings/{id}/har", get(recordings::har))
        .route("/api/v1/openapi.json", get(openapi))
        .fallback(not_found)
        .with_state(control)
}

async fn openapi() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

async fn not_found() -> ApiFailure {
    ApiFailure::not_found("no such API endpoint")
}
