//! References to secrets in configuration values (issue 15's first
//! piece): `{{secret:NAME}}` anywhere inside a value
//! (`"Bearer {{secret:grafana_token}}"`), or a whole value `secret:NAME`.
//!
//! This module only reads references: which names a value uses, and the
//! value with each reference replaced by what a resolver gives. Where
//! secrets come from (the environment, files, moat's encrypted store, a
//! cloud service) is the caller's business. Errors name the reference and
//! its position, never a resolved value.

use std::fmt;

/// How a reference inside a value starts and ends.
const OPEN: &str = "{{secret:";
const CLOSE: &str = "}}";
/// How a whole value names a secret.
const WHOLE: &str = "secret:";
/// The longest secret name accepted.
pub const MAX_NAME: usize = 128;

/// A piece of a value: text as written, or a secret's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part<'a> {
    Text(&'a str),
    Secret(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefError {
    /// `{{secret:` with no `}}` after it; the byte offset where it starts.
    Unterminated { at: usize },
    /// A name that is empty, too long, or has a character other than
    /// letters, digits, `_`, `-`, `.` (or does not start with a letter or
    /// digit).
    BadName { at: usize, name: String },
}

impl fmt::Display for RefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefError::Unterminated { at } => write!(
                f,
                "the secret reference at character {} has no closing }}}} (write {{{{secret:NAME}}}})",
                at + 1
            ),
            RefError::BadName { at, name } => write!(
                f,
                "the secret reference at character {} names {name:?}: a secret's name is 1 to {MAX_NAME} letters, digits, '_', '-' or '.', starting with a letter or digit",
                at + 1
            ),
        }
    }
}

impl std::error::Error for RefError {}

/// Whether `name` can name a secret.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// The value in pieces. A whole value `secret:NAME` is one secret; `{{`
/// not followed by `secret:` is text.
pub fn parse(value: &str) -> Result<Vec<Part<'_>>, RefError> {
    if let Some(name) = value.strip_prefix(WHOLE) {
        return if valid_name(name) {
            Ok(vec![Part::Secret(name)])
        } else {
            Err(RefError::BadName {
                at: 0,
                name: name.to_owned(),
            })
        };
    }
    let mut parts = Vec::new();
    let mut rest = value;
    let mut offset = 0;
    while let Some(start) = rest.find(OPEN) {
        if start > 0 {
            parts.push(Part::Text(&rest[..start]));
        }
        let after = &rest[start + OPEN.len()..];
        let end = after
            .find(CLOSE)
            .ok_or(RefError::Unterminated { at: offset + start })?;
        let name = &after[..end];
        if !valid_name(name) {
            return Err(RefError::BadName {
                at: offset + start,
                name: name.to_owned(),
            });
        }
        parts.push(Part::Secret(name));
        let used = start + OPEN.len() + end + CLOSE.len();
        rest = &rest[used..];
        offset += used;
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

/// The names of the secrets a value uses, in order, each once.
pub fn names(value: &str) -> Result<Vec<&str>, RefError> {
    let mut out: Vec<&str> = Vec::new();
    for p in parse(value)? {
        if let Part::Secret(n) = p
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    Ok(out)
}

/// The value with every reference replaced by `resolve(name)`; the first
/// name `resolve` has no value for is the error.
pub fn substitute<E>(
    value: &str,
    mut resolve: impl FnMut(&str) -> Result<String, E>,
) -> Result<Result<String, E>, RefError> {
    let parts = parse(value)?;
    let mut out = String::with_capacity(value.len());
    for p in parts {
        match p {
            Part::Text(t) => out.push_str(t),
            Part::Secret(n) => match resolve(n) {
                Ok(v) => out.push_str(&v),
                Err(e) => return Ok(Err(e)),
            },
        }
    }
    Ok(Ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_inside_a_value_and_as_the_whole_of_one() {
        assert_eq!(
            parse("Bearer {{secret:grafana_token}}").unwrap(),
            [Part::Text("Bearer "), Part::Secret("grafana_token")]
        );
        assert_eq!(parse("secret:s3.key").unwrap(), [Part::Secret("s3.key")]);
        assert_eq!(
            parse("{{secret:a}}:{{secret:b}}").unwrap(),
            [Part::Secret("a"), Part::Text(":"), Part::Secret("b")]
        );
        // Not references: text.
        assert_eq!(parse("{{ x }}").unwrap(), [Part::Text("{{ x }}")]);
        assert_eq!(parse("my secret: 1").unwrap(), [Part::Text("my secret: 1")]);
        assert_eq!(parse("").unwrap(), []);
        assert_eq!(
            names("{{secret:a}}{{secret:a}}{{secret:b}}").unwrap(),
            ["a", "b"]
        );
    }

    #[test]
    fn a_bad_reference_is_named_with_its_place() {
        let e = parse("x {{secret:token").unwrap_err();
        assert_eq!(e, RefError::Unterminated { at: 2 });
        assert!(e.to_string().contains("character 3"), "{e}");
        for bad in [
            "{{secret:}}",
            "{{secret:a b}}",
            "{{secret:-a}}",
            "{{secret:ä}}",
        ] {
            assert!(
                matches!(parse(bad), Err(RefError::BadName { at: 0, .. })),
                "{bad}"
            );
        }
        assert!(parse("secret:").is_err());
        assert!(parse(&format!("secret:{}", "a".repeat(MAX_NAME + 1))).is_err());
        assert!(parse(&format!("secret:{}", "a".repeat(MAX_NAME))).is_ok());
    }

    #[test]
    fn substitution_uses_the_resolver_and_stops_at_the_first_missing_name() {
        let got = substitute("Bearer {{secret:t}}!", |n| match n {
            "t" => Ok("abc".to_owned()),
            _ => Err(n.to_owned()),
        });
        assert_eq!(got, Ok(Ok("Bearer abc!".to_owned())));
        let missing = substitute("{{secret:t}}{{secret:u}}", |n| match n {
            "t" => Ok("abc".to_owned()),
            _ => Err(format!("no secret {n}")),
        });
        assert_eq!(missing, Ok(Err("no secret u".to_owned())));
        // A resolved value is never read as a reference again.
        let once = substitute("{{secret:t}}", |_| Ok::<_, ()>("{{secret:t}}".into()));
        assert_eq!(once, Ok(Ok("{{secret:t}}".to_owned())));
    }
}
