//! What moat knows about one request as it passes the pipeline: the
//! connection it came on and what earlier stages learned. Below the
//! pipeline and the apps, so both can read it without importing each
//! other.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, header};
use moat_policy::client_ip::ClientIp;

use crate::runtime::AppRuntime;

/// What moat knows about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Unique per connection for the life of the process.
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
    /// The client certificate chain presented in the TLS handshake, not
    /// yet judged (see `tls::client_auth`).
    pub client_cert: Option<Arc<crate::tls::client_auth::PeerCert>>,
    /// Whether (and for which SNI name) the handshake asked for a client
    /// certificate: its SNI named a host whose apps want one.
    pub client_cert_asked: Option<crate::tls::client_auth::Asked>,
}

/// What earlier stages learned about a request, for later stages and logs.
pub struct RequestCtx {
    pub client: ClientIp,
    pub tls: bool,
    /// The host the client asked for (Host header, or the HTTP/2 authority).
    pub host: Option<String>,
    pub app: Option<Arc<AppRuntime>>,
    /// The signed-in user, once the auth stage has found one.
    pub user: Option<String>,
    /// The email and groups a provider gave for the user (empty for the
    /// system account and client certificates).
    pub email: Option<String>,
    pub groups: Vec<String>,
    /// Where the user signed in (`system`, `oidc:NAME`, `cert`).
    pub source: Option<String>,
    /// CORS headers for the response (apps whose CORS moat manages).
    pub cors: Vec<(http::HeaderName, http::HeaderValue)>,
    /// A key naming the client's session (sign-in, or a visit cookie).
    pub session: Option<String>,
    /// A sign-in session that ended with this request (sign-out): its
    /// recordings end too.
    pub ended_session: Option<String>,
    /// Cookies moat sets on the response (a recorded visit's cookie).
    pub set_cookies: Vec<http::HeaderValue>,
    /// Which client connection the request came on.
    pub conn_id: u64,
    /// For an app that allows encoded slashes: the path as a decoding
    /// upstream reads it (guards check both readings).
    pub decoded_path: Option<String>,
    /// The connection's client certificate, for the stage that judges it.
    pub client_cert: Option<Arc<crate::tls::client_auth::PeerCert>>,
    pub client_cert_asked: Option<crate::tls::client_auth::Asked>,
}

impl RequestCtx {
    /// The context of a request that has just arrived on `conn` from
    /// `client` (resolved through the trusted proxies).
    pub fn new<B>(req: &Request<B>, conn: &ConnInfo, client: ClientIp) -> RequestCtx {
        RequestCtx {
            client,
            tls: conn.tls,
            host: request_host(req),
            app: None,
            user: None,
            email: None,
            groups: Vec::new(),
            source: None,
            cors: Vec::new(),
            session: None,
            ended_session: None,
            set_cookies: Vec::new(),
            conn_id: conn.id,
            decoded_path: None,
            client_cert: conn.client_cert.clone(),
            client_cert_asked: conn.client_cert_asked.clone(),
        }
    }

    pub fn proto(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}

/// The host the client asked for: HTTP/2 carries it in the URI authority,
/// HTTP/1.1 in the Host header.
pub fn request_host<B>(req: &Request<B>) -> Option<String> {
    req.uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
}
