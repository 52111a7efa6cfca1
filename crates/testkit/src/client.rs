//! Clients for a moat under test.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Root store holding every certificate in the PEM file.
pub fn roots(pem: &Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pem).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    roots
}

/// A client config trusting `pem`, offering `alpn`.
pub fn tls_config(pem: &Path, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut c = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(pem))
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    c
}

/// An HTTP/1.1-only reqwest client trusting `pem`.
pub fn http1(pem: &Path) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(pem, &[b"http/1.1"]))
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An HTTP/1.1 client trusting `pem` whose connections come from `local`
/// (any 127.x address works on Linux): a second client address for tests.
pub fn http1_from(pem: &Path, local: std::net::IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(pem, &[b"http/1.1"]))
        .http1_only()
        .local_address(local)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A reqwest client that negotiates HTTP/2 by ALPN.
pub fn http2(pem: &Path) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(pem, &[b"h2"]))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A plain-HTTP reqwest client (no redirects followed).
pub fn plain() -> reqwest::Client {
    // reqwest wants a process-wide provider even for plain HTTP; another
    // test may have installed it first, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Accepts any server certificate: for tests that look at *which*
/// certificate moat chose, not whether it is trusted.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client config for the given provider and versions that accepts any
/// certificate.
pub fn any_cert_config(
    provider: rustls::crypto::CryptoProvider,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let provider = Arc::new(provider);
    let mut c = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    c
}

/// A raw TLS connection, for requests no well-behaved client sends.
pub async fn connect_tls(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    sni: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name =
        rustls::pki_types::ServerName::try_from(sni.to_owned()).map_err(std::io::Error::other)?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// A raw HTTP/1.1 TLS connection to a moat's HTTPS listener, trusting its
/// local CA's root.
pub async fn raw_https(
    moat: &crate::Moat,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tls = tls_config(&moat.local_ca_root(), &[b"http/1.1"]);
    connect_tls(
        moat.https.expect("https listener"),
        Arc::new(tls),
        "localhost",
    )
    .await
    .unwrap()
}

/// `GET /_moat/login` (moat's own page, no sign-in needed) on an open
/// keep-alive connection, for `host`; returns the status line once the
/// whole response is read.
pub async fn login_page_status<S>(s: &mut S, host: &str) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(format!("GET /_moat/login HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = Vec::new();
    loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return head.lines().next().unwrap().to_owned();
            }
        }
    }
}

/// A TLS connection to `addr` for `sni` trusting only the certificates
/// in `roots_pem` (PEM text), offering HTTP/1.1.
pub async fn connect_trusting(
    addr: std::net::SocketAddr,
    roots_pem: &str,
    sni: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
        roots
            .add(c.map_err(std::io::Error::other)?)
            .map_err(std::io::Error::other)?;
    }
    let mut c = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    connect_tls(addr, Arc::new(c), sni).await
}

/// Signs in as the system account through moat's login form (a same-origin
/// post), then to `next`; returns the session cookie as `name=value`.
pub async fn sign_in_admin(
    moat: &crate::Moat,
    http: &reqwest::Client,
    password: &str,
    next: &str,
) -> String {
    let form = format!(
        "user=admin&password={}&next={}",
        percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC),
        percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC),
    );
    let resp = http
        .post(moat.https_url("/_moat/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "the sign-in failed: {}", moat.logs());
    let set = resp.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}
