//! Client certificates per app, with certificates made here (rcgen) and a
//! real TLS client: a valid one is accepted and names the user upstream;
//! none, an expired one, a revoked one and one from another CA are each
//! refused with a page saying why; a CRL rewritten while moat runs is
//! honoured; and a handshake for an app without client certificates is
//! not asked for one.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use moat_testkit::moat::{TEST_SERVER, toml_path};
use moat_testkit::upstream::EchoExt;
use moat_testkit::{Moat, client, upstream};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const BIN: &str = env!("CARGO_BIN_EXE_moat");

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

struct ClientCert {
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
    serial: u64,
}

fn issue(
    ca: &Ca,
    cn: &str,
    email: Option<&str>,
    serial: u64,
    valid: (SystemTime, SystemTime),
) -> ClientCert {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    if let Some(e) = email {
        params.subject_alt_names = vec![SanType::Rfc822Name(e.try_into().unwrap())];
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_before = valid.0.into();
    params.not_after = valid.1.into();
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    ClientCert {
        chain: vec![cert.der().clone()],
        key: key.serialize_der(),
        serial,
    }
}

fn crl(ca: &Ca, revoked: &[u64]) -> String {
    let now = SystemTime::now();
    let params = CertificateRevocationListParams {
        this_update: (now - Duration::from_secs(60)).into(),
        next_update: (now + Duration::from_secs(86_400)).into(),
        crl_number: SerialNumber::from(
            now.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64,
        ),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: (now - Duration::from_secs(30)).into(),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(&Issuer::from_params(&ca.params, &ca.key))
        .unwrap()
        .pem()
        .unwrap()
}

/// Presents `cert` when asked, and notes whether it was asked.
#[derive(Debug)]
struct Presents {
    key: Option<Arc<rustls::sign::CertifiedKey>>,
    asked: Arc<AtomicBool>,
}

impl rustls::client::ResolvesClientCert for Presents {
    fn resolve(
        &self,
        _: &[&[u8]],
        _: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.asked.store(true, Ordering::SeqCst);
        self.key.clone()
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// A client trusting moat's root that presents `cert` (or none) for
/// `host`, which resolves to moat. Returns it with the "was asked" flag.
fn client_for(
    moat: &Moat,
    host: &str,
    cert: Option<&ClientCert>,
) -> (reqwest::Client, Arc<AtomicBool>) {
    let provider = client::provider();
    let key = cert.map(|c| {
        let signing = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                c.key.clone(),
            )))
            .unwrap();
        Arc::new(rustls::sign::CertifiedKey::new(c.chain.clone(), signing))
    });
    let asked = Arc::new(AtomicBool::new(false));
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(client::roots(&moat.local_ca_root()))
        .with_client_cert_resolver(Arc::new(Presents {
            key,
            asked: asked.clone(),
        }));
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .resolve(host, moat.https.unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (http, asked)
}

async fn get(moat: &Moat, host: &str, cert: Option<&ClientCert>) -> (u16, String, bool) {
    let (http, asked) = client_for(moat, host, cert);
    let resp = http
        .get(format!("https://{host}:{}/who", moat.https.unwrap().port()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{host}: {e:?}"));
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    (status, body, asked.load(Ordering::SeqCst))
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test]
async fn client_certificates_per_app() {
    let up = upstream::echo("app").await;
    let files = tempfile::tempdir().unwrap();
    let trusted = ca("client CA");
    let other = ca("another CA");
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let alice = issue(
        &trusted,
        "Alice",
        Some("alice@example.test"),
        1001,
        (now - day, now + day),
    );
    let bob = issue(&trusted, "bob", None, 1002, (now - day, now + day));
    let expired = issue(&trusted, "old", None, 1003, (now - 3 * day, now - day));
    let revoked = issue(&trusted, "gone", None, 1004, (now - day, now + day));
    let stranger = issue(&other, "eve", None, 1005, (now - day, now + day));
    let ca_file = write(files.path(), "client-ca.pem", &trusted.pem);
    let crl_file = write(
        files.path(),
        "client.crl",
        &crl(&trusted, &[revoked.serial]),
    );
    let config = format!(
        "{TEST_SERVER}[tls]\nreload_interval = \"1s\"\n\
         [[apps]]\nname = \"secure\"\nhost = \"secure.localhost\"\nupstream = \"http://{up}\"\nauth = \"cert\"\n\
         [apps.client_certs]\nca = {}\ncrl = {}\n\
         [[apps]]\nname = \"plain\"\nhost = \"plain.localhost\"\nupstream = \"http://{up}\"\nauth = \"none\"\n",
        toml_path(&ca_file),
        toml_path(&crl_file),
    );
    let moat = Moat::start(BIN, &config).await;

    // A valid certificate: through, with the SAN email as the user (and
    // the common name when there is no email).
    let (status, body, asked) = get(&moat, "secure.localhost", Some(&alice)).await;
    assert_eq!(status, 200, "{body}");
    assert!(asked, "the handshake asked for a certificate");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        seen.header_values("x-moat-user"),
        ["alice@example.test"],
        "{seen:#}"
    );
    let (status, body, _) = get(&moat, "secure.localhost", Some(&bob)).await;
    assert_eq!(status, 200);
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen.header_values("x-moat-user"), ["bob"]);

    // Each refusal says what is wrong.
    for (cert, status, says) in [
        (None, 403, "needs a client certificate"),
        (Some(&expired), 403, "has expired"),
        (Some(&revoked), 403, "has been revoked"),
        (Some(&stranger), 403, "not issued by a CA this app trusts"),
    ] {
        let (got, body, _) = get(&moat, "secure.localhost", cert).await;
        assert_eq!(got, status, "{body}");
        assert!(body.contains(says), "{says}: {body}");
        assert!(
            !body.contains("x-moat-user"),
            "nothing reached the app: {body}"
        );
    }

    // An app without client certificates: the handshake does not ask.
    let (status, _, asked) = get(&moat, "plain.localhost", Some(&alice)).await;
    assert_eq!(status, 200);
    assert!(
        !asked,
        "a handshake for plain.localhost was asked for a certificate"
    );

    // Alice is revoked while moat runs: the rewritten CRL is picked up.
    std::fs::write(&crl_file, crl(&trusted, &[revoked.serial, alice.serial])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body, _) = get(&moat, "secure.localhost", Some(&alice)).await;
        if status == 403 && body.contains("revoked") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "CRL not reloaded: {status} {body}\n{}",
            moat.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(moat.logs().contains("revocation list reloaded"));
    let (status, _, _) = get(&moat, "secure.localhost", Some(&bob)).await;
    assert_eq!(status, 200, "bob is not on the new list");

    // A CRL of another CA says nothing of these certificates: refused,
    // not let through, and the admin is told why.
    std::fs::write(&crl_file, crl(&other, &[])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body, _) = get(&moat, "secure.localhost", Some(&bob)).await;
        if status == 403 && body.contains("cannot check whether") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{status} {body}\n{}",
            moat.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let logs = moat.logs();
    assert!(
        logs.contains("the CRL does not cover this certificate's issuer"),
        "{logs}"
    );
}

#[tokio::test]
async fn optional_mode_lets_a_request_without_a_certificate_reach_the_sign_in() {
    let up = upstream::echo("app").await;
    let files = tempfile::tempdir().unwrap();
    let trusted = ca("client CA");
    let ca_file = write(files.path(), "client-ca.pem", &trusted.pem);
    let config = format!(
        "{TEST_SERVER}[[apps]]\nname = \"mixed\"\npath = \"/\"\nupstream = \"http://{up}\"\nauth = \"none\"\n\
         [apps.client_certs]\nca = {}\nmode = \"optional\"\n",
        toml_path(&ca_file),
    );
    let moat = Moat::start(BIN, &config).await;
    let (status, _, asked) = get(&moat, "localhost", None).await;
    assert_eq!(status, 200);
    assert!(asked, "a host-less app asks on every handshake");
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let expired = issue(&trusted, "old", None, 7, (now - 3 * day, now - day));
    let (status, body, _) = get(&moat, "localhost", Some(&expired)).await;
    assert_eq!(status, 403, "a certificate that is presented must be valid");
    assert!(body.contains("has expired"), "{body}");
}

#[test]
fn a_ca_file_that_is_not_pem_is_a_config_error() {
    let files = tempfile::tempdir().unwrap();
    let ca_file = write(files.path(), "ca.pem", "not a certificate");
    let config = write(
        files.path(),
        "moat.toml",
        &format!(
            "[[apps]]\nname = \"x\"\nupstream = \"http://127.0.0.1:9\"\nauth = \"cert\"\n[apps.client_certs]\nca = {}\nmode = \"sometimes\"\n",
            toml_path(&ca_file)
        ),
    );
    let out = moat_testkit::cli::run(BIN, &["config", "check", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("apps[0].client_certs.ca"), "{err}");
    assert!(err.contains("is not a PEM file of certificates"), "{err}");
    assert!(err.contains("apps[0].client_certs.mode"), "{err}");
}
