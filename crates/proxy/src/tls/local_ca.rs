//! moat's local certificate authority: the certificate it serves when no
//! certificate is configured. One file because the root, its constraints
//! and the leaves it signs are one trust decision; a third of it is tests.
//!
//! A root (ECDSA P-256, ten years, `CA:true, pathlen:0`, keyCertSign and
//! cRLSign, name-constrained) is made once in `DATA_DIR/tls/ca/`. From it
//! moat issues, at every start and again after two thirds of its lifetime,
//! a short-lived leaf (no CA flag, digitalSignature, serverAuth) for
//! localhost, the loopback addresses and the apps' host names. The leaf is
//! never written to disk: a new one at start costs a key generation.
//!
//! The root is constrained to loopback addresses, the names reserved for
//! private use (`localhost`, `test`, `internal`, `home.arpa`, `lan`,
//! `local`) and the apps' host names when it was made, so a leaked root key
//! cannot mint a certificate a trusting browser would accept for a public
//! site. A host name added later outside those is left out of the leaf
//! (with a warning): a leaf holding it would fail validation for every
//! name.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::TlsError;
use super::inspect::{CertificateFacts, Permitted, inspect};

/// Names every leaf carries.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// DNS names reserved or customary for private networks; the root permits
/// them and every name under them.
pub const PRIVATE_DOMAINS: [&str; 6] =
    ["localhost", "test", "internal", "home.arpa", "lan", "local"];

const ROOT_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Certificates start a minute in the past, for clients whose clocks lag.
const BACKDATE: Duration = Duration::from_secs(60);

/// Where the root lives.
#[derive(Debug, Clone)]
pub struct CaFiles {
    pub dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CaFiles {
    pub fn in_data_dir(data_dir: &Path) -> CaFiles {
        let dir = data_dir.join("tls").join("ca");
        CaFiles {
            cert: dir.join("root.crt"),
            key: dir.join("root.key"),
            dir,
        }
    }
}

pub struct LocalCa {
    pub files: CaFiles,
    pub root: CertificateDer<'static>,
    pub facts: CertificateFacts,
    key: KeyPair,
    permitted: Permitted,
}

/// A leaf just issued.
pub struct Issued {
    pub key: Arc<CertifiedKey>,
    pub facts: CertificateFacts,
    /// Host names the root's constraints do not permit, left out.
    pub left_out: Vec<String>,
}

impl LocalCa {
    /// The CA in `data_dir`, made on first use with `hosts` (the apps' host
    /// names now) among its permitted names. An old self-signed pair from
    /// before the local CA is removed, with one log line.
    pub fn load_or_create(
        data_dir: &Path,
        hosts: &[String],
        now: SystemTime,
    ) -> Result<LocalCa, TlsError> {
        let files = CaFiles::in_data_dir(data_dir);
        let err = |message: String| TlsError::LocalCa {
            dir: files.dir.clone(),
            message,
        };
        let ca = match (files.cert.is_file(), files.key.is_file()) {
            (true, true) => Self::load(files.clone())?,
            (false, false) => {
                let ca = Self::create(files.clone(), hosts, now).map_err(err)?;
                tracing::info!(
                    root = %ca.files.cert.display(),
                    sha256 = %ca.facts.sha256,
                    "created moat's local CA; trust its root once with `moat ca trust` (or import the file into your browser)"
                );
                ca
            }
            (true, false) => {
                return Err(err(format!(
                    "{} is there but its key {} is missing: restore the key, or move {} aside to make a new CA (clients must then trust the new root)",
                    files.cert.display(),
                    files.key.display(),
                    files.dir.display()
                )));
            }
            (false, true) => {
                return Err(err(format!(
                    "{} is there but the root certificate {} is missing: restore it, or move {} aside to make a new CA",
                    files.key.display(),
                    files.cert.display(),
                    files.dir.display()
                )));
            }
        };
        retire_self_signed(data_dir);
        Ok(ca)
    }

    /// Reads an existing root and its key.
    pub fn load(files: CaFiles) -> Result<LocalCa, TlsError> {
        let err = |path: &Path, message: String| TlsError::File {
            path: path.to_owned(),
            message,
        };
        let root = CertificateDer::from_pem_file(&files.cert)
            .map_err(|e| err(&files.cert, format!("not a PEM certificate: {e}")))?;
        let facts = inspect(&root).map_err(|e| err(&files.cert, e))?;
        check_root(&root).map_err(|e| err(&files.cert, e))?;
        let permitted = Permitted::of(&root).map_err(|e| err(&files.cert, e))?;
        let pem = std::fs::read_to_string(&files.key)
            .map_err(|e| err(&files.key, format!("cannot read: {e}")))?;
        let key = KeyPair::from_pem(&pem)
            .map_err(|e| err(&files.key, format!("not a usable private key: {e}")))?;
        if rcgen::PublicKeyData::subject_public_key_info(&key)
            != spki_of(&root).map_err(|e| err(&files.cert, e))?
        {
            return Err(err(
                &files.key,
                format!("is not the key of {}", files.cert.display()),
            ));
        }
        Ok(LocalCa {
            files,
            root,
            facts,
            key,
            permitted,
        })
    }

    fn create(files: CaFiles, hosts: &[String], now: SystemTime) -> Result<LocalCa, String> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, root_common_name(now));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "moat local CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.name_constraints = Some(root_constraints(hosts));
        params.serial_number = Some(random_serial()?);
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + ROOT_LIFETIME).into();
        let key =
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        super::create_private_dir(&files.dir).map_err(|e| e.to_string())?;
        // The key first, under a temporary name: a crash between the two
        // writes leaves no root without its key.
        let tmp = files.key.with_extension("key.tmp");
        super::write_private(&tmp, key.serialize_pem().as_bytes()).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &files.key).map_err(|e| e.to_string())?;
        std::fs::write(&files.cert, cert.pem()).map_err(|e| e.to_string())?;
        let root = cert.der().clone();
        let facts = inspect(&root)?;
        let permitted = Permitted::of(&root)?;
        Ok(LocalCa {
            files,
            root,
            facts,
            key,
            permitted,
        })
    }

    /// Whether the root may issue a leaf for `name`.
    pub fn permits(&self, name: &str) -> bool {
        self.permitted.permits(name)
    }

    /// A new leaf for the loopback names and `hosts`, valid from a minute
    /// before `now` for `lifetime`.
    pub fn issue(
        &self,
        hosts: &[String],
        now: SystemTime,
        lifetime: Duration,
        provider: &CryptoProvider,
    ) -> Result<Issued, TlsError> {
        let err = |message: String| TlsError::LocalCa {
            dir: self.files.dir.clone(),
            message: format!("issuing a certificate: {message}"),
        };
        let (names, left_out) = self.leaf_names(hosts);
        let mut params = CertificateParams::new(names).map_err(|e| err(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, LOOPBACK_NAMES[0]);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial().map_err(err)?);
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + lifetime).into();
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| err(e.to_string()))?;
        let issuer =
            Issuer::from_ca_cert_der(&self.root, &self.key).map_err(|e| err(e.to_string()))?;
        let leaf = params
            .signed_by(&leaf_key, &issuer)
            .map_err(|e| err(e.to_string()))?;
        let der = leaf.der().clone();
        let facts = inspect(&der).map_err(err)?;
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let signing = provider
            .key_provider
            .load_private_key(private)
            .map_err(|e| err(e.to_string()))?;
        Ok(Issued {
            key: Arc::new(CertifiedKey::new(vec![der], signing)),
            facts,
            left_out,
        })
    }

    /// The names a leaf gets: the loopback names, then each distinct host
    /// the root permits; the rest are returned apart.
    pub fn leaf_names(&self, hosts: &[String]) -> (Vec<String>, Vec<String>) {
        let mut names: Vec<String> = LOOPBACK_NAMES.iter().map(|s| (*s).to_owned()).collect();
        let mut left_out = Vec::new();
        for h in hosts {
            let h = h.to_ascii_lowercase();
            if names.contains(&h) || left_out.contains(&h) {
                continue;
            }
            if self.permits(&h) {
                names.push(h);
            } else {
                left_out.push(h);
            }
        }
        (names, left_out)
    }
}

/// SECURITY: a root in the CA folder must be what moat makes, a CA with
/// critical name constraints; a file swapped for an unconstrained root is
/// neither served from nor installed into trust stores (`moat ca trust`).
pub fn check_root(der: &CertificateDer<'_>) -> Result<(), String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("not a certificate: {e}"))?;
    if !cert.is_ca() {
        return Err("is not a CA certificate; it is not moat's local CA root (move the folder aside to make a new CA)".into());
    }
    match cert.name_constraints() {
        Ok(Some(nc)) if nc.critical => Ok(()),
        _ => Err("has no critical name constraints, so it is not moat's local CA root (move the folder aside to make a new CA)".into()),
    }
}

/// `moat local CA (HOST, 2026-12-01)`: tells roots of several machines
/// apart in a trust store.
fn root_common_name(now: SystemTime) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this machine".to_owned());
    let date = time_date(now);
    format!("moat local CA ({host}, {date})")
}

fn time_date(t: SystemTime) -> String {
    let days = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    let (y, m, d) = moat_policy::units::civil_date(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn root_constraints(hosts: &[String]) -> NameConstraints {
    let mut permitted: Vec<GeneralSubtree> = PRIVATE_DOMAINS
        .iter()
        .map(|d| GeneralSubtree::DnsName((*d).to_owned()))
        .collect();
    let private = Permitted {
        subtrees: Some(
            PRIVATE_DOMAINS
                .iter()
                .map(|d| super::inspect::Subtree::Dns((*d).to_owned()))
                .collect(),
        ),
    };
    permitted.push(GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix(
        [127, 0, 0, 0],
        8,
    )));
    permitted.push(GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix(
        std::net::Ipv6Addr::LOCALHOST.octets(),
        128,
    )));
    for h in hosts {
        let h = h.to_ascii_lowercase();
        match h.parse::<IpAddr>() {
            Ok(ip) if !ip.is_loopback() => {
                let prefix = if ip.is_ipv4() { 32 } else { 128 };
                permitted.push(GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                    ip, prefix,
                )));
            }
            Ok(_) => {}
            Err(_) if private.permits(&h) => {}
            Err(_) => {
                let subtree = GeneralSubtree::DnsName(h);
                if !permitted.contains(&subtree) {
                    permitted.push(subtree);
                }
            }
        }
    }
    NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: Vec::new(),
    }
}

/// Sixteen random bytes, top bit clear so the serial stays positive.
fn random_serial() -> Result<SerialNumber, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| e.to_string())?;
    b[0] &= 0x7f;
    b[0] |= 0x01;
    Ok(SerialNumber::from(b.to_vec()))
}

fn spki_of(der: &CertificateDer<'_>) -> Result<Vec<u8>, String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    Ok(cert.public_key().raw.to_vec())
}

/// Before the local CA, moat served a ten-year self-signed certificate
/// from `DATA_DIR/tls/self-signed.*`; it goes, since nothing uses it now.
fn retire_self_signed(data_dir: &Path) {
    let dir = data_dir.join("tls");
    let (cert, key) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
    if !cert.exists() && !key.exists() {
        return;
    }
    let removed = [&cert, &key]
        .iter()
        .all(|p| !p.exists() || std::fs::remove_file(p).is_ok());
    if removed {
        tracing::info!(
            "replaced the old self-signed certificate with one from moat's local CA; trust the CA once with `moat ca trust`"
        );
    } else {
        tracing::warn!(dir = %dir.display(), "the old self-signed certificate could not be removed; it is no longer used");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> CryptoProvider {
        rustls::crypto::ring::default_provider()
    }

    #[test]
    fn root_is_made_once_and_constrained() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let hosts = vec!["notes.example.com".to_owned(), "wiki.lan".to_owned()];
        let a = LocalCa::load_or_create(dir.path(), &hosts, now).unwrap();
        let b = LocalCa::load_or_create(dir.path(), &[], now).unwrap();
        assert_eq!(a.facts.sha256, b.facts.sha256);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&a.files.key), 0o600);
        assert_eq!(mode(&a.files.dir), 0o700);

        let (_, cert) = <x509_parser::prelude::X509Certificate as x509_parser::prelude::FromDer<
            '_,
            x509_parser::error::X509Error,
        >>::from_der(&a.root)
        .unwrap();
        let bc = cert.basic_constraints().unwrap().unwrap().value;
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, Some(0));
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
        assert!(cert.name_constraints().unwrap().unwrap().critical);
        assert!(a.facts.not_after - a.facts.not_before > 9 * 365 * 86_400);

        // The hosts when it was made are permitted; a public name later is not.
        assert!(b.permits("notes.example.com"));
        assert!(b.permits("grafana.home.arpa"));
        assert!(b.permits("127.0.0.1"));
        assert!(!b.permits("www.google.com"));
        let (names, left_out) = b.leaf_names(&[
            "wiki.lan".into(),
            "Notes.Example.com".into(),
            "shop.example.org".into(),
        ]);
        assert_eq!(
            names,
            [
                "localhost",
                "127.0.0.1",
                "::1",
                "wiki.lan",
                "notes.example.com"
            ]
        );
        assert_eq!(left_out, ["shop.example.org"]);
    }

    #[test]
    fn leaf_is_short_lived_and_not_a_ca() {
        use rustls::client::danger::ServerCertVerifier;
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let ca = LocalCa::load_or_create(dir.path(), &[], now).unwrap();
        let issued = ca
            .issue(&[], now, Duration::from_secs(7 * 86_400), &provider())
            .unwrap();
        assert_eq!(issued.facts.names, ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(
            issued.facts.not_after - issued.facts.not_before,
            7 * 86_400 + 60
        );
        assert_eq!(issued.facts.issuer, ca.facts.issuer);
        let der = &issued.key.cert[0];
        let (_, cert) = <x509_parser::prelude::X509Certificate as x509_parser::prelude::FromDer<
            '_,
            x509_parser::error::X509Error,
        >>::from_der(der)
        .unwrap();
        assert!(!cert.is_ca());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        // The chain verifies against the root, for each loopback name.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.root.clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(provider()),
        )
        .build()
        .unwrap();
        for name in LOOPBACK_NAMES {
            let name = rustls::pki_types::ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(der, &[], &name, &[], rustls::pki_types::UnixTime::now())
                .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        }
    }

    #[test]
    fn old_self_signed_pair_is_retired() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::write(tls.join("self-signed.crt"), "old").unwrap();
        std::fs::write(tls.join("self-signed.key"), "old").unwrap();
        LocalCa::load_or_create(dir.path(), &[], SystemTime::now()).unwrap();
        assert!(!tls.join("self-signed.crt").exists());
        assert!(!tls.join("self-signed.key").exists());
    }

    #[test]
    fn an_unconstrained_root_in_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::load_or_create(dir.path(), &[], SystemTime::now()).unwrap();
        // Swap in a CA without name constraints, with its key.
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(&ca.files.cert, cert.pem()).unwrap();
        std::fs::write(&ca.files.key, key.serialize_pem()).unwrap();
        let e = LocalCa::load_or_create(dir.path(), &[], SystemTime::now())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no critical name constraints"), "{e}");
    }

    #[test]
    fn a_root_without_its_key_is_an_error_not_a_new_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::load_or_create(dir.path(), &[], SystemTime::now()).unwrap();
        std::fs::remove_file(&ca.files.key).unwrap();
        let e = LocalCa::load_or_create(dir.path(), &[], SystemTime::now())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("root.key is missing"), "{e}");
        assert!(e.contains("move"), "{e}");
    }
}
