//! Signing in through a real browser (headless Chromium): the login page,
//! its stylesheet under its own CSP, the cookie's flags as the browser
//! stored them, sign-out, and the idle timeout.

use std::time::Duration;

use moat_testkit::Moat;
use moat_testkit::browser::Browser;
use moat_testkit::browser::fantoccini::Locator;
use moat_testkit::moat::TEST_SERVER;

const BIN: &str = env!("CARGO_BIN_EXE_moat");

/// The password moat printed at start (no hash configured).
fn printed_password(moat: &Moat) -> String {
    let out = moat.stdout();
    out.lines()
        .find_map(|l| l.strip_prefix("    "))
        .unwrap_or_else(|| panic!("no password printed:\n{out}"))
        .to_owned()
}

async fn fill_and_submit(b: &Browser, user: &str, password: &str) {
    b.fill("user", user).await;
    b.fill("password", password).await;
    b.click("button[type=submit]").await;
}

#[tokio::test]
async fn a_person_signs_in_to_the_portal_and_out_again() {
    // The embedded default (no app: the root leads to the portal), with a
    // short idle timeout.
    let moat = Moat::start(
        BIN,
        &format!("{TEST_SERVER}[auth]\nidle_timeout = \"4s\"\n"),
    )
    .await;
    let password = printed_password(&moat);
    let b = Browser::start().await;
    let c = &b.client;

    c.goto(&moat.https_url("/")).await.unwrap();
    b.wait_location("/_moat/login?next=/_moat/portal/").await;
    assert_eq!(c.title().await.unwrap(), "Sign in · moat");
    // The stylesheet loaded under the page's own strict CSP.
    let background = c
        .execute(
            "return getComputedStyle(document.querySelector('button')).backgroundColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(background, "rgb(47, 111, 94)");

    fill_and_submit(&b, "admin", "not the password").await;
    b.wait_location("/_moat/login").await;
    assert_eq!(
        b.text_of(".message.error").await,
        "Wrong user name or password."
    );

    fill_and_submit(&b, "admin", &password).await;
    b.wait_location("/_moat/portal/").await;
    assert_eq!(b.text_of("#welcome-h").await, "No apps yet");

    // The cookie as the browser keeps it.
    let cookie = c.get_named_cookie("__Host-moat_session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Lax)");
    assert_eq!(cookie.path(), Some("/"));
    assert!(cookie.expires().is_none(), "a browser-session cookie");
    // Page scripts cannot read it.
    let visible = c.execute("return document.cookie", vec![]).await.unwrap();
    assert!(
        !visible.as_str().unwrap().contains("moat_session"),
        "{visible}"
    );
    b.screenshot(&moat.dir.path().join("signed-in.png")).await;

    // Sign out: back to the login page, and the portal asks again.
    c.goto(&moat.https_url("/_moat/logout")).await.unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_location("/_moat/login?signed_out=1").await;
    assert_eq!(b.text_of(".message").await, "You are signed out.");
    c.goto(&moat.https_url("/")).await.unwrap();
    b.wait_location("/_moat/login?next=/_moat/portal/").await;

    // Signed in and then left alone past the idle timeout: asked again.
    fill_and_submit(&b, "admin", &password).await;
    b.wait_location("/_moat/portal/").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    c.goto(&moat.https_url("/")).await.unwrap();
    b.wait_location("/_moat/login?next=/_moat/portal/").await;
    b.close().await;
}

/// A page's script from another origin is blocked by the browser while its
/// manifest's request is pending, and runs once an admin approves it.
#[tokio::test]
async fn a_requested_script_loads_only_after_approval() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes");
    let ext = dir.path().join("ext");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::create_dir_all(&ext).unwrap();
    // https://localhost:PORT is the app; https://127.0.0.1:PORT another
    // origin (same moat, another host) serving the external script.
    std::fs::write(
        notes.join("manifest.json"),
        r#"{"name": "notes", "csp": {"script-src": ["https://127.0.0.1:*"]}}"#,
    )
    .unwrap();
    std::fs::write(
        notes.join("index.html"),
        "<!doctype html><html><head><title>notes</title><script src=\"app.js\"></script></head>\
         <body><p>notes</p><script src=\"EXT/ext/ext.js\"></script></body></html>",
    )
    .unwrap();
    std::fs::write(
        notes.join("app.js"),
        "document.documentElement.dataset.local = 'yes';",
    )
    .unwrap();
    std::fs::write(ext.join("manifest.json"), r#"{"name": "ext"}"#).unwrap();
    std::fs::write(
        ext.join("ext.js"),
        "document.documentElement.dataset.external = 'yes';",
    )
    .unwrap();
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nname = \"notes\"\nhost = \"localhost\"\npath = \"/notes\"\nauth = \"none\"\nstatic = {}\n\
             [[apps]]\nname = \"ext\"\nhost = \"127.0.0.1\"\npath = \"/ext\"\nauth = \"none\"\nstrip_path = false\nstatic = {}\n\
             [apps.headers]\ncross_origin_resource_policy = \"cross-origin\"\n",
            moat_testkit::moat::toml_path(&notes),
            moat_testkit::moat::toml_path(&ext)
        ),
    )
    .await;
    let port = moat.https.unwrap().port();
    let html = std::fs::read_to_string(notes.join("index.html"))
        .unwrap()
        .replace("EXT", &format!("https://127.0.0.1:{port}"));
    std::fs::write(notes.join("index.html"), html).unwrap();

    let b = Browser::start().await;
    let c = &b.client;
    let flags = || async {
        let v = b.strings("return [document.documentElement.dataset.local || '', document.documentElement.dataset.external || '']").await;
        (v[0].clone(), v[1].clone())
    };
    c.goto(&moat.https_url("/notes/")).await.unwrap();
    assert_eq!(
        flags().await,
        ("yes".to_owned(), String::new()),
        "pending: blocked"
    );

    // The browser reported the block, and the admin sees what is missing.
    let data = moat.data_dir();
    let blocked = format!("https://127.0.0.1:{port}/ext/ext.js");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let out = moat_testkit::cli::run(
            BIN,
            &[
                "csp",
                "reports",
                "notes",
                "--json",
                "--data-dir",
                data.to_str().unwrap(),
            ],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let found = v.as_array().into_iter().flatten().any(|r| {
            r["blocked"] == blocked.as_str()
                && r["directive"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("script-src")
        });
        if found {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no report of {blocked}: {v}\n{}",
            moat.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = moat_testkit::cli::run(
        BIN,
        &[
            "csp",
            "approve",
            "notes",
            "https://127.0.0.1:*",
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", moat_testkit::cli::show(&out));
    let out = moat_testkit::cli::run(
        BIN,
        &[
            "app",
            "reload",
            "notes",
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", moat_testkit::cli::show(&out));
    c.refresh().await.unwrap();
    assert_eq!(
        flags().await,
        ("yes".to_owned(), "yes".to_owned()),
        "approved: loads"
    );
    b.close().await;
}

/// An app with inline scripts runs under a strict policy when moat adds
/// nonces; without them the same page's inline script is blocked.
#[tokio::test]
async fn nonces_let_inline_scripts_run_under_a_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy");
    std::fs::create_dir_all(&legacy).unwrap();
    std::fs::write(legacy.join("manifest.json"), r#"{"name": "legacy"}"#).unwrap();
    std::fs::write(
        legacy.join("index.html"),
        "<!doctype html><html><head><title>legacy</title>\
         <style>body { background: rgb(1, 2, 3); }</style></head><body><p>legacy</p>\
         <script>document.documentElement.dataset.inline = 'yes';</script></body></html>",
    )
    .unwrap();
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nname = \"legacy\"\npath = \"/legacy\"\nauth = \"none\"\nstatic = {p}\n[apps.csp]\nnonce = true\n\
             [[apps]]\nname = \"plain\"\npath = \"/plain\"\nauth = \"none\"\nstatic = {p}\n",
            p = moat_testkit::moat::toml_path(&legacy)
        ),
    )
    .await;

    // Each response has its own nonce, in the header and on the tags.
    let http = moat_testkit::client::http1(&moat.local_ca_root());
    let mut seen = Vec::new();
    for _ in 0..2 {
        let r = http.get(moat.https_url("/legacy/")).send().await.unwrap();
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .unwrap_or_else(|| panic!("no nonce in {csp}"))
            .to_owned();
        assert!(csp.contains("'strict-dynamic'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let page = r.text().await.unwrap();
        assert_eq!(
            page.matches(&format!("nonce=\"{nonce}\"")).count(),
            2,
            "{page}"
        );
        seen.push(nonce);
    }
    assert_ne!(seen[0], seen[1]);

    let b = Browser::start().await;
    let c = &b.client;
    let state = || async {
        let v = b.strings("return [document.documentElement.dataset.inline || '', getComputedStyle(document.body).backgroundColor]").await;
        (v[0].clone(), v[1].clone())
    };
    c.goto(&moat.https_url("/legacy/")).await.unwrap();
    assert_eq!(state().await, ("yes".to_owned(), "rgb(1, 2, 3)".to_owned()));
    c.goto(&moat.https_url("/plain/")).await.unwrap();
    let (inline, background) = state().await;
    assert_eq!(inline, "", "without a nonce the inline script is blocked");
    assert_ne!(background, "rgb(1, 2, 3)", "and so is the inline style");
    b.close().await;
}

/// A page on one origin fetches from apps on another: the browser itself
/// lets the response through where moat's CORS allows the origin, and
/// blocks it where it does not.
#[tokio::test]
async fn the_browser_enforces_the_cors_moat_answers() {
    let up = moat_testkit::upstream::echo("api").await;
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page");
    std::fs::create_dir_all(&page).unwrap();
    std::fs::write(page.join("manifest.json"), r#"{"name": "page"}"#).unwrap();
    std::fs::write(
        page.join("index.html"),
        "<!doctype html><html><head><title>page</title><script src=\"app.js\"></script></head><body></body></html>",
    )
    .unwrap();
    std::fs::write(
        page.join("app.js"),
        "const base = `https://127.0.0.1:${location.port}`;\n\
         async function probe(path) {\n\
           try { const r = await fetch(base + path); return 'ok:' + r.status; } catch (e) { return 'blocked'; }\n\
         }\n\
         Promise.all([probe('/api/data'), probe('/denied/data')]).then(([a, d]) => {\n\
           document.documentElement.dataset.api = a; document.documentElement.dataset.denied = d;\n\
         });\n",
    )
    .unwrap();
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nname = \"page\"\nhost = \"localhost\"\npath = \"/page\"\nauth = \"none\"\nstatic = {}\n\
             [apps.csp]\nadd = [\"connect-src https://127.0.0.1:*\"]\n\
             [[apps]]\nname = \"api\"\nhost = \"127.0.0.1\"\npath = \"/api\"\nauth = \"none\"\nupstream = \"http://{up}\"\n\
             [apps.cors]\nallow_origin = [\"regex:https://localhost:[0-9]+\"]\n\
             [[apps]]\nname = \"denied\"\nhost = \"127.0.0.1\"\npath = \"/denied\"\nauth = \"none\"\nupstream = \"http://{up}\"\n\
             [apps.cors]\nallow_origin = [\"https://example.com\"]\n",
            moat_testkit::moat::toml_path(&page)
        ),
    )
    .await;
    let b = Browser::start().await;
    let c = &b.client;
    c.goto(&moat.https_url("/page/")).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let result = loop {
        let v = b.strings("return [document.documentElement.dataset.api || '', document.documentElement.dataset.denied || '']").await;
        let pair = (v[0].clone(), v[1].clone());
        if !pair.0.is_empty() || std::time::Instant::now() > deadline {
            break pair;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        result,
        ("ok:200".to_owned(), "blocked".to_owned()),
        "{}",
        moat.logs()
    );
    b.close().await;
}
