//! The state the pipeline reads for one version of the config: routes,
//! apps and their upstream pools. Built once per (re)load and swapped in
//! whole, so a request sees one consistent config from start to end.

use std::path::Path;
use std::sync::Arc;

use http::HeaderValue;
use moat_config::{AppAuth, AppSource, Config};
use moat_policy::route::{Mount, Router};

use crate::pipeline::static_files::StaticApp;
use crate::pipeline::upstream::UpstreamApp;

pub struct Runtime {
    pub config: Arc<Config>,
    pub router: Router,
    /// Indexed like the router's mounts.
    pub apps: Vec<Arc<AppRuntime>>,
    /// `Strict-Transport-Security` for HTTPS responses, if on.
    pub hsts: Option<HeaderValue>,
}

pub struct AppRuntime {
    pub name: String,
    /// Normalised mount prefix.
    pub prefix: String,
    pub max_body_size: u64,
    pub auth: AppAuth,
    pub identity_jwt: bool,
    pub kind: AppKind,
}

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
    ) -> Result<Runtime, RuntimeError> {
        let mut mounts = Vec::new();
        let mut apps = Vec::new();
        for app in &config.apps {
            let kind = match &app.source {
                AppSource::Upstream(u) => AppKind::Upstream(UpstreamApp::new(app, u, workers)),
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
                auth: app.auth,
                identity_jwt: app.identity_jwt,
                kind,
            }));
        }
        if apps.is_empty() {
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
                auth: AppAuth::System,
                identity_jwt: false,
                kind: AppKind::Static(welcome),
            }));
        }
        let hsts = config
            .tls
            .hsts
            .header_value()
            .filter(|_| config.tls.enabled)
            .map(|v| HeaderValue::from_str(&v).expect("HSTS value is ASCII"));
        Ok(Runtime {
            config,
            router: Router::new(mounts),
            apps,
            hsts,
        })
    }
}
