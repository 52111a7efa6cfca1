//! Hop-by-hop stripping and forwarding rebuild never panic on any header
//! set, and leave no connection-scoped, client-written forwarding or
//! `X-Moat-*` header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_policy::{forwarding, hop_by_hop};

fuzz_target!(|data: &[u8]| {
    let mut headers = http::HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let mut kv = line.splitn(2, |&b| b == b':');
        let (Some(k), Some(v)) = (kv.next(), kv.next()) else { continue };
        if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k), http::HeaderValue::from_bytes(v)) {
            headers.append(k, v);
        }
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).map(str::to_owned);
    let _ = hop_by_hop::is_websocket_upgrade(&headers);
    hop_by_hop::strip(&mut headers);
    forwarding::strip_moat_headers(&mut headers);
    assert!(headers.keys().all(|k| !k.as_str().starts_with(forwarding::MOAT_PREFIX)));
    for h in hop_by_hop::ALWAYS.iter() {
        assert!(headers.get(h).is_none());
    }
    let origin = forwarding::Origin { client: "192.0.2.1".parse().unwrap(), proto: "https", host: host.as_deref() };
    forwarding::rebuild(&mut headers, &origin);
    assert_eq!(headers.get_all("x-forwarded-for").iter().count(), 1);
    assert_eq!(headers["x-forwarded-for"], "192.0.2.1");
});
