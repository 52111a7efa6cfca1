//! Client-IP resolution never panics, and never invents an address: the
//! result is the peer or an address written in the headers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_policy::client_ip::{TrustedProxies, resolve};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let trust_all = data[0] & 1 == 1;
    let split = (data[1] as usize).min(data.len() - 2);
    let (xff, real) = data[2..].split_at(split);
    let mut headers = http::HeaderMap::new();
    for part in xff.split(|&b| b == b'\n') {
        if let Ok(v) = http::HeaderValue::from_bytes(part) {
            headers.append("x-forwarded-for", v);
        }
    }
    if let Ok(v) = http::HeaderValue::from_bytes(real) {
        headers.insert("x-real-ip", v);
    }
    let nets = if trust_all { vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()] } else { vec!["127.0.0.1/32".parse().unwrap()] };
    let peer = "127.0.0.1".parse().unwrap();
    let c = resolve(peer, &headers, &TrustedProxies::new(nets));
    if c.ip != peer {
        let all: String = headers.iter().filter_map(|(_, v)| v.to_str().ok()).collect::<Vec<_>>().join(",");
        let mentioned = all
            .split(',')
            .filter_map(moat_policy::client_ip::parse_addr)
            .any(|ip| ip == c.ip);
        assert!(mentioned, "{:?} not in {all:?}", c.ip);
    }
});
