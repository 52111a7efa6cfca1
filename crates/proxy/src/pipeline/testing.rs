//! Hand-made runtimes and requests for the stages' unit tests: a config
//! from TOML text, built the way the gateway builds it, with no socket
//! opened (upstream pools connect on first use).

use std::net::SocketAddr;
use std::sync::Arc;

use http::Request;
use moat_policy::client_ip;

use crate::request::{ConnInfo, RequestCtx};
use crate::runtime::zones::ZoneRegistry;
use crate::runtime::{AppRuntime, Grants, Runtime};

/// The runtime `toml` gives (on top of moat's defaults).
pub fn runtime(toml: &str) -> Runtime {
    let config = moat_config::load_str(toml, None).expect("the test config is valid");
    Runtime::build(
        Arc::new(config),
        std::path::Path::new("/nonexistent-welcome"),
        1,
        &Grants::new(),
        &ZoneRegistry::default(),
    )
    .expect("the test runtime builds")
}

/// The app named `name` in `runtime`.
pub fn app(runtime: &Runtime, name: &str) -> Arc<AppRuntime> {
    runtime
        .apps
        .iter()
        .find(|a| a.name == name)
        .cloned()
        .expect("the app is in the test config")
}

/// A request's context as the pipeline starts it, from `client` over TLS
/// (or not), routed to `app` if given.
pub fn ctx<B>(
    req: &Request<B>,
    client: &str,
    tls: bool,
    app: Option<Arc<AppRuntime>>,
) -> RequestCtx {
    let peer: SocketAddr = format!("{client}:40000").parse().expect("an IP address");
    let conn = ConnInfo {
        client_cert: None,
        client_cert_asked: None,
        id: 1,
        peer,
        local: "127.0.0.1:443".parse().expect("an address"),
        tls,
    };
    let client = client_ip::resolve(peer.ip(), req.headers(), &Default::default());
    let mut ctx = RequestCtx::new(req, &conn, client);
    ctx.app = app;
    ctx
}

/// One upstream app at `/` named `app`, with `extra` TOML lines in its
/// `[[apps]]` entry and `global` before it.
pub fn one_app(global: &str, extra: &str) -> Runtime {
    runtime(&format!(
        "{global}\n[[apps]]\nname = \"app\"\npath = \"/\"\nupstream = \"http://127.0.0.1:9\"\n{extra}\n"
    ))
}

/// Sign-in state with fresh keys and a known admin password ("secret",
/// hashed at the lowest cost so tests stay fast).
pub fn sign_in(config: &moat_config::Config) -> (tempfile::TempDir, crate::auth::AuthState) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let keys = crate::keys::Keys::load_or_create(dir.path()).expect("keys");
    let hash = bcrypt::hash("secret", 4).expect("bcrypt");
    let state = crate::auth::AuthState::new(
        &keys,
        &config.auth,
        crate::admin_password::AdminPassword::from_hash(hash),
    );
    (dir, state)
}
