//! Validates Content-Security-Policy settings: the base policy and
//! server-wide approvals of `[csp]`, and an app's admin layer (`[apps.csp]`,
//! or the `csp` of a bundle's `config.json`).

use std::path::Path;

use moat_policy::csp::{self, AllowRule, Grant, Policy, SourcePattern};

use super::checker::Checker;
use crate::model::{AppCsp, Csp};
use crate::raw::{RawAppCsp, RawCsp};

/// `[csp]`; keys are relative to `csp.`.
pub(super) fn validate(c: &mut Checker<'_>, raw: &RawCsp) -> Csp {
    let allow_unsafe = grants(c, "allow_unsafe", &raw.allow_unsafe, None);
    let base = match Policy::parse(&raw.policy) {
        Ok(p) => p,
        Err(errors) => {
            for e in errors {
                c.problem(
                    "policy",
                    e.message,
                    e.fix.unwrap_or_else(|| "correct the policy".into()),
                );
            }
            Policy::default()
        }
    };
    for (d, sources) in &base.directives {
        for s in sources {
            if let Some(why) = csp::danger(d, s) {
                let g = Grant {
                    directive: d.clone(),
                    source: s.clone(),
                };
                if !allow_unsafe.contains(&g) {
                    c.problem(
                        "policy",
                        format!("{g} is dangerous: {why}"),
                        format!("remove it, or if you accept the risk for every app, list \"{g}\" in csp.allow_unsafe"),
                    );
                }
            }
        }
    }
    let mut rules = Vec::new();
    for (i, r) in raw.allow.iter().enumerate() {
        let directive = match r.directive.as_deref().map(csp::check_directive) {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                c.problem(
                    format!("allow[{i}].directive"),
                    e.message,
                    e.fix.unwrap_or_default(),
                );
                continue;
            }
            None => None,
        };
        match SourcePattern::parse(&r.source) {
            Ok(pattern) => rules.push(AllowRule { directive, pattern }),
            Err(e) => c.problem(
                format!("allow[{i}].source"),
                e.message,
                e.fix
                    .unwrap_or_else(|| "write an exact source, or regex:PATTERN".into()),
            ),
        }
    }
    Csp {
        base,
        report_only: raw.report_only,
        rules,
    }
}

/// An app's admin CSP layer. From moat.toml (`file` = None) keys are
/// relative to the app's `csp.`; from a file, every problem goes on the
/// scope's own key with the file and entry named in the message.
pub(super) fn app_layer(c: &mut Checker<'_>, l: &RawAppCsp, file: Option<&Path>) -> AppCsp {
    let allow_unsafe = grants(c, "allow_unsafe", &l.allow_unsafe, file);
    let add = grants(c, "add", &l.add, file);
    for (i, g) in add.iter().enumerate() {
        let danger = csp::danger(&g.directive, &g.source).filter(|_| !allow_unsafe.contains(g));
        if let Some(why) = danger {
            let (k, message) = match file {
                Some(f) => (
                    String::new(),
                    format!("{}: csp.add[{i}]: {g} is dangerous: {why}", f.display()),
                ),
                None => (format!("add[{i}]"), format!("{g} is dangerous: {why}")),
            };
            c.problem(
                k,
                message,
                format!("if you accept the risk for this app, also list \"{g}\" in allow_unsafe"),
            );
        }
    }
    AppCsp {
        requested: Vec::new(),
        add,
        remove: grants(c, "remove", &l.remove, file),
        approve: grants(c, "approve", &l.approve, file),
        approve_all: l.approve_all,
        allow_unsafe,
        report_only: l.report_only,
        nonce: l.nonce,
    }
}

/// "DIRECTIVE SOURCE" entries → grants. Problems go on `list_name[i]`, or,
/// for a layer read from a file, on the scope's own key with the file named
/// in the message.
fn grants(
    c: &mut Checker<'_>,
    list_name: &str,
    items: &[String],
    file: Option<&Path>,
) -> Vec<Grant> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let parsed = match item.trim().split_once(char::is_whitespace) {
            Some((d, s)) => Grant::new(d, s.trim()),
            None => Err(csp::CspError {
                message: format!("{item:?} is not \"DIRECTIVE SOURCE\""),
                fix: Some("write the directive and the source, e.g. \"connect-src https://api.example.com\"".into()),
            }),
        };
        match parsed {
            Ok(g) => out.push(g),
            Err(e) => {
                let (k, message) = match file {
                    Some(f) => (
                        String::new(),
                        format!("{}: csp.{list_name}[{i}]: {}", f.display(), e.message),
                    ),
                    None => (format!("{list_name}[{i}]"), e.message),
                };
                c.problem(
                    k,
                    message,
                    e.fix.unwrap_or_else(|| "correct the entry".into()),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::RawAllowRule;
    use crate::validate::checker::{assert_problem, check};

    #[test]
    fn a_policy_with_its_dangers_allowed_is_kept() {
        let raw = RawCsp {
            policy: "default-src 'self' 'unsafe-inline'".into(),
            allow_unsafe: vec!["default-src 'unsafe-inline'".into()],
            allow: vec![RawAllowRule {
                source: "https://cdn.example.com".into(),
                directive: Some("script-src".into()),
            }],
            ..RawCsp::default()
        };
        let (csp, problems) = check(|c| validate(c, &raw));
        assert_eq!(problems, []);
        assert_eq!(csp.base.to_string(), "default-src 'self' 'unsafe-inline'");
        assert_eq!(csp.rules.len(), 1);
    }

    #[test]
    fn bad_values_are_named_relative_to_the_section() {
        let raw = RawCsp {
            policy: "default-src 'self'; script-src 'unsafe-inline'".into(),
            allow_unsafe: vec!["nospace".into()],
            allow: vec![
                RawAllowRule {
                    source: "regex:(".into(),
                    directive: None,
                },
                RawAllowRule {
                    source: "https://x.example".into(),
                    directive: Some("bogus-src".into()),
                },
            ],
            ..RawCsp::default()
        };
        let (_, problems) = check(|c| validate(c, &raw));
        assert_problem(
            &problems,
            "allow_unsafe[0]",
            "\"nospace\" is not \"DIRECTIVE SOURCE\"",
        );
        assert_problem(
            &problems,
            "policy",
            "script-src 'unsafe-inline' is dangerous",
        );
        assert_problem(
            &problems,
            "allow[0].source",
            "not a valid regular expression",
        );
        assert_problem(
            &problems,
            "allow[1].directive",
            "\"bogus-src\" is not a CSP directive",
        );
        assert_eq!(problems.len(), 4, "{problems:#?}");
    }

    #[test]
    fn an_app_layer_names_entries_or_its_file() {
        let raw = RawAppCsp {
            add: vec![
                "img-src https://i.example".into(),
                "script-src 'unsafe-inline'".into(),
            ],
            remove: vec!["x".into()],
            ..RawAppCsp::default()
        };
        let (layer, problems) = check(|c| app_layer(c, &raw, None));
        assert_eq!(layer.add.len(), 2);
        assert_problem(
            &problems,
            "add[1]",
            "script-src 'unsafe-inline' is dangerous",
        );
        assert_problem(&problems, "remove[0]", "\"x\" is not \"DIRECTIVE SOURCE\"");
        assert_eq!(problems.len(), 2, "{problems:#?}");

        let file = Path::new("/srv/notes/config.json");
        let (_, problems) = check(|c| c.scope("static", |c| app_layer(c, &raw, Some(file))));
        assert_problem(
            &problems,
            "static",
            "/srv/notes/config.json: csp.add[1]: script-src 'unsafe-inline' is dangerous",
        );
        assert_problem(
            &problems,
            "static",
            "/srv/notes/config.json: csp.remove[0]: \"x\"",
        );
        assert_eq!(problems.len(), 2, "{problems:#?}");

        let raw = RawAppCsp {
            add: vec!["script-src 'unsafe-eval'".into()],
            allow_unsafe: vec!["script-src 'unsafe-eval'".into()],
            ..RawAppCsp::default()
        };
        let (_, problems) = check(|c| app_layer(c, &raw, None));
        assert_eq!(problems, []);
    }
}
