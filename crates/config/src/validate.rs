//! Raw file values → the runtime [`Config`]. One [`Problem`] per bad key,
//! all collected, so an admin fixes a file in one pass.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use moat_policy::client_ip::TrustedProxies;
use moat_policy::route::{host_without_port, normalize_prefix};
use moat_policy::units::{parse_duration, parse_size};

use moat_policy::cors::{CorsPolicy, OriginPattern};
use moat_policy::csp::{self, AllowRule, Grant, Policy, SourcePattern};
use moat_policy::glob::PathPattern;
use moat_policy::rate_limit::{Rate, Zone};

use crate::error::Problem;
use crate::model::*;
use crate::raw::{self, Human, RawApp, RawConfig};
use crate::{manifest, tls_names};

/// Collects problems while values are converted.
struct Checker<'a> {
    problems: Vec<Problem>,
    base_dir: &'a Path,
}

impl Checker<'_> {
    /// A whole number in `min..=max` (reported and clamped otherwise).
    fn count(&mut self, key: &str, n: i64, min: i64, max: i64) -> i64 {
        if n < min || n > max {
            self.problem(
                key,
                format!("{n} is out of range"),
                format!("use a number from {min} to {max}"),
            );
        }
        n.clamp(min, max)
    }

    fn problem(
        &mut self,
        key: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(Problem::new(key, message).fix(fix));
    }

    fn duration(&mut self, key: &str, v: &Human, min: Duration) -> Duration {
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

    fn size(&mut self, key: &str, v: &Human, min: u64) -> u64 {
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
    fn listen(&mut self, key: &str, v: &str) -> Option<SocketAddr> {
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

    fn path(&self, v: &str) -> PathBuf {
        let p = PathBuf::from(v);
        if p.is_absolute() {
            p
        } else {
            self.base_dir.join(p)
        }
    }
}

pub fn validate(raw: RawConfig, base_dir: &Path) -> Result<Config, Vec<Problem>> {
    let mut c = Checker {
        problems: Vec::new(),
        base_dir,
    };

    let data_dir = raw
        .data_dir
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| c.path(s));

    let s = &raw.server;
    let https = c.listen("server.https", &s.https);
    let http = c.listen("server.http", &s.http);
    let workers = match s.workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n if (1..=1024).contains(&n) => n as usize,
        n => {
            c.problem(
                "server.workers",
                format!("{n} is out of range"),
                "use 0 (one per CPU core) or a number from 1 to 1024",
            );
            1
        }
    };
    if s.max_connections < 1 {
        c.problem(
            "server.max_connections",
            "must be at least 1",
            "set a positive number, e.g. 10000",
        );
    }
    let server = Server {
        https,
        http,
        admin_socket: (!s.admin_socket.is_empty()).then(|| c.path(&s.admin_socket)),
        workers,
        max_connections: s.max_connections.max(1) as usize,
        header_read_timeout: c.duration(
            "server.header_read_timeout",
            &s.header_read_timeout,
            Duration::from_millis(100),
        ),
        tls_handshake_timeout: c.duration(
            "server.tls_handshake_timeout",
            &s.tls_handshake_timeout,
            Duration::from_millis(100),
        ),
        max_header_size: c.size("server.max_header_size", &s.max_header_size, 1024) as usize,
        max_uri_length: c.size("server.max_uri_length", &s.max_uri_length, 256) as usize,
        shutdown_timeout: c.duration(
            "server.shutdown_timeout",
            &s.shutdown_timeout,
            Duration::ZERO,
        ),
        http2: s.http2,
        keepalive_timeout: c.duration(
            "server.keepalive_timeout",
            &s.keepalive_timeout,
            Duration::from_millis(100),
        ),
        min_body_rate: c.size("server.min_body_rate", &s.min_body_rate, 0),
        http2_max_concurrent_streams: c.count(
            "server.http2_max_concurrent_streams",
            s.http2_max_concurrent_streams,
            1,
            10_000,
        ) as u32,
        redirect_max_connections: c.count(
            "server.redirect_max_connections",
            s.redirect_max_connections,
            1,
            1_000_000,
        ) as usize,
        redirect_max_connections_per_client: c.count(
            "server.redirect_max_connections_per_client",
            s.redirect_max_connections_per_client,
            1,
            1_000_000,
        ) as usize,
    };
    if server.max_header_size > 1 << 20 {
        c.problem(
            "server.max_header_size",
            "must be at most 1MiB",
            "lower the value; 16KiB suits nearly every app",
        );
    }

    let tls = validate_tls(&mut c, &raw.tls);
    if tls.enabled && server.https.is_none() {
        c.problem(
            "server.https",
            "is empty but TLS is enabled",
            "give an address such as \"127.0.0.1:8443\", or set tls.enabled = false",
        );
    }
    if !tls.enabled && server.http.is_none() {
        c.problem(
            "server.http",
            "is empty but TLS is disabled, so nothing would listen",
            "give an address such as \"127.0.0.1:8080\"",
        );
    }

    let nets = nets(
        &mut c,
        "security.trusted_proxies",
        &raw.security.trusted_proxies,
    );
    let csrf_trusted_origins = origins(
        &mut c,
        "security.csrf_trusted_origins",
        &raw.security.csrf_trusted_origins,
    );
    let rate_limit = validate_rate_limit(&mut c, &raw.rate_limit);
    let recording = Recording {
        local_path: Some(raw.recording.local_path.trim())
            .filter(|p| !p.is_empty())
            .map(|p| c.path(p)),
        minimum_available_capacity: c.size(
            "recording.minimum_available_capacity",
            &raw.recording.minimum_available_capacity,
            0,
        ),
        max_open: c.count("recording.max_open", raw.recording.max_open, 1, 1_000_000) as usize,
        max_open_per_client: c.count(
            "recording.max_open_per_client",
            raw.recording.max_open_per_client,
            1,
            1_000_000,
        ) as usize,
        policy: raw.recording.policy.as_ref().and_then(|p| {
            let r = moat_policy::retention::Retention {
                retain_for_days: p.retain_for_days,
                retain_overridable: p.retain_for_days_overridable,
                delete_after_days: p.delete_after_days,
                delete_overridable: p.delete_after_days_overridable,
            };
            match moat_policy::retention::validate(&r) {
                Ok(()) => Some(r),
                Err(e) => {
                    c.problem(
                        "recording.policy",
                        e,
                        "see `moat config default` for the rules",
                    );
                    None
                }
            }
        }),
    };
    let rate_limit_names: Vec<String> = rate_limit.zones.iter().map(|z| z.name.clone()).collect();

    let admin_password_bcrypt = match raw.security.admin_password_bcrypt.trim() {
        "" => None,
        h if is_bcrypt_hash(h) => Some(h.to_owned()),
        _ => {
            c.problem(
                "security.admin_password_bcrypt",
                "is not a bcrypt hash",
                "run `moat password` (or `moat password --prompt`) and paste the hash it prints, e.g. \"$2b$12$...\"",
            );
            None
        }
    };

    let user = &raw.security.admin_user;
    if user.is_empty()
        || user.len() > 64
        || !user.bytes().all(|b| b.is_ascii_graphic() && b != b':')
    {
        c.problem(
            "security.admin_user",
            format!("{user:?} is not a usable user name"),
            "use 1-64 visible ASCII characters without ':' (the default is \"admin\")",
        );
    }
    if raw.security.admin_over_tcp && !raw.tls.enabled {
        c.problem(
            "security.admin_over_tcp",
            "the admin API over TCP is only served over TLS, but tls.enabled is false",
            "turn TLS on, or leave admin_over_tcp off and use the Unix socket",
        );
    }

    let log = validate_log(&mut c, &raw.log);
    let headers = validate_headers(&mut c, &raw.headers);
    let csp = validate_csp(&mut c, &raw.csp);
    let auth = Auth {
        system_account: raw.auth.system_account,
        idle_timeout: c.duration(
            "auth.idle_timeout",
            &raw.auth.idle_timeout,
            Duration::from_secs(1),
        ),
        absolute_timeout: c.duration(
            "auth.absolute_timeout",
            &raw.auth.absolute_timeout,
            Duration::from_secs(1),
        ),
        basic_auth: raw.auth.basic_auth,
    };
    if auth.idle_timeout > auth.absolute_timeout {
        c.problem(
            "auth.idle_timeout",
            "is longer than auth.absolute_timeout, so it never applies",
            "make idle_timeout shorter than absolute_timeout",
        );
    }

    let mut apps = Vec::new();
    let mut names = HashSet::new();
    let mut mounts = HashSet::new();
    for (i, a) in raw.apps.iter().enumerate() {
        if let Some(app) = validate_app(&mut c, &format!("apps[{i}]."), a, AppOrigin::ConfigFile) {
            if !names.insert(app.name.clone()) {
                c.problem(
                    format!("apps[{i}].name"),
                    format!("app name {:?} is used twice", app.name),
                    "give every app its own name",
                );
            }
            if !mounts.insert((app.host.clone(), app.path.clone())) {
                c.problem(
                    format!("apps[{i}].path"),
                    format!(
                        "another app is already mounted on the same host and path {:?}",
                        app.path
                    ),
                    "give each app its own path prefix or host",
                );
            }
            apps.push(app);
        }
    }

    for (i, app) in apps.iter().enumerate() {
        if let Some(r) = &app.recording {
            if let Err(e) = crate::model::retention_for(recording.policy.as_ref(), r) {
                c.problem(
                    format!("apps[{i}].recording.policy"),
                    e,
                    "change the app's policy, or the global [recording.policy]",
                );
            }
        }
    }
    for (i, a) in raw.apps.iter().enumerate() {
        for (j, l) in a.rate_limit.iter().enumerate() {
            if !rate_limit_names.contains(&l.zone) {
                c.problem(
                    format!("apps[{i}].rate_limit[{j}].zone"),
                    format!("no rate-limit zone is named {:?}", l.zone),
                    "define it under [[rate_limit.zones]], or correct the name",
                );
            }
        }
    }
    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    Ok(Config {
        source: None,
        data_dir,
        server,
        tls,
        security: Security {
            trusted_proxies: TrustedProxies::new(nets),
            admin_password_bcrypt,
            admin_user: raw.security.admin_user.clone(),
            admin_over_tcp: raw.security.admin_over_tcp,
            disable_csrf_protection: raw.security.disable_csrf_protection,
            csrf_trusted_origins,
        },
        rate_limit,
        recording,
        auth,
        headers,
        csp,
        log,
        apps,
    })
}

fn validate_tls(c: &mut Checker<'_>, t: &raw::RawTls) -> Tls {
    let min_version = match t.min_version.as_str() {
        "1.2" => TlsVersion::V1_2,
        "1.3" => TlsVersion::V1_3,
        other => {
            c.problem(
                "tls.min_version",
                format!("{other:?} is not supported"),
                "use \"1.2\" (TLS 1.2 and 1.3) or \"1.3\" (TLS 1.3 only); older versions are not offered",
            );
            TlsVersion::V1_2
        }
    };
    let mut cipher_suites = Vec::new();
    for (i, name) in t.cipher_suites.iter().enumerate() {
        match tls_names::cipher_suite(name) {
            Some((canon, is13)) => {
                if min_version == TlsVersion::V1_3 && !is13 {
                    c.problem(
                        format!("tls.cipher_suites[{i}]"),
                        format!("{name} is a TLS 1.2 suite but tls.min_version is \"1.3\""),
                        "remove it, or set tls.min_version = \"1.2\"",
                    );
                }
                cipher_suites.push(canon);
            }
            None => c.problem(
                format!("tls.cipher_suites[{i}]"),
                format!("unknown or unsupported cipher suite {name:?}"),
                format!(
                    "use one of {} (only AEAD suites with forward secrecy are offered)",
                    tls_names::CIPHER_SUITES
                        .iter()
                        .map(|s| s.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
    if !cipher_suites.is_empty()
        && !cipher_suites
            .iter()
            .any(|s| tls_names::cipher_suite(s).is_some_and(|x| x.1))
    {
        c.problem(
            "tls.cipher_suites",
            "lists no TLS 1.3 suite, so TLS 1.3 clients could not connect",
            "add at least one TLS13_* suite, e.g. TLS13_AES_128_GCM_SHA256",
        );
    }
    let mut kx_groups = Vec::new();
    for (i, name) in t.kx_groups.iter().enumerate() {
        match tls_names::kx_group(name) {
            Some(canon) => kx_groups.push(canon),
            None => c.problem(
                format!("tls.kx_groups[{i}]"),
                format!("unknown key-exchange group {name:?}"),
                format!(
                    "use one of {}",
                    tls_names::KX_GROUPS
                        .iter()
                        .map(|g| g.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
    let mut certificates = Vec::new();
    for (i, cert) in t.certificates.iter().enumerate() {
        let files = CertificateFiles {
            cert: c.path(&cert.cert),
            key: c.path(&cert.key),
        };
        for (field, path, given) in [
            ("cert", &files.cert, &cert.cert),
            ("key", &files.key, &cert.key),
        ] {
            if given.is_empty() {
                c.problem(
                    format!("tls.certificates[{i}].{field}"),
                    "is empty",
                    format!("give the path of the PEM {field} file"),
                );
            } else if !path.is_file() {
                c.problem(
                    format!("tls.certificates[{i}].{field}"),
                    format!("{} does not exist or is not a file", path.display()),
                    format!("give the path of the PEM {field} file"),
                );
            }
        }
        certificates.push(files);
    }
    let max_age = c.duration("tls.hsts.max_age", &t.hsts.max_age, Duration::ZERO);
    if t.hsts.preload && (max_age < Duration::from_secs(31_536_000) || !t.hsts.include_subdomains) {
        c.problem(
            "tls.hsts.preload",
            "preload lists require max_age of at least 1 year and include_subdomains = true",
            "set tls.hsts.max_age = \"365d\" and tls.hsts.include_subdomains = true, or preload = false",
        );
    }
    Tls {
        enabled: t.enabled,
        min_version,
        cipher_suites,
        kx_groups,
        redirect_http: t.redirect_http,
        reload_interval: c.duration("tls.reload_interval", &t.reload_interval, Duration::ZERO),
        certificates,
        hsts: Hsts {
            enabled: t.hsts.enabled,
            max_age,
            include_subdomains: t.hsts.include_subdomains,
            preload: t.hsts.preload,
        },
    }
}

fn validate_log(c: &mut Checker<'_>, l: &raw::RawLog) -> Log {
    let access_log = match l.access_log.as_str() {
        "off" | "" => AccessLogTarget::Off,
        "stdout" => AccessLogTarget::Stdout,
        "stderr" => AccessLogTarget::Stderr,
        path => AccessLogTarget::File(c.path(path)),
    };
    let access_log_format = match l.access_log_format.as_str() {
        "json" => AccessLogFormat::Json,
        "common" => AccessLogFormat::Common,
        other => {
            c.problem(
                "log.access_log_format",
                format!("unknown format {other:?}"),
                "use \"json\" or \"common\"",
            );
            AccessLogFormat::Json
        }
    };
    if l.level.trim().is_empty() {
        c.problem(
            "log.level",
            "is empty",
            "use error, warn, info, debug or trace",
        );
    }
    Log {
        level: l.level.clone(),
        access_log,
        access_log_format,
    }
}

/// Validates an app created or updated through the admin API. Problems name
/// the JSON field; a static folder must be an absolute path (there is no
/// config file for a relative one to be relative to).
pub fn validate_api_app(a: &RawApp) -> Result<App, Vec<Problem>> {
    let mut c = Checker {
        problems: Vec::new(),
        base_dir: Path::new("/"),
    };
    if let Some(d) = &a.static_dir {
        if !Path::new(d).is_absolute() {
            c.problem(
                "static",
                format!("{d:?} is not an absolute path"),
                "give the bundle's folder as an absolute path, e.g. \"/srv/apps/notes\"",
            );
        }
    }
    let app = validate_app(&mut c, "", a, AppOrigin::Api);
    match app {
        Some(app) if c.problems.is_empty() => Ok(app),
        _ => Err(c.problems),
    }
}

/// `prefix` is put before every key a problem names (`apps[2].` for the
/// config file, empty for the admin API).
fn validate_app(c: &mut Checker<'_>, prefix: &str, a: &RawApp, origin: AppOrigin) -> Option<App> {
    let key = |field: &str| format!("{prefix}{field}");
    let before = c.problems.len();
    let name_ok = !a.name.is_empty()
        && a.name.len() <= 64
        && a.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && a.name.as_bytes()[0].is_ascii_alphanumeric();
    if !name_ok {
        c.problem(
            key("name"),
            format!("{:?} is not a valid app name", a.name),
            "use 1-64 letters, digits, '-' or '_', starting with a letter or digit",
        );
    }
    let host = match a.host.as_deref() {
        None | Some("") => None,
        Some(h) => {
            let bare = host_without_port(h);
            let ok = bare.len() <= 253
                && bare.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !ok || h.contains(':') {
                c.problem(
                    key("host"),
                    format!("{h:?} is not a host name"),
                    "write a bare host name such as \"grafana.example.com\" (no scheme or port)",
                );
            }
            Some(bare)
        }
    };
    let path = match a.path.as_deref() {
        Some(p) => normalize_prefix(p).unwrap_or_else(|| {
            c.problem(
                key("path"),
                format!("{p:?} is not a path prefix"),
                "write a prefix starting with '/', e.g. \"/grafana\"",
            );
            "/".into()
        }),
        None if host.is_some() => "/".into(),
        None => {
            c.problem(
                key("path"),
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
        (Some(u), None) => parse_upstream(u, a.h2c)
            .map(AppSource::Upstream)
            .map_err(|e| c.problem(key("upstream"), e.0, e.1))
            .ok(),
        (None, Some(d)) => {
            let dir = c.path(d);
            if !dir.is_dir() {
                c.problem(
                    key("static"),
                    format!("{} is not a folder", dir.display()),
                    "give the folder of a web-app bundle (it holds manifest.json)",
                );
                None
            } else {
                match manifest::read(&dir) {
                    Ok(m) => Some(AppSource::Static(StaticBundle { dir, manifest: m })),
                    Err(e) => {
                        c.problem(
                            key("static"),
                            e,
                            "add a manifest.json such as {\"name\": \"My app\"} to the folder",
                        );
                        None
                    }
                }
            }
        }
        (Some(_), Some(_)) => {
            c.problem(
                key("upstream"),
                "an app has either upstream or static, not both",
                "remove one of them",
            );
            None
        }
        (None, None) => {
            c.problem(
                key("upstream"),
                "the app has no source",
                "set upstream = \"http://HOST:PORT\" or static = \"DIR\"",
            );
            None
        }
    };
    if a.h2c && a.static_dir.is_some() {
        c.problem(key("h2c"), "h2c applies to upstream apps only", "remove it");
    }
    let max_body_size = match &a.max_body_size {
        Some(v) => c.size(&key("max_body_size"), v, 0),
        None => parse_size(raw::DEFAULT_MAX_BODY_SIZE).expect("default parses"),
    };
    let timeouts = Timeouts {
        connect: c.duration(
            &key("timeouts.connect"),
            &a.timeouts.connect,
            Duration::from_millis(1),
        ),
        response_header: c.duration(
            &key("timeouts.response_header"),
            &a.timeouts.response_header,
            Duration::from_millis(1),
        ),
        idle: c.duration(
            &key("timeouts.idle"),
            &a.timeouts.idle,
            Duration::from_millis(1),
        ),
        queue: c.duration(&key("timeouts.queue"), &a.timeouts.queue, Duration::ZERO),
    };
    let max_upstream_connections = c.count(
        &key("max_upstream_connections"),
        a.max_upstream_connections
            .unwrap_or(DEFAULT_MAX_UPSTREAM_CONNECTIONS),
        1,
        1_000_000,
    ) as usize;
    let recording = a.recording.enabled.then(|| {
        let r = &a.recording;
        AppRecording {
            body_limit: {
                // Each recorded body is held whole (up to this) to be
                // redacted, and must fit the recorder's bounded queue.
                let n = c.size(&key("recording.body_limit"), &r.body_limit, 0);
                if n > MAX_RECORDED_BODY {
                    c.problem(
                        key("recording.body_limit"),
                        format!("{n} bytes is more than a recorded body may keep"),
                        "use at most \"16MiB\"",
                    );
                }
                n.min(MAX_RECORDED_BODY)
            },
            // The built-in lists always apply; the app's keys add to them
            // (redact_json_fields is the older name of redact_fields).
            redactor: moat_policy::redact::Redactor::new(
                &r.redact_headers,
                &[r.redact_fields.clone(), r.redact_json_fields.clone()].concat(),
            ),
            bucket: r.bucket.clone().filter(|b| !b.is_empty()),
            policy: moat_policy::retention::Override {
                retain_for_days: r.policy.retain_for_days,
                delete_after_days: r.policy.delete_after_days,
            },
            on_storage_failure: match r.on_storage_failure.as_str() {
                "refuse" => StorageFailure::Refuse,
                "allow_unrecorded" => StorageFailure::AllowUnrecorded,
                other => {
                    c.problem(
                        key("recording.on_storage_failure"),
                        format!("{other:?} is not a choice"),
                        "write \"refuse\" (no recording, no session) or \"allow_unrecorded\"",
                    );
                    StorageFailure::Refuse
                }
            },
        }
    });
    let auth = match a.auth.as_deref() {
        None | Some("system") => AppAuth::System,
        Some("none") => AppAuth::None,
        Some(other) => {
            c.problem(
                key("auth"),
                format!("{other:?} is not an authentication mode"),
                "write auth = \"system\" (sign in through moat) or auth = \"none\" (open to anyone)",
            );
            AppAuth::System
        }
    };
    if a.identity_jwt && auth == AppAuth::None {
        c.problem(
            key("identity_jwt"),
            "identity_jwt needs a signed-in user, and auth = \"none\" has none",
            "set auth = \"system\", or remove identity_jwt",
        );
    }
    let headers = validate_app_headers(c, prefix, &a.headers);
    let cors = a
        .cors
        .as_ref()
        .map(|r| validate_cors(c, &format!("{prefix}cors."), r));
    let csrf = Csrf {
        enabled: !a.security.disable_csrf_protection,
        trusted_origins: origins(
            c,
            &key("security.csrf_trusted_origins"),
            &a.security.csrf_trusted_origins,
        ),
        bypass: path_patterns(c, &key("security.csrf_bypass"), &a.security.csrf_bypass),
    };
    let allow_underscore_headers = a
        .security
        .allow_underscore_headers
        .iter()
        .filter_map(|h| match http::HeaderName::from_bytes(h.as_bytes()) {
            Ok(name) if h.contains('_') => Some(name.as_str().to_owned()),
            Ok(_) => {
                c.problem(
                    key("security.allow_underscore_headers"),
                    format!("{h:?} has no _ (headers without one always pass)"),
                    "list only header names that contain _",
                );
                None
            }
            Err(_) => {
                c.problem(
                    key("security.allow_underscore_headers"),
                    format!("{h:?} is not a header name"),
                    "write a header name such as \"X_Custom_Id\"",
                );
                None
            }
        })
        .collect();
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
                            format!("{prefix}rate_limit[{j}].path"),
                            e,
                            "write a path such as \"/login\" or \"/api/*\"",
                        )
                    })
                    .ok()
            }),
        })
        .collect();
    let mut csp = validate_app_csp(c, &format!("{prefix}csp."), &a.csp, None);
    if let Some(AppSource::Static(bundle)) = &source {
        // The bundle's own layers: what its manifest requests, and the
        // admin's config.json beside it. Problems name the file.
        let manifest_file = bundle.dir.join(manifest::FILE_NAME);
        for (directive, sources) in &bundle.manifest.csp {
            for (j, s) in sources.iter().enumerate() {
                match Grant::new(directive, s) {
                    Ok(g) => csp.requested.push(g),
                    Err(e) => {
                        c.problems.push(
                            Problem::new(
                                key("static"),
                                format!(
                                    "{}: csp.{directive}[{j}]: {}",
                                    manifest_file.display(),
                                    e.message
                                ),
                            )
                            .fix(e.fix.unwrap_or_else(|| {
                                "correct the request in the app's manifest".into()
                            })),
                        )
                    }
                }
            }
        }
        match manifest::read_admin_file(&bundle.dir) {
            Ok(Some(file)) => {
                let path = bundle.dir.join(manifest::ADMIN_FILE_NAME);
                let layer = validate_app_csp(c, &key("static"), &file.csp, Some(&path));
                csp.merge(layer);
            }
            Ok(None) => {}
            Err(e) => c.problem(
                key("static"),
                e,
                "correct the JSON of config.json, or remove it",
            ),
        }
    }
    if c.problems.len() > before {
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
        identity_jwt: a.identity_jwt,
        origin,
        headers,
        csp,
        cors: cors.flatten(),
        csrf,
        rate_limits,
        recording,
        allow_encoded_slashes: a.security.allow_encoded_slashes,
        allow_underscore_headers,
    })
}

/// The most of one body a recording keeps.
const MAX_RECORDED_BODY: u64 = 16 << 20;

/// Upstream requests in flight per app when the app sets none.
const DEFAULT_MAX_UPSTREAM_CONNECTIONS: i64 = 512;

/// (message, fix)
struct UpstreamError(String, String);

fn parse_upstream(u: &str, h2c: bool) -> Result<Upstream, UpstreamError> {
    let fix = "write upstream = \"http://HOST:PORT\", e.g. \"http://127.0.0.1:3000\"".to_owned();
    let uri: http::Uri = u
        .parse()
        .map_err(|e| UpstreamError(format!("{u:?} is not a URL: {e}"), fix.clone()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(UpstreamError(
                "https upstreams are not supported yet".into(),
                "reach the upstream over http on a private address, e.g. \"http://127.0.0.1:3000\""
                    .into(),
            ));
        }
        _ => return Err(UpstreamError(format!("{u:?} has no http:// scheme"), fix)),
    }
    let Some(authority) = uri.authority().cloned() else {
        return Err(UpstreamError(format!("{u:?} has no host"), fix));
    };
    if authority.as_str().contains('@') {
        return Err(UpstreamError(
            "credentials in the upstream URL are not supported".into(),
            "remove user:password@ from the URL".into(),
        ));
    }
    if uri.query().is_some() {
        return Err(UpstreamError(
            "the upstream URL must not have a query".into(),
            fix,
        ));
    }
    let origin = http::Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query("/")
        .build()
        .map_err(|e| UpstreamError(e.to_string(), fix))?;
    Ok(Upstream {
        origin,
        base_path: uri.path().trim_end_matches('/').to_owned(),
        h2c,
    })
}

/// `$2b$12$` + 53 characters of bcrypt's base64 (salt and hash), with cost
/// 4 to 31.
fn is_bcrypt_hash(h: &str) -> bool {
    let parts: Vec<&str> = h.split('$').collect();
    matches!(parts.as_slice(), ["", v, cost, rest]
        if matches!(*v, "2a" | "2b" | "2x" | "2y")
            && cost.len() == 2
            && cost.parse::<u32>().is_ok_and(|c| (4..=31).contains(&c))
            && rest.len() == 53
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/'))
}

/// A header setting: "off" (any case) turns it off; otherwise one of
/// `allowed` (case-insensitively, returned as listed), or any valid header
/// value when `allowed` is empty.
fn header_setting(c: &mut Checker<'_>, key: &str, v: &str, allowed: &[&str]) -> Option<String> {
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

fn validate_headers(c: &mut Checker<'_>, h: &raw::RawHeaders) -> Headers {
    Headers {
        frame_options: header_setting(c, "headers.frame_options", &h.frame_options, FRAME_OPTIONS),
        content_type_options: header_setting(
            c,
            "headers.content_type_options",
            &h.content_type_options,
            CONTENT_TYPE_OPTIONS,
        ),
        referrer_policy: header_setting(
            c,
            "headers.referrer_policy",
            &h.referrer_policy,
            REFERRER_POLICY,
        ),
        cross_origin_opener_policy: header_setting(
            c,
            "headers.cross_origin_opener_policy",
            &h.cross_origin_opener_policy,
            COOP,
        ),
        cross_origin_embedder_policy: header_setting(
            c,
            "headers.cross_origin_embedder_policy",
            &h.cross_origin_embedder_policy,
            COEP,
        ),
        cross_origin_resource_policy: header_setting(
            c,
            "headers.cross_origin_resource_policy",
            &h.cross_origin_resource_policy,
            CORP,
        ),
        permissions_policy: header_setting(
            c,
            "headers.permissions_policy",
            &h.permissions_policy,
            &[],
        ),
        hide_upstream: hide_list(c, "headers.hide_upstream", &h.hide_upstream),
    }
}

fn validate_app_headers(
    c: &mut Checker<'_>,
    prefix: &str,
    h: &raw::RawAppHeaders,
) -> HeaderOverrides {
    let key = |f: &str| format!("{prefix}headers.{f}");
    let one = |c: &mut Checker<'_>, f: &str, v: &Option<String>, allowed: &[&str]| {
        v.as_ref().map(|v| header_setting(c, &key(f), v, allowed))
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
        hide_upstream: hide_list(c, &key("hide_upstream"), &h.hide_upstream),
    }
}

/// "DIRECTIVE SOURCE" entries → grants. Problems go on `key[i]`, or, for a
/// layer read from a file, on `key` with the file named in the message.
fn grants(
    c: &mut Checker<'_>,
    key: &str,
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
                        key.to_owned(),
                        format!("{}: csp.{list_name}[{i}]: {}", f.display(), e.message),
                    ),
                    None => (format!("{key}{list_name}[{i}]"), e.message),
                };
                c.problems.push(
                    Problem::new(k, message)
                        .fix(e.fix.unwrap_or_else(|| "correct the entry".into())),
                );
            }
        }
    }
    out
}

/// An app's admin CSP layer from moat.toml (`file` = None, keys under
/// `prefix`) or from a bundle's config.json.
fn validate_app_csp(
    c: &mut Checker<'_>,
    prefix: &str,
    l: &raw::RawAppCsp,
    file: Option<&Path>,
) -> AppCsp {
    let allow_unsafe = grants(c, prefix, "allow_unsafe", &l.allow_unsafe, file);
    let add = grants(c, prefix, "add", &l.add, file);
    for (i, g) in add.iter().enumerate() {
        if let Some(why) = csp::danger(&g.directive, &g.source) {
            if !allow_unsafe.contains(g) {
                let (k, message) = match file {
                    Some(f) => (
                        prefix.to_owned(),
                        format!("{}: csp.add[{i}]: {g} is dangerous: {why}", f.display()),
                    ),
                    None => (
                        format!("{prefix}add[{i}]"),
                        format!("{g} is dangerous: {why}"),
                    ),
                };
                c.problems.push(Problem::new(k, message).fix(format!(
                    "if you accept the risk for this app, also list \"{g}\" in allow_unsafe"
                )));
            }
        }
    }
    AppCsp {
        requested: Vec::new(),
        add,
        remove: grants(c, prefix, "remove", &l.remove, file),
        approve: grants(c, prefix, "approve", &l.approve, file),
        approve_all: l.approve_all,
        allow_unsafe,
        report_only: l.report_only,
        nonce: l.nonce,
    }
}

fn validate_csp(c: &mut Checker<'_>, raw: &raw::RawCsp) -> Csp {
    let allow_unsafe = grants(c, "csp.", "allow_unsafe", &raw.allow_unsafe, None);
    let base = match Policy::parse(&raw.policy) {
        Ok(p) => p,
        Err(errors) => {
            for e in errors {
                c.problems.push(
                    Problem::new("csp.policy", e.message)
                        .fix(e.fix.unwrap_or_else(|| "correct the policy".into())),
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
                        "csp.policy",
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
                    format!("csp.allow[{i}].directive"),
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
                format!("csp.allow[{i}].source"),
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

/// Addresses and CIDR ranges.
fn nets(c: &mut Checker<'_>, key: &str, list: &[String]) -> Vec<IpNet> {
    let mut out = Vec::new();
    for (i, p) in list.iter().enumerate() {
        match p
            .parse::<IpNet>()
            .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
        {
            Ok(n) => out.push(n.trunc()),
            Err(_) => c.problem(
                format!("{key}[{i}]"),
                format!("{p:?} is not an IP address or CIDR range"),
                "write e.g. \"10.0.0.1\" or \"10.0.0.0/8\"",
            ),
        }
    }
    out
}

/// Exact origins (`scheme://host[:port]`).
fn origins(c: &mut Checker<'_>, key: &str, list: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, o) in list.iter().enumerate() {
        match OriginPattern::parse(o) {
            Ok(OriginPattern::Exact(e)) if e != "null" => out.push(e),
            _ => c.problem(
                format!("{key}[{i}]"),
                format!("{o:?} is not an exact origin"),
                "write scheme, host and port only, e.g. \"https://sso.example.com\"",
            ),
        }
    }
    out
}

fn path_patterns(c: &mut Checker<'_>, key: &str, list: &[String]) -> Vec<PathPattern> {
    list.iter()
        .enumerate()
        .filter_map(|(i, p)| {
            PathPattern::parse(p)
                .map_err(|e| {
                    c.problem(
                        format!("{key}[{i}]"),
                        e,
                        "write a path such as \"/hooks/*\"",
                    )
                })
                .ok()
        })
        .collect()
}

/// Why an app names a zone that does not exist, if it does.
pub fn unknown_zone(zones: &[String], app: &App) -> Option<String> {
    app.rate_limits
        .iter()
        .find(|l| !zones.contains(&l.zone))
        .map(|l| format!("no rate-limit zone is named {:?}", l.zone))
}

fn validate_rate_limit(c: &mut Checker<'_>, r: &raw::RawRateLimit) -> RateLimits {
    let capacity = if r.max_keys_per_zone < 1 {
        c.problem(
            "rate_limit.max_keys_per_zone",
            "must be at least 1",
            "raise the value",
        );
        1
    } else {
        r.max_keys_per_zone as usize
    };
    let mut zones: Vec<NamedZone> = Vec::new();
    for (i, z) in r.zones.iter().enumerate() {
        let key = |f: &str| format!("rate_limit.zones[{i}].{f}");
        let name_ok = !z.name.is_empty()
            && z.name.len() <= 64
            && z.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            c.problem(
                key("name"),
                format!("{:?} is not a valid zone name", z.name),
                "use 1-64 letters, digits, '-' or '_'",
            );
        } else if zones.iter().any(|x| x.name == z.name) {
            c.problem(
                key("name"),
                format!("zone {:?} is defined twice", z.name),
                "give every zone its own name",
            );
        }
        let limit_key = match z.key.as_str() {
            "client_ip" => Some(LimitKey::ClientIp),
            "user" => Some(LimitKey::User),
            k => match k
                .strip_prefix("header:")
                .map(|h| http::HeaderName::from_bytes(h.trim().as_bytes()))
            {
                Some(Ok(h)) => Some(LimitKey::Header(h)),
                _ => {
                    c.problem(
                        key("key"),
                        format!("{k:?} is not a zone key"),
                        "write \"client_ip\", \"user\" or \"header:NAME\"",
                    );
                    None
                }
            },
        };
        let rate = Rate::parse(&z.rate)
            .map_err(|e| c.problem(key("rate"), e, "write e.g. \"100r/s\" or \"10r/m\""))
            .ok();
        if z.burst < 0 || z.burst > 1_000_000 {
            c.problem(
                key("burst"),
                format!("{} is out of range", z.burst),
                "use 0 to 1000000",
            );
        }
        if let (Some(limit_key), Some(rate)) = (limit_key, rate) {
            zones.push(NamedZone {
                name: z.name.clone(),
                key: limit_key,
                zone: Zone {
                    rate,
                    burst: z.burst.clamp(0, 1_000_000) as u32,
                    nodelay: z.nodelay,
                    capacity,
                },
            });
        }
    }
    if r.max_connections_per_client < 0 {
        c.problem(
            "rate_limit.max_connections_per_client",
            "is negative",
            "use 0 for no cap, or a positive number",
        );
    }
    RateLimits {
        zones,
        exempt: nets(c, "rate_limit.exempt", &r.exempt),
        max_connections_per_client: r.max_connections_per_client.max(0) as usize,
        max_requests_in_flight_per_client: c.count(
            "rate_limit.max_requests_in_flight_per_client",
            r.max_requests_in_flight_per_client,
            0,
            1_000_000,
        ) as usize,
    }
}

const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn validate_cors(c: &mut Checker<'_>, prefix: &str, r: &raw::RawCors) -> Option<CorsPolicy> {
    let key = |f: &str| format!("{prefix}{f}");
    let before = c.problems.len();
    if r.allow_origin.is_empty() {
        c.problem(
            key("allow_origin"),
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
                        format!("{prefix}allow_origin[{i}]"),
                        "\"*\" cannot be combined with allow_credentials = true (browsers refuse it, and it would let every site read signed-in responses)",
                        "list the origins that may send credentials, or set allow_credentials = false",
                    );
                }
                origins.push(p);
            }
            Err(e) => c.problem(
                format!("{prefix}allow_origin[{i}]"),
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
                format!("{prefix}allow_methods[{i}]"),
                format!("{m:?} is not an HTTP method"),
                "write e.g. \"GET\" or \"PUT\"",
            ),
        }
    }
    let names = |c: &mut Checker<'_>, field: &str, list: &[String]| -> Vec<String> {
        list.iter()
            .enumerate()
            .filter_map(
                |(i, h)| match http::HeaderName::from_bytes(h.trim().as_bytes()) {
                    Ok(n) => Some(n.as_str().to_owned()),
                    Err(_) => {
                        c.problem(
                            format!("{prefix}{field}[{i}]"),
                            format!("{h:?} is not a header name"),
                            "write e.g. \"Content-Type\"",
                        );
                        None
                    }
                },
            )
            .collect()
    };
    let allow_headers = names(c, "allow_headers", &r.allow_headers);
    let expose_headers = names(c, "expose_headers", &r.expose_headers);
    let max_age = r.max_age.as_ref().map(|m| {
        c.duration(&key("max_age"), m, Duration::ZERO)
            .as_secs()
            .min(u64::from(u32::MAX)) as u32
    });
    if c.problems.len() > before {
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
