//! The login page's captcha end to end: moat's proof of work solved by
//! a real browser, forged and replayed solutions refused on the wire, the
//! captcha asked only after failures (and HTTP Basic refused meanwhile),
//! and the hosted services against a local siteverify server that speaks
//! their documented protocol (success, failure, timeout).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moat_testkit::browser::Browser;
use moat_testkit::browser::fantoccini::Locator;
use moat_testkit::moat::TEST_SERVER;
use moat_testkit::{Moat, client, upstream};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_moat");
const PASSWORD: &str = "correct horse battery staple";

async fn start(captcha: &str) -> Moat {
    let up = upstream::echo("app").await;
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[security]\nadmin_password_bcrypt = \"{hash}\"\n[auth.captcha]\n{captcha}\n[[apps]]\nname = \"app\"\npath = \"/app\"\nupstream = \"http://{up}\"\n"
        ),
    )
    .await
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn login_page(moat: &Moat, http: &reqwest::Client) -> (reqwest::header::HeaderMap, String) {
    let r = http
        .get(moat.https_url("/_moat/login?next=/app/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    (h, r.text().await.unwrap())
}

/// Posts the login form with extra fields.
async fn post(
    moat: &Moat,
    http: &reqwest::Client,
    password: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut body = format!("user=admin&password={}&next=%2Fapp%2F", enc(password));
    for (k, v) in extra {
        body.push_str(&format!("&{}={}", enc(k), enc(v)));
    }
    http.post(moat.https_url("/_moat/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn challenge_of(page: &str) -> String {
    page.split("name=\"captcha_challenge\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no challenge on the page: {page}"))
        .to_owned()
}

/// Solves a challenge as the page's script does (independently written).
fn solve(challenge: &str) -> String {
    let difficulty: u32 = challenge.split('.').nth(2).unwrap().parse().unwrap();
    (0u64..)
        .find(|n| {
            let d = sha2::Sha256::digest(format!("{challenge}:{n}").as_bytes());
            let head = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            head.leading_zeros() >= difficulty
        })
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_browser_solves_the_proof_of_work_and_signs_in() {
    let moat = start("provider = \"pow\"\nafter_failures = 0\ndifficulty = 16").await;
    let http = client::http1(&moat.local_ca_root());
    let (headers, page) = login_page(&moat, &http).await;
    // moat's script by a fresh nonce; still nothing from elsewhere.
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'nonce-") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("https:"), "{csp}");
    assert!(page.contains("src=\"/_moat/pow.js\""));

    let b = Browser::start().await;
    let c = &b.client;
    c.goto(&moat.https_url("/app/")).await.unwrap();
    // The script solves the challenge and lets the form be sent.
    c.wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("#moat-pow[data-solved='true']"))
        .await
        .unwrap();
    b.fill("user", "admin").await;
    b.fill("password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_location("/app/").await;
    let body = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("x-moat-user"), "{body}");
    b.close().await;
}

#[tokio::test]
async fn forged_and_replayed_solutions_are_refused() {
    let moat = start("provider = \"pow\"\nafter_failures = 0\ndifficulty = 12").await;
    let http = client::http1(&moat.local_ca_root());

    // No answer at all: the password is not even checked.
    let r = post(&moat, &http, PASSWORD, &[]).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("Complete the check"));

    // A challenge with its difficulty lowered: not one moat issued.
    let (_, page) = login_page(&moat, &http).await;
    let c = challenge_of(&page);
    let easier = c.replacen(".12.", ".1.", 1);
    let r = post(
        &moat,
        &http,
        PASSWORD,
        &[
            ("captcha_challenge", &easier),
            ("captcha_solution", &solve(&easier)),
        ],
    )
    .await;
    assert_eq!(r.status(), 401);
    moat.wait_stderr("a challenge moat did not issue").await;
    // A wrong counter.
    let wrong = (0u64..)
        .map(|n| n.to_string())
        .find(|n| {
            let d = sha2::Sha256::digest(format!("{c}:{n}").as_bytes());
            d[0] != 0
        })
        .unwrap();
    assert_eq!(
        post(
            &moat,
            &http,
            PASSWORD,
            &[("captcha_challenge", &c), ("captcha_solution", &wrong)]
        )
        .await
        .status(),
        401
    );

    // Solved: signed in. The same solution again: refused.
    let n = solve(&c);
    let ok = post(
        &moat,
        &http,
        PASSWORD,
        &[("captcha_challenge", &c), ("captcha_solution", &n)],
    )
    .await;
    assert_eq!(ok.status(), 303, "{}", moat.logs());
    let again = post(
        &moat,
        &http,
        PASSWORD,
        &[("captcha_challenge", &c), ("captcha_solution", &n)],
    )
    .await;
    assert_eq!(again.status(), 401);
    assert!(again.headers().get("set-cookie").is_none());
    moat.wait_stderr("a solution used before").await;
}

#[tokio::test]
async fn the_captcha_is_asked_after_failures_and_basic_waits_for_it() {
    let moat = start("provider = \"pow\"\nafter_failures = 2\ndifficulty = 10").await;
    let http = client::http1(&moat.local_ca_root());
    let (_, page) = login_page(&moat, &http).await;
    assert!(
        !page.contains("captcha_challenge"),
        "no captcha before failures"
    );
    let basic = |pw: &str| {
        use base64::Engine;
        let v = base64::engine::general_purpose::STANDARD.encode(format!("admin:{pw}"));
        http.get(moat.https_url("/app/"))
            .header("authorization", format!("Basic {v}"))
            .send()
    };
    assert_eq!(basic(PASSWORD).await.unwrap().status(), 200);
    for _ in 0..2 {
        assert_eq!(post(&moat, &http, "wrong", &[]).await.status(), 401);
    }
    let (_, page) = login_page(&moat, &http).await;
    let c = challenge_of(&page);
    // Now the right password alone is not enough, and Basic (which
    // carries no captcha) is refused from this address.
    assert_eq!(post(&moat, &http, PASSWORD, &[]).await.status(), 401);
    let refused = basic(PASSWORD).await.unwrap();
    assert_eq!(refused.status(), 401, "the right password, but no captcha");
    moat.wait_stderr("HTTP Basic refused: this address must pass the login page's captcha")
        .await;
    let ok = post(
        &moat,
        &http,
        PASSWORD,
        &[("captcha_challenge", &c), ("captcha_solution", &solve(&c))],
    )
    .await;
    assert_eq!(ok.status(), 303);
    // A success clears the failures: no captcha any more.
    let (_, page) = login_page(&moat, &http).await;
    assert!(!page.contains("captcha_challenge"));
}

/// What the siteverify server was asked.
#[derive(Default, Clone)]
struct Asked {
    bodies: Arc<Mutex<Vec<String>>>,
}

/// A siteverify server speaking the hosted services' documented protocol:
/// a form POST with `secret`, `response` and `remoteip`, answered with
/// JSON `success`. `good` passes, `slow` answers after 3 s, anything else
/// fails.
async fn siteverify(secret: &'static str) -> (SocketAddr, Asked) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let asked = Asked::default();
    let a = asked.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let a = a.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = s.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break body.to_owned();
                        }
                    }
                };
                a.bodies.lock().unwrap().push(body.clone());
                let field = |k: &str| {
                    body.split('&')
                        .find_map(|p| p.strip_prefix(&format!("{k}=")))
                        .unwrap_or("")
                        .to_owned()
                };
                if field("response") == "slow" {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                let ok = field("secret") == secret
                    && field("response") == "good"
                    && field("remoteip") == "127.0.0.1";
                let json = if ok {
                    r#"{"success":true}"#.to_owned()
                } else {
                    r#"{"success":false,"error-codes":["invalid-input-response"]}"#.to_owned()
                };
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                            json.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (addr, asked)
}

#[tokio::test]
async fn hosted_services_are_asked_with_the_secret_and_fail_closed() {
    for (service, field, class, origin) in [
        (
            "recaptcha",
            "g-recaptcha-response",
            "g-recaptcha",
            "https://www.google.com",
        ),
        (
            "hcaptcha",
            "h-captcha-response",
            "h-captcha",
            "https://*.hcaptcha.com",
        ),
        (
            "turnstile",
            "cf-turnstile-response",
            "cf-turnstile",
            "https://challenges.cloudflare.com",
        ),
    ] {
        let (addr, asked) = siteverify("sv-secret").await;
        let moat = start(&format!(
            "provider = \"{service}\"\nafter_failures = 0\nsite_key = \"site-123\"\nsecret = \"sv-secret\"\nverify_url = \"http://{addr}/siteverify\"\ntimeout = \"1s\""
        ))
        .await;
        let http = client::http1(&moat.local_ca_root());
        let (headers, page) = login_page(&moat, &http).await;
        assert!(
            page.contains(&format!("class=\"{class}\" data-sitekey=\"site-123\"")),
            "{service}: {page}"
        );
        // The page's policy widens for this service, on this page only.
        let csp = headers["content-security-policy"].to_str().unwrap();
        let directive = |name: &str| {
            csp.split(';')
                .map(str::trim)
                .find(|d| d.starts_with(&format!("{name} ")))
                .unwrap_or_default()
                .to_owned()
        };
        for d in ["script-src", "frame-src", "connect-src"] {
            assert!(directive(d).contains(origin), "{service}: {csp}");
        }
        assert!(csp.contains("default-src 'none'"), "{csp}");
        let other = http
            .get(moat.https_url("/_moat/logout"))
            .send()
            .await
            .unwrap();
        assert!(
            !other.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains(origin)
        );

        // Failure and timeout refuse; success signs in.
        assert_eq!(
            post(&moat, &http, PASSWORD, &[(field, "bad")])
                .await
                .status(),
            401,
            "{service}"
        );
        assert_eq!(
            post(&moat, &http, PASSWORD, &[(field, "slow")])
                .await
                .status(),
            503,
            "{service}"
        );
        moat.wait_stderr("did not answer within").await;
        let ok = post(&moat, &http, PASSWORD, &[(field, "good")]).await;
        assert_eq!(ok.status(), 303, "{service}: {}", moat.logs());
        let bodies = asked.bodies.lock().unwrap().clone();
        assert_eq!(bodies.len(), 3);
        assert!(
            bodies
                .iter()
                .all(|b| b.contains("secret=sv-secret") && b.contains("remoteip=127.0.0.1"))
        );
        // The secret is never in moat's logs.
        assert!(!format!("{}{}", moat.stdout(), moat.stderr()).contains("sv-secret"));
    }
}
