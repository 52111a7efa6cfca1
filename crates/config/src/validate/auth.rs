//! Validates `[auth]`: how people sign in to apps and how long a session
//! lasts.

use std::time::Duration;

use moat_policy::access::{Rules, is_provider_name};
use moat_policy::captcha::Hosted;

use super::checker::Checker;
use crate::model::{Auth, Captcha, CaptchaKind, OidcProvider};
use crate::raw::{RawAuth, RawCaptcha, RawOidc};

/// Keys are relative to `auth.`.
pub(super) fn validate(c: &mut Checker<'_>, a: &RawAuth) -> Auth {
    let auth = Auth {
        system_account: a.system_account,
        idle_timeout: c.duration("idle_timeout", &a.idle_timeout, Duration::from_secs(1)),
        absolute_timeout: c.duration(
            "absolute_timeout",
            &a.absolute_timeout,
            Duration::from_secs(1),
        ),
        basic_auth: a.basic_auth,
        require_totp: a.require_totp,
        oidc: Vec::new(),
        captcha: None,
    };
    let mut names = std::collections::HashSet::new();
    let mut oidc = Vec::new();
    for (i, raw) in a.oidc.iter().enumerate() {
        let p = c.scope(&format!("oidc[{i}]."), |c| provider(c, raw));
        if !names.insert(p.name.clone()) {
            c.problem(
                format!("oidc[{i}].name"),
                format!("provider name {:?} is used twice", p.name),
                "give every [[auth.oidc]] entry its own name",
            );
        }
        oidc.push(p);
    }
    let captcha = c.scope("captcha.", |c| captcha(c, &a.captcha));
    let auth = Auth {
        oidc,
        captcha,
        ..auth
    };
    if auth.idle_timeout > auth.absolute_timeout {
        c.problem(
            "idle_timeout",
            "is longer than auth.absolute_timeout, so it never applies",
            "make idle_timeout shorter than absolute_timeout",
        );
    }
    auth
}

/// One `[[auth.oidc]]` entry; keys are relative to it.
fn provider(c: &mut Checker<'_>, a: &RawOidc) -> OidcProvider {
    if !is_provider_name(&a.name) {
        c.problem(
            "name",
            format!("{:?} is not a provider name", a.name),
            "use lower-case letters, digits, - and _ (it appears in oidc:NAME and the callback path /_moat/oidc/NAME/callback)",
        );
    }
    check_issuer(c, &a.issuer);
    if a.client_id.is_empty() {
        c.problem(
            "client_id",
            "is missing",
            "give the client id the provider registered for moat",
        );
    }
    let client_secret = secret(
        c,
        ("client_secret", &a.client_secret),
        ("client_secret_file", &a.client_secret_file),
        "the client secret the provider registered for moat",
    );
    let scopes = a
        .scopes
        .clone()
        .unwrap_or_else(|| ["openid", "email", "profile"].map(String::from).to_vec());
    if !scopes.iter().any(|s| s == "openid") {
        c.problem(
            "scopes",
            "does not include \"openid\", so the provider would not sign anyone in with OpenID Connect",
            "add \"openid\" to scopes",
        );
    }
    if let Some(bad) = scopes.iter().find(|s| {
        s.is_empty()
            || s.bytes()
                .any(|b| b <= b' ' || b == b'"' || b == b'\\' || b >= 0x7f)
    }) {
        c.problem(
            "scopes",
            format!("{bad:?} is not a scope"),
            "list scopes without spaces or quotes, e.g. [\"openid\", \"email\", \"groups\"]",
        );
    }
    let claim = |c: &mut Checker<'_>, key: &str, v: &Option<String>, default: &str| {
        let v = v.clone().unwrap_or_else(|| default.to_owned());
        if v.is_empty() {
            c.problem(key, "is empty", format!("name a claim, e.g. \"{default}\""));
        }
        v
    };
    let groups_claim = claim(c, "groups_claim", &a.groups_claim, "groups");
    let user_claim = claim(c, "user_claim", &a.user_claim, "email");
    let ca = (!a.ca.is_empty()).then(|| {
        let path = c.path(&a.ca);
        if !path.is_file() {
            c.problem(
                "ca",
                format!("{} does not exist or is not a file", path.display()),
                "give the PEM file of the CA that signed the provider's HTTPS certificate, or leave ca empty to use the system's roots",
            );
        }
        path
    });
    OidcProvider {
        name: a.name.clone(),
        display_name: if a.display_name.is_empty() {
            a.name.clone()
        } else {
            a.display_name.clone()
        },
        issuer: a.issuer.clone(),
        client_id: a.client_id.clone(),
        client_secret,
        scopes,
        groups_claim,
        user_claim,
        userinfo: a.userinfo,
        rules: rules(c, &a.allowed_users, &a.allowed_groups, &a.allowed_domains),
        ca,
    }
}

/// `[auth.captcha]`; keys are relative to it.
fn captcha(c: &mut Checker<'_>, a: &RawCaptcha) -> Option<Captcha> {
    let after_failures = c.count("after_failures", a.after_failures, 0, 100) as u32;
    let hosted = match a.provider.as_str() {
        "" => return None,
        "pow" => {
            let difficulty = c.count("difficulty", a.difficulty, 8, 28) as u8;
            return Some(Captcha {
                after_failures,
                kind: CaptchaKind::Pow { difficulty },
            });
        }
        "recaptcha" => Hosted::Recaptcha,
        "hcaptcha" => Hosted::Hcaptcha,
        "turnstile" => Hosted::Turnstile,
        other => {
            c.problem(
                "provider",
                format!("{other:?} is not a captcha provider"),
                "write provider = \"pow\" (moat's own, no third party), \"recaptcha\", \"hcaptcha\" or \"turnstile\"",
            );
            return None;
        }
    };
    if a.site_key.is_empty() {
        c.problem(
            "site_key",
            format!("{} needs the site key the service gave you", hosted.name()),
            "give site_key = \"...\" from the service's dashboard",
        );
    }
    let secret = secret(
        c,
        ("secret", &a.secret),
        ("secret_file", &a.secret_file),
        "the service's secret key",
    );
    let verify_url = if a.verify_url.is_empty() {
        hosted.verify_url().to_owned()
    } else {
        let loopback = |h: &str| {
            h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        };
        match a.verify_url.parse::<http::Uri>() {
            Ok(u) if u.scheme_str() == Some("https") => {}
            Ok(u) if u.scheme_str() == Some("http") && u.host().is_some_and(loopback) => {}
            _ => c.problem(
                "verify_url",
                format!(
                    "{:?} is not an https:// URL (plain http only to this machine)",
                    a.verify_url
                ),
                format!(
                    "leave it empty for {}, or give an https:// URL",
                    hosted.verify_url()
                ),
            ),
        }
        a.verify_url.clone()
    };
    let timeout = c.duration("timeout", &a.timeout, Duration::from_millis(100));
    Some(Captcha {
        after_failures,
        kind: CaptchaKind::Hosted {
            service: hosted,
            site_key: a.site_key.clone(),
            secret,
            verify_url,
            timeout,
        },
    })
}

/// A secret given in the file (`inline`) or, better, in a file of its own
/// (`file`, read now, trimmed): exactly one of them. Keys and values are
/// `(key, value)`; `what` names the secret in the fixes.
fn secret(c: &mut Checker<'_>, inline: (&str, &str), file: (&str, &str), what: &str) -> String {
    match (inline.1.is_empty(), file.1.is_empty()) {
        (false, true) => inline.1.to_owned(),
        (true, false) => {
            let path = c.path(file.1);
            match std::fs::read_to_string(&path) {
                Ok(s) if !s.trim().is_empty() => s.trim().to_owned(),
                Ok(_) => {
                    c.problem(
                        file.0,
                        format!("{} is empty", path.display()),
                        format!("write {what} into the file"),
                    );
                    String::new()
                }
                Err(e) => {
                    c.problem(
                        file.0,
                        format!("{} cannot be read: {e}", path.display()),
                        format!("give a readable file holding {what}"),
                    );
                    String::new()
                }
            }
        }
        (false, false) => {
            c.problem(
                inline.0,
                format!("both {} and {} are set", inline.0, file.0),
                format!(
                    "keep one: {} keeps the secret out of the config file",
                    file.0
                ),
            );
            String::new()
        }
        (true, true) => {
            c.problem(
                inline.0,
                format!("is missing ({what})"),
                format!("give {} = \"/path/to/secret\" (or {})", file.0, inline.0),
            );
            String::new()
        }
    }
}

/// The issuer must be an https URL with a host and no query or fragment
/// (OpenID Connect Discovery 1.0, section 2).
fn check_issuer(c: &mut Checker<'_>, issuer: &str) {
    let fix = "write the provider's issuer URL exactly as its discovery document states it, e.g. \"https://login.example.com/realms/corp\"";
    let problem = if issuer.is_empty() {
        Some("is missing".to_owned())
    } else {
        match issuer.parse::<http::Uri>() {
            Err(_) => Some(format!("{issuer:?} is not a URL")),
            Ok(u) if u.scheme_str() != Some("https") => Some(format!(
                "{issuer:?} is not an https:// URL (OpenID Connect requires one)"
            )),
            Ok(u) if u.host().is_none_or(str::is_empty) => Some(format!("{issuer:?} has no host")),
            Ok(_) if issuer.contains('?') || issuer.contains('#') => Some(format!(
                "{issuer:?} has a query or fragment, which an issuer may not"
            )),
            Ok(_) => None,
        }
    };
    if let Some(p) = problem {
        c.problem("issuer", p, fix);
    }
}

/// Allow lists (of a provider, or of an app); keys are relative.
pub(super) fn rules(
    c: &mut Checker<'_>,
    users: &[String],
    groups: &[String],
    domains: &[String],
) -> Rules {
    let mut empty = |key: &str, list: &[String]| {
        if list.iter().any(|v| v.trim().is_empty()) {
            c.problem(
                key,
                "has an empty entry",
                "remove it: an empty entry matches nothing",
            );
        }
    };
    empty("allowed_users", users);
    empty("allowed_groups", groups);
    empty("allowed_domains", domains);
    for d in domains {
        if d.starts_with('@') || d.starts_with('.') || d.contains('*') {
            c.problem(
                "allowed_domains",
                format!("{d:?} is not a bare domain"),
                "write the email domain alone, e.g. \"example.com\" (subdomains are listed each)",
            );
        }
    }
    Rules {
        users: users.to_vec(),
        groups: groups.to_vec(),
        domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::Human;
    use crate::validate::checker::{assert_problem, check};

    #[test]
    fn defaults_are_valid() {
        let (a, problems) = check(|c| validate(c, &RawAuth::default()));
        assert_eq!(problems, []);
        assert_eq!(a.idle_timeout, Duration::from_secs(3600));
        assert_eq!(a.absolute_timeout, Duration::from_secs(12 * 3600));
        assert!(a.system_account && a.basic_auth);
    }

    #[test]
    fn bad_values_are_named_relative_to_the_section() {
        let raw = RawAuth {
            idle_timeout: Human::Str("2d".into()),
            absolute_timeout: Human::Str("0s".into()),
            ..RawAuth::default()
        };
        let (_, problems) = check(|c| validate(c, &raw));
        assert_problem(&problems, "absolute_timeout", "must be at least 1s");
        assert_problem(
            &problems,
            "idle_timeout",
            "is longer than auth.absolute_timeout",
        );
        assert_eq!(problems.len(), 2, "{problems:#?}");
    }

    fn corp() -> RawOidc {
        RawOidc {
            name: "corp".into(),
            issuer: "https://login.example.com/realms/corp".into(),
            client_id: "moat".into(),
            client_secret: "s3cret".into(),
            ..RawOidc::default()
        }
    }

    #[test]
    fn a_provider_gets_defaults_and_keeps_its_secret_out_of_debug() {
        let raw = RawAuth {
            oidc: vec![corp()],
            ..RawAuth::default()
        };
        let (a, problems) = check(|c| validate(c, &raw));
        assert_eq!(problems, []);
        let p = &a.oidc[0];
        assert_eq!(p.scopes, ["openid", "email", "profile"]);
        assert_eq!(
            (p.groups_claim.as_str(), p.user_claim.as_str()),
            ("groups", "email")
        );
        assert_eq!(p.display_name, "corp");
        assert!(!format!("{p:?}{:?}", raw.oidc[0]).contains("s3cret"));
    }

    #[test]
    fn provider_mistakes_are_named() {
        let raw = RawAuth {
            oidc: vec![
                RawOidc {
                    issuer: "htps://login.example.com".into(),
                    client_secret: String::new(),
                    scopes: Some(vec!["email".into()]),
                    allowed_domains: vec!["@example.com".into()],
                    ..corp()
                },
                RawOidc {
                    name: "Corp Login".into(),
                    issuer: "https://x.example/?a=1".into(),
                    client_secret_file: "/nonexistent/secret".into(),
                    ..corp()
                },
                corp(),
            ],
            ..RawAuth::default()
        };
        let (_, problems) = check(|c| validate(c, &raw));
        assert_problem(&problems, "oidc[0].issuer", "is not an https:// URL");
        assert_problem(&problems, "oidc[0].client_secret", "is missing");
        assert_problem(&problems, "oidc[0].scopes", "does not include \"openid\"");
        assert_problem(&problems, "oidc[0].allowed_domains", "is not a bare domain");
        assert_problem(&problems, "oidc[1].name", "is not a provider name");
        assert_problem(&problems, "oidc[1].issuer", "has a query or fragment");
        assert_problem(
            &problems,
            "oidc[1].client_secret",
            "both client_secret and client_secret_file",
        );
        assert_problem(&problems, "oidc[2].name", "is used twice");
        assert_eq!(problems.len(), 8, "{problems:#?}");
    }

    #[test]
    fn captcha_settings_are_checked() {
        let pow = RawAuth {
            captcha: RawCaptcha {
                provider: "pow".into(),
                ..RawCaptcha::default()
            },
            ..RawAuth::default()
        };
        let (a, problems) = check(|c| validate(c, &pow));
        assert_eq!(problems, []);
        assert_eq!(
            a.captcha,
            Some(Captcha {
                after_failures: 3,
                kind: CaptchaKind::Pow { difficulty: 18 }
            })
        );
        let hosted = RawAuth {
            captcha: RawCaptcha {
                provider: "turnstile".into(),
                secret: "top-secret".into(),
                verify_url: "http://verify.example/siteverify".into(),
                ..RawCaptcha::default()
            },
            ..RawAuth::default()
        };
        let (a, problems) = check(|c| validate(c, &hosted));
        assert_problem(&problems, "captcha.site_key", "needs the site key");
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert_problem(&problems, "captcha.verify_url", "is not an https:// URL");
        assert!(!format!("{a:?}{hosted:?}").contains("top-secret"));
        let bad = RawAuth {
            captcha: RawCaptcha {
                provider: "recaptcha-v9".into(),
                ..RawCaptcha::default()
            },
            ..RawAuth::default()
        };
        let (_, problems) = check(|c| validate(c, &bad));
        assert_problem(&problems, "captcha.provider", "is not a captcha provider");
    }
}
