//! The validated runtime configuration. Every value here has been checked;
//! the server never re-validates.
//!
//! One file (over 500 lines, all type definitions) so the whole runtime
//! config reads top to bottom in the order of the file format.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use moat_policy::client_ip::TrustedProxies;

use crate::manifest::Manifest;

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from; `None` for the embedded default.
    pub source: Option<PathBuf>,
    /// `data_dir` from the file, if set (the binary resolves the default).
    pub data_dir: Option<PathBuf>,
    pub server: Server,
    pub tls: Tls,
    pub security: Security,
    pub auth: Auth,
    pub portal: Portal,
    pub headers: Headers,
    pub csp: Csp,
    pub rate_limit: RateLimits,
    pub recording: Recording,
    pub log: Log,
    pub apps: Vec<App>,
}

/// What a rate-limit zone counts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitKey {
    ClientIp,
    /// The signed-in user (the client address when nobody is signed in).
    User,
    /// A request header's value (requests without it are not counted).
    Header(http::HeaderName),
}

#[derive(Debug, Clone)]
pub struct NamedZone {
    pub name: String,
    pub key: LimitKey,
    pub zone: moat_policy::rate_limit::Zone,
}

#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    pub zones: Vec<NamedZone>,
    pub exempt: Vec<ipnet::IpNet>,
    /// 0: no cap.
    pub max_connections_per_client: usize,
    /// 0: no cap.
    pub max_requests_in_flight_per_client: usize,
}

/// Where recordings are written.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// `None`: DATA_DIR/recordings.
    pub local_path: Option<PathBuf>,
    /// Below this much free space, no new recorded session starts.
    pub minimum_available_capacity: u64,
    /// Recordings in progress at once, in all and per client address;
    /// beyond them a new recorded session is what `on_storage_failure`
    /// says.
    pub max_open: usize,
    pub max_open_per_client: usize,
    /// The global storage policy; `None`: none.
    pub policy: Option<moat_policy::retention::Retention>,
}

/// What to do when a recording cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFailure {
    /// No recording, no session: the request is refused (503).
    Refuse,
    /// Serve the session unrecorded (logged).
    AllowUnrecorded,
}

/// An app's recording settings.
#[derive(Debug, Clone)]
pub struct AppRecording {
    pub body_limit: u64,
    /// The built-in credential names and the app's additions.
    pub redactor: moat_policy::redact::Redactor,
    pub on_storage_failure: StorageFailure,
    /// `None`: recordings stay on local disk.
    pub bucket: Option<String>,
    /// The app's changes to the global storage policy.
    pub policy: moat_policy::retention::Override,
}

impl Config {
    /// An app's storage policy: the global one with the app's changes.
    /// `Err` when the app changes what the global policy does not allow.
    pub fn retention_for(
        &self,
        app: &AppRecording,
    ) -> Result<Option<moat_policy::retention::Retention>, String> {
        retention_for(self.recording.policy.as_ref(), app)
    }
}

/// An app's storage policy given the global one.
pub fn retention_for(
    global: Option<&moat_policy::retention::Retention>,
    app: &AppRecording,
) -> Result<Option<moat_policy::retention::Retention>, String> {
    {
        match (global, app.policy) {
            (Some(g), o) => moat_policy::retention::effective(g, &o).map(Some),
            (
                None,
                moat_policy::retention::Override {
                    retain_for_days: None,
                    delete_after_days: None,
                },
            ) => Ok(None),
            (None, o) => {
                let r = moat_policy::retention::Retention {
                    retain_for_days: o.retain_for_days.unwrap_or(0),
                    retain_overridable: true,
                    delete_after_days: o.delete_after_days.unwrap_or(0),
                    delete_overridable: true,
                };
                moat_policy::retention::validate(&r).map(|()| Some(r))
            }
        }
    }
}

/// A zone on an app, for all its paths or those matching `path`.
#[derive(Debug, Clone)]
pub struct AppLimit {
    pub zone: String,
    pub path: Option<moat_policy::glob::PathPattern>,
}

/// Cross-origin request protection for an app.
#[derive(Debug, Clone, Default)]
pub struct Csrf {
    pub enabled: bool,
    pub trusted_origins: Vec<String>,
    pub bypass: Vec<moat_policy::glob::PathPattern>,
}

/// Security headers for one app: each `None` is not sent (and an
/// upstream's copy is still removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    pub frame_options: Option<String>,
    pub content_type_options: Option<String>,
    pub referrer_policy: Option<String>,
    pub cross_origin_opener_policy: Option<String>,
    pub cross_origin_embedder_policy: Option<String>,
    pub cross_origin_resource_policy: Option<String>,
    pub permissions_policy: Option<String>,
    /// More upstream headers to remove (lower case).
    pub hide_upstream: Vec<String>,
}

/// An app's changes to `[headers]`: `None` keeps the global value,
/// `Some(None)` turns the header off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderOverrides {
    pub frame_options: Option<Option<String>>,
    pub content_type_options: Option<Option<String>>,
    pub referrer_policy: Option<Option<String>>,
    pub cross_origin_opener_policy: Option<Option<String>>,
    pub cross_origin_embedder_policy: Option<Option<String>>,
    pub cross_origin_resource_policy: Option<Option<String>>,
    pub permissions_policy: Option<Option<String>>,
    pub hide_upstream: Vec<String>,
}

impl Headers {
    /// These headers with an app's overrides applied.
    pub fn with(&self, o: &HeaderOverrides) -> Headers {
        let pick = |global: &Option<String>, app: &Option<Option<String>>| {
            app.clone().unwrap_or_else(|| global.clone())
        };
        let mut hide = self.hide_upstream.clone();
        hide.extend(o.hide_upstream.iter().cloned());
        Headers {
            frame_options: pick(&self.frame_options, &o.frame_options),
            content_type_options: pick(&self.content_type_options, &o.content_type_options),
            referrer_policy: pick(&self.referrer_policy, &o.referrer_policy),
            cross_origin_opener_policy: pick(
                &self.cross_origin_opener_policy,
                &o.cross_origin_opener_policy,
            ),
            cross_origin_embedder_policy: pick(
                &self.cross_origin_embedder_policy,
                &o.cross_origin_embedder_policy,
            ),
            cross_origin_resource_policy: pick(
                &self.cross_origin_resource_policy,
                &o.cross_origin_resource_policy,
            ),
            permissions_policy: pick(&self.permissions_policy, &o.permissions_policy),
            hide_upstream: hide,
        }
    }
}

/// The base policy and the server-wide approvals.
#[derive(Debug, Clone)]
pub struct Csp {
    pub base: moat_policy::csp::Policy,
    pub report_only: bool,
    pub rules: Vec<moat_policy::csp::AllowRule>,
}

impl AppCsp {
    /// Adds another admin layer (a bundle's config.json) to this one.
    pub fn merge(&mut self, other: AppCsp) {
        fn union(a: &mut Vec<moat_policy::csp::Grant>, b: Vec<moat_policy::csp::Grant>) {
            for g in b {
                if !a.contains(&g) {
                    a.push(g);
                }
            }
        }
        union(&mut self.requested, other.requested);
        union(&mut self.add, other.add);
        union(&mut self.remove, other.remove);
        union(&mut self.approve, other.approve);
        union(&mut self.allow_unsafe, other.allow_unsafe);
        self.approve_all |= other.approve_all;
        self.report_only |= other.report_only;
        self.nonce |= other.nonce;
    }
}

/// One app's CSP layers: what its manifest requests and what its admin
/// layer says (moat.toml and the bundle's config.json, merged).
#[derive(Debug, Clone, Default)]
pub struct AppCsp {
    pub requested: Vec<moat_policy::csp::Grant>,
    pub add: Vec<moat_policy::csp::Grant>,
    pub remove: Vec<moat_policy::csp::Grant>,
    pub approve: Vec<moat_policy::csp::Grant>,
    pub approve_all: bool,
    pub allow_unsafe: Vec<moat_policy::csp::Grant>,
    /// `Content-Security-Policy-Report-Only` instead of enforcing.
    pub report_only: bool,
    /// A fresh nonce per HTML response, added to its script and style tags.
    pub nonce: bool,
}

impl Config {
    /// Why `app` cannot join this config: its name or its mount (host and
    /// path) is taken by another app. `replacing` names an app the new one
    /// replaces, whose name and mount do not count.
    pub fn conflict(&self, app: &App, replacing: Option<&str>) -> Option<String> {
        self.apps
            .iter()
            .filter(|other| Some(other.name.as_str()) != replacing)
            .find_map(|other| {
                let by = match other.origin {
                    AppOrigin::ConfigFile => "defined in the config file",
                    AppOrigin::Api => "created through the admin API",
                };
                if other.name == app.name {
                    Some(format!("an app named {:?} already exists ({by})", app.name))
                } else if other.host == app.host && other.path == app.path {
                    Some(format!(
                        "app {:?} ({by}) is already mounted on {}{}",
                        other.name,
                        app.host.as_deref().unwrap_or(""),
                        app.path
                    ))
                } else {
                    None
                }
            })
    }

    /// This config with the apps created through the admin API added after
    /// its own. The config file wins: an API app whose name or mount it
    /// already uses is left out, and returned with the reason.
    pub fn with_api_apps(
        mut self,
        api_apps: impl IntoIterator<Item = App>,
    ) -> (Config, Vec<(String, String)>) {
        let mut shadowed = Vec::new();
        for app in api_apps {
            match self.conflict(&app, None) {
                Some(why) => shadowed.push((app.name, why)),
                None => self.apps.push(app),
            }
        }
        (self, shadowed)
    }
}

#[derive(Debug, Clone)]
pub struct Server {
    pub https: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    /// Admin socket path; `None`: `DATA_DIR/moat.sock`.
    pub admin_socket: Option<PathBuf>,
    /// Worker threads, each owning its connections (at least 1).
    pub workers: usize,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub max_header_size: usize,
    pub max_uri_length: usize,
    pub shutdown_timeout: Duration,
    pub http2: bool,
    /// An idle connection between requests (HTTP/2: with no open stream)
    /// is closed after this.
    pub keepalive_timeout: Duration,
    /// Bytes per second a request body to an app must average while moat
    /// waits for it, after a grace period; 0: no minimum.
    pub min_body_rate: u64,
    pub http2_max_concurrent_streams: u32,
    pub redirect_max_connections: usize,
    pub redirect_max_connections_per_client: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub enabled: bool,
    pub min_version: TlsVersion,
    /// Canonical rustls names; empty: the provider's defaults.
    pub cipher_suites: Vec<&'static str>,
    /// Canonical rustls names; empty: the provider's defaults.
    pub kx_groups: Vec<&'static str>,
    pub redirect_http: bool,
    /// How often certificate files are checked for changes; zero: only on
    /// SIGHUP.
    pub reload_interval: Duration,
    /// Empty: moat's local CA issues the certificate.
    pub certificates: Vec<CertificateFiles>,
    pub local_ca: LocalCa,
    /// `[[tls.acme]]`: certificates moat obtains and renews over ACME.
    pub acme: Vec<AcmeCertificate>,
    /// Also obtain one ACME certificate per app host name, with
    /// `[tls.acme_defaults]`.
    pub acme_for_app_hosts: bool,
    pub acme_defaults: AcmeAccount,
    /// `[tls.on_demand] ask`: obtain a certificate (with `acme_defaults`)
    /// at the first handshake for a name this URL approves. None: off.
    pub on_demand_ask: Option<String>,
    pub hsts: Hsts,
}

/// One certificate moat obtains over ACME (RFC 8555) and renews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeCertificate {
    /// Lower-case DNS names; the first names the certificate's folder.
    pub domains: Vec<String>,
    pub account: AcmeAccount,
}

/// Where and how a certificate is ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAccount {
    /// The ACME directory URL.
    pub directory: String,
    pub email: Option<String>,
    pub challenge: AcmeChallenge,
    /// External account binding, for CAs that require one.
    pub eab: Option<ExternalAccountBinding>,
    /// Trust this CA (PEM) for the directory's own HTTPS instead of the
    /// system's roots: a private ACME CA, or a test CA such as Pebble.
    pub directory_ca: Option<PathBuf>,
    /// For dns-01: the command that sets and clears the TXT record.
    pub dns_hook: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeChallenge {
    /// Answered on the HTTP listener, before its redirect.
    Http01,
    /// Answered on the HTTPS listener, to handshakes offering `acme-tls/1`.
    TlsAlpn01,
    /// A TXT record set through the admin's `dns_hook` command.
    Dns01,
}

impl AcmeChallenge {
    pub fn name(self) -> &'static str {
        match self {
            AcmeChallenge::Http01 => "http-01",
            AcmeChallenge::TlsAlpn01 => "tls-alpn-01",
            AcmeChallenge::Dns01 => "dns-01",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct ExternalAccountBinding {
    pub kid: String,
    /// The CA's base64url HMAC key, as given. SECURITY: never printed.
    pub hmac_key: String,
}

impl std::fmt::Debug for ExternalAccountBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalAccountBinding")
            .field("kid", &self.kid)
            .field("hmac_key", &"[redacted]")
            .finish()
    }
}

/// `[tls.local_ca]`: the CA in the data directory that issues moat's
/// certificate when none is configured.
#[derive(Debug, Clone)]
pub struct LocalCa {
    /// How long each leaf it issues is valid; renewed after two thirds.
    pub leaf_lifetime: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Hsts {
    pub enabled: bool,
    pub max_age: Duration,
    pub include_subdomains: bool,
    pub preload: bool,
}

impl Hsts {
    /// The `Strict-Transport-Security` value, or `None` when off.
    pub fn header_value(&self) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let mut v = format!("max-age={}", self.max_age.as_secs());
        if self.include_subdomains {
            v.push_str("; includeSubDomains");
        }
        if self.preload {
            v.push_str("; preload");
        }
        Some(v)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Security {
    pub trusted_proxies: TrustedProxies,
    /// bcrypt hash of the admin password; `None`: a random password is
    /// made at every start.
    pub admin_password_bcrypt: Option<String>,
    /// The admin's user name, for the admin API over TCP (and logins).
    pub admin_user: String,
    /// Serve the admin API on the HTTPS listener under `/_moat/api/`.
    pub admin_over_tcp: bool,
    /// Cross-origin protection is off for every app.
    pub disable_csrf_protection: bool,
    /// Origins every app's CSRF protection trusts.
    pub csrf_trusted_origins: Vec<String>,
}

/// How people sign in to apps with `auth = "system"`.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The built-in account (`admin_user` with the admin password) may sign
    /// in to apps. Off: nobody can, until another identity source exists.
    pub system_account: bool,
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however active.
    pub absolute_timeout: Duration,
    /// Non-browser clients may send HTTP Basic credentials (over TLS only).
    pub basic_auth: bool,
    /// The system account signs in only with a second factor (TOTP).
    pub require_totp: bool,
    /// OpenID Connect providers, in the config file's order.
    pub oidc: Vec<OidcProvider>,
    /// `None`: no captcha on the login page.
    pub captcha: Option<Captcha>,
}

/// The admin portal (`/_moat/portal/` on the HTTPS listener).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    pub enabled: bool,
    /// Also served on every path of this host.
    pub host: Option<String>,
    /// How admins sign in, in the login page's order.
    pub sources: Vec<moat_policy::access::Source>,
    /// Who of the providers' people are admins (the system account always
    /// is, when `sources` has it).
    pub admins: moat_policy::access::Rules,
    /// A portal session unused this long signs in again.
    pub idle_timeout: Duration,
}

impl Portal {
    /// Whether `id`, signed in through one of the portal's sources, is an
    /// admin.
    pub fn is_admin(&self, id: &moat_policy::access::Identity) -> bool {
        use moat_policy::access::Source;
        if !self.sources.contains(&id.source) {
            return false;
        }
        match id.source {
            Source::System => true,
            // Empty rules would admit everyone the provider signs in:
            // validation refuses that, and this refuses it again.
            Source::Oidc(_) => !self.admins.is_empty() && self.admins.allow(id),
        }
    }
}

/// The login page's captcha.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captcha {
    /// Asked once an address has this many recent failed sign-ins (0:
    /// always).
    pub after_failures: u32,
    pub kind: CaptchaKind,
}

#[derive(Clone, PartialEq, Eq)]
pub enum CaptchaKind {
    /// moat's own proof of work: this many leading zero bits.
    Pow { difficulty: u8 },
    Hosted {
        service: moat_policy::captcha::Hosted,
        site_key: String,
        /// SECURITY: never printed.
        secret: String,
        verify_url: String,
        /// A verify that takes longer fails (closed).
        timeout: Duration,
    },
}

impl std::fmt::Debug for CaptchaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptchaKind::Pow { difficulty } => write!(f, "Pow({difficulty})"),
            CaptchaKind::Hosted {
                service,
                site_key,
                verify_url,
                ..
            } => f
                .debug_struct("Hosted")
                .field("service", service)
                .field("site_key", site_key)
                .field("secret", &"[redacted]")
                .field("verify_url", verify_url)
                .finish_non_exhaustive(),
        }
    }
}

impl Auth {
    pub fn provider(&self, name: &str) -> Option<&OidcProvider> {
        self.oidc.iter().find(|p| p.name == name)
    }
}

/// An OpenID Connect provider people sign in through.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcProvider {
    /// What `oidc:NAME` and the callback path name it by.
    pub name: String,
    /// What the login page's button says.
    pub display_name: String,
    /// The issuer URL exactly as the provider states it (discovery is at
    /// `ISSUER/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    /// SECURITY: never printed.
    pub client_secret: String,
    pub scopes: Vec<String>,
    /// The claim holding the user's groups (a list of strings).
    pub groups_claim: String,
    /// The claim that names the user to apps (`X-Moat-User`).
    pub user_claim: String,
    /// Also ask the userinfo endpoint for claims after sign-in.
    pub userinfo: bool,
    pub rules: moat_policy::access::Rules,
    /// The CA of the provider's HTTPS certificate (None: system roots).
    pub ca: Option<PathBuf>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    Off,
    Stdout,
    Stderr,
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    Json,
    Common,
}

#[derive(Debug, Clone)]
pub struct Log {
    /// A `tracing` filter directive (`info`, `moat_proxy=debug,info`).
    pub level: String,
    pub access_log: AccessLogTarget,
    pub access_log_format: AccessLogFormat,
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    /// Lower-case host without port.
    pub host: Option<String>,
    /// Normalised path prefix (`/` when mounted on a host only).
    pub path: String,
    pub source: AppSource,
    pub preserve_host: bool,
    pub strip_path: bool,
    pub max_body_size: u64,
    /// Requests in flight to the upstream at once.
    pub max_upstream_connections: usize,
    pub timeouts: Timeouts,
    pub auth: AppAuth,
    /// Who of the sign-in sources' users may use the app (on top of each
    /// provider's own rules).
    pub access: moat_policy::access::Rules,
    /// Also send the user upstream as a short-lived signed JWT.
    pub identity_jwt: bool,
    pub origin: AppOrigin,
    pub headers: HeaderOverrides,
    pub csp: AppCsp,
    /// `None`: moat leaves CORS to the app.
    pub cors: Option<moat_policy::cors::CorsPolicy>,
    /// This app's own CSRF settings (the global switch and trusted origins
    /// are added when the runtime is built).
    pub csrf: Csrf,
    pub rate_limits: Vec<AppLimit>,
    /// `None`: not recorded.
    pub recording: Option<AppRecording>,
    /// `%2F` and `%5C` in paths reach the app instead of a 400.
    pub allow_encoded_slashes: bool,
    /// Lower-case names of request headers with `_` that reach the app.
    pub allow_underscore_headers: Vec<String>,
    /// `[apps.client_certs]`: client certificates (mutual TLS).
    pub client_certs: Option<ClientCerts>,
}

/// An app's client certificates: the CA that issues them, whether one is
/// required, and the revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCerts {
    /// PEM file of the CA certificates client certificates must chain to.
    pub ca: std::path::PathBuf,
    pub mode: ClientCertMode,
    /// A CRL (PEM or DER) of revoked certificates, reloaded when it changes.
    pub crl: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertMode {
    /// No valid certificate, no access.
    Require,
    /// A certificate is asked for; without one the request goes on (and
    /// the app's other sign-in applies). A certificate that is presented
    /// must be valid.
    Optional,
}

/// Who may reach an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppAuth {
    /// Anyone: moat asks for no login.
    None,
    /// People signed in through one of these sources (moat's login page
    /// lists them), in the order the app names them.
    SignIn(Vec<moat_policy::access::Source>),
    /// The holder of a valid client certificate, named by its SAN email,
    /// else its subject's common name.
    Cert,
}

impl AppAuth {
    /// The system account alone (the default).
    pub fn system() -> AppAuth {
        AppAuth::SignIn(vec![moat_policy::access::Source::System])
    }

    /// Whether people sign in to the app (through moat's login page).
    pub fn sources(&self) -> &[moat_policy::access::Source] {
        match self {
            AppAuth::SignIn(s) => s,
            _ => &[],
        }
    }
}

impl std::fmt::Display for AppAuth {
    /// As the config file writes it: `none`, `cert`, `system`,
    /// `oidc:corp`, `oidc:corp, system`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppAuth::None => f.write_str("none"),
            AppAuth::Cert => f.write_str("cert"),
            AppAuth::SignIn(sources) => {
                for (i, s) in sources.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{s}")?;
                }
                Ok(())
            }
        }
    }
}

/// Where an app is defined. The config file wins: an app created through
/// the admin API may not take a config-file app's name or mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppOrigin {
    /// The config file; read-only through the admin API.
    ConfigFile,
    /// Created through the admin API and kept in the metadata store.
    Api,
}

impl AppOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            AppOrigin::ConfigFile => "config",
            AppOrigin::Api => "api",
        }
    }
}

#[derive(Debug, Clone)]
pub enum AppSource {
    Upstream(Upstream),
    Static(StaticBundle),
}

#[derive(Debug, Clone)]
pub struct Upstream {
    /// `http://host:port` (scheme and authority only).
    pub origin: http::Uri,
    /// Path prefix from the upstream URL, without trailing `/` (may be empty).
    pub base_path: String,
    /// Speak HTTP/2 over cleartext (prior knowledge) instead of HTTP/1.1.
    pub h2c: bool,
}

#[derive(Debug, Clone)]
pub struct StaticBundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

#[derive(Debug, Clone)]
pub struct Timeouts {
    pub connect: Duration,
    pub response_header: Duration,
    pub idle: Duration,
    pub queue: Duration,
}
