//! App authentication end to end: the login page, the session cookie,
//! sign-out, timeouts, lockout, HTTP Basic, the identity passed upstream
//! and the identity token, against a real moat and a real upstream.

use std::time::Duration;

use moat_testkit::moat::TEST_SERVER;
use moat_testkit::{Moat, client, upstream};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_moat");
const PASSWORD: &str = "correct horse battery staple";

/// A moat with the admin password set and one upstream app on `/app`
/// (`app_extra` adds lines to the app, `extra` to the file).
async fn start(app_extra: &str, extra: &str) -> Moat {
    let up = upstream::echo("app").await;
    // Cost 4 keeps the tests fast; moat itself makes cost-12 hashes.
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[security]\nadmin_password_bcrypt = \"{hash}\"\n{extra}\n[[apps]]\nname = \"app\"\npath = \"/app\"\nupstream = \"http://{up}\"\n{app_extra}\n"
        ),
    )
    .await
}

fn form(user: &str, password: &str, next: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "user={}&password={}&next={}",
        enc(user),
        enc(password),
        enc(next)
    )
}

/// Posts the login form as a same-origin browser would; returns the response.
async fn post_login(moat: &Moat, http: &reqwest::Client, body: String) -> reqwest::Response {
    http.post(moat.https_url("/_moat/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Signs in; returns the `name=value` of the session cookie.
async fn sign_in(moat: &Moat, http: &reqwest::Client) -> String {
    let resp = post_login(moat, http, form("admin", PASSWORD, "/app/")).await;
    assert_eq!(resp.status(), 303, "{}", moat.logs());
    session_of(&resp)
}

fn session_of(resp: &reqwest::Response) -> String {
    let set = resp.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

async fn get(moat: &Moat, http: &reqwest::Client, path: &str, cookie: &str) -> reqwest::Response {
    http.get(moat.https_url(path))
        .header("accept", "text/html")
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// The headers the upstream received, by lower-case name.
async fn upstream_headers(resp: reqwest::Response) -> Vec<(String, String)> {
    assert_eq!(resp.status(), 200);
    let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[tokio::test]
async fn login_page_session_cookie_and_sign_out() {
    let moat = start("", "").await;
    let http = client::http1(&moat.local_ca_root());

    // A browser navigation is sent to the login page, remembering where to.
    let resp = http
        .get(moat.https_url("/app/some/page?q=1"))
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, "/_moat/login?next=/app/some/page%3Fq%3D1");

    // The login page: no script at all, its own strict CSP.
    let resp = http.get(moat.https_url(&location)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let page = resp.text().await.unwrap();
    assert!(!page.to_lowercase().contains("<script"), "{page}");
    assert!(page.contains("value=\"/app/some/page?q=1\""), "{page}");

    // A wrong password shows the form again with a message.
    let resp = post_login(&moat, &http, form("admin", "wrong", "/app/")).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Wrong user name or password")
    );

    // The right one sets the session cookie with every protective flag.
    let resp = post_login(&moat, &http, form("admin", PASSWORD, "/app/some/page?q=1")).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/app/some/page?q=1");
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("__Host-moat_session="), "{set}");
    for flag in ["; Secure", "; HttpOnly", "; SameSite=Lax", "; Path=/"] {
        assert!(set.contains(flag), "{flag} missing: {set}");
    }
    assert!(!set.to_lowercase().contains("domain="), "{set}");
    let session = session_of(&resp);

    // With it the app is reached, as admin; moat's cookie is not passed on,
    // the app's own cookies are.
    let resp = get(&moat, &http, "/app/x", &format!("theme=dark; {session}")).await;
    let seen = upstream_headers(resp).await;
    assert_eq!(values(&seen, "x-moat-user"), ["admin"]);
    assert_eq!(values(&seen, "cookie"), ["theme=dark"]);

    // A cookie altered by one character is refused.
    let mut forged = session.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let resp = get(
        &moat,
        &http,
        "/app/x",
        std::str::from_utf8(&forged).unwrap(),
    )
    .await;
    assert_eq!(resp.status(), 303);

    // Sign-out ends the session on the server, not just in the browser.
    let resp = http
        .post(moat.https_url("/_moat/logout"))
        .header("cookie", &session)
        .header(
            "origin",
            format!("https://localhost:{}", moat.https.unwrap().port()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/_moat/login?signed_out=1");
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let resp = get(&moat, &http, "/app/x", &session).await;
    assert_eq!(resp.status(), 303, "the old cookie no longer works");
    moat.wait_stderr("signed out").await;
}

#[tokio::test]
async fn cross_origin_sign_in_and_open_redirects_are_refused() {
    let moat = start("", "").await;
    let http = client::http1(&moat.local_ca_root());
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ] {
        let resp = http
            .post(moat.https_url("/_moat/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(name, value)
            .body(form("admin", PASSWORD, "/app/"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{name}: {value}");
        assert!(resp.headers().get("set-cookie").is_none());
    }
    // After signing in, `next` never leads off this host.
    for next in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let resp = post_login(&moat, &http, form("admin", PASSWORD, next)).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(resp.headers()["location"], "/", "{next}");
    }
}

#[tokio::test]
async fn repeated_failures_lock_out_the_address_and_the_user() {
    // Trusting loopback lets the test speak for many client addresses.
    let moat = start("", "trusted_proxies = [\"127.0.0.1\"]\n").await;
    let http = client::http1(&moat.local_ca_root());
    let attempt = |ip: String, password: &'static str| {
        let http = http.clone();
        let url = moat.https_url("/_moat/login");
        async move {
            http.post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin")
                .header("x-forwarded-for", ip)
                .body(form("admin", password, "/app/"))
                .send()
                .await
                .unwrap()
        }
    };
    // Per address: five failures, then even the right password is refused.
    for _ in 0..4 {
        assert_eq!(attempt("203.0.113.1".into(), "wrong").await.status(), 401);
    }
    let locked = attempt("203.0.113.1".into(), "wrong").await;
    assert_eq!(locked.status(), 429);
    let retry: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 800 && retry <= 900, "{retry}");
    assert_eq!(attempt("203.0.113.1".into(), PASSWORD).await.status(), 429);
    // Another address is not affected...
    assert_eq!(attempt("203.0.113.2".into(), PASSWORD).await.status(), 303);
    // ...until the user name itself has failed ten times, from anywhere.
    for i in 0..10 {
        let s = attempt(format!("198.51.100.{i}"), "wrong").await.status();
        assert!(s == 401 || s == 429, "{s}");
    }
    assert_eq!(attempt("192.0.2.77".into(), PASSWORD).await.status(), 429);
    moat.wait_stderr("locked out").await;
}

#[tokio::test]
async fn non_browser_clients_get_a_challenge_and_may_use_basic_over_tls() {
    let moat = start("", "").await;
    let http = client::http1(&moat.local_ca_root());
    let resp = http.get(moat.https_url("/app/api")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Basic realm=\"moat\", charset=\"UTF-8\""
    );
    // A script's fetch is not redirected to a page it cannot use.
    let resp = http
        .get(moat.https_url("/app/api"))
        .header("sec-fetch-mode", "cors")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let resp = http
        .get(moat.https_url("/app/api"))
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    for _ in 0..2 {
        let resp = http
            .get(moat.https_url("/app/api"))
            .basic_auth("admin", Some(PASSWORD))
            .header("x-moat-user", "root")
            .send()
            .await
            .unwrap();
        let seen = upstream_headers(resp).await;
        assert_eq!(
            values(&seen, "x-moat-user"),
            ["admin"],
            "spoofed value replaced"
        );
        assert!(
            values(&seen, "authorization").is_empty(),
            "moat's credentials are not passed upstream"
        );
    }
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_an_open_app() {
    let moat = start("auth = \"none\"", "").await;
    let http = client::http1(&moat.local_ca_root());
    let resp = http
        .get(moat.https_url("/app/x"))
        .header("x-moat-user", "root")
        .header("X-Moat-Identity", "forged")
        .header("x-moat-anything", "1")
        .send()
        .await
        .unwrap();
    let seen = upstream_headers(resp).await;
    assert!(
        seen.iter().all(|(k, _)| !k.starts_with("x-moat-")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn plain_http_has_no_secure_cookie_and_refuses_basic() {
    let moat = start("", "[tls]\nenabled = false\n").await;
    let http = client::plain();
    let resp = http
        .post(moat.http_url("/_moat/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(form("admin", PASSWORD, "/app/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("moat_session=") && !set.contains("Secure"),
        "{set}"
    );
    // Credentials in clear text are never accepted.
    let resp = http
        .get(moat.http_url("/app/x"))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("MoatLogin")
    );
}

#[tokio::test]
async fn idle_and_absolute_timeouts_end_sessions() {
    let moat = start(
        "",
        "[auth]\nidle_timeout = \"2s\"\nabsolute_timeout = \"5s\"\n",
    )
    .await;
    let http = client::http1(&moat.local_ca_root());
    // Used every second, a session outlives its idle timeout but not its
    // absolute one.
    let session = sign_in(&moat, &http).await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(get(&moat, &http, "/app/x", &session).await.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get(&moat, &http, "/app/x", &session).await.status(), 303);
    // Left alone, a session ends after the idle timeout.
    let session = sign_in(&moat, &http).await;
    assert_eq!(get(&moat, &http, "/app/x", &session).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(get(&moat, &http, "/app/x", &session).await.status(), 303);
}

#[tokio::test]
async fn the_system_account_can_be_disabled() {
    let moat = start("", "[auth]\nsystem_account = false\n").await;
    let http = client::http1(&moat.local_ca_root());
    let resp = post_login(&moat, &http, form("admin", PASSWORD, "/app/")).await;
    assert_eq!(resp.status(), 401);
    let page = http
        .get(moat.https_url("/_moat/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign-in is disabled"), "{page}");
}

/// The identity token verifies with the key moat publishes, checked by an
/// independent JWT implementation (Python's PyJWT).
#[tokio::test]
async fn identity_jwt_verifies_with_the_published_key() {
    let moat = start("identity_jwt = true", "").await;
    let http = client::http1(&moat.local_ca_root());
    let resp = http
        .get(moat.https_url("/app/x"))
        .basic_auth("admin", Some(PASSWORD))
        .header("x-moat-identity", "forged")
        .send()
        .await
        .unwrap();
    let seen = upstream_headers(resp).await;
    let tokens = values(&seen, "x-moat-identity");
    assert_eq!(tokens.len(), 1, "{seen:?}");
    assert_ne!(tokens[0], "forged");
    let jwks = http
        .get(moat.https_url("/_moat/jwks.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let verify = |token: &str, audience: &str| {
        std::process::Command::new("python3")
            .args(["-c", PYJWT_VERIFY, &jwks, token, audience])
            .output()
            .unwrap()
    };
    let ok = verify(tokens[0], "app");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let claims: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(claims["sub"], "admin");
    assert_eq!(claims["iss"], "moat");
    assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() <= 60);
    // The token is for this app only, and any change breaks it.
    assert!(!verify(tokens[0], "other-app").status.success());
    let mut tampered = tokens[0].to_owned();
    tampered.insert(tampered.find('.').unwrap() + 2, 'x');
    assert!(!verify(&tampered, "app").status.success());
}

const PYJWT_VERIFY: &str = r#"
import json, sys, jwt
jwks, token, audience = sys.argv[1], sys.argv[2], sys.argv[3]
kid = jwt.get_unverified_header(token)["kid"]
key = next(k for k in jwt.PyJWKSet.from_json(jwks).keys if k.key_id == kid)
claims = jwt.decode(token, key.key, algorithms=["EdDSA"], audience=audience, issuer="moat")
print(json.dumps(claims))
"#;

/// SECURITY: the lockout is reserved before the hash runs, so a burst of
/// parallel guesses is checked one at a time and cannot outrun it.
#[tokio::test]
async fn parallel_guesses_are_checked_one_at_a_time() {
    let up = upstream::echo("app").await;
    // A real cost, so parallel checks would overlap if they could.
    let hash = bcrypt::hash(PASSWORD, 10).unwrap();
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[security]\nadmin_password_bcrypt = \"{hash}\"\n[[apps]]\nname = \"app\"\npath = \"/app\"\nupstream = \"http://{up}\"\n"
        ),
    )
    .await;
    let http = client::http1(&moat.local_ca_root());
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let http = http.clone();
        let moat_url = moat.https_url("/_moat/login");
        tasks.push(tokio::spawn(async move {
            http.post(moat_url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin")
                .body(form("admin", "wrong", "/app/"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    let checked = moat
        .stderr()
        .matches("sign-in failed: wrong user name or password")
        .count();
    assert!(
        checked <= 5,
        "{checked} guesses were checked in parallel; at most 5 may be"
    );
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 35,
        "{statuses:?}"
    );
}

/// Anyone can lock the account's name with failures from anywhere; a
/// browser that signed in before keeps its way in (the per-address
/// lockout still applies to it).
#[tokio::test]
async fn a_known_browser_is_not_locked_out_by_others() {
    let moat = start("", "trusted_proxies = [\"127.0.0.1\"]\n").await;
    let http = client::http1(&moat.local_ca_root());
    let attempt = |ip: &'static str, password: &'static str, cookie: Option<String>| {
        let http = http.clone();
        let url = moat.https_url("/_moat/login");
        async move {
            let mut r = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin")
                .header("x-forwarded-for", ip);
            if let Some(c) = cookie {
                r = r.header("cookie", c);
            }
            r.body(form("admin", password, "/app/"))
                .send()
                .await
                .unwrap()
        }
    };
    let first = attempt("203.0.113.5", PASSWORD, None).await;
    assert_eq!(first.status(), 303);
    let device = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-moat_device="))
        .expect("a device cookie is set at sign-in");
    assert!(
        device.contains("HttpOnly")
            && device.contains("Secure")
            && device.contains("SameSite=Strict"),
        "{device}"
    );
    let device = device.split(';').next().unwrap().to_owned();
    // Ten failures for the name, from ten addresses: the name is locked.
    for ip in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
        "198.51.100.5",
        "198.51.100.6",
        "198.51.100.7",
        "198.51.100.8",
        "198.51.100.9",
        "198.51.100.10",
    ] {
        let s = attempt(ip, "wrong", None).await.status();
        assert!(s == 401 || s == 429, "{s}");
    }
    assert_eq!(attempt("192.0.2.1", PASSWORD, None).await.status(), 429);
    // The browser that signed in before still can.
    assert_eq!(
        attempt("203.0.113.5", PASSWORD, Some(device.clone()))
            .await
            .status(),
        303
    );
    // A forged device cookie does not help.
    let forged = format!("{}x", device);
    assert_eq!(
        attempt("192.0.2.2", PASSWORD, Some(forged)).await.status(),
        429
    );
    // The per-address lockout applies to it as to anyone.
    for _ in 0..5 {
        attempt("203.0.113.6", "wrong", Some(device.clone())).await;
    }
    assert_eq!(
        attempt("203.0.113.6", PASSWORD, Some(device))
            .await
            .status(),
        429
    );
}

/// Stops `moat` (SIGTERM, or SIGKILL with `kill`) and starts it again on
/// the same folders, config and data directory.
async fn restart(mut moat: Moat, config: &str, kill: bool) -> Moat {
    if kill {
        moat.signal(libc::SIGKILL);
    } else {
        moat.signal(libc::SIGTERM);
    }
    moat.wait_exit(Duration::from_secs(20)).await;
    let dir = std::mem::replace(&mut moat.dir, tempfile::tempdir().unwrap());
    drop(moat);
    Moat::start_in(BIN, config, dir).await
}

#[tokio::test]
async fn sessions_survive_restarts_but_not_sign_out_or_a_new_password() {
    let moat = start("", "").await;
    let config = std::fs::read_to_string(moat.dir.path().join("moat.toml")).unwrap();
    let http = client::http1(&moat.local_ca_root());
    let first = sign_in(&moat, &http).await;
    let reaches = |moat: &Moat, session: &str| {
        let (http, url, session) = (http.clone(), moat.https_url("/app/x"), session.to_owned());
        async move {
            let resp = http
                .get(url)
                .header("cookie", session)
                .send()
                .await
                .unwrap();
            resp.status() == 200
        }
    };
    assert!(reaches(&moat, &first).await);

    // A clean stop and start: still signed in.
    let moat = restart(moat, &config, false).await;
    assert!(reaches(&moat, &first).await, "{}", moat.logs());
    assert!(
        moat.logs()
            .contains("sign-in sessions kept from the last run")
    );

    // Signed in right before a kill -9: kept too (stored before the
    // cookie was handed out).
    let second = sign_in(&moat, &http).await;
    let moat = restart(moat, &config, true).await;
    assert!(reaches(&moat, &second).await, "{}", moat.logs());
    assert!(reaches(&moat, &first).await);

    // Sign-out ends a session for good, restarts included.
    let resp = http
        .post(moat.https_url("/_moat/logout"))
        .header("sec-fetch-site", "same-origin")
        .header("cookie", &second)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(!reaches(&moat, &second).await);
    let moat = restart(moat, &config, false).await;
    assert!(
        !reaches(&moat, &second).await,
        "signed out stays signed out"
    );
    assert!(reaches(&moat, &first).await);

    // A new admin password ends every session of the old one.
    let hash = bcrypt::hash("another password", 4).unwrap();
    let changed = config
        .lines()
        .map(|l| {
            if l.starts_with("admin_password_bcrypt") {
                format!("admin_password_bcrypt = \"{hash}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let moat = restart(moat, &changed, false).await;
    assert!(!reaches(&moat, &first).await, "{}", moat.logs());
}

/// A TOTP code from pyotp (an implementation that is not moat's), for
/// `offset` seconds from now.
fn pyotp(secret: &str, offset: i64) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            &format!(
                "import pyotp, time; print(pyotp.TOTP({secret:?}).at(int(time.time()) + ({offset})))"
            ),
        ])
        .output()
        .expect("python3 runs (scripts/test installs pyotp)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `moat totp enroll` as an admin runs it: reads the secret it prints,
/// answers its prompt with pyotp's code; returns the secret and the
/// recovery codes.
fn enroll(moat: &Moat) -> (String, Vec<String>) {
    use std::io::{BufRead, BufReader, Write};
    let mut child = std::process::Command::new(BIN)
        .args([
            "totp",
            "enroll",
            "--data-dir",
            moat.data_dir().to_str().unwrap(),
        ])
        .env_remove("MOAT_CLIENT_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut secret = None;
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if let Some(s) = line.trim().strip_prefix("secret: ") {
            secret = Some(s.to_owned());
        }
        if line.starts_with("uri:") {
            assert!(line.contains("otpauth://totp/moat:admin"), "{line}");
            break;
        }
        line.clear();
    }
    let secret = secret.expect("the secret is printed");
    writeln!(child.stdin.as_mut().unwrap(), "{}", pyotp(&secret, 0)).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}");
    let codes: Vec<String> = rest
        .lines()
        .map(str::trim)
        .filter(|l| l.len() == 19 && l.matches('-').count() == 3)
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 10, "{rest}");
    (secret, codes)
}

/// The hidden second-step token of a code page.
fn pending_token(page: &str) -> String {
    let at = page.find("name=\"pending\" value=\"").expect("a code page")
        + "name=\"pending\" value=\"".len();
    page[at..].split('"').next().unwrap().to_owned()
}

async fn post_code(
    moat: &Moat,
    http: &reqwest::Client,
    token: &str,
    code: &str,
) -> reqwest::Response {
    http.post(moat.https_url("/_moat/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(format!("next=%2Fapp%2F&pending={token}&code={code}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn totp_second_factor_with_single_use_codes_and_recovery_codes() {
    let moat = start("", "").await;
    let http = client::http1(&moat.local_ca_root());
    let (secret, recovery) = enroll(&moat);

    // The password alone now leads to the code page, not a session.
    let resp = post_login(&moat, &http, form("admin", PASSWORD, "/app/")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("set-cookie").is_none());
    let token = pending_token(&resp.text().await.unwrap());
    // A wrong code is refused on the same page.
    let resp = post_code(&moat, &http, &token, "000000").await;
    assert_eq!(resp.status(), 401);
    // The next step's code (the enrolment used this one) signs in.
    let code = pyotp(&secret, 30);
    let resp = post_code(&moat, &http, &token, &code).await;
    assert_eq!(resp.status(), 303, "{}", moat.logs());
    let session = session_of(&resp);
    let seen = upstream_headers(get(&moat, &http, "/app/x", &session).await).await;
    assert_eq!(values(&seen, "x-moat-user"), ["admin"]);
    // The same code again: refused, even though it is right.
    let resp = post_code(&moat, &http, &token, &code).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("already used"));

    // A recovery code works once (any case, with or without dashes).
    let rc = recovery[0].to_uppercase();
    let resp = post_code(&moat, &http, &token, &rc).await;
    assert_eq!(resp.status(), 303);
    let resp = post_code(&moat, &http, &token, &rc).await;
    assert_eq!(resp.status(), 401);

    // A forged token gets nowhere.
    let resp = post_code(&moat, &http, "YWRtaW4.1.AAAA", &pyotp(&secret, 60)).await;
    assert_eq!(resp.status(), 401);

    // HTTP Basic carries no code: refused for this account.
    let resp = http
        .get(moat.https_url("/app/x"))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Removed, the password alone signs in again.
    let out = moat_testkit::cli::run(
        BIN,
        &[
            "totp",
            "remove",
            "--data-dir",
            moat.data_dir().to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", moat_testkit::cli::show(&out));
    let resp = post_login(&moat, &http, form("admin", PASSWORD, "/app/")).await;
    assert_eq!(resp.status(), 303);
}

#[tokio::test]
async fn require_totp_refuses_an_account_without_one() {
    let moat = start("", "[auth]\nrequire_totp = true\n").await;
    let http = client::http1(&moat.local_ca_root());
    let resp = post_login(&moat, &http, form("admin", PASSWORD, "/app/")).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("moat totp enroll"));
}

#[tokio::test]
async fn wrong_codes_count_toward_the_lockout() {
    let moat = start("", "").await;
    let http = client::http1(&moat.local_ca_root());
    let (secret, _) = enroll(&moat);
    let resp = post_login(&moat, &http, form("admin", PASSWORD, "/app/")).await;
    let token = pending_token(&resp.text().await.unwrap());
    for _ in 0..4 {
        assert_eq!(
            post_code(&moat, &http, &token, "000000").await.status(),
            401
        );
    }
    // The fifth failure locks the address, as for passwords.
    assert_eq!(
        post_code(&moat, &http, &token, "000000").await.status(),
        429
    );
    // Locked: even the right code waits.
    let resp = post_code(&moat, &http, &token, &pyotp(&secret, 30)).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    // And the password step does not reset the count.
    let resp = post_login(&moat, &http, form("admin", PASSWORD, "/app/")).await;
    assert_eq!(resp.status(), 429);
}
