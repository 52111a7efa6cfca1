//! Response stages: hide the upstream's copies of the headers moat owns,
//! then set moat's security headers and Content-Security-Policy.
//!
//! moat is authoritative for every header it sets: an upstream's
//! X-Frame-Options, CSP or HSTS never reaches the client, whatever moat's
//! own setting is (even "off"). The header values are built once per
//! config (`runtime::response_policy`); this stage only copies them.

use http::{Response, header};

use crate::body::Body;
use crate::request::RequestCtx;
use crate::runtime::Runtime;
use crate::runtime::response_policy::FINGERPRINT;

pub fn apply(mut response: Response<Body>, ctx: &RequestCtx, runtime: &Runtime) -> Response<Body> {
    let h = response.headers_mut();
    let policy = match &ctx.app {
        Some(app) => {
            // The app's response: moat's policy replaces whatever it sent.
            for name in &app.response_policy.hide {
                h.remove(name);
            }
            &app.response_policy
        }
        None => {
            for name in FINGERPRINT.iter() {
                h.remove(name);
            }
            &runtime.default_policy
        }
    };
    for (name, value) in &policy.set {
        // moat's own pages (no app) may carry a stricter header of their
        // own, such as the login page's CSP; it stays.
        if ctx.app.is_some() || !h.contains_key(name) {
            h.insert(name.clone(), value.clone());
        }
    }
    // HSTS is only meaningful (and only honoured by browsers) over HTTPS.
    if ctx.tls {
        match &runtime.hsts {
            Some(v) => {
                h.insert(header::STRICT_TRANSPORT_SECURITY, v.clone());
            }
            None => {
                h.remove(header::STRICT_TRANSPORT_SECURITY);
            }
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing;

    #[test]
    fn moat_owns_the_security_headers_of_an_app() {
        let rt = testing::one_app("", "auth = \"none\"");
        let app = testing::app(&rt, "app");
        let req = http::Request::get("/").body(()).unwrap();
        let ctx = testing::ctx(&req, "127.0.0.1", true, Some(app));
        let mut resp = Response::new(crate::body::empty());
        let h = resp.headers_mut();
        h.insert(header::X_FRAME_OPTIONS, "ALLOWALL".parse().unwrap());
        h.insert(header::SERVER, "nginx/1.0".parse().unwrap());
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            "default-src *".parse().unwrap(),
        );
        let resp = apply(resp, &ctx, &rt);
        let h = resp.headers();
        assert_eq!(h[header::X_FRAME_OPTIONS], "SAMEORIGIN");
        assert!(h.get(header::SERVER).is_none(), "no fingerprint");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(!csp.contains("default-src *"), "{csp}");
        assert!(csp.contains("report-uri /_moat/csp-report/app"), "{csp}");
        assert!(h.contains_key(header::STRICT_TRANSPORT_SECURITY));
    }

    #[test]
    fn moats_own_pages_keep_their_stricter_policy_and_plain_http_gets_no_hsts() {
        let rt = testing::one_app("", "auth = \"none\"");
        let req = http::Request::get("/_moat/login").body(()).unwrap();
        let ctx = testing::ctx(&req, "127.0.0.1", false, None);
        let mut resp = Response::new(crate::body::empty());
        resp.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'".parse().unwrap(),
        );
        resp.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=1".parse().unwrap(),
        );
        let resp = apply(resp, &ctx, &rt);
        assert_eq!(
            resp.headers()[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'"
        );
        assert!(resp.headers().contains_key(header::X_CONTENT_TYPE_OPTIONS));
        assert!(
            resp.headers()
                .contains_key(header::STRICT_TRANSPORT_SECURITY),
            "over plain HTTP moat leaves the header as it is"
        );
    }
}
