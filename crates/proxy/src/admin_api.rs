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
