//! What an app is in one version of the config: its upstream connections
//! or its bundle folder. The pipeline's last stage serves them
//! (`pipeline::upstream`, `pipeline::static_files`); they are built here,
//! with the runtime, so the runtime imports no stage.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use moat_config::{App, Timeouts, Upstream};

use crate::body::Body;
use crate::upstream_pool::Http1Pool;

pub struct UpstreamApp {
    pub(crate) transport: Transport,
    pub(crate) origin: Uri,
    pub(crate) base_path: String,
    pub(crate) h2c: bool,
    pub(crate) preserve_host: bool,
    pub(crate) strip_path: bool,
    pub(crate) timeouts: Timeouts,
    /// Request headers with `_` this app receives (lower-case).
    pub(crate) allow_underscore_headers: Vec<String>,
    /// Bytes per second a request body must keep up (0: no minimum), and
    /// the grace before it applies.
    pub(crate) min_body_rate: (u64, Duration),
    /// SECURITY: requests in flight to this upstream, across workers. Each
    /// holds an upstream connection (a socket, a descriptor), so without a
    /// cap a slow upstream lets clients open descriptors until moat has
    /// none left for anyone.
    pub(crate) in_flight: Arc<tokio::sync::Semaphore>,
}

/// How requests reach the upstream. Each app has its own connections, so
/// its timeouts and limits never affect another app's.
pub(crate) enum Transport {
    /// HTTP/1.1 keep-alive, one idle list per worker.
    Http1(Arc<Http1Pool>),
    /// HTTP/2 cleartext: multiplexed connections, one client per worker.
    H2c(Vec<Client<HttpConnector, Body>>),
}

impl UpstreamApp {
    pub fn new(
        app: &App,
        upstream: &Upstream,
        workers: usize,
        min_body_rate: (u64, Duration),
    ) -> UpstreamApp {
        let authority = upstream
            .origin
            .authority()
            .expect("validated: upstream has a host");
        let addr = match authority.port_u16() {
            Some(_) => authority.as_str().to_owned(),
            None => format!("{}:80", authority.host()),
        };
        let transport = if upstream.h2c {
            Transport::H2c(
                (0..workers.max(1))
                    .map(|_| {
                        let mut connector = HttpConnector::new();
                        connector.set_connect_timeout(Some(app.timeouts.connect));
                        connector.set_nodelay(true);
                        Client::builder(TokioExecutor::new())
                            .pool_timer(TokioTimer::new())
                            .pool_idle_timeout(Duration::from_secs(90))
                            .http2_only(true)
                            .build(connector)
                    })
                    .collect(),
            )
        } else {
            Transport::Http1(Arc::new(Http1Pool::new(
                addr,
                app.timeouts.connect,
                workers,
            )))
        };
        UpstreamApp {
            transport,
            origin: upstream.origin.clone(),
            base_path: upstream.base_path.clone(),
            h2c: upstream.h2c,
            preserve_host: app.preserve_host,
            strip_path: app.strip_path,
            timeouts: app.timeouts.clone(),
            min_body_rate,
            allow_underscore_headers: app.allow_underscore_headers.clone(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(app.max_upstream_connections)),
        }
    }
}

pub struct StaticApp {
    /// Canonical path of the bundle folder.
    pub(crate) root: PathBuf,
    /// Unknown paths that accept HTML get `index.html`.
    pub(crate) spa: bool,
}

impl StaticApp {
    pub fn new(dir: &Path, spa: bool) -> io::Result<StaticApp> {
        Ok(StaticApp {
            root: std::fs::canonicalize(dir)?,
            spa,
        })
    }
}
