//! Validates an app's `[apps.cors]`: allowed origins, methods and headers,
//! and how long a browser may cache the answer to a preflight.

use std::time::Duration;

use moat_policy::cors::{CorsPolicy, OriginPattern};

use super::checker::Checker;
use crate::raw::RawCors;

const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Keys are relative to the app's `cors.`. `None` when anything was wrong.
pub(super) fn validate(c: &mut Checker<'_>, r: &RawCors) -> Option<CorsPolicy> {
    let before = c.problem_count();
    if r.allow_origin.is_empty() {
        c.problem(
            "allow_origin",
            "is empty, so no origin could ever be allowed",
            "list the origins, e.g. [\"https://app.example.com\"], or remove [apps.cors]",
        );
    }
    let mut origins = Vec::new();
    for (i, o) in r.allow_origin.iter().enumerate() {
        match OriginPattern::parse(o) {
            Ok(p) => {
                if r.allow_credentials && matches!(p, OriginPattern::Any) {
                    c.problem(
                        format!("allow_origin[{i}]"),
                        "\"*\" cannot be combined with allow_credentials = true (browsers refuse it, and it would let every site read signed-in responses)",
                        "list the origins that may send credentials, or set allow_credentials = false",
                    );
                }
                origins.push(p);
            }
            Err(e) => c.problem(
                format!("allow_origin[{i}]"),
                e,
                "write an origin (https://app.example.com), a wildcard subdomain (https://*.example.com), regex:PATTERN, \"origin\" or \"*\"",
            ),
        }
    }
    let mut methods = Vec::new();
    for (i, m) in r.allow_methods.iter().enumerate() {
        let upper = m.trim().to_ascii_uppercase();
        match upper.parse::<http::Method>() {
            Ok(method)
                if HTTP_METHODS.contains(&upper.as_str())
                    || upper.bytes().all(|b| b.is_ascii_uppercase()) =>
            {
                methods.push(method)
            }
            _ => c.problem(
                format!("allow_methods[{i}]"),
                format!("{m:?} is not an HTTP method"),
                "write e.g. \"GET\" or \"PUT\"",
            ),
        }
    }
    let allow_headers = header_names(c, "allow_headers", &r.allow_headers);
    let expose_headers = header_names(c, "expose_headers", &r.expose_headers);
    let max_age = r.max_age.as_ref().map(|m| {
        c.duration("max_age", m, Duration::ZERO)
            .as_secs()
            .min(u64::from(u32::MAX)) as u32
    });
    if c.problem_count() > before {
        return None;
    }
    Some(CorsPolicy {
        origins,
        methods,
        allow_headers,
        expose_headers,
        max_age,
        credentials: r.allow_credentials,
    })
}

/// Header names, lower-cased.
fn header_names(c: &mut Checker<'_>, key: &str, list: &[String]) -> Vec<String> {
    list.iter()
        .enumerate()
        .filter_map(
            |(i, h)| match http::HeaderName::from_bytes(h.trim().as_bytes()) {
                Ok(n) => Some(n.as_str().to_owned()),
                Err(_) => {
                    c.problem(
                        format!("{key}[{i}]"),
                        format!("{h:?} is not a header name"),
                        "write e.g. \"Content-Type\"",
                    );
                    None
                }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::Human;
    use crate::validate::checker::{assert_problem, check};

    #[test]
    fn a_good_policy_is_built() {
        let raw = RawCors {
            allow_origin: vec![
                "https://app.example.com".into(),
                "https://*.example.com".into(),
            ],
            allow_methods: vec!["put".into(), "PROPFIND".into()],
            allow_headers: vec!["X-Api-Key".into()],
            max_age: Some(Human::Str("10m".into())),
            allow_credentials: true,
            ..RawCors::default()
        };
        let (p, problems) = check(|c| validate(c, &raw));
        assert_eq!(problems, []);
        let p = p.unwrap();
        assert_eq!(p.origins.len(), 2);
        assert_eq!(
            p.methods,
            [
                http::Method::PUT,
                http::Method::from_bytes(b"PROPFIND").unwrap()
            ]
        );
        assert_eq!(p.allow_headers, ["x-api-key"]);
        assert_eq!(p.max_age, Some(600));
        assert!(p.credentials);
    }

    #[test]
    fn bad_values_are_named_relative_to_the_section() {
        let raw = RawCors {
            allow_origin: vec!["*".into(), "nope://".into()],
            allow_methods: vec!["BAD METHOD".into()],
            allow_headers: vec!["bad header".into()],
            expose_headers: vec![String::new()],
            max_age: Some(Human::Str("x".into())),
            allow_credentials: true,
        };
        let (p, problems) = check(|c| validate(c, &raw));
        assert!(p.is_none());
        assert_problem(
            &problems,
            "allow_origin[0]",
            "\"*\" cannot be combined with allow_credentials",
        );
        assert_problem(&problems, "allow_origin[1]", "\"nope://\"");
        assert_problem(
            &problems,
            "allow_methods[0]",
            "\"BAD METHOD\" is not an HTTP method",
        );
        assert_problem(
            &problems,
            "allow_headers[0]",
            "\"bad header\" is not a header name",
        );
        assert_problem(&problems, "expose_headers[0]", "\"\" is not a header name");
        assert_problem(&problems, "max_age", "\"x\" is not a duration");
        assert_eq!(problems.len(), 6, "{problems:#?}");

        let (p, problems) = check(|c| validate(c, &RawCors::default()));
        assert!(p.is_none());
        assert_problem(
            &problems,
            "allow_origin",
            "is empty, so no origin could ever be allowed",
        );
    }
}
