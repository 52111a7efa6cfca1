//! `moat serve`: loads the config, starts the gateway with the admin
//! server plugged in, prints a generated admin password once, and handles
//! signals (SIGHUP reloads; SIGTERM and SIGINT drain and stop).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use moat_config::Config;
use moat_proxy::Gateway;
use moat_proxy::admin_password::AdminPassword;

/// The config file's config, or the embedded default without one.
pub fn load(path: Option<&Path>) -> Result<Config, moat_config::ConfigError> {
    match path {
        Some(p) => moat_config::load_file(p),
        None => Ok(moat_config::default_config()),
    }
}

pub fn serve(config_path: Option<&Path>, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let config = match load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    init_tracing(&config.log.level);
    let data_dir = data_dir
        .or_else(|| config.data_dir.clone())
        .unwrap_or_else(crate::data_dir::default);
    let (admin_password, shown_password) = match &config.security.admin_password_bcrypt {
        Some(hash) => (AdminPassword::from_hash(hash.clone()), None),
        None => {
            let (password, plain) =
                AdminPassword::generate().context("making the admin password")?;
            (password, Some(plain))
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // Connections are served on the gateway's own worker threads; this
        // runtime only accepts, serves the admin socket and watches files.
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let gateway = Gateway::start(
            config,
            data_dir,
            admin_password,
            moat_portal::Portal::factory(),
        )
        .await?;
        if let Some(plain) = &shown_password {
            // SECURITY: stdout only, once; never through the log.
            println!(
                "moat: no admin password is configured (security.admin_password_bcrypt); the admin password for this run is:\n\n    {plain}\n\nTo keep one across restarts, put the hash from `moat password --prompt` in the config."
            );
        }
        match (gateway.https_addr, gateway.http_addr) {
            (Some(https), http) => tracing::info!(
                data_dir = %gateway.data_dir().display(),
                "moat is serving https://{https}/{}",
                http.map(|h| format!(" (http://{h}/ redirects there)")).unwrap_or_default()
            ),
            (None, Some(http)) => tracing::info!(data_dir = %gateway.data_dir().display(), "moat is serving http://{http}/"),
            (None, None) => {}
        }
        run_until_stopped(gateway, config_path).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Handles signals: SIGHUP reloads, SIGTERM and SIGINT drain and stop.
async fn run_until_stopped(gateway: Gateway, config_path: Option<&Path>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                match load(config_path) {
                    Ok(config) => {
                        if let Err(e) = gateway.reload(config).await {
                            tracing::error!("config reload refused, still serving the previous config: {e}");
                        }
                    }
                    Err(e) => tracing::error!("config reload refused, still serving the previous config:\n{e}"),
                }
                if let Err(e) = gateway.reload_certificates() {
                    tracing::error!("certificate reload failed, still serving the previous certificate: {e}");
                }
            }
        }
    }
    gateway.shutdown().await;
    tracing::info!("stopped");
}

fn init_tracing(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
