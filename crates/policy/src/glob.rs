//! Path patterns for settings that apply to part of an app (a stricter
//! rate limit on a login path, CSRF bypasses): an exact path, or one with
//! `*` standing for any run of characters (including `/`).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    parts: Vec<String>,
    text: String,
}

impl PathPattern {
    pub fn parse(s: &str) -> Result<PathPattern, String> {
        if !s.starts_with('/') {
            return Err(format!("{s:?} does not start with /"));
        }
        Ok(PathPattern {
            parts: s.split('*').map(str::to_owned).collect(),
            text: s.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, path: &str) -> bool {
        let (first, rest) = self
            .parts
            .split_first()
            .expect("split yields one part at least");
        let Some(mut tail) = path.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return tail.is_empty();
        };
        for part in middle {
            match tail.find(part.as_str()) {
                Some(i) => tail = &tail[i + part.len()..],
                None => return false,
            }
        }
        tail.ends_with(last.as_str())
    }
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
}
