//! The control interface: the only way to change moat's running state.
//! (Over 500 lines: the operations that share the one lock are kept
//! together; each resource's own operations are in the files below.)
//!
//! Every change (an API app, a CSP approval, a bucket, a config reload,
//! a recording's retention) is one operation here that takes the one write
//! lock, checks the change against what is served, stores it with its
//! audit entry, and installs the runtime it gives, in that order; a change
//! that fails a check stores nothing, one that fails to store serves
//! nothing. Callers (the admin API, the binary's signal handling) see
//! operations and answers, never a lock or the runtime's cell.
//!
//! # Layout
//! - this file: [`Control`], its inputs, building and installing runtimes,
//!   config reload, status;
//! - `apps`: API apps (create, update, delete, reload);
//! - `csp`: CSP approvals;
//! - `buckets`: storage buckets;
//! - `recordings`: retention, deletion, reading recordings back.

mod apps;
mod buckets;
mod csp;
mod recordings;
mod totp;
pub use totp::Enrolment;
#[cfg(test)]
mod tests;

pub use csp::CspSelection;
pub use recordings::{Reapplied, StorageStatus};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_config::{App, Config};
use moat_store::Store;

use crate::auth::AuthState;
use crate::clock::Clock;
use crate::recorder::Recorder;
use crate::runtime::zones::ZoneRegistry;
use crate::runtime::{Current, Grants, Runtime, RuntimeError};
use crate::tls::TlsState;

/// Why a change was refused or failed. Each kind maps to one answer of
/// the admin API.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The thing is defined in the config file.
    #[error("{0}")]
    ReadOnly(String),
    /// A definition with bad fields: one problem per field.
    #[error("the app definition is not valid")]
    Invalid(Vec<moat_config::Problem>),
    /// Malformed input, or a request that names nothing to do.
    #[error("{0}")]
    BadRequest(String),
    /// A value that cannot be used: a change that does not build (a
    /// runtime error), a bad bucket name.
    #[error("{0}")]
    InvalidValue(String),
    /// A recording inside its retention period.
    #[error("{0}")]
    Retained(String),
    #[error("{0}")]
    BucketUnavailable(String),
    /// Recording storage on this node is too low for the operation.
    #[error("{0}")]
    LowStorage(String),
    /// A stored recording that does not read back.
    #[error("{0}")]
    Unreadable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<moat_store::StoreError> for ControlError {
    fn from(e: moat_store::StoreError) -> Self {
        use moat_store::StoreError as E;
        match e {
            E::AppExists(name) => {
                ControlError::Conflict(format!("an app named {name:?} already exists"))
            }
            E::AppNotFound(name) => ControlError::NotFound(format!("app {name:?} not found")),
            E::BucketExists(n) => {
                ControlError::Conflict(format!("a bucket named {n:?} already exists"))
            }
            E::BucketNotFound(n) => ControlError::NotFound(format!("bucket {n:?} not found")),
            other => {
                tracing::error!("admin change: {other}");
                ControlError::Internal(other.to_string())
            }
        }
    }
}

/// A bound listener, as the status shows it.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub address: SocketAddr,
    /// `https`, `http` or `http-redirect`.
    pub role: &'static str,
}

/// What a runtime is built from, guarded by the one write lock.
pub(crate) struct Inputs {
    /// The config as read from the file, without API apps.
    pub(crate) file: Arc<Config>,
    /// The valid apps created through the admin API, sorted by name.
    pub(crate) api_apps: Vec<App>,
    /// CSP approvals granted through the admin API, by app.
    pub(crate) grants: Grants,
}

/// The parts of a running gateway that a change touches.
pub struct Parts {
    pub runtime: Current,
    pub store: Store,
    pub recorder: Arc<Recorder>,
    pub sign_in: Arc<AuthState>,
    pub tls: Option<Arc<TlsState>>,
    pub zones: Arc<ZoneRegistry>,
    pub data_dir: PathBuf,
    pub workers: usize,
    pub clock: Arc<dyn Clock>,
    pub listeners: Vec<ListenerInfo>,
}

pub struct Control {
    parts: Parts,
    inputs: tokio::sync::Mutex<Inputs>,
    started: Instant,
}

impl Control {
    /// `file`, `api_apps` and `grants` must be what `parts.runtime` serves.
    pub fn new(parts: Parts, file: Arc<Config>, api_apps: Vec<App>, grants: Grants) -> Control {
        Control {
            parts,
            inputs: tokio::sync::Mutex::new(Inputs {
                file,
                api_apps,
                grants,
            }),
            started: Instant::now(),
        }
    }

    /// A control over `data_dir` with nothing served: its own store,
    /// recorder and keys, the runtime built but not listened for. For
    /// tests of the interface and of what sits on it (the admin API's
    /// handlers), with the clock they set.
    pub async fn standalone(
        config: Config,
        data_dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Control, Box<dyn std::error::Error + Send + Sync>> {
        crate::tls::create_private_dir(data_dir)?;
        crate::welcome::install(data_dir)?;
        let keys = crate::keys::Keys::load_or_create(data_dir)?;
        let store = Store::open(&data_dir.join("moat.db")).await?;
        let api_apps = load_api_apps(&store).await?;
        let grants = load_csp_grants(&store).await?;
        let recorder = Arc::new(Recorder::start(
            clock.clone(),
            data_dir.join("recordings"),
            moat_recording::Kek::from_bytes(keys.recording_kek),
            store.clone(),
            tokio::runtime::Handle::current(),
        )?);
        let config = Arc::new(config);
        let sign_in = Arc::new(AuthState::new(
            &keys,
            &config.auth,
            crate::admin_password::AdminPassword::from_hash(String::new()),
        ));
        let zones = Arc::new(ZoneRegistry::default());
        let runtime = Current::new(build_runtime(
            &config, &api_apps, &grants, &zones, data_dir, 1,
        )?);
        let parts = Parts {
            runtime,
            store,
            recorder,
            sign_in,
            tls: None,
            zones,
            data_dir: data_dir.to_owned(),
            workers: 1,
            clock,
            listeners: Vec::new(),
        };
        Ok(Control::new(parts, config, api_apps, grants))
    }

    /// What is served now: one consistent version of the config and apps.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.parts.runtime.load()
    }

    /// The config file's config, without API apps.
    pub async fn file_config(&self) -> Arc<Config> {
        self.inputs.lock().await.file.clone()
    }

    /// How long this gateway has been running.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn listeners(&self) -> &[ListenerInfo] {
        &self.parts.listeners
    }

    /// The metadata store, for reads (audit log, recordings, reports).
    /// Changes go through the operations of this type.
    pub fn store(&self) -> &Store {
        &self.parts.store
    }

    pub fn clock(&self) -> &dyn Clock {
        self.parts.clock.as_ref()
    }

    /// Builds the runtime `inputs` give, without serving it.
    pub(crate) fn build(&self, inputs: &Inputs) -> Result<Runtime, RuntimeError> {
        build_runtime(
            &inputs.file,
            &inputs.api_apps,
            &inputs.grants,
            &self.parts.zones,
            &self.parts.data_dir,
            self.parts.workers,
        )
    }

    /// Builds and serves the runtime `inputs` give.
    pub(crate) fn install(&self, inputs: &Inputs) -> Result<(), RuntimeError> {
        let runtime = self.build(inputs)?;
        self.serve(runtime);
        Ok(())
    }

    /// Brings TLS in line with the runtime served now (also at start):
    /// which handshakes ask for a client certificate, and with which CA
    /// names as hints.
    pub(crate) fn serve_current(&self) {
        let Some(tls) = &self.parts.tls else {
            return;
        };
        let runtime = self.parts.runtime.load();
        let hints: Vec<rustls::DistinguishedName> = runtime
            .client_cas
            .iter()
            .flat_map(|c| c.subjects().iter().cloned())
            .collect();
        if let Err(e) = tls.set_client_auth(runtime.client_auth.clone(), hints) {
            tracing::error!("client certificates: {e}");
        }
    }

    /// Serves `runtime`, and brings TLS in line with its apps: client
    /// certificates, and (now, not at the next periodic check) an app's
    /// new host name in the local CA's leaf or its ACME certificate.
    pub(crate) fn serve(&self, runtime: Runtime) {
        self.parts.runtime.publish(runtime);
        self.serve_current();
        if let Err(e) = self.maintain_certificates(false) {
            tracing::error!(
                "certificate check failed, still serving the previous certificate: {e}"
            );
        }
    }

    /// Applies a new config file. Everything is built before anything is
    /// swapped, so a config that fails leaves the old one serving.
    /// Listener addresses, TLS on/off and the connection cap need a
    /// restart; a change to them is reported and otherwise ignored.
    pub async fn reload_config(&self, config: Config) -> Result<(), ReloadError> {
        let mut inputs = self.inputs.lock().await;
        let old = inputs.file.clone();
        for (what, changed) in [
            ("server.https", old.server.https != config.server.https),
            ("server.http", old.server.http != config.server.http),
            (
                "server.admin_socket",
                old.server.admin_socket != config.server.admin_socket,
            ),
            (
                "server.max_connections",
                old.server.max_connections != config.server.max_connections,
            ),
            ("tls.enabled", old.tls.enabled != config.tls.enabled),
            (
                "tls.redirect_http",
                old.tls.redirect_http != config.tls.redirect_http,
            ),
            (
                "log.access_log",
                old.log.access_log != config.log.access_log,
            ),
        ] {
            if changed {
                tracing::warn!("{what} changed: it takes effect at the next restart");
            }
        }
        let config = Arc::new(config);
        let runtime = build_runtime(
            &config,
            &inputs.api_apps,
            &inputs.grants,
            &self.parts.zones,
            &self.parts.data_dir,
            self.parts.workers,
        )?;
        if let Some(tls) = &self.parts.tls {
            if config.tls.enabled {
                tls.reconfigure(
                    &config,
                    &crate::tls::app_hosts(&runtime.config),
                    self.parts.clock.now(),
                )?;
            }
        }
        // A configured hash replaces the current password; without one,
        // this run's random password stays valid. A new password ends
        // every session signed in with the old one.
        let password_changed = config.security.admin_password_bcrypt.is_some()
            && config.security.admin_password_bcrypt != old.security.admin_password_bcrypt;
        if let Some(hash) = &config.security.admin_password_bcrypt {
            self.parts.sign_in.set_admin_password_hash(hash.clone());
        }
        self.parts
            .sign_in
            .reconfigure(&config.auth, password_changed)
            .await;
        inputs.file = config.clone();
        self.serve(runtime);
        tracing::info!(apps = config.apps.len(), "configuration reloaded");
        Ok(())
    }

    /// The periodic certificate check: renews what moat issues when due,
    /// reloads certificate files that changed on disk (with
    /// `check_files`). Returns whether the served certificates changed.
    pub fn maintain_certificates(&self, check_files: bool) -> Result<bool, crate::tls::TlsError> {
        match &self.parts.tls {
            Some(tls) => {
                let runtime = self.parts.runtime.load();
                // A CRL that fails to load leaves the previous one in force.
                for ca in &runtime.client_cas {
                    if let Err(e) = ca.reload_if_changed() {
                        tracing::error!(
                            "client certificate revocation list not reloaded, the previous one stays: {e}"
                        );
                    }
                }
                tls.maintain(
                    &runtime.config,
                    &crate::tls::app_hosts(&runtime.config),
                    self.parts.clock.now(),
                    check_files,
                )
            }
            None => Ok(false),
        }
    }

    /// Orders every ACME certificate that is due, one after another, and
    /// installs each result. Returns the Unix second of the next attempt
    /// (None: nothing waits), and with no TLS, None.
    pub async fn acme_round(&self) -> Option<i64> {
        let tls = self.parts.tls.as_ref()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        for spec in tls.acme_due(self.parts.clock.now()) {
            tracing::info!(
                names = spec.domains.join(", "),
                directory = spec.account.directory,
                "ordering a certificate over ACME"
            );
            let result =
                crate::tls::acme::order::obtain(tls.data_dir(), &spec, tls.challenges(), &provider)
                    .await;
            tls.acme_finished(&spec, result, self.parts.clock.now());
        }
        // The CA's renewal windows (RFC 9773), where it offers them.
        for (spec, leaf) in tls.acme_ari_due(self.parts.clock.now()) {
            let result =
                crate::tls::acme::order::renewal_window(tls.data_dir(), &spec, &leaf).await;
            tls.acme_window(&spec, result, self.parts.clock.now());
        }
        tls.acme_next_attempt()
    }

    /// Resolves when an ACME certificate may have become due (never
    /// without TLS).
    pub async fn acme_woken(&self) {
        match &self.parts.tls {
            Some(tls) => tls.acme_woken().await,
            None => std::future::pending().await,
        }
    }

    /// Each OpenID provider (name, discovered, last discovery error), the
    /// captcha provider, and how many sessions are live: for status.
    pub fn sign_in_status(&self) -> (Vec<(String, bool, Option<String>)>, Option<String>, usize) {
        let captcha = self
            .runtime()
            .config
            .auth
            .captcha
            .as_ref()
            .map(|c| match &c.kind {
                moat_config::CaptchaKind::Pow { .. } => "pow".to_owned(),
                moat_config::CaptchaKind::Hosted { service, .. } => service.name().to_owned(),
            });
        (
            self.parts.sign_in.oidc.status(),
            captcha,
            self.parts.sign_in.session_count(),
        )
    }

    /// Every certificate served, for status.
    pub fn certificates(&self) -> Vec<crate::tls::CertificateStatus> {
        self.parts
            .tls
            .as_ref()
            .map(|t| t.certificates())
            .unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// The log line of an admin change (its audit entry is the store's):
/// what, to which app, by whom from where, and how many items it named.
fn log_change(actor: &moat_store::Actor, app: &str, what: &str, items: usize) {
    tracing::info!(
        app,
        actor = actor.name,
        source = actor.source,
        items,
        "{what}"
    );
}

/// The runtime for a file config plus the API apps. The config file wins
/// any clash; an API app it shadows is logged and not served.
pub(crate) fn build_runtime(
    file: &Config,
    api_apps: &[App],
    grants: &Grants,
    zones: &ZoneRegistry,
    data_dir: &Path,
    workers: usize,
) -> Result<Runtime, RuntimeError> {
    let (merged, shadowed) = file.clone().with_api_apps(api_apps.iter().cloned());
    for (name, why) in shadowed {
        tracing::warn!(
            app = name,
            "an app created through the admin API is not served: {why}; the config file wins (delete or change the API app)"
        );
    }
    Runtime::build(
        Arc::new(merged),
        &data_dir.join("welcome"),
        workers,
        grants,
        zones,
    )
}

/// The CSP approvals granted through the admin API. A row that is no
/// longer a valid grant (it cannot be, unless the file was edited) is
/// skipped with a log line.
pub async fn load_csp_grants(store: &Store) -> Result<Grants, moat_store::StoreError> {
    let mut grants = Grants::new();
    for (app, directive, source) in store.csp_approvals().await? {
        match moat_policy::csp::Grant::new(&directive, &source) {
            Ok(g) => grants.entry(app).or_default().push(g),
            Err(e) => tracing::error!(
                app,
                "a stored CSP approval is not valid and is ignored: {e}"
            ),
        }
    }
    Ok(grants)
}

/// The stored API apps that validate. One that no longer does (its bundle
/// folder was removed, say) is logged and skipped, not fatal: the rest of
/// moat still starts, and the app can be fixed through the API.
pub async fn load_api_apps(store: &Store) -> Result<Vec<App>, moat_store::StoreError> {
    let mut apps = Vec::new();
    for stored in store.apps().await? {
        let parsed = serde_json::from_value::<moat_config::raw::RawApp>(stored.definition)
            .map_err(|e| vec![moat_config::Problem::new("", e.to_string())])
            .and_then(|raw| moat_config::validate::validate_api_app(&raw));
        match parsed {
            Ok(app) => apps.push(app),
            Err(problems) => {
                let why: Vec<String> = problems
                    .iter()
                    .map(|p| format!("{}: {}", p.key, p.message))
                    .collect();
                tracing::error!(
                    app = stored.name,
                    "an app created through the admin API is not valid any more and is not served: {}",
                    why.join("; ")
                );
            }
        }
    }
    Ok(apps)
}
