//! Validates `[security]`: trusted proxies, the admin account and the
//! server-wide CSRF settings.

use moat_policy::client_ip::TrustedProxies;

use super::checker::Checker;
use crate::model::Security;
use crate::raw::RawSecurity;

/// Keys are relative to `security.`. Whether `admin_over_tcp` can be
/// served depends on `[tls]`, so the caller checks that.
pub(super) fn validate(c: &mut Checker<'_>, s: &RawSecurity) -> Security {
    let trusted_proxies = c.nets("trusted_proxies", &s.trusted_proxies);
    let csrf_trusted_origins = c.origins("csrf_trusted_origins", &s.csrf_trusted_origins);
    let admin_password_bcrypt = match s.admin_password_bcrypt.trim() {
        "" => None,
        h if is_bcrypt_hash(h) => Some(h.to_owned()),
        _ => {
            c.problem(
                "admin_password_bcrypt",
                "is not a bcrypt hash",
                "run `moat password` (or `moat password --prompt`) and paste the hash it prints, e.g. \"$2b$12$...\"",
            );
            None
        }
    };
    let user = &s.admin_user;
    if user.is_empty()
        || user.len() > 64
        || !user.bytes().all(|b| b.is_ascii_graphic() && b != b':')
    {
        c.problem(
            "admin_user",
            format!("{user:?} is not a usable user name"),
            "use 1-64 visible ASCII characters without ':' (the default is \"admin\")",
        );
    }
    Security {
        trusted_proxies: TrustedProxies::new(trusted_proxies),
        admin_password_bcrypt,
        admin_user: s.admin_user.clone(),
        admin_over_tcp: s.admin_over_tcp,
        disable_csrf_protection: s.disable_csrf_protection,
        csrf_trusted_origins,
    }
}

/// `$2b$12$` + 53 characters of bcrypt's base64 (salt and hash), with cost
/// 4 to 31.
fn is_bcrypt_hash(h: &str) -> bool {
    let parts: Vec<&str> = h.split('$').collect();
    matches!(parts.as_slice(), ["", v, cost, rest]
        if matches!(*v, "2a" | "2b" | "2x" | "2y")
            && cost.len() == 2
            && cost.parse::<u32>().is_ok_and(|c| (4..=31).contains(&c))
            && rest.len() == 53
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::checker::{assert_problem, check};

    const HASH: &str = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";

    #[test]
    fn good_values_are_kept() {
        let raw = RawSecurity {
            trusted_proxies: vec!["10.0.0.0/8".into(), "::1".into()],
            csrf_trusted_origins: vec!["https://sso.example.com".into()],
            admin_password_bcrypt: format!(" {HASH} "),
            admin_over_tcp: true,
            ..RawSecurity::default()
        };
        let (s, problems) = check(|c| validate(c, &raw));
        assert_eq!(problems, []);
        assert_eq!(s.admin_password_bcrypt.as_deref(), Some(HASH));
        assert_eq!(s.admin_user, "admin");
        assert_eq!(s.csrf_trusted_origins, ["https://sso.example.com"]);
        assert!(s.admin_over_tcp && !s.trusted_proxies.is_empty());
    }

    #[test]
    fn bad_values_are_named_relative_to_the_section() {
        let raw = RawSecurity {
            trusted_proxies: vec!["10.0.0.0/8".into(), "not-an-ip".into()],
            csrf_trusted_origins: vec!["*".into()],
            admin_password_bcrypt: "hunter2".into(),
            admin_user: "a:b".into(),
            ..RawSecurity::default()
        };
        let (s, problems) = check(|c| validate(c, &raw));
        assert_problem(
            &problems,
            "trusted_proxies[1]",
            "\"not-an-ip\" is not an IP address",
        );
        assert_problem(
            &problems,
            "csrf_trusted_origins[0]",
            "\"*\" is not an exact origin",
        );
        assert_problem(&problems, "admin_password_bcrypt", "is not a bcrypt hash");
        assert_problem(&problems, "admin_user", "\"a:b\" is not a usable user name");
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert_eq!(s.admin_password_bcrypt, None);
    }

    #[test]
    fn bcrypt_hashes_need_a_known_version_and_cost() {
        assert!(is_bcrypt_hash(HASH));
        assert!(!is_bcrypt_hash(&HASH.replace("$12$", "$03$")));
        assert!(!is_bcrypt_hash(&HASH.replace("$2b$", "$2c$")));
        assert!(!is_bcrypt_hash(&HASH[..HASH.len() - 1]));
    }
}
