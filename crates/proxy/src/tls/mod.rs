//! TLS for the HTTPS listener: rustls server config, certificate choice by
//! SNI, the local CA's certificate, and reloading certificate files. This
//! file is [`TlsState`]: every change to what a handshake gets goes
//! through its one lock, so its operations stay together.
//!
//! - [`local_ca`]: the CA in the data directory and the leaves it issues.
//! - [`acme`]: certificates ordered from an ACME CA and renewed.
//! - [`client_auth`]: client certificates, asked for by SNI and judged per
//!   app.
//! - [`inspect`]: what a certificate says (names, validity, fingerprint).
//! - `store`: the served certificates and the SNI choice among them;
//!   `server_config`: the rustls server configs and resumption.
//! - Here: [`TlsState`], the one owner of all of it, and the local CA's
//!   renewal; its ACME and on-demand operations are in `acme/state.rs`.
//!
//! The certificate store sits behind an [`ArcSwap`], so a reload replaces it
//! for new handshakes while connections already open keep the certificate
//! they were set up with. The session cache and ticketer are created once and
//! shared by every server config built later, so resumption survives reloads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use moat_config::{CertificateFiles, Tls};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;

pub mod acme;
pub mod client_auth;
pub mod inspect;
pub mod local_ca;
mod server_config;
mod store;

use acme::sync_acme;
use server_config::server_config_with;
pub use server_config::{Resumption, provider, server_config};
pub use store::{CertStore, CertificateStatus, SniResolver, Source, check_files};
use store::{FileCert, Served, load_files, modified};

use inspect::CertificateFacts;
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
        let mut sources = Sources {
            files: load_files(&config.tls.certificates, &provider)?,
            ..Sources::default()
        };
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
        if let Some((scope, config)) = self.client_auth.load().as_ref()
            && scope.asks(sni)
        {
            let asked = client_auth::Asked {
                sni: sni.map(|s| Arc::from(s.to_ascii_lowercase())),
            };
            return (config.clone(), Some(asked));
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

/// The host names of the apps a runtime serves, for the local CA's leaf.
pub fn app_hosts(config: &moat_config::Config) -> Vec<String> {
    let mut hosts: Vec<String> = config.apps.iter().filter_map(|a| a.host.clone()).collect();
    // The portal's own host gets its certificate the same way.
    hosts.extend(config.portal.host.clone().filter(|_| config.portal.enabled));
    hosts.sort();
    hosts.dedup();
    hosts
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
