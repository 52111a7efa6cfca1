//! Who may use an app once signed in: the signed-in identity, where it
//! came from, and the allow rules of its provider and of the app.
//!
//! Rules are lists of user names, groups and email domains. An empty rule
//! set allows everyone the source signed in; a non-empty one allows an
//! identity that matches any entry of any of its lists. A provider's
//! rules and an app's rules must both allow: the app's can only narrow.

use std::fmt;

/// Where a signed-in identity came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// moat's own account (password, optionally a second factor).
    System,
    /// An OpenID Connect provider, by its configured name.
    Oidc(String),
}

impl Source {
    /// Parses the form an app's `auth` names a source by: `system` or
    /// `oidc:NAME`.
    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "system" => Some(Source::System),
            _ => s
                .strip_prefix("oidc:")
                .filter(|n| is_provider_name(n))
                .map(|n| Source::Oidc(n.to_owned())),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::System => f.write_str("system"),
            Source::Oidc(n) => write!(f, "oidc:{n}"),
        }
    }
}

/// A provider's name: what `oidc:NAME` and its callback path carry, so
/// only characters that need no escaping anywhere.
pub fn is_provider_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A signed-in person, as apps are told about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    /// Only an address the provider did not say is unverified.
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub source: Source,
}

impl Identity {
    /// The system account's identity.
    pub fn system(user: impl Into<String>) -> Identity {
        Identity {
            user: user.into(),
            email: None,
            groups: Vec::new(),
            source: Source::System,
        }
    }
}

/// Allow lists. Users match the identity's user name or email (emails
/// without regard to case); domains match the email's domain exactly
/// (`example.com` does not allow `mail.example.com`: list each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub domains: Vec<String>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && self.domains.is_empty()
    }

    /// Whether these rules allow `id`.
    pub fn allow(&self, id: &Identity) -> bool {
        if self.is_empty() {
            return true;
        }
        let email = id.email.as_deref();
        // An entry that looks like an email matches only the verified
        // email, never a user name (which a provider may let people set).
        let user = self.users.iter().any(|u| {
            if u.contains('@') {
                email.is_some_and(|e| e.eq_ignore_ascii_case(u))
            } else {
                *u == id.user
            }
        });
        let group = self.groups.iter().any(|g| id.groups.contains(g));
        let domain = email
            .and_then(|e| e.rsplit_once('@'))
            .is_some_and(|(_, d)| self.domains.iter().any(|x| x.eq_ignore_ascii_case(d)));
        user || group || domain
    }
}

/// Why a signed-in identity may not use an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The provider's own rules leave this identity out.
    Provider,
    /// The app's rules leave this identity out.
    App,
}

/// Whether `id`, signed in through a source the app accepts, may use it.
/// The system account is the gateway's administrator: the allow lists,
/// which are about a provider's users, do not apply to it.
pub fn decide(id: &Identity, provider: &Rules, app: &Rules) -> Result<(), Refusal> {
    if id.source == Source::System {
        return Ok(());
    }
    if !provider.allow(id) {
        return Err(Refusal::Provider);
    }
    if !app.allow(id) {
        return Err(Refusal::App);
    }
    Ok(())
}

/// What the `X-Moat-Groups` header carries: the groups joined by commas,
/// each percent-encoded where it holds a comma, a percent sign or a byte
/// a header cannot carry, so the list splits back unambiguously.
pub fn groups_header(groups: &[String]) -> String {
    let mut out = String::new();
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for b in g.bytes() {
            if b == b',' || b == b'%' || !(0x20..0x7f).contains(&b) {
                out.push_str(&format!("%{b:02X}"));
            } else {
                out.push(b as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity {
            user: "alice".into(),
            email: Some("Alice@Example.com".into()),
            groups: vec!["staff".into(), "eng".into()],
            source: Source::Oidc("corp".into()),
        }
    }

    fn rules(users: &[&str], groups: &[&str], domains: &[&str]) -> Rules {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Rules {
            users: v(users),
            groups: v(groups),
            domains: v(domains),
        }
    }

    #[test]
    fn sources_parse_and_print() {
        assert_eq!(Source::parse("system"), Some(Source::System));
        assert_eq!(
            Source::parse("oidc:corp"),
            Some(Source::Oidc("corp".into()))
        );
        assert_eq!(Source::parse("oidc:"), None);
        assert_eq!(Source::parse("oidc:Corp"), None);
        assert_eq!(Source::parse("oidc:a/b"), None);
        assert_eq!(Source::parse("ldap"), None);
        assert_eq!(Source::Oidc("corp".into()).to_string(), "oidc:corp");
    }

    #[test]
    fn empty_rules_allow_and_any_match_allows() {
        let a = alice();
        assert!(Rules::default().allow(&a));
        assert!(rules(&["alice"], &[], &[]).allow(&a));
        assert!(rules(&["alice@example.com"], &[], &[]).allow(&a));
        assert!(rules(&["bob"], &["eng"], &[]).allow(&a));
        assert!(rules(&[], &[], &["example.COM"]).allow(&a));
        assert!(!rules(&["bob"], &["ops"], &["other.org"]).allow(&a));
        assert!(!rules(&[], &[], &["mail.example.com"]).allow(&a));
        // Group names are exact: no case folding, no prefixes.
        assert!(!rules(&[], &["Eng"], &[]).allow(&a));
        assert!(!rules(&[], &["en"], &[]).allow(&a));
    }

    #[test]
    fn an_unverified_or_missing_email_matches_no_domain() {
        let mut a = alice();
        a.email = None;
        assert!(!rules(&[], &[], &["example.com"]).allow(&a));
        assert!(!rules(&["alice@example.com"], &[], &[]).allow(&a));
        // A user name shaped like an email is not an email.
        let mut b = alice();
        b.email = None;
        b.user = "ceo@example.com".into();
        assert!(!rules(&["ceo@example.com"], &[], &[]).allow(&b));
    }

    #[test]
    fn the_app_narrows_the_provider() {
        let a = alice();
        let corp = rules(&[], &["staff"], &[]);
        assert_eq!(decide(&a, &corp, &Rules::default()), Ok(()));
        assert_eq!(decide(&a, &corp, &rules(&[], &["eng"], &[])), Ok(()));
        assert_eq!(
            decide(&a, &corp, &rules(&[], &["ops"], &[])),
            Err(Refusal::App)
        );
        // The app cannot widen what the provider refuses.
        assert_eq!(
            decide(&a, &rules(&[], &["ops"], &[]), &rules(&["alice"], &[], &[])),
            Err(Refusal::Provider)
        );
        // No groups claim at all: a group rule refuses.
        let mut nogroups = a.clone();
        nogroups.groups.clear();
        assert_eq!(
            decide(&nogroups, &corp, &Rules::default()),
            Err(Refusal::Provider)
        );
        // The system account is not subject to provider or app lists.
        assert_eq!(
            decide(&Identity::system("admin"), &corp, &rules(&["x"], &[], &[])),
            Ok(())
        );
    }

    #[test]
    fn groups_header_escapes_what_would_split() {
        let g = vec!["a,b".to_string(), "50%".into(), "plain".into(), "ü".into()];
        assert_eq!(groups_header(&g), "a%2Cb,50%25,plain,%C3%BC");
        assert_eq!(groups_header(&[]), "");
    }
}
