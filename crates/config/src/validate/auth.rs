//! Validates `[auth]`: how people sign in to apps and how long a session
//! lasts.

use std::time::Duration;

use super::checker::Checker;
use crate::model::Auth;
use crate::raw::RawAuth;

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
}
