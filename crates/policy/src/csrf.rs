//! Cross-origin request protection: is a state-changing request from a
//! page of another origin?
//!
//! The algorithm is that of Go 1.25's `net/http.CrossOriginProtection`:
//! 1. GET, HEAD and OPTIONS pass (they must not change state).
//! 2. An `Origin` listed as trusted passes.
//! 3. With `Sec-Fetch-Site` (every current browser sends it): `same-origin`
//!    or `none` (typed in, bookmarks) passes; any other value is refused.
//! 4. Without it: no `Origin` passes (not a browser, or a very old one);
//!    an `Origin` whose host (with port) equals the request's `Host` passes;
//!    anything else is refused.

use http::{HeaderMap, Method};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refused; the reason is shown to the client.
    CrossOrigin(&'static str),
}

/// Judges one request. `host` is the Host (or HTTP/2 authority) the client
/// asked for; `trusted_origins` are exact origins (`https://a.example`).
pub fn check(
    method: &Method,
    headers: &HeaderMap,
    host: Option<&str>,
    trusted_origins: &[String],
) -> Verdict {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Verdict::Allow;
    }
    let origin = headers.get(http::header::ORIGIN).map(|v| v.as_bytes());
    if let Some(o) = origin {
        if trusted_origins.iter().any(|t| t.as_bytes() == o) {
            return Verdict::Allow;
        }
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Verdict::Allow,
            _ => Verdict::CrossOrigin(
                "cross-origin request refused: the browser reports that another site sent it (Sec-Fetch-Site)",
            ),
        };
    }
    let Some(origin) = origin else {
        return Verdict::Allow;
    };
    let origin_host = std::str::from_utf8(origin)
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, h)| h);
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Verdict::Allow,
        _ => Verdict::CrossOrigin(
            "cross-origin request refused: its Origin does not match the host it was sent to",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(method: Method, pairs: &[(&'static str, &'static str)], trusted: &[&str]) -> bool {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        let trusted: Vec<String> = trusted.iter().map(|s| s.to_string()).collect();
        check(&method, &h, Some("app.example:8443"), &trusted) == Verdict::Allow
    }

    #[test]
    fn safe_methods_always_pass() {
        for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(run(m, &[("sec-fetch-site", "cross-site")], &[]));
        }
    }

    #[test]
    fn sec_fetch_site_decides_when_present() {
        for (site, ok) in [
            ("same-origin", true),
            ("none", true),
            ("same-site", false),
            ("cross-site", false),
            ("bogus", false),
        ] {
            assert_eq!(
                run(Method::POST, &[("sec-fetch-site", site)], &[]),
                ok,
                "{site}"
            );
        }
        // Even with a matching Origin, the browser's word wins.
        assert!(!run(
            Method::POST,
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://app.example:8443")
            ],
            &[]
        ));
    }

    #[test]
    fn origin_against_host_without_sec_fetch_site() {
        assert!(run(Method::POST, &[], &[]), "no Origin: not a browser");
        assert!(run(
            Method::DELETE,
            &[("origin", "https://app.example:8443")],
            &[]
        ));
        assert!(run(
            Method::PUT,
            &[("origin", "https://APP.example:8443")],
            &[]
        ));
        assert!(
            !run(Method::POST, &[("origin", "https://app.example")], &[]),
            "port differs"
        );
        assert!(!run(
            Method::POST,
            &[("origin", "https://evil.example")],
            &[]
        ));
        assert!(!run(Method::POST, &[("origin", "null")], &[]));
    }

    #[test]
    fn trusted_origins_pass() {
        assert!(run(
            Method::POST,
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://sso.example")
            ],
            &["https://sso.example"]
        ));
    }
}
