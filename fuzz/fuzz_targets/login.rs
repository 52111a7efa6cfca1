//! The login decisions never panic on any input, and `next` never leads
//! off the host: whatever comes in, the redirect target is a local path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_policy::{csrf, login, signing};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let next = login::safe_next(Some(s));
    assert!(next.starts_with('/'), "{next:?}");
    assert!(!next.starts_with("//") && !next.starts_with("/\\"), "{next:?}");
    assert!(!next.bytes().any(|b| b.is_ascii_control()), "{next:?}");
    // What the login URL carries comes back out of it unchanged.
    let url = login::login_url(s);
    let query = url.split_once('?').map(|(_, q)| q);
    assert_eq!(login::query_param(query, "next").as_deref(), Some(s));
    let _ = login::form_field(s, "password");
    let escaped = login::html_escape(s);
    assert!(!escaped.contains(['<', '>', '"', '\'']));
    assert_eq!(signing::verify_session(&[0u8; 32], s), None);
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(s) {
        headers.insert(http::header::ORIGIN, v.clone());
        headers.insert(http::header::COOKIE, v);
        let _ = login::cookie(&headers, "__Host-moat_session");
        let _ = csrf::check(&http::Method::POST, &headers, Some("a.example"), &[]);
    }
});
