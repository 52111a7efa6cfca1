//! The proxy path against real upstreams: routing, forwarding headers and
//! client IPs, hop-by-hop headers, streaming bodies, WebSockets, HTTP/2,
//! upstream failures.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use moat_testkit::moat::TEST_SERVER;
use moat_testkit::upstream::{self, EchoExt};
use moat_testkit::{Moat, client};
use serde_json::Value;
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_moat");

async fn json(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn routes_by_host_and_path() {
    let a = upstream::echo("a").await;
    let b = upstream::echo("b").await;
    let c = upstream::echo("c").await;
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}
[[apps]]
auth = \"none\"
name = \"root\"
path = \"/\"
upstream = \"http://{a}\"

[[apps]]
auth = \"none\"
name = \"grafana\"
path = \"/grafana\"
upstream = \"http://{b}\"

[[apps]]
auth = \"none\"
name = \"hosted\"
host = \"app.localhost\"
upstream = \"http://{c}\"
"
        ),
    )
    .await;
    let http = client::http1(&moat.local_ca_root());
    let get = |path: &str| http.get(moat.https_url(path)).send();
    assert_eq!(json(get("/x").await.unwrap()).await["upstream"], "a");
    assert_eq!(json(get("/grafanax").await.unwrap()).await["upstream"], "a");
    let v = json(get("/grafana/d/1?q=2").await.unwrap()).await;
    assert_eq!(v["upstream"], "b");
    assert_eq!(
        v["uri"], "/grafana/d/1?q=2",
        "prefix kept without strip_path"
    );
    // Host-mounted app: SNI and Host say app.localhost; the certificate is
    // for localhost, so connect by address and set the Host header.
    let v = json(
        http.get(moat.https_url("/grafana/x"))
            .header(
                "host",
                format!("app.localhost:{}", moat.https.unwrap().port()),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["upstream"], "c", "a host mount beats a path mount");
    let line = moat.wait_access(|l| l["app"] == "hosted").await;
    assert_eq!(line["status"], 200);
    assert_eq!(line["client_ip"], "127.0.0.1");
    assert_eq!(line["path"], "/grafana/x");
}

#[tokio::test]
async fn unmatched_request_is_404_page() {
    let a = upstream::echo("a").await;
    let moat = Moat::start(
        BIN,
        &format!("{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/a\"\nupstream = \"http://{a}\"\n"),
    )
    .await;
    let resp = client::http1(&moat.local_ca_root())
        .get(moat.https_url("/elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("404 Not Found"));
}

#[tokio::test]
async fn strip_path_preserve_host_and_base_path() {
    let a = upstream::echo("a").await;
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}
[[apps]]
auth = \"none\"
name = \"stripped\"
path = \"/s\"
upstream = \"http://{a}/base\"
strip_path = true

[[apps]]
auth = \"none\"
name = \"kept\"
path = \"/k\"
upstream = \"http://{a}\"
preserve_host = true
"
        ),
    )
    .await;
    let http = client::http1(&moat.local_ca_root());
    let port = moat.https.unwrap().port();
    let v = json(http.get(moat.https_url("/s/x/y?z=1")).send().await.unwrap()).await;
    assert_eq!(v["uri"], "/base/x/y?z=1");
    assert_eq!(
        v.header("host").unwrap(),
        a.to_string(),
        "upstream's own host by default"
    );
    let v = json(http.get(moat.https_url("/s")).send().await.unwrap()).await;
    assert_eq!(v["uri"], "/base/");
    let v = json(http.get(moat.https_url("/k/1")).send().await.unwrap()).await;
    assert_eq!(v.header("host").unwrap(), format!("localhost:{port}"));
}

#[tokio::test]
async fn untrusted_peer_cannot_spoof_client_ip() {
    let a = upstream::echo("a").await;
    let moat = Moat::start(BIN, &format!("{TEST_SERVER}[security]\ntrusted_proxies = [\"10.0.0.0/8\"]\n[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{a}\"\n")).await;
    let http = client::http1(&moat.local_ca_root());
    let v = json(
        http.get(moat.https_url("/"))
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-real-ip", "6.6.6.7")
            .header("forwarded", "for=6.6.6.8;proto=http")
            .header("x-forwarded-proto", "http")
            .header("x-forwarded-host", "evil.example")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v.header("x-forwarded-for").unwrap(), "127.0.0.1");
    assert_eq!(v.header("x-real-ip").unwrap(), "127.0.0.1");
    assert_eq!(v.header("x-forwarded-proto").unwrap(), "https");
    let port = moat.https.unwrap().port();
    assert_eq!(
        v.header("x-forwarded-host").unwrap(),
        format!("localhost:{port}")
    );
    assert_eq!(
        v.header("forwarded").unwrap(),
        format!("for=127.0.0.1;proto=https;host=\"localhost:{port}\"")
    );
    let line = moat.wait_access(|l| l["app"] == "a").await;
    assert_eq!(line["client_ip"], "127.0.0.1");
}

#[tokio::test]
async fn trusted_proxy_chains_and_real_ip() {
    let a = upstream::echo("a").await;
    let moat = Moat::start(BIN, &format!("{TEST_SERVER}[security]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{a}\"\n")).await;
    let http = client::http1(&moat.local_ca_root());
    // Several trusted hops: the rightmost untrusted address is the client;
    // what the client itself prepended (6.6.6.6) is ignored.
    let v = json(
        http.get(moat.https_url("/chain"))
            .header("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.1.2.3")
            .header("x-forwarded-for", "10.0.0.9")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v.header("x-forwarded-for").unwrap(), "203.0.113.7");
    assert_eq!(v.header("x-real-ip").unwrap(), "203.0.113.7");
    assert!(
        v.header("forwarded")
            .unwrap()
            .starts_with("for=203.0.113.7;")
    );
    let line = moat.wait_access(|l| l["path"] == "/chain").await;
    assert_eq!(
        line["client_ip"], "203.0.113.7",
        "the log sees the resolved client"
    );

    // No X-Forwarded-For: X-Real-IP from a trusted peer is believed.
    let v = json(
        http.get(moat.https_url("/real"))
            .header("x-real-ip", "2001:db8::5")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v.header("x-forwarded-for").unwrap(), "2001:db8::5");
    assert!(
        v.header("forwarded")
            .unwrap()
            .starts_with("for=\"[2001:db8::5]\";")
    );

    // Every hop trusted: the leftmost is the best we know.
    let v = json(
        http.get(moat.https_url("/"))
            .header("x-forwarded-for", "10.9.9.9, 10.0.0.1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v.header("x-forwarded-for").unwrap(), "10.9.9.9");
}

#[tokio::test]
async fn hop_by_hop_and_fingerprint_headers_removed() {
    let a = upstream::echo("a").await;
    let moat = Moat::start(
        BIN,
        &format!("{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{a}\"\n"),
    )
    .await;
    let http = client::http1(&moat.local_ca_root());
    let v = json(
        http.get(moat.https_url("/"))
            .header("connection", "x-client-hop")
            .header("x-client-hop", "secret")
            .header("keep-alive", "timeout=1")
            .header("te", "trailers")
            .header("proxy-authorization", "Basic Zm9vOmJhcg==")
            .header("x-end-to-end", "yes")
            .header("x-moat-user", "admin")
            .header("X-Moat-Anything", "forged")
            .send()
            .await
            .unwrap(),
    )
    .await;
    for h in [
        "x-client-hop",
        "keep-alive",
        "te",
        "proxy-authorization",
        "x-moat-user",
        "x-moat-anything",
    ] {
        assert!(
            v.header_values(h).is_empty(),
            "{h} reached the upstream: {v}"
        );
    }
    assert_eq!(v.header("x-end-to-end").unwrap(), "yes");
    let resp = http
        .get(moat.https_url("/fingerprint"))
        .send()
        .await
        .unwrap();
    let h = resp.headers();
    for name in ["server", "x-powered-by", "keep-alive", "x-hop-secret"] {
        assert!(h.get(name).is_none(), "{name} reached the client");
    }
    assert_eq!(h["x-app-header"], "kept");
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let a = upstream::echo("a").await;
    let moat = Moat::start(BIN, &format!("{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{a}\"\nmax_body_size = \"1GiB\"\n")).await;
    let http = client::http1(&moat.local_ca_root());
    // Upload 64 MiB as a chunked stream of varying bytes.
    const CHUNKS: usize = 1024;
    let chunk = |i: usize| bytes::Bytes::from(vec![(i % 251) as u8; 64 * 1024]);
    let mut expected = Sha256::new();
    for i in 0..CHUNKS {
        expected.update(chunk(i));
    }
    let expected: String = expected
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stream =
        futures_util::stream::iter((0..CHUNKS).map(move |i| Ok::<_, std::io::Error>(chunk(i))));
    let v = json(
        http.post(moat.https_url("/upload"))
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["body_len"], (CHUNKS * 64 * 1024) as u64);
    assert_eq!(v["body_sha256"], expected);
    assert_eq!(v.header("transfer-encoding").as_deref(), Some("chunked"));

    // Download 256 MiB, read as a stream.
    let n: u64 = 256 << 20;
    let resp = http
        .get(moat.https_url(&format!("/bytes/{n}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut got = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.iter().all(|&b| b == b'x'));
        got += chunk.len() as u64;
    }
    assert_eq!(got, n);
    let line = moat
        .wait_access(|l| l["path"] == format!("/bytes/{n}"))
        .await;
    assert_eq!(line["bytes"], n, "the access log counts streamed bytes");
}

#[tokio::test]
async fn websocket_echo_through_moat() {
    let ws = upstream::websocket_echo().await;
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"ws\"\npath = \"/ws\"\nupstream = \"http://{ws}\"\n"
        ),
    )
    .await;
    let stream = client::raw_https(&moat).await;
    let url = format!("wss://localhost:{}/ws/chat", moat.https.unwrap().port());
    let (mut socket, resp) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(resp.status(), 101);
    for i in 0..20 {
        let msg = format!("hello {i}");
        socket
            .send(tokio_tungstenite::tungstenite::Message::text(msg.clone()))
            .await
            .unwrap();
        let echoed = socket.next().await.unwrap().unwrap();
        assert_eq!(echoed.into_text().unwrap().as_str(), msg);
    }
    let big = vec![7u8; 1 << 20];
    socket
        .send(tokio_tungstenite::tungstenite::Message::binary(big.clone()))
        .await
        .unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap().into_data().as_ref(),
        &big[..]
    );
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn http2_clients_are_served() {
    let a = upstream::echo("a").await;
    let moat = Moat::start(
        BIN,
        &format!("{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{a}\"\n"),
    )
    .await;
    let http = client::http2(&moat.local_ca_root());
    let resp = http
        .post(moat.https_url("/h2?x=1"))
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let v = json(resp).await;
    assert_eq!(
        v["version"], "HTTP/1.1",
        "upstreams are reached over HTTP/1.1"
    );
    assert_eq!(v["uri"], "/h2?x=1");
    assert_eq!(v["body_len"], 7);
    let port = moat.https.unwrap().port();
    assert_eq!(v.header("host").unwrap(), a.to_string());
    assert_eq!(
        v.header("x-forwarded-host").unwrap(),
        format!("localhost:{port}")
    );
    // Many concurrent streams on one connection.
    let futs = (0..50).map(|i| http.get(moat.https_url(&format!("/n/{i}"))).send());
    for (i, r) in futures_util::future::join_all(futs)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(json(r.unwrap()).await["uri"], format!("/n/{i}"));
    }
}

#[tokio::test]
async fn unreachable_and_slow_upstreams() {
    let dead = upstream::closed_port();
    let slow = upstream::echo("slow").await;
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}
[[apps]]
auth = \"none\"
name = \"deadapp\"
path = \"/dead\"
upstream = \"http://{dead}\"

[[apps]]
auth = \"none\"
name = \"slowapp\"
path = \"/slow\"
upstream = \"http://{slow}\"
timeouts = {{ connect = \"1s\", response_header = \"300ms\", idle = \"10s\" }}
"
        ),
    )
    .await;
    let http = client::http1(&moat.local_ca_root());
    let resp = http.get(moat.https_url("/dead/x")).send().await.unwrap();
    assert_eq!(resp.status(), 502);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(resp.text().await.unwrap().contains("502 Bad Gateway"));
    let log = moat.wait_stderr("upstream failed").await;
    assert!(
        log.lines()
            .any(|l| l.contains("upstream failed") && l.contains("deadapp")),
        "{log}"
    );

    let resp = http.get(moat.https_url("/slow/2000")).send().await.unwrap();
    assert_eq!(resp.status(), 504);
    let log = moat.wait_stderr("slowapp").await;
    assert!(
        log.lines()
            .any(|l| l.contains("upstream failed") && l.contains("slowapp") && l.contains("504")),
        "{log}"
    );
    // Fast enough requests to the same app still work.
    assert_eq!(
        http.get(moat.https_url("/slow/0"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn idle_upstream_body_is_cut() {
    // An upstream that sends a head and part of a body, then stalls.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhalf")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let moat = Moat::start(BIN, &format!("{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"stall\"\npath = \"/\"\nupstream = \"http://{addr}\"\ntimeouts = {{ idle = \"500ms\" }}\n")).await;
    let http = client::http1(&moat.local_ca_root());
    let resp = http.get(moat.https_url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(10), resp.bytes())
        .await
        .expect("moat cuts the idle body");
    assert!(body.is_err(), "a truncated body must not look complete");
}

#[tokio::test]
async fn h2c_upstream() {
    let a = upstream::echo("a").await;
    let moat = Moat::start(
        BIN,
        &format!("{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{a}\"\nh2c = true\n"),
    )
    .await;
    let http = client::http1(&moat.local_ca_root());
    let v = json(
        http.post(moat.https_url("/h2c"))
            .body("abc")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        v["version"], "HTTP/2.0",
        "reached the upstream over cleartext HTTP/2"
    );
    assert_eq!(v["body_len"], 3);
    assert_eq!(v.header("x-forwarded-for").unwrap(), "127.0.0.1");
}

#[tokio::test]
async fn upstream_connections_are_reused() {
    let a = upstream::echo("a").await;
    let moat = Moat::start(
        BIN,
        // TEST_SERVER leaves the [server] table open.
        &format!("{TEST_SERVER}workers = 2\n[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{a}\"\n"),
    )
    .await;
    let http = client::http1(&moat.local_ca_root());
    let mut peers = std::collections::HashSet::new();
    for _ in 0..30 {
        let v = json(http.get(moat.https_url("/")).send().await.unwrap()).await;
        peers.insert(v["peer"].as_str().unwrap().to_owned());
    }
    // Sequential requests on one client connection stay on one worker and
    // reuse its idle upstream connection.
    assert_eq!(peers.len(), 1, "{peers:?}");
}

#[tokio::test]
async fn upstream_closing_idle_connections_is_harmless() {
    let (addr, accepted) = upstream::closes_after_each_response().await;
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"c\"\npath = \"/\"\nupstream = \"http://{addr}\"\n"
        ),
    )
    .await;
    let http = client::http1(&moat.local_ca_root());
    for i in 0..25 {
        let resp = http
            .get(moat.https_url(&format!("/{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "request {i}:\n{}", moat.logs());
        assert_eq!(resp.text().await.unwrap(), "ok");
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        25,
        "one upstream connection per response"
    );
}

#[tokio::test]
async fn abandoned_response_does_not_poison_the_pool() {
    let a = upstream::echo("a").await;
    let moat = Moat::start(
        BIN,
        &format!("{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{a}\"\n"),
    )
    .await;
    for _ in 0..3 {
        // A fresh client each time, dropped after the first chunk of a
        // large body: moat must not hand that half-read upstream connection
        // to the next request.
        let http = client::http1(&moat.local_ca_root());
        let resp = http
            .get(moat.https_url("/bytes/50000000"))
            .send()
            .await
            .unwrap();
        let mut stream = resp.bytes_stream();
        stream.next().await.unwrap().unwrap();
        drop(stream);
        drop(http);
        let http = client::http1(&moat.local_ca_root());
        let v = json(http.get(moat.https_url("/after")).send().await.unwrap()).await;
        assert_eq!(v["uri"], "/after");
    }
}
