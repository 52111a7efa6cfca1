//! Conditional GET/HEAD evaluation (RFC 9110 section 13.2.2): whether a
//! cached copy the client holds is still current, so moat can answer 304.

use std::time::SystemTime;

/// True when the client's copy is current. `If-None-Match` takes precedence
/// over `If-Modified-Since` when both are sent.
pub fn not_modified(
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    etag: &str,
    last_modified: SystemTime,
) -> bool {
    if let Some(inm) = if_none_match {
        return inm.trim() == "*" || inm.split(',').any(|tag| weak_eq(tag.trim(), etag));
    }
    if let Some(ims) = if_modified_since.and_then(|v| httpdate::parse_http_date(v.trim()).ok()) {
        // HTTP dates have second precision; compare at that precision.
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        };
        return secs(last_modified) <= secs(ims);
    }
    false
}

/// Weak comparison: the opaque tags are equal, ignoring `W/`.
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cases() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(t);
        assert!(not_modified(Some("\"a\", \"b\""), None, "\"b\"", t));
        assert!(not_modified(Some("W/\"b\""), None, "\"b\"", t));
        assert!(not_modified(Some("*"), None, "\"b\"", t));
        assert!(!not_modified(Some("\"c\""), Some(&date), "\"b\"", t));
        assert!(not_modified(
            None,
            Some(&date),
            "\"b\"",
            t + Duration::from_millis(500)
        ));
        assert!(!not_modified(
            None,
            Some(&date),
            "\"b\"",
            t + Duration::from_secs(1)
        ));
        assert!(!not_modified(None, Some("garbage"), "\"b\"", t));
        assert!(!not_modified(None, None, "\"b\"", t));
    }
}
