//! The origin-pattern matcher and the rate parser never panic; a wildcard
//! pattern never matches an origin outside its domain, and no pattern but
//! an exact "null" matches the null origin.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_policy::cors::OriginPattern;
use moat_policy::rate_limit::Rate;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = Rate::parse(s);
    // First line: a pattern; the rest: origins to match.
    let mut lines = s.lines();
    let Some(p) = lines.next() else { return };
    let Ok(pattern) = OriginPattern::parse(p) else { return };
    for origin in lines {
        let m = pattern.matches(origin);
        if origin == "null" {
            assert_eq!(m, matches!(&pattern, OriginPattern::Exact(e) if e == "null"));
        }
        if let (true, OriginPattern::Subdomain { scheme, suffix, .. }) = (m, &pattern) {
            let (s, rest) = origin.split_once("://").unwrap();
            let host = rest.rsplit_once(':').map(|(h, _)| h).unwrap_or(rest);
            assert_eq!(s, scheme);
            assert!(host.ends_with(suffix.as_str()) && host.len() > suffix.len());
        }
    }
});
