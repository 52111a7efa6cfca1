//! The CSP parser and the report parser never panic on any input; a policy
//! that parses prints back to one that parses the same; composing on it
//! never leaves 'none' beside another source.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_policy::csp::{self, Grant, Layers, Policy};
use moat_policy::csp_report;

fuzz_target!(|data: &[u8]| {
    let _ = csp_report::parse("application/csp-report", data);
    let _ = csp_report::parse("application/reports+json", data);
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(p) = Policy::parse(s) {
        let again = Policy::parse(&p.to_string()).expect("printed policy parses");
        assert_eq!(again, p);
        // Requests made of the input's own words, approved, composed.
        let requested: Vec<Grant> = s
            .split_whitespace()
            .filter_map(|w| Grant::new("connect-src", w).ok())
            .take(8)
            .collect();
        let c = csp::compose(&Layers {
            base: &p,
            requested: &requested,
            admin_approve_all: true,
            admin_remove: &requested[..requested.len().min(2)],
            ..Default::default()
        });
        for (d, entries) in &c.directives {
            let none = entries.iter().any(|e| e.source == "'none'");
            assert!(!none || entries.len() == 1, "{d}");
        }
        // What parses is a valid header value: no policy is ever dropped.
        assert!(http::HeaderValue::from_str(&c.header_value()).is_ok());
        let _ = c.with_nonce("abc");
    }
    for w in s.split_whitespace() {
        let _ = csp::check_source(w);
        let _ = csp::danger("script-src", w);
    }
});
