//! The [`Checker`] every section validator reports to, and the value
//! helpers the sections share (numbers, durations, sizes, addresses,
//! address lists, origins, path patterns).
//!
//! Keys are relative: a section reports `max_connections`, and the caller
//! that runs it inside [`Checker::scope`]`("server.", …)` makes that
//! `server.max_connections`. Scopes nest (`apps[2].` then `cors.`).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use moat_policy::cors::OriginPattern;
use moat_policy::glob::PathPattern;
use moat_policy::units::{parse_duration, parse_size};

use crate::error::Problem;
use crate::raw::Human;

/// Collects problems while values are converted.
pub(crate) struct Checker<'a> {
    problems: Vec<Problem>,
    base_dir: &'a Path,
    /// Put before every key reported (see [`Checker::scope`]).
    prefix: String,
}

impl<'a> Checker<'a> {
    /// `base_dir` is what relative paths in the file are relative to.
    pub(crate) fn new(base_dir: &'a Path) -> Self {
        Checker {
            problems: Vec::new(),
            base_dir,
            prefix: String::new(),
        }
    }

    /// Runs `f` with `prefix` put before every key it reports.
    pub(crate) fn scope<R>(&mut self, prefix: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        let outer = self.prefix.len();
        self.prefix.push_str(prefix);
        let r = f(self);
        self.prefix.truncate(outer);
        r
    }

    /// Reports a problem on `key` (relative to the current scope; `""` is
    /// the scope's own key).
    pub(crate) fn problem(
        &mut self,
        key: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        let key = key.into();
        let key = if self.prefix.is_empty() {
            key
        } else {
            format!("{}{key}", self.prefix)
        };
        self.problems.push(Problem::new(key, message).fix(fix));
    }

    /// How many problems were reported so far (to tell whether a part added
    /// any).
    pub(crate) fn problem_count(&self) -> usize {
        self.problems.len()
    }

    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// A whole number in `min..=max` (reported and clamped otherwise).
    pub(crate) fn count(&mut self, key: &str, n: i64, min: i64, max: i64) -> i64 {
        if n < min || n > max {
            self.problem(
                key,
                format!("{n} is out of range"),
                format!("use a number from {min} to {max}"),
            );
        }
        n.clamp(min, max)
    }

    /// A bare host name (lowercased, as routing compares them); `""` is
    /// none.
    pub(crate) fn host_name(&mut self, key: &str, h: &str) -> Option<String> {
        if h.is_empty() {
            return None;
        }
        let bare = moat_policy::route::host_without_port(h);
        let ok = bare.len() <= 253
            && bare.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok || h.contains(':') {
            self.problem(
                key,
                format!("{h:?} is not a host name"),
                "write a bare host name such as \"grafana.example.com\" (no scheme or port)",
            );
        }
        Some(bare)
    }

    pub(crate) fn duration(&mut self, key: &str, v: &Human, min: Duration) -> Duration {
        let parsed = match v {
            Human::Int(n) if *n >= 0 => Ok(Duration::from_secs(*n as u64)),
            Human::Int(n) => Err(format!("{n} is negative")),
            Human::Str(s) => parse_duration(s),
        };
        match parsed {
            Ok(d) if d >= min => d,
            Ok(_) => {
                self.problem(
                    key,
                    format!(
                        "must be at least {}",
                        moat_policy::units::format_duration(min)
                    ),
                    "raise the value",
                );
                min
            }
            Err(e) => {
                self.problem(key, e, "write a duration such as \"30s\" or \"5m\"");
                min
            }
        }
    }

    pub(crate) fn size(&mut self, key: &str, v: &Human, min: u64) -> u64 {
        let parsed = match v {
            Human::Int(n) if *n >= 0 => Ok(*n as u64),
            Human::Int(n) => Err(format!("{n} is negative")),
            Human::Str(s) => parse_size(s),
        };
        match parsed {
            Ok(n) if n >= min => n,
            Ok(_) => {
                self.problem(
                    key,
                    format!("must be at least {}", moat_policy::units::format_size(min)),
                    "raise the value",
                );
                min
            }
            Err(e) => {
                self.problem(key, e, "write a size such as \"16KiB\" or \"10MiB\"");
                min
            }
        }
    }

    /// A listen address; empty disables the listener.
    pub(crate) fn listen(&mut self, key: &str, v: &str) -> Option<SocketAddr> {
        if v.trim().is_empty() {
            return None;
        }
        match v.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.problem(
                    key,
                    format!("{v:?} is not an address:port"),
                    "write an IP address and port, e.g. \"127.0.0.1:8443\" or \"[::]:443\", or \"\" to turn the listener off",
                );
                None
            }
        }
    }

    /// A path from the file, relative to the file's folder.
    pub(crate) fn path(&self, v: &str) -> PathBuf {
        let p = PathBuf::from(v);
        if p.is_absolute() {
            p
        } else {
            self.base_dir.join(p)
        }
    }

    /// Addresses and CIDR ranges.
    pub(crate) fn nets(&mut self, key: &str, list: &[String]) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, p) in list.iter().enumerate() {
            match p
                .parse::<IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
            {
                Ok(n) => out.push(n.trunc()),
                Err(_) => self.problem(
                    format!("{key}[{i}]"),
                    format!("{p:?} is not an IP address or CIDR range"),
                    "write e.g. \"10.0.0.1\" or \"10.0.0.0/8\"",
                ),
            }
        }
        out
    }

    /// Exact origins (`scheme://host[:port]`).
    pub(crate) fn origins(&mut self, key: &str, list: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, o) in list.iter().enumerate() {
            match OriginPattern::parse(o) {
                Ok(OriginPattern::Exact(e)) if e != "null" => out.push(e),
                _ => self.problem(
                    format!("{key}[{i}]"),
                    format!("{o:?} is not an exact origin"),
                    "write scheme, host and port only, e.g. \"https://sso.example.com\"",
                ),
            }
        }
        out
    }

    /// Path patterns (`*` for any characters).
    pub(crate) fn path_patterns(&mut self, key: &str, list: &[String]) -> Vec<PathPattern> {
        list.iter()
            .enumerate()
            .filter_map(|(i, p)| {
                PathPattern::parse(p)
                    .map_err(|e| {
                        self.problem(
                            format!("{key}[{i}]"),
                            e,
                            "write a path such as \"/hooks/*\"",
                        )
                    })
                    .ok()
            })
            .collect()
    }
}

/// Runs `f` on a fresh checker (relative paths under `/base`) and returns
/// what it built and what it reported.
#[cfg(test)]
pub(crate) fn check<R>(f: impl FnOnce(&mut Checker<'_>) -> R) -> (R, Vec<Problem>) {
    let mut c = Checker::new(Path::new("/base"));
    let r = f(&mut c);
    (r, c.into_problems())
}

/// Asserts that `problems` has one on exactly `key` whose message contains
/// `message`.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_problem(problems: &[Problem], key: &str, message: &str) {
    assert!(
        problems
            .iter()
            .any(|p| p.key == key && p.message.contains(message)),
        "no problem on {key:?} containing {message:?} in {problems:#?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_unwind() {
        let ((), problems) = check(|c| {
            c.scope("apps[1].", |c| {
                c.problem("name", "m1", "f");
                c.scope("cors.", |c| c.problem("max_age", "m2", "f"));
                c.scope("static", |c| c.problem("", "m3", "f"));
                c.problem("path", "m4", "f");
            });
            c.problem("server.http", "m5", "f");
        });
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "apps[1].name",
                "apps[1].cors.max_age",
                "apps[1].static",
                "apps[1].path",
                "server.http"
            ]
        );
    }

    #[test]
    fn values_are_checked_and_clamped() {
        let (v, problems) = check(|c| {
            (
                c.count("n", 0, 1, 10),
                c.duration("d", &Human::Str("1ms".into()), Duration::from_secs(1)),
                c.size("s", &Human::Int(-1), 0),
                c.listen("l", "nope"),
                c.listen("off", " "),
                c.path("rel"),
                c.path("/abs"),
            )
        });
        assert_eq!(v.0, 1);
        assert_eq!(v.1, Duration::from_secs(1));
        assert_eq!(v.2, 0);
        assert_eq!((v.3, v.4), (None, None));
        assert_eq!(v.5, Path::new("/base/rel"));
        assert_eq!(v.6, Path::new("/abs"));
        assert_problem(&problems, "n", "0 is out of range");
        assert_problem(&problems, "d", "must be at least 1s");
        assert_problem(&problems, "s", "-1 is negative");
        assert_problem(&problems, "l", "\"nope\" is not an address:port");
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn lists_name_the_bad_entry() {
        let ((nets, origins, paths), problems) = check(|c| {
            (
                c.nets("n", &["10.1.2.3/8".into(), "x".into(), "::1".into()]),
                c.origins("o", &["https://a.example".into(), "null".into()]),
                c.path_patterns("p", &["/hooks/*".into(), "nope".into()]),
            )
        });
        assert_eq!(nets.len(), 2);
        assert_eq!(nets[0].to_string(), "10.0.0.0/8");
        assert_eq!(origins, ["https://a.example"]);
        assert_eq!(paths.len(), 1);
        assert_problem(
            &problems,
            "n[1]",
            "\"x\" is not an IP address or CIDR range",
        );
        assert_problem(&problems, "o[1]", "\"null\" is not an exact origin");
        assert_eq!(problems.iter().filter(|p| p.key == "p[1]").count(), 1);
    }
}
