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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_goes_to_the_same_url_over_https() {
        let req = Request::post("/a/b?c=1")
            .header("host", "moat.example:8080")
            .body(())
            .unwrap();
        let resp = to_https(&req, 8443);
        assert_eq!(
            resp.status(),
            StatusCode::PERMANENT_REDIRECT,
            "a POST stays a POST"
        );
        assert_eq!(
            resp.headers()[header::LOCATION],
            "https://moat.example:8443/a/b?c=1"
        );
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
        let default_port = to_https(
            &Request::get("/")
                .header("host", "moat.example")
                .body(())
                .unwrap(),
            443,
        );
        assert_eq!(
            default_port.headers()[header::LOCATION],
            "https://moat.example/"
        );
    }
}
