//! Resolves the real client address of a request.
//!
//! SECURITY: forwarding headers are written by whoever sent the request, so
//! they are believed only when the direct peer is a proxy the admin listed in
//! `trusted_proxies`. Behind trusted proxies the chain is read from the right
//! (the hop nearest to moat) and the first address that is not itself a
//! trusted proxy is the client: everything left of it could have been made up
//! by that client.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// The set of peers whose forwarding headers moat believes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies { nets }
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

/// Where the resolved client address came from; logged so an admin can see
/// why moat believes what it believes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The TCP peer itself (not a trusted proxy, or no usable headers).
    Peer,
    /// An entry of `X-Forwarded-For` sent by a trusted proxy.
    XForwardedFor,
    /// `X-Real-IP` sent by a trusted proxy without `X-Forwarded-For`.
    XRealIp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp {
    pub ip: IpAddr,
    pub source: Source,
}

/// Resolves the client address from the direct peer and request headers.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> ClientIp {
    let peer = canonical(peer);
    if !trusted.contains(peer) {
        return ClientIp {
            ip: peer,
            source: Source::Peer,
        };
    }
    let mut chain = headers.get_all("x-forwarded-for").iter().peekable();
    if chain.peek().is_some() {
        // Every X-Forwarded-For line is part of one list, in order.
        let entries: Vec<&str> = chain
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut nearest_trusted = peer;
        let mut source = Source::Peer;
        for entry in entries.iter().rev() {
            match parse_addr(entry) {
                Some(ip) if trusted.contains(ip) => {
                    nearest_trusted = ip;
                    source = Source::XForwardedFor;
                }
                Some(ip) => {
                    return ClientIp {
                        ip,
                        source: Source::XForwardedFor,
                    };
                }
                // SECURITY: an entry we cannot parse ends what we can vouch for;
                // the client is the last hop we could still verify.
                None => break,
            }
        }
        // Every entry was a trusted proxy (or the chain broke): the furthest
        // verified hop is the best answer.
        return ClientIp {
            ip: nearest_trusted,
            source,
        };
    }
    if let Some(ip) = headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_addr(v.trim()))
    {
        return ClientIp {
            ip,
            source: Source::XRealIp,
        };
    }
    ClientIp {
        ip: peer,
        source: Source::Peer,
    }
}

/// Parses one forwarded address: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `[2001:db8::1]:80`. Returns `None` for anything else (`unknown`,
/// obfuscated identifiers, garbage).
pub fn parse_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    let inner = s.strip_prefix('[')?.split(']').next()?;
    inner
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(|ip| canonical(IpAddr::V6(ip)))
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, seen on dual-stack sockets)
/// are compared and logged as the IPv4 address they are.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            list.iter()
                .map(|s| {
                    s.parse::<IpNet>()
                        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                        .unwrap()
                })
                .collect(),
        )
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_headers_ignored() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-real-ip", "2.2.2.2"),
            ("forwarded", "for=3.3.3.3"),
        ]);
        let c = resolve(ip("203.0.113.9"), &h, &t);
        assert_eq!(
            c,
            ClientIp {
                ip: ip("203.0.113.9"),
                source: Source::Peer
            }
        );
    }

    #[test]
    fn no_trusted_proxies_means_peer() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(
            resolve(ip("127.0.0.1"), &h, &TrustedProxies::default()).ip,
            ip("127.0.0.1")
        );
    }

    #[test]
    fn trusted_peer_rightmost_untrusted() {
        let t = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        // client spoofs 6.6.6.6, real client 1.2.3.4, then two trusted hops.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.2"),
            ("x-forwarded-for", "10.0.0.3"),
        ]);
        assert_eq!(
            resolve(ip("127.0.0.1"), &h, &t),
            ClientIp {
                ip: ip("1.2.3.4"),
                source: Source::XForwardedFor
            }
        );
    }

    #[test]
    fn all_trusted_chain_gives_leftmost() {
        let t = trusted(&["10.0.0.0/8", "127.0.0.1"]);
        let h = headers(&[("x-forwarded-for", "10.1.1.1, 10.0.0.2")]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &t).ip, ip("10.1.1.1"));
    }

    #[test]
    fn garbage_entry_stops_chain() {
        let t = trusted(&["10.0.0.0/8", "127.0.0.1"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4, garbage, 10.0.0.2")]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &t).ip, ip("10.0.0.2"));
        let h = headers(&[("x-forwarded-for", "nonsense")]);
        assert_eq!(
            resolve(ip("127.0.0.1"), &h, &t),
            ClientIp {
                ip: ip("127.0.0.1"),
                source: Source::Peer
            }
        );
    }

    #[test]
    fn ports_and_brackets() {
        let t = trusted(&["127.0.0.1"]);
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:4711")]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &t).ip, ip("2001:db8::1"));
        let h = headers(&[("x-forwarded-for", "198.51.100.7:5000")]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &t).ip, ip("198.51.100.7"));
    }

    #[test]
    fn real_ip_fallback_only_without_xff() {
        let t = trusted(&["127.0.0.1"]);
        let h = headers(&[("x-real-ip", "198.51.100.7")]);
        assert_eq!(
            resolve(ip("127.0.0.1"), &h, &t),
            ClientIp {
                ip: ip("198.51.100.7"),
                source: Source::XRealIp
            }
        );
        let h = headers(&[("x-real-ip", "bogus")]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &t).source, Source::Peer);
        let h = headers(&[
            ("x-real-ip", "198.51.100.7"),
            ("x-forwarded-for", "192.0.2.1"),
        ]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &t).ip, ip("192.0.2.1"));
    }

    #[test]
    fn mapped_ipv4_peer_matches_ipv4_net() {
        let t = trusted(&["127.0.0.1"]);
        let h = headers(&[("x-forwarded-for", "192.0.2.1")]);
        assert_eq!(resolve(ip("::ffff:127.0.0.1"), &h, &t).ip, ip("192.0.2.1"));
    }
}
