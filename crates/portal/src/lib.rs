//! moat's admin portal: server-rendered pages for signed-in admins, served
//! by the data plane's portal stage (`moat_proxy::pipeline::portal`),
//! which has already done everything security asks of a request: the
//! admin's session and rights, the idle timeout, the cross-origin check
//! and the CSRF token, the nonce and the headers. Here the pages read and
//! act through the admin API, in process (`api`), as the signed-in admin.
//!
//! # Layout
//! - `api`: the admin API as the pages call it;
//! - `layout`: the page around every view, notices, small form pieces;
//! - `forms`: reading the posted forms;
//! - `diff`: what an audit entry changed;
//! - `page_view`: a recorded HTML page shown in a sandboxed frame;
//! - `assets`: the stylesheet and script, embedded in the binary;
//! - one module per section: `overview`, `apps`, `recordings`, `storage`,
//!   `audit`.

mod api;
mod apps;
mod assets;
mod audit;
mod diff;
mod forms;
mod layout;
mod overview;
mod page_view;
mod recordings;
mod storage;

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use maud::html;
use moat_proxy::admin_api::{AdminApi, AdminParts, BoxFuture, PortalPages, Viewer};
use moat_proxy::body::Body;

use crate::api::Api;
use crate::layout::Page;

/// The portal of one gateway.
pub struct Portal {
    api: Api,
}

impl Portal {
    pub fn new(api: Arc<dyn AdminApi>) -> Portal {
        Portal { api: Api::new(api) }
    }

    /// What `Gateway::start` takes: the admin API with the portal on it.
    pub fn factory() -> moat_proxy::AdminFactory {
        let admin = moat_admin_server::AdminServer::factory();
        Box::new(move |control, path| {
            let api = admin(control, path);
            Box::pin(async move {
                let parts = api.await?;
                let portal: Arc<dyn PortalPages> = Arc::new(Portal::new(parts.api.clone()));
                Ok(AdminParts {
                    api: parts.api,
                    portal: Some(portal),
                })
            })
        })
    }
}

impl PortalPages for Portal {
    fn handle(&self, req: Request<Body>, viewer: Viewer) -> BoxFuture<Response<Body>> {
        let api = self.api.clone();
        Box::pin(async move { route(&api, req, &viewer).await })
    }
}

/// The portal's paths.
async fn route(api: &Api, req: Request<Body>, viewer: &Viewer) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let get = matches!(method, Method::GET | Method::HEAD);
    match (get, segs.as_slice()) {
        (true, ["assets", name]) => assets::serve(name),
        (true, []) => overview::page(api, viewer, &query).await,
        (true, ["apps"]) => apps::list(api, viewer, &query).await,
        (false, ["apps"]) => apps::create(api, viewer, req).await,
        (true, ["apps", name]) => apps::detail(api, viewer, name, &query).await,
        (false, ["apps", name]) => apps::update(api, viewer, name, req).await,
        (false, ["apps", name, "delete"]) => apps::delete(api, viewer, name).await,
        (false, ["apps", name, "csp", action @ ("approve" | "revoke")]) => {
            apps::csp_change(api, viewer, name, action, req).await
        }
        (true, ["audit"]) => audit::page(api, viewer, &query).await,
        (true, ["storage"]) => storage::page(api, viewer, &query).await,
        (false, ["storage", "buckets"]) => storage::create(api, viewer, req).await,
        (false, ["storage", "buckets", name, "delete"]) => storage::delete(api, viewer, name).await,
        (true, ["storage", "buckets", name]) => storage::edit_page(api, viewer, name).await,
        (false, ["storage", "buckets", name]) => storage::update(api, viewer, name, req).await,
        (false, ["storage", "reapply"]) => storage::reapply(api, viewer, req).await,
        (true, ["recordings"]) => recordings::list(api, viewer, &query).await,
        (true, ["recordings", id]) => recordings::detail(api, viewer, id, &query).await,
        (true, ["recordings", id, "har"]) => recordings::har(api, viewer, id).await,
        (true, ["recordings", id, "events"]) => recordings::events(api, viewer, id, &query).await,
        (true, ["recordings", id, "view", req]) => page_view::view(api, viewer, id, req).await,
        (false, ["recordings", id, "delete"]) => recordings::delete(api, viewer, id).await,
        (_, _) if method == Method::POST || get => not_found(viewer),
        _ => {
            let mut resp = not_found(viewer);
            *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            resp
        }
    }
}

fn not_found(viewer: &Viewer) -> Response<Body> {
    Page {
        viewer,
        title: "Not found",
        section: "",
        status: StatusCode::NOT_FOUND,
    }
    .render(None, html! {
        p { "The portal has no such page. " a href={ (viewer.base) "/" } { "Go to the overview" } "." }
    })
}
