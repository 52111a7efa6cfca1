//! The canonical path is a fixed point, never holds a dot segment, an empty
//! segment or an escape of an unreserved character, and a refused path is
//! refused for a reason the input shows. Path patterns never panic on it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_policy::canonical_path::{Refusal, canonicalize};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, path) = text.split_once('\n').unwrap_or(("/", text));
    if moat_policy::canonical_path::is_canonical(path) {
        let c = canonicalize(path).expect("a path the fast check passes is accepted");
        assert_eq!(c.path, path, "the fast check passed a path that changes");
        assert!(!c.encoded_separator);
    }
    match canonicalize(path) {
        Ok(c) => {
            assert!(c.path.starts_with('/'), "{c:?}");
            let again = canonicalize(&c.path).expect("a canonical path is accepted");
            assert_eq!(again.path, c.path, "not a fixed point: {path:?}");
            let inner = c.path.strip_suffix('/').unwrap_or(&c.path);
            if inner.len() > 1 {
                for seg in inner[1..].split('/') {
                    assert!(!seg.is_empty() && seg != "." && seg != "..", "{path:?} -> {c:?}");
                }
            }
            let lower = c.path.to_ascii_lowercase();
            for unreserved in ["%41", "%61", "%30", "%2d", "%2e", "%5f", "%7e"] {
                assert!(!lower.contains(unreserved), "{path:?} -> {c:?}");
            }
            if c.encoded_separator {
                let _ = c.separators_decoded();
            }
            if let Ok(p) = moat_policy::glob::PathPattern::parse(pattern) {
                let _ = p.matches(&c.path);
            }
        }
        Err(Refusal::NotAbsolute) => assert!(!path.starts_with('/')),
        Err(Refusal::BadEscape) => assert!(path.contains('%')),
        Err(Refusal::Nul) => assert!(path.contains("%00")),
        Err(Refusal::EncodedDotSegment) => assert!(path.contains('%')),
        Err(Refusal::NotUtf8) => assert!(path.contains('%')),
        Err(Refusal::DotSegmentParams) => assert!(path.contains(';')),
    }
});
