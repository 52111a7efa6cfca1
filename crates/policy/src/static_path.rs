//! Turns the path of a request for a static app into a relative file path
//! that cannot leave the app's folder.
//!
//! SECURITY: the path is split on `/` *before* percent-decoding, and a
//! decoded segment that holds a `/`, `\`, NUL or is `.`/`..` is refused, so
//! encoded dots and slashes (`%2e%2e`, `%2f`) cannot climb out of the folder.
//! Dotfiles (`.git`, `.env`) are refused too, except `.well-known`. Symlinks
//! are the caller's job: it must check the resolved file is still inside the
//! folder.

use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticPath {
    /// Decoded, checked segments, in order. Empty for the folder root.
    pub segments: Vec<String>,
    /// The request path ended with `/` (a folder was asked for).
    pub trailing_slash: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A segment decodes to `.` or `..`.
    DotSegment,
    /// A segment decodes to something holding `/`, `\` or NUL.
    EncodedSeparator,
    /// A segment names a hidden file.
    Hidden,
    /// A segment is not valid UTF-8 once decoded.
    NotUtf8,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::DotSegment => "path contains a dot segment",
            Refusal::EncodedSeparator => "path contains an encoded separator or NUL",
            Refusal::Hidden => "path names a hidden file",
            Refusal::NotUtf8 => "path is not valid UTF-8",
        }
    }
}

/// Checks `path` (the part after the app's mount prefix, still
/// percent-encoded, without query).
pub fn resolve(path: &str) -> Result<StaticPath, Refusal> {
    let mut segments = Vec::new();
    for raw in path.split('/') {
        if raw.is_empty() {
            continue;
        }
        let decoded = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| Refusal::NotUtf8)?;
        if decoded == "." || decoded == ".." {
            return Err(Refusal::DotSegment);
        }
        if decoded.contains(['/', '\\', '\0']) {
            return Err(Refusal::EncodedSeparator);
        }
        if decoded.starts_with('.') && decoded != ".well-known" {
            return Err(Refusal::Hidden);
        }
        segments.push(decoded.into_owned());
    }
    Ok(StaticPath {
        segments,
        trailing_slash: path.ends_with('/'),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths() {
        let p = resolve("/assets/app.js").unwrap();
        assert_eq!(p.segments, ["assets", "app.js"]);
        assert!(!p.trailing_slash);
        assert_eq!(resolve("").unwrap().segments.len(), 0);
        assert!(resolve("/docs/").unwrap().trailing_slash);
        assert_eq!(resolve("/a%20b.txt").unwrap().segments, ["a b.txt"]);
        assert_eq!(resolve("//a///b").unwrap().segments, ["a", "b"]);
    }

    #[test]
    fn traversal_refused() {
        for p in [
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/%2E%2E/x",
            "/a/.",
            "/.%2e/x",
        ] {
            assert_eq!(resolve(p), Err(Refusal::DotSegment), "{p}");
        }
        for p in ["/..%2fetc", "/a%2F..%2F..%2Fetc", "/a%5c..", "/a%00.txt"] {
            assert_eq!(resolve(p), Err(Refusal::EncodedSeparator), "{p}");
        }
        assert_eq!(resolve("/.git/config"), Err(Refusal::Hidden));
        assert_eq!(resolve("/%2egit"), Err(Refusal::Hidden));
        assert!(resolve("/.well-known/security.txt").is_ok());
        assert_eq!(resolve("/%ff"), Err(Refusal::NotUtf8));
    }
}
