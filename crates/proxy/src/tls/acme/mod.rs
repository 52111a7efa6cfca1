//! Certificates moat obtains over ACME and renews: which ones a config
//! wants, what is kept of each on disk, and when each is tried next.
//!
//! - [`order`]: one order against the CA (instant-acme).
//! - [`challenge`]: the answers to challenges while an order is open.
//! - [`on_demand`]: the ask URL that gates certificates for new names.
//!
//! Each wanted certificate is a [`Slot`] in the TLS state. A slot is due at
//! start when nothing usable is on disk, at its renewal time (two thirds
//! of the lifetime with jitter, `moat_policy::renewal::acme_renew_at`), or
//! at the retry time after a failure (backing off; at least an hour after
//! a rate-limit answer, since instant-acme does not hand on the error's
//! `Retry-After`). The order itself runs outside every lock; only
//! its result is installed. A failure never removes a certificate that
//! serves.
//!
//! On disk, `DATA_DIR/tls/acme/<CA host>-<hash>/` holds `account.json` and
//! one folder per certificate (named after its first domain) with
//! `cert.pem` and `key.pem` (0600), each written to a temporary file and
//! renamed, key first.

pub mod challenge;
mod state;
pub(super) use state::sync_acme;
pub mod on_demand;
pub mod order;

use std::path::Path;
use std::sync::Arc;

use moat_config::{AcmeCertificate, Config};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::inspect::inspect;
use super::{Served, Source};

/// A certificate moat keeps over ACME, and where its renewal stands.
pub(super) struct Slot {
    pub spec: AcmeCertificate,
    pub served: Option<Served>,
    /// Unix seconds of the next order.
    pub next_attempt: i64,
    pub failures: u32,
    pub error: Option<String>,
    /// Where in the renewal spread this certificate falls, `0.0..1.0`.
    jitter: f64,
    /// An order is running: not due again until it ends.
    pub running: bool,
    /// Added for a handshake's name (`[tls.on_demand]`), not by the config.
    pub on_demand: bool,
    /// The CA's suggested renewal window (RFC 9773), when it gave one.
    window: Option<(i64, i64)>,
    /// When to ask the CA for its renewal information next.
    pub ari_next: i64,
}

/// The ACME certificates `config` asks for: its `[[tls.acme]]` entries,
/// then (with `acme_for_app_hosts`) one per app host no entry covers. Hosts
/// no public CA can validate (one label, or a private-use domain) are left
/// to the local CA.
pub fn wanted(config: &Config) -> Vec<AcmeCertificate> {
    let mut out = config.tls.acme.clone();
    if config.tls.acme_for_app_hosts {
        let covered: Vec<String> = out.iter().flat_map(|c| c.domains.clone()).collect();
        for host in super::app_hosts(config) {
            if covered.contains(&host) || !publicly_validatable(&host) {
                continue;
            }
            out.push(AcmeCertificate {
                domains: vec![host],
                account: config.tls.acme_defaults.clone(),
            });
        }
    }
    out
}

/// Hosts the local CA covers (the private-use names) or no CA can issue
/// for are not ordered.
fn publicly_validatable(host: &str) -> bool {
    moat_policy::renewal::is_issuable_dns_name(host)
        && !super::local_ca::PRIVATE_DOMAINS
            .iter()
            .any(|p| host == *p || host.ends_with(&format!(".{p}")))
}

fn jitter() -> f64 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}

/// A PEM chain and key as a served certificate.
pub(super) fn served(
    spec: &AcmeCertificate,
    chain_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<Served, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the certificate is not PEM: {e}"))?;
    let leaf = chain
        .first()
        .ok_or_else(|| "the CA sent no certificate".to_owned())?;
    let facts = inspect(leaf)?;
    for d in &spec.domains {
        if !facts.names.iter().any(|n| n.eq_ignore_ascii_case(d)) {
            return Err(format!("the certificate does not name {d}"));
        }
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("the key is not PEM: {e}"))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| e.to_string())?;
    let key = CertifiedKey::new(chain, signing);
    key.keys_match()
        .map_err(|_| "the key does not belong to the certificate".to_owned())?;
    Ok(Served {
        key: Arc::new(key),
        facts,
        source: Source::Acme {
            domains: spec.domains.clone(),
            directory: spec.account.directory.clone(),
        },
    })
}

impl Slot {
    /// The slot for `spec`, with the certificate kept on disk if it is
    /// still valid for every domain.
    pub fn load(
        data_dir: &Path,
        spec: AcmeCertificate,
        provider: &CryptoProvider,
        now: i64,
    ) -> Slot {
        let dir = order::certificate_dir(data_dir, &spec);
        let kept = match (
            std::fs::read(dir.join("cert.pem")),
            std::fs::read(dir.join("key.pem")),
        ) {
            (Ok(c), Ok(k)) => match served(&spec, &c, &k, provider) {
                Ok(s) if s.facts.not_after > now => Some(s),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), "the stored ACME certificate is not usable and is ordered again: {e}");
                    None
                }
            },
            _ => None,
        };
        let mut slot = Slot {
            spec,
            served: None,
            next_attempt: now,
            failures: 0,
            error: None,
            jitter: jitter(),
            running: false,
            on_demand: false,
            window: None,
            ari_next: now,
        };
        if let Some(s) = kept {
            slot.next_attempt = slot.renew_at(&s);
            slot.served = Some(s);
        }
        slot
    }

    fn renew_at(&self, s: &Served) -> i64 {
        moat_policy::renewal::acme_renew_at(
            s.facts.not_before,
            s.facts.not_after,
            self.window,
            self.jitter,
        )
    }

    /// Installs what the CA said of renewal: a window moves the renewal
    /// time into it (unless a failure's retry is pending); none (the CA
    /// offers no renewal information) is asked again a day later.
    pub fn set_window(
        &mut self,
        result: Result<Option<order::RenewalInfo>, order::Failure>,
        now: i64,
    ) {
        match result {
            Ok(Some(info)) => {
                self.window = Some(info.window);
                self.ari_next = now + info.retry_after.clamp(3600, 86_400);
                if self.failures == 0
                    && let Some(s) = &self.served
                {
                    self.next_attempt = self.renew_at(s);
                }
            }
            Ok(None) => self.ari_next = now + 86_400,
            Err(f) => {
                tracing::warn!(
                    names = self.spec.domains.join(", "),
                    "no renewal information from the CA, renewing on moat's own schedule: {}",
                    f.message
                );
                self.ari_next = now + 3600;
            }
        }
    }

    /// Installs the result of an order. A new certificate is stored on
    /// disk (a failure to store is logged; the certificate still serves).
    pub fn finish(
        &mut self,
        data_dir: &Path,
        result: Result<order::Obtained, order::Failure>,
        provider: &CryptoProvider,
        now: i64,
    ) -> bool {
        self.running = false;
        let names = self.spec.domains.join(", ");
        let result = result.and_then(|o| {
            served(
                &self.spec,
                o.chain_pem.as_bytes(),
                o.key_pem.as_bytes(),
                provider,
            )
            .map(|s| (s, o))
            .map_err(|e| order::Failure {
                message: format!("the CA's certificate is not usable: {e}"),
                retry_after: None,
            })
        });
        match result {
            Ok((s, obtained)) => {
                if let Err(e) = store(data_dir, &self.spec, &obtained) {
                    tracing::error!(
                        names,
                        "the new ACME certificate serves but could not be stored, so it is ordered again at the next start: {e}"
                    );
                }
                tracing::info!(
                    names,
                    not_after = s.facts.not_after,
                    "obtained a certificate over ACME (open connections keep theirs)"
                );
                // The old certificate's window says nothing of the new one.
                self.window = None;
                self.ari_next = now;
                // A certificate due the moment it arrives (this machine's
                // clock far ahead, or a CA that backdates) would be ordered
                // again and again: it waits a tenth of its lifetime first.
                let due = self.renew_at(&s);
                let floor = now + ((s.facts.not_after - s.facts.not_before) / 10).max(60);
                if due < floor {
                    tracing::warn!(
                        names,
                        "the new certificate is already due for renewal by this machine's clock; check the clock (renewing again in a tenth of its lifetime)"
                    );
                }
                self.next_attempt = due.max(floor);
                self.served = Some(s);
                self.failures = 0;
                self.error = None;
                true
            }
            Err(f) => {
                self.failures += 1;
                let delay = moat_policy::renewal::retry_delay(self.failures, f.retry_after);
                self.next_attempt = now + delay;
                let serving = match &self.served {
                    Some(s) if s.facts.not_after > now => "the current certificate keeps serving",
                    _ => "until then these names get moat's other certificates",
                };
                tracing::error!(
                    names,
                    attempt = self.failures,
                    retry_in_seconds = delay,
                    "could not obtain a certificate over ACME: {}; {serving}",
                    f.message
                );
                self.error = Some(f.message);
                false
            }
        }
    }
}

/// Writes the key, then the chain, each through a temporary file.
fn store(data_dir: &Path, spec: &AcmeCertificate, o: &order::Obtained) -> std::io::Result<()> {
    let dir = order::certificate_dir(data_dir, spec);
    super::create_private_dir(&dir)?;
    for (name, bytes) in [
        ("key.pem", o.key_pem.as_bytes()),
        ("cert.pem", o.chain_pem.as_bytes()),
    ] {
        let tmp = dir.join(format!("{name}.tmp"));
        super::write_private(&tmp, bytes)?;
        std::fs::rename(&tmp, dir.join(name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_hosts_a_public_ca_can_validate_are_wanted() {
        let toml = r#"
[tls]
acme_for_app_hosts = true
[[tls.acme]]
domains = ["shop.example.com"]
[[apps]]
name = "shop"
host = "shop.example.com"
upstream = "http://127.0.0.1:1"
[[apps]]
name = "wiki"
host = "wiki.example.org"
upstream = "http://127.0.0.1:1"
[[apps]]
name = "notes"
host = "notes.home.arpa"
upstream = "http://127.0.0.1:1"
"#;
        let config = moat_config::load_str(toml, None).unwrap();
        let wanted: Vec<Vec<String>> = wanted(&config).into_iter().map(|c| c.domains).collect();
        assert_eq!(
            wanted,
            [
                vec!["shop.example.com".to_owned()],
                vec!["wiki.example.org".to_owned()]
            ]
        );
    }

    #[test]
    fn a_failure_backs_off_and_keeps_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let spec = AcmeCertificate {
            domains: vec!["a.example.com".into()],
            account: moat_config::default_config().tls.acme_defaults,
        };
        let provider = rustls::crypto::ring::default_provider();
        let mut slot = Slot::load(dir.path(), spec, &provider, 1000);
        assert_eq!(slot.next_attempt, 1000, "nothing on disk: due now");
        let fail = || {
            Err(order::Failure {
                message: "the CA is down".into(),
                retry_after: None,
            })
        };
        assert!(!slot.finish(dir.path(), fail(), &provider, 1000));
        assert_eq!(slot.next_attempt, 1060);
        assert!(!slot.finish(dir.path(), fail(), &provider, 1060));
        assert_eq!(slot.next_attempt, 1180);
        assert_eq!(slot.error.as_deref(), Some("the CA is down"));
        let limited = Err(order::Failure {
            message: "rate limited".into(),
            retry_after: Some(3600),
        });
        assert!(!slot.finish(dir.path(), limited, &provider, 2000));
        assert_eq!(slot.next_attempt, 5600);
        assert!(slot.served.is_none());
        // A CA without renewal information is asked again a day later.
        slot.set_window(Ok(None), 2000);
        assert_eq!(slot.ari_next, 2000 + 86_400);
        assert_eq!(slot.next_attempt, 5600, "the retry stands");
    }
}
