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
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
