//! CORS: which origins may read an app's responses from scripts, and the
//! headers that say so.
//!
//! Off unless an app configures it: then moat answers preflights itself
//! and replaces the upstream's CORS headers with its own. Origins are
//! matched by exact value, by wildcard subdomain (`https://*.example.com`:
//! one or more labels before `example.com`, same scheme and port), by an
//! anchored regular expression (`regex:…`), or reflected (`origin`: any
//! origin). SECURITY: the `null` origin (sandboxed frames, `file:` pages)
//! is never matched by a pattern; only an exact `"null"` entry allows it.

use http::{HeaderMap, HeaderName, HeaderValue, Method, header};

/// One `allow_origin` entry.
#[derive(Debug, Clone)]
pub enum OriginPattern {
    /// `*`: any origin, answered with `Access-Control-Allow-Origin: *`.
    Any,
    /// `origin`: any origin, reflected back.
    Reflect,
    Exact(String),
    /// `scheme://*.suffix[:port]`: `suffix` starts with a dot.
    Subdomain {
        scheme: String,
        suffix: String,
        port: Option<u16>,
    },
    Regex(regex::Regex),
}

impl OriginPattern {
    pub fn parse(s: &str) -> Result<OriginPattern, String> {
        let s = s.trim();
        if s == "*" {
            return Ok(OriginPattern::Any);
        }
        if s == "origin" {
            return Ok(OriginPattern::Reflect);
        }
        if s == "null" {
            return Ok(OriginPattern::Exact("null".into()));
        }
        if let Some(re) = s.strip_prefix("regex:") {
            return regex::Regex::new(&format!("^(?:{re})$"))
                .map(OriginPattern::Regex)
                .map_err(|e| format!("not a valid regular expression: {e}"));
        }
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("{s:?} is not an origin (scheme://host[:port])"))?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b))
        {
            return Err(format!("{s:?}: the scheme must be lower case, e.g. https"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("{s:?}: the port is not a number"))?,
                ),
            ),
            None => (rest, None),
        };
        if rest.contains('/') {
            return Err(format!(
                "{s:?}: an origin has no path (not even a trailing /)"
            ));
        }
        let labels_ok = |h: &str| {
            !h.is_empty()
                && h.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                })
        };
        if let Some(suffix) = host.strip_prefix("*.") {
            if !labels_ok(suffix) || !suffix.contains('.') {
                return Err(format!(
                    "{s:?}: after *. comes a registered domain such as example.com, in lower case"
                ));
            }
            return Ok(OriginPattern::Subdomain {
                scheme: scheme.into(),
                suffix: format!(".{suffix}"),
                port,
            });
        }
        if host.contains('*') {
            return Err(format!(
                "{s:?}: a wildcard may only stand first, as *.example.com"
            ));
        }
        if !labels_ok(host.trim_start_matches('[').trim_end_matches(']')) && !host.starts_with('[')
        {
            return Err(format!("{s:?}: the host must be a lower-case host name"));
        }
        Ok(OriginPattern::Exact(s.to_owned()))
    }

    pub fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Exact(e) => e == origin,
            // The null origin is shared by every sandboxed or local
            // document: no pattern may allow it.
            _ if origin == "null" => false,
            OriginPattern::Any | OriginPattern::Reflect => true,
            OriginPattern::Regex(r) => r.is_match(origin),
            OriginPattern::Subdomain {
                scheme,
                suffix,
                port,
            } => {
                let Some((s, rest)) = origin.split_once("://") else {
                    return false;
                };
                let (host, p) = match rest.rsplit_once(':') {
                    Some((h, p)) => match p.parse::<u16>() {
                        Ok(p) => (h, Some(p)),
                        Err(_) => return false,
                    },
                    None => (rest, None),
                };
                s == scheme
                    && p == *port
                    && host.len() > suffix.len()
                    && host.ends_with(suffix.as_str())
                    && host[..host.len() - suffix.len()].split('.').all(|l| {
                        !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
            }
        }
    }
}

/// An app's CORS settings, validated.
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    pub origins: Vec<OriginPattern>,
    pub methods: Vec<Method>,
    /// Request headers a script may send (lower case).
    pub allow_headers: Vec<String>,
    /// Response headers a script may read.
    pub expose_headers: Vec<String>,
    pub max_age: Option<u32>,
    pub credentials: bool,
}

/// What moat answers for a request's `Origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginVerdict {
    /// No Origin header: not a cross-origin script request.
    NoOrigin,
    /// Allowed: `Access-Control-Allow-Origin` gets this value.
    Allowed(String),
    Denied,
}

/// How moat answers a request that may be a preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// Not a preflight: the request goes on.
    No,
    /// 204 with these headers.
    Allowed(Vec<(HeaderName, HeaderValue)>),
    /// 403, and why.
    Denied(String),
}

const VARY_PREFLIGHT: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

impl CorsPolicy {
    pub fn origin(&self, headers: &HeaderMap) -> OriginVerdict {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return OriginVerdict::NoOrigin;
        };
        match self.origins.iter().find(|p| p.matches(origin)) {
            Some(OriginPattern::Any) if !self.credentials => OriginVerdict::Allowed("*".into()),
            Some(_) => OriginVerdict::Allowed(origin.to_owned()),
            None => OriginVerdict::Denied,
        }
    }

    /// A preflight is an OPTIONS request with `Origin` and
    /// `Access-Control-Request-Method`.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Preflight {
        if method != Method::OPTIONS {
            return Preflight::No;
        }
        let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD) else {
            return Preflight::No;
        };
        let allow_origin = match self.origin(headers) {
            OriginVerdict::NoOrigin => return Preflight::No,
            OriginVerdict::Denied => {
                return Preflight::Denied("this origin may not call this app".into());
            }
            OriginVerdict::Allowed(o) => o,
        };
        let method_ok = requested
            .to_str()
            .ok()
            .and_then(|m| m.parse::<Method>().ok())
            .is_some_and(|m| self.methods.contains(&m));
        if !method_ok {
            return Preflight::Denied(format!(
                "the method {} is not allowed",
                String::from_utf8_lossy(requested.as_bytes())
            ));
        }
        let asked: Vec<String> = headers
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if let Some(h) = asked.iter().find(|h| !self.allow_headers.contains(h)) {
            return Preflight::Denied(format!("the request header {h} is not allowed"));
        }
        let mut out = vec![(header::ACCESS_CONTROL_ALLOW_ORIGIN, value(&allow_origin))];
        let methods: Vec<&str> = self.methods.iter().map(Method::as_str).collect();
        out.push((
            header::ACCESS_CONTROL_ALLOW_METHODS,
            value(&methods.join(", ")),
        ));
        if !asked.is_empty() {
            out.push((
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                value(&asked.join(", ")),
            ));
        }
        if let Some(age) = self.max_age {
            out.push((header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age)));
        }
        if self.credentials {
            out.push((
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
        out.push((header::VARY, HeaderValue::from_static(VARY_PREFLIGHT)));
        Preflight::Allowed(out)
    }

    /// Headers for an actual (non-preflight) response.
    pub fn response_headers(&self, request: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::new();
        if let OriginVerdict::Allowed(o) = self.origin(request) {
            out.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, value(&o)));
            if self.credentials {
                out.push((
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                ));
            }
            if !self.expose_headers.is_empty() {
                out.push((
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    value(&self.expose_headers.join(", ")),
                ));
            }
        }
        out
    }
}

/// Every CORS response header: an upstream's are removed where moat
/// manages CORS.
pub const RESPONSE_HEADERS: [HeaderName; 6] = [
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    header::ACCESS_CONTROL_ALLOW_METHODS,
    header::ACCESS_CONTROL_ALLOW_HEADERS,
    header::ACCESS_CONTROL_EXPOSE_HEADERS,
    header::ACCESS_CONTROL_MAX_AGE,
];

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("null"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> OriginPattern {
        OriginPattern::parse(s).unwrap()
    }

    #[test]
    fn patterns() {
        let sub = pat("https://*.example.com");
        assert!(sub.matches("https://a.example.com"));
        assert!(sub.matches("https://a.b.example.com"), "one or more labels");
        assert!(!sub.matches("https://example.com"), "at least one label");
        assert!(!sub.matches("http://a.example.com"), "scheme");
        assert!(!sub.matches("https://a.example.com:8443"), "port");
        assert!(!sub.matches("https://evilexample.com"));
        assert!(!sub.matches("https://a.example.com.evil.net"));
        assert!(!sub.matches("https://.example.com"));
        assert!(pat("https://*.example.com:8443").matches("https://x.example.com:8443"));
        let re = pat("regex:https://(dev|staging)\\.example\\.com");
        assert!(re.matches("https://dev.example.com"));
        assert!(!re.matches("https://dev.example.com.evil.net"), "anchored");
        for p in ["*", "origin", "https://*.example.com", "regex:.*"] {
            assert!(!pat(p).matches("null"), "{p} must not match null");
        }
        assert!(pat("null").matches("null"), "only an exact entry");
        for bad in [
            "example.com",
            "https://example.com/",
            "https://*.com",
            "https://a.*.com",
            "HTTPS://x.com",
            "regex:(",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
    }

    fn policy(origins: &[&str], credentials: bool) -> CorsPolicy {
        CorsPolicy {
            origins: origins.iter().map(|o| pat(o)).collect(),
            methods: vec![Method::GET, Method::POST, Method::PUT],
            allow_headers: vec!["content-type".into(), "x-token".into()],
            expose_headers: vec!["x-total".into()],
            max_age: Some(600),
            credentials,
        }
    }

    fn req(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn preflights() {
        let p = policy(&["https://app.example"], true);
        let ok = req(&[
            ("origin", "https://app.example"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "X-Token, content-type"),
        ]);
        let Preflight::Allowed(h) = p.preflight(&Method::OPTIONS, &ok) else {
            panic!()
        };
        let get = |n: HeaderName| {
            h.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
            "https://app.example"
        );
        assert_eq!(
            get(header::ACCESS_CONTROL_ALLOW_METHODS).unwrap(),
            "GET, POST, PUT"
        );
        assert_eq!(
            get(header::ACCESS_CONTROL_ALLOW_HEADERS).unwrap(),
            "x-token, content-type"
        );
        assert_eq!(get(header::ACCESS_CONTROL_MAX_AGE).unwrap(), "600");
        assert_eq!(
            get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).unwrap(),
            "true"
        );
        assert!(get(header::VARY).unwrap().starts_with("Origin"));
        for (bad, why) in [
            (
                req(&[
                    ("origin", "https://evil.example"),
                    ("access-control-request-method", "GET"),
                ]),
                "origin",
            ),
            (
                req(&[
                    ("origin", "https://app.example"),
                    ("access-control-request-method", "DELETE"),
                ]),
                "DELETE",
            ),
            (
                req(&[
                    ("origin", "https://app.example"),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "x-admin"),
                ]),
                "x-admin",
            ),
        ] {
            match p.preflight(&Method::OPTIONS, &bad) {
                Preflight::Denied(w) => assert!(w.contains(why), "{w}"),
                other => panic!("{other:?}"),
            }
        }
        // Not preflights: no request method, or not OPTIONS.
        assert_eq!(
            p.preflight(&Method::OPTIONS, &req(&[("origin", "https://app.example")])),
            Preflight::No
        );
        assert_eq!(p.preflight(&Method::GET, &ok), Preflight::No);
    }

    #[test]
    fn actual_responses() {
        let star = policy(&["*"], false);
        let h = star.response_headers(&req(&[("origin", "https://x.example")]));
        assert_eq!(h[0].1, "*");
        let reflect = policy(&["origin"], true);
        let h = reflect.response_headers(&req(&[("origin", "https://x.example")]));
        assert_eq!(
            h[0].1, "https://x.example",
            "credentials need the origin itself"
        );
        assert!(
            h.iter()
                .any(|(k, v)| *k == header::ACCESS_CONTROL_EXPOSE_HEADERS && v == "x-total")
        );
        assert!(
            reflect
                .response_headers(&req(&[("origin", "null")]))
                .is_empty()
        );
        assert!(reflect.response_headers(&HeaderMap::new()).is_empty());
    }
}
