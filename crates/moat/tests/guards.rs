//! The request guards on real sockets: the CORS matrix against a real
//! upstream, the CSRF matrix, rate limits behind a trusted proxy, and the
//! per-client connection cap.

use std::net::IpAddr;

use moat_testkit::moat::TEST_SERVER;
use moat_testkit::{Moat, client, upstream};

const BIN: &str = env!("CARGO_BIN_EXE_moat");

/// The upstream's own CORS headers, which moat must replace where it
/// manages CORS.
const UPSTREAM_CORS: &str = "/respond-with?access-control-allow-origin=*&access-control-allow-credentials=true&access-control-expose-headers=x-secret";

async fn cors_moat() -> Moat {
    let up = upstream::echo("up").await;
    let app = |name: &str, cors: &str| {
        format!(
            "[[apps]]\nname = \"{name}\"\npath = \"/{name}\"\nauth = \"none\"\nstrip_path = true\nupstream = \"http://{up}\"\n{cors}\n"
        )
    };
    Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}{}{}{}{}{}",
            app(
                "exact",
                "[apps.cors]\nallow_origin = [\"https://app.example\"]\nallow_methods = [\"GET\", \"PUT\"]\nallow_headers = [\"Content-Type\", \"X-Token\"]\nexpose_headers = [\"X-Total\"]\nmax_age = \"10m\"\nallow_credentials = true"
            ),
            app("wild", "[apps.cors]\nallow_origin = [\"https://*.example.com\"]"),
            app("re", "[apps.cors]\nallow_origin = [\"regex:https://(dev|qa)\\\\.example\\\\.org\"]"),
            app("reflect", "[apps.cors]\nallow_origin = [\"origin\"]\nallow_credentials = true"),
            app("plain", ""),
        ),
    )
    .await
}

async fn send(
    m: &Moat,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let http = client::http1(&m.local_ca_root());
    let mut r = http.request(method, m.https_url(path));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

fn h(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn cors_matrix() {
    let m = cors_moat().await;
    use reqwest::Method as M;
    // (app, origin, allowed?, ACAO expected)
    let cases = [
        ("exact", "https://app.example", Some("https://app.example")),
        ("exact", "https://evil.example", None),
        ("exact", "null", None),
        (
            "wild",
            "https://a.example.com",
            Some("https://a.example.com"),
        ),
        (
            "wild",
            "https://a.b.example.com",
            Some("https://a.b.example.com"),
        ),
        ("wild", "https://example.com", None),
        ("wild", "http://a.example.com", None),
        ("wild", "null", None),
        (
            "re",
            "https://qa.example.org",
            Some("https://qa.example.org"),
        ),
        ("re", "https://qa.example.org.evil.net", None),
        (
            "reflect",
            "https://anything.example",
            Some("https://anything.example"),
        ),
        ("reflect", "null", None),
    ];
    for (app, origin, acao) in cases {
        let r = send(
            &m,
            M::GET,
            &format!("/{app}{UPSTREAM_CORS}"),
            &[("origin", origin)],
        )
        .await;
        assert_eq!(r.status(), 200, "{app} {origin}");
        assert_eq!(
            h(&r, "access-control-allow-origin").as_deref(),
            acao,
            "{app} {origin}"
        );
        assert!(
            h(&r, "vary").unwrap_or_default().contains("Origin"),
            "{app} {origin}: Vary"
        );
        assert_ne!(
            h(&r, "access-control-expose-headers").as_deref(),
            Some("x-secret"),
            "upstream's removed"
        );
    }
    // Credentials: the exact origin, never *; exposed headers as configured.
    let r = send(
        &m,
        M::GET,
        &format!("/exact{UPSTREAM_CORS}"),
        &[("origin", "https://app.example")],
    )
    .await;
    assert_eq!(
        h(&r, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(
        h(&r, "access-control-expose-headers").as_deref(),
        Some("x-total")
    );
    let r = send(
        &m,
        M::GET,
        &format!("/wild{UPSTREAM_CORS}"),
        &[("origin", "https://a.example.com")],
    )
    .await;
    assert_eq!(
        h(&r, "access-control-allow-credentials"),
        None,
        "not configured: the upstream's is removed"
    );

    // Preflights are answered by moat.
    let pre =
        |app: &'static str, origin: &'static str, method: &'static str, hdrs: &'static str| {
            let m = &m;
            async move {
                let mut list = vec![
                    ("origin", origin),
                    ("access-control-request-method", method),
                ];
                if !hdrs.is_empty() {
                    list.push(("access-control-request-headers", hdrs));
                }
                send(m, M::OPTIONS, &format!("/{app}/x"), &list).await
            }
        };
    let r = pre(
        "exact",
        "https://app.example",
        "PUT",
        "content-type, x-token",
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        h(&r, "access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    assert_eq!(
        h(&r, "access-control-allow-methods").as_deref(),
        Some("GET, PUT")
    );
    assert_eq!(
        h(&r, "access-control-allow-headers").as_deref(),
        Some("content-type, x-token")
    );
    assert_eq!(h(&r, "access-control-max-age").as_deref(), Some("600"));
    assert_eq!(
        h(&r, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    for (app, origin, method, hdrs) in [
        ("exact", "https://evil.example", "GET", ""),
        ("exact", "https://app.example", "DELETE", ""),
        ("exact", "https://app.example", "GET", "x-admin"),
        ("wild", "null", "GET", ""),
    ] {
        let r = pre(app, origin, method, hdrs).await;
        assert_eq!(r.status(), 403, "{app} {origin} {method} {hdrs}");
        assert!(h(&r, "access-control-allow-origin").is_none());
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Cross-origin request refused")
        );
    }
    // Without [apps.cors] moat adds nothing and the app answers preflights.
    let r = pre("plain", "https://app.example", "PUT", "").await;
    assert_eq!(r.status(), 200, "passed to the upstream");
    let seen: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(seen["method"], "OPTIONS");
    let r = send(
        &m,
        M::GET,
        &format!("/plain{UPSTREAM_CORS}"),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(
        h(&r, "access-control-allow-origin").as_deref(),
        Some("*"),
        "the app's own"
    );
}

async fn csrf_moat() -> Moat {
    let up = upstream::echo("up").await;
    Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[security]\ncsrf_trusted_origins = [\"https://sso.example\"]\n\
             [[apps]]\nname = \"app\"\npath = \"/app\"\nauth = \"none\"\nupstream = \"http://{up}\"\n[apps.security]\ncsrf_bypass = [\"/app/hooks/*\"]\ncsrf_trusted_origins = [\"https://partner.example\"]\n\
             [[apps]]\nname = \"open\"\npath = \"/open\"\nauth = \"none\"\nupstream = \"http://{up}\"\n[apps.security]\ndisable_csrf_protection = true\n"
        ),
    )
    .await
}

#[tokio::test]
async fn csrf_matrix() {
    let m = csrf_moat().await;
    let host = format!("localhost:{}", m.https.unwrap().port());
    let same = format!("https://{host}");
    use reqwest::Method as M;
    let status = |method: M, path: &'static str, headers: Vec<(&'static str, String)>| {
        let m = &m;
        async move {
            let list: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(m, method, path, &list).await
        }
    };
    let s = |v: &str| v.to_owned();
    // Safe methods always pass.
    for method in [M::GET, M::HEAD, M::OPTIONS] {
        let r = status(
            method.clone(),
            "/app/x",
            vec![("sec-fetch-site", s("cross-site"))],
        )
        .await;
        assert_ne!(r.status(), 403, "{method}");
    }
    // Every Sec-Fetch-Site value, on every unsafe method.
    for method in [M::POST, M::PUT, M::PATCH, M::DELETE] {
        for (site, ok) in [
            ("same-origin", true),
            ("none", true),
            ("same-site", false),
            ("cross-site", false),
        ] {
            let r = status(method.clone(), "/app/x", vec![("sec-fetch-site", s(site))]).await;
            assert_eq!(r.status() != 403, ok, "{method} {site}");
        }
    }
    // Without Sec-Fetch-Site: Origin against Host.
    for (origin, ok) in [
        (None, true),
        (Some(same.clone()), true),
        (Some(format!("http://{host}")), true),
        (Some(s("https://evil.example")), false),
        (Some(s("https://localhost:1")), false),
        (Some(s("null")), false),
    ] {
        let headers = origin
            .clone()
            .map(|o| vec![("origin", o)])
            .unwrap_or_default();
        let r = status(M::POST, "/app/x", headers).await;
        assert_eq!(r.status() != 403, ok, "Origin {origin:?}");
        if !ok {
            let body = r.text().await.unwrap();
            assert!(body.contains("cross-origin request refused"), "{body}");
        }
    }
    // Trusted origins (global and the app's) and bypass paths.
    for origin in ["https://sso.example", "https://partner.example"] {
        let r = status(
            M::POST,
            "/app/x",
            vec![("origin", s(origin)), ("sec-fetch-site", s("cross-site"))],
        )
        .await;
        assert_eq!(r.status(), 200, "{origin}");
    }
    let r = status(
        M::POST,
        "/app/hooks/github",
        vec![("sec-fetch-site", s("cross-site"))],
    )
    .await;
    assert_eq!(r.status(), 200, "bypass");
    let r = status(
        M::POST,
        "/app/hooksx",
        vec![("sec-fetch-site", s("cross-site"))],
    )
    .await;
    assert_eq!(r.status(), 403, "the bypass pattern is exact");
    // Turned off for one app.
    let r = status(
        M::DELETE,
        "/open/x",
        vec![("sec-fetch-site", s("cross-site"))],
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn rate_limits_key_on_the_real_client_behind_a_trusted_proxy() {
    let up = upstream::echo("up").await;
    let m = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[security]\ntrusted_proxies = [\"127.0.0.1\"]\n\
             [[rate_limit.zones]]\nname = \"per_client\"\nrate = \"1r/m\"\nburst = 2\nnodelay = true\n\
             [[rate_limit.zones]]\nname = \"login\"\nrate = \"1r/m\"\nnodelay = true\n\
             [[rate_limit.zones]]\nname = \"by_key\"\nkey = \"header:X-Api-Key\"\nrate = \"1r/m\"\nnodelay = true\n\
             [[apps]]\nname = \"app\"\npath = \"/app\"\nauth = \"none\"\nupstream = \"http://{up}\"\n\
             [[apps.rate_limit]]\nzone = \"per_client\"\n\
             [[apps]]\nname = \"site\"\npath = \"/site\"\nauth = \"none\"\nupstream = \"http://{up}\"\n\
             [[apps.rate_limit]]\nzone = \"login\"\npath = \"/site/login\"\n\
             [[apps.rate_limit]]\nzone = \"by_key\"\n"
        ),
    )
    .await;
    let cert = m.local_ca_root();
    let proxy = client::http1_from(&cert, "127.0.0.1".parse().unwrap());
    let untrusted = client::http1_from(&cert, "127.0.0.2".parse().unwrap());
    let get = |c: &reqwest::Client, path: &str, xff: &str| {
        c.get(m.https_url(path))
            .header("x-forwarded-for", xff)
            .send()
    };
    // Behind the trusted proxy: one request plus a burst of 2, then 429.
    for _ in 0..3 {
        assert_eq!(
            get(&proxy, "/app/x", "203.0.113.1").await.unwrap().status(),
            200
        );
    }
    let refused = get(&proxy, "/app/x", "203.0.113.1").await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // One request's worth drains in a minute (63 s with nginx's integer
    // arithmetic: 1r/m is 16 thousandths of a request per second).
    assert!((55..=63).contains(&retry), "{retry}");
    // Another real client has its own budget.
    assert_eq!(
        get(&proxy, "/app/x", "203.0.113.2").await.unwrap().status(),
        200
    );
    // From an untrusted peer, a forged X-Forwarded-For buys nothing: every
    // request counts against the peer itself.
    let statuses: Vec<u16> = futures_util::future::join_all((0..4).map(|i| {
        get(
            &untrusted,
            "/app/x",
            if i % 2 == 0 {
                "198.51.100.1"
            } else {
                "198.51.100.2"
            },
        )
    }))
    .await
    .into_iter()
    .map(|r| r.unwrap().status().as_u16())
    .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        1,
        "{statuses:?}"
    );

    // A stricter zone on one path only.
    assert_eq!(
        get(&proxy, "/site/login", "203.0.113.9")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get(&proxy, "/site/login", "203.0.113.9")
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        get(&proxy, "/site/other", "203.0.113.9")
            .await
            .unwrap()
            .status(),
        200
    );
    // A header-keyed zone: per key, and requests without it are not counted.
    let with_key = |k: &'static str| {
        proxy
            .get(m.https_url("/site/a"))
            .header("x-api-key", k)
            .send()
    };
    assert_eq!(with_key("k1").await.unwrap().status(), 200);
    assert_eq!(with_key("k1").await.unwrap().status(), 429);
    assert_eq!(with_key("k2").await.unwrap().status(), 200);
    for _ in 0..3 {
        assert_eq!(
            get(&proxy, "/site/a", "203.0.113.10")
                .await
                .unwrap()
                .status(),
            200
        );
    }
    m.wait_stderr("rate limit reached").await;
}

#[tokio::test]
async fn delayed_bursts_are_served_and_the_rest_refused() {
    let up = upstream::echo("up").await;
    let m = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[rate_limit.zones]]\nname = \"z\"\nrate = \"20r/s\"\nburst = 2\n\
             [[apps]]\nname = \"app\"\npath = \"/app\"\nauth = \"none\"\nupstream = \"http://{up}\"\n[[apps.rate_limit]]\nzone = \"z\"\n"
        ),
    )
    .await;
    let http = client::http1(&m.local_ca_root());
    // Four at once: one now, two queued (delay mode), one refused.
    let mut statuses: Vec<u16> =
        futures_util::future::join_all((0..4).map(|_| http.get(m.https_url("/app/x")).send()))
            .await
            .into_iter()
            .map(|r| r.unwrap().status().as_u16())
            .collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 200, 429]);
}

#[tokio::test]
async fn connections_per_client_are_capped() {
    let up = upstream::echo("up").await;
    let m = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[rate_limit]\nmax_connections_per_client = 2\nexempt = [\"127.0.0.3\"]\n[[apps]]\nname = \"app\"\npath = \"/\"\nauth = \"none\"\nupstream = \"http://{up}\"\n"
        ),
    )
    .await;
    use tokio::io::AsyncReadExt;
    let addr = m.https.unwrap();
    let connect_from = |ip: &str| {
        let ip: IpAddr = ip.parse().unwrap();
        async move {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.bind((ip, 0).into()).unwrap();
            s.connect(addr).await.unwrap()
        }
    };
    let _a = connect_from("127.0.0.1").await;
    let _b = connect_from("127.0.0.1").await;
    let mut c = connect_from("127.0.0.1").await;
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("the third connection is closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0);
    m.wait_stderr("max_connections_per_client").await;
    // Another address, and an exempt one, are not affected.
    let mut other = connect_from("127.0.0.2").await;
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), other.read(&mut buf))
            .await
            .is_err(),
        "still open"
    );
    let _e1 = connect_from("127.0.0.3").await;
    let _e2 = connect_from("127.0.0.3").await;
    let mut e3 = connect_from("127.0.0.3").await;
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), e3.read(&mut buf))
            .await
            .is_err(),
        "exempt"
    );
}
