//! [`TlsState`]'s ACME operations: which certificates are due, installing
//! an order's result and the CA's renewal window, and on-demand issuance
//! for a handshake's name. Kept beside the rest of ACME; the state itself
//! is `tls/mod.rs`'s.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::tls::acme;
use crate::tls::{Served, TlsState, local_ca, unix};

impl TlsState {
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
        result: Result<Option<acme::order::RenewalInfo>, acme::order::Failure>,
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
}

/// Makes `slots` the certificates `config` wants: a slot whose spec is
/// unchanged keeps its state; a new one starts from what is on disk;
/// on-demand ones stay while on-demand issuance is on. Returns whether the
/// set changed.
pub(in crate::tls) fn sync_acme(
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
