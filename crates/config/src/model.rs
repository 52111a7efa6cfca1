//! The validated runtime configuration. Every value here has been checked;
//! the server never re-validates.

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
    pub log: Log,
    pub apps: Vec<App>,
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
    /// Empty: a self-signed certificate kept in the data directory.
    pub certificates: Vec<CertificateFiles>,
    pub hsts: Hsts,
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
    pub timeouts: Timeouts,
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
}
