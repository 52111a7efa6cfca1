//! TLS for the HTTPS listener: rustls server config, certificate choice by
//! SNI, the local CA's certificate, and reloading certificate files.
//!
//! - [`local_ca`]: the CA in the data directory and the leaves it issues.
//! - [`acme`]: certificates ordered from an ACME CA and renewed.
//! - [`client_auth`]: client certificates, asked for by SNI and judged per
//!   app.
//! - [`inspect`]: what a certificate says (names, validity, fingerprint).
//!
//! The certificate store sits behind an [`ArcSwap`], so a reload replaces it
//! for new handshakes while connections already open keep the certificate
//! they were set up with. The session cache and ticketer are created once and
//! shared by every server config built later, so resumption survives reloads.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

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

pub mod acme;
pub mod client_auth;
pub mod inspect;
pub mod local_ca;

use inspect::{CertificateFacts, inspect};
use local_ca::LocalCa;

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
    #[error("moat's local CA in {dir}: {message}")]
    LocalCa { dir: PathBuf, message: String },
    #[error("TLS settings: {0}")]
    Settings(String),
}

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
struct Served {
    key: Arc<CertifiedKey>,
    facts: CertificateFacts,
    source: Source,
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
    entries: Vec<Served>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.facts.names))
            .finish()
    }
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// A configured pair as loaded, with the files' times to notice changes.
struct FileCert {
    served: Served,
    files: CertificateFiles,
    modified: (Option<SystemTime>, Option<SystemTime>),
}

/// Loads every configured pair; each key must match its certificate.
fn load_files(
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
    fn new(store: CertStore) -> Self {
        SniResolver {
            store: ArcSwap::from_pointee(store),
        }
    }

    fn replace(&self, store: CertStore) {
        self.store.store(Arc::new(store));
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

/// The local CA and the leaf it issued last.
struct LocalLeaf {
    ca: LocalCa,
    served: Served,
    /// The hosts and lifetime it was issued for: a change issues anew.
    hosts: Vec<String>,
    lifetime: Duration,
    renew_at: i64,
    /// When the last failed renewal is tried again, and why it failed.
    failure: Option<(i64, String)>,
}

/// Everything the served certificates are made from.
#[derive(Default)]
struct Sources {
    files: Vec<FileCert>,
    acme: Vec<acme::Slot>,
    local: Option<LocalLeaf>,
    /// Fingerprints warned about expiring, with the day (Unix days) of
    /// the warning: once a day each.
    warned: std::collections::HashMap<String, i64>,
    file_error: Option<String>,
}

impl Sources {
    fn store(&self) -> CertStore {
        let mut entries: Vec<Served> = self.files.iter().map(|f| f.served.clone()).collect();
        entries.extend(self.acme.iter().filter_map(|a| a.served.clone()));
        entries.extend(self.local.iter().map(|l| l.served.clone()));
        CertStore { entries }
    }
}

/// TLS state that outlives config reloads: the server config handshakes
/// use, the certificates by name, and the session-ticket keys.
pub struct TlsState {
    pub server_config: ArcSwap<ServerConfig>,
    resolver: Arc<SniResolver>,
    resumption: Resumption,
    sources: Mutex<Sources>,
    data_dir: PathBuf,
    challenges: Arc<acme::challenge::Challenges>,
    /// Woken when an ACME certificate may have become due (a check, a
    /// reload), so the ACME task need not poll.
    acme_wake: tokio::sync::Notify,
    /// The TLS settings the server configs were built from, to build the
    /// client-certificate variant again when the apps change.
    settings: Mutex<(Tls, bool)>,
    /// Handshakes in the scope get a config that asks for a client
    /// certificate.
    client_auth: ArcSwap<Option<(client_auth::Scope, Arc<ServerConfig>)>>,
    /// Names the on-demand ask URL refused lately.
    denials: acme::on_demand::Denials,
    /// Resumption of the client-certificate config, kept apart.
    client_auth_resumption: Resumption,
    /// `[tls.on_demand] ask` is set.
    on_demand_on: std::sync::atomic::AtomicBool,
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl TlsState {
    /// Loads the config's certificates (or makes the local CA's leaf for
    /// the loopback names and `hosts`) and builds the server config.
    pub fn new(
        config: &moat_config::Config,
        data_dir: &Path,
        hosts: &[String],
        now: SystemTime,
    ) -> Result<TlsState, TlsError> {
        let provider = provider(&config.tls)?;
        let mut sources = Sources::default();
        sources.files = load_files(&config.tls.certificates, &provider)?;
        sync_acme(&mut sources.acme, config, data_dir, &provider, unix(now));
        if config.tls.certificates.is_empty() {
            let ca = LocalCa::load_or_create(data_dir, hosts, now)?;
            sources.local = Some(issue_leaf(ca, &config.tls, hosts, now, &provider)?);
        }
        let resolver = Arc::new(SniResolver::new(sources.store()));
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
            sources: Mutex::new(sources),
            data_dir: data_dir.to_owned(),
            challenges: Default::default(),
            acme_wake: tokio::sync::Notify::new(),
            settings: Mutex::new((config.tls.clone(), config.server.http2)),
            client_auth: ArcSwap::from_pointee(None),
            denials: Default::default(),
            client_auth_resumption: Resumption::new()?,
            on_demand_on: config.tls.on_demand_ask.is_some().into(),
        })
    }

    /// The server config for a handshake naming `sni`: the one that asks
    /// for a client certificate when an app on that host wants one. With
    /// it comes what the connection remembers of the asking (the SNI name
    /// it asked for), or None when it did not ask.
    pub fn config_for(&self, sni: Option<&str>) -> (Arc<ServerConfig>, Option<client_auth::Asked>) {
        if let Some((scope, config)) = self.client_auth.load().as_ref() {
            if scope.asks(sni) {
                let asked = client_auth::Asked {
                    sni: sni.map(|s| Arc::from(s.to_ascii_lowercase())),
                };
                return (config.clone(), Some(asked));
            }
        }
        (self.server_config.load_full(), None)
    }

    /// Sets which handshakes ask for a client certificate, offering
    /// `hints` (the apps' CA names).
    pub fn set_client_auth(
        &self,
        scope: client_auth::Scope,
        hints: Vec<rustls::DistinguishedName>,
    ) -> Result<(), TlsError> {
        if scope == client_auth::Scope::Nobody {
            self.client_auth.store(Arc::new(None));
            return Ok(());
        }
        let (tls, http2) = self
            .settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let provider = provider(&tls)?;
        let verifier = Arc::new(client_auth::RequestClientCert::new(hints, &provider));
        // Its own session cache and ticket keys: a session from a handshake
        // that was never asked for a certificate must not resume here,
        // where rustls would not ask either.
        let sc = server_config_with(
            &tls,
            provider,
            self.resolver.clone(),
            &self.client_auth_resumption,
            http2,
            Some(verifier),
        )?;
        self.client_auth
            .store(Arc::new(Some((scope, Arc::new(sc)))));
        Ok(())
    }

    /// Applies a reloaded config's TLS settings and certificates; open
    /// connections keep theirs. Nothing changes if anything fails.
    pub fn reconfigure(
        &self,
        config: &moat_config::Config,
        hosts: &[String],
        now: SystemTime,
    ) -> Result<(), TlsError> {
        let provider = provider(&config.tls)?;
        let files = load_files(&config.tls.certificates, &provider)?;
        let sc = server_config(
            &config.tls,
            provider.clone(),
            self.resolver.clone(),
            &self.resumption,
            config.server.http2,
        )?;
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        // Issued before anything is replaced: a failure leaves all as it was.
        let local = if config.tls.certificates.is_empty() {
            match sources.local.as_mut() {
                Some(l) => {
                    let (served, renew_at) = issue(&l.ca, &config.tls, hosts, now, &provider)?;
                    Some((served, renew_at))
                }
                None => {
                    let ca = LocalCa::load_or_create(&self.data_dir, hosts, now)?;
                    let leaf = issue_leaf(ca, &config.tls, hosts, now, &provider)?;
                    sources.local = Some(leaf);
                    None
                }
            }
        } else {
            sources.local = None;
            None
        };
        if let (Some((served, renew_at)), Some(l)) = (local, sources.local.as_mut()) {
            l.served = served;
            l.renew_at = renew_at;
            l.hosts = hosts.to_vec();
            l.lifetime = config.tls.local_ca.leaf_lifetime;
            l.failure = None;
        }
        sources.files = files;
        sources.file_error = None;
        sync_acme(
            &mut sources.acme,
            config,
            &self.data_dir,
            &provider,
            unix(now),
        );
        self.resolver.replace(sources.store());
        self.server_config.store(Arc::new(sc));
        // What later builds read: the client-certificate config, on-demand.
        *self.settings.lock().unwrap_or_else(|p| p.into_inner()) =
            (config.tls.clone(), config.server.http2);
        self.on_demand_on.store(
            config.tls.on_demand_ask.is_some(),
            std::sync::atomic::Ordering::Relaxed,
        );
        self.acme_wake.notify_one();
        Ok(())
    }

    /// The periodic check: renews the local CA's leaf when it is due or
    /// the hosts changed, reloads certificate files that changed on disk
    /// (with `check_files`), and warns of certificates near expiry. A
    /// failure keeps the certificate that serves now. Returns whether the
    /// served certificates changed.
    pub fn maintain(
        &self,
        config: &moat_config::Config,
        hosts: &[String],
        now: SystemTime,
        check_files: bool,
    ) -> Result<bool, TlsError> {
        let provider = provider(&config.tls)?;
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = false;
        let now_s = unix(now);
        if let Some(local) = sources.local.as_mut() {
            let retry_due = local.failure.as_ref().is_none_or(|(at, _)| now_s >= *at);
            let due = now_s >= local.renew_at
                || local.hosts != hosts
                || local.lifetime != config.tls.local_ca.leaf_lifetime;
            if due && retry_due {
                match issue(&local.ca, &config.tls, hosts, now, &provider) {
                    Ok((served, renew_at)) => {
                        tracing::info!(
                            names = served.facts.names.join(", "),
                            not_after = served.facts.not_after,
                            "the local CA issued a new certificate (open connections keep theirs)"
                        );
                        local.served = served;
                        local.renew_at = renew_at;
                        local.hosts = hosts.to_vec();
                        local.lifetime = config.tls.local_ca.leaf_lifetime;
                        local.failure = None;
                        changed = true;
                    }
                    Err(e) => {
                        tracing::error!(
                            "the local CA could not issue a new certificate, still serving the current one: {e}"
                        );
                        local.failure = Some((now_s + 60, e.to_string()));
                    }
                }
            }
        }
        let mut result = Ok(());
        let files_changed = sources
            .files
            .iter()
            .any(|f| (modified(&f.files.cert), modified(&f.files.key)) != f.modified);
        if check_files && files_changed {
            let pairs: Vec<CertificateFiles> =
                sources.files.iter().map(|f| f.files.clone()).collect();
            // A half-written file fails to load; the old certificate stays
            // and the next check tries again.
            match load_files(&pairs, &provider) {
                Ok(files) => {
                    tracing::info!(
                        "certificate files changed; reloaded (open connections keep their certificate)"
                    );
                    sources.files = files;
                    sources.file_error = None;
                    changed = true;
                }
                Err(e) => {
                    sources.file_error = Some(e.to_string());
                    result = Err(e);
                }
            }
        }
        changed |= sync_acme(&mut sources.acme, config, &self.data_dir, &provider, now_s);
        if changed {
            self.resolver.replace(sources.store());
        }
        if sources
            .acme
            .iter()
            .any(|a| !a.running && now_s >= a.next_attempt)
        {
            self.acme_wake.notify_one();
        }
        warn_of_expiry(&mut sources, now_s);
        result.map(|()| changed)
    }

    /// The ACME certificates due for an order at `now`, marked as running.
    pub fn acme_due(&self, now: SystemTime) -> Vec<moat_config::AcmeCertificate> {
        let now = unix(now);
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        sources
            .acme
            .iter_mut()
            .filter(|a| !a.running && now >= a.next_attempt)
            .map(|a| {
                a.running = true;
                a.spec.clone()
            })
            .collect()
    }

    /// Installs the result of an order for `spec` (if the config still
    /// wants it). Returns whether a new certificate serves.
    pub fn acme_finished(
        &self,
        spec: &moat_config::AcmeCertificate,
        result: Result<acme::order::Obtained, acme::order::Failure>,
        now: SystemTime,
    ) -> bool {
        let provider = rustls::crypto::ring::default_provider();
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let Some(slot) = sources.acme.iter_mut().find(|a| a.spec == *spec) else {
            return false;
        };
        let installed = slot.finish(&self.data_dir, result, &provider, unix(now));
        if installed {
            self.resolver.replace(sources.store());
        }
        installed
    }

    /// The served ACME certificates whose renewal information (RFC 9773)
    /// is due to be asked for, with their leaves; each is not due again
    /// for an hour unless its answer says otherwise.
    pub fn acme_ari_due(
        &self,
        now: SystemTime,
    ) -> Vec<(moat_config::AcmeCertificate, CertificateDer<'static>)> {
        let now = unix(now);
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        sources
            .acme
            .iter_mut()
            .filter(|a| !a.running && now >= a.ari_next)
            .filter_map(|a| {
                let leaf = a.served.as_ref()?.key.cert.first()?.clone();
                a.ari_next = now + 3600;
                Some((a.spec.clone(), leaf))
            })
            .collect()
    }

    /// Installs the CA's renewal information for `spec`.
    pub fn acme_window(
        &self,
        spec: &moat_config::AcmeCertificate,
        result: Result<Option<((i64, i64), i64)>, acme::order::Failure>,
        now: SystemTime,
    ) {
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = sources.acme.iter_mut().find(|a| a.spec == *spec) {
            slot.set_window(result, unix(now));
        }
    }

    /// Unix seconds of the next ACME order, if any is waiting.
    pub fn acme_next_attempt(&self) -> Option<i64> {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        sources
            .acme
            .iter()
            .filter(|a| !a.running)
            .flat_map(|a| {
                let ari = a.served.as_ref().map(|_| a.ari_next);
                std::iter::once(a.next_attempt).chain(ari)
            })
            .min()
    }

    /// Resolves when an ACME certificate may have become due.
    pub async fn acme_woken(&self) {
        self.acme_wake.notified().await
    }

    /// Whether a handshake for `name` should wait for an on-demand
    /// certificate: on-demand issuance is on, the name is plausible, not
    /// refused lately, and no configured or ACME certificate covers it.
    pub fn on_demand_candidate(&self, name: &str, now: SystemTime) -> bool {
        // Every handshake asks: off costs one atomic load.
        if !self.on_demand_on.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        let name = name.to_ascii_lowercase();
        let private = local_ca::PRIVATE_DOMAINS
            .iter()
            .any(|p| name == *p || name.ends_with(&format!(".{p}")));
        if private || !acme::on_demand::plausible(&name) || self.denials.refused(&name, unix(now)) {
            return false;
        }
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = sources.acme.iter().find(|a| a.spec.domains.contains(&name)) {
            // An on-demand order for it is running: worth waiting for. A
            // configured one is the ACME task's, not this handshake's.
            return slot.on_demand && slot.served.is_none() && slot.error.is_none();
        }
        let Ok(server_name) = ServerName::try_from(name.as_str()) else {
            return false;
        };
        // Covered already (wildcards included) by a file or ACME certificate.
        let covers = |s: &Served| {
            webpki::EndEntityCert::try_from(&s.key.cert[0])
                .is_ok_and(|ee| ee.verify_is_valid_for_subject_name(&server_name).is_ok())
        };
        !sources.files.iter().any(|f| covers(&f.served))
            && !sources
                .acme
                .iter()
                .filter_map(|a| a.served.as_ref())
                .any(covers)
    }

    /// Gets a certificate for `name` if the ask URL approves: adds it as an
    /// ACME certificate due now, wakes the ACME task and waits until the
    /// order ends (the caller bounds the wait).
    pub async fn on_demand(&self, name: &str, now: SystemTime) {
        let name = name.to_ascii_lowercase();
        let (ask, account) = {
            let settings = self.settings.lock().unwrap_or_else(|p| p.into_inner());
            match &settings.0.on_demand_ask {
                Some(ask) => (ask.clone(), settings.0.acme_defaults.clone()),
                None => return,
            }
        };
        let exists = {
            let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
            sources.acme.iter().any(|a| a.spec.domains.contains(&name))
        };
        if !exists {
            match acme::on_demand::approved(&ask, &name).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        name,
                        "the on-demand ask URL refused a certificate for this name"
                    );
                    self.denials.remember(&name, unix(now));
                    return;
                }
                Err(e) => {
                    tracing::error!(name, "no on-demand certificate: {e}");
                    self.denials.remember(&name, unix(now));
                    return;
                }
            }
            let provider = rustls::crypto::ring::default_provider();
            let spec = moat_config::AcmeCertificate {
                domains: vec![name.clone()],
                account,
            };
            let mut slot = acme::Slot::load(&self.data_dir, spec, &provider, unix(now));
            slot.on_demand = true;
            let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
            if !sources.acme.iter().any(|a| a.spec.domains.contains(&name)) {
                tracing::info!(
                    name,
                    "the on-demand ask URL approved a certificate for this name"
                );
                if slot.served.is_some() {
                    sources.acme.push(slot);
                    self.resolver.replace(sources.store());
                    return;
                }
                sources.acme.push(slot);
            }
        }
        self.acme_wake.notify_one();
        loop {
            {
                let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
                match sources.acme.iter().find(|a| a.spec.domains.contains(&name)) {
                    Some(a) if a.served.is_none() && a.error.is_none() => {}
                    _ => return,
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The answers to open ACME challenges.
    pub fn challenges(&self) -> &Arc<acme::challenge::Challenges> {
        &self.challenges
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Every certificate served, in the order handshakes consider them.
    pub fn certificates(&self) -> Vec<CertificateStatus> {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<CertificateStatus> = sources
            .files
            .iter()
            .map(|f| CertificateStatus {
                source: f.served.source.clone(),
                names: f.served.facts.names.clone(),
                facts: Some(f.served.facts.clone()),
                next_renewal: None,
                error: sources.file_error.clone(),
            })
            .collect();
        for a in &sources.acme {
            out.push(CertificateStatus {
                source: Source::Acme {
                    domains: a.spec.domains.clone(),
                    directory: a.spec.account.directory.clone(),
                },
                names: a.spec.domains.clone(),
                facts: a.served.as_ref().map(|s| s.facts.clone()),
                next_renewal: Some(a.next_attempt),
                error: a.error.clone(),
            });
        }
        if let Some(l) = &sources.local {
            out.push(CertificateStatus {
                source: Source::LocalCa,
                names: l.served.facts.names.clone(),
                facts: Some(l.served.facts.clone()),
                next_renewal: Some(match &l.failure {
                    Some((retry, _)) => *retry,
                    None => l.renew_at,
                }),
                error: l.failure.as_ref().map(|(_, e)| e.clone()),
            });
        }
        out
    }

    /// The local CA's root, when moat serves from it.
    pub fn local_ca_root(&self) -> Option<(PathBuf, CertificateFacts)> {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        sources
            .local
            .as_ref()
            .map(|l| (l.ca.files.cert.clone(), l.ca.facts.clone()))
    }
}

/// Issues a leaf from `ca` and returns it served, with its renewal time.
fn issue(
    ca: &LocalCa,
    tls: &Tls,
    hosts: &[String],
    now: SystemTime,
    provider: &CryptoProvider,
) -> Result<(Served, i64), TlsError> {
    let issued = ca.issue(hosts, now, tls.local_ca.leaf_lifetime, provider)?;
    for name in &issued.left_out {
        tracing::warn!(
            host = name,
            root = %ca.files.cert.display(),
            "the local CA's root is not allowed to issue for this host (its name constraints were set when it was made): configure a certificate or ACME for it, or move the CA's folder aside to make a new root"
        );
    }
    let renew_at =
        moat_policy::renewal::two_thirds(issued.facts.not_before, issued.facts.not_after);
    Ok((
        Served {
            key: issued.key,
            facts: issued.facts,
            source: Source::LocalCa,
        },
        renew_at,
    ))
}

fn issue_leaf(
    ca: LocalCa,
    tls: &Tls,
    hosts: &[String],
    now: SystemTime,
    provider: &CryptoProvider,
) -> Result<LocalLeaf, TlsError> {
    let (served, renew_at) = issue(&ca, tls, hosts, now, provider)?;
    Ok(LocalLeaf {
        ca,
        served,
        hosts: hosts.to_vec(),
        lifetime: tls.local_ca.leaf_lifetime,
        renew_at,
        failure: None,
    })
}

/// Logs each served certificate within 14 days of expiry, once a day.
fn warn_of_expiry(sources: &mut Sources, now: i64) {
    let today = now.div_euclid(86_400);
    let mut soon = Vec::new();
    let acme = sources.acme.iter().filter_map(|a| {
        let renew_at = (a.failures == 0).then_some(a.next_attempt);
        a.served.as_ref().map(|s| (s, renew_at))
    });
    for (s, renew_at) in sources
        .files
        .iter()
        .map(|f| (&f.served, None))
        .chain(acme)
        .chain(sources.local.iter().map(|l| (&l.served, Some(l.renew_at))))
    {
        if moat_policy::renewal::expires_soon(s.facts.not_after, now, renew_at) {
            soon.push((
                s.facts.sha256.clone(),
                s.facts.names.join(", "),
                s.facts.not_after,
                s.source.name(),
            ));
        }
    }
    for (sha, names, not_after, source) in soon {
        if sources.warned.get(&sha) == Some(&today) {
            continue;
        }
        sources.warned.insert(sha, today);
        let days = (not_after - now) as f64 / 86_400.0;
        if days <= 0.0 {
            tracing::error!(
                names,
                source,
                "a served certificate has expired; clients refuse it"
            );
        } else {
            tracing::warn!(
                names,
                source,
                days_left = format!("{days:.1}"),
                "a served certificate expires within 14 days"
            );
        }
    }
}

/// Makes `slots` the certificates `config` wants: a slot whose spec is
/// unchanged keeps its state; a new one starts from what is on disk;
/// on-demand ones stay while on-demand issuance is on. Returns whether the
/// set changed.
fn sync_acme(
    slots: &mut Vec<acme::Slot>,
    config: &moat_config::Config,
    data_dir: &Path,
    provider: &CryptoProvider,
    now: i64,
) -> bool {
    let wanted = acme::wanted(config);
    let configured = slots.iter().filter(|s| !s.on_demand).count();
    let on_demand_stays = config.tls.on_demand_ask.is_some() || !slots.iter().any(|s| s.on_demand);
    if configured == wanted.len()
        && on_demand_stays
        && slots
            .iter()
            .filter(|s| !s.on_demand)
            .zip(&wanted)
            .all(|(s, w)| s.spec == *w)
    {
        return false;
    }
    let mut old = std::mem::take(slots);
    for spec in wanted {
        match old.iter().position(|s| s.spec == spec) {
            Some(i) => slots.push(old.swap_remove(i)),
            None => slots.push(acme::Slot::load(data_dir, spec, provider, now)),
        }
    }
    if config.tls.on_demand_ask.is_some() {
        slots.extend(old.into_iter().filter(|s| s.on_demand));
    }
    true
}

/// The host names of the apps a runtime serves, for the local CA's leaf.
pub fn app_hosts(config: &moat_config::Config) -> Vec<String> {
    let mut hosts: Vec<String> = config.apps.iter().filter_map(|a| a.host.clone()).collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The crypto provider restricted to the configured suites and groups, in
/// the configured order.
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
    server_config_with(tls, provider, resolver, resumption, http2, None)
}

/// [`server_config`], asking for client certificates through `client`.
fn server_config_with(
    tls: &Tls,
    provider: CryptoProvider,
    resolver: Arc<SniResolver>,
    resumption: &Resumption,
    http2: bool,
    client: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> Result<ServerConfig, TlsError> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match tls.min_version {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Settings(e.to_string()))?;
    let builder = match client {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
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
    fn a_reload_turns_on_demand_issuance_off() {
        let dir = tempfile::tempdir().unwrap();
        let on = moat_config::load_str("[tls.on_demand]\nask = \"http://127.0.0.1:9/ask\"\n", None)
            .unwrap();
        let now = SystemTime::now();
        let tls = TlsState::new(&on, dir.path(), &[], now).unwrap();
        assert!(tls.on_demand_candidate("shop.example.com", now));
        assert!(
            !tls.on_demand_candidate("notes.lan", now),
            "the local CA's names"
        );
        let off = moat_config::default_config();
        tls.reconfigure(&off, &[], now).unwrap();
        assert!(!tls.on_demand_candidate("shop.example.com", now));
        assert_eq!(tls.settings.lock().unwrap().0.on_demand_ask, None);
    }

    #[test]
    fn local_ca_leaf_renews_after_two_thirds_and_follows_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = moat_config::default_config();
        config.tls.local_ca.leaf_lifetime = Duration::from_secs(3 * 86_400);
        let t0 = SystemTime::now();
        let tls = TlsState::new(&config, dir.path(), &[], t0).unwrap();
        let first = tls.certificates();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].source, Source::LocalCa);
        let renew_at = first[0].next_renewal.unwrap();
        assert_eq!(
            renew_at,
            moat_policy::renewal::two_thirds(
                first[0].facts.as_ref().unwrap().not_before,
                first[0].facts.as_ref().unwrap().not_after
            )
        );
        // Before two thirds nothing changes; after, a new leaf serves.
        let before = SystemTime::UNIX_EPOCH + Duration::from_secs(renew_at as u64 - 10);
        assert!(!tls.maintain(&config, &[], before, true).unwrap());
        assert_eq!(tls.certificates()[0].facts, first[0].facts);
        let after = SystemTime::UNIX_EPOCH + Duration::from_secs(renew_at as u64);
        assert!(tls.maintain(&config, &[], after, true).unwrap());
        let second = tls.certificates();
        assert_ne!(
            second[0].facts.as_ref().unwrap().sha256,
            first[0].facts.as_ref().unwrap().sha256
        );
        assert!(second[0].next_renewal.unwrap() > renew_at);
        // A new app host is added to the leaf at the next check.
        let hosts = vec!["notes.lan".to_owned()];
        assert!(tls.maintain(&config, &hosts, after, true).unwrap());
        assert!(
            tls.certificates()[0]
                .names
                .contains(&"notes.lan".to_owned())
        );
        assert!(!tls.maintain(&config, &hosts, after, true).unwrap());
        let store = tls.resolver.store.load();
        assert!(store.choose(Some("notes.lan")).is_some());
    }
}
