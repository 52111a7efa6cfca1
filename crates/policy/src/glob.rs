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
    /// The tokens of the pattern lower-cased, without a trailing `/`, for
    /// [`PathPattern::matches_loosely`].
    loose: Vec<Token>,
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
        let mut loose: Vec<Token> = tokens
            .iter()
            .map(|t| match t {
                Token::Literal(l) => Token::Literal(l.to_ascii_lowercase()),
                other => other.clone(),
            })
            .collect();
        if let Some(Token::Literal(l)) = loose.last_mut() {
            if l.len() > 1 && l.ends_with('/') {
                l.pop();
            }
        }
        Ok(PathPattern {
            tokens,
            loose,
            text: s.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, path: &str) -> bool {
        match_tokens(&self.tokens, path)
    }

    /// For settings that restrict (a rate limit on a login path): also
    /// matches the spellings many app servers serve as the same path — any
    /// letter case, a trailing `/`, `;parameters` on a segment — so
    /// `/Login`, `/login/` and `/login;x` cannot step around `/login`.
    /// Settings that relax (CSRF bypasses) use the strict
    /// [`PathPattern::matches`].
    pub fn matches_loosely(&self, path: &str) -> bool {
        let mut p = String::with_capacity(path.len());
        for (i, seg) in path.split('/').enumerate() {
            if i > 0 {
                p.push('/');
            }
            p.push_str(&seg.split(';').next().unwrap_or(seg).to_ascii_lowercase());
        }
        while p.len() > 1 && p.ends_with('/') {
            p.pop();
        }
        match_tokens(&self.loose, &p) || match_tokens(&self.tokens, path)
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
    // next_slash[j]: where the segment starting at j ends (one pass, so a
    // long segment costs no more than a short one).
    let mut next_slash = vec![n; n + 1];
    for j in (0..n).rev() {
        next_slash[j] = if path[j] == b'/' {
            j
        } else {
            next_slash[j + 1]
        };
    }
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
                    let end = next_slash[j];
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
    fn restrictive_settings_match_loosely() {
        let p = PathPattern::parse("/app/login").unwrap();
        for path in [
            "/app/login",
            "/app/Login",
            "/APP/LOGIN/",
            "/app/login;jsessionid=1",
            "/app/login//",
        ] {
            assert!(p.matches_loosely(path), "{path}");
        }
        assert!(!p.matches("/app/Login"), "strict stays strict");
        assert!(!p.matches_loosely("/app/login2"));
        let long = format!("/{}", "a".repeat(8000));
        let q = PathPattern::parse("/{a}/{b}/*").unwrap();
        assert!(!q.matches(&long), "long segments stay linear");
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
