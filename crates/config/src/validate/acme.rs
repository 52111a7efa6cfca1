//! Validates `[[tls.acme]]` and `[tls.acme_defaults]`: domains moat may
//! order certificates for, the directory, the challenge and the external
//! account binding. Keys are relative to `tls.`.

use std::collections::HashSet;

use super::checker::Checker;
use crate::model::{AcmeAccount, AcmeCertificate, AcmeChallenge, ExternalAccountBinding};
use crate::raw::{RawAcme, RawAcmeAccount};

pub const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// The directory URL a name or URL stands for.
fn directory(c: &mut Checker<'_>, key: &str, v: &str) -> String {
    match v {
        "letsencrypt" | "" => LETSENCRYPT.to_owned(),
        "letsencrypt-staging" => LETSENCRYPT_STAGING.to_owned(),
        url if url.starts_with("https://") && url.len() > "https://".len() => url.to_owned(),
        other => {
            c.problem(
                key,
                format!("{other:?} is not an ACME directory"),
                "use \"letsencrypt\", \"letsencrypt-staging\" or the https:// URL of your CA's directory (ACME is not spoken over plain HTTP)",
            );
            LETSENCRYPT.to_owned()
        }
    }
}

fn challenge(c: &mut Checker<'_>, key: &str, v: &str) -> AcmeChallenge {
    match v {
        "http-01" => AcmeChallenge::Http01,
        "tls-alpn-01" => AcmeChallenge::TlsAlpn01,
        "dns-01" => AcmeChallenge::Dns01,
        other => {
            c.problem(
                key,
                format!("{other:?} is not a challenge moat answers"),
                "use \"http-01\" (on the HTTP listener, port 80 for public CAs), \"tls-alpn-01\" (on the HTTPS listener, port 443) or \"dns-01\" (a TXT record, through dns_hook)",
            );
            AcmeChallenge::Http01
        }
    }
}

fn is_base64url(s: &str) -> bool {
    !s.is_empty()
        && s.trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One account setting: the entry's own value if given, else the default's.
fn pick<'a>(own: &'a Option<String>, default: &'a str) -> &'a str {
    own.as_deref().unwrap_or(default)
}

fn account(c: &mut Checker<'_>, prefix: &str, own: &RawAcme, d: &RawAcmeAccount) -> AcmeAccount {
    let directory = directory(
        c,
        &format!("{prefix}directory"),
        pick(&own.directory, &d.directory),
    );
    let email = pick(&own.email, &d.email).trim().to_owned();
    if !email.is_empty() && (!email.contains('@') || email.contains(char::is_whitespace)) {
        c.problem(
            format!("{prefix}email"),
            format!("{email:?} is not an email address"),
            "give the address the CA may write to about expiring certificates, or leave it empty",
        );
    }
    let challenge = challenge(
        c,
        &format!("{prefix}challenge"),
        pick(&own.challenge, &d.challenge),
    );
    let kid = pick(&own.eab_kid, &d.eab_kid).to_owned();
    let hmac_key = pick(&own.eab_hmac_key, &d.eab_hmac_key).to_owned();
    let eab = match (kid.is_empty(), hmac_key.is_empty()) {
        (true, true) => None,
        (false, false) => {
            if !is_base64url(&hmac_key) {
                // SECURITY: the message never repeats the key.
                c.problem(
                    format!("{prefix}eab_hmac_key"),
                    "is not base64url",
                    "paste the HMAC key exactly as your CA gave it",
                );
            }
            Some(ExternalAccountBinding { kid, hmac_key })
        }
        _ => {
            c.problem(
                format!("{prefix}eab_kid"),
                "external account binding needs both eab_kid and eab_hmac_key",
                "give both (your CA shows them together), or neither",
            );
            None
        }
    };
    let ca = pick(&own.directory_ca, &d.directory_ca);
    let directory_ca = if ca.is_empty() {
        None
    } else {
        let path = c.path(ca);
        if !path.is_file() {
            c.problem(
                format!("{prefix}directory_ca"),
                format!("{} does not exist or is not a file", path.display()),
                "give the PEM file of the CA that signed the ACME server's HTTPS certificate, or leave it empty to use the system's roots",
            );
        }
        Some(path)
    };
    let hook = pick(&own.dns_hook, &d.dns_hook);
    let dns_hook = if hook.is_empty() {
        if challenge == AcmeChallenge::Dns01 {
            c.problem(
                format!("{prefix}dns_hook"),
                "the dns-01 challenge needs a command that sets the TXT record",
                "give dns_hook = \"/path/to/hook\" (called as HOOK set|clear NAME VALUE), or use another challenge",
            );
        }
        None
    } else {
        let path = c.path(hook);
        use std::os::unix::fs::PermissionsExt;
        let executable = std::fs::metadata(&path)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !executable {
            c.problem(
                format!("{prefix}dns_hook"),
                format!("{} is not an executable file", path.display()),
                "give the path of the hook command (chmod +x it)",
            );
        }
        Some(path)
    };
    AcmeAccount {
        directory,
        email: (!email.is_empty()).then_some(email),
        challenge,
        eab,
        directory_ca,
        dns_hook,
    }
}

/// A DNS name a public CA can validate: letters, digits, hyphens, dots; at
/// least two labels; a wildcard only where the challenge is dns-01 (the
/// only one that can prove one).
fn domain_problem(d: &str, challenge: AcmeChallenge) -> Option<&'static str> {
    let d = match d.strip_prefix("*.") {
        Some(_) if challenge != AcmeChallenge::Dns01 => {
            return Some("is a wildcard, which only the dns-01 challenge can prove");
        }
        Some(rest) => rest,
        None => d,
    };
    if d.parse::<std::net::IpAddr>().is_ok() {
        return Some("is an IP address; ACME certificates here are for DNS names");
    }
    (!moat_policy::renewal::is_issuable_dns_name(d))
        .then_some("is not a DNS name a CA can issue for")
}

pub(super) fn validate(
    c: &mut Checker<'_>,
    entries: &[RawAcme],
    defaults: &RawAcmeAccount,
) -> (Vec<AcmeCertificate>, AcmeAccount) {
    let defaults_account = account(c, "acme_defaults.", &RawAcme::default(), defaults);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let prefix = format!("acme[{i}].");
        if e.domains.is_empty() {
            c.problem(
                format!("{prefix}domains"),
                "is empty",
                "list the names the certificate is for, e.g. [\"example.com\", \"www.example.com\"]",
            );
        }
        let account = account(c, &prefix, e, defaults);
        let mut domains = Vec::new();
        for (j, d) in e.domains.iter().enumerate() {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            if let Some(why) = domain_problem(&d, account.challenge) {
                c.problem(
                    format!("{prefix}domains[{j}]"),
                    format!("{d:?} {why}"),
                    "give a DNS name such as \"app.example.com\"",
                );
            } else if !seen.insert(d.clone()) {
                c.problem(
                    format!("{prefix}domains[{j}]"),
                    format!("{d:?} is in another ACME certificate too"),
                    "list each name in one [[tls.acme]] entry",
                );
            }
            domains.push(d);
        }
        out.push(AcmeCertificate { domains, account });
    }
    (out, defaults_account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::checker::{assert_problem, check};

    #[test]
    fn entries_inherit_the_defaults_and_name_their_directory() {
        let defaults = RawAcmeAccount {
            email: "ops@example.com".into(),
            challenge: "tls-alpn-01".into(),
            ..RawAcmeAccount::default()
        };
        let entries = vec![
            RawAcme {
                domains: vec!["Example.com.".into(), "www.example.com".into()],
                ..RawAcme::default()
            },
            RawAcme {
                domains: vec!["shop.example.net".into()],
                directory: Some("letsencrypt-staging".into()),
                challenge: Some("http-01".into()),
                eab_kid: Some("kid-1".into()),
                eab_hmac_key: Some("c2VjcmV0LWtleQ".into()),
                ..RawAcme::default()
            },
        ];
        let ((certs, d), problems) = check(|c| validate(c, &entries, &defaults));
        assert_eq!(problems, []);
        assert_eq!(d.directory, LETSENCRYPT);
        assert_eq!(certs[0].domains, ["example.com", "www.example.com"]);
        assert_eq!(certs[0].account.email.as_deref(), Some("ops@example.com"));
        assert_eq!(certs[0].account.challenge, AcmeChallenge::TlsAlpn01);
        assert_eq!(certs[1].account.directory, LETSENCRYPT_STAGING);
        assert_eq!(certs[1].account.challenge, AcmeChallenge::Http01);
        let eab = certs[1].account.eab.as_ref().unwrap();
        assert_eq!(eab.kid, "kid-1");
        assert!(
            !format!("{eab:?}").contains("c2VjcmV0"),
            "the key is never printed"
        );
    }

    #[test]
    fn bad_entries_are_named() {
        let entries = vec![
            RawAcme {
                domains: vec![
                    "*.example.com".into(),
                    "10.0.0.1".into(),
                    "localhost".into(),
                    "a..b".into(),
                ],
                directory: Some("http://ca.example/dir".into()),
                challenge: Some("dns-02".into()),
                eab_kid: Some("only-kid".into()),
                email: Some("nobody".into()),
                directory_ca: Some("/nonexistent/ca.pem".into()),
                ..RawAcme::default()
            },
            RawAcme::default(),
            RawAcme {
                domains: vec!["x.example.org".into(), "x.example.org".into()],
                eab_kid: Some("k".into()),
                eab_hmac_key: Some("not base64!".into()),
                ..RawAcme::default()
            },
        ];
        let (_, problems) = check(|c| validate(c, &entries, &RawAcmeAccount::default()));
        assert_problem(&problems, "acme[0].domains[0]", "only the dns-01 challenge");
        assert_problem(&problems, "acme[0].domains[1]", "is an IP address");
        assert_problem(&problems, "acme[0].domains[2]", "is not a DNS name");
        assert_problem(&problems, "acme[0].domains[3]", "is not a DNS name");
        assert_problem(&problems, "acme[0].directory", "is not an ACME directory");
        assert_problem(
            &problems,
            "acme[0].challenge",
            "\"dns-02\" is not a challenge",
        );
        assert_problem(&problems, "acme[0].eab_kid", "needs both");
        assert_problem(&problems, "acme[0].email", "is not an email address");
        assert_problem(&problems, "acme[0].directory_ca", "does not exist");
        assert_problem(&problems, "acme[1].domains", "is empty");
        assert_problem(
            &problems,
            "acme[2].domains[1]",
            "is in another ACME certificate",
        );
        assert_problem(&problems, "acme[2].eab_hmac_key", "is not base64url");
        assert!(
            problems.iter().all(|p| !p.message.contains("not base64!")),
            "{problems:#?}"
        );
        assert_eq!(problems.len(), 12, "{problems:#?}");
    }

    #[test]
    fn dns01_needs_an_executable_hook_and_allows_wildcards() {
        let dir = tempfile::tempdir().unwrap();
        let hook = dir.path().join("hook");
        std::fs::write(&hook, "#!/bin/sh\n").unwrap();
        let entry = |hook: Option<String>| RawAcme {
            domains: vec!["*.example.com".into(), "example.com".into()],
            challenge: Some("dns-01".into()),
            dns_hook: hook,
            ..RawAcme::default()
        };
        let (_, problems) = check(|c| validate(c, &[entry(None)], &RawAcmeAccount::default()));
        assert_problem(&problems, "acme[0].dns_hook", "needs a command");
        assert_eq!(problems.len(), 1, "{problems:#?}");
        let given = Some(hook.display().to_string());
        let (_, problems) =
            check(|c| validate(c, &[entry(given.clone())], &RawAcmeAccount::default()));
        assert_problem(&problems, "acme[0].dns_hook", "is not an executable file");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let ((certs, _), problems) =
            check(|c| validate(c, &[entry(given)], &RawAcmeAccount::default()));
        assert_eq!(problems, []);
        assert_eq!(certs[0].domains, ["*.example.com", "example.com"]);
        assert_eq!(certs[0].account.dns_hook.as_deref(), Some(hook.as_path()));
    }
}
