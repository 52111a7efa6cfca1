//! ACME against Pebble (the RFC 8555 test CA), on real sockets: moat
//! obtains a certificate through http-01, tls-alpn-01 and dns-01 (a
//! wildcard, through a hook), serves it to a client that trusts only
//! Pebble's root, renews it when the gateway's clock reaches the renewal
//! time (open connections keep theirs), keeps serving it while Pebble is
//! down (the error and the next attempt in the status) and recovers when
//! it is back; sends external account binding; orders on demand only what
//! the ask URL approves; and reports a refused challenge, an unreachable
//! directory and a directory that is not ACME, each with the local CA's
//! certificate still serving.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moat_proxy::Gateway;
use moat_proxy::admin_password::AdminPassword;
use moat_proxy::clock::FixedClock;
use moat_proxy::tls::{CertificateStatus, Source};
use moat_testkit::pebble::Pebble;
use moat_testkit::{client, free_port};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

mod support;
use support::{leaf_sha, ms, no_admin};

struct Setup {
    gateway: Gateway,
    clock: Arc<FixedClock>,
    _dir: tempfile::TempDir,
}

async fn start(toml: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config = moat_config::load_str(toml, None).unwrap();
    let clock = Arc::new(FixedClock::at_ms(ms(SystemTime::now())));
    let gateway = Gateway::start_with_clock(
        config,
        dir.path().to_owned(),
        AdminPassword::from_hash(String::new()),
        no_admin(),
        clock.clone(),
    )
    .await
    .unwrap();
    Setup {
        gateway,
        clock,
        _dir: dir,
    }
}

fn acme_status(g: &Gateway) -> CertificateStatus {
    g.control()
        .certificates()
        .into_iter()
        .find(|c| matches!(c.source, Source::Acme { .. }))
        .expect("an ACME certificate in the status")
}

/// Waits until the ACME certificate's status satisfies `done`.
async fn wait_status(
    g: &Gateway,
    what: &str,
    pebble: &Pebble,
    done: impl Fn(&CertificateStatus) -> bool,
) -> CertificateStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = acme_status(g);
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {s:#?}\npebble:\n{}",
            pebble.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn connect(addr: std::net::SocketAddr, root_pem: &str, sni: &str) -> TlsStream<TcpStream> {
    client::connect_trusting(addr, root_pem, sni)
        .await
        .unwrap_or_else(|e| panic!("TLS to {sni} trusting Pebble's root: {e}"))
}

async fn login_page(s: &mut TlsStream<TcpStream>, host: &str) -> String {
    client::login_page_status(s, host).await
}

fn sha(s: &CertificateStatus) -> Option<String> {
    s.facts.as_ref().map(|f| f.sha256.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_obtains_renews_and_keeps_serving_while_the_ca_is_down() {
    let (https, http) = (free_port(), free_port());
    let mut pebble = Pebble::start(http, https, 86_400).await;
    let toml = format!(
        "[server]\nhttps = \"127.0.0.1:{https}\"\nhttp = \"127.0.0.1:{http}\"\nworkers = 1\n\
         [tls]\nreload_interval = \"0s\"\n\
         [[tls.acme]]\ndomains = [\"shop.example.test\", \"www.shop.example.test\"]\n\
         directory = \"{}\"\ndirectory_ca = \"{}\"\nemail = \"ops@example.test\"\n",
        pebble.directory(),
        pebble.directory_ca.display()
    );
    let s = start(&toml).await;
    let g = &s.gateway;
    let first = wait_status(g, "obtained", &pebble, |c| c.facts.is_some()).await;
    assert_eq!(first.error, None);
    let facts = first.facts.clone().unwrap();
    assert!(facts.issuer.contains("Pebble"), "{facts:?}");
    assert_eq!(facts.not_after - facts.not_before, 86_400 - 1, "{facts:?}");
    let renew_at = first.next_renewal.unwrap();
    let spread = 86_400 / 20 + 1;
    let two_thirds = moat_policy::renewal::two_thirds(facts.not_before, facts.not_after);
    assert!((renew_at - two_thirds).abs() <= spread, "{first:#?}");

    // A client that trusts only Pebble's root accepts it for both names;
    // it is on disk for the next start.
    let root = pebble.root_pem().await;
    let mut old = connect(g.https_addr.unwrap(), &root, "shop.example.test").await;
    assert_eq!(Some(leaf_sha(&old)), sha(&first));
    let www = connect(g.https_addr.unwrap(), &root, "www.shop.example.test").await;
    assert_eq!(Some(leaf_sha(&www)), sha(&first));
    assert!(
        login_page(&mut old, "shop.example.test")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let stored = std::fs::read_dir(g.data_dir().join("tls/acme"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("shop.example.test/cert.pem"))
        .find(|p| p.exists())
        .expect("the certificate is stored");
    assert!(
        std::fs::read_to_string(stored)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    // Nothing else changed: the local CA still serves names ACME does not.
    assert!(
        g.control()
            .certificates()
            .iter()
            .any(|c| c.source == Source::LocalCa)
    );

    // The gateway's clock reaches the renewal time: a new certificate, and
    // the connection opened before keeps working.
    s.clock.set_ms(renew_at * 1000);
    g.reload_certificates().unwrap();
    let renewed = wait_status(g, "renewed", &pebble, |c| sha(c) != sha(&first)).await;
    s.clock.set_ms(ms(SystemTime::now()));
    assert_eq!(renewed.error, None);
    let new = connect(g.https_addr.unwrap(), &root, "shop.example.test").await;
    assert_eq!(Some(leaf_sha(&new)), sha(&renewed));
    assert!(
        login_page(&mut old, "shop.example.test")
            .await
            .starts_with("HTTP/1.1 200")
    );

    // Pebble is down when the next renewal is due: the error and the next
    // attempt show, and the certificate keeps serving.
    pebble.stop();
    let due = renewed.next_renewal.unwrap();
    s.clock.set_ms(due * 1000);
    g.reload_certificates().unwrap();
    let failed = wait_status(g, "failure reported", &pebble, |c| c.error.is_some()).await;
    s.clock.set_ms(ms(SystemTime::now()));
    assert_eq!(sha(&failed), sha(&renewed), "the old certificate stays");
    let error = failed.error.clone().unwrap();
    assert!(error.contains("reachable"), "{error}");
    assert_eq!(
        failed.next_renewal,
        Some(due + 60),
        "retried after a minute"
    );
    let still = connect(g.https_addr.unwrap(), &root, "shop.example.test").await;
    assert_eq!(Some(leaf_sha(&still)), sha(&renewed));

    // Pebble is back (with a new root, and no memory of moat's account):
    // the retry registers again and renews.
    pebble.restart().await;
    s.clock.set_ms((due + 60) * 1000);
    g.reload_certificates().unwrap();
    let recovered = wait_status(g, "recovered", &pebble, |c| {
        c.error.is_none() && sha(c) != sha(&renewed)
    })
    .await;
    s.clock.set_ms(ms(SystemTime::now()));
    let root = pebble.root_pem().await;
    let after = connect(g.https_addr.unwrap(), &root, "shop.example.test").await;
    assert_eq!(Some(leaf_sha(&after)), sha(&recovered));
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_obtains_and_renews_an_app_hosts_certificate_on_the_https_listener_alone() {
    let https = free_port();
    // No HTTP listener: only the TLS-ALPN answer can prove the name. The
    // name is an app's host (acme_for_app_hosts), not a [[tls.acme]] entry,
    // and not under .test (hosts no public CA validates are left to the
    // local CA); Pebble's mock DNS answers any name.
    let pebble = Pebble::start(free_port(), https, 86_400).await;
    let toml = format!(
        "[server]\nhttps = \"127.0.0.1:{https}\"\nhttp = \"\"\nworkers = 1\n\
         [tls]\nreload_interval = \"0s\"\nredirect_http = false\nacme_for_app_hosts = true\n\
         [tls.acme_defaults]\nchallenge = \"tls-alpn-01\"\n\
         directory = \"{}\"\ndirectory_ca = \"{}\"\n\
         [[apps]]\nname = \"shop\"\nhost = \"alpn.example.com\"\nupstream = \"http://127.0.0.1:9\"\n",
        pebble.directory(),
        pebble.directory_ca.display()
    );
    let s = start(&toml).await;
    let got = wait_status(&s.gateway, "obtained", &pebble, |c| c.facts.is_some()).await;
    assert_eq!(got.error, None);
    assert_eq!(got.names, ["alpn.example.com"]);
    let root = pebble.root_pem().await;
    let mut c = connect(s.gateway.https_addr.unwrap(), &root, "alpn.example.com").await;
    assert_eq!(Some(leaf_sha(&c)), sha(&got));
    assert!(
        login_page(&mut c, "alpn.example.com")
            .await
            .starts_with("HTTP/1.1 200")
    );
    // The challenge answer is gone once the order is done: a handshake
    // offering only acme-tls/1 now fails instead of getting it.
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let tcp = TcpStream::connect(s.gateway.https_addr.unwrap())
        .await
        .unwrap();
    let r = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("alpn.example.com").unwrap(), tcp)
        .await;
    assert!(r.is_err());

    // Renewed through the same challenge when the clock reaches the time.
    s.clock.set_ms(got.next_renewal.unwrap() * 1000);
    s.gateway.reload_certificates().unwrap();
    let renewed = wait_status(&s.gateway, "renewed", &pebble, |c| sha(c) != sha(&got)).await;
    s.clock.set_ms(ms(SystemTime::now()));
    assert_eq!(renewed.error, None);
    let c = connect(s.gateway.https_addr.unwrap(), &root, "alpn.example.com").await;
    assert_eq!(Some(leaf_sha(&c)), sha(&renewed));
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_unreachable_and_malformed_cas_are_reported_and_nothing_breaks() {
    let (https, http) = (free_port(), free_port());
    // Pebble validates http-01 on a port where nothing listens.
    let pebble = Pebble::start(free_port(), https, 86_400).await;
    let toml = format!(
        "[server]\nhttps = \"127.0.0.1:{https}\"\nhttp = \"127.0.0.1:{http}\"\nworkers = 1\n\
         [tls]\nreload_interval = \"0s\"\n\
         [[tls.acme]]\ndomains = [\"refused.example.test\"]\ndirectory = \"{dir}\"\ndirectory_ca = \"{ca}\"\n\
         [[tls.acme]]\ndomains = [\"down.example.test\"]\ndirectory = \"https://127.0.0.1:1/dir\"\ndirectory_ca = \"{ca}\"\n\
         [[tls.acme]]\ndomains = [\"html.example.test\"]\ndirectory = \"https://{mgmt}/roots/0\"\ndirectory_ca = \"{ca}\"\n",
        dir = pebble.directory(),
        ca = pebble.directory_ca.display(),
        mgmt = pebble.management,
    );
    let s = start(&toml).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let errors = loop {
        let errors: Vec<(String, String)> = s
            .gateway
            .control()
            .certificates()
            .into_iter()
            .filter_map(|c| c.error.map(|e| (c.names[0].clone(), e)))
            .collect();
        if errors.len() == 3 {
            break errors;
        }
        assert!(Instant::now() < deadline, "{errors:#?}\n{}", pebble.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = |name: &str| &errors.iter().find(|(n, _)| n == name).unwrap().1;
    let refused = error("refused.example.test");
    assert!(
        refused.contains("refused the http-01 challenge"),
        "{refused}"
    );
    assert!(refused.contains("port 80"), "{refused}");
    let down = error("down.example.test");
    assert!(down.contains("reachable"), "{down}");
    let html = error("html.example.test");
    assert!(html.contains("check the directory URL"), "{html}");
    for c in s.gateway.control().certificates() {
        if matches!(c.source, Source::Acme { .. }) {
            assert!(c.facts.is_none());
        }
    }
    // The local CA's certificate serves every name meanwhile.
    let root = std::fs::read_to_string(s.gateway.data_dir().join("tls/ca/root.crt")).unwrap();
    let mut c = connect(s.gateway.https_addr.unwrap(), &root, "localhost").await;
    assert!(
        login_page(&mut c, "localhost")
            .await
            .starts_with("HTTP/1.1 200")
    );
    s.gateway.shutdown().await;
}

/// An ask endpoint approving only `allowed`, noting every name asked.
async fn ask_server(
    allowed: &'static str,
) -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                let name = head
                    .split_once("domain=")
                    .map(|(_, rest)| rest.split([' ', '&']).next().unwrap_or("").to_owned())
                    .unwrap_or_default();
                seen.lock().unwrap().push(name.clone());
                let status = if name == allowed {
                    "200 OK"
                } else {
                    "403 Forbidden"
                };
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (addr, asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_orders_only_names_the_ask_url_approves() {
    let (https, http) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, 86_400).await;
    let (ask, asked) = ask_server("allowed.example.com").await;
    let toml = format!(
        "[server]\nhttps = \"127.0.0.1:{https}\"\nhttp = \"127.0.0.1:{http}\"\nworkers = 1\n\
         [tls]\nreload_interval = \"0s\"\n\
         [tls.acme_defaults]\ndirectory = \"{}\"\ndirectory_ca = \"{}\"\n\
         [tls.on_demand]\nask = \"http://{ask}/allowed\"\n",
        pebble.directory(),
        pebble.directory_ca.display()
    );
    let s = start(&toml).await;
    let root = pebble.root_pem().await;
    // The first handshake for an approved name waits for its certificate.
    let mut c = connect(s.gateway.https_addr.unwrap(), &root, "allowed.example.com").await;
    assert!(
        login_page(&mut c, "allowed.example.com")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let got = acme_status(&s.gateway);
    assert_eq!(got.names, ["allowed.example.com"]);
    assert_eq!(Some(leaf_sha(&c)), sha(&got));

    // A refused name gets no order: the handshake gets the local CA's
    // certificate, which Pebble's root does not vouch for.
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(root.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    for _ in 0..2 {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        let tcp = TcpStream::connect(s.gateway.https_addr.unwrap())
            .await
            .unwrap();
        let r = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("denied.example.com").unwrap(), tcp)
            .await;
        assert!(r.is_err(), "no Pebble certificate for a refused name");
    }
    let names: Vec<Vec<String>> = s
        .gateway
        .control()
        .certificates()
        .into_iter()
        .map(|c| c.names)
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains(&"denied.example.com".to_owned())),
        "{names:?}"
    );
    assert!(
        !pebble.logs().contains("denied.example.com"),
        "{}",
        pebble.logs()
    );
    // Asked once per name: the refusal is remembered.
    assert_eq!(
        *asked.lock().unwrap(),
        ["allowed.example.com", "denied.example.com"]
    );
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_through_the_hook_obtains_a_wildcard() {
    let https = free_port();
    let pebble = Pebble::start(free_port(), https, 86_400).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hook.log");
    // The hook an admin would write for their DNS provider; here it sets
    // the record in Pebble's mock DNS server.
    let hook = dir.path().join("dns-hook");
    std::fs::write(
        &hook,
        format!(
            "#!/usr/bin/env python3\n\
             import json, sys, urllib.request\n\
             action, name, value = sys.argv[1:4]\n\
             body = {{'host': name, 'value': value}} if action == 'set' else {{'host': name}}\n\
             urllib.request.urlopen(urllib.request.Request('http://{}/' + ('set-txt' if action == 'set' else 'clear-txt'), data=json.dumps(body).encode(), method='POST'))\n\
             open({:?}, 'a').write(action + ' ' + name + '\\n')\n",
            pebble.dns_management,
            log.display().to_string()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let toml = format!(
        "[server]\nhttps = \"127.0.0.1:{https}\"\nhttp = \"\"\nworkers = 1\n\
         [tls]\nreload_interval = \"0s\"\nredirect_http = false\n\
         [[tls.acme]]\ndomains = [\"*.wild.example.test\", \"wild.example.test\"]\nchallenge = \"dns-01\"\n\
         dns_hook = \"{}\"\ndirectory = \"{}\"\ndirectory_ca = \"{}\"\n",
        hook.display(),
        pebble.directory(),
        pebble.directory_ca.display()
    );
    let s = start(&toml).await;
    let got = wait_status(&s.gateway, "obtained", &pebble, |c| {
        c.facts.is_some() || c.error.is_some()
    })
    .await;
    assert_eq!(got.error, None);
    let root = pebble.root_pem().await;
    for name in ["a.wild.example.test", "wild.example.test"] {
        let c = connect(s.gateway.https_addr.unwrap(), &root, name).await;
        assert_eq!(Some(leaf_sha(&c)), sha(&got), "{name}");
    }
    // Set for both authorizations, and cleared after.
    let calls = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| **l == "set _acme-challenge.wild.example.test.")
            .count(),
        2,
        "{calls}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| **l == "clear _acme-challenge.wild.example.test.")
            .count(),
        2,
        "{calls}"
    );
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_account_binding_is_sent_and_its_absence_explained() {
    let (https, http) = (free_port(), free_port());
    // 32 bytes, base64url: the form CAs hand out.
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = Pebble::start_with(http, https, 86_400, Some(("kid-1", key))).await;
    let toml = |eab: &str| {
        format!(
            "[server]\nhttps = \"127.0.0.1:{https}\"\nhttp = \"127.0.0.1:{http}\"\nworkers = 1\n\
             [tls]\nreload_interval = \"0s\"\n\
             [[tls.acme]]\ndomains = [\"eab.example.test\"]\ndirectory = \"{}\"\ndirectory_ca = \"{}\"\n{eab}",
            pebble.directory(),
            pebble.directory_ca.display()
        )
    };
    // Without the binding: a clear error naming what to set.
    let s = start(&toml("")).await;
    let failed = wait_status(&s.gateway, "refused", &pebble, |c| c.error.is_some()).await;
    let error = failed.error.unwrap();
    assert!(error.contains("eab_kid and eab_hmac_key"), "{error}");
    s.gateway.shutdown().await;
    // With it: registered and issued.
    let s = start(&toml(&format!(
        "eab_kid = \"kid-1\"\neab_hmac_key = \"{key}\"\n"
    )))
    .await;
    let got = wait_status(&s.gateway, "obtained", &pebble, |c| {
        c.facts.is_some() || c.error.is_some()
    })
    .await;
    assert_eq!(got.error, None);
    s.gateway.shutdown().await;
}
