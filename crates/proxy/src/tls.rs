//! TLS for the HTTPS listener: rustls server config, certificate choice by
//! SNI, the self-signed fallback, and reloading certificate files.
//!
//! The certificate store sits behind an [`ArcSwap`], so a reload replaces it
//! for new handshakes while connections already open keep the certificate
//! they were set up with. The session cache and ticketer are created once and
//! shared by every server config built later, so resumption survives reloads.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use moat_config::{CertificateFiles, Tls, TlsVersion};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{
    ClientHello, ResolvesServerCert, ServerSessionMemoryCache, StoresServerSessions,
};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, server::ProducesTickets};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(
        "tls.certificates[{index}]: the key in {key} does not belong to the certificate in {cert}"
    )]
    KeyMismatch {
        index: usize,
        cert: PathBuf,
        key: PathBuf,
    },
    #[error("creating the self-signed certificate in {dir}: {message}")]
    SelfSigned { dir: PathBuf, message: String },
    #[error("TLS settings: {0}")]
    Settings(String),
}

/// One certificate chain and its key, with the files it came from.
struct Entry {
    key: Arc<CertifiedKey>,
    files: CertificateFiles,
    modified: (Option<SystemTime>, Option<SystemTime>),
}

/// The certificates moat can present.
pub struct CertStore {
    entries: Vec<Entry>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.files.cert))
            .finish()
    }
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl CertStore {
    /// Loads every configured pair; each key must match its certificate.
    pub fn load(
        pairs: &[CertificateFiles],
        provider: &CryptoProvider,
    ) -> Result<CertStore, TlsError> {
        let mut entries = Vec::with_capacity(pairs.len());
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
            entries.push(Entry {
                key: Arc::new(key),
                files: files.clone(),
                modified,
            });
        }
        Ok(CertStore { entries })
    }

    /// Whether any file changed since it was loaded.
    pub fn changed_on_disk(&self) -> bool {
        self.entries
            .iter()
            .any(|e| (modified(&e.files.cert), modified(&e.files.key)) != e.modified)
    }

    /// The certificate for an SNI name: the first valid for the name, else
    /// the first configured (clients without SNI, or asking by IP address,
    /// get that one).
    fn choose(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
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
    store: ArcSwap<CertStore>,
}

impl SniResolver {
    pub fn new(store: CertStore) -> Self {
        SniResolver {
            store: ArcSwap::from_pointee(store),
        }
    }

    pub fn replace(&self, store: CertStore) {
        self.store.store(Arc::new(store));
    }

    pub fn store(&self) -> Arc<CertStore> {
        self.store.load_full()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.store.load().choose(hello.server_name())
    }
}

/// Resumption state kept across config rebuilds.
pub struct Resumption {
    cache: Arc<dyn StoresServerSessions>,
    ticketer: Arc<dyn ProducesTickets>,
}

impl Resumption {
    pub fn new() -> Result<Self, TlsError> {
        Ok(Resumption {
            cache: ServerSessionMemoryCache::new(10_240),
            ticketer: rustls::crypto::ring::Ticketer::new()
                .map_err(|e| TlsError::Settings(e.to_string()))?,
        })
    }
}

/// The crypto provider restricted to the configured suites and groups, in
/// the configured order.
/// TLS state that outlives config reloads: the server config handshakes
/// use, the certificates by name, and the session-ticket keys.
pub struct TlsState {
    pub server_config: ArcSwap<ServerConfig>,
    pub resolver: Arc<SniResolver>,
    resumption: Resumption,
    /// The certificate files in use (configured, or the self-signed pair).
    files: ArcSwap<Vec<CertificateFiles>>,
}

impl TlsState {
    /// Loads the config's certificates (or the self-signed pair in
    /// `data_dir`) and builds the server config.
    pub fn new(config: &moat_config::Config, data_dir: &Path) -> Result<TlsState, TlsError> {
        let files = certificate_files(config, data_dir)?;
        let provider = provider(&config.tls)?;
        let resolver = Arc::new(SniResolver::new(CertStore::load(&files, &provider)?));
        let resumption = Resumption::new()?;
        let sc = server_config(
            &config.tls,
            provider,
            resolver.clone(),
            &resumption,
            config.server.http2,
        )?;
        Ok(TlsState {
            server_config: ArcSwap::from_pointee(sc),
            resolver,
            resumption,
            files: ArcSwap::from_pointee(files),
        })
    }

    /// Applies a reloaded config's TLS settings and certificates; open
    /// connections keep theirs.
    pub fn reconfigure(
        &self,
        config: &moat_config::Config,
        data_dir: &Path,
    ) -> Result<(), TlsError> {
        let files = certificate_files(config, data_dir)?;
        let provider = provider(&config.tls)?;
        let store = CertStore::load(&files, &provider)?;
        let sc = server_config(
            &config.tls,
            provider,
            self.resolver.clone(),
            &self.resumption,
            config.server.http2,
        )?;
        self.resolver.replace(store);
        self.server_config.store(Arc::new(sc));
        self.files.store(Arc::new(files));
        Ok(())
    }

    /// Reloads the certificate files if any changed on disk. Returns
    /// whether a reload happened.
    pub fn reload_if_changed(&self, config: &moat_config::Config) -> Result<bool, TlsError> {
        if !self.resolver.store().changed_on_disk() {
            return Ok(false);
        }
        let provider = provider(&config.tls)?;
        let store = CertStore::load(&self.files.load(), &provider)?;
        self.resolver.replace(store);
        tracing::info!(
            "certificate files changed; reloaded (open connections keep their certificate)"
        );
        Ok(true)
    }
}

fn certificate_files(
    config: &moat_config::Config,
    data_dir: &Path,
) -> Result<Vec<CertificateFiles>, TlsError> {
    if config.tls.certificates.is_empty() {
        Ok(vec![self_signed(data_dir)?])
    } else {
        Ok(config.tls.certificates.clone())
    }
}

pub fn provider(tls: &Tls) -> Result<CryptoProvider, TlsError> {
    let mut p = rustls::crypto::ring::default_provider();
    if !tls.cipher_suites.is_empty() {
        let all = std::mem::take(&mut p.cipher_suites);
        for name in &tls.cipher_suites {
            let suite = all
                .iter()
                .find(|s| format!("{:?}", s.suite()) == *name)
                .ok_or_else(|| {
                    TlsError::Settings(format!("cipher suite {name} is not available"))
                })?;
            p.cipher_suites.push(*suite);
        }
    }
    if !tls.kx_groups.is_empty() {
        let all = std::mem::take(&mut p.kx_groups);
        for name in &tls.kx_groups {
            let group = all
                .iter()
                .find(|g| format!("{:?}", g.name()) == *name)
                .ok_or_else(|| {
                    TlsError::Settings(format!("key-exchange group {name} is not available"))
                })?;
            p.kx_groups.push(*group);
        }
    }
    Ok(p)
}

/// Builds the server config for the current TLS settings.
pub fn server_config(
    tls: &Tls,
    provider: CryptoProvider,
    resolver: Arc<SniResolver>,
    resumption: &Resumption,
    http2: bool,
) -> Result<ServerConfig, TlsError> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match tls.min_version {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Settings(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config.session_storage = resumption.cache.clone();
    config.ticketer = resumption.ticketer.clone();
    config.send_tls13_tickets = 2;
    // Unlike the server's preference, honouring the client's cipher order
    // lets devices without AES hardware pick ChaCha20.
    config.ignore_client_order = false;
    Ok(config)
}

/// The self-signed pair used when no certificate is configured: created
/// once in `DATA_DIR/tls/` and reused after, so browsers that accepted it
/// keep accepting it.
pub fn self_signed(data_dir: &Path) -> Result<CertificateFiles, TlsError> {
    let dir = data_dir.join("tls");
    let files = CertificateFiles {
        cert: dir.join("self-signed.crt"),
        key: dir.join("self-signed.key"),
    };
    if files.cert.is_file() && files.key.is_file() {
        return Ok(files);
    }
    let err = |message: String| TlsError::SelfSigned {
        dir: dir.clone(),
        message,
    };
    create_private_dir(&dir).map_err(|e| err(e.to_string()))?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| err(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "moat self-signed");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "moat");
    let now = SystemTime::now();
    params.not_before = now.into();
    params.not_after = (now + std::time::Duration::from_secs(10 * 365 * 86400)).into();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| err(e.to_string()))?;
    let cert = params.self_signed(&key).map_err(|e| err(e.to_string()))?;
    write_private(&files.key, key.serialize_pem().as_bytes()).map_err(|e| err(e.to_string()))?;
    std::fs::write(&files.cert, cert.pem()).map_err(|e| err(e.to_string()))?;
    tracing::info!(cert = %files.cert.display(), "created a self-signed certificate for localhost, 127.0.0.1 and ::1");
    Ok(files)
}

/// Creates a directory only its owner can enter.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name the config accepts maps to a suite or group the provider has.
    #[test]
    fn config_names_exist_in_provider() {
        let mut tls = moat_config::default_config().tls;
        tls.cipher_suites = moat_config::tls_names::CIPHER_SUITES
            .iter()
            .map(|s| s.0)
            .collect();
        tls.kx_groups = moat_config::tls_names::KX_GROUPS
            .iter()
            .map(|g| g.0)
            .collect();
        let p = provider(&tls).expect("all configured names are available");
        assert_eq!(p.cipher_suites.len(), tls.cipher_suites.len());
        assert_eq!(p.kx_groups.len(), tls.kx_groups.len());
    }

    #[test]
    fn self_signed_created_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let a = self_signed(dir.path()).unwrap();
        let first = std::fs::read(&a.cert).unwrap();
        let b = self_signed(dir.path()).unwrap();
        assert_eq!(first, std::fs::read(&b.cert).unwrap());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&a.key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let p = rustls::crypto::ring::default_provider();
        let store = CertStore::load(&[a], &p).unwrap();
        assert!(store.choose(Some("localhost")).is_some());
        assert!(!store.changed_on_disk());
    }
}
