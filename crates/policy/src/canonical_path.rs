//! The one canonical form of a request path that every decision is made on.
//!
//! moat routes, signs in and matches guard patterns on a path, and the
//! upstream serves another path if the two read the same bytes differently
//! (`/app//admin`, `/app/./admin`, `/app/%61dmin` all mean `/app/admin` to a
//! normalising upstream). So moat computes one form per request, makes every
//! decision on it and sends that same form upstream:
//!
//! - percent-encoded unreserved characters (RFC 3986 §2.3: letters, digits,
//!   `-._~`) are decoded; other escapes are kept, with upper-case hex
//!   (§6.2.2.1);
//! - repeated slashes are merged;
//! - dot segments are removed (§5.2.4; `..` never climbs above `/`).
//!
//! What cannot be made unambiguous is refused: an encoded `/` or `\` (or a
//! raw `\`: some servers read it as `/`), an encoded dot segment (`%2e%2e`:
//! browsers resolve `.`/`..` themselves, so only a crafted request carries
//! one), a NUL, a malformed escape, and bytes that are not UTF-8 once
//! decoded. An encoded separator alone is left to the caller, because an
//! app may opt in to it by name; see [`Canonical::encoded_separator`].

/// A request path in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// Starts with `/`; escapes kept only for reserved or non-ASCII bytes.
    pub path: String,
    /// The path holds `%2F` or `%5C` (or a raw `\`). Kept encoded in
    /// [`Canonical::path`]; the caller refuses it unless the app allows it.
    pub encoded_separator: bool,
}

impl Canonical {
    /// The path with encoded separators read as `/`: the path a decoding
    /// upstream sees. Routing on both this and [`Canonical::path`] and
    /// finding the same app is what makes an encoded slash safe to pass.
    pub fn separators_decoded(&self) -> String {
        let decoded = self
            .path
            .replace("%2F", "/")
            .replace("%5C", "/")
            .replace('\\', "/");
        // The decoded form is canonicalised too (its own dots and slashes).
        match canonicalize(&decoded) {
            Ok(c) => c.path,
            // Cannot fail after the first pass, but the safe reading of a
            // surprise is "a different path".
            Err(_) => String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not an origin-form path (does not start with `/`).
    NotAbsolute,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `%00`.
    Nul,
    /// A segment that is `.` or `..` only once decoded.
    EncodedDotSegment,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
    /// A dot segment with parameters (`..;x`): Servlet containers read it
    /// as `..`, moat as a name.
    DotSegmentParams,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NotAbsolute => "the path does not start with /",
            Refusal::BadEscape => "the path holds a malformed percent-escape",
            Refusal::Nul => "the path holds an encoded NUL",
            Refusal::EncodedDotSegment => "the path holds an encoded dot segment",
            Refusal::NotUtf8 => "the path is not valid UTF-8 once decoded",
            Refusal::DotSegmentParams => "the path holds a dot segment with parameters (..;)",
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `raw` is canonical already: starts with `/`, no escape, no
/// `\`, no empty, `.` or `..` segment (but a trailing `/`). Most request
/// paths are; this check costs one pass and no allocation.
pub fn is_canonical(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    let mut seg_start = 1;
    for i in 1..=b.len() {
        let end = i == b.len();
        if !end && b[i] != b'/' {
            if b[i] == b'%' || b[i] == b'\\' {
                return false;
            }
            continue;
        }
        let seg = &b[seg_start..i];
        let last = end;
        let head = seg.split(|&c| c == b';').next().unwrap_or(seg);
        if (seg.is_empty() && !last) || head == b"." || head == b".." {
            return false;
        }
        seg_start = i + 1;
    }
    true
}

/// Canonicalises `raw` (the request path, without the query).
pub fn canonicalize(raw: &str) -> Result<Canonical, Refusal> {
    if !raw.starts_with('/') {
        return Err(Refusal::NotAbsolute);
    }
    let mut encoded_separator = false;
    let mut out: Vec<String> = Vec::new();
    // A path ending in `/`, `/.` or `/..` names a folder: keep the slash.
    let mut trailing_slash = false;
    for raw_seg in raw[1..].split('/') {
        let (seg, decoded, had_escape) = segment(raw_seg, &mut encoded_separator)?;
        std::str::from_utf8(&decoded).map_err(|_| Refusal::NotUtf8)?;
        trailing_slash = false;
        match seg.as_str() {
            "" => trailing_slash = true,
            "." | ".." if had_escape => return Err(Refusal::EncodedDotSegment),
            s if matches!(s.split(';').next(), Some("." | "..")) && s.contains(';') => {
                return Err(Refusal::DotSegmentParams);
            }
            "." => trailing_slash = true,
            ".." => {
                out.pop();
                trailing_slash = true;
            }
            _ => out.push(seg),
        }
    }
    let mut path = String::with_capacity(raw.len());
    for seg in &out {
        path.push('/');
        path.push_str(seg);
    }
    if trailing_slash || out.is_empty() {
        path.push('/');
    }
    Ok(Canonical {
        path,
        encoded_separator,
    })
}

/// One segment: (canonical text, fully decoded bytes, held an escape).
fn segment(raw: &str, encoded_separator: &mut bool) -> Result<(String, Vec<u8>, bool), Refusal> {
    let bytes = raw.as_bytes();
    let mut text = String::with_capacity(raw.len());
    let mut decoded = Vec::with_capacity(raw.len());
    let mut had_escape = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(Refusal::BadEscape);
            };
            let v = hi << 4 | lo;
            had_escape = true;
            decoded.push(v);
            if v == 0 {
                return Err(Refusal::Nul);
            }
            if is_unreserved(v) {
                text.push(v as char);
            } else {
                if v == b'/' || v == b'\\' {
                    *encoded_separator = true;
                }
                text.push('%');
                text.push(char::from(b"0123456789ABCDEF"[usize::from(hi)]));
                text.push(char::from(b"0123456789ABCDEF"[usize::from(lo)]));
            }
            i += 3;
        } else {
            if b == b'\\' {
                *encoded_separator = true;
            }
            decoded.push(b);
            // The request line is ASCII (hyper refuses other bytes), but a
            // str may hold more; copy whole characters.
            let ch_len = utf8_len(b);
            text.push_str(&raw[i..i + ch_len]);
            decoded.extend_from_slice(&bytes[i + 1..i + ch_len]);
            i += ch_len;
        }
    }
    Ok((text, decoded, had_escape))
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(p: &str) -> String {
        canonicalize(p).unwrap().path
    }

    #[test]
    fn equivalent_spellings_become_one() {
        for p in [
            "/app/admin/",
            "/app//admin/",
            "/app/./admin/",
            "/app/x/../admin/",
            "/app/%61dmin/",
            "/app/%61dmin//",
            "//app/admin/",
            "/app/admin/.",
            "/app/admin/x/..",
        ] {
            assert_eq!(c(p), "/app/admin/", "{p}");
        }
        assert_eq!(c("/"), "/");
        assert_eq!(c("/.."), "/");
        assert_eq!(c("/../../etc"), "/etc");
        assert_eq!(c("/a/b"), "/a/b");
        assert_eq!(c("/%7euser"), "/~user");
        assert_eq!(c("/a%20b"), "/a%20b");
        assert_eq!(
            c("/a%3fb"),
            "/a%3Fb",
            "escapes of reserved bytes kept, hex upper-cased"
        );
        assert_eq!(c("/caf%C3%A9"), "/caf%C3%A9");
        assert_eq!(
            c("/a..b/.c/c."),
            "/a..b/.c/c.",
            "dots inside names are names"
        );
    }

    #[test]
    fn ambiguous_paths_refused() {
        assert_eq!(canonicalize("/a/%2e%2e/b"), Err(Refusal::EncodedDotSegment));
        assert_eq!(canonicalize("/a/%2E/b"), Err(Refusal::EncodedDotSegment));
        assert_eq!(canonicalize("/a/.%2e"), Err(Refusal::EncodedDotSegment));
        assert_eq!(canonicalize("/a%00b"), Err(Refusal::Nul));
        assert_eq!(canonicalize("/a%zz"), Err(Refusal::BadEscape));
        assert_eq!(canonicalize("/a%4"), Err(Refusal::BadEscape));
        assert_eq!(canonicalize("/%ff"), Err(Refusal::NotUtf8));
        assert_eq!(canonicalize("/%C3"), Err(Refusal::NotUtf8));
        assert_eq!(canonicalize("a/b"), Err(Refusal::NotAbsolute));
        assert_eq!(
            canonicalize("/public/..;/admin"),
            Err(Refusal::DotSegmentParams)
        );
        assert_eq!(canonicalize("/a/.;x/b"), Err(Refusal::DotSegmentParams));
        assert_eq!(
            canonicalize("/a/%2e%2e;x/b"),
            Err(Refusal::DotSegmentParams)
        );
        assert!(
            canonicalize("/a/b;jsessionid=1").is_ok(),
            "parameters on a name are a name"
        );
        assert_eq!(canonicalize("*"), Err(Refusal::NotAbsolute));
    }

    #[test]
    fn encoded_separators_flagged_and_kept() {
        let x = canonicalize("/app/admin%2f").unwrap();
        assert!(x.encoded_separator);
        assert_eq!(x.path, "/app/admin%2F");
        assert_eq!(x.separators_decoded(), "/app/admin/");
        let y = canonicalize("/app/hooks/..%2Fsettings/x").unwrap();
        assert!(y.encoded_separator);
        assert_eq!(y.separators_decoded(), "/app/settings/x");
        assert!(canonicalize("/a%5Cb").unwrap().encoded_separator);
        assert!(canonicalize("/a\\b").unwrap().encoded_separator);
        assert!(!canonicalize("/a/b").unwrap().encoded_separator);
    }

    #[test]
    fn the_fast_check_agrees() {
        for p in [
            "/",
            "/a",
            "/a/",
            "/a/b.c",
            "/a//b",
            "//",
            "/a/.",
            "/a/..",
            "/./a",
            "/a%20b",
            "/a\\b",
            "a",
            "",
            "/a/../b/",
            "/.well-known/x",
            "/a..b",
        ] {
            let fast = is_canonical(p);
            let slow = canonicalize(p).is_ok_and(|c| c.path == p && !c.encoded_separator);
            // The fast check may say "no" to a canonical path (one with an
            // escape), never "yes" to one that is not.
            assert!(!fast || slow, "{p}: fast {fast}, slow {slow}");
            if !p.contains('%') {
                assert_eq!(fast, slow, "{p}");
            }
        }
    }

    #[test]
    fn canonical_form_is_a_fixed_point() {
        for p in ["/app//x/./y/../z/", "/%61/%2F/b", "/a%20b/%7e", "/x/.."] {
            let once = c(p);
            assert_eq!(c(&once), once, "{p}");
        }
    }
}
