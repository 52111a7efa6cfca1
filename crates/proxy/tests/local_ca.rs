//! The local CA's leaf on a real HTTPS listener, with the gateway's clock
//! set by the test: a client that trusts only the root accepts it, it is
//! renewed once two thirds of its lifetime have passed, and a connection
//! opened before the renewal keeps working after it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use moat_proxy::Gateway;
use moat_proxy::admin_password::AdminPassword;
use moat_proxy::clock::FixedClock;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

mod support;
use support::{ms, no_admin};

/// A TLS connection that trusts only `root` (PEM), verified at the real
/// time.
async fn connect(addr: std::net::SocketAddr, root: &str, sni: &str) -> TlsStream<TcpStream> {
    moat_testkit::client::connect_trusting(addr, root, sni)
        .await
        .unwrap_or_else(|e| panic!("TLS to {sni}: {e}"))
}

fn leaf(s: &TlsStream<TcpStream>) -> Vec<u8> {
    s.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

async fn request(s: &mut TlsStream<TcpStream>) -> String {
    moat_testkit::client::login_page_status(s, "localhost").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_is_trusted_through_the_root_and_renewed_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let toml = "[server]\nhttps = \"127.0.0.1:0\"\nhttp = \"\"\nworkers = 1\n\
                [tls]\nreload_interval = \"0s\"\n[tls.local_ca]\nleaf_lifetime = \"3d\"\n\
                [[apps]]\nname = \"notes\"\nhost = \"notes.home.arpa\"\npath = \"/\"\nauth = \"none\"\nupstream = \"http://127.0.0.1:9\"\n";
    let config = moat_config::load_str(toml, None).unwrap();
    // The gateway's day starts 2.5 days ago, so the leaf it issues is
    // still valid now for a client on the real clock, and due for renewal
    // once the gateway's clock catches up.
    let real_now = SystemTime::now();
    let clock = Arc::new(FixedClock::at_ms(ms(
        real_now - Duration::from_secs(60 * 3600)
    )));
    let gateway = Gateway::start_with_clock(
        config,
        dir.path().to_owned(),
        AdminPassword::from_hash(String::new()),
        no_admin(),
        clock.clone(),
    )
    .await
    .unwrap();
    let addr = gateway.https_addr.unwrap();
    let root = std::fs::read_to_string(dir.path().join("tls/ca/root.crt")).unwrap();

    // Every name the leaf is for verifies against the root alone (an IP
    // address is checked against the leaf, whichever address the TCP
    // connection went to).
    let mut old = connect(addr, &root, "localhost").await;
    for name in ["127.0.0.1", "::1", "notes.home.arpa"] {
        let s = connect(addr, &root, name).await;
        assert_eq!(leaf(&s), leaf(&old), "{name}");
    }
    assert!(request(&mut old).await.starts_with("HTTP/1.1 200"));
    let first = gateway.control().certificates();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].source, moat_proxy::tls::Source::LocalCa);
    assert_eq!(
        first[0].facts.as_ref().unwrap().not_after - first[0].facts.as_ref().unwrap().not_before,
        3 * 86_400 + 60
    );
    assert!(
        first[0]
            .facts
            .as_ref()
            .unwrap()
            .names
            .contains(&"notes.home.arpa".to_owned())
    );

    // Not due yet: nothing changes.
    assert!(!gateway.reload_certificates().unwrap());
    // Two thirds of three days have passed on the gateway's clock.
    clock.set_ms(ms(real_now));
    assert!(gateway.reload_certificates().unwrap());
    let renewed = gateway.control().certificates();
    assert_ne!(
        renewed[0].facts.as_ref().unwrap().sha256,
        first[0].facts.as_ref().unwrap().sha256
    );
    assert!(renewed[0].next_renewal.unwrap() > first[0].next_renewal.unwrap());

    let new = connect(addr, &root, "localhost").await;
    assert_ne!(leaf(&new), leaf(&old), "new handshakes get the new leaf");
    // The connection opened before the renewal keeps its certificate and
    // keeps serving.
    assert!(request(&mut old).await.starts_with("HTTP/1.1 200"));
    gateway.shutdown().await;
}
