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
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
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
