//! moat's local CA as a user meets it: the served chain verifies against
//! the root `moat ca export` writes, Mozilla-profile scans (sslyze) pass
//! on the certificate as issued, an old self-signed pair moves to the CA
//! at start, `moat status` lists the certificate, and `moat ca` explains
//! itself when there is nothing to show or it cannot install.

use std::sync::Arc;

use moat_testkit::moat::TEST_SERVER;
use moat_testkit::{Moat, cli, client};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_moat");

fn data_dir_args(moat: &Moat) -> Vec<String> {
    vec![
        "--data-dir".to_owned(),
        moat.data_dir().display().to_string(),
    ]
}

/// sslyze's verdict against one of Mozilla's configurations, trusting
/// `root` for path validation.
fn sslyze(moat: &Moat, profile: &str, root: &std::path::Path) -> String {
    let out = std::process::Command::new("python3")
        .args(["-m", "sslyze", &format!("--mozilla_config={profile}")])
        .arg(format!("--certinfo_ca_file={}", root.display()))
        .arg(format!("localhost:{}", moat.https.unwrap().port()))
        .output()
        .expect("python3 runs (scripts/test installs sslyze)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("COMPLIANCE AGAINST"),
        "sslyze did not run (scripts/test installs it): {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test]
async fn served_chain_verifies_against_the_exported_root_and_passes_mozilla_scans() {
    let moat = Moat::start(BIN, TEST_SERVER).await;
    let exported = moat.data_dir().join("../exported-root.pem");
    let mut args = vec!["ca", "export", "--out", exported.to_str().unwrap()];
    let dirs = data_dir_args(&moat);
    args.extend(dirs.iter().map(String::as_str));
    let out = cli::run(BIN, &args);
    assert!(out.status.success(), "{}", cli::show(&out));

    // `moat ca show` prints the root's path and the fingerprint of what
    // was exported.
    let root = CertificateDer::from_pem_file(&exported).unwrap();
    let mut args = vec!["ca", "show"];
    args.extend(dirs.iter().map(String::as_str));
    let show = cli::run(BIN, &args);
    let text = String::from_utf8_lossy(&show.stdout).into_owned();
    let fingerprint: Vec<String> = Sha256::digest(&root)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert!(text.contains(&fingerprint.join(":")), "{text}");
    assert!(text.contains("tls/ca/root.crt"), "{text}");
    assert!(
        text.contains("issues for: localhost, test, internal"),
        "{text}"
    );

    // A client trusting only the exported root accepts the served chain,
    // by name and by loopback address.
    for sni in ["localhost", "127.0.0.1"] {
        let tls = client::tls_config(&exported, &[b"http/1.1"]);
        let s = client::connect_tls(moat.https.unwrap(), Arc::new(tls), sni)
            .await
            .unwrap_or_else(|e| panic!("{sni}: {e}"));
        let chain = s.get_ref().1.peer_certificates().unwrap();
        assert_eq!(chain.len(), 1, "the leaf alone; clients hold the root");
    }

    // The certificate as issued passes Mozilla's intermediate profile
    // (lifespan, key, path validation against the root) untouched.
    let report = sslyze(&moat, "intermediate", &exported);
    assert!(
        report.contains(&format!(
            "localhost:{}: OK - Compliant",
            moat.https.unwrap().port()
        )),
        "{report}"
    );
    // Public trust stores do not know a private root; the supplied one is
    // the store that matters.
    assert!(
        report.contains("Supplied CA file CA Store (N/A):   OK - Certificate is trusted"),
        "{report}"
    );
}

#[tokio::test]
async fn modern_profile_passes_with_tls13_only() {
    let moat = Moat::start(BIN, &format!("{TEST_SERVER}[tls]\nmin_version = \"1.3\"\n")).await;
    let report = sslyze(&moat, "modern", &moat.local_ca_root());
    assert!(
        report.contains(&format!(
            "localhost:{}: OK - Compliant",
            moat.https.unwrap().port()
        )),
        "{report}"
    );
}

#[tokio::test]
async fn an_old_self_signed_pair_moves_to_the_local_ca_and_status_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("data/tls");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::write(tls.join("self-signed.crt"), "old certificate").unwrap();
    std::fs::write(tls.join("self-signed.key"), "old key").unwrap();
    let moat = Moat::start_in(BIN, TEST_SERVER, dir).await;
    assert!(!tls.join("self-signed.crt").exists());
    assert!(!tls.join("self-signed.key").exists());
    let logs = moat.logs();
    assert_eq!(
        logs.matches("replaced the old self-signed certificate")
            .count(),
        1,
        "{logs}"
    );

    let status = cli::json(&cli::against(BIN, &moat, &["status", "--json"]));
    let certs = status["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1, "{status:#}");
    let c = &certs[0];
    assert_eq!(c["source"], "local CA");
    assert_eq!(
        c["names"],
        serde_json::json!(["localhost", "127.0.0.1", "::1"])
    );
    assert!(c["issuer"].as_str().unwrap().contains("moat local CA"));
    assert!(c["next_renewal"].as_str().unwrap() < c["not_after"].as_str().unwrap());
    assert_eq!(
        c["expires_soon"], false,
        "renewed on time, so not a warning"
    );
    let table = String::from_utf8_lossy(&cli::against(BIN, &moat, &["status"]).stdout).into_owned();
    assert!(table.contains("localhost, 127.0.0.1, ::1"), "{table}");
    assert!(table.contains("local CA"), "{table}");
    assert!(!logs.contains("expires within 14 days"), "{logs}");
}

#[test]
fn ca_commands_explain_what_they_cannot_do() {
    let empty = tempfile::tempdir().unwrap();
    let out = cli::run(
        BIN,
        &["ca", "show", "--data-dir", empty.path().to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("there is no local CA in"), "{err}");
    assert!(err.contains("moat serve"), "{err}");

    // With a CA (made as moat serve makes it), --print gives the exact
    // commands and installs nothing.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("tls/ca");
    moat_proxy::tls::local_ca::LocalCa::load_or_create(
        dir.path(),
        &[],
        std::time::SystemTime::now(),
    )
    .unwrap();
    let out = cli::run(
        BIN,
        &[
            "ca",
            "trust",
            "--print",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", cli::show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let root = ca.join("root.crt");
    assert!(
        text.contains(&format!(
            "cp {} /usr/local/share/ca-certificates/moat-local-ca.crt",
            root.display()
        )),
        "{text}"
    );
    assert!(text.contains("update-ca-certificates"), "{text}");
    assert!(text.contains("certutil -d sql:$HOME/.pki/nssdb"), "{text}");

    // A root swapped for one without name constraints is not installed.
    let other = moat_testkit::certs::write(dir.path(), "other", &["localhost"]);
    std::fs::copy(&other.cert, &root).unwrap();
    let out = cli::run(
        BIN,
        &[
            "ca",
            "trust",
            "--print",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not moat's local CA root"), "{err}");

    // A root that is not a certificate is refused before anything is done.
    std::fs::write(&root, "not pem").unwrap();
    let out = cli::run(
        BIN,
        &["ca", "trust", "--data-dir", dir.path().to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a PEM certificate"),
        "{}",
        cli::show(&out)
    );
}

#[tokio::test]
async fn status_shows_an_acme_certificate_that_could_not_be_obtained() {
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[tls.acme]]\ndomains = [\"shop.example.com\"]\ndirectory = \"https://127.0.0.1:1/directory\"\n"
        ),
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let acme = loop {
        let status = cli::json(&cli::against(BIN, &moat, &["status", "--json"]));
        let acme = status["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["source"] == "acme")
            .cloned()
            .expect("the ACME certificate is listed before it exists");
        if !acme["error"].is_null() {
            break acme;
        }
        assert!(std::time::Instant::now() < deadline, "{status:#}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(acme["names"], serde_json::json!(["shop.example.com"]));
    assert!(acme["not_after"].is_null());
    assert_eq!(acme["directory"], "https://127.0.0.1:1/directory");
    assert!(
        acme["error"].as_str().unwrap().contains("reachable"),
        "{acme:#}"
    );
    let table = String::from_utf8_lossy(&cli::against(BIN, &moat, &["status"]).stdout).into_owned();
    assert!(table.contains("(not obtained yet)"), "{table}");
    assert!(
        table.contains("certificate for shop.example.com:"),
        "{table}"
    );
    // The log says what failed and when it is tried again.
    let logs = moat.logs();
    assert!(
        logs.contains("could not obtain a certificate over ACME"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_file_certificate_near_expiry_is_a_warning_in_the_log_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(10 * 86_400);
    let cert =
        moat_testkit::certs::write_valid_until(dir.path(), "site", &["localhost"], Some(soon));
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[tls.certificates]]\ncert = {}\nkey = {}\n",
            moat_testkit::moat::toml_path(&cert.cert),
            moat_testkit::moat::toml_path(&cert.key)
        ),
    )
    .await;
    let status = cli::json(&cli::against(BIN, &moat, &["status", "--json"]));
    let certs = status["certificates"].as_array().unwrap();
    assert_eq!(
        certs.len(),
        1,
        "no local CA when a file is configured: {status:#}"
    );
    assert_eq!(certs[0]["source"], "file");
    assert_eq!(certs[0]["expires_soon"], true);
    assert!(
        certs[0]["next_renewal"].is_null(),
        "moat does not renew files"
    );
    let table = String::from_utf8_lossy(&cli::against(BIN, &moat, &["status"]).stdout).into_owned();
    assert!(table.contains("(expires soon)"), "{table}");
    let logs = moat.wait_stderr("expires within 14 days").await;
    assert!(logs.contains("days_left"), "{logs}");
}
