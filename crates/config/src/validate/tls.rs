//! Validates `[tls]`: protocol versions, cipher suites, key-exchange
//! groups, certificate files and HSTS.

use std::time::Duration;

use super::checker::Checker;
use crate::model::{CertificateFiles, Hsts, LocalCa, Tls, TlsVersion};
use crate::raw::RawTls;
use crate::tls_names;

/// The longest leaf the local CA issues: short-lived certificates are the
/// point of renewing them automatically.
const MAX_LEAF_LIFETIME: Duration = Duration::from_secs(90 * 86_400);

/// Keys are relative to `tls.`; messages and fixes still name other TLS
/// keys in full (`tls.min_version`), as an admin reads them.
pub(super) fn validate(c: &mut Checker<'_>, t: &RawTls) -> Tls {
    let min_version = match t.min_version.as_str() {
        "1.2" => TlsVersion::V1_2,
        "1.3" => TlsVersion::V1_3,
        other => {
            c.problem(
                "min_version",
                format!("{other:?} is not supported"),
                "use \"1.2\" (TLS 1.2 and 1.3) or \"1.3\" (TLS 1.3 only); older versions are not offered",
            );
            TlsVersion::V1_2
        }
    };
    let mut cipher_suites = Vec::new();
    for (i, name) in t.cipher_suites.iter().enumerate() {
        match tls_names::cipher_suite(name) {
            Some((canon, is13)) => {
                if min_version == TlsVersion::V1_3 && !is13 {
                    c.problem(
                        format!("cipher_suites[{i}]"),
                        format!("{name} is a TLS 1.2 suite but tls.min_version is \"1.3\""),
                        "remove it, or set tls.min_version = \"1.2\"",
                    );
                }
                cipher_suites.push(canon);
            }
            None => c.problem(
                format!("cipher_suites[{i}]"),
                format!("unknown or unsupported cipher suite {name:?}"),
                format!(
                    "use one of {} (only AEAD suites with forward secrecy are offered)",
                    tls_names::CIPHER_SUITES
                        .iter()
                        .map(|s| s.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
    if !cipher_suites.is_empty()
        && !cipher_suites
            .iter()
            .any(|s| tls_names::cipher_suite(s).is_some_and(|x| x.1))
    {
        c.problem(
            "cipher_suites",
            "lists no TLS 1.3 suite, so TLS 1.3 clients could not connect",
            "add at least one TLS13_* suite, e.g. TLS13_AES_128_GCM_SHA256",
        );
    }
    let mut kx_groups = Vec::new();
    for (i, name) in t.kx_groups.iter().enumerate() {
        match tls_names::kx_group(name) {
            Some(canon) => kx_groups.push(canon),
            None => c.problem(
                format!("kx_groups[{i}]"),
                format!("unknown key-exchange group {name:?}"),
                format!(
                    "use one of {}",
                    tls_names::KX_GROUPS
                        .iter()
                        .map(|g| g.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
    let mut certificates = Vec::new();
    for (i, cert) in t.certificates.iter().enumerate() {
        let files = CertificateFiles {
            cert: c.path(&cert.cert),
            key: c.path(&cert.key),
        };
        for (field, path, given) in [
            ("cert", &files.cert, &cert.cert),
            ("key", &files.key, &cert.key),
        ] {
            if given.is_empty() {
                c.problem(
                    format!("certificates[{i}].{field}"),
                    "is empty",
                    format!("give the path of the PEM {field} file"),
                );
            } else if !path.is_file() {
                c.problem(
                    format!("certificates[{i}].{field}"),
                    format!("{} does not exist or is not a file", path.display()),
                    format!("give the path of the PEM {field} file"),
                );
            }
        }
        certificates.push(files);
    }
    let leaf_lifetime = c.duration(
        "local_ca.leaf_lifetime",
        &t.local_ca.leaf_lifetime,
        Duration::from_secs(3600),
    );
    if leaf_lifetime > MAX_LEAF_LIFETIME {
        c.problem(
            "local_ca.leaf_lifetime",
            "is longer than 90 days",
            "use a lifetime of days (the default is \"7d\"); moat renews the certificate itself",
        );
    }
    let (acme, acme_defaults) = super::acme::validate(c, &t.acme, &t.acme_defaults);
    let ask = t.on_demand.ask.trim();
    let on_demand_ask = if ask.is_empty() {
        None
    } else if ask.starts_with("http://") && ask.len() > "http://".len() && !ask.contains('#') {
        Some(ask.to_owned())
    } else {
        c.problem(
            "on_demand.ask",
            format!("{ask:?} is not an http:// URL"),
            "give the URL of a local service that answers 200 for the names moat may get certificates for, e.g. \"http://127.0.0.1:9123/allowed\" (moat adds ?domain=NAME)",
        );
        None
    };
    let max_age = c.duration("hsts.max_age", &t.hsts.max_age, Duration::ZERO);
    if t.hsts.preload && (max_age < Duration::from_secs(31_536_000) || !t.hsts.include_subdomains) {
        c.problem(
            "hsts.preload",
            "preload lists require max_age of at least 1 year and include_subdomains = true",
            "set tls.hsts.max_age = \"365d\" and tls.hsts.include_subdomains = true, or preload = false",
        );
    }
    Tls {
        enabled: t.enabled,
        min_version,
        cipher_suites,
        kx_groups,
        redirect_http: t.redirect_http,
        reload_interval: c.duration("reload_interval", &t.reload_interval, Duration::ZERO),
        certificates,
        local_ca: LocalCa { leaf_lifetime },
        acme,
        acme_for_app_hosts: t.acme_for_app_hosts,
        acme_defaults,
        on_demand_ask,
        hsts: Hsts {
            enabled: t.hsts.enabled,
            max_age,
            include_subdomains: t.hsts.include_subdomains,
            preload: t.hsts.preload,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::RawCertificate;
    use crate::validate::checker::{assert_problem, check};

    #[test]
    fn names_are_canonical_and_certificate_files_exist() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("cert.pem");
        std::fs::write(&pem, "x").unwrap();
        let raw = RawTls {
            min_version: "1.3".into(),
            cipher_suites: vec!["TLS_AES_128_GCM_SHA256".into()],
            kx_groups: vec!["P-256".into()],
            certificates: vec![RawCertificate {
                cert: pem.display().to_string(),
                key: pem.display().to_string(),
            }],
            ..RawTls::default()
        };
        let (t, problems) = check(|c| validate(c, &raw));
        assert_eq!(problems, []);
        assert_eq!(t.min_version, TlsVersion::V1_3);
        assert_eq!(t.cipher_suites, ["TLS13_AES_128_GCM_SHA256"]);
        assert_eq!(t.kx_groups, ["secp256r1"]);
        assert_eq!(t.certificates[0].cert, pem);
    }

    #[test]
    fn bad_values_are_named_relative_to_the_section() {
        let mut raw = RawTls {
            min_version: "1.0".into(),
            cipher_suites: vec!["nope".into(), "ECDHE-RSA-AES128-GCM-SHA256".into()],
            kx_groups: vec!["ffdhe2048".into()],
            certificates: vec![RawCertificate {
                cert: String::new(),
                key: "missing.pem".into(),
            }],
            ..RawTls::default()
        };
        raw.hsts.preload = true;
        raw.local_ca.leaf_lifetime = crate::raw::Human::s("400d");
        let (_, problems) = check(|c| validate(c, &raw));
        assert_problem(&problems, "min_version", "\"1.0\" is not supported");
        assert_problem(
            &problems,
            "cipher_suites[0]",
            "unknown or unsupported cipher suite \"nope\"",
        );
        assert_problem(&problems, "cipher_suites", "lists no TLS 1.3 suite");
        assert_problem(
            &problems,
            "kx_groups[0]",
            "unknown key-exchange group \"ffdhe2048\"",
        );
        assert_problem(&problems, "certificates[0].cert", "is empty");
        assert_problem(
            &problems,
            "certificates[0].key",
            "/base/missing.pem does not exist or is not a file",
        );
        assert_problem(&problems, "hsts.preload", "preload lists require max_age");
        assert_problem(
            &problems,
            "local_ca.leaf_lifetime",
            "is longer than 90 days",
        );
        assert_eq!(problems.len(), 8, "{problems:#?}");
    }
}
