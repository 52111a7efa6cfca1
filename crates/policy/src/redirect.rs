//! The HTTPS URL an HTTP request is redirected to.

use crate::route::host_without_port;

/// Builds `https://HOST[:PORT]/PATH?QUERY`. The host comes from the request
/// (or `fallback_host` when it has none); the port is moat's HTTPS port,
/// left out when it is 443.
pub fn https_location(
    host: Option<&str>,
    fallback_host: &str,
    https_port: u16,
    path_and_query: &str,
) -> String {
    let host = host
        .map(host_without_port)
        .filter(|h| valid_host(h))
        .unwrap_or_else(|| fallback_host.to_owned());
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let path = if path_and_query.starts_with('/') {
        path_and_query
    } else {
        "/"
    };
    if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    }
}

/// SECURITY: the Host header is client input and ends up in a Location
/// header; only hostname and address characters are let through so it cannot
/// smuggle a path, userinfo or another authority.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        assert_eq!(
            https_location(Some("example.com:8080"), "localhost", 8443, "/a?b=1"),
            "https://example.com:8443/a?b=1"
        );
        assert_eq!(
            https_location(Some("example.com"), "localhost", 443, "/"),
            "https://example.com/"
        );
        assert_eq!(
            https_location(None, "127.0.0.1", 8443, "/x"),
            "https://127.0.0.1:8443/x"
        );
        assert_eq!(
            https_location(Some("evil.com/@x"), "localhost", 443, "/"),
            "https://localhost/"
        );
        assert_eq!(
            https_location(Some("[::1]:8080"), "localhost", 8443, "/"),
            "https://[::1]:8443/"
        );
    }
}
