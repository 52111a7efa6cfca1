//! The certificates moat can present and the SNI choice among them: where
//! each comes from, what it says of itself, and the configured files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use moat_config::{CertificateFiles, Tls};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::inspect::{CertificateFacts, inspect};
use super::{TlsError, provider};

/// Where a served certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `[[tls.certificates]]`: PEM files the admin renews.
    File { cert: PathBuf, key: PathBuf },
    /// moat's local CA, renewed by moat.
    LocalCa,
    /// `[[tls.acme]]` (or an app's host): ordered and renewed by moat.
    Acme {
        domains: Vec<String>,
        directory: String,
    },
}

impl Source {
    pub fn name(&self) -> &'static str {
        match self {
            Source::File { .. } => "file",
            Source::LocalCa => "local CA",
            Source::Acme { .. } => "acme",
        }
    }
}

/// One certificate chain moat can present, with what it says of itself.
#[derive(Clone)]
pub(super) struct Served {
    pub(super) key: Arc<CertifiedKey>,
    pub(super) facts: CertificateFacts,
    pub(super) source: Source,
}

/// A certificate as `moat status` and the admin API show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateStatus {
    pub source: Source,
    /// The names it is (or, not obtained yet, will be) for.
    pub names: Vec<String>,
    /// None: an ACME certificate not obtained yet.
    pub facts: Option<CertificateFacts>,
    /// Unix seconds of the next renewal, for certificates moat renews.
    pub next_renewal: Option<i64>,
    /// The last renewal or reload failure, while the old one still serves.
    pub error: Option<String>,
}

/// The certificates handshakes choose from, in order: files, ACME, then
/// the local CA's leaf.
pub struct CertStore {
    pub(super) entries: Vec<Served>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.facts.names))
            .finish()
    }
}

pub(super) fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// A configured pair as loaded, with the files' times to notice changes.
pub(super) struct FileCert {
    pub(super) served: Served,
    pub(super) files: CertificateFiles,
    pub(super) modified: (Option<SystemTime>, Option<SystemTime>),
}

/// Loads every configured pair; each key must match its certificate.
pub(super) fn load_files(
    pairs: &[CertificateFiles],
    provider: &CryptoProvider,
) -> Result<Vec<FileCert>, TlsError> {
    let mut out = Vec::with_capacity(pairs.len());
    for (index, files) in pairs.iter().enumerate() {
        let file_err = |path: &Path, message: String| TlsError::File {
            path: path.to_owned(),
            message,
        };
        let modified = (modified(&files.cert), modified(&files.key));
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
            .map_err(|e| file_err(&files.cert, format!("cannot read certificates: {e}")))?
            .collect::<Result<_, _>>()
            .map_err(|e| {
                file_err(
                    &files.cert,
                    format!("not a valid PEM certificate file: {e}"),
                )
            })?;
        if chain.is_empty() {
            return Err(file_err(&files.cert, "holds no CERTIFICATE block".into()));
        }
        let facts = inspect(&chain[0]).map_err(|e| file_err(&files.cert, e))?;
        let key_der = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
            file_err(
                &files.key,
                format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
            )
        })?;
        let signing_key = provider
            .key_provider
            .load_private_key(key_der)
            .map_err(|e| file_err(&files.key, format!("unsupported private key: {e}")))?;
        let key = CertifiedKey::new(chain, signing_key);
        key.keys_match().map_err(|_| TlsError::KeyMismatch {
            index,
            cert: files.cert.clone(),
            key: files.key.clone(),
        })?;
        out.push(FileCert {
            served: Served {
                key: Arc::new(key),
                facts,
                source: Source::File {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                },
            },
            files: files.clone(),
            modified,
        });
    }
    Ok(out)
}

/// Loads the configured certificate files as the server would, to check
/// them (`moat config check`).
pub fn check_files(tls: &Tls) -> Result<(), TlsError> {
    load_files(&tls.certificates, &provider(tls)?).map(|_| ())
}

impl CertStore {
    /// The certificate for an SNI name: the first valid for the name, else
    /// the first (clients without SNI, or asking by IP address, get that
    /// one).
    pub(super) fn choose(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = sni.and_then(|n| ServerName::try_from(n).ok()) {
            for e in &self.entries {
                let leaf = &e.key.cert[0];
                let valid = webpki::EndEntityCert::try_from(leaf)
                    .is_ok_and(|ee| ee.verify_is_valid_for_subject_name(&name).is_ok());
                if valid {
                    return Some(e.key.clone());
                }
            }
        }
        self.entries.first().map(|e| e.key.clone())
    }
}

/// rustls calls this during every handshake.
#[derive(Debug)]
pub struct SniResolver {
    pub(super) store: ArcSwap<CertStore>,
}

impl SniResolver {
    pub(super) fn new(store: CertStore) -> Self {
        SniResolver {
            store: ArcSwap::from_pointee(store),
        }
    }

    pub(super) fn replace(&self, store: CertStore) {
        self.store.store(Arc::new(store));
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.store.load().choose(hello.server_name())
    }
}
