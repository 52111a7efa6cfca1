//! TLS on real sockets: versions, cipher suites and groups accepted and
//! refused, SNI certificate choice, hot reload, session resumption.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_testkit::moat::{TEST_SERVER, toml_path};
use moat_testkit::{Moat, certs, client, upstream};
use rustls::crypto::ring::{cipher_suite, default_provider, kx_group};
use rustls::version::{TLS12, TLS13};
use tokio_rustls::client::TlsStream;

const BIN: &str = env!("CARGO_BIN_EXE_moat");

type Stream = TlsStream<tokio::net::TcpStream>;

async fn connect(
    addr: SocketAddr,
    config: rustls::ClientConfig,
    sni: &str,
) -> std::io::Result<Stream> {
    client::connect_tls(addr, Arc::new(config), sni).await
}

/// Connects until moat presents `der`, for up to ten seconds.
async fn wait_for_certificate(moat: &Moat, sni: &str, der: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cfg = client::any_cert_config(default_provider(), &[&TLS13]);
        if leaf(&connect(moat.https.unwrap(), cfg, sni).await.unwrap()) == der {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "certificate not picked up:\n{}",
            moat.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One keep-alive request on an open connection (for the login page, which
/// needs no sign-in); returns the status line.
async fn request(s: &mut Stream) -> String {
    client::login_page_status(s, "localhost").await
}

fn with_suites(suites: Vec<rustls::SupportedCipherSuite>) -> rustls::crypto::CryptoProvider {
    rustls::crypto::CryptoProvider {
        cipher_suites: suites,
        ..default_provider()
    }
}

fn leaf(s: &Stream) -> Vec<u8> {
    s.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

async fn welcome(extra: &str) -> Moat {
    Moat::start(BIN, &format!("{TEST_SERVER}{extra}")).await
}

#[tokio::test]
async fn tls12_and_tls13_accepted_by_default() {
    let moat = welcome("").await;
    let addr = moat.https.unwrap();
    for (version, expected) in [
        (&TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&TLS12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let mut s = connect(
            addr,
            client::any_cert_config(default_provider(), &[version]),
            "localhost",
        )
        .await
        .unwrap();
        assert_eq!(s.get_ref().1.protocol_version(), Some(expected));
        assert_eq!(request(&mut s).await, "HTTP/1.1 200 OK");
    }
}

#[tokio::test]
async fn tls13_only_refuses_tls12() {
    let moat = welcome("[tls]\nmin_version = \"1.3\"\n").await;
    let addr = moat.https.unwrap();
    assert!(
        connect(
            addr,
            client::any_cert_config(default_provider(), &[&TLS12]),
            "localhost"
        )
        .await
        .is_err()
    );
    let mut s = connect(
        addr,
        client::any_cert_config(default_provider(), &[&TLS13]),
        "localhost",
    )
    .await
    .unwrap();
    assert_eq!(request(&mut s).await, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn configured_cipher_suites_and_groups() {
    let moat = welcome(
        "[tls]\ncipher_suites = [\"TLS_AES_256_GCM_SHA384\", \"ECDHE-ECDSA-CHACHA20-POLY1305\"]\nkx_groups = [\"secp384r1\"]\n",
    )
    .await;
    let addr = moat.https.unwrap();
    // A TLS 1.3 suite that is not configured is refused...
    let only_aes128 = with_suites(vec![cipher_suite::TLS13_AES_128_GCM_SHA256]);
    assert!(
        connect(
            addr,
            client::any_cert_config(only_aes128, &[&TLS13]),
            "localhost"
        )
        .await
        .is_err()
    );
    // ...a configured one is used.
    let s = connect(
        addr,
        client::any_cert_config(default_provider(), &[&TLS13]),
        "localhost",
    )
    .await
    .unwrap();
    assert_eq!(
        s.get_ref().1.negotiated_cipher_suite().unwrap().suite(),
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
    );
    // TLS 1.2 with an unconfigured suite fails, with the configured one works.
    let aes12 = with_suites(vec![cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]);
    assert!(
        connect(addr, client::any_cert_config(aes12, &[&TLS12]), "localhost")
            .await
            .is_err()
    );
    let chacha12 = with_suites(vec![
        cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ]);
    let s = connect(
        addr,
        client::any_cert_config(chacha12, &[&TLS12]),
        "localhost",
    )
    .await
    .unwrap();
    assert_eq!(
        s.get_ref().1.negotiated_cipher_suite().unwrap().suite(),
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
    );
    // Key exchange: only secp384r1 is offered by moat.
    let x25519_only = rustls::crypto::CryptoProvider {
        kx_groups: vec![kx_group::X25519],
        ..default_provider()
    };
    assert!(
        connect(
            addr,
            client::any_cert_config(x25519_only, &[&TLS13]),
            "localhost"
        )
        .await
        .is_err()
    );
    let p384 = rustls::crypto::CryptoProvider {
        kx_groups: vec![kx_group::SECP384R1],
        ..default_provider()
    };
    assert!(
        connect(addr, client::any_cert_config(p384, &[&TLS13]), "localhost")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn sni_chooses_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let a = certs::write(dir.path(), "a", &["a.test", "www.a.test"]);
    let b = certs::write(dir.path(), "b", &["*.b.test"]);
    let moat = welcome(&format!(
        "[[tls.certificates]]\ncert = {}\nkey = {}\n[[tls.certificates]]\ncert = {}\nkey = {}\n",
        toml_path(&a.cert),
        toml_path(&a.key),
        toml_path(&b.cert),
        toml_path(&b.key)
    ))
    .await;
    let addr = moat.https.unwrap();
    let cfg = || client::any_cert_config(default_provider(), &[&TLS13]);
    assert_eq!(
        leaf(&connect(addr, cfg(), "www.a.test").await.unwrap()),
        a.der
    );
    assert_eq!(
        leaf(&connect(addr, cfg(), "app.b.test").await.unwrap()),
        b.der
    );
    // Unknown names and clients without SNI get the first certificate.
    assert_eq!(
        leaf(&connect(addr, cfg(), "other.test").await.unwrap()),
        a.der
    );
    assert_eq!(
        leaf(&connect(addr, cfg(), "127.0.0.1").await.unwrap()),
        a.der
    );
    // A client that verifies the certificate properly also succeeds.
    let mut strict = client::tls_config(&b.cert, &[b"http/1.1"]);
    strict.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut s = connect(addr, strict, "x.b.test").await.unwrap();
    assert_eq!(request(&mut s).await, "HTTP/1.1 200 OK");
}

/// A moat serving one certificate for site.test from files in a temp folder.
async fn site_moat(reload_interval: &str) -> (Moat, tempfile::TempDir, certs::TestCert) {
    let dir = tempfile::tempdir().unwrap();
    let cert = certs::write(dir.path(), "site", &["site.test"]);
    let moat = welcome(&format!(
        "[tls]\nreload_interval = \"{reload_interval}\"\n[[tls.certificates]]\ncert = {}\nkey = {}\n",
        toml_path(&cert.cert),
        toml_path(&cert.key)
    ))
    .await;
    (moat, dir, cert)
}

#[tokio::test]
async fn certificate_files_reload_without_dropping_connections() {
    let (moat, dir, first) = site_moat("100ms").await;
    let addr = moat.https.unwrap();
    let cfg = || client::any_cert_config(default_provider(), &[&TLS13]);
    let mut old = connect(addr, cfg(), "site.test").await.unwrap();
    assert_eq!(leaf(&old), first.der);
    assert_eq!(request(&mut old).await, "HTTP/1.1 200 OK");

    // Replace the files the way certbot-style tools do: write new ones
    // beside, then rename over.
    let staged = tempfile::tempdir_in(dir.path()).unwrap();
    let second = certs::write(staged.path(), "site", &["site.test"]);
    std::fs::rename(&second.key, &first.key).unwrap();
    std::fs::rename(&second.cert, &first.cert).unwrap();
    wait_for_certificate(&moat, "site.test", &second.der).await;
    moat.wait_stderr("certificate files changed; reloaded")
        .await;
    // The connection made before the reload still works.
    assert_eq!(request(&mut old).await, "HTTP/1.1 200 OK");
    assert_eq!(leaf(&old), first.der);
}

#[tokio::test]
async fn sighup_reloads_certificates_and_keeps_old_on_bad_files() {
    let (moat, dir, first) = site_moat("0s").await;
    let addr = moat.https.unwrap();
    let cfg = || client::any_cert_config(default_provider(), &[&TLS13]);
    // A key that does not match the certificate: refused, old pair stays.
    let other = certs::write(dir.path(), "other", &["site.test"]);
    std::fs::copy(&other.key, &first.key).unwrap();
    moat.signal(libc::SIGHUP);
    moat.wait_stderr("reload refused").await;
    assert_eq!(
        leaf(&connect(addr, cfg(), "site.test").await.unwrap()),
        first.der
    );
    // The matching certificate arrives: SIGHUP picks the pair up.
    std::fs::copy(&other.cert, &first.cert).unwrap();
    moat.signal(libc::SIGHUP);
    wait_for_certificate(&moat, "site.test", &other.der).await;
}

#[tokio::test]
async fn sessions_resume() {
    let moat = welcome("").await;
    let addr = moat.https.unwrap();
    for version in [&TLS13, &TLS12] {
        // One client config, so one client-side session cache.
        let cfg = Arc::new(client::any_cert_config(default_provider(), &[version]));
        let mut first = client::connect_tls(addr, cfg.clone(), "localhost")
            .await
            .unwrap();
        assert_eq!(
            first.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Full)
        );
        // TLS 1.3 tickets arrive after the handshake; a request reads them.
        assert_eq!(request(&mut first).await, "HTTP/1.1 200 OK");
        let second = client::connect_tls(addr, cfg, "localhost").await.unwrap();
        assert_eq!(
            second.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed),
            "{version:?}"
        );
    }
}

#[tokio::test]
async fn http_redirects_to_https() {
    let a = upstream::echo("a").await;
    let moat = Moat::start(
        BIN,
        &format!("{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{a}\"\n"),
    )
    .await;
    let resp = client::plain()
        .post(moat.http_url("/path?q=1"))
        .header("host", "example.com:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 308);
    let port = moat.https.unwrap().port();
    assert_eq!(
        resp.headers()["location"],
        format!("https://example.com:{port}/path?q=1")
    );
    assert!(
        resp.headers().get("strict-transport-security").is_none(),
        "no HSTS over plain HTTP"
    );
    // The HTTPS side carries HSTS.
    let resp = client::http1(&moat.local_ca_root())
        .get(moat.https_url("/_moat/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

#[tokio::test]
async fn hsts_settings_and_plain_http_mode() {
    let moat =
        welcome("[tls.hsts]\nmax_age = \"730d\"\ninclude_subdomains = true\npreload = true\n")
            .await;
    let resp = client::http1(&moat.local_ca_root())
        .get(moat.https_url("/_moat/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains; preload"
    );
    // TLS off: the HTTP listener serves the apps, with no HSTS.
    let moat = welcome("[tls]\nenabled = false\n").await;
    assert!(moat.https.is_none());
    let resp = client::plain()
        .get(moat.http_url("/_moat/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("strict-transport-security").is_none());
    moat.wait_stderr("TLS is disabled").await;
}
