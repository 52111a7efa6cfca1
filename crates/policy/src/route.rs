//! Chooses the app a request belongs to.
//!
//! An app is mounted on a host, a path prefix, or both. A prefix matches on
//! whole path segments (`/grafana` matches `/grafana` and `/grafana/x`, never
//! `/grafanax`). Among the apps that match, one mounted on the request's host
//! beats one mounted on any host, and a longer prefix beats a shorter one, so
//! the most specific mount always wins whatever the order in the file.

/// One mount point; `index` is the caller's handle for the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Lower-case host without port; `None` mounts on every host.
    pub host: Option<String>,
    /// Normalised prefix: starts with `/`, no trailing `/` unless it is `/`.
    pub path: String,
}

/// Normalises a configured path prefix; `None` if it is not a usable prefix.
pub fn normalize_prefix(p: &str) -> Option<String> {
    if !p.starts_with('/')
        || p.contains(['?', '#', '%', '\\'])
        || p.split('/').any(|s| s == "." || s == "..")
    {
        return None;
    }
    let trimmed = p.trim_end_matches('/');
    Some(if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    })
}

/// Lower-cases a Host header value and removes its port.
pub fn host_without_port(host: &str) -> String {
    let host = host.trim();
    let bare = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or(rest)
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    };
    bare.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `path` lies under `prefix` on a segment boundary.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    mounts: Vec<Mount>,
}

impl Router {
    pub fn new(mounts: Vec<Mount>) -> Self {
        Router { mounts }
    }

    /// Index of the most specific mount for `host` (as sent, port allowed)
    /// and `path` (the request path, not decoded).
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<usize> {
        let host = host.map(host_without_port);
        self.mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| match (&m.host, &host) {
                (None, _) => true,
                (Some(mh), Some(h)) => mh == h,
                (Some(_), None) => false,
            })
            .filter(|(_, m)| prefix_matches(&m.path, path))
            .max_by_key(|(i, m)| (m.host.is_some(), m.path.len(), std::cmp::Reverse(*i)))
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(host: Option<&str>, path: &str) -> Mount {
        Mount {
            host: host.map(str::to_owned),
            path: normalize_prefix(path).unwrap(),
        }
    }

    #[test]
    fn most_specific_wins() {
        let r = Router::new(vec![
            m(None, "/"),
            m(None, "/grafana"),
            m(Some("grafana.example.com"), "/"),
            m(None, "/grafana/api"),
        ]);
        assert_eq!(r.find(Some("x"), "/"), Some(0));
        assert_eq!(r.find(Some("x"), "/grafanax"), Some(0));
        assert_eq!(r.find(Some("x"), "/grafana"), Some(1));
        assert_eq!(r.find(Some("x"), "/grafana/d/1"), Some(1));
        assert_eq!(r.find(Some("x"), "/grafana/api/x"), Some(3));
        assert_eq!(
            r.find(Some("Grafana.Example.com:8443"), "/grafana/x"),
            Some(2)
        );
        assert_eq!(r.find(None, "/grafana"), Some(1));
    }

    #[test]
    fn no_match() {
        let r = Router::new(vec![m(None, "/a"), m(Some("h"), "/")]);
        assert_eq!(r.find(Some("other"), "/b"), None);
    }

    #[test]
    fn first_of_equal_mounts_wins() {
        let r = Router::new(vec![m(None, "/a"), m(None, "/a/")]);
        assert_eq!(r.find(None, "/a/x"), Some(0));
    }

    #[test]
    fn prefix_normalization() {
        assert_eq!(normalize_prefix("/a/"), Some("/a".into()));
        assert_eq!(normalize_prefix("/"), Some("/".into()));
        assert_eq!(normalize_prefix("a"), None);
        assert_eq!(normalize_prefix("/a/../b"), None);
        assert_eq!(normalize_prefix("/a%2f"), None);
    }

    #[test]
    fn hosts() {
        assert_eq!(host_without_port("Example.COM:443"), "example.com");
        assert_eq!(host_without_port("[::1]:8443"), "::1");
        assert_eq!(host_without_port("example.com."), "example.com");
    }
}
