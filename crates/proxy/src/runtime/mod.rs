//! The state the pipeline reads for one version of the config: routes,
//! apps and their upstream pools. Built once per (re)load and swapped in
//! whole, so a request sees one consistent config from start to end.
//!
//! Below the pipeline: it imports no stage. What the stages need built per
//! config lives in its submodules: `apps` (upstream connections, bundle
//! folders), `response_policy` (headers and the composed CSP), `zones`
//! (rate-limit state kept across reloads).

pub mod apps;
pub mod response_policy;
pub mod zones;

use std::path::Path;
use std::sync::Arc;

use http::HeaderValue;
use std::collections::HashMap;

use moat_config::{App, AppAuth, AppSource, Config};
use moat_policy::csp::{self, Grant, Layers};
use moat_policy::route::{Mount, Router};

use arc_swap::{ArcSwap, Guard};

use crate::tls::client_auth::{ClientCa, Scope as ClientAuthScope};
use apps::{StaticApp, UpstreamApp};
use response_policy::ResponsePolicy;
use zones::{AppZone, ZoneRegistry};

/// The runtime being served. Readers take a snapshot that stays whole
/// while they use it; only the control interface publishes a new one.
#[derive(Clone)]
pub struct Current(Arc<ArcSwap<Runtime>>);

impl Current {
    pub fn new(runtime: Runtime) -> Current {
        Current(Arc::new(ArcSwap::from_pointee(runtime)))
    }

    /// A snapshot to keep (across awaits, for a whole request).
    pub fn load(&self) -> Arc<Runtime> {
        self.0.load_full()
    }

    /// A snapshot for a quick look (no reference count taken).
    pub fn peek(&self) -> Guard<Arc<Runtime>> {
        self.0.load()
    }

    pub(crate) fn publish(&self, runtime: Runtime) {
        self.0.store(Arc::new(runtime));
    }
}

pub struct Runtime {
    pub config: Arc<Config>,
    /// Headers for responses that belong to no app (404s, moat's pages).
    pub default_policy: ResponsePolicy,
    pub router: Router,
    /// Indexed like the router's mounts.
    pub apps: Vec<Arc<AppRuntime>>,
    /// `Strict-Transport-Security` for HTTPS responses, if on.
    pub hsts: Option<HeaderValue>,
    /// Every client-certificate CA the apps use (their CRLs are reloaded
    /// when they change), and which handshakes ask for a certificate.
    pub client_cas: Vec<Arc<ClientCa>>,
    pub client_auth: ClientAuthScope,
}

pub struct AppRuntime {
    pub name: String,
    /// Normalised mount prefix.
    pub prefix: String,
    pub max_body_size: u64,
    pub auth: AppAuth,
    /// Who of the signed-in people may use the app, on top of their
    /// provider's rules.
    pub access: moat_policy::access::Rules,
    pub identity_jwt: bool,
    /// Security headers and the composed CSP.
    pub response_policy: ResponsePolicy,
    /// `None`: moat leaves CORS to the app.
    pub cors: Option<moat_policy::cors::CorsPolicy>,
    /// `None`: CSRF protection is off for the app.
    pub csrf: Option<CsrfRuntime>,
    pub rate_limits: Vec<AppZone>,
    /// `None`: not recorded.
    pub recording: Option<Arc<moat_config::AppRecording>>,
    /// `%2F` / `%5C` in paths reach this app instead of a 400.
    pub allow_encoded_slashes: bool,
    /// `None`: the app does not ask for client certificates.
    pub client_certs: Option<AppClientCerts>,
    pub kind: AppKind,
}

/// An app's client certificates: its CA (shared with other apps on the
/// same files) and whether one is required.
pub struct AppClientCerts {
    pub ca: Arc<ClientCa>,
    pub mode: moat_config::ClientCertMode,
    /// The app's host: a connection asked under another SNI name is not
    /// this app's.
    pub host: Option<String>,
}

/// An app's CSRF protection with the global trusted origins added.
pub struct CsrfRuntime {
    pub trusted_origins: Vec<String>,
    pub bypass: Vec<moat_policy::glob::PathPattern>,
}

/// Approvals granted through the admin API, by app name.
pub type Grants = HashMap<String, Vec<Grant>>;

pub enum AppKind {
    Upstream(UpstreamApp),
    Static(StaticApp),
}

#[derive(Debug, thiserror::Error)]
#[error("app {app}: {message}")]
pub struct RuntimeError {
    pub app: String,
    pub message: String,
}

impl Runtime {
    /// Builds the runtime; `welcome_dir` is served on `/` when the config
    /// has no apps.
    pub fn build(
        config: Arc<Config>,
        welcome_dir: &Path,
        workers: usize,
        grants: &Grants,
        zones: &ZoneRegistry,
    ) -> Result<Runtime, RuntimeError> {
        let mut mounts = Vec::new();
        let mut apps = Vec::new();
        let mut client_cas: Vec<Arc<ClientCa>> = Vec::new();
        let mut client_hosts = Vec::new();
        let mut client_everywhere = false;
        for app in &config.apps {
            let client_certs = match &app.client_certs {
                None => None,
                Some(cc) => {
                    let ca = match client_cas
                        .iter()
                        .find(|c| c.same_files(&cc.ca, cc.crl.as_deref()))
                    {
                        Some(ca) => ca.clone(),
                        None => {
                            let ca = Arc::new(ClientCa::load(&cc.ca, cc.crl.as_deref()).map_err(
                                |message| RuntimeError {
                                    app: app.name.clone(),
                                    message: format!("client_certs: {message}"),
                                },
                            )?);
                            client_cas.push(ca.clone());
                            ca
                        }
                    };
                    match &app.host {
                        Some(h) => client_hosts.push(h.clone()),
                        None => client_everywhere = true,
                    }
                    Some(AppClientCerts {
                        ca,
                        mode: cc.mode,
                        host: app.host.clone(),
                    })
                }
            };
            let kind = match &app.source {
                AppSource::Upstream(u) => AppKind::Upstream(UpstreamApp::new(
                    app,
                    u,
                    workers,
                    // The grace is the time a client gets for its head.
                    (
                        config.server.min_body_rate,
                        config.server.header_read_timeout,
                    ),
                )),
                AppSource::Static(b) => {
                    AppKind::Static(StaticApp::new(&b.dir, b.manifest.spa).map_err(|e| {
                        RuntimeError {
                            app: app.name.clone(),
                            message: e.to_string(),
                        }
                    })?)
                }
            };
            mounts.push(Mount {
                host: app.host.clone(),
                path: app.path.clone(),
            });
            apps.push(Arc::new(AppRuntime {
                name: app.name.clone(),
                prefix: app.path.clone(),
                max_body_size: app.max_body_size,
                auth: app.auth.clone(),
                access: app.access.clone(),
                identity_jwt: app.identity_jwt,
                response_policy: app_policy(&config, app, grants),
                cors: app.cors.clone(),
                csrf: csrf_for(&config, &app.csrf),
                rate_limits: app_zones(&config, app, zones),
                recording: app.recording.clone().map(Arc::new),
                allow_encoded_slashes: app.allow_encoded_slashes,
                client_certs,
                kind,
            }));
        }
        if crate::welcome::served(&config) {
            let welcome = StaticApp::new(welcome_dir, false).map_err(|e| RuntimeError {
                app: "welcome".into(),
                message: e.to_string(),
            })?;
            mounts.push(Mount {
                host: None,
                path: "/".into(),
            });
            apps.push(Arc::new(AppRuntime {
                name: "welcome".into(),
                prefix: "/".into(),
                max_body_size: 0,
                // The welcome page says how to configure moat: only for
                // people who can sign in.
                auth: AppAuth::system(),
                access: Default::default(),
                identity_jwt: false,
                response_policy: base_policy(
                    &config,
                    Some(&crate::namespace::csp_report_path("welcome")),
                ),
                cors: None,
                csrf: csrf_for(
                    &config,
                    &moat_config::Csrf {
                        enabled: true,
                        ..Default::default()
                    },
                ),
                rate_limits: Vec::new(),
                recording: None,
                allow_encoded_slashes: false,
                client_certs: None,
                kind: AppKind::Static(welcome),
            }));
        }
        let hsts = config
            .tls
            .hsts
            .header_value()
            .filter(|_| config.tls.enabled)
            .map(|v| HeaderValue::from_str(&v).expect("HSTS value is ASCII"));
        let client_auth = if client_everywhere {
            ClientAuthScope::Everyone
        } else if client_hosts.is_empty() {
            ClientAuthScope::Nobody
        } else {
            ClientAuthScope::Hosts(client_hosts)
        };
        Ok(Runtime {
            default_policy: base_policy(&config, None),
            config,
            router: Router::new(mounts),
            apps,
            hsts,
            client_cas,
            client_auth,
        })
    }
}

/// The global headers and the base CSP: for responses that belong to no
/// app (no reports), and for the built-in welcome app.
fn base_policy(config: &Config, report_to: Option<&str>) -> ResponsePolicy {
    let composed = csp::compose(&Layers {
        base: &config.csp.base,
        ..Default::default()
    });
    ResponsePolicy::build(
        &config.headers,
        composed,
        config.csp.report_only,
        report_to,
        false,
    )
}

/// An app's headers: the global ones with its overrides, and its CSP
/// composed from the base, its manifest's requests (as approved) and its
/// admin layer.
pub fn app_policy(config: &Config, app: &App, grants: &Grants) -> ResponsePolicy {
    let l = &app.csp;
    let composed = csp::compose(&Layers {
        base: &config.csp.base,
        requested: &l.requested,
        admin_add: &l.add,
        admin_remove: &l.remove,
        admin_approve: &l.approve,
        admin_approve_all: l.approve_all,
        allow_unsafe: &l.allow_unsafe,
        rules: &config.csp.rules,
        granted: grants.get(&app.name).map(Vec::as_slice).unwrap_or(&[]),
    });
    ResponsePolicy::build(
        &config.headers.with(&app.headers),
        composed,
        config.csp.report_only || l.report_only,
        Some(&crate::namespace::csp_report_path(&app.name)),
        l.nonce,
    )
}

fn csrf_for(config: &Config, app: &moat_config::Csrf) -> Option<CsrfRuntime> {
    let enabled = !config.security.disable_csrf_protection && app.enabled;
    enabled.then(|| CsrfRuntime {
        trusted_origins: config
            .security
            .csrf_trusted_origins
            .iter()
            .chain(&app.trusted_origins)
            .cloned()
            .collect(),
        bypass: app.bypass.clone(),
    })
}

/// The app's zones, with their shared limiters. A zone the config no
/// longer defines (an API app naming a removed zone) is skipped and logged.
fn app_zones(config: &Config, app: &App, zones: &ZoneRegistry) -> Vec<AppZone> {
    app.rate_limits
        .iter()
        .filter_map(|l| {
            let Some(z) = config.rate_limit.zones.iter().find(|z| z.name == l.zone) else {
                tracing::error!(
                    app = app.name,
                    zone = l.zone,
                    "the app names a rate-limit zone that is not defined; it is not applied"
                );
                return None;
            };
            Some(AppZone {
                name: z.name.clone(),
                key: z.key.clone(),
                path: l.path.clone(),
                limiter: zones.limiter(&z.name, z.zone),
            })
        })
        .collect()
}
