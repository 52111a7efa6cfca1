//! The portal's stylesheet and script, compiled into the binary: no build
//! step, no Node toolchain, nothing fetched from elsewhere.

use http::{HeaderValue, Response, StatusCode, header};
use moat_proxy::body::{self, Body};

const STYLESHEET: &str = include_str!("assets/portal.css");
const SCRIPT: &str = include_str!("assets/portal.js");
const PLAYER: &str = include_str!("assets/player.js");

pub fn serve(name: &str) -> Response<Body> {
    let (text, kind) = match name {
        "portal.css" => (STYLESHEET, "text/css; charset=utf-8"),
        "portal.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "player.js" => (PLAYER, "text/javascript; charset=utf-8"),
        _ => {
            let mut resp = Response::new(body::empty());
            *resp.status_mut() = StatusCode::NOT_FOUND;
            return resp;
        }
    };
    let mut resp = Response::new(body::full(text));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Only admins fetch them, so no shared cache may keep them.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    resp
}
