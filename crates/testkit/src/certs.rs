//! Test certificates for chosen names, written as PEM files.

use std::path::{Path, PathBuf};

pub struct TestCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: Vec<u8>,
}

/// A self-signed certificate for `names`, written to `dir/STEM.crt` and
/// `dir/STEM.key`.
pub fn write(dir: &Path, stem: &str, names: &[&str]) -> TestCert {
    write_valid_until(dir, stem, names, None)
}

/// [`write`], expiring at `not_after` when given.
pub fn write_valid_until(
    dir: &Path,
    stem: &str,
    names: &[&str],
    not_after: Option<std::time::SystemTime>,
) -> TestCert {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    if let Some(t) = not_after {
        params.not_before =
            (std::time::SystemTime::now() - std::time::Duration::from_secs(3600)).into();
        params.not_after = t.into();
    }
    let cert = params.self_signed(&key).unwrap();
    let tc = TestCert {
        cert: dir.join(format!("{stem}.crt")),
        key: dir.join(format!("{stem}.key")),
        der: cert.der().to_vec(),
    };
    std::fs::write(&tc.cert, cert.pem()).unwrap();
    std::fs::write(&tc.key, key.serialize_pem()).unwrap();
    tc
}

/// A CA made for one test server (named `ca_name`) and a certificate it
/// signed for `localhost` and `127.0.0.1`: written to `dir` as
/// `STEM-ca.pem`, `cert.pem` and `key.pem`. Returns the CA's path, which
/// the client under test is pointed at.
pub fn server_with_ca(dir: &Path, stem: &str, ca_name: &str) -> PathBuf {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let ca = dir.join(format!("{stem}-ca.pem"));
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    ca
}
