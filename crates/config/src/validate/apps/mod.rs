//! Validates one app: an `[[apps]]` entry of the config file, or the JSON
//! of an app created through the admin API. The parts with rules of their
//! own are beside this file: the upstream URL, a static bundle's files and
//! the recording settings; headers, CORS and CSP use the section
//! validators.

mod bundle;
mod recording;
mod upstream;

use std::time::Duration;

use moat_policy::access::Source;
use moat_policy::glob::PathPattern;
use moat_policy::route::normalize_prefix;
use moat_policy::units::parse_size;

#[cfg(test)]
pub(crate) use bundle::Memory;
pub(crate) use bundle::{BundleSource, FileSystem};

use super::checker::Checker;
use super::{cors, csp, headers};

use crate::model::{App, AppAuth, AppLimit, AppOrigin, AppSource, Csrf, Timeouts};
use crate::raw::{self, RawApp, RawAppAuth};

/// Upstream requests in flight per app when the app sets none.
const DEFAULT_MAX_UPSTREAM_CONNECTIONS: i64 = 512;

/// Keys are relative to the app (the caller scopes them under `apps[i].`,
/// or not at all for the admin API). `None` when anything was wrong.
pub(super) fn validate(
    c: &mut Checker<'_>,
    a: &RawApp,
    origin: AppOrigin,
    bundles: &dyn BundleSource,
) -> Option<App> {
    let before = c.problem_count();
    let name_ok = !a.name.is_empty()
        && a.name.len() <= 64
        && a.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && a.name.as_bytes()[0].is_ascii_alphanumeric();
    if !name_ok {
        c.problem(
            "name",
            format!("{:?} is not a valid app name", a.name),
            "use 1-64 letters, digits, '-' or '_', starting with a letter or digit",
        );
    }
    let host = c.host_name("host", a.host.as_deref().unwrap_or(""));
    let path = match a.path.as_deref() {
        Some(p) => normalize_prefix(p).unwrap_or_else(|| {
            c.problem(
                "path",
                format!("{p:?} is not a path prefix"),
                "write a prefix starting with '/', e.g. \"/grafana\"",
            );
            "/".into()
        }),
        None if host.is_some() => "/".into(),
        None => {
            c.problem(
                "path",
                "the app has neither path nor host",
                format!(
                    "mount it with path = \"/{}\" and/or host = \"NAME\"",
                    a.name
                ),
            );
            "/".into()
        }
    };
    let source = match (&a.upstream, &a.static_dir) {
        (Some(u), None) => upstream::parse(u, a.h2c)
            .map(AppSource::Upstream)
            .map_err(|e| c.problem("upstream", e.0, e.1))
            .ok(),
        (None, Some(d)) => {
            let dir = c.path(d);
            bundle::open(c, dir, bundles).map(AppSource::Static)
        }
        (Some(_), Some(_)) => {
            c.problem(
                "upstream",
                "an app has either upstream or static, not both",
                "remove one of them",
            );
            None
        }
        (None, None) => {
            c.problem(
                "upstream",
                "the app has no source",
                "set upstream = \"http://HOST:PORT\" or static = \"DIR\"",
            );
            None
        }
    };
    if a.h2c && a.static_dir.is_some() {
        c.problem("h2c", "h2c applies to upstream apps only", "remove it");
    }
    let max_body_size = match &a.max_body_size {
        Some(v) => c.size("max_body_size", v, 0),
        None => parse_size(raw::DEFAULT_MAX_BODY_SIZE).expect("default parses"),
    };
    let timeouts = c.scope("timeouts.", |c| {
        let t = &a.timeouts;
        Timeouts {
            connect: c.duration("connect", &t.connect, Duration::from_millis(1)),
            response_header: c.duration(
                "response_header",
                &t.response_header,
                Duration::from_millis(1),
            ),
            idle: c.duration("idle", &t.idle, Duration::from_millis(1)),
            queue: c.duration("queue", &t.queue, Duration::ZERO),
        }
    });
    let max_upstream_connections = c.count(
        "max_upstream_connections",
        a.max_upstream_connections
            .unwrap_or(DEFAULT_MAX_UPSTREAM_CONNECTIONS),
        1,
        1_000_000,
    ) as usize;
    let recording = c.scope("recording.", |c| recording::validate(c, &a.recording));
    let auth = app_auth(c, a.auth.as_ref());
    let access = super::auth::rules(c, &a.allowed_users, &a.allowed_groups, &a.allowed_domains);
    if !access.is_empty() && auth.sources().is_empty() {
        c.problem(
            "allowed_users",
            format!("allow lists apply to people who sign in, and auth = \"{auth}\" signs nobody in"),
            "set auth to sign-in sources (\"system\", \"oidc:NAME\"), or remove allowed_users, allowed_groups and allowed_domains",
        );
    }
    let client_certs = a
        .client_certs
        .as_ref()
        .and_then(|cc| c.scope("client_certs.", |c| client_certs(c, cc, origin)));
    if auth == AppAuth::Cert && a.client_certs.is_none() {
        c.problem(
            "auth",
            "auth = \"cert\" takes the user from a client certificate, but the app has no [apps.client_certs]",
            "add [apps.client_certs] with ca = \"/path/to/client-ca.pem\"",
        );
    }
    if a.identity_jwt && auth == AppAuth::None {
        c.problem(
            "identity_jwt",
            "identity_jwt needs a signed-in user, and auth = \"none\" has none",
            "set auth = \"system\", or remove identity_jwt",
        );
    }
    let headers = c.scope("headers.", |c| headers::app_overrides(c, &a.headers));
    let cors = a
        .cors
        .as_ref()
        .and_then(|r| c.scope("cors.", |c| cors::validate(c, r)));
    let (csrf, allow_underscore_headers) = c.scope("security.", |c| security(c, &a.security));
    let rate_limits = a
        .rate_limit
        .iter()
        .enumerate()
        .map(|(j, l)| AppLimit {
            zone: l.zone.clone(),
            path: l.path.as_ref().and_then(|p| {
                PathPattern::parse(p)
                    .map_err(|e| {
                        c.problem(
                            format!("rate_limit[{j}].path"),
                            e,
                            "write a path such as \"/login\" or \"/api/*\"",
                        )
                    })
                    .ok()
            }),
        })
        .collect();
    let mut csp = c.scope("csp.", |c| csp::app_layer(c, &a.csp, None));
    if let Some(AppSource::Static(bundle)) = &source {
        bundle::csp_layers(c, bundle, bundles, &mut csp);
    }
    if c.problem_count() > before {
        return None;
    }
    Some(App {
        name: a.name.clone(),
        host,
        path,
        source: source?,
        preserve_host: a.preserve_host,
        strip_path: a.strip_path,
        max_body_size,
        max_upstream_connections,
        timeouts,
        auth,
        access,
        identity_jwt: a.identity_jwt,
        origin,
        headers,
        csp,
        cors,
        csrf,
        rate_limits,
        recording,
        allow_encoded_slashes: a.security.allow_encoded_slashes,
        allow_underscore_headers,
        client_certs,
    })
}

/// `[apps.client_certs]` (keys relative to it). The files are read here
/// only far enough to catch a wrong path or a file that is not PEM; the
/// certificates themselves are parsed when the app is served.
fn client_certs(
    c: &mut Checker<'_>,
    raw: &crate::raw::RawClientCerts,
    origin: AppOrigin,
) -> Option<crate::model::ClientCerts> {
    use crate::model::{ClientCertMode, ClientCerts};
    let mode = match raw.mode.as_deref() {
        None | Some("require") => ClientCertMode::Require,
        Some("optional") => ClientCertMode::Optional,
        Some(other) => {
            c.problem(
                "mode",
                format!("{other:?} is not a client certificate mode"),
                "write mode = \"require\" or mode = \"optional\"",
            );
            ClientCertMode::Require
        }
    };
    let mut file = |key: &str, v: &str, what: &str| -> Option<std::path::PathBuf> {
        if v.is_empty() {
            c.problem(key, "is empty", format!("give the path of {what}"));
            return None;
        }
        if origin == AppOrigin::Api && !std::path::Path::new(v).is_absolute() {
            c.problem(
                key,
                "must be an absolute path",
                format!("give the absolute path of {what}"),
            );
            return None;
        }
        let path = c.path(v);
        match std::fs::read(&path) {
            Err(e) => {
                c.problem(key, format!("{}: {e}", path.display()), format!("give the path of {what}"));
                None
            }
            Ok(bytes) => Some((path, bytes)),
        }
        .map(|(path, bytes)| {
            if key == "ca" && !String::from_utf8_lossy(&bytes).contains("-----BEGIN CERTIFICATE-----") {
                c.problem(
                    key,
                    format!("{} is not a PEM file of certificates", path.display()),
                    "give the CA certificate(s) that issue the client certificates, in PEM (-----BEGIN CERTIFICATE-----)",
                );
            }
            path
        })
    };
    let ca = file(
        "ca",
        &raw.ca,
        "the PEM file of the CA that issues client certificates",
    );
    let crl = raw
        .crl
        .as_deref()
        .and_then(|v| file("crl", v, "the certificate revocation list (PEM or DER)"));
    Some(ClientCerts { ca: ca?, mode, crl })
}

/// `[apps.security]` (keys relative to it): the app's CSRF settings, and
/// the lower-cased `_` headers it receives.
fn security(c: &mut Checker<'_>, s: &raw::RawAppSecurity) -> (Csrf, Vec<String>) {
    let csrf = Csrf {
        enabled: !s.disable_csrf_protection,
        trusted_origins: c.origins("csrf_trusted_origins", &s.csrf_trusted_origins),
        bypass: c.path_patterns("csrf_bypass", &s.csrf_bypass),
    };
    let underscore = s
        .allow_underscore_headers
        .iter()
        .filter_map(|h| match http::HeaderName::from_bytes(h.as_bytes()) {
            Ok(name) if h.contains('_') => Some(name.as_str().to_owned()),
            Ok(_) => {
                c.problem(
                    "allow_underscore_headers",
                    format!("{h:?} has no _ (headers without one always pass)"),
                    "list only header names that contain _",
                );
                None
            }
            Err(_) => {
                c.problem(
                    "allow_underscore_headers",
                    format!("{h:?} is not a header name"),
                    "write a header name such as \"X_Custom_Id\"",
                );
                None
            }
        })
        .collect();
    (csrf, underscore)
}

/// The app's `auth`: a mode (`none`, `cert`) or one or more sign-in
/// sources (`system`, `oidc:NAME`). Whether each provider exists is
/// checked against `[[auth.oidc]]` by the caller.
pub(super) fn app_auth(c: &mut Checker<'_>, raw: Option<&RawAppAuth>) -> AppAuth {
    let fix = "write auth = \"system\" (moat's login), \"oidc:NAME\" (an [[auth.oidc]] provider), a list of those such as [\"oidc:corp\", \"system\"], \"cert\" (a client certificate) or \"none\" (open to anyone)";
    let list = match raw {
        None => return AppAuth::system(),
        Some(RawAppAuth::One(s)) if s == "none" => return AppAuth::None,
        Some(RawAppAuth::One(s)) if s == "cert" => return AppAuth::Cert,
        Some(RawAppAuth::One(s)) => std::slice::from_ref(s),
        Some(RawAppAuth::Many(l)) => l.as_slice(),
    };
    let mut sources = Vec::new();
    for s in list {
        match Source::parse(s) {
            Some(src) if sources.contains(&src) => {
                c.problem(
                    "auth",
                    format!("{s:?} is listed twice"),
                    "list each source once",
                );
            }
            Some(src) => sources.push(src),
            None if s == "none" || s == "cert" => c.problem(
                "auth",
                format!("{s:?} cannot be combined with sign-in sources"),
                fix,
            ),
            None => c.problem("auth", format!("{s:?} is not an authentication mode"), fix),
        }
    }
    if sources.is_empty() {
        if list.is_empty() {
            c.problem("auth", "is an empty list", fix);
        }
        return AppAuth::system();
    }
    AppAuth::SignIn(sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::{RawAppLimit, RawAppSecurity, RawCors};
    use crate::validate::checker::{assert_problem, check};

    fn upstream_app() -> RawApp {
        RawApp {
            name: "api".into(),
            host: Some("API.example.com".into()),
            upstream: Some("http://127.0.0.1:9000/base/".into()),
            ..RawApp::default()
        }
    }

    #[test]
    fn a_good_upstream_app() {
        let raw = RawApp {
            max_body_size: Some(raw::Human::Str("1MiB".into())),
            security: RawAppSecurity {
                csrf_bypass: vec!["/hooks/*".into()],
                allow_underscore_headers: vec!["X_Custom_Id".into()],
                ..RawAppSecurity::default()
            },
            rate_limit: vec![RawAppLimit {
                zone: "logins".into(),
                path: Some("/login".into()),
            }],
            ..upstream_app()
        };
        let (app, problems) = check(|c| validate(c, &raw, AppOrigin::ConfigFile, &FileSystem));
        assert_eq!(problems, []);
        let app = app.unwrap();
        assert_eq!(app.host.as_deref(), Some("api.example.com"));
        assert_eq!(app.path, "/");
        assert_eq!(app.max_body_size, 1 << 20);
        assert_eq!(app.max_upstream_connections, 512);
        assert_eq!(app.auth, AppAuth::system());
        assert!(app.csrf.enabled && app.csrf.bypass[0].matches("/hooks/github"));
        assert_eq!(app.allow_underscore_headers, ["x_custom_id"]);
        assert!(app.rate_limits[0].path.as_ref().unwrap().matches("/login"));
        assert!(app.recording.is_none() && app.cors.is_none());
    }

    #[test]
    fn bad_values_are_named_relative_to_the_app() {
        let raw = RawApp {
            name: "-bad".into(),
            host: Some("x.example.com:80".into()),
            path: Some("nope".into()),
            upstream: Some("ftp://x".into()),
            h2c: true,
            max_upstream_connections: Some(0),
            auth: Some("none".into()),
            identity_jwt: true,
            cors: Some(RawCors::default()),
            security: RawAppSecurity {
                csrf_trusted_origins: vec!["*".into()],
                allow_underscore_headers: vec!["NoUnderscore".into()],
                ..RawAppSecurity::default()
            },
            rate_limit: vec![RawAppLimit {
                zone: "z".into(),
                path: Some("login".into()),
            }],
            ..RawApp::default()
        };
        let mut raw = raw;
        raw.timeouts.connect = raw::Human::Str("0s".into());
        raw.headers.frame_options = Some("nope".into());
        raw.csp.add = vec!["nospace".into()];
        raw.recording.enabled = true;
        raw.recording.on_storage_failure = "maybe".into();
        let (app, problems) = check(|c| validate(c, &raw, AppOrigin::Api, &FileSystem));
        assert!(app.is_none());
        for (key, message) in [
            ("name", "\"-bad\" is not a valid app name"),
            ("host", "\"x.example.com:80\" is not a host name"),
            ("path", "\"nope\" is not a path prefix"),
            ("upstream", "\"ftp://x\" has no http:// scheme"),
            ("timeouts.connect", "must be at least 1ms"),
            ("max_upstream_connections", "0 is out of range"),
            ("recording.on_storage_failure", "\"maybe\" is not a choice"),
            ("identity_jwt", "identity_jwt needs a signed-in user"),
            (
                "headers.frame_options",
                "\"nope\" is not a value moat knows",
            ),
            (
                "cors.allow_origin",
                "is empty, so no origin could ever be allowed",
            ),
            (
                "security.csrf_trusted_origins[0]",
                "\"*\" is not an exact origin",
            ),
            (
                "security.allow_underscore_headers",
                "\"NoUnderscore\" has no _",
            ),
            ("rate_limit[0].path", "\"login\" does not start with /"),
            ("csp.add[0]", "\"nospace\" is not \"DIRECTIVE SOURCE\""),
        ] {
            assert_problem(&problems, key, message);
        }
        assert_eq!(problems.len(), 14, "{problems:#?}");
    }

    #[test]
    fn an_app_needs_exactly_one_source_and_a_mount() {
        let raw = RawApp {
            name: "x".into(),
            ..RawApp::default()
        };
        let (_, problems) = check(|c| validate(c, &raw, AppOrigin::Api, &FileSystem));
        assert_problem(&problems, "path", "the app has neither path nor host");
        assert_problem(&problems, "upstream", "the app has no source");
        assert_eq!(problems.len(), 2, "{problems:#?}");
        let raw = RawApp {
            static_dir: Some("/srv/x".into()),
            h2c: true,
            ..upstream_app()
        };
        let (_, problems) = check(|c| validate(c, &raw, AppOrigin::Api, &FileSystem));
        assert_problem(
            &problems,
            "upstream",
            "an app has either upstream or static, not both",
        );
        assert_problem(&problems, "h2c", "h2c applies to upstream apps only");
        assert_eq!(problems.len(), 2, "{problems:#?}");
    }
}
