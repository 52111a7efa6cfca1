//! HTTP Basic credentials (RFC 7617) and a constant-time comparison.

use base64::Engine;

/// `Authorization: Basic base64(user:password)` → (user, password).
/// `None` for any other scheme or a malformed value.
pub fn parse(authorization: &str) -> Option<(String, String)> {
    let (scheme, rest) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Compares two byte strings in time that depends only on their lengths,
/// so a mismatch position cannot be learned from timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        // "admin:pa:ss" — the password may hold colons, the user may not.
        assert_eq!(
            parse("Basic YWRtaW46cGE6c3M="),
            Some(("admin".into(), "pa:ss".into()))
        );
        assert_eq!(
            parse("basic   YWRtaW46"),
            Some(("admin".into(), String::new()))
        );
        assert_eq!(parse("Bearer abc"), None);
        assert_eq!(parse("Basic !!!"), None);
        assert_eq!(parse("Basic YWRtaW4="), None, "no colon");
        assert_eq!(parse(""), None);
    }

    #[test]
    fn compares() {
        assert!(constant_time_eq(b"admin", b"admin"));
        assert!(!constant_time_eq(b"admin", b"admim"));
        assert!(!constant_time_eq(b"admin", b"admin2"));
    }
}
