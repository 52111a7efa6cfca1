//! Validates the security headers: `[headers]` for every app, and an app's
//! `[apps.headers]` overrides.

use super::checker::Checker;
use crate::model::{HeaderOverrides, Headers};
use crate::raw::{RawAppHeaders, RawHeaders};

const FRAME_OPTIONS: &[&str] = &["DENY", "SAMEORIGIN"];
const CONTENT_TYPE_OPTIONS: &[&str] = &["nosniff"];
const REFERRER_POLICY: &[&str] = &[
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
];
const COOP: &[&str] = &[
    "same-origin",
    "same-origin-allow-popups",
    "noopener-allow-popups",
    "unsafe-none",
];
const COEP: &[&str] = &["require-corp", "credentialless", "unsafe-none"];
const CORP: &[&str] = &["same-origin", "same-site", "cross-origin"];

/// `[headers]`; keys are relative to `headers.`.
pub(super) fn validate(c: &mut Checker<'_>, h: &RawHeaders) -> Headers {
    Headers {
        frame_options: setting(c, "frame_options", &h.frame_options, FRAME_OPTIONS),
        content_type_options: setting(
            c,
            "content_type_options",
            &h.content_type_options,
            CONTENT_TYPE_OPTIONS,
        ),
        referrer_policy: setting(c, "referrer_policy", &h.referrer_policy, REFERRER_POLICY),
        cross_origin_opener_policy: setting(
            c,
            "cross_origin_opener_policy",
            &h.cross_origin_opener_policy,
            COOP,
        ),
        cross_origin_embedder_policy: setting(
            c,
            "cross_origin_embedder_policy",
            &h.cross_origin_embedder_policy,
            COEP,
        ),
        cross_origin_resource_policy: setting(
            c,
            "cross_origin_resource_policy",
            &h.cross_origin_resource_policy,
            CORP,
        ),
        permissions_policy: setting(c, "permissions_policy", &h.permissions_policy, &[]),
        hide_upstream: hide_list(c, "hide_upstream", &h.hide_upstream),
    }
}

/// `[apps.headers]`; keys are relative to the app's `headers.`.
pub(super) fn app_overrides(c: &mut Checker<'_>, h: &RawAppHeaders) -> HeaderOverrides {
    let one = |c: &mut Checker<'_>, key: &str, v: &Option<String>, allowed: &[&str]| {
        v.as_ref().map(|v| setting(c, key, v, allowed))
    };
    HeaderOverrides {
        frame_options: one(c, "frame_options", &h.frame_options, FRAME_OPTIONS),
        content_type_options: one(
            c,
            "content_type_options",
            &h.content_type_options,
            CONTENT_TYPE_OPTIONS,
        ),
        referrer_policy: one(c, "referrer_policy", &h.referrer_policy, REFERRER_POLICY),
        cross_origin_opener_policy: one(
            c,
            "cross_origin_opener_policy",
            &h.cross_origin_opener_policy,
            COOP,
        ),
        cross_origin_embedder_policy: one(
            c,
            "cross_origin_embedder_policy",
            &h.cross_origin_embedder_policy,
            COEP,
        ),
        cross_origin_resource_policy: one(
            c,
            "cross_origin_resource_policy",
            &h.cross_origin_resource_policy,
            CORP,
        ),
        permissions_policy: one(c, "permissions_policy", &h.permissions_policy, &[]),
        hide_upstream: hide_list(c, "hide_upstream", &h.hide_upstream),
    }
}

/// A header setting: "off" (any case) turns it off; otherwise one of
/// `allowed` (case-insensitively, returned as listed), or any valid header
/// value when `allowed` is empty.
fn setting(c: &mut Checker<'_>, key: &str, v: &str, allowed: &[&str]) -> Option<String> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("off") {
        return None;
    }
    if allowed.is_empty() {
        if v.is_empty() || http::HeaderValue::from_str(v).is_err() {
            c.problem(
                key,
                format!("{v:?} is not a valid header value"),
                "write the header value, or \"off\"",
            );
        }
        return Some(v.to_owned());
    }
    // A comma list of tokens (Referrer-Policy allows fallbacks).
    let ok = v
        .split(',')
        .map(str::trim)
        .all(|t| allowed.iter().any(|a| a.eq_ignore_ascii_case(t)));
    if !ok {
        c.problem(
            key,
            format!("{v:?} is not a value moat knows for this header"),
            format!("use one of {}, or \"off\"", allowed.join(", ")),
        );
        return None;
    }
    Some(
        v.split(',')
            .map(|t| {
                let t = t.trim();
                allowed
                    .iter()
                    .find(|a| a.eq_ignore_ascii_case(t))
                    .copied()
                    .unwrap_or(t)
            })
            .collect::<Vec<_>>()
            .join(", "),
    )
}

fn hide_list(c: &mut Checker<'_>, key: &str, names: &[String]) -> Vec<String> {
    names
        .iter()
        .enumerate()
        .filter_map(
            |(i, n)| match http::HeaderName::from_bytes(n.trim().as_bytes()) {
                Ok(h) => Some(h.as_str().to_owned()),
                Err(_) => {
                    c.problem(
                        format!("{key}[{i}]"),
                        format!("{n:?} is not a header name"),
                        "write a header name such as \"X-Debug-Token\"",
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
    use crate::validate::checker::{assert_problem, check};

    #[test]
    fn values_are_canonical_and_off_turns_a_header_off() {
        let raw = RawHeaders {
            frame_options: "deny".into(),
            referrer_policy: "NO-REFERRER, strict-origin".into(),
            permissions_policy: "OFF".into(),
            hide_upstream: vec!["X-Debug-Token".into()],
            ..RawHeaders::default()
        };
        let (h, problems) = check(|c| validate(c, &raw));
        assert_eq!(problems, []);
        assert_eq!(h.frame_options.as_deref(), Some("DENY"));
        assert_eq!(
            h.referrer_policy.as_deref(),
            Some("no-referrer, strict-origin")
        );
        assert_eq!(h.permissions_policy, None);
        assert_eq!(h.hide_upstream, ["x-debug-token"]);
    }

    #[test]
    fn bad_values_are_named_relative_to_the_section() {
        let raw = RawHeaders {
            frame_options: "ALLOWALL".into(),
            referrer_policy: "no-referrer, bogus".into(),
            permissions_policy: String::new(),
            hide_upstream: vec!["bad header".into()],
            ..RawHeaders::default()
        };
        let (_, problems) = check(|c| validate(c, &raw));
        assert_problem(
            &problems,
            "frame_options",
            "\"ALLOWALL\" is not a value moat knows for this header",
        );
        assert_problem(&problems, "referrer_policy", "\"no-referrer, bogus\"");
        assert_problem(
            &problems,
            "permissions_policy",
            "\"\" is not a valid header value",
        );
        assert_problem(
            &problems,
            "hide_upstream[0]",
            "\"bad header\" is not a header name",
        );
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert_eq!(
            problems[0].fix.as_deref(),
            Some("use one of DENY, SAMEORIGIN, or \"off\"")
        );
    }

    #[test]
    fn app_overrides_keep_what_the_app_leaves_out() {
        let raw = RawAppHeaders {
            frame_options: Some("off".into()),
            cross_origin_embedder_policy: Some("REQUIRE-CORP".into()),
            content_type_options: Some("sniff".into()),
            ..RawAppHeaders::default()
        };
        let (o, problems) = check(|c| app_overrides(c, &raw));
        assert_eq!(o.frame_options, Some(None));
        assert_eq!(
            o.cross_origin_embedder_policy,
            Some(Some("require-corp".into()))
        );
        assert_eq!(o.referrer_policy, None);
        assert_problem(
            &problems,
            "content_type_options",
            "\"sniff\" is not a value",
        );
        assert_eq!(problems.len(), 1, "{problems:#?}");
    }
}
