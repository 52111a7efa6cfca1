//! A client for the admin API: on the local Unix socket, or on a remote
//! moat's HTTPS listener (`admin_over_tcp`) with the admin's credentials.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use crate::api::ApiError;

/// What went wrong talking to the server. Each kind has its own exit code,
/// so scripts can tell "moat is down" from "no such app".
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "moat is not running (nothing answers at {server}); start it with `moat serve`, or point --data-dir/--socket/server_uri at the right place"
    )]
    NotRunning { server: String },
    #[error("permission denied at {server}: {why}")]
    PermissionDenied { server: String, why: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the server refused the request: {0}")]
    Refused(String),
    #[error("talking to moat at {server}: {message}")]
    Protocol { server: String, message: String },
}

impl ClientError {
    /// The CLI's exit code for this error (documented in the README).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::NotRunning { .. } => 3,
            ClientError::PermissionDenied { .. } => 4,
            ClientError::NotFound(_) => 5,
            ClientError::Conflict(_) => 6,
            ClientError::Refused(_) | ClientError::Protocol { .. } => 1,
        }
    }
}

/// A remote moat: its HTTPS base URI and the admin's credentials.
pub struct Remote {
    /// `https://HOST:PORT`
    pub server_uri: http::Uri,
    pub user: String,
    pub password: String,
    pub tls: rustls::ClientConfig,
}

enum Transport {
    Unix(PathBuf),
    Https(Box<Remote>),
}

pub struct AdminClient {
    transport: Transport,
}

impl AdminClient {
    pub fn unix(socket: impl Into<PathBuf>) -> Self {
        AdminClient {
            transport: Transport::Unix(socket.into()),
        }
    }

    pub fn https(remote: Remote) -> Self {
        AdminClient {
            transport: Transport::Https(Box::new(remote)),
        }
    }

    /// The socket path or server URI, for messages.
    pub fn server(&self) -> String {
        match &self.transport {
            Transport::Unix(p) => p.display().to_string(),
            Transport::Https(r) => r.server_uri.to_string(),
        }
    }

    /// `GET path` (e.g. `/api/v1/status`), decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(http::Method::GET, path, None).await
    }

    /// `method path` with a typed body (one of `api`'s request types),
    /// the answer decoded as `T`.
    pub async fn send<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        method: http::Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_value(body).expect("API request bodies serialize");
        self.call(method, path, Some(&body)).await
    }

    /// `method path` with an optional JSON body, the answer decoded as `T`
    /// (use `serde_json::Value` for an answer without a body).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, ClientError> {
        let body = body.map(|b| Bytes::from(b.to_string()));
        let server = self.server();
        let protocol = |message: String| ClientError::Protocol {
            server: server.clone(),
            message,
        };
        let (status, body) = match &self.transport {
            Transport::Unix(socket) => {
                let stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| match e.kind() {
                    std::io::ErrorKind::PermissionDenied => ClientError::PermissionDenied {
                        server: server.clone(),
                        why: "the admin socket is only open to the user moat runs as; run this command as that user".into(),
                    },
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                        ClientError::NotRunning { server: server.clone() }
                    }
                    _ => protocol(e.to_string()),
                })?;
                let req = http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header(http::header::HOST, "moat");
                exchange(stream, req, body).await.map_err(protocol)?
            }
            Transport::Https(remote) => {
                let authority = remote
                    .server_uri
                    .authority()
                    .ok_or_else(|| protocol("server_uri has no host".into()))?;
                let port = authority.port_u16().unwrap_or(443);
                let tcp = tokio::net::TcpStream::connect((authority.host(), port))
                    .await
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::ConnectionRefused => ClientError::NotRunning {
                            server: server.clone(),
                        },
                        _ => protocol(e.to_string()),
                    })?;
                let host = authority
                    .host()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned();
                let name = rustls::pki_types::ServerName::try_from(host)
                    .map_err(|e| protocol(e.to_string()))?;
                let tls = tokio_rustls::TlsConnector::from(Arc::new(remote.tls.clone()))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| protocol(format!("TLS: {e}")))?;
                let credentials = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", remote.user, remote.password));
                // moat serves the API over TCP in its own namespace.
                let req = http::Request::builder()
                    .method(method)
                    .uri(format!("/_moat{path}"))
                    .header(http::header::HOST, authority.as_str())
                    .header(http::header::AUTHORIZATION, format!("Basic {credentials}"));
                exchange(tls, req, body).await.map_err(protocol)?
            }
        };
        if status.is_success() {
            let body: &[u8] = if body.is_empty() { b"null" } else { &body };
            return serde_json::from_slice(body)
                .map_err(|e| protocol(format!("unexpected answer: {e}")));
        }
        let message = serde_json::from_slice::<ApiError>(&body)
            .map(|e| e.describe())
            .unwrap_or_else(|_| format!("{status}: {}", String::from_utf8_lossy(&body)));
        Err(match status {
            http::StatusCode::NOT_FOUND => ClientError::NotFound(message),
            http::StatusCode::CONFLICT => ClientError::Conflict(message),
            http::StatusCode::UNAUTHORIZED
            | http::StatusCode::TOO_MANY_REQUESTS
            | http::StatusCode::FORBIDDEN => ClientError::PermissionDenied {
                server,
                why: message,
            },
            _ => ClientError::Refused(message),
        })
    }
}

/// One HTTP/1.1 request on a fresh connection; returns status and body.
async fn exchange<S>(
    stream: S,
    req: http::request::Builder,
    body: Option<Bytes>,
) -> Result<(http::StatusCode, Bytes), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = match body {
        Some(b) => req
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Either::Left(Full::new(b))),
        None => req.body(http_body_util::Either::Right(Empty::<Bytes>::new())),
    }
    .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// TLS settings for a remote moat: trust `ca_file` if given, else the
/// system's roots; or, only when asked by name, no verification at all.
pub fn tls_config(
    ca_file: Option<&Path>,
    skip_cert_check: bool,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if skip_cert_check {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for cert in certs {
                roots
                    .add(cert.map_err(|e| format!("{}: {e}", path.display()))?)
                    .map_err(|e| e.to_string())?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `skip_cert_check = true`: the server's certificate is not checked, so
/// anyone on the path can read the credentials. Named plainly, off by
/// default.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
