//! The owner: starts every part of moat from a validated config, in
//! order, and stops them in the reverse order.
//!
//! Start: data directory and keys, the store, the recorder (which seals
//! what a crash left open and resumes uploads), the runtime, TLS, the
//! listeners and the admin socket (all bound before anything is served,
//! so nothing is served if any part fails), then the accept loops and the
//! periodic tasks. Stop: the accept loops, the connections' drain (up to
//! `server.shutdown_timeout`), the admin API, the recorder (every
//! recording sealed), the uploads of what was just sealed, the store, the
//! workers, the access log.
//!
//! Running state changes only through [`Control`]; nothing imports this
//! module but the crate root.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use moat_config::Config;
use moat_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::access_log::AccessLog;
use crate::admin_password::AdminPassword;
use crate::auth::AuthState;
use crate::clock::{Clock, SystemClock};
use crate::control::{self, Control, ListenerInfo, Parts};
use crate::keys::Keys;
use crate::listener::{self, Listening, Role};
use crate::pipeline::Pipeline;
use crate::recorder::Recorder;
use crate::runtime::zones::ZoneRegistry;
use crate::runtime::{Current, RuntimeError};
use crate::tls::{self, TlsError, TlsState};
use crate::workers::Workers;

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
    Reload(#[from] control::ReloadError),
    #[error(transparent)]
    Store(#[from] moat_store::StoreError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
}

/// Builds the admin API once the control interface exists: it binds its
/// socket at `path` (an error stops the start).
pub type AdminFactory = Box<
    dyn FnOnce(
            Arc<Control>,
            PathBuf,
        )
            -> crate::admin_api::BoxFuture<std::io::Result<crate::admin_api::AdminParts>>
        + Send,
>;

/// A running gateway.
pub struct Gateway {
    control: Arc<Control>,
    listening: Arc<Listening>,
    recorder: Arc<Recorder>,
    store: Store,
    access_log: AccessLog,
    pub https_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    pub admin_socket: PathBuf,
    data_dir: PathBuf,
    shutdown_tx: watch::Sender<bool>,
    accept_tasks: Vec<JoinHandle<()>>,
    admin_task: JoinHandle<()>,
    periodic: Vec<JoinHandle<()>>,
}

impl Gateway {
    /// Binds everything and starts serving. Nothing is served if any part
    /// fails, and the error says which.
    pub async fn start(
        config: Config,
        data_dir: PathBuf,
        admin_password: AdminPassword,
        admin: AdminFactory,
    ) -> Result<Gateway, GatewayError> {
        Self::start_with_clock(
            config,
            data_dir,
            admin_password,
            admin,
            Arc::new(SystemClock),
        )
        .await
    }

    /// [`Gateway::start`] with the clock recordings and retention are
    /// dated by.
    pub async fn start_with_clock(
        config: Config,
        data_dir: PathBuf,
        admin_password: AdminPassword,
        admin: AdminFactory,
        clock: Arc<dyn Clock>,
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
        let api_apps = control::load_api_apps(&store).await?;
        let csp_grants = control::load_csp_grants(&store).await?;

        let config = Arc::new(config);
        let workers =
            Arc::new(Workers::start(config.server.workers).map_err(GatewayError::Workers)?);
        let recording_root = config
            .recording
            .local_path
            .clone()
            .unwrap_or_else(|| data_dir.join("recordings"));
        let recorder = Arc::new(
            Recorder::start(
                clock.clone(),
                recording_root.clone(),
                moat_recording::Kek::from_bytes(keys.recording_kek),
                store.clone(),
                tokio::runtime::Handle::current(),
            )
            .map_err(|source| GatewayError::DataDir {
                path: recording_root,
                source,
            })?,
        );
        let zones = Arc::new(ZoneRegistry::default());
        let runtime = Current::new(control::build_runtime(
            &config,
            &api_apps,
            &csp_grants,
            &zones,
            &data_dir,
            workers.len(),
        )?);

        let tls_state = if config.tls.enabled {
            Some(Arc::new(TlsState::new(
                &config,
                &data_dir,
                &tls::app_hosts(&runtime.load().config),
                clock.now(),
            )?))
        } else {
            tracing::warn!(
                "TLS is disabled (tls.enabled = false): apps are served over plain HTTP"
            );
            None
        };

        let (bound, https_addr, http_addr) = bind_listeners(&config).await?;
        let admin_path = config
            .server
            .admin_socket
            .clone()
            .unwrap_or_else(|| data_dir.join("moat.sock"));
        let access_log = AccessLog::start(&config.log.access_log, config.log.access_log_format)
            .map_err(GatewayError::AccessLog)?;
        let sign_in =
            Arc::new(AuthState::new(&keys, &config.auth, admin_password).with_store(store.clone()));
        // OpenID providers are looked up in the background: one that is
        // down does not stop moat, its apps answer 503 until it is found.
        sign_in.oidc.start();
        // Sessions kept from the last run sign nobody out by a restart.
        match sign_in.restore_sessions().await {
            Ok((0, 0)) => {}
            Ok((restored, ended)) => tracing::info!(
                restored,
                ended,
                "sign-in sessions kept from the last run (ended: those of another admin password)"
            ),
            Err(e) => tracing::error!(
                "sign-in sessions could not be read from the store; everyone signs in again: {e}"
            ),
        }

        let control = Arc::new(Control::new(
            Parts {
                runtime: runtime.clone(),
                store: store.clone(),
                recorder: recorder.clone(),
                sign_in: sign_in.clone(),
                tls: tls_state.clone(),
                zones: zones.clone(),
                data_dir: data_dir.clone(),
                workers: workers.len(),
                clock: clock.clone(),
                listeners: bound
                    .iter()
                    .map(|(l, role)| ListenerInfo {
                        address: listener::local_addr(l),
                        role: role.name(),
                    })
                    .collect(),
            },
            config.clone(),
            api_apps,
            csp_grants,
        ));
        // The TLS side of the apps (client-certificate handshakes) is set
        // the way every later change sets it.
        control.serve_current();
        let crate::admin_api::AdminParts {
            api: admin_api,
            portal,
        } = admin(control.clone(), admin_path.clone())
            .await
            .map_err(|source| GatewayError::AdminSocket {
                path: admin_path.clone(),
                source,
            })?;

        let pipeline = Arc::new(Pipeline {
            runtime: runtime.clone(),
            access_log: access_log.clone(),
            sign_in: sign_in.clone(),
            recorder: recorder.clone(),
            reports: crate::pipeline::csp_report::Reports {
                limiter: Default::default(),
                store: store.clone(),
            },
            admin: crate::pipeline::admin_tcp::AdminRoute::new(Some(admin_api.clone())),
            portal: crate::pipeline::portal::PortalRoute::new(portal),
        });
        let listening = Arc::new(Listening {
            runtime: runtime.clone(),
            tls: tls_state,
            connections: Default::default(),
            workers,
            pipeline,
            access_log: access_log.clone(),
        });
        listening
            .connections
            .fit_to_descriptors(config.server.max_connections);

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut accept_tasks = Vec::new();
        for (l, role) in bound {
            tracing::info!(address = %listener::local_addr(&l), ?role, "listening");
            accept_tasks.push(tokio::spawn(listener::accept_loop(
                l,
                role,
                listening.clone(),
                shutdown_rx.clone(),
            )));
        }
        let admin_task = tokio::spawn(admin_api.serve(shutdown_rx.clone()));
        tracing::info!(socket = %admin_path.display(), "admin API on the Unix socket");

        let mut periodic = vec![tokio::spawn(sweep(
            runtime.clone(),
            recorder.clone(),
            sign_in,
            zones,
            store.clone(),
            shutdown_rx.clone(),
        ))];
        if listening.tls.is_some() {
            periodic.push(tokio::spawn(watch_certificates(
                control.clone(),
                config.tls.reload_interval,
                shutdown_rx.clone(),
            )));
            periodic.push(tokio::spawn(run_acme(control.clone(), shutdown_rx)));
        }

        Ok(Gateway {
            control,
            listening,
            recorder,
            store,
            access_log,
            https_addr,
            http_addr,
            admin_socket: admin_path,
            data_dir,
            shutdown_tx,
            accept_tasks,
            admin_task,
            periodic,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The control interface: every change to running state.
    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// Applies a new config (see [`Control::reload_config`]).
    pub async fn reload(&self, config: Config) -> Result<(), GatewayError> {
        Ok(self.control.reload_config(config).await?)
    }

    /// Reloads certificate files if any changed on disk. Returns whether a
    /// reload happened.
    pub fn reload_certificates(&self) -> Result<bool, GatewayError> {
        Ok(self.control.maintain_certificates(true)?)
    }

    /// Stops accepting, lets in-flight requests finish for up to
    /// `server.shutdown_timeout`, then closes what is left, in the order
    /// the module's documentation gives.
    pub async fn shutdown(self) {
        let timeout = self.control.runtime().config.server.shutdown_timeout;
        let _ = self.shutdown_tx.send(true);
        for t in self.accept_tasks {
            let _ = t.await;
        }
        let registry = &self.listening.connections.registry;
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
        for t in self.periodic {
            let _ = t.await;
        }
        // Every recording in progress ends with moat and is sealed.
        let recorder = self.recorder.clone();
        let _ = tokio::task::spawn_blocking(move || recorder.stop()).await;
        // Uploads of the recordings just sealed update the index: they
        // finish before the store closes (within the drain deadline).
        crate::buckets::drain(timeout).await;
        // When sign-in sessions were last used, for the next start.
        self.listening.pipeline.sign_in.sweep().await;
        self.store.close().await;
        self.listening.workers.stop();
        self.access_log.flush();
    }
}

/// Binds the listeners the config asks for: HTTPS (and the redirect
/// listener) with TLS, plain HTTP without.
async fn bind_listeners(
    config: &Config,
) -> Result<
    (
        Vec<(TcpListener, Role)>,
        Option<SocketAddr>,
        Option<SocketAddr>,
    ),
    GatewayError,
> {
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
    Ok((bound, https_addr, http_addr))
}

/// Ends idle recorded sessions every second (so a recording closes close
/// to its idle timeout), checks recording storage, and once a minute ends
/// expired sign-in sessions, forgets refilled rate-limit keys and runs the
/// reaper, so memory and disk hold only what still matters.
async fn sweep(
    runtime: Current,
    recorder: Arc<Recorder>,
    sign_in: Arc<AuthState>,
    zones: Arc<ZoneRegistry>,
    store: Store,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut seconds = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        seconds += 1;
        let rt = runtime.load();
        let auth = &rt.config.auth;
        recorder.sweep(auth.idle_timeout, auth.absolute_timeout);
        // At critically low storage the recorded sessions in progress are
        // closed cleanly (their recordings sealed) rather than cut off
        // when the disk fills.
        let state = recorder.storage.check(
            rt.apps.iter().any(|a| a.recording.is_some()),
            rt.config.recording.minimum_available_capacity,
        );
        if state.must_close_recordings() {
            recorder.end_all("critically low storage");
        }
        if seconds % 60 == 0 {
            sign_in.sweep().await;
            zones.sweep();
            let now = recorder.clock().now_ms();
            crate::recorder::reaper::reap(&store, recorder.kek(), recorder.root(), now).await;
        }
    }
}

async fn bind(addr: SocketAddr, key: &'static str) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind { addr, key, source })
}

/// Renews what moat issues and, every `reload_interval` (unless zero),
/// reloads certificate files that changed. Renewal is checked at least
/// once a minute even when file checks are off.
async fn watch_certificates(
    control: Arc<Control>,
    reload_interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let check_files = !reload_interval.is_zero();
    let interval = if check_files {
        reload_interval.min(Duration::from_secs(60))
    } else {
        Duration::from_secs(60)
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        // A half-written file fails to load; the old certificate stays and
        // the next tick tries again.
        if let Err(e) = control.maintain_certificates(check_files) {
            tracing::error!(
                "certificate reload failed, still serving the previous certificate: {e}"
            );
        }
    }
}

/// Orders ACME certificates when they are due: at start for those not on
/// disk, at renewal, at the retry after a failure. Sleeps until the next
/// attempt (looking again at least every minute, since the clock's time
/// and the timer's may part), or until a check or reload wakes it. An
/// order in progress when moat stops is abandoned; nothing of it is kept.
async fn run_acme(control: Arc<Control>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let next = tokio::select! {
            n = control.acme_round() => n,
            _ = shutdown.changed() => return,
        };
        let now = control.clock().now_ms() / 1000;
        let wait = next
            .map(|at| Duration::from_secs((at - now).clamp(1, 60) as u64))
            .unwrap_or(Duration::from_secs(60));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = control.acme_woken() => {}
            _ = shutdown.changed() => return,
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
