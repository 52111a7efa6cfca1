//! What the gateway-level tests share: an admin API that does nothing (the
//! tests drive the control interface directly) and time in the clock's
//! unit. TLS clients and page requests are the testkit's.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use moat_proxy::AdminFactory;
use moat_proxy::admin_api::{AdminApi, BoxFuture};
use moat_proxy::body::Body;

struct NoAdmin;

impl AdminApi for NoAdmin {
    fn handle(
        &self,
        _: http::Request<Body>,
        _: moat_store::Actor,
    ) -> BoxFuture<http::Response<Body>> {
        Box::pin(async { http::Response::new(moat_proxy::body::empty()) })
    }
    fn serve(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) -> BoxFuture<()> {
        Box::pin(async move {
            let _ = shutdown.changed().await;
        })
    }
}

/// An admin API that answers nothing and stops with the gateway.
pub fn no_admin() -> AdminFactory {
    Box::new(|_control, _path| {
        Box::pin(async {
            let api: Arc<dyn AdminApi> = Arc::new(NoAdmin);
            Ok(api.into())
        })
    })
}

/// Unix milliseconds, as `FixedClock` takes them.
pub fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The SHA-256 of the leaf a TLS connection was served.
pub fn leaf_sha(s: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> String {
    moat_proxy::tls::inspect::fingerprint(&s.get_ref().1.peer_certificates().unwrap()[0])
}
