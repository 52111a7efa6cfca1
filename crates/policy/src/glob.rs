//! Path patterns for settings that apply to part of an app (a stricter
//! rate limit on a login path, CSRF bypasses): an exact path, or one with
//! `*` standing for any run of characters (including `/`) and `{name}`
//! standing for exactly one non-empty path segment (as in Go's ServeMux:
//! `/hooks/{id}/github` matches `/hooks/42/github`, not `/hooks/a/b/github`).
//!
//! Patterns are matched against the canonical request path
//! ([`crate::canonical_path`]), so `//`, `.` and `..` cannot step around them.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `*`: any run of characters, `/` included.
    Any,
    /// `{name}`: one segment, at least one character, no `/`.
    Segment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    tokens: Vec<Token>,
    text: String,
}

impl PathPattern {
    pub fn parse(s: &str) -> Result<PathPattern, String> {
        if !s.starts_with('/') {
            return Err(format!("{s:?} does not start with /"));
        }
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            match c {
                '*' => {
                    flush(&mut literal, &mut tokens);
                    tokens.push(Token::Any);
                    rest = &rest[1..];
                }
                '{' => {
                    let Some(end) = rest.find('}') else {
                        return Err(format!("{s:?} has a {{ without its }}"));
                    };
                    let name = &rest[1..end];
                    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        return Err(format!(
                            "{s:?}: {{{name}}} is not a segment name (letters, digits and _)"
                        ));
                    }
                    let before_ok = literal.ends_with('/')
                        || (literal.is_empty() && matches!(tokens.last(), None | Some(Token::Any)));
                    let after = &rest[end + 1..];
                    if !before_ok || !(after.is_empty() || after.starts_with('/')) {
                        return Err(format!(
                            "{s:?}: {{{name}}} must be a whole segment, between slashes"
                        ));
                    }
                    flush(&mut literal, &mut tokens);
                    tokens.push(Token::Segment);
                    rest = after;
                }
                '}' => return Err(format!("{s:?} has a }} without its {{")),
                _ => {
                    literal.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        flush(&mut literal, &mut tokens);
        Ok(PathPattern {
            tokens,
            text: s.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, path: &str) -> bool {
        match_tokens(&self.tokens, path)
    }
}

fn flush(literal: &mut String, tokens: &mut Vec<Token>) {
    if !literal.is_empty() {
        tokens.push(Token::Literal(std::mem::take(literal)));
    }
}

/// Dynamic programming over (token, position), from the end: linear in
/// the path for each token, so no path an attacker sends can make a
/// pattern with several `*` expensive.
fn match_tokens(tokens: &[Token], path: &str) -> bool {
    let path = path.as_bytes();
    let n = path.len();
    // next[j]: tokens[i + 1..] match path[j..]; the row for no tokens left.
    let mut next: Vec<bool> = (0..=n).map(|j| j == n).collect();
    let mut row = vec![false; n + 1];
    for token in tokens.iter().rev() {
        for j in (0..=n).rev() {
            row[j] = match token {
                Token::Literal(l) => {
                    let l = l.as_bytes();
                    path[j..].starts_with(l) && next[j + l.len()]
                }
                Token::Segment => {
                    let end = path[j..]
                        .iter()
                        .position(|&b| b == b'/')
                        .map_or(n, |e| j + e);
                    end > j && next[end]
                }
                Token::Any => next[j] || (j < n && row[j + 1]),
            };
        }
        std::mem::swap(&mut next, &mut row);
    }
    next[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = |s| PathPattern::parse(s).unwrap();
        assert!(p("/login").matches("/login"));
        assert!(!p("/login").matches("/login/x"));
        assert!(p("/api/*").matches("/api/v1/users"));
        assert!(!p("/api/*").matches("/apix"));
        assert!(p("/hooks/*/github").matches("/hooks/a/b/github"));
        assert!(!p("/hooks/*/github").matches("/hooks/github"));
        assert!(PathPattern::parse("*").is_err(), "patterns start with /");
        assert!(
            p("/a*b*c").matches("/abc")
                && p("/a*b*c").matches("/a-b-c")
                && !p("/a*b*c").matches("/acb")
        );
        assert!(PathPattern::parse("login").is_err());
    }

    #[test]
    fn one_segment_wildcard() {
        let p = |s| PathPattern::parse(s).unwrap();
        assert!(p("/hooks/{id}/github").matches("/hooks/42/github"));
        assert!(!p("/hooks/{id}/github").matches("/hooks/a/b/github"));
        assert!(!p("/hooks/{id}/github").matches("/hooks//github"));
        assert!(p("/only/{id}").matches("/only/7"));
        assert!(!p("/only/{id}").matches("/only/7/x"));
        assert!(!p("/only/{id}").matches("/only/"));
        assert!(p("/u/{user}/*").matches("/u/ann/files/a.txt"));
        assert!(p("/*/{x}").matches("/a/b/c"));
        for bad in ["/a{id}", "/{id}x", "/{}", "/{a b}", "/{id", "/x}"] {
            assert!(PathPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
