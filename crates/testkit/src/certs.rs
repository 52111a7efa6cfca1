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
