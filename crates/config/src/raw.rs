//! The file format: what an admin writes in `moat.toml`.
//!
//! Every struct denies unknown keys, so a typo is an error and not a setting
//! silently ignored. Defaults here are the secure defaults; `default.toml`
//! documents each one. Sizes and durations are kept as written ([`Human`]) so
//! validation can name the key when one does not parse.
//!
//! One file (over 500 lines, all type definitions) so the file format
//! reads top to bottom in the order of `default.toml`.

use serde::{Deserialize, Serialize};

use crate::error::Problem;

/// A size or duration: an integer (bytes or seconds) or a string with a unit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Human {
    Int(i64),
    Str(String),
}

impl Human {
    pub(crate) fn s(s: &str) -> Human {
        Human::Str(s.to_owned())
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub data_dir: Option<String>,
    pub server: RawServer,
    pub tls: RawTls,
    pub security: RawSecurity,
    pub auth: RawAuth,
    pub portal: RawPortal,
    pub headers: RawHeaders,
    pub csp: RawCsp,
    pub rate_limit: RawRateLimit,
    pub recording: RawRecording,
    pub log: RawLog,
    pub apps: Vec<RawApp>,
}

/// Security headers moat sends on every response. Each is a header value,
/// or "off" for none.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHeaders {
    pub frame_options: String,
    pub content_type_options: String,
    pub referrer_policy: String,
    pub cross_origin_opener_policy: String,
    pub cross_origin_embedder_policy: String,
    pub cross_origin_resource_policy: String,
    pub permissions_policy: String,
    pub hide_upstream: Vec<String>,
}

impl Default for RawHeaders {
    fn default() -> Self {
        RawHeaders {
            frame_options: "SAMEORIGIN".into(),
            content_type_options: "nosniff".into(),
            referrer_policy: "strict-origin-when-cross-origin".into(),
            cross_origin_opener_policy: "same-origin".into(),
            cross_origin_embedder_policy: "off".into(),
            cross_origin_resource_policy: "same-origin".into(),
            permissions_policy: DEFAULT_PERMISSIONS_POLICY.into(),
            hide_upstream: Vec::new(),
        }
    }
}

/// Powerful browser features no app gets unless the admin says so.
pub const DEFAULT_PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()";

/// Per-app overrides of `[headers]`; absent keys keep the global value.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAppHeaders {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_options: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type_options: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_origin_opener_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_origin_embedder_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_origin_resource_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions_policy: Option<String>,
    pub hide_upstream: Vec<String>,
}

/// The base Content-Security-Policy and server-wide approvals.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCsp {
    pub policy: String,
    pub report_only: bool,
    /// Dangerous sources the base policy may hold ("DIRECTIVE SOURCE").
    pub allow_unsafe: Vec<String>,
    pub allow: Vec<RawAllowRule>,
}

/// The base policy when none is configured.
pub const DEFAULT_CSP: &str = "default-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'; form-action 'self'";

impl Default for RawCsp {
    fn default() -> Self {
        RawCsp {
            policy: DEFAULT_CSP.into(),
            report_only: false,
            allow_unsafe: Vec::new(),
            allow: Vec::new(),
        }
    }
}

/// Named rate-limit zones and what no zone applies to.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRateLimit {
    pub zones: Vec<RawZone>,
    /// Client addresses (or CIDR ranges) no zone limits.
    pub exempt: Vec<String>,
    /// Concurrent connections from one client address; 0: no cap.
    pub max_connections_per_client: i64,
    /// Requests one client address may have in flight at once; 0: no cap.
    pub max_requests_in_flight_per_client: i64,
    /// Keys one zone tracks at most.
    pub max_keys_per_zone: i64,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        RawRateLimit {
            zones: Vec::new(),
            exempt: Vec::new(),
            max_connections_per_client: 256,
            max_requests_in_flight_per_client: 256,
            max_keys_per_zone: 100_000,
        }
    }
}

/// `[[rate_limit.zones]]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    pub name: String,
    /// `client_ip`, `user` or `header:NAME`.
    #[serde(default = "default_zone_key")]
    pub key: String,
    /// `100r/s` or `10r/m`.
    pub rate: String,
    #[serde(default)]
    pub burst: i64,
    #[serde(default)]
    pub nodelay: bool,
}

fn default_zone_key() -> String {
    "client_ip".into()
}

/// `[[apps.rate_limit]]`: a zone applied to an app, or to its paths
/// matching `path`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAppLimit {
    pub zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `[apps.cors]`: present means moat manages CORS for the app.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RawCors {
    pub allow_origin: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<Human>,
    pub allow_credentials: bool,
}

impl Default for RawCors {
    fn default() -> Self {
        RawCors {
            allow_origin: Vec::new(),
            allow_methods: vec!["GET".into(), "HEAD".into(), "POST".into()],
            allow_headers: Vec::new(),
            expose_headers: Vec::new(),
            max_age: None,
            allow_credentials: false,
        }
    }
}

/// `[recording]`: where recordings are written while sessions run.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRecording {
    /// Empty: DATA_DIR/recordings.
    pub local_path: String,
    pub minimum_available_capacity: Human,
    /// Recordings in progress at once, in all and per client address.
    pub max_open: i64,
    pub max_open_per_client: i64,
    /// The global storage policy; absent: recordings are kept until
    /// deleted by hand, and may be deleted at any time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<RawRetention>,
}

/// `[recording.policy]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub retain_for_days: i64,
    #[serde(default = "yes")]
    pub retain_for_days_overridable: bool,
    pub delete_after_days: i64,
    #[serde(default = "yes")]
    pub delete_after_days_overridable: bool,
}

fn yes() -> bool {
    true
}

/// `[apps.recording.policy]`: changes to the global policy, where allowed.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RawRetentionOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_for_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_after_days: Option<i64>,
}

impl Default for RawRecording {
    fn default() -> Self {
        RawRecording {
            local_path: String::new(),
            minimum_available_capacity: Human::s("500MiB"),
            max_open: 1000,
            max_open_per_client: 20,
            policy: None,
        }
    }
}

/// `[apps.recording]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RawAppRecording {
    pub enabled: bool,
    pub body_limit: Human,
    /// Headers redacted besides the built-in list.
    pub redact_headers: Vec<String>,
    /// Field names (JSON, form, multipart, query) redacted besides the
    /// built-in list.
    pub redact_fields: Vec<String>,
    /// The older name of `redact_fields`.
    pub redact_json_fields: Vec<String>,
    pub on_storage_failure: String,
    /// The storage bucket closed recordings move to (`moat bucket create`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    pub policy: RawRetentionOverride,
}

impl Default for RawAppRecording {
    fn default() -> Self {
        RawAppRecording {
            enabled: false,
            body_limit: Human::s("1MiB"),
            redact_headers: Vec::new(),
            redact_fields: Vec::new(),
            redact_json_fields: Vec::new(),
            on_storage_failure: "refuse".into(),
            bucket: None,
            policy: RawRetentionOverride::default(),
        }
    }
}

/// `[apps.security]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RawAppSecurity {
    pub disable_csrf_protection: bool,
    pub csrf_trusted_origins: Vec<String>,
    /// Path patterns (`*` for any characters) CSRF protection skips.
    pub csrf_bypass: Vec<String>,
    /// Pass `%2F` / `%5C` in paths to this app (refused with 400 otherwise).
    pub allow_encoded_slashes: bool,
    /// Request headers with `_` in their names this app receives (all
    /// others are dropped: CGI-style servers read `_` as `-`).
    pub allow_underscore_headers: Vec<String>,
}

/// `[[csp.allow]]`: approves matching requests of every app.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllowRule {
    /// An exact source, or `regex:PATTERN` (anchored).
    pub source: String,
    /// Only requests for this directive; absent: any directive.
    pub directive: Option<String>,
}

/// An app's admin CSP layer (`[apps.csp]`, or `csp` in an admin-owned
/// `config.json` beside a bundle's manifest). Entries are "DIRECTIVE SOURCE".
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RawAppCsp {
    pub add: Vec<String>,
    pub remove: Vec<String>,
    pub approve: Vec<String>,
    pub approve_all: bool,
    pub allow_unsafe: Vec<String>,
    pub report_only: bool,
    pub nonce: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub https: String,
    pub http: String,
    pub admin_socket: String,
    pub workers: i64,
    pub max_connections: i64,
    pub header_read_timeout: Human,
    pub tls_handshake_timeout: Human,
    pub max_header_size: Human,
    pub max_uri_length: Human,
    pub shutdown_timeout: Human,
    pub http2: bool,
    pub keepalive_timeout: Human,
    pub min_body_rate: Human,
    pub http2_max_concurrent_streams: i64,
    pub redirect_max_connections: i64,
    pub redirect_max_connections_per_client: i64,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            https: "127.0.0.1:8443".into(),
            http: "127.0.0.1:8080".into(),
            admin_socket: String::new(),
            workers: 0,
            max_connections: 10_000,
            header_read_timeout: Human::s("10s"),
            tls_handshake_timeout: Human::s("10s"),
            max_header_size: Human::s("16KiB"),
            max_uri_length: Human::s("8KiB"),
            shutdown_timeout: Human::s("30s"),
            http2: true,
            keepalive_timeout: Human::s("60s"),
            min_body_rate: Human::s("1KiB"),
            http2_max_concurrent_streams: 100,
            redirect_max_connections: 1024,
            redirect_max_connections_per_client: 8,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTls {
    pub enabled: bool,
    pub min_version: String,
    pub cipher_suites: Vec<String>,
    pub kx_groups: Vec<String>,
    pub redirect_http: bool,
    pub reload_interval: Human,
    pub certificates: Vec<RawCertificate>,
    pub local_ca: RawLocalCa,
    pub acme: Vec<RawAcme>,
    pub acme_for_app_hosts: bool,
    pub acme_defaults: RawAcmeAccount,
    pub on_demand: RawOnDemand,
    pub hsts: RawHsts,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOnDemand {
    pub ask: String,
}

/// `[[tls.acme]]`: the domains, and any account key that differs from
/// `[tls.acme_defaults]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAcme {
    pub domains: Vec<String>,
    pub directory: Option<String>,
    pub email: Option<String>,
    pub challenge: Option<String>,
    pub eab_kid: Option<String>,
    pub eab_hmac_key: Option<String>,
    pub directory_ca: Option<String>,
    pub dns_hook: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAcmeAccount {
    pub directory: String,
    pub email: String,
    pub challenge: String,
    pub eab_kid: String,
    pub eab_hmac_key: String,
    pub directory_ca: String,
    pub dns_hook: String,
}

impl Default for RawAcmeAccount {
    fn default() -> Self {
        RawAcmeAccount {
            directory: "letsencrypt".into(),
            email: String::new(),
            challenge: "http-01".into(),
            eab_kid: String::new(),
            eab_hmac_key: String::new(),
            directory_ca: String::new(),
            dns_hook: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLocalCa {
    pub leaf_lifetime: Human,
}

impl Default for RawLocalCa {
    fn default() -> Self {
        RawLocalCa {
            leaf_lifetime: Human::s("7d"),
        }
    }
}

impl Default for RawTls {
    fn default() -> Self {
        RawTls {
            enabled: true,
            min_version: "1.2".into(),
            cipher_suites: Vec::new(),
            kx_groups: Vec::new(),
            redirect_http: true,
            reload_interval: Human::s("5s"),
            certificates: Vec::new(),
            local_ca: RawLocalCa::default(),
            acme: Vec::new(),
            acme_for_app_hosts: false,
            acme_defaults: RawAcmeAccount::default(),
            on_demand: RawOnDemand::default(),
            hsts: RawHsts::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHsts {
    pub enabled: bool,
    pub max_age: Human,
    pub include_subdomains: bool,
    pub preload: bool,
}

impl Default for RawHsts {
    fn default() -> Self {
        RawHsts {
            enabled: true,
            max_age: Human::s("365d"),
            include_subdomains: false,
            preload: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSecurity {
    pub trusted_proxies: Vec<String>,
    pub admin_password_bcrypt: String,
    pub admin_user: String,
    pub admin_over_tcp: bool,
    pub disable_csrf_protection: bool,
    pub csrf_trusted_origins: Vec<String>,
}

impl Default for RawSecurity {
    fn default() -> Self {
        RawSecurity {
            trusted_proxies: Vec::new(),
            admin_password_bcrypt: String::new(),
            admin_user: "admin".into(),
            admin_over_tcp: false,
            disable_csrf_protection: false,
            csrf_trusted_origins: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    pub system_account: bool,
    pub idle_timeout: Human,
    pub absolute_timeout: Human,
    pub basic_auth: bool,
    pub require_totp: bool,
    /// `[[auth.oidc]]`: OpenID Connect providers people sign in through.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub oidc: Vec<RawOidc>,
    /// `[auth.captcha]`: a check on the login page that a bot cannot
    /// script around.
    pub captcha: RawCaptcha,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCaptcha {
    /// `""` (off), `pow`, `recaptcha`, `hcaptcha` or `turnstile`.
    pub provider: String,
    pub after_failures: i64,
    pub difficulty: i64,
    pub site_key: String,
    /// SECURITY: never printed (see the Debug below).
    pub secret: String,
    pub secret_file: String,
    pub verify_url: String,
    pub timeout: Human,
}

impl Default for RawCaptcha {
    fn default() -> Self {
        RawCaptcha {
            provider: String::new(),
            after_failures: 3,
            difficulty: 18,
            site_key: String::new(),
            secret: String::new(),
            secret_file: String::new(),
            verify_url: String::new(),
            timeout: Human::s("5s"),
        }
    }
}

impl std::fmt::Debug for RawCaptcha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawCaptcha")
            .field("provider", &self.provider)
            .field("after_failures", &self.after_failures)
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// One `[[auth.oidc]]` entry.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOidc {
    pub name: String,
    pub display_name: String,
    pub issuer: String,
    pub client_id: String,
    /// SECURITY: never printed (see the Debug below).
    pub client_secret: String,
    pub client_secret_file: String,
    pub scopes: Option<Vec<String>>,
    pub groups_claim: Option<String>,
    pub user_claim: Option<String>,
    pub userinfo: bool,
    pub allowed_users: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub allowed_domains: Vec<String>,
    /// A PEM file of the CA that signed the provider's HTTPS certificate
    /// (a private provider); empty: the system's roots.
    pub ca: String,
}

impl std::fmt::Debug for RawOidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawOidc")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// An app's `auth`: one source or mode, or a list of sources.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RawAppAuth {
    One(String),
    Many(Vec<String>),
}

impl From<String> for RawAppAuth {
    fn from(s: String) -> Self {
        RawAppAuth::One(s)
    }
}

impl From<&str> for RawAppAuth {
    fn from(s: &str) -> Self {
        RawAppAuth::One(s.to_owned())
    }
}

impl Default for RawAuth {
    fn default() -> Self {
        RawAuth {
            system_account: true,
            idle_timeout: Human::s("1h"),
            absolute_timeout: Human::s("12h"),
            basic_auth: true,
            require_totp: false,
            oidc: Vec::new(),
            captcha: RawCaptcha::default(),
        }
    }
}

/// The admin portal.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPortal {
    pub enabled: bool,
    pub host: String,
    pub auth: RawAppAuth,
    pub admin_users: Vec<String>,
    pub admin_groups: Vec<String>,
    pub admin_domains: Vec<String>,
    pub idle_timeout: Human,
}

impl Default for RawPortal {
    fn default() -> Self {
        RawPortal {
            enabled: true,
            host: String::new(),
            auth: RawAppAuth::One("system".into()),
            admin_users: Vec::new(),
            admin_groups: Vec::new(),
            admin_domains: Vec::new(),
            idle_timeout: Human::s("15m"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub level: String,
    pub access_log: String,
    pub access_log_format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: "info".into(),
            access_log: "stdout".into(),
            access_log_format: "json".into(),
        }
    }
}

/// One `[[apps]]` entry; also the JSON body that creates or updates an app
/// through the admin API.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawApp {
    pub name: String,
    pub host: Option<String>,
    pub path: Option<String>,
    pub upstream: Option<String>,
    #[serde(rename = "static")]
    pub static_dir: Option<String>,
    pub h2c: bool,
    pub preserve_host: bool,
    pub strip_path: bool,
    pub max_body_size: Option<Human>,
    /// Requests in flight to the upstream at once (each holds one
    /// connection); more wait up to timeouts.queue, then 503.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_upstream_connections: Option<i64>,
    pub timeouts: RawTimeouts,
    /// `"system"` (moat's login; the default when absent), `"none"`,
    /// `"cert"` (a client certificate), `"oidc:NAME"`, or a list of sign-in
    /// sources (`["oidc:corp", "system"]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<RawAppAuth>,
    /// Narrow who of the sign-in sources' users may use the app.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_users: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_domains: Vec<String>,
    pub identity_jwt: bool,
    pub headers: RawAppHeaders,
    pub csp: RawAppCsp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<RawCors>,
    pub security: RawAppSecurity,
    pub rate_limit: Vec<RawAppLimit>,
    pub recording: RawAppRecording,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certs: Option<RawClientCerts>,
}

/// `[apps.client_certs]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawClientCerts {
    pub ca: String,
    /// `"require"` (the default) or `"optional"`.
    pub mode: Option<String>,
    pub crl: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTimeouts {
    pub connect: Human,
    pub response_header: Human,
    pub idle: Human,
    /// Waiting for one of the app's upstream connections when all are busy.
    pub queue: Human,
}

impl Default for RawTimeouts {
    fn default() -> Self {
        RawTimeouts {
            connect: Human::s("5s"),
            response_header: Human::s("60s"),
            idle: Human::s("300s"),
            queue: Human::s("5s"),
        }
    }
}

/// The per-app body limit when an app sets none.
pub const DEFAULT_MAX_BODY_SIZE: &str = "10MiB";

/// Deserializes the file. Errors carry the key path and the line.
pub fn parse(text: &str) -> Result<RawConfig, Problem> {
    let de = toml::Deserializer::parse(text).map_err(|e| toml_problem(text, "", &e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." { String::new() } else { path };
        toml_problem(text, &key, e.inner())
    })
}

fn toml_problem(text: &str, key: &str, e: &toml::de::Error) -> Problem {
    let message = e.message().trim().replace('\n', " ");
    let fix = if message.contains("unknown field") {
        "remove the key or correct its spelling; `moat config default` lists every key"
    } else if message.contains("did not match any variant of untagged enum Human") {
        return Problem::new(key, "expected a number or a string with a unit")
            .fix("write e.g. \"30s\" for a duration or \"16KiB\" for a size")
            .at_line(e.span().map(|s| crate::error::line_of(text, s.start)));
    } else if message.contains("invalid type") {
        "give the key a value of the type shown in `moat config default`"
    } else {
        "correct the TOML syntax at that line"
    };
    Problem::new(key, message)
        .fix(fix)
        .at_line(e.span().map(|s| crate::error::line_of(text, s.start)))
}
