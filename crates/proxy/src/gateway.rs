//! Starts moat from a validated config: binds listeners and the admin
//! socket, sets up TLS, and afterwards reloads the config and certificates
//! and drains connections on shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use http::{Request, StatusCode};
use moat_config::{App, Config};
use moat_store::Store;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::access_log::{AccessLog, Entry};
use crate::admin;
use crate::admin_password::AdminPassword;
use crate::auth::AuthState;
use crate::keys::Keys;
use crate::listener::{self, Role};
use crate::pipeline::ConnInfo;
use crate::pipeline::rate_limit::ZoneRegistry;
use crate::runtime::{Grants, Runtime, RuntimeError};
use crate::tls::{self, CertStore, Resumption, SniResolver, TlsError};
use crate::workers::Workers;
use moat_policy::throttle::Throttle;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        addr: SocketAddr,
        key: &'static str,
        source: std::io::Error,
    },
    #[error("admin socket {path}: {source}")]
    AdminSocket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("starting worker threads: {0}")]
    Workers(std::io::Error),
    #[error("access log: {0}")]
    AccessLog(std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] moat_store::StoreError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
}

/// TLS state that outlives config reloads.
pub struct TlsState {
    pub server_config: ArcSwap<ServerConfig>,
    pub resolver: Arc<SniResolver>,
    resumption: Resumption,
    /// The certificate files in use (configured, or the self-signed pair).
    files: ArcSwap<Vec<moat_config::CertificateFiles>>,
}

/// State shared by every listener and connection.
pub struct Shared {
    pub runtime: ArcSwap<Runtime>,
    pub tls: Option<TlsState>,
    pub access_log: AccessLog,
    /// Open connections, their caps and the per-client counts.
    pub connections: crate::listener::ConnectionState,
    pub workers: Arc<Workers>,
    /// Checked by admin logins (a configured hash, or this run's random
    /// password).
    pub admin_password: ArcSwap<AdminPassword>,
    /// Failed admin logins over TCP, per client address.
    pub admin_throttle: std::sync::Mutex<Throttle<std::net::IpAddr>>,
    /// Sign-in sessions and the keys behind them.
    pub auth: AuthState,
    /// The metadata store (API apps, audit log).
    pub store: Store,
    /// Serializes admin changes, so two at once cannot both take a name or
    /// a mount.
    pub admin_writes: tokio::sync::Mutex<()>,
    /// The config as read from the file, without API apps.
    file_config: ArcSwap<Config>,
    /// The valid apps created through the admin API. Locked while a new
    /// runtime is built from it, so a reload and an API change cannot
    /// interleave.
    api_apps: std::sync::Mutex<Vec<App>>,
    /// CSP approvals granted through the admin API, by app. Locked after
    /// `api_apps` when both are needed.
    csp_grants: std::sync::Mutex<Grants>,
    /// Bounds CSP violation reports per app.
    pub report_limiter: crate::pipeline::csp_report::ReportLimiter,
    /// Rate-limit zone state, kept across reloads.
    pub zones: Arc<ZoneRegistry>,
    /// Writes recorded sessions.
    pub recorder: crate::recorder::Recorder,
    started: Instant,
    data_dir: PathBuf,
    listeners: Vec<(SocketAddr, Role)>,
}

impl Shared {
    /// How long this gateway has been running.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// The bound listeners and what each does.
    pub fn listeners(&self) -> &[(SocketAddr, Role)] {
        &self.listeners
    }

    /// The config file's config (without API apps).
    pub fn file_config(&self) -> Arc<Config> {
        self.file_config.load_full()
    }

    /// The apps created through the admin API that are valid.
    pub fn api_apps(&self) -> Vec<App> {
        lock(&self.api_apps).clone()
    }

    /// Builds the runtime a new set of API apps would give, without serving
    /// it: the check before a change is stored.
    pub fn prepare_api_apps(&self, apps: &[App]) -> Result<PreparedApps, RuntimeError> {
        let file = self.file_config.load_full();
        let runtime = self.build_runtime(&file, apps)?;
        Ok(PreparedApps {
            apps: apps.to_vec(),
            runtime,
            file,
        })
    }

    /// Serves a prepared set of API apps. If the config file was reloaded
    /// since they were prepared, the runtime is built again on it.
    pub fn install_api_apps(&self, prepared: PreparedApps) {
        let mut current = lock(&self.api_apps);
        let file = self.file_config.load_full();
        let runtime = if Arc::ptr_eq(&file, &prepared.file) {
            Ok(prepared.runtime)
        } else {
            self.build_runtime(&file, &prepared.apps)
        };
        *current = prepared.apps;
        match runtime {
            Ok(r) => self.runtime.store(Arc::new(r)),
            Err(e) => tracing::error!("the admin API change is stored but cannot be served: {e}"),
        }
    }

    /// Rebuilds the runtime from the same apps: static manifests are read
    /// again and upstream connection pools start empty.
    pub fn rebuild(&self) -> Result<(), RuntimeError> {
        let current = lock(&self.api_apps);
        let runtime = self.build_runtime(&self.file_config.load(), &current)?;
        self.runtime.store(Arc::new(runtime));
        Ok(())
    }

    fn build_runtime(&self, file: &Config, api_apps: &[App]) -> Result<Runtime, RuntimeError> {
        let grants = lock(&self.csp_grants);
        build_runtime(
            file,
            api_apps,
            &grants,
            &self.zones,
            &self.data_dir,
            self.workers.len(),
        )
    }

    /// Replaces the CSP approvals and serves the policies they give.
    pub fn set_csp_grants(&self, grants: Grants) -> Result<(), RuntimeError> {
        let apps = lock(&self.api_apps);
        *lock(&self.csp_grants) = grants;
        let runtime = self.build_runtime(&self.file_config.load(), &apps)?;
        self.runtime.store(Arc::new(runtime));
        Ok(())
    }

    pub(crate) fn log_redirect<B>(&self, req: &Request<B>, conn: &ConnInfo, status: StatusCode) {
        if !self.access_log.enabled() {
            return;
        }
        self.access_log.log(&Entry {
            time: SystemTime::now(),
            client_ip: moat_policy::client_ip::canonical(conn.peer.ip()),
            app: None,
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
            proto: "HTTP/1.1",
            host: crate::pipeline::request_host(req),
            status: status.as_u16(),
            bytes: 0,
            duration_ms: 0.0,
            user_agent: None,
            referer: None,
        });
    }
}

/// A set of API apps checked to build, ready to serve.
pub struct PreparedApps {
    apps: Vec<App>,
    runtime: Runtime,
    file: Arc<Config>,
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    pub https_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    pub admin_socket: PathBuf,
    shutdown_tx: watch::Sender<bool>,
    accept_tasks: Vec<JoinHandle<()>>,
    admin_task: JoinHandle<()>,
}

impl Gateway {
    /// Binds everything and starts serving. Nothing is served if any part
    /// fails, and the error says which.
    pub async fn start(
        config: Config,
        data_dir: PathBuf,
        admin_password: AdminPassword,
    ) -> Result<Gateway, GatewayError> {
        let dir_err = |source| GatewayError::DataDir {
            path: data_dir.clone(),
            source,
        };
        tls::create_private_dir(&data_dir).map_err(dir_err)?;
        warn_if_open(&data_dir);
        crate::welcome::install(&data_dir).map_err(dir_err)?;
        let keys = Keys::load_or_create(&data_dir)?;
        let store = Store::open(&data_dir.join("moat.db")).await?;
        let api_apps = load_api_apps(&store).await?;
        let csp_grants = load_csp_grants(&store).await?;

        let config = Arc::new(config);
        let workers = Workers::start(config.server.workers).map_err(GatewayError::Workers)?;
        let recording_root = config
            .recording
            .local_path
            .clone()
            .unwrap_or_else(|| data_dir.join("recordings"));
        let recorder = crate::recorder::Recorder::start(
            recording_root.clone(),
            moat_recording::Kek::from_bytes(keys.recording_kek),
            store.clone(),
            tokio::runtime::Handle::current(),
        )
        .map_err(|source| GatewayError::DataDir {
            path: recording_root,
            source,
        })?;
        let zones = Arc::new(ZoneRegistry::default());
        let runtime = build_runtime(
            &config,
            &api_apps,
            &csp_grants,
            &zones,
            &data_dir,
            workers.len(),
        )?;

        let tls_state = if config.tls.enabled {
            let files = certificate_files(&config, &data_dir)?;
            let provider = tls::provider(&config.tls)?;
            let resolver = Arc::new(SniResolver::new(CertStore::load(&files, &provider)?));
            let resumption = Resumption::new()?;
            let sc = tls::server_config(
                &config.tls,
                provider,
                resolver.clone(),
                &resumption,
                config.server.http2,
            )?;
            Some(TlsState {
                server_config: ArcSwap::from_pointee(sc),
                resolver,
                resumption,
                files: ArcSwap::from_pointee(files),
            })
        } else {
            tracing::warn!(
                "TLS is disabled (tls.enabled = false): apps are served over plain HTTP"
            );
            None
        };

        let mut bound: Vec<(TcpListener, Role)> = Vec::new();
        let mut https_addr = None;
        let mut http_addr = None;
        if config.tls.enabled {
            let addr = config
                .server
                .https
                .expect("validated: https is set when TLS is on");
            let l = bind(addr, "server.https").await?;
            https_addr = Some(listener::local_addr(&l));
            bound.push((l, Role::Apps { tls: true }));
            match (config.server.http, config.tls.redirect_http) {
                (Some(addr), true) => {
                    let l = bind(addr, "server.http").await?;
                    http_addr = Some(listener::local_addr(&l));
                    bound.push((
                        l,
                        Role::RedirectToHttps {
                            https_port: https_addr.map(|a| a.port()).unwrap_or(443),
                        },
                    ));
                }
                (Some(_), false) => {
                    tracing::info!("tls.redirect_http is off: the HTTP listener is not started")
                }
                (None, _) => {}
            }
        } else {
            let addr = config
                .server
                .http
                .expect("validated: http is set when TLS is off");
            let l = bind(addr, "server.http").await?;
            http_addr = Some(listener::local_addr(&l));
            bound.push((l, Role::Apps { tls: false }));
        }

        let admin_path = config
            .server
            .admin_socket
            .clone()
            .unwrap_or_else(|| data_dir.join("moat.sock"));
        let admin_listener =
            admin::bind(&admin_path)
                .await
                .map_err(|source| GatewayError::AdminSocket {
                    path: admin_path.clone(),
                    source,
                })?;

        let access_log = AccessLog::start(&config.log.access_log, config.log.access_log_format)
            .map_err(GatewayError::AccessLog)?;
        let shared = Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            tls: tls_state,
            access_log,
            connections: Default::default(),
            workers: Arc::new(workers),
            admin_password: ArcSwap::from_pointee(admin_password),
            admin_throttle: std::sync::Mutex::new(Throttle::new(
                crate::pipeline::admin_tcp::THROTTLE,
            )),
            auth: AuthState::new(&keys, &config.auth),
            store,
            admin_writes: tokio::sync::Mutex::new(()),
            file_config: ArcSwap::new(config.clone()),
            api_apps: std::sync::Mutex::new(api_apps),
            csp_grants: std::sync::Mutex::new(csp_grants),
            report_limiter: Default::default(),
            zones: zones.clone(),
            recorder,
            started: Instant::now(),
            data_dir,
            listeners: bound
                .iter()
                .map(|(l, r)| (listener::local_addr(l), *r))
                .collect(),
        });

        shared
            .connections
            .fit_to_descriptors(config.server.max_connections);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut accept_tasks = Vec::new();
        for (l, role) in bound {
            tracing::info!(address = %listener::local_addr(&l), ?role, "listening");
            accept_tasks.push(tokio::spawn(listener::accept_loop(
                l,
                role,
                shared.clone(),
                shutdown_rx.clone(),
            )));
        }
        let admin_task = tokio::spawn(admin::serve(
            admin_listener,
            admin_path.clone(),
            shared.clone(),
            shutdown_rx.clone(),
        ));
        tracing::info!(socket = %admin_path.display(), "admin API on the Unix socket");

        tokio::spawn(sweep_sessions(shared.clone(), shutdown_rx.clone()));
        if let Some(interval) = shared
            .tls
            .as_ref()
            .map(|_| config.tls.reload_interval)
            .filter(|d| !d.is_zero())
        {
            tokio::spawn(watch_certificates(shared.clone(), interval, shutdown_rx));
        }

        Ok(Gateway {
            shared,
            https_addr,
            http_addr,
            admin_socket: admin_path,
            shutdown_tx,
            accept_tasks,
            admin_task,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.shared.data_dir
    }

    /// Applies a new config. Everything is built before anything is
    /// swapped, so a config that fails leaves the old one serving.
    /// Listener addresses, TLS on/off and the connection cap need a restart;
    /// a change to them is reported and otherwise ignored.
    pub fn reload(&self, config: Config) -> Result<(), GatewayError> {
        let old = self.shared.runtime.load().config.clone();
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
        // Held until the new runtime is in place, so an admin API change
        // cannot slip between the build and the swap.
        let api_apps = lock(&self.shared.api_apps);
        let runtime = self.shared.build_runtime(&config, &api_apps)?;
        if let Some(tls) = &self.shared.tls {
            if config.tls.enabled {
                let files = certificate_files(&config, &self.shared.data_dir)?;
                let provider = tls::provider(&config.tls)?;
                let store = CertStore::load(&files, &provider)?;
                let sc = tls::server_config(
                    &config.tls,
                    provider,
                    tls.resolver.clone(),
                    &tls.resumption,
                    config.server.http2,
                )?;
                tls.resolver.replace(store);
                tls.server_config.store(Arc::new(sc));
                tls.files.store(Arc::new(files));
            }
        }
        // A configured hash replaces the current password; without one,
        // this run's random password stays valid.
        let password_changed = config.security.admin_password_bcrypt.is_some()
            && config.security.admin_password_bcrypt != old.security.admin_password_bcrypt;
        if let Some(hash) = &config.security.admin_password_bcrypt {
            self.shared
                .admin_password
                .store(Arc::new(AdminPassword::from_hash(hash.clone())));
        }
        // A new password ends every session signed in with the old one.
        self.shared.auth.reconfigure(&config.auth, password_changed);
        self.shared.file_config.store(config.clone());
        self.shared.runtime.store(Arc::new(runtime));
        drop(api_apps);
        tracing::info!(apps = config.apps.len(), "configuration reloaded");
        Ok(())
    }

    /// Reloads certificate files if any changed on disk. Returns whether a
    /// reload happened.
    pub fn reload_certificates(&self) -> Result<bool, GatewayError> {
        reload_certificates(&self.shared)
    }

    /// Stops accepting, lets in-flight requests finish for up to
    /// `server.shutdown_timeout`, then closes what is left.
    pub async fn shutdown(self) {
        let timeout = self.shared.runtime.load().config.server.shutdown_timeout;
        let _ = self.shutdown_tx.send(true);
        for t in self.accept_tasks {
            let _ = t.await;
        }
        let registry = &self.shared.connections.registry;
        tracing::info!(
            open_connections = registry.len(),
            "draining connections for up to {timeout:?}"
        );
        if tokio::time::timeout(timeout, registry.drained())
            .await
            .is_err()
        {
            tracing::warn!("shutdown timeout reached; closing the remaining connections");
        }
        let _ = self.admin_task.await;
        // Every recording in progress ends with moat and is sealed.
        let shared = self.shared.clone();
        let _ = tokio::task::spawn_blocking(move || shared.recorder.stop()).await;
        // Uploads of the recordings just sealed update the index: they
        // finish before the store closes (within the drain deadline).
        crate::buckets::drain(timeout).await;
        self.shared.store.close().await;
        self.shared.workers.stop();
        self.shared.access_log.flush();
    }
}

/// The runtime for a file config plus the API apps. The config file wins
/// any clash; an API app it shadows is logged and not served.
fn build_runtime(
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
pub async fn load_csp_grants(store: &Store) -> Result<Grants, GatewayError> {
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
async fn load_api_apps(store: &Store) -> Result<Vec<App>, GatewayError> {
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

/// Ends idle recorded sessions every second (so a recording closes close
/// to its idle timeout), and once a minute ends expired sign-in sessions
/// and forgets refilled rate-limit keys, so memory holds only what still
/// matters.
async fn sweep_sessions(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut seconds = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                seconds += 1;
                let auth = shared.runtime.load().config.auth.clone();
                shared.recorder.sweep(auth.idle_timeout, auth.absolute_timeout);
                check_recording_storage(&shared);
                if seconds % 60 == 0 {
                    shared.auth.sweep();
                    shared.zones.sweep();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as i64)
                        .unwrap_or(0);
                    crate::recorder::reap(&shared.store, shared.recorder.kek(), shared.recorder.root(), now).await;
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// The state of local recording storage now.
pub fn recording_storage_state(shared: &Shared) -> crate::recorder::StorageState {
    let runtime = shared.runtime.load();
    if !runtime.apps.iter().any(|a| a.recording.is_some()) {
        return crate::recorder::StorageState::NotConfigured;
    }
    crate::recorder::storage_state(
        shared.recorder.root(),
        runtime.config.recording.minimum_available_capacity,
    )
}

/// The state moat acts on: what the once-a-second check last saw
/// (computed now before the first check).
pub fn current_storage_state(shared: &Shared) -> crate::recorder::StorageState {
    let seen = *lock(&shared.recorder.last_state);
    seen.unwrap_or_else(|| recording_storage_state(shared))
}

/// Checked every second: a change is logged; at critically low storage
/// the recorded sessions in progress are closed cleanly (their recordings
/// sealed) rather than cut off when the disk fills.
fn check_recording_storage(shared: &Shared) {
    use crate::recorder::StorageState;
    let state = recording_storage_state(shared);
    let mut last = lock(&shared.recorder.last_state);
    if *last != Some(state) {
        match state {
            StorageState::Available | StorageState::NotConfigured => {
                tracing::info!(state = state.as_str(), "recording storage")
            }
            _ => {
                tracing::warn!(state = state.as_str(), path = %shared.recorder.root().display(), "recording storage")
            }
        }
        *last = Some(state);
    }
    drop(last);
    if matches!(
        state,
        StorageState::CriticallyLow | StorageState::OutOfStorage
    ) {
        shared.recorder.end_all("critically low storage");
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn bind(addr: SocketAddr, key: &'static str) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind { addr, key, source })
}

fn certificate_files(
    config: &Config,
    data_dir: &Path,
) -> Result<Vec<moat_config::CertificateFiles>, TlsError> {
    if config.tls.certificates.is_empty() {
        Ok(vec![tls::self_signed(data_dir)?])
    } else {
        Ok(config.tls.certificates.clone())
    }
}

fn reload_certificates(shared: &Shared) -> Result<bool, GatewayError> {
    let Some(tls) = &shared.tls else {
        return Ok(false);
    };
    if !tls.resolver.store().changed_on_disk() {
        return Ok(false);
    }
    let config = shared.runtime.load().config.clone();
    let provider = tls::provider(&config.tls)?;
    let store = CertStore::load(&tls.files.load(), &provider)?;
    tls.resolver.replace(store);
    tracing::info!("certificate files changed; reloaded (open connections keep their certificate)");
    Ok(true)
}

async fn watch_certificates(
    shared: Arc<Shared>,
    interval: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        // A half-written file fails to load; the old certificate stays and
        // the next tick tries again.
        if let Err(e) = reload_certificates(&shared) {
            tracing::error!(
                "certificate reload failed, still serving the previous certificate: {e}"
            );
        }
    }
}

fn warn_if_open(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(dir) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(dir = %dir.display(), "the data directory is readable by other users; run chmod 700 on it");
        }
    }
}
