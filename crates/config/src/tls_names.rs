//! The TLS cipher suites and key-exchange groups moat offers, by name.
//!
//! Names are the IANA ones (`TLS_AES_128_GCM_SHA256`,
//! `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`), rustls' (`TLS13_AES_128_GCM_SHA256`)
//! or OpenSSL's (`ECDHE-RSA-AES128-GCM-SHA256`), in any case. Each resolves
//! to the canonical rustls name, which the proxy maps to the provider's suite;
//! a test there checks every canonical name here exists in the provider.
//! Only AEAD suites with forward secrecy are offered at all.

/// (canonical, is TLS 1.3, aliases)
pub const CIPHER_SUITES: &[(&str, bool, &[&str])] = &[
    (
        "TLS13_AES_256_GCM_SHA384",
        true,
        &["TLS_AES_256_GCM_SHA384"],
    ),
    (
        "TLS13_AES_128_GCM_SHA256",
        true,
        &["TLS_AES_128_GCM_SHA256"],
    ),
    (
        "TLS13_CHACHA20_POLY1305_SHA256",
        true,
        &["TLS_CHACHA20_POLY1305_SHA256"],
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        false,
        &["ECDHE-ECDSA-AES256-GCM-SHA384"],
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        false,
        &["ECDHE-ECDSA-AES128-GCM-SHA256"],
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        false,
        &["ECDHE-ECDSA-CHACHA20-POLY1305"],
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        false,
        &["ECDHE-RSA-AES256-GCM-SHA384"],
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        false,
        &["ECDHE-RSA-AES128-GCM-SHA256"],
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        false,
        &["ECDHE-RSA-CHACHA20-POLY1305"],
    ),
];

/// (canonical, aliases)
pub const KX_GROUPS: &[(&str, &[&str])] = &[
    ("X25519", &["x25519"]),
    ("secp256r1", &["P-256", "prime256v1"]),
    ("secp384r1", &["P-384"]),
];

/// Canonical name and TLS 1.3-ness of a cipher suite name.
pub fn cipher_suite(name: &str) -> Option<(&'static str, bool)> {
    CIPHER_SUITES
        .iter()
        .find(|(c, _, aliases)| {
            c.eq_ignore_ascii_case(name) || aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        })
        .map(|(c, v13, _)| (*c, *v13))
}

pub fn kx_group(name: &str) -> Option<&'static str> {
    KX_GROUPS
        .iter()
        .find(|(c, aliases)| {
            c.eq_ignore_ascii_case(name) || aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        })
        .map(|(c, _)| *c)
}
