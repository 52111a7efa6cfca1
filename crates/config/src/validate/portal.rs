//! Validates `[portal]`: where the admin portal is served, how admins sign
//! in, and which of a provider's people are admins.

use std::time::Duration;

use moat_policy::access::{Rules, Source};

use super::checker::Checker;
use crate::model::{AppAuth, Portal};
use crate::raw::RawPortal;

/// Keys are relative to `portal.`. Whether each provider exists is checked
/// by the caller, against `[[auth.oidc]]`.
pub(super) fn validate(c: &mut Checker<'_>, p: &RawPortal) -> Portal {
    let host = c.host_name("host", &p.host);
    let sources = match super::apps::app_auth(c, Some(&p.auth)) {
        AppAuth::SignIn(s) => s,
        AppAuth::None | AppAuth::Cert => {
            c.problem(
                "auth",
                "the portal is for signed-in admins only",
                "write auth = \"system\" (the system account), \"oidc:NAME\", or a list of those",
            );
            vec![Source::System]
        }
    };
    let admins = Rules {
        users: p.admin_users.clone(),
        groups: p.admin_groups.clone(),
        domains: p
            .admin_domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
    };
    let providers = sources.iter().any(|s| matches!(s, Source::Oidc(_)));
    if providers && admins.is_empty() {
        c.problem(
            "admin_users",
            "portal.auth names a provider, but admin_users, admin_groups and admin_domains are empty, so nobody signing in through it would be an admin",
            "list the admins, e.g. admin_groups = [\"moat-admins\"] or admin_users = [\"alice@example.com\"]",
        );
    }
    if !providers && !admins.is_empty() {
        c.problem(
            "admin_users",
            "admin_users, admin_groups and admin_domains match people of OpenID providers, but portal.auth names none",
            "add the provider to portal.auth, e.g. auth = [\"system\", \"oidc:corp\"], or remove the lists",
        );
    }
    let idle_timeout = c.duration("idle_timeout", &p.idle_timeout, Duration::from_secs(1));
    Portal {
        enabled: p.enabled,
        host,
        sources,
        admins,
        idle_timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::RawAppAuth;
    use crate::validate::checker::{assert_problem, check};

    #[test]
    fn the_default_is_the_system_account_on_the_namespace() {
        let (p, problems) = check(|c| validate(c, &RawPortal::default()));
        assert_eq!(problems, []);
        assert!(p.enabled);
        assert_eq!(p.host, None);
        assert_eq!(p.sources, [Source::System]);
        assert_eq!(p.idle_timeout, Duration::from_secs(900));
        assert!(p.is_admin(&moat_policy::access::Identity::system("admin")));
    }

    #[test]
    fn provider_admins_need_a_list_and_a_list_needs_a_provider() {
        let raw = RawPortal {
            auth: RawAppAuth::Many(vec!["system".into(), "oidc:corp".into()]),
            ..RawPortal::default()
        };
        let (_, problems) = check(|c| validate(c, &raw));
        assert_problem(&problems, "admin_users", "nobody signing in through it");

        let raw = RawPortal {
            admin_groups: vec!["ops".into()],
            ..RawPortal::default()
        };
        let (_, problems) = check(|c| validate(c, &raw));
        assert_problem(&problems, "admin_users", "portal.auth names none");

        let raw = RawPortal {
            auth: RawAppAuth::One("none".into()),
            host: "moat.example.com:443".into(),
            ..RawPortal::default()
        };
        let (_, problems) = check(|c| validate(c, &raw));
        assert_problem(&problems, "auth", "signed-in admins only");
        assert_problem(&problems, "host", "is not a host name");
    }

    #[test]
    fn only_listed_provider_people_are_admins() {
        let raw = RawPortal {
            auth: RawAppAuth::Many(vec!["oidc:corp".into()]),
            admin_groups: vec!["ops".into()],
            ..RawPortal::default()
        };
        let (p, problems) = check(|c| validate(c, &raw));
        assert_eq!(problems, []);
        let person = |groups: &[&str], source: &str| moat_policy::access::Identity {
            user: "alice".into(),
            email: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            source: Source::parse(source).unwrap(),
        };
        assert!(p.is_admin(&person(&["ops"], "oidc:corp")));
        assert!(!p.is_admin(&person(&["dev"], "oidc:corp")));
        // The same group from a provider the portal does not trust.
        assert!(!p.is_admin(&person(&["ops"], "oidc:other")));
        // The system account, when the portal does not name it.
        assert!(!p.is_admin(&moat_policy::access::Identity::system("admin")));
    }
}
