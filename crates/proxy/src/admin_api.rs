//! The seam where the admin API plugs into the data plane. The API itself
//! lives in its own crate (`moat-admin-server`), which depends on this one;
//! the gateway is handed an implementation at start, serves its socket as
//! one of the parts it starts and stops, and the pipeline passes it the
//! authenticated requests of the opt-in HTTPS route.

use std::future::Future;
use std::pin::Pin;

use http::{Request, Response};
use moat_store::Actor;
use tokio::sync::watch;

use crate::body::Body;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

pub trait AdminApi: Send + Sync + 'static {
    /// Answers one request of the API, its path without moat's namespace
    /// (`/api/v1/...`), made by `actor` (already authenticated).
    fn handle(&self, req: Request<Body>, actor: Actor) -> BoxFuture<Response<Body>>;

    /// Serves the API's own socket until `shutdown` turns true, then
    /// removes it.
    fn serve(&self, shutdown: watch::Receiver<bool>) -> BoxFuture<()>;
}

/// What the admin factory builds: the API, and the portal's pages when the
/// binary has them (the portal is a client of the same API).
pub struct AdminParts {
    pub api: std::sync::Arc<dyn AdminApi>,
    pub portal: Option<std::sync::Arc<dyn PortalPages>>,
}

impl From<std::sync::Arc<dyn AdminApi>> for AdminParts {
    fn from(api: std::sync::Arc<dyn AdminApi>) -> AdminParts {
        AdminParts { api, portal: None }
    }
}

/// The admin portal's pages. The data plane's portal stage
/// (`pipeline::portal`) has already signed the admin in, checked that
/// they are one, refused cross-origin and token-less changes and buffered
/// a form's body; the pages render and act through the admin API.
pub trait PortalPages: Send + Sync + 'static {
    /// Answers one request under the portal's prefix, its path relative to
    /// it (`/`, `/apps/grafana`, ...).
    fn handle(&self, req: Request<Body>, viewer: Viewer) -> BoxFuture<Response<Body>>;
}

/// The admin a portal request is made by, and what its page must carry.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Who changes are audited under: the admin, and `portal:ADDRESS`.
    pub actor: Actor,
    /// Where they signed in through (`system`, `oidc:corp`).
    pub source: String,
    /// The session's CSRF token: every form carries it (`_csrf`), every
    /// script's change sends it (`X-Moat-CSRF`).
    pub csrf_token: String,
    /// This response's CSP nonce, for its `<script>` and `<link>` tags.
    pub nonce: String,
    /// The portal's URL prefix (`/_moat/portal`), for links.
    pub base: &'static str,
}
