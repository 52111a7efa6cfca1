//! The forwarding headers moat sends to an upstream.
//!
//! SECURITY: inbound copies are always removed and a clean set rebuilt from
//! the resolved client, so an upstream never sees a forwarding header that a
//! client wrote itself. What the upstream sees is exactly what moat vouches
//! for.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue};

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Every forwarding header moat owns; inbound copies are stripped.
pub const OWNED: [HeaderName; 6] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_FORWARDED_PORT,
    X_REAL_IP,
    FORWARDED,
];

/// Prefix of the headers moat uses to tell upstreams what it decided
/// (`X-Moat-User`, ...).
pub const MOAT_PREFIX: &str = "x-moat-";
/// The signed-in user's name, sent to upstreams of `auth = "system"` apps.
pub const USER_HEADER: HeaderName = HeaderName::from_static("x-moat-user");
/// The signed-in user's email, from their OpenID provider (verified).
pub const EMAIL_HEADER: HeaderName = HeaderName::from_static("x-moat-email");
/// The signed-in user's groups, from their OpenID provider
/// (comma-separated, see `access::groups_header`).
pub const GROUPS_HEADER: HeaderName = HeaderName::from_static("x-moat-groups");
/// Where the signed-in user came from: `system`, `oidc:NAME`, `cert` (the
/// same name from two sources is two people).
pub const SOURCE_HEADER: HeaderName = HeaderName::from_static("x-moat-source");
/// A signed JWT naming the user, for apps with `identity_jwt = true`.
pub const IDENTITY_HEADER: HeaderName = HeaderName::from_static("x-moat-identity");

/// SECURITY: removes every `X-Moat-*` header a client sent, so none can
/// pass for one moat set itself (an upstream trusting `X-Moat-User` must
/// only ever see moat's).
pub fn strip_moat_headers(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(MOAT_PREFIX))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// SECURITY: removes request headers with `_` in their names, except those
/// in `allowed` (lower-case). CGI, WSGI and PHP servers turn `-` and `_`
/// alike into `_` (`X-Moat_User` arrives as `HTTP_X_MOAT_USER`), so such a
/// header can pass for one moat set. A name that reads as one moat owns
/// (`X-Moat-*`, a forwarding header) once `_` becomes `-` is removed even
/// if allowed.
pub fn strip_underscore_headers(headers: &mut HeaderMap, allowed: &[String]) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().contains('_'))
        .filter(|k| {
            let hyphenated = k.as_str().replace('_', "-");
            let owned = hyphenated.starts_with(MOAT_PREFIX)
                || OWNED.iter().any(|o| o.as_str() == hyphenated);
            owned || !allowed.iter().any(|a| a == k.as_str())
        })
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// What moat knows about the original request.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub client: IpAddr,
    /// `"https"` or `"http"`: how the client reached moat.
    pub proto: &'static str,
    /// The host (with port, if any) the client asked for.
    pub host: Option<&'a str>,
}

/// Removes inbound forwarding headers and inserts moat's own.
pub fn rebuild(headers: &mut HeaderMap, origin: &Origin<'_>) {
    for name in OWNED.iter() {
        headers.remove(name);
    }
    let client = origin.client.to_string();
    headers.insert(X_FORWARDED_FOR, value(&client));
    headers.insert(X_REAL_IP, value(&client));
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(origin.proto));
    let host = origin.host.filter(|h| HeaderValue::from_str(h).is_ok());
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, value(host));
    }
    headers.insert(
        FORWARDED,
        value(&forwarded_element(origin.client, origin.proto, host)),
    );
}

/// One RFC 7239 `Forwarded` element: `for=...;proto=...;host=...`.
pub fn forwarded_element(client: IpAddr, proto: &str, host: Option<&str>) -> String {
    // RFC 7239 section 6: IPv6 nodes are bracketed, and brackets and colons
    // are not token characters, so the value must be a quoted-string.
    let mut s = match client {
        IpAddr::V4(v4) => format!("for={v4}"),
        IpAddr::V6(v6) => format!("for=\"[{v6}]\""),
    };
    s.push_str(";proto=");
    s.push_str(proto);
    if let Some(host) = host {
        s.push_str(";host=");
        if host.bytes().all(is_tchar) {
            s.push_str(host);
        } else {
            s.push('"');
            for c in host.chars() {
                if c == '"' || c == '\\' {
                    s.push('\\');
                }
                s.push(c);
            }
            s.push('"');
        }
    }
    s
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn value(s: &str) -> HeaderValue {
    // Callers pass IP addresses, fixed words or a host that was already a
    // valid header value, so this cannot fail.
    HeaderValue::from_str(s).expect("forwarding header values are valid")
}

#[cfg(test)]
mod tests {

    #[test]
    fn underscore_headers_are_dropped_unless_allowed() {
        let mut h = HeaderMap::new();
        for name in [
            "x-moat_user",
            "x-forwarded_for",
            "x_custom",
            "x_other",
            "x-normal",
        ] {
            h.insert(HeaderName::from_static(name), HeaderValue::from_static("v"));
        }
        let allowed = ["x_custom".to_owned(), "x-moat_user".to_owned()];
        strip_underscore_headers(&mut h, &allowed);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(
            left,
            ["x-normal", "x_custom"],
            "moat's own names go even when allowed"
        );
    }
    use super::*;

    #[test]
    fn strips_and_rebuilds() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        h.insert("forwarded", "for=6.6.6.6".parse().unwrap());
        h.insert("x-forwarded-port", "1".parse().unwrap());
        h.insert("x-real-ip", "6.6.6.6".parse().unwrap());
        h.insert("accept", "*/*".parse().unwrap());
        let origin = Origin {
            client: "192.0.2.1".parse().unwrap(),
            proto: "https",
            host: Some("app.example:8443"),
        };
        rebuild(&mut h, &origin);
        assert_eq!(h["x-forwarded-for"], "192.0.2.1");
        assert_eq!(h["x-real-ip"], "192.0.2.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "app.example:8443");
        assert_eq!(
            h["forwarded"],
            "for=192.0.2.1;proto=https;host=\"app.example:8443\""
        );
        assert!(h.get("x-forwarded-port").is_none());
        assert_eq!(h["accept"], "*/*");
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
    }

    #[test]
    fn moat_headers_from_clients_are_removed() {
        let mut h = HeaderMap::new();
        h.append("x-moat-user", "admin".parse().unwrap());
        h.append("x-moat-user", "root".parse().unwrap());
        h.insert("X-Moat-Jwt", "forged".parse().unwrap());
        h.insert("x-moatish", "kept".parse().unwrap());
        strip_moat_headers(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-moatish"], "kept");
    }

    #[test]
    fn ipv6_is_quoted_and_bracketed() {
        let f = forwarded_element("2001:db8::1".parse().unwrap(), "http", Some("example.com"));
        assert_eq!(f, "for=\"[2001:db8::1]\";proto=http;host=example.com");
    }
}
