//! The answers to ACME challenges while an order is open: the key
//! authorization for an http-01 token (served by the HTTP listener before
//! its redirect), and the self-signed `acmeIdentifier` certificate for a
//! tls-alpn-01 name (presented to handshakes that offer only
//! `acme-tls/1`, RFC 8737). Entries live only while their order runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The path prefix of http-01 answers (RFC 8555 §8.3).
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// The ALPN protocol of tls-alpn-01 (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

#[derive(Default)]
pub struct Challenges {
    http01: Mutex<HashMap<String, String>>,
    alpn: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl Challenges {
    /// The body answering `GET /.well-known/acme-challenge/TOKEN`, if that
    /// token belongs to an open order.
    pub fn http01(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(HTTP01_PREFIX)?;
        self.http01
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }

    /// Whether any http-01 answer is open (the HTTP listener checks the
    /// path only then).
    pub fn any_http01(&self) -> bool {
        !self
            .http01
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// The server config a tls-alpn-01 handshake for `name` gets.
    pub fn alpn(&self, name: &str) -> Option<Arc<ServerConfig>> {
        self.alpn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    pub(super) fn open_http01(&self, token: &str, key_authorization: &str) -> Guard<'_> {
        self.http01
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.to_owned(), key_authorization.to_owned());
        Guard {
            challenges: self,
            entry: Entry::Http01(token.to_owned()),
        }
    }

    /// Builds and opens the tls-alpn-01 answer for `name`: a self-signed
    /// certificate for the name carrying the SHA-256 of the key
    /// authorization in a critical acmeIdentifier extension.
    pub(super) fn open_alpn(
        &self,
        name: &str,
        digest: &[u8],
        provider: &Arc<CryptoProvider>,
    ) -> Result<Guard<'_>, String> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| e.to_string())?;
        let mut params =
            rcgen::CertificateParams::new(vec![name.to_owned()]).map_err(|e| e.to_string())?;
        params
            .custom_extensions
            .push(rcgen::CustomExtension::new_acme_identifier(digest));
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        let signing = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                key.serialize_der(),
            )))
            .map_err(|e| e.to_string())?;
        // Not through with_single_cert: its check parses the certificate
        // as an end entity, which refuses the critical acmeIdentifier
        // extension the CA needs to see.
        let answer = Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Answer(answer)));
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        let name = name.to_ascii_lowercase();
        self.alpn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), Arc::new(config));
        Ok(Guard {
            challenges: self,
            entry: Entry::Alpn(name),
        })
    }
}

/// Presents the challenge certificate to every handshake of its config.
#[derive(Debug)]
struct Answer(Arc<CertifiedKey>);

impl ResolvesServerCert for Answer {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

enum Entry {
    Http01(String),
    Alpn(String),
}

/// Closes an answer when the order is done with it, whichever way it ends.
pub(super) struct Guard<'a> {
    challenges: &'a Challenges,
    entry: Entry,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        match &self.entry {
            Entry::Http01(token) => {
                self.challenges
                    .http01
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(token);
            }
            Entry::Alpn(name) => {
                self.challenges
                    .alpn
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_live_while_their_guard_does() {
        let c = Challenges::default();
        assert!(!c.any_http01());
        {
            let _g = c.open_http01("tok", "tok.thumb");
            assert!(c.any_http01());
            assert_eq!(
                c.http01("/.well-known/acme-challenge/tok").as_deref(),
                Some("tok.thumb")
            );
            assert_eq!(c.http01("/.well-known/acme-challenge/other"), None);
            assert_eq!(c.http01("/tok"), None);
        }
        assert_eq!(c.http01("/.well-known/acme-challenge/tok"), None);

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        {
            let _g = c
                .open_alpn("Shop.Example.com", &[7u8; 32], &provider)
                .unwrap();
            let config = c.alpn("shop.example.com").unwrap();
            assert_eq!(config.alpn_protocols, [ACME_TLS_ALPN.to_vec()]);
        }
        assert!(c.alpn("shop.example.com").is_none());
    }
}
