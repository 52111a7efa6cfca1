//! Regression tests for the hardening of issue 10, each on real sockets:
//! one canonical path for every decision (against nginx, an upstream that
//! normalises paths), connections that cannot be held for free, caps on
//! what one client can open through HTTP/2, and per-app upstream limits.

use std::time::Duration;

use moat_testkit::moat::TEST_SERVER;
use moat_testkit::{Moat, client, upstream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_moat");

/// Reads until the peer closes; panics if it does not within `within`
/// (a bound for a hang, not a timing assertion).
async fn read_to_close<S: AsyncRead + Unpin>(s: &mut S, within: Duration) -> String {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(within, s.read_to_end(&mut buf))
        .await
        .expect("connection was closed in time");
    String::from_utf8_lossy(&buf).into_owned()
}

/// One raw HTTP/1.1 request over TLS, the path sent byte for byte as
/// given (as `curl --path-as-is` does); returns (status, body).
async fn raw(moat: &Moat, method: &str, path: &str, headers: &str) -> (u16, String) {
    let mut s = client::raw_https(moat).await;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let resp = read_to_close(&mut s, Duration::from_secs(20)).await;
    let status = resp
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {resp:?}"));
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn every_spelling_of_a_protected_path_is_protected() {
    // nginx decides on the normalised path: /app/admin/ is the admin area.
    let ng = upstream::nginx(
        "    location /app/admin/ { return 200 \"ADMIN AREA\"; }\n    location / { return 200 \"public $uri\"; }",
    )
    .await;
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nname = \"public\"\npath = \"/app\"\nauth = \"none\"\nupstream = \"http://{a}\"\n\
             [[apps]]\nname = \"admin\"\npath = \"/app/admin\"\nupstream = \"http://{a}\"\n",
            a = ng.addr
        ),
    )
    .await;
    assert_eq!(raw(&moat, "GET", "/app/admin/", "").await.0, 401);
    let (status, body) = raw(&moat, "GET", "/app/page", "").await;
    assert_eq!((status, body.as_str()), (200, "public /app/page"));
    for path in [
        "/app//admin/",
        "/app/./admin/",
        "/app/x/../admin/",
        "/app/%61dmin/",
        "/app/admin%2f",
        "/app/admin%2F",
        "//app/admin/",
        "/app/%2e%2e/app/admin/",
        "/app/x/%2E%2E/admin/",
        "/app/admin%5c",
        "/app/admin\\",
        "/app/adm%00in/",
        "/app/%ff/",
        "/app/x/..;/admin/",
    ] {
        let (status, body) = raw(&moat, "GET", path, "").await;
        assert!(status == 401 || status == 400, "{path}: {status} {body}");
        assert!(
            !body.contains("ADMIN AREA"),
            "{path} reached the admin area"
        );
    }
    // The refusals are the client's: a 400 page, logged as such.
    assert_eq!(raw(&moat, "GET", "/app/admin%2f", "").await.0, 400);
    assert_eq!(raw(&moat, "GET", "/app/%2e%2e/x", "").await.0, 400);
}

#[tokio::test]
async fn the_upstream_gets_the_canonical_path() {
    let up = upstream::echo("e").await;
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nname = \"e\"\npath = \"/e\"\nauth = \"none\"\nupstream = \"http://{up}\"\n\
             [[apps]]\nname = \"files\"\npath = \"/files\"\nauth = \"none\"\nupstream = \"http://{up}\"\n\
             [apps.security]\nallow_encoded_slashes = true\n"
        ),
    )
    .await;
    let echo = |body: String| serde_json::from_str::<serde_json::Value>(&body).unwrap();
    let (s, b) = raw(&moat, "GET", "/e//x/./y/../%7Ez?q=a/../b", "").await;
    assert_eq!(s, 200);
    assert_eq!(
        echo(b)["uri"],
        "/e/x/~z?q=a/../b",
        "path canonical, query as sent"
    );
    // An app that asked for encoded slashes gets them, still encoded.
    let (s, b) = raw(&moat, "GET", "/files/a%2fb.txt", "").await;
    assert_eq!(s, 200);
    assert_eq!(echo(b)["uri"], "/files/a%2Fb.txt");
    // ...but not when the decoded path would belong to another app.
    assert_eq!(raw(&moat, "GET", "/files/..%2Fe/x", "").await.0, 400);
    // Other apps never do.
    assert_eq!(raw(&moat, "GET", "/e/a%2fb", "").await.0, 400);
    // HTTP/2 requests are canonicalised the same way.
    let resp = client::http2(&moat.local_ca_root())
        .get(moat.https_url("/e/a/b/%2e%2e/c"))
        .send()
        .await
        .unwrap();
    // reqwest (like a browser) resolves %2e%2e itself before sending.
    assert_eq!(resp.status(), 200);
    let json: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(json["uri"], "/e/a/c");
}

#[tokio::test]
async fn guards_match_the_canonical_path() {
    let up = upstream::echo("app").await;
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[rate_limit.zones]]\nname = \"login\"\nrate = \"1r/m\"\nnodelay = true\n\
             [[apps]]\nname = \"app\"\npath = \"/app\"\nauth = \"none\"\nupstream = \"http://{up}\"\n\
             [apps.security]\ncsrf_bypass = [\"/app/hooks/*\", \"/app/one/{{id}}\"]\n\
             [[apps.rate_limit]]\nzone = \"login\"\npath = \"/app/login\"\n"
        ),
    )
    .await;
    let cross = "Sec-Fetch-Site: cross-site\r\nOrigin: https://evil.example\r\n";
    // The bypass is for the hooks, and only for them.
    assert_eq!(raw(&moat, "POST", "/app/hooks/github", cross).await.0, 200);
    assert_eq!(raw(&moat, "POST", "/app/settings/x", cross).await.0, 403);
    // A browser sends ..%2F as is: refused, never matched as a hook.
    assert_eq!(
        raw(&moat, "POST", "/app/hooks/..%2Fsettings/x", cross)
            .await
            .0,
        400
    );
    // Dot segments resolve before matching: this is /app/settings/x.
    assert_eq!(
        raw(&moat, "POST", "/app/hooks/../settings/x", cross)
            .await
            .0,
        403
    );
    // A one-segment wildcard matches one segment.
    assert_eq!(raw(&moat, "POST", "/app/one/42", cross).await.0, 200);
    assert_eq!(raw(&moat, "POST", "/app/one/42/x", cross).await.0, 403);

    // A rate-limited path stays limited whatever its spelling.
    assert_eq!(raw(&moat, "GET", "/app/login", "").await.0, 200);
    assert_eq!(raw(&moat, "GET", "/app/login", "").await.0, 429);
    for path in [
        "/app//login",
        "/app/./login",
        "/app/%6cogin",
        "/app/x/../login",
        "/app/Login",
        "/app/login/",
        "/app/login;x=1",
    ] {
        assert_eq!(raw(&moat, "GET", path, "").await.0, 429, "{path}");
    }
}

async fn echo_moat(server_extra: &str, top_extra: &str) -> Moat {
    let a = upstream::echo("a").await;
    Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}{server_extra}\n{top_extra}\n[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{a}\"\n"
        ),
    )
    .await
}

#[tokio::test]
async fn a_silent_tls_connection_is_closed() {
    let moat = echo_moat("header_read_timeout = \"500ms\"", "").await;
    // Handshake done, nothing sent: closed by moat, not held.
    let mut s = client::raw_https(&moat).await;
    let _ = read_to_close(&mut s, Duration::from_secs(20)).await;
    // HTTP/2: the preface and settings, then no stream.
    let tls = client::tls_config(&moat.local_ca_root(), &[b"h2"]);
    let mut s = client::connect_tls(moat.https.unwrap(), std::sync::Arc::new(tls), "localhost")
        .await
        .unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let _ = read_to_close(&mut s, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn idle_keepalive_and_idle_http2_connections_are_closed() {
    let moat = echo_moat("keepalive_timeout = \"500ms\"", "").await;
    let mut s = client::raw_https(&moat).await;
    s.write_all(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // The response, then moat closes the idle keep-alive connection.
    let resp = read_to_close(&mut s, Duration::from_secs(20)).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    // HTTP/2 through a real client: after the stream, the connection idles
    // and moat sends GOAWAY; the client's next request uses a new one.
    let tls = client::tls_config(&moat.local_ca_root(), &[b"h2"]);
    let mut s = client::connect_tls(moat.https.unwrap(), std::sync::Arc::new(tls), "localhost")
        .await
        .unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let got = read_to_close_bytes(&mut s, Duration::from_secs(20)).await;
    // A GOAWAY frame (type 7) was sent before the close.
    assert!(has_frame(&got, 7), "no GOAWAY in {got:?}");
}

async fn read_to_close_bytes<S: AsyncRead + Unpin>(s: &mut S, within: Duration) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(within, s.read_to_end(&mut buf))
        .await
        .expect("connection was closed in time");
    buf
}

/// Whether the HTTP/2 frames in `bytes` include one of type `kind`.
fn has_frame(bytes: &[u8], kind: u8) -> bool {
    let mut i = 0;
    while i + 9 <= bytes.len() {
        let len = usize::from(bytes[i]) << 16
            | usize::from(bytes[i + 1]) << 8
            | usize::from(bytes[i + 2]);
        if bytes[i + 3] == kind {
            return true;
        }
        i += 9 + len;
    }
    false
}

#[tokio::test]
async fn bare_connections_to_the_redirect_listener_are_closed() {
    let moat = echo_moat("header_read_timeout = \"500ms\"", "").await;
    let mut tcp = tokio::net::TcpStream::connect(moat.http.unwrap())
        .await
        .unwrap();
    let _ = read_to_close(&mut tcp, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn silent_connections_cannot_keep_a_client_out() {
    // A full pool of connections that never send a request: each new
    // connection pushes out the one idle longest, so a real client is
    // served.
    let moat = echo_moat("max_connections = 4\nheader_read_timeout = \"60s\"", "").await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(
            tokio::net::TcpStream::connect(moat.https.unwrap())
                .await
                .unwrap(),
        );
    }
    let mut tls_silent = Vec::new();
    for _ in 0..4 {
        tls_silent.push(client::raw_https(&moat).await);
    }
    let http = client::http1(&moat.local_ca_root());
    for _ in 0..3 {
        assert_eq!(
            http.get(moat.https_url("/")).send().await.unwrap().status(),
            200
        );
    }
    // The bare TCP connections were the ones closed to make room.
    for mut s in silent {
        let _ = read_to_close(&mut s, Duration::from_secs(20)).await;
    }
}

#[tokio::test]
async fn the_redirect_listener_cannot_starve_https() {
    let moat = echo_moat(
        "redirect_max_connections = 4\nredirect_max_connections_per_client = 2\nheader_read_timeout = \"60s\"\nmax_connections = 8",
        "",
    )
    .await;
    // One address: its third connection to the redirect listener is
    // closed at once.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(
            tokio::net::TcpStream::connect(moat.http.unwrap())
                .await
                .unwrap(),
        );
    }
    let mut third = tokio::net::TcpStream::connect(moat.http.unwrap())
        .await
        .unwrap();
    let _ = read_to_close(&mut third, Duration::from_secs(20)).await;
    // Many addresses fill the redirect pool; HTTPS is untouched.
    for i in 2..8u8 {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("127.0.0.{i}:0").parse().unwrap())
            .unwrap();
        held.push(sock.connect(moat.http.unwrap()).await.unwrap());
    }
    let http = client::http1(&moat.local_ca_root());
    assert_eq!(
        http.get(moat.https_url("/")).send().await.unwrap().status(),
        200
    );
    // A redirect answers one request and closes (from an address of its
    // own: 127.0.0.1 may still hold its two; the full pool makes room).
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.9:0".parse().unwrap()).unwrap();
    let mut s = sock.connect(moat.http.unwrap()).await.unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let resp = read_to_close(&mut s, Duration::from_secs(20)).await;
    assert!(resp.starts_with("HTTP/1.1 308"), "{resp}");
}

/// `n` GETs of `url` at once; their statuses, sorted.
async fn concurrent_statuses(http: &reqwest::Client, url: &str, n: usize) -> Vec<u16> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (http, url) = (http.clone(), url.to_owned());
            tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    statuses
}

#[tokio::test]
async fn one_client_cannot_hold_unbounded_requests_through_http2() {
    let moat = echo_moat("", "[rate_limit]\nmax_requests_in_flight_per_client = 3").await;
    let http = client::http2(&moat.local_ca_root());
    let statuses = concurrent_statuses(&http, &moat.https_url("/slow/1500"), 6).await;
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429], "{statuses:?}");
    // Once they are done, the client is served again.
    assert_eq!(
        http.get(moat.https_url("/")).send().await.unwrap().status(),
        200
    );
    moat.wait_stderr("max_requests_in_flight_per_client").await;
}

#[tokio::test]
async fn a_busy_upstream_answers_503_after_a_bounded_wait() {
    let a = upstream::echo("a").await;
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{a}\"\nmax_upstream_connections = 2\n[apps.timeouts]\nqueue = \"200ms\"\n"
        ),
    )
    .await;
    let http = client::http2(&moat.local_ca_root());
    let statuses = concurrent_statuses(&http, &moat.https_url("/slow/3000"), 4).await;
    assert_eq!(statuses, [200, 200, 503, 503]);
    moat.wait_stderr("max_upstream_connections").await;
}

#[tokio::test]
async fn the_open_file_limit_is_raised_at_start() {
    let moat = echo_moat("", "").await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", moat.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>();
    // "Max open files  SOFT  HARD  files"
    assert_eq!(
        line[3], line[4],
        "soft limit raised to the hard one: {line:?}"
    );
}

#[tokio::test]
async fn underscore_and_duplicate_headers() {
    let up = upstream::echo("e").await;
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nname = \"e\"\npath = \"/\"\nupstream = \"http://{up}\"\nauth = \"none\"\n\
             [apps.security]\nallow_underscore_headers = [\"X_Custom\", \"X-Moat_User\"]\n"
        ),
    )
    .await;
    // A CGI-style upstream reads X-Moat_User as HTTP_X_MOAT_USER: dropped,
    // even though the app lists it; X_Custom is allowed by name.
    let (s, b) = raw(
        &moat,
        "GET",
        "/x",
        "X-Moat_User: admin\r\nX-Forwarded_For: 10.9.9.9\r\nX_Custom: kept\r\nX_Other: dropped\r\n",
    )
    .await;
    assert_eq!(s, 200);
    let echo: serde_json::Value = serde_json::from_str(&b).unwrap();
    let names: Vec<String> = echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| kv[0].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"x_custom".to_owned()), "{names:?}");
    for gone in ["x-moat_user", "x-forwarded_for", "x_other"] {
        assert!(
            !names.contains(&gone.to_owned()),
            "{gone} reached the upstream: {names:?}"
        );
    }
    // RFC 9112: two Host headers are a 400, not "the first wins".
    let (s, _) = raw(&moat, "GET", "/x", "Host: evil.example\r\n").await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_clients_error() {
    let moat = echo_moat("", "").await;
    for bad in [
        "zz\r\nhello\r\n0\r\n\r\n",
        "FFFFFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n",
        &format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(64 * 1024)),
    ] {
        let mut s = client::raw_https(&moat).await;
        let req = format!(
            "POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{bad}"
        );
        let _ = s.write_all(req.as_bytes()).await;
        let resp = read_to_close(&mut s, Duration::from_secs(20)).await;
        assert!(
            resp.starts_with("HTTP/1.1 400"),
            "{:?}",
            &resp[..resp.len().min(200)]
        );
    }
    assert!(
        !moat.stderr().contains("upstream failed"),
        "{}",
        moat.stderr()
    );
}

#[tokio::test]
async fn a_trickled_upload_is_cut_at_the_minimum_rate() {
    let moat = echo_moat(
        "min_body_rate = \"64KiB\"\nheader_read_timeout = \"500ms\"",
        "",
    )
    .await;
    let mut s = client::raw_https(&moat).await;
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n")
        .await
        .unwrap();
    // A few bytes now and then: far below 64 KiB/s, never idle for the
    // app's 300 s idle timeout.
    let trickle = async {
        for _ in 0..200 {
            if s.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
    let resp = read_to_close(&mut s, Duration::from_secs(20)).await;
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp:?}");
}

#[tokio::test]
async fn moat_endpoints_do_not_hold_stalled_bodies() {
    let moat = echo_moat("", "").await;
    for path in ["/_moat/login", "/_moat/csp-report/a"] {
        let mut s = client::raw_https(&moat).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\nuser=a"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        // Never the rest: moat answers and closes within its bound.
        let resp = read_to_close(&mut s, Duration::from_secs(30)).await;
        assert!(resp.starts_with("HTTP/1.1 408"), "{path}: {resp:?}");
    }
}

#[tokio::test]
async fn csp_reports_have_a_budget_per_client() {
    let moat = echo_moat("", "").await;
    let post = |from: &'static str, app: &'static str| {
        let url = moat.https_url(&format!("/_moat/csp-report/{app}"));
        let http = client::http1_from(&moat.local_ca_root(), from.parse().unwrap());
        async move {
            http.post(url)
                .header("content-type", "application/reports+json")
                .body("[]")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(post("127.0.0.1", "a").await);
    }
    assert!(statuses[..20].iter().all(|s| *s == 204), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    // Another client is not affected, and an unknown app answers alike.
    assert_eq!(post("127.0.0.2", "a").await, 204);
    assert_eq!(post("127.0.0.3", "no-such-app").await, 204);
}

#[tokio::test]
async fn a_bundles_admin_config_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("manifest.json"), r#"{"name": "B", "spa": true}"#).unwrap();
    std::fs::write(b.join("index.html"), "<p>hi</p>").unwrap();
    std::fs::write(b.join("config.json"), r#"{"csp": {}}"#).unwrap();
    std::fs::write(b.join("config.json.gz"), "gz").unwrap();
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"b\"\npath = \"/b\"\nstatic = {}\n",
            moat_testkit::moat::toml_path(&b)
        ),
    )
    .await;
    assert_eq!(raw(&moat, "GET", "/b/", "").await.0, 200);
    for path in [
        "/b/config.json",
        "/b/config.json.gz",
        "/b//config.json",
        "/b/%63onfig.json",
    ] {
        let (s, body) = raw(&moat, "GET", path, "Accept: text/html\r\n").await;
        assert_eq!(s, 404, "{path}: {body}");
    }
}

#[tokio::test]
async fn http2_settings_cap_concurrent_streams() {
    let moat = echo_moat(
        "http2_max_concurrent_streams = 7\nkeepalive_timeout = \"500ms\"",
        "",
    )
    .await;
    let tls = client::tls_config(&moat.local_ca_root(), &[b"h2"]);
    let mut s = client::connect_tls(moat.https.unwrap(), std::sync::Arc::new(tls), "localhost")
        .await
        .unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let got = read_to_close_bytes(&mut s, Duration::from_secs(20)).await;
    // The server's first frame is its SETTINGS (type 4): parameter 3 is
    // SETTINGS_MAX_CONCURRENT_STREAMS.
    assert_eq!(got[3], 4, "{got:?}");
    let len = usize::from(got[0]) << 16 | usize::from(got[1]) << 8 | usize::from(got[2]);
    let settings: Vec<(u16, u32)> = got[9..9 + len]
        .chunks(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect();
    assert!(settings.contains(&(3, 7)), "{settings:?}");
}

#[tokio::test]
async fn an_upstream_that_is_down_is_logged_with_a_count() {
    let down = upstream::closed_port();
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"down\"\npath = \"/\"\nupstream = \"http://{down}\"\n"
        ),
    )
    .await;
    let http = client::http1(&moat.local_ca_root());
    for _ in 0..200 {
        assert_eq!(
            http.get(moat.https_url("/")).send().await.unwrap().status(),
            502
        );
    }
    moat.wait_stderr("upstream failed").await;
    let lines = moat.stderr().matches("upstream failed").count();
    // Once every five seconds per app, not once per request.
    assert!(
        lines <= 3,
        "{lines} lines for 200 failures:\n{}",
        moat.stderr()
    );
}

#[tokio::test]
async fn upgraded_websockets_still_count_against_the_caps() {
    let ws = upstream::websocket_echo().await;
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[rate_limit]\nmax_connections_per_client = 2\n[[apps]]\nname = \"chat\"\npath = \"/\"\nauth = \"none\"\nupstream = \"http://{ws}\"\n"
        ),
    )
    .await;
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let stream = client::raw_https(&moat).await;
        let url = format!("wss://localhost:{}/socket", moat.https.unwrap().port());
        let (socket, resp) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        assert_eq!(resp.status(), 101);
        sockets.push(socket);
    }
    // Both tunnels are open: a third connection from the address is closed.
    let mut third = tokio::net::TcpStream::connect(moat.https.unwrap())
        .await
        .unwrap();
    let _ = read_to_close(&mut third, Duration::from_secs(20)).await;
    moat.wait_stderr("max_connections_per_client").await;
    // Once a tunnel ends, its place is free again.
    drop(sockets.pop());
    moat.wait_until("a freed place", Duration::from_secs(20), || {
        std::net::TcpStream::connect(moat.https.unwrap())
            .ok()
            .and_then(|mut s| {
                use std::io::Read;
                s.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
                let mut b = [0u8; 1];
                // Still open after 300 ms: admitted (moat waits for a handshake).
                match s.read(&mut b) {
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        Some(())
                    }
                    _ => None,
                }
            })
    })
    .await;
}
