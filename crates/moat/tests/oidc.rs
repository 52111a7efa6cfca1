//! Sign-in through OpenID Connect providers, end to end: a real moat, a
//! real OpenID provider (`oidc-provider` from npm, over TLS on 127.0.0.1),
//! a real upstream, and on the wire every way an answer can be wrong:
//! wrong audience, expired, bad signature, `alg: none`, the HMAC
//! confusion, another nonce or issuer, a replayed `state`, a callback in
//! another browser. Key rotation, refresh within the absolute timeout, a
//! provider that is down at start, sign-out at the provider, restart.

use std::time::{Duration, Instant};

use moat_testkit::oidc::{OidcProvider, User};
use moat_testkit::upstream::EchoExt;
use moat_testkit::{Moat, client, free_port, upstream};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_moat");
const SECRET: &str = "s3cret-client-key";

const ALICE: User = User {
    sub: "alice",
    password: "pw-alice",
    email: "alice@example.com",
    groups: Some(&["staff", "eng"]),
};
const BOB: User = User {
    sub: "bob",
    password: "pw-bob",
    email: "bob@example.org",
    groups: Some(&["staff"]),
};
/// No groups claim at all.
const CAROL: User = User {
    sub: "carol",
    password: "pw-carol",
    email: "carol@example.com",
    groups: None,
};

/// A moat on a port chosen first (the provider must know its callback
/// URL), with the provider `corp` and two apps: `/eng` for the eng group
/// only (with the identity JWT), `/open` for anyone of corp or the system
/// account. `auth_extra` goes into `[auth]`, `corp_extra` into the
/// provider's entry.
struct Setup {
    moat: Moat,
    idp: OidcProvider,
    http: reqwest::Client,
    config: String,
}

async fn setup(access_ttl: u64, auth_extra: &str, corp_extra: &str) -> Setup {
    setup_with(access_ttl, auth_extra, corp_extra, "").await
}

/// [`setup`], with `more` after the provider's entry (other sections).
async fn setup_with(access_ttl: u64, auth_extra: &str, corp_extra: &str, more: &str) -> Setup {
    let port = free_port();
    let base = format!("https://localhost:{port}");
    let idp = OidcProvider::start(
        "moat",
        SECRET,
        &[format!("{base}/_moat/oidc/corp/callback")],
        &[format!("{base}/_moat/login?signed_out=1")],
        &[ALICE, BOB, CAROL],
        access_ttl,
    )
    .await;
    let config = moat_config(port, &idp, auth_extra, corp_extra, more).await;
    let moat = Moat::start(BIN, &config).await;
    // Discovery runs in the background after start.
    moat.wait_stderr("OpenID provider discovered").await;
    let http = client::http1(&moat.local_ca_root());
    Setup {
        moat,
        idp,
        http,
        config,
    }
}

async fn moat_config(
    port: u16,
    idp: &OidcProvider,
    auth_extra: &str,
    corp_extra: &str,
    more: &str,
) -> String {
    let up = upstream::echo("app").await;
    format!(
        r#"[server]
https = "127.0.0.1:{port}"
http = "127.0.0.1:0"
[auth]
{auth_extra}
[[auth.oidc]]
name = "corp"
display_name = "Corp"
issuer = "{issuer}"
client_id = "moat"
client_secret = "{SECRET}"
scopes = ["openid", "email", "profile", "groups"]
ca = "{ca}"
{corp_extra}
{more}
[[apps]]
name = "eng"
path = "/eng"
upstream = "http://{up}"
auth = "oidc:corp"
allowed_groups = ["eng"]
identity_jwt = true
[[apps]]
name = "open"
path = "/open"
upstream = "http://{up}"
auth = ["oidc:corp", "system"]
"#,
        issuer = idp.issuer,
        ca = idp.ca.display(),
    )
}

/// A browser-like GET: navigation headers and the given cookies.
async fn get(s: &Setup, path: &str, cookies: &str) -> reqwest::Response {
    s.http
        .get(s.moat.https_url(path))
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
        .header("cookie", cookies)
        .send()
        .await
        .unwrap()
}

fn cookie_pair(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap().to_owned())
        .find(|p| p.starts_with(&format!("{name}=")) && p.len() > name.len() + 1)
}

/// Begins a login at moat and signs `user` in at the provider: the
/// callback URL the provider sent the browser to, and the browser's
/// binding cookie.
async fn to_callback(s: &Setup, user: &User<'_>, next: &str) -> (String, String) {
    let start = s
        .http
        .get(
            s.moat
                .https_url(&format!("/_moat/oidc/corp/start?next={next}")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 303, "{}", s.moat.logs());
    let binding =
        cookie_pair(&start, "__Host-moat_oidc").expect("the login is bound to the browser");
    let authorize = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&s.idp.issuer), "{authorize}");
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    let callback = s.idp.sign_in(&authorize, user.sub, user.password).await;
    assert!(
        callback.starts_with(&s.moat.https_url("/_moat/oidc/corp/callback?")),
        "{callback}"
    );
    (callback, binding)
}

async fn finish(s: &Setup, callback: &str, cookies: &str) -> reqwest::Response {
    s.http
        .get(callback)
        .header("cookie", cookies)
        .send()
        .await
        .unwrap()
}

/// Signs `user` in through corp; returns the session cookie's pair.
async fn sign_in(s: &Setup, user: &User<'_>, next: &str) -> String {
    let (callback, binding) = to_callback(s, user, next).await;
    let resp = finish(s, &callback, &binding).await;
    assert_eq!(resp.status(), 303, "{}", s.moat.logs());
    assert_eq!(resp.headers()["location"], next);
    cookie_pair(&resp, "__Host-moat_session").expect("a session cookie")
}

/// What the echo upstream received (the request must have reached it).
async fn echoed(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), 200);
    serde_json::from_str(&resp.text().await.unwrap()).unwrap()
}

fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_code_flow_signs_in_with_groups_and_the_apps_rules_apply() {
    let s = setup(3600, "", "userinfo = true").await;

    // Not signed in: the login page, offering the app's one source.
    let r = get(&s, "/eng/", "").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/_moat/login?next=/eng/");
    let page = get(&s, "/_moat/login?next=/eng/", "")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("href=\"/_moat/oidc/corp/start?next=%2Feng%2F\""),
        "{page}"
    );
    assert!(page.contains("Sign in with Corp"), "{page}");
    assert!(
        !page.contains("name=\"password\""),
        "no password form: {page}"
    );
    // An app that takes both offers both.
    let page = get(&s, "/_moat/login?next=/open/", "")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("/_moat/oidc/corp/start") && page.contains("name=\"password\""));

    // Alice (eng) signs in and reaches the app with her identity.
    let (callback, binding) = to_callback(&s, &ALICE, "/eng/").await;
    let done = finish(&s, &callback, &binding).await;
    assert_eq!(done.status(), 303, "{}", s.moat.logs());
    let alice = cookie_pair(&done, "__Host-moat_session").unwrap();
    let seen = echoed(get(&s, "/eng/x", &alice).await).await;
    assert_eq!(seen.header_values("x-moat-user"), ["alice@example.com"]);
    assert_eq!(seen.header_values("x-moat-email"), ["alice@example.com"]);
    assert_eq!(seen.header_values("x-moat-source"), ["oidc:corp"]);
    assert_eq!(seen.header_values("x-moat-groups"), ["staff,eng"]);
    let jwt = jwt_claims(&seen.header_values("x-moat-identity")[0]);
    assert_eq!(jwt["sub"], "alice@example.com");
    assert_eq!(jwt["email"], "alice@example.com");
    assert_eq!(jwt["src"], "oidc:corp");
    assert_eq!(jwt["groups"], serde_json::json!(["staff", "eng"]));
    assert!(
        !seen
            .header_values("cookie")
            .iter()
            .any(|c| c.contains("moat_")),
        "moat's cookies never reach the app: {seen:?}"
    );

    // The same answer again: its state was used up, nobody is signed in.
    let again = finish(&s, &callback, &binding).await;
    assert_eq!(again.status(), 400);
    assert!(cookie_pair(&again, "__Host-moat_session").is_none());
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("expired or was already used")
    );

    // An answer carried to another browser (no binding cookie): refused,
    // and that login cannot be finished afterwards either.
    let (callback, binding) = to_callback(&s, &ALICE, "/eng/").await;
    let elsewhere = finish(&s, &callback, "").await;
    assert_eq!(elsewhere.status(), 400);
    assert!(cookie_pair(&elsewhere, "__Host-moat_session").is_none());
    assert_eq!(finish(&s, &callback, &binding).await.status(), 400);
    s.moat
        .wait_stderr("matches no sign-in begun in this browser")
        .await;

    // Bob is not in eng: a 403 that names him, with a way out, no loop.
    let bob = sign_in(&s, &BOB, "/eng/").await;
    let r = get(&s, "/eng/", &bob).await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("bob@example.org") && page.contains("corp"),
        "{page}"
    );
    assert!(page.contains("action=\"/_moat/logout\""), "{page}");
    // ...while the app open to all of corp lets him in.
    let seen = echoed(get(&s, "/open/", &bob).await).await;
    assert_eq!(seen.header_values("x-moat-groups"), ["staff"]);

    // Carol's provider sends no groups claim: a group rule refuses her.
    let carol = sign_in(&s, &CAROL, "/open/").await;
    assert_eq!(get(&s, "/eng/", &carol).await.status(), 403);
    let seen = echoed(get(&s, "/open/", &carol).await).await;
    assert!(seen.header_values("x-moat-groups").is_empty());

    // Discovery fetched the key set once; every sign-in used the cache.
    // userinfo = true asked the userinfo endpoint at each sign-in.
    let counts = s.idp.counts().await;
    assert_eq!(counts["jwks"], 1, "{counts}");
    assert_eq!(counts["discovery"], 1, "{counts}");
    // Three sign-ins reached the token endpoint (the refused callbacks
    // never did).
    assert_eq!(counts["token"], 3, "{counts}");
    assert_eq!(counts["userinfo"], 3, "{counts}");
}

#[tokio::test]
async fn forged_or_broken_id_tokens_never_sign_anyone_in() {
    let s = setup(3600, "", "").await;
    let mut done = 0;
    for (mode, reason) in [
        ("aud", "must contain `moat`"),
        ("expired", "expired at"),
        ("signature", "bad signature"),
        ("none", "no signature found"),
        ("hs256", "`hs256` is not one of"),
        ("nonce", "nonce mismatch"),
        ("iss", "found `https://evil.example`"),
    ] {
        let (callback, binding) = to_callback(&s, &ALICE, "/open/").await;
        s.idp.tamper(mode).await;
        let r = finish(&s, &callback, &binding).await;
        assert_eq!(r.status(), 502, "{mode}: {}", s.moat.logs());
        assert!(cookie_pair(&r, "__Host-moat_session").is_none(), "{mode}");
        let refusals = |log: &str| -> Vec<String> {
            log.lines()
                .filter(|l| l.contains("the ID token was refused"))
                .map(str::to_owned)
                .collect()
        };
        let line = s
            .moat
            .wait_until("the refusal's log line", Duration::from_secs(10), || {
                refusals(&s.moat.stderr()).get(done).cloned()
            })
            .await;
        done += 1;
        assert!(
            line.contains("corp") && line.to_lowercase().contains(&reason.to_lowercase()),
            "{mode}: {line}"
        );
    }
    // The provider itself is fine: an untampered sign-in works.
    let alice = sign_in(&s, &ALICE, "/open/").await;
    assert_eq!(get(&s, "/open/", &alice).await.status(), 200);
}

#[tokio::test]
async fn rotated_keys_are_fetched_and_sessions_refresh_until_the_absolute_timeout() {
    // Tokens vouch for 3 s; a session may last 12 s at most.
    let mut s = setup(3, "idle_timeout = \"12s\"\nabsolute_timeout = \"12s\"", "").await;
    let signed_in = Instant::now();
    let alice = sign_in(&s, &ALICE, "/eng/").await;
    assert_eq!(get(&s, "/eng/", &alice).await.status(), 200);

    // The provider now signs with a new key moat has never seen.
    s.idp.rotate_keys(&["k2", "k1"]).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The tokens ran out: moat refreshes, and the new ID token (signed
    // with k2) makes it fetch the key set again.
    let seen = echoed(get(&s, "/eng/", &alice).await).await;
    assert_eq!(seen.header_values("x-moat-groups"), ["staff,eng"]);
    let counts = s.idp.counts().await;
    assert_eq!(counts["refresh"], 1, "{counts}");
    assert_eq!(counts["jwks"], 1, "{counts}");
    s.moat
        .wait_stderr("key set fetched again (a token named an unknown key)")
        .await;
    // A new sign-in is checked with the new key too.
    let bob = sign_in(&s, &BOB, "/open/").await;
    assert_eq!(get(&s, "/open/", &bob).await.status(), 200);

    // Refreshes never carry a session past the absolute timeout.
    let until = signed_in + Duration::from_secs(13);
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
    let r = get(&s, "/eng/", &alice).await;
    assert_eq!(r.status(), 303, "ended at the absolute timeout");
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/_moat/login")
    );
}

#[tokio::test]
async fn a_provider_down_at_start_gives_503_until_it_is_reached() {
    let port = free_port();
    let base = format!("https://localhost:{port}");
    let mut idp = OidcProvider::start(
        "moat",
        SECRET,
        &[format!("{base}/_moat/oidc/corp/callback")],
        &[],
        &[ALICE],
        3600,
    )
    .await;
    idp.stop();
    let config = moat_config(port, &idp, "", "", "").await;
    // moat starts although the provider is down.
    let moat = Moat::start(BIN, &config).await;
    let http = client::http1(&moat.local_ca_root());
    let nav = |path: &str| {
        http.get(moat.https_url(path))
            .header("sec-fetch-mode", "navigate")
            .send()
    };
    let r = nav("/eng/").await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().contains("cannot reach corp"));
    let page = nav("/_moat/login?next=/open/")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("unavailable right now") && page.contains("name=\"password\""),
        "{page}"
    );
    assert_eq!(
        nav("/_moat/oidc/corp/start?next=/eng/")
            .await
            .unwrap()
            .status(),
        503
    );
    let log = moat
        .wait_stderr("OpenID provider unavailable, retrying")
        .await;
    assert!(log.contains("corp"), "{log}");

    idp.restart().await;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let status = nav("/eng/").await.unwrap().status();
        if status == 303 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            Instant::now() < deadline,
            "never discovered:\n{}",
            moat.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    moat.wait_stderr("OpenID provider discovered").await;
}

#[tokio::test]
async fn sign_out_ends_the_session_at_moat_and_the_provider_and_restarts_keep_it() {
    let s = setup(3600, "", "").await;
    let alice = sign_in(&s, &ALICE, "/open/").await;
    let out = s
        .http
        .post(s.moat.https_url("/_moat/logout"))
        .header("sec-fetch-site", "same-origin")
        .header("cookie", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let refresh = out.headers()["refresh"].to_str().unwrap().to_owned();
    let url = refresh.strip_prefix("0; url=").unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/session/end?", s.idp.issuer)),
        "{url}"
    );
    assert!(url.contains("id_token_hint="), "{url}");
    assert!(url.contains("post_logout_redirect_uri="), "{url}");
    assert!(cookie_pair(&out, "__Host-moat_session").is_none());
    assert!(out.text().await.unwrap().contains("id=\"provider-logout\""));
    // The provider accepts the hint (a wrong one would be a 400) and asks
    // to confirm.
    let at_idp = s.idp.http().get(&url).send().await.unwrap();
    assert_eq!(at_idp.status(), 200);
    assert!(at_idp.text().await.unwrap().contains("logout"));
    assert_eq!(s.idp.counts().await["end_session"], 1);
    // moat's side is over.
    assert_eq!(get(&s, "/open/", &alice).await.status(), 303);

    // A restart signs nobody out; the provider's claims come back too.
    let bob = sign_in(&s, &BOB, "/open/").await;
    let mut moat = s.moat;
    moat.signal(libc::SIGTERM);
    moat.wait_exit(Duration::from_secs(20)).await;
    let dir = std::mem::replace(&mut moat.dir, tempfile::tempdir().unwrap());
    drop(moat);
    let moat = Moat::start_in(BIN, &s.config, dir).await;
    moat.wait_stderr("OpenID provider discovered").await;
    let s = Setup {
        moat,
        idp: s.idp,
        http: s.http,
        config: s.config,
    };
    let seen = echoed(get(&s, "/open/", &bob).await).await;
    assert_eq!(seen.header_values("x-moat-user"), ["bob@example.org"]);
    assert_eq!(seen.header_values("x-moat-groups"), ["staff"]);
    // The app's rules still apply to the restored session.
    assert_eq!(get(&s, "/eng/", &bob).await.status(), 403);
}

#[test]
fn a_mistyped_issuer_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moat.toml");
    std::fs::write(
        &path,
        "[[auth.oidc]]\nname = \"corp\"\nissuer = \"htps://login.example.com\"\nclient_id = \"moat\"\nclient_secret = \"x\"\n\n[[apps]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://127.0.0.1:9\"\nauth = \"oidc:crop\"\n",
    )
    .unwrap();
    let out = moat_testkit::cli::run(BIN, &["config", "check", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("moat.toml:3: auth.oidc[0].issuer") && err.contains("is not an https:// URL"),
        "{err}"
    );
    assert!(
        err.contains("apps[0].auth") && err.contains("no [[auth.oidc]] provider is named \"crop\""),
        "{err}"
    );
}

/// Waits (up to 15 s) until the browser's URL starts with `prefix`.
async fn wait_url(b: &moat_testkit::browser::Browser, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let url = b.client.current_url().await.unwrap().to_string();
        if url.starts_with(prefix) {
            return url;
        }
        assert!(
            Instant::now() < deadline,
            "the browser is at {url}, not {prefix}…"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fills a provider's login form in the browser and waits to be back on
/// `back`; returns the page's text there.
async fn provider_login(
    b: &moat_testkit::browser::Browser,
    user: &str,
    password: &str,
    back: &str,
) -> String {
    use moat_testkit::browser::fantoccini::Locator;
    let c = &b.client;
    b.fill("login", user).await;
    b.fill("password", password).await;
    b.click("#submit").await;
    wait_url(b, back).await;
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn in_a_browser_two_providers_share_the_login_page_and_sign_out_reaches_the_provider() {
    use moat_testkit::browser::Browser;
    use moat_testkit::browser::fantoccini::Locator;

    let port = free_port();
    let base = format!("https://localhost:{port}");
    let signed_out = format!("{base}/_moat/login?signed_out=1");
    let corp = OidcProvider::start(
        "moat",
        SECRET,
        &[format!("{base}/_moat/oidc/corp/callback")],
        std::slice::from_ref(&signed_out),
        &[ALICE],
        3600,
    )
    .await;
    let partners = OidcProvider::start(
        "moat-partners",
        SECRET,
        &[format!("{base}/_moat/oidc/partners/callback")],
        std::slice::from_ref(&signed_out),
        &[BOB],
        3600,
    )
    .await;
    let up = upstream::echo("more").await;
    let more = format!(
        r#"[[auth.oidc]]
name = "partners"
display_name = "Partner login"
issuer = "{}"
client_id = "moat-partners"
client_secret = "{SECRET}"
ca = "{}"
[[apps]]
name = "portal"
path = "/portal"
upstream = "http://{up}"
auth = ["oidc:corp", "oidc:partners", "system"]
[[apps]]
name = "ops"
path = "/ops"
upstream = "http://{up}"
auth = ["oidc:corp", "oidc:partners"]
allowed_groups = ["ops"]
"#,
        partners.issuer,
        partners.ca.display()
    );
    let config = moat_config(port, &corp, "", "", &more).await;
    let moat = Moat::start(BIN, &config).await;
    moat.wait_until("both providers discovered", Duration::from_secs(20), || {
        (moat.stderr().matches("OpenID provider discovered").count() == 2).then_some(())
    })
    .await;

    let b = Browser::start().await;
    let c = &b.client;
    c.goto(&format!("{base}/portal/")).await.unwrap();
    wait_url(&b, &format!("{base}/_moat/login?next=")).await;
    // One page: a button per provider and the system account's form.
    let corp_button = c.find(Locator::Id("oidc-corp")).await.unwrap();
    assert_eq!(corp_button.text().await.unwrap(), "Sign in with Corp");
    assert_eq!(
        c.find(Locator::Id("oidc-partners"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Sign in with Partner login"
    );
    assert!(c.find(Locator::Id("password")).await.is_ok());

    // Corp's own login form, then back on the app as Alice.
    corp_button.click().await.unwrap();
    wait_url(&b, &format!("{}/interaction/", corp.issuer)).await;
    let body = provider_login(&b, "alice", "pw-alice", &format!("{base}/portal/")).await;
    assert!(
        body.contains("x-moat-groups") && body.contains("staff,eng"),
        "{body}"
    );

    // An app for the ops group only: a 403 page naming Alice, no loop.
    c.goto(&format!("{base}/ops/")).await.unwrap();
    let main = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        main.contains("alice@example.com") && main.contains("ops"),
        "{main}"
    );
    // Its sign-out button ends the session here and at Corp.
    c.find(Locator::Css("form[action='/_moat/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_url(&b, &format!("{}/session/end", corp.issuer)).await;
    c.wait()
        .for_element(Locator::Id("logout-confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_url(&b, &signed_out).await;
    assert_eq!(corp.counts().await["end_session"], 1);
    // Signed out: the app sends the browser to the login page again.
    c.goto(&format!("{base}/portal/")).await.unwrap();
    wait_url(&b, &format!("{base}/_moat/login?next=")).await;

    // The other provider signs Bob in from the same page.
    c.find(Locator::Id("oidc-partners"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_url(&b, &format!("{}/interaction/", partners.issuer)).await;
    let body = provider_login(&b, "bob", "pw-bob", &format!("{base}/portal/")).await;
    assert!(body.contains("bob@example.org"), "{body}");
    b.close().await;
}

/// The portal admits a provider's people only where `[portal]` names them
/// admins; anyone else signed in through the provider gets the 403 page
/// naming their account, not a login loop.
#[tokio::test]
async fn the_portal_admits_only_the_admins_a_provider_signs_in() {
    let s = setup_with(
        3600,
        "",
        "",
        "[portal]\nauth = [\"system\", \"oidc:corp\"]\nadmin_groups = [\"eng\"]\n",
    )
    .await;
    let page = get(&s, "/_moat/login?next=/_moat/portal/", "")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("/_moat/oidc/corp/start") && page.contains("name=\"password\""),
        "the portal's sources are offered: {page}"
    );

    let alice = sign_in(&s, &ALICE, "/_moat/portal/").await;
    let r = get(&s, "/_moat/portal/", &alice).await;
    assert_eq!(r.status(), 200, "{}", s.moat.logs());
    let page = r.text().await.unwrap();
    assert!(page.contains("oidc:corp/alice@example.com"), "{page}");

    let bob = sign_in(&s, &BOB, "/_moat/portal/").await;
    let r = get(&s, "/_moat/portal/", &bob).await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("bob@example.org") && page.contains("admin portal"),
        "{page}"
    );
    // The same session still opens the apps it may use.
    assert_eq!(get(&s, "/open/", &bob).await.status(), 200);
}
