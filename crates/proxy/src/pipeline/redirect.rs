//! The HTTP listener's only job when TLS is on: send every request to the
//! same URL over HTTPS.

use http::{HeaderValue, Request, Response, StatusCode, header};

use crate::body::{self, Body};

pub fn to_https<B>(req: &Request<B>, https_port: u16) -> Response<Body> {
    let host = crate::pipeline::request_host(req);
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let location =
        moat_policy::redirect::https_location(host.as_deref(), "localhost", https_port, target);
    let mut resp = Response::new(body::empty());
    // 308 keeps the method and body, so a POST stays a POST.
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => *resp.status_mut() = StatusCode::BAD_REQUEST,
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
