//! Protective limits and lifecycle on real sockets: 414, 431, 413, the
//! connection cap, slow clients, graceful drain, SIGHUP reload.

use std::time::Duration;

use moat_testkit::moat::TEST_SERVER;
use moat_testkit::{Moat, client, upstream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_moat");

async fn echo_moat(extra: &str) -> Moat {
    let a = upstream::echo("a").await;
    Moat::start(BIN, &format!("{TEST_SERVER}{extra}\n[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{a}\"\nmax_body_size = \"1MiB\"\n")).await
}

/// Reads until the peer closes (or errors); returns what was read.
async fn read_to_close<S: AsyncRead + Unpin>(s: &mut S, within: Duration) -> String {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(within, s.read_to_end(&mut buf))
        .await
        .expect("connection was closed in time");
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn long_uri_is_414() {
    let moat = echo_moat("max_uri_length = \"1KiB\"").await;
    let http = client::http1(&moat.local_ca_root());
    let ok = format!("/{}", "a".repeat(1000));
    assert_eq!(
        http.get(moat.https_url(&ok)).send().await.unwrap().status(),
        200
    );
    let long = format!("/{}", "a".repeat(1100));
    assert_eq!(
        http.get(moat.https_url(&long))
            .send()
            .await
            .unwrap()
            .status(),
        414
    );
    let long_query = format!("/?q={}", "a".repeat(1100));
    assert_eq!(
        client::http2(&moat.local_ca_root())
            .get(moat.https_url(&long_query))
            .send()
            .await
            .unwrap()
            .status(),
        414
    );
}

#[tokio::test]
async fn large_headers_are_431() {
    let moat = echo_moat("max_header_size = \"4KiB\"").await;
    for http in [
        client::http1(&moat.local_ca_root()),
        client::http2(&moat.local_ca_root()),
    ] {
        assert_eq!(
            http.get(moat.https_url("/"))
                .header("x-big", "b".repeat(3000))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let resp = http
            .get(moat.https_url("/"))
            .header("x-big", "b".repeat(5000))
            .send()
            .await;
        match resp {
            Ok(r) => assert_eq!(r.status(), 431),
            // HTTP/2 may refuse an oversized header list at the protocol level.
            Err(e) => assert!(e.is_request(), "{e}"),
        }
    }
    // Far beyond the read buffer: hyper itself answers 431 on HTTP/1.1.
    let mut s = client::raw_https(&moat).await;
    let req = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Huge: {}\r\n\r\n",
        "h".repeat(64 * 1024)
    );
    let _ = s.write_all(req.as_bytes()).await;
    let resp = read_to_close(&mut s, Duration::from_secs(10)).await;
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");
}

#[tokio::test]
async fn body_over_limit_is_413() {
    let moat = echo_moat("").await;
    let http = client::http1(&moat.local_ca_root());
    // Declared length over the limit: refused before the body is read.
    let resp = http
        .post(moat.https_url("/"))
        .body(vec![0u8; (1 << 20) + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    // Exactly at the limit passes.
    assert_eq!(
        http.post(moat.https_url("/"))
            .body(vec![0u8; 1 << 20])
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Chunked, no length: cut while streaming.
    let chunks = futures_util::stream::iter(
        (0..40).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 64 * 1024]))),
    );
    let resp = http
        .post(moat.https_url("/"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    match resp {
        Ok(r) => assert_eq!(r.status(), 413),
        // moat may answer and close while the client is still sending.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
}

#[tokio::test]
async fn connection_cap_closes_extra_connections() {
    let moat = echo_moat("max_connections = 2").await;
    // Two connections, each busy with a request in flight: neither may
    // give way (an idle one would; see hardening.rs).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = client::raw_https(&moat).await;
        s.write_all(b"GET /slow/4000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The third connection is accepted by the kernel and closed by moat.
    let mut tcp = tokio::net::TcpStream::connect(moat.https.unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0);
    moat.wait_stderr("connection limit").await;
    // Once a held request is done, its connection is idle and gives way:
    // a new client is served.
    let mut s = held.pop().unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let resp = client::http1(&moat.local_ca_root())
        .get(moat.https_url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn slow_header_client_is_cut_off() {
    let moat = echo_moat("header_read_timeout = \"500ms\"").await;
    let mut s = client::raw_https(&moat).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    s.flush().await.unwrap();
    // Never finish the head: moat must close the connection by itself.
    let _ = read_to_close(&mut s, Duration::from_secs(10)).await;
    // A prompt client on a fresh connection is unaffected.
    let mut s = client::raw_https(&moat).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let resp = read_to_close(&mut s, Duration::from_secs(10)).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

#[tokio::test]
async fn slow_tls_handshake_is_cut_off() {
    let moat = echo_moat("tls_handshake_timeout = \"300ms\"").await;
    let mut tcp = tokio::net::TcpStream::connect(moat.https.unwrap())
        .await
        .unwrap();
    let _ = read_to_close(&mut tcp, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    let moat = echo_moat("shutdown_timeout = \"20s\"").await;
    let mut moat = moat;
    let http = client::http1(&moat.local_ca_root());
    let url = moat.https_url("/slow/1500");
    let in_flight = tokio::spawn({
        let http = http.clone();
        async move { http.get(url).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    moat.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New connections are no longer accepted while draining.
    let refused = tokio::net::TcpStream::connect(moat.https.unwrap()).await;
    assert!(refused.is_err(), "listener still accepting after SIGTERM");
    assert_eq!(
        in_flight.await.unwrap().unwrap(),
        200,
        "in-flight request finished"
    );
    let status = moat.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}");
    assert!(moat.stderr().contains("draining connections"));
    let logged = moat.access_log();
    assert!(
        logged
            .iter()
            .any(|l| l["path"] == "/slow/1500" && l["status"] == 200),
        "the drained request was logged before exit:\n{}",
        moat.logs()
    );
}

#[tokio::test]
async fn sigterm_deadline_cuts_stragglers() {
    let mut moat = echo_moat("shutdown_timeout = \"300ms\"").await;
    let http = client::http1(&moat.local_ca_root());
    let url = moat.https_url("/slow/10000");
    let in_flight = tokio::spawn(async move { http.get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    moat.signal(libc::SIGTERM);
    let status = moat.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success());
    assert!(
        in_flight.await.unwrap().is_err(),
        "the straggler was cut at the deadline"
    );
    assert!(moat.stderr().contains("shutdown timeout reached"));
}

#[tokio::test]
async fn sighup_reloads_config_and_refuses_a_bad_one() {
    let a = upstream::echo("a").await;
    let b = upstream::echo("b").await;
    let base = format!(
        "{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/a\"\nupstream = \"http://{a}\"\n"
    );
    let moat = Moat::start(BIN, &base).await;
    let http = client::http1(&moat.local_ca_root());
    assert_eq!(
        http.get(moat.https_url("/b/x"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Keep a connection open across the reload: it must survive.
    let mut kept = client::raw_https(&moat).await;
    moat.reload_with(&format!(
        "{base}[[apps]]\nauth = \"none\"\nname = \"b\"\npath = \"/b\"\nupstream = \"http://{b}\"\n"
    ));
    moat.wait_stderr("configuration reloaded").await;
    let resp = http.get(moat.https_url("/b/x")).send().await.unwrap();
    assert_eq!(resp.headers()["x-upstream"], "b");

    // A bad file is refused with a clear line and the old config keeps serving.
    moat.reload_with(&format!(
        "{base}[[apps]]\nauth = \"none\"\nname = \"c\"\npath = \"/c\"\nupstream = \"ftp://nope\"\n"
    ));
    let log = moat.wait_stderr("config reload refused").await;
    assert!(log.contains("apps[1].upstream"), "{log}");
    assert!(log.contains("moat.toml:13"), "{log}");
    assert_eq!(
        http.get(moat.https_url("/b/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    kept.write_all(b"GET /a/kept HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let resp = read_to_close(&mut kept, Duration::from_secs(10)).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}
