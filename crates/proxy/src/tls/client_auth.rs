//! Client certificates (mutual TLS), per app.
//!
//! One TLS listener serves many apps and only some want client
//! certificates, so the work is split:
//!
//! - **Handshake.** Handshakes whose SNI names a host with such an app (or
//!   every handshake, when a host-less app has one) get a server config
//!   that asks for a certificate without requiring one
//!   ([`RequestClientCert`]), offering the apps' CA names as hints. The
//!   handshake checks only that the client holds the certificate's key
//!   (its CertificateVerify signature); any certificate is let through to
//!   the next step, so a wrong one gets an HTTP page that says what is
//!   wrong instead of a TLS alert a browser shows as "connection reset".
//! - **Request.** The pipeline's client-certificate stage asks the app's
//!   [`ClientCa`] for a [`Verdict`] on the connection's chain (rustls'
//!   WebPKI client verifier: chain to the app's CA, validity, clientAuth
//!   usage, the CRL), cached per connection and CA generation, and refuses
//!   or goes on. Nothing reads a peer certificate without a verdict.
//!
//! Limits: the verdict is made once per connection (per CRL version), so
//! a certificate that expires while a keep-alive connection is open stays
//! accepted on it until it closes; a CRL change applies to the next
//! request. Apps mounted on a path of a shared host make every handshake
//! for that host ask for a certificate (a browser may then offer its
//! certificates on the other apps of that host too).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// What the app's CA says of the certificate a connection presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: the user is its SAN email, else its subject's common name.
    Valid {
        user: String,
    },
    Expired,
    NotYetValid,
    Revoked,
    /// Not issued by (a chain to) the app's CA.
    UnknownIssuer,
    /// The CRL cannot say (it is another issuer's, or past its
    /// nextUpdate): the admin's to fix.
    RevocationUnknown(String),
    /// Anything else (wrong key usage, a bad signature, unreadable).
    Invalid(String),
}

/// The CA (and CRL) of one or more apps' client certificates.
pub struct ClientCa {
    ca_file: PathBuf,
    crl_file: Option<PathBuf>,
    subjects: Vec<DistinguishedName>,
    loaded: ArcSwap<Loaded>,
    /// Bumped at every CRL reload, so cached verdicts are made again.
    generation: AtomicU64,
}

struct Loaded {
    verifier: Arc<dyn ClientCertVerifier>,
    crl_modified: Option<SystemTime>,
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl ClientCa {
    pub fn load(ca_file: &Path, crl_file: Option<&Path>) -> Result<ClientCa, String> {
        let mut roots = rustls::RootCertStore::empty();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
            .and_then(|i| i.collect::<Result<_, _>>())
            .map_err(|e| {
                format!(
                    "{}: not a PEM file of CA certificates: {e}",
                    ca_file.display()
                )
            })?;
        if certs.is_empty() {
            return Err(format!("{}: holds no CERTIFICATE", ca_file.display()));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("{}: not a usable CA certificate: {e}", ca_file.display()))?;
        }
        let subjects = roots.subjects();
        let roots = Arc::new(roots);
        let loaded = Self::build(&roots, crl_file)?;
        Ok(ClientCa {
            ca_file: ca_file.to_owned(),
            crl_file: crl_file.map(Path::to_owned),
            subjects,
            loaded: ArcSwap::from_pointee(Loaded {
                verifier: loaded,
                crl_modified: crl_file.and_then(modified),
            }),
            generation: AtomicU64::new(0),
        })
    }

    fn build(
        roots: &Arc<rustls::RootCertStore>,
        crl_file: Option<&Path>,
    ) -> Result<Arc<dyn ClientCertVerifier>, String> {
        let mut builder = WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            Arc::new(rustls::crypto::ring::default_provider()),
        );
        if let Some(path) = crl_file {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let crls: Vec<CertificateRevocationListDer<'static>> =
                if bytes.starts_with(b"-----") || bytes.starts_with(b"\n") {
                    CertificateRevocationListDer::pem_slice_iter(&bytes)
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("{}: not a PEM CRL: {e}", path.display()))?
                } else {
                    vec![CertificateRevocationListDer::from(bytes)]
                };
            if crls.is_empty() {
                return Err(format!("{}: holds no X509 CRL", path.display()));
            }
            // SECURITY: the leaf's status must be known from the CRL (a CRL
            // of another issuer does not let everyone through), and a CRL
            // past its nextUpdate is not believed. Intermediates are not
            // checked: one CRL file is the app CA's.
            builder = builder
                .with_crls(crls)
                .only_check_end_entity_revocation()
                .enforce_revocation_expiration();
        }
        builder
            .build()
            .map_err(|e| format!("{}: {e}", crl_file.unwrap_or(Path::new("CA")).display()))
    }

    /// Re-reads the CRL if its file changed. A CRL that fails to load
    /// leaves the previous one in force.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let Some(crl) = &self.crl_file else {
            return Ok(false);
        };
        let now = modified(crl);
        if now == self.loaded.load().crl_modified {
            return Ok(false);
        }
        // The roots are re-read too: they come from one file, and the
        // verifier needs them.
        let fresh = ClientCa::load(&self.ca_file, Some(crl))?;
        self.loaded.store(fresh.loaded.load_full());
        self.generation.fetch_add(1, Ordering::SeqCst);
        tracing::info!(crl = %crl.display(), "client certificate revocation list reloaded");
        Ok(true)
    }

    pub fn subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }

    pub fn same_files(&self, ca: &Path, crl: Option<&Path>) -> bool {
        self.ca_file == ca && self.crl_file.as_deref() == crl
    }

    /// The verdict on a presented chain at `now`.
    pub fn verify(&self, chain: &[CertificateDer<'static>], now: UnixTime) -> Verdict {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Verdict::Invalid("no certificate".into());
        };
        match self
            .loaded
            .load()
            .verifier
            .verify_client_cert(leaf, intermediates, now)
        {
            Ok(_) => match user_of(leaf) {
                // The user travels upstream in a header: a name that cannot
                // be one is refused rather than dropped on the way.
                Some(user) if http::HeaderValue::from_str(&user).is_ok() && !user.is_empty() => {
                    Verdict::Valid { user }
                }
                Some(_) => Verdict::Invalid(
                    "the certificate's name has characters a header cannot carry".into(),
                ),
                None => Verdict::Invalid(
                    "the certificate names no one (no SAN email and no common name)".into(),
                ),
            },
            Err(rustls::Error::InvalidCertificate(e)) => match e {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    Verdict::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    Verdict::NotYetValid
                }
                CertificateError::Revoked => Verdict::Revoked,
                CertificateError::UnknownRevocationStatus => Verdict::RevocationUnknown(format!(
                    "{}: the CRL does not cover this certificate's issuer",
                    self.crl_file
                        .as_deref()
                        .unwrap_or(Path::new("crl"))
                        .display()
                )),
                CertificateError::ExpiredRevocationList
                | CertificateError::ExpiredRevocationListContext { .. } => {
                    Verdict::RevocationUnknown(format!(
                        "{}: the CRL is past its nextUpdate; publish a fresh one",
                        self.crl_file
                            .as_deref()
                            .unwrap_or(Path::new("crl"))
                            .display()
                    ))
                }
                CertificateError::UnknownIssuer => Verdict::UnknownIssuer,
                other => Verdict::Invalid(format!("{other:?}")),
            },
            Err(other) => Verdict::Invalid(other.to_string()),
        }
    }
}

/// The user a client certificate names: its first SAN email, else its
/// subject's common name.
fn user_of(leaf: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(leaf).ok()?;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::RFC822Name(email) = n {
                return Some((*email).to_owned());
            }
        }
    }
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}

/// The certificate chain a connection presented, with the verdicts made
/// on it so far.
pub struct PeerCert {
    chain: Vec<CertificateDer<'static>>,
    verdicts: Mutex<Vec<(Weak<ClientCa>, u64, Verdict)>>,
}

impl std::fmt::Debug for PeerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerCert")
            .field("certificates", &self.chain.len())
            .finish()
    }
}

impl PeerCert {
    pub fn new(chain: Vec<CertificateDer<'static>>) -> PeerCert {
        PeerCert {
            chain,
            verdicts: Mutex::new(Vec::new()),
        }
    }

    /// `ca`'s verdict on this chain, made once per connection and CRL
    /// version. A held `Weak` keeps its allocation, so a pointer match is
    /// never a different CA at a reused address.
    pub fn verdict(&self, ca: &Arc<ClientCa>, now: UnixTime) -> Verdict {
        let generation = ca.generation.load(Ordering::SeqCst);
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, _, v)) = verdicts
            .iter()
            .find(|(w, g, _)| *g == generation && std::ptr::eq(w.as_ptr(), Arc::as_ptr(ca)))
        {
            return v.clone();
        }
        let v = ca.verify(&self.chain, now);
        verdicts.retain(|(w, _, _)| !std::ptr::eq(w.as_ptr(), Arc::as_ptr(ca)));
        verdicts.push((Arc::downgrade(ca), generation, v.clone()));
        v
    }
}

/// The handshake side: asks for a certificate, requires none, checks only
/// the client's proof that it holds the key. See the module comment.
#[derive(Debug)]
pub struct RequestClientCert {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl RequestClientCert {
    pub fn new(hints: Vec<DistinguishedName>, provider: &CryptoProvider) -> RequestClientCert {
        RequestClientCert {
            hints,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // SECURITY: accepted here only to be judged per app by
        // `ClientCa::verify` before any request uses it.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A connection whose handshake asked for a client certificate, and for
/// which name: a request for another host on it (HTTP/2 reused across
/// names) is sent to a connection of its own.
#[derive(Debug, Clone)]
pub struct Asked {
    pub sni: Option<Arc<str>>,
}

/// Which handshakes ask for a client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// No app wants client certificates.
    #[default]
    Nobody,
    /// Handshakes whose SNI is one of these (lower-case) hosts.
    Hosts(Vec<String>),
    /// Every handshake: an app without a host wants them.
    Everyone,
}

impl Scope {
    pub fn asks(&self, sni: Option<&str>) -> bool {
        match self {
            Scope::Nobody => false,
            Scope::Everyone => true,
            Scope::Hosts(hosts) => {
                sni.is_some_and(|n| hosts.iter().any(|h| h.eq_ignore_ascii_case(n)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_by_sni() {
        assert!(!Scope::Nobody.asks(Some("a.example")));
        assert!(Scope::Everyone.asks(None));
        let hosts = Scope::Hosts(vec!["secure.example".into()]);
        assert!(hosts.asks(Some("Secure.Example")));
        assert!(!hosts.asks(Some("other.example")));
        assert!(!hosts.asks(None));
    }
}
