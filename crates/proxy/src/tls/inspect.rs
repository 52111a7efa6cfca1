//! What a certificate says about itself: names, issuer, validity, and the
//! fingerprint admins compare. Read once when a certificate is loaded or
//! issued, for status, renewal and the name-constraint check.

use std::net::IpAddr;

use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// Subject alternative names: DNS names as written, IP addresses in
    /// their usual text form.
    pub names: Vec<String>,
    /// The subject's common name, if any.
    pub common_name: Option<String>,
    /// The issuer's distinguished name, as text.
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the DER, as colon-separated upper-case hex (the form
    /// browsers and `openssl x509 -fingerprint -sha256` show).
    pub sha256: String,
}

pub fn inspect(der: &CertificateDer<'_>) -> Result<CertificateFacts, String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("not a valid X.509 certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push((*d).to_owned()),
                GeneralName::IPAddress(b) => {
                    if let Some(ip) = ip_from_bytes(b) {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    Ok(CertificateFacts {
        names,
        common_name,
        issuer: cert.issuer().to_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        sha256: fingerprint(der),
    })
}

/// SHA-256 of a DER certificate in the `AB:CD:…` form.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// A CA's permitted name subtrees (RFC 5280 §4.2.1.10), as far as moat
/// issues names: DNS names and IP ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permitted {
    /// None: the CA has no name constraints and may issue any name.
    pub subtrees: Option<Vec<Subtree>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subtree {
    Dns(String),
    Ip { network: IpAddr, prefix: u8 },
}

impl Permitted {
    pub fn of(der: &CertificateDer<'_>) -> Result<Permitted, String> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| format!("not a valid X.509 certificate: {e}"))?;
        let Some(nc) = cert
            .name_constraints()
            .map_err(|e| format!("unreadable name constraints: {e}"))?
        else {
            return Ok(Permitted::default());
        };
        let mut subtrees = Vec::new();
        for s in nc.value.permitted_subtrees.iter().flatten() {
            match &s.base {
                GeneralName::DNSName(d) => subtrees.push(Subtree::Dns(d.to_ascii_lowercase())),
                GeneralName::IPAddress(b) if b.len() == 8 || b.len() == 32 => {
                    let (addr, mask) = b.split_at(b.len() / 2);
                    if let Some(network) = ip_from_bytes(addr) {
                        let prefix = mask.iter().map(|m| m.count_ones()).sum::<u32>() as u8;
                        subtrees.push(Subtree::Ip { network, prefix });
                    }
                }
                _ => {}
            }
        }
        Ok(Permitted {
            subtrees: Some(subtrees),
        })
    }

    /// Whether a name the CA would put in a leaf is inside its subtrees.
    /// A DNS subtree `example.com` holds `example.com` and every name
    /// under it; an IP subtree holds the addresses of its network. A
    /// constrained CA with no subtree of a name's type permits none of it
    /// (moat's CA always lists both types).
    pub fn permits(&self, name: &str) -> bool {
        let Some(subtrees) = &self.subtrees else {
            return true;
        };
        let name = name.to_ascii_lowercase();
        if let Ok(ip) = name.parse::<IpAddr>() {
            return subtrees.iter().any(|s| match s {
                Subtree::Ip { network, prefix } => in_network(ip, *network, *prefix),
                Subtree::Dns(_) => false,
            });
        }
        subtrees.iter().any(|s| match s {
            Subtree::Dns(base) => {
                name == *base
                    || (name.len() > base.len()
                        && name.ends_with(base.as_str())
                        && name.as_bytes()[name.len() - base.len() - 1] == b'.')
            }
            Subtree::Ip { .. } => false,
        })
    }
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    let (a, n, bits): (u128, u128, u32) = match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a) as u128, u32::from(n) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let prefix = u32::from(prefix).min(bits);
    if prefix == 0 {
        return true;
    }
    let shift = bits - prefix;
    (a >> shift) == (n >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subtrees_hold_the_name_and_names_under_it() {
        let p = Permitted {
            subtrees: Some(vec![
                Subtree::Dns("localhost".into()),
                Subtree::Dns("example.com".into()),
                Subtree::Ip {
                    network: "127.0.0.0".parse().unwrap(),
                    prefix: 8,
                },
                Subtree::Ip {
                    network: "::1".parse().unwrap(),
                    prefix: 128,
                },
            ]),
        };
        assert!(p.permits("localhost"));
        assert!(p.permits("app.localhost"));
        assert!(p.permits("Example.COM"));
        assert!(p.permits("a.b.example.com"));
        assert!(!p.permits("badexample.com"));
        assert!(!p.permits("example.org"));
        assert!(p.permits("127.0.0.1"));
        assert!(p.permits("127.9.9.9"));
        assert!(!p.permits("10.0.0.1"));
        assert!(p.permits("::1"));
        assert!(!p.permits("::2"));
        assert!(Permitted::default().permits("anything.example"));
        assert!(
            !Permitted {
                subtrees: Some(vec![])
            }
            .permits("localhost")
        );
    }

    #[test]
    fn fingerprint_form() {
        let f = fingerprint(b"");
        assert_eq!(f.len(), 32 * 3 - 1);
        assert!(f.starts_with("E3:B0:C4:42"), "{f}");
    }
}
