//! The admin portal end to end: signing in to it, approving and revoking
//! an app's requested CSP source and seeing the app's header and the audit
//! log change, adding an app through the form (the checker's error at its
//! field), and the portal's own protections (admins only, CSRF token,
//! cross-origin refusal, idle timeout, its policy), against a real moat in
//! headless Chromium and with a plain HTTP client.

use std::path::Path;
use std::time::Duration;

use moat_testkit::Moat;
use moat_testkit::browser::Browser;
use moat_testkit::client;
use moat_testkit::moat::{TEST_SERVER, toml_path};

const BIN: &str = env!("CARGO_BIN_EXE_moat");
const PASSWORD: &str = "correct horse battery staple";
const CDN: &str = "https://cdn.example.com";

/// A moat with a known admin password and a static app whose manifest asks
/// for a script source.
async fn start(dir: &Path, extra: &str) -> Moat {
    let notes = dir.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(
        notes.join("manifest.json"),
        format!(r#"{{"name": "notes", "csp": {{"script-src": ["{CDN}"]}}}}"#),
    )
    .unwrap();
    std::fs::write(
        notes.join("index.html"),
        "<!doctype html><title>notes</title><p>notes</p>",
    )
    .unwrap();
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[security]\nadmin_password_bcrypt = \"{hash}\"\n{extra}\n\
             [[apps]]\nname = \"notes\"\npath = \"/notes\"\nauth = \"none\"\nstatic = {}\n",
            toml_path(&notes)
        ),
    )
    .await
}

/// The CSP the app is served with now.
async fn app_policy(moat: &Moat) -> String {
    let http = client::http1(&moat.local_ca_root());
    let resp = http.get(moat.https_url("/notes/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_admin_approves_and_revokes_a_source_and_adds_an_app_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let moat = start(dir.path(), "").await;
    let b = Browser::start().await;
    let c = &b.client;

    // The portal asks for a sign-in first, then comes back.
    c.goto(&moat.https_url("/_moat/portal/")).await.unwrap();
    b.wait_location("/_moat/login?next=/_moat/portal/").await;
    b.fill("user", "admin").await;
    b.fill("password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_location("/_moat/portal/").await;
    assert_eq!(c.title().await.unwrap(), "Overview · moat portal");
    // The stylesheet loaded under the page's nonce (no inline style).
    let header = b
        .strings("return [getComputedStyle(document.querySelector('header.top')).backgroundColor]")
        .await;
    assert_eq!(header, ["rgb(27, 31, 36)"]);

    // The overview counts the request; its link leads to the app's policy.
    assert!(b.text_of("#csp-h + .big").await == "1");
    b.click("a[href='/_moat/portal/apps/notes#csp']").await;
    b.wait_location("/_moat/portal/apps/notes").await;
    assert!(
        !app_policy(&moat).await.contains(CDN),
        "pending: not applied"
    );
    assert!(b.text_of("ul.requests").await.contains(CDN));

    b.click("button.approve").await;
    b.wait_location("/_moat/portal/apps/notes?done=approved")
        .await;
    assert!(b.text_of(".notice.done").await.starts_with("Approved"));
    let policy = app_policy(&moat).await;
    let script_src = policy
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap_or_default();
    assert!(script_src.contains(CDN), "approved: {policy}");
    // The composed policy names the source's layer and who approved it.
    let table = b.text_of("#csp table").await;
    assert!(table.contains("approved by an admin"), "{table}");

    // The audit log names the admin and where they were.
    c.goto(&moat.https_url("/_moat/portal/audit"))
        .await
        .unwrap();
    let audit = b.text_of("table.audit tbody tr").await;
    assert!(audit.contains("csp.approve"), "{audit}");
    assert!(audit.contains("admin"), "{audit}");
    assert!(audit.contains("portal:127.0.0.1"), "{audit}");

    // Revoking asks first, then takes the source out at once.
    c.goto(&moat.https_url("/_moat/portal/apps/notes"))
        .await
        .unwrap();
    b.click("button.revoke").await;
    c.accept_alert().await.unwrap();
    b.wait_location("/_moat/portal/apps/notes?done=revoked")
        .await;
    assert!(!app_policy(&moat).await.contains(CDN), "revoked");
    let entries = moat
        .admin_get("/api/v1/audit?action=csp.revoke")
        .await
        .unwrap();
    assert_eq!(entries[0]["actor"], "admin", "{entries}");
    assert_eq!(entries[0]["source"], "portal:127.0.0.1", "{entries}");

    // A new app with a mistake: the checker's words at the field.
    c.goto(&moat.https_url("/_moat/portal/apps")).await.unwrap();
    b.fill("app-name", "wiki").await;
    b.fill("app-path", "/wiki").await;
    b.fill("app-upstream", "htp://127.0.0.1:9").await;
    b.click("form.app-form button[type=submit]").await;
    let error = b.text_of("#upstream-error").await;
    assert!(error.contains("has no http:// scheme"), "{error}");
    assert!(error.contains("fix:"), "{error}");
    let invalid = b
        .strings("return [document.getElementById('app-upstream').getAttribute('aria-invalid'), document.getElementById('app-name').value]")
        .await;
    assert_eq!(
        invalid,
        ["true", "wiki"],
        "marked, and what was typed is kept"
    );
    b.fill("app-upstream", "http://127.0.0.1:9").await;
    b.click("#app-recording").await;
    b.click("form.app-form button[type=submit]").await;
    b.wait_location("/_moat/portal/apps/wiki?done=created")
        .await;
    let apps = moat.admin_get("/api/v1/apps").await.unwrap();
    assert!(
        apps.as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "wiki" && a["defined_in"] == "api" && a["recording"] == true),
        "{apps}"
    );
    // Changed through its form: the checker's words again, then saved.
    b.fill("app-path", "wiki2").await;
    b.click("form.app-form button[type=submit]").await;
    let error = b.text_of("#path-error").await;
    assert!(error.contains("path"), "{error}");
    assert_eq!(
        moat.admin_get("/api/v1/apps/wiki").await.unwrap()["path"],
        "/wiki",
        "nothing changed"
    );
    b.fill("app-path", "/wiki2").await;
    b.click("form.app-form button[type=submit]").await;
    b.wait_location("/_moat/portal/apps/wiki?done=updated")
        .await;
    let wiki = moat.admin_get("/api/v1/apps/wiki").await.unwrap();
    assert_eq!(wiki["path"], "/wiki2", "{wiki}");
    assert_eq!(wiki["target"], "http://127.0.0.1:9", "the rest stays");
    assert_eq!(wiki["recording"], true, "the rest stays");
    // Deleted, after the question.
    b.click("button.danger").await;
    c.accept_alert().await.unwrap();
    b.wait_location("/_moat/portal/apps?done=deleted").await;
    let (status, _) = moat
        .admin_request("GET", "/api/v1/apps/wiki", None)
        .await
        .unwrap();
    assert_eq!(status, 404);
    let entries = moat
        .admin_get("/api/v1/audit?action=app.delete")
        .await
        .unwrap();
    assert_eq!(entries[0]["source"], "portal:127.0.0.1", "{entries}");

    // The config file's app is shown read-only.
    c.goto(&moat.https_url("/_moat/portal/apps/notes"))
        .await
        .unwrap();
    assert!(b.text_of(".note").await.contains("config file"));
    b.close().await;
}

/// Signs in with the login form; returns the session cookie.
async fn sign_in(moat: &Moat, http: &reqwest::Client) -> String {
    client::sign_in_admin(moat, http, PASSWORD, "/_moat/portal/").await
}

/// The portal page's CSRF token, and its response headers.
async fn page(
    moat: &Moat,
    http: &reqwest::Client,
    cookie: &str,
    path: &str,
) -> (reqwest::header::HeaderMap, String) {
    let resp = http
        .get(moat.https_url(path))
        .header("cookie", cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap();
    let token = body
        .split("name=\"moat-csrf\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the page carries the token")
        .to_owned();
    (headers, token)
}

async fn approve(
    moat: &Moat,
    http: &reqwest::Client,
    cookie: &str,
    headers: &[(&str, &str)],
    token: Option<&str>,
) -> reqwest::StatusCode {
    let mut req = http
        .post(moat.https_url("/_moat/portal/apps/notes/csp/approve"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut body = format!(
        "directive=script-src&source={}",
        CDN.replace(':', "%3A").replace('/', "%2F")
    );
    if let Some(t) = token {
        body.push_str(&format!("&_csrf={t}"));
    }
    req.body(body).send().await.unwrap().status()
}

#[tokio::test]
async fn changes_need_the_sessions_token_and_the_portals_origin() {
    let dir = tempfile::tempdir().unwrap();
    let moat = start(dir.path(), "").await;
    let http = client::http1(&moat.local_ca_root());
    let cookie = sign_in(&moat, &http).await;
    let (headers, token) = page(&moat, &http, &cookie, "/_moat/portal/").await;

    // The portal's own policy: nonce, strict-dynamic, nothing inline.
    let csp = headers["content-security-policy"].to_str().unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap();
    assert!(nonce.len() >= 22, "{csp}");
    for must in [
        "default-src 'none'",
        "'strict-dynamic'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
    ] {
        assert!(csp.contains(must), "{must}: {csp}");
    }
    // Only script-src's fallback for browsers without nonces, which
    // browsers with them ignore.
    assert_eq!(csp.matches("unsafe").count(), 1, "{csp}");
    assert!(
        csp.contains("'strict-dynamic' 'unsafe-inline' https:;"),
        "{csp}"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers.contains_key("strict-transport-security"));
    // A fresh nonce for every page.
    let (again, _) = page(&moat, &http, &cookie, "/_moat/portal/").await;
    assert_ne!(
        again["content-security-policy"],
        headers["content-security-policy"]
    );

    let same_site = [("sec-fetch-site", "same-origin")];
    // No token, a wrong one, another session's: refused, nothing changes.
    assert_eq!(approve(&moat, &http, &cookie, &same_site, None).await, 403);
    assert_eq!(
        approve(&moat, &http, &cookie, &same_site, Some("AAAA")).await,
        403
    );
    let other = sign_in(&moat, &http).await;
    let (_, other_token) = page(&moat, &http, &other, "/_moat/portal/").await;
    assert_ne!(other_token, token);
    assert_eq!(
        approve(&moat, &http, &cookie, &same_site, Some(&other_token)).await,
        403
    );
    // The right token from another site: refused.
    assert_eq!(
        approve(
            &moat,
            &http,
            &cookie,
            &[("sec-fetch-site", "cross-site")],
            Some(&token)
        )
        .await,
        403
    );
    assert_eq!(
        approve(
            &moat,
            &http,
            &cookie,
            &[("origin", "https://evil.example")],
            Some(&token)
        )
        .await,
        403
    );
    assert!(
        !app_policy(&moat).await.contains(CDN),
        "nothing was approved"
    );
    let audit = moat.admin_get("/api/v1/audit").await.unwrap();
    assert_eq!(audit.as_array().unwrap().len(), 0, "{audit}");
    // The token in a header (the portal's scripts) or the form: accepted.
    let resp = http
        .post(moat.https_url("/_moat/portal/apps/notes/csp/approve"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .header("x-moat-csrf", &token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("directive=script-src&source=https%3A%2F%2Fcdn.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(app_policy(&moat).await.contains(CDN));

    // Without a session: the login page for a browser, 401 for a script.
    let resp = http
        .get(moat.https_url("/_moat/portal/apps"))
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        "/_moat/login?next=/_moat/portal/apps"
    );
    let resp = http
        .post(moat.https_url("/_moat/portal/apps"))
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Never over plain HTTP: the listener only redirects to HTTPS.
    let resp = client::plain()
        .get(moat.http_url("/_moat/portal/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 308, "{:?}", resp.headers());
}

#[tokio::test]
async fn an_idle_portal_session_ends_and_a_turned_off_portal_is_not_there() {
    let dir = tempfile::tempdir().unwrap();
    let moat = start(dir.path(), "[portal]\nidle_timeout = \"1s\"\n").await;
    let http = client::http1(&moat.local_ca_root());
    let cookie = sign_in(&moat, &http).await;
    page(&moat, &http, &cookie, "/_moat/portal/").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let resp = http
        .get(moat.https_url("/_moat/portal/apps"))
        .header("cookie", &cookie)
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        "/_moat/login?next=/_moat/portal/apps"
    );
    // The session itself ended: it opens nothing any more.
    let resp = http
        .get(moat.https_url("/_moat/portal/"))
        .header("cookie", &cookie)
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "signed out");

    let off = start(&dir.path().join("off"), "[portal]\nenabled = false\n").await;
    let http = client::http1(&off.local_ca_root());
    let cookie = sign_in(&off, &http).await;
    let resp = http
        .get(off.https_url("/_moat/portal/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

const POLICY: &str = "[recording.policy]\nretain_for_days = 30\ndelete_after_days = 365\n";

/// The recordings section: a recording listed with its retention dates,
/// its integrity badge (valid, then altered once a byte of a chunk is
/// flipped), a HAR download an independent validator accepts; and the
/// storage section's reapply-policy, a dry run first, then confirmed.
#[tokio::test]
async fn recordings_verify_export_and_policies_reapply_in_the_portal() {
    let up = moat_testkit::upstream::echo("app").await;
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[security]\nadmin_password_bcrypt = \"{hash}\"\n[auth]\nidle_timeout = \"2s\"\n\
             [[apps]]\nname = \"rec\"\npath = \"/rec\"\nauth = \"none\"\nupstream = \"http://{up}\"\n\
             [apps.recording]\nenabled = true\n{POLICY}"
        ),
    )
    .await;
    let http = client::http1(&moat.local_ca_root());
    let resp = http.get(moat.https_url("/rec/hello")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // The visit idles out and its recording closes.
    let id = moat
        .wait_until("the recording to close", Duration::from_secs(20), || {
            let out = moat_testkit::cli::against(BIN, &moat, &["recordings", "list", "--json"]);
            let list: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            (list[0]["state"] == "complete").then(|| list[0]["id"].as_str().unwrap().to_owned())
        })
        .await;

    let cookie = sign_in(&moat, &http).await;
    let list = http
        .get(moat.https_url("/_moat/portal/recordings?app=rec&state=complete"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains(&format!("/_moat/portal/recordings/{id}")),
        "{list}"
    );
    let detail = |cookie: String| {
        let http = http.clone();
        let url = moat.https_url(&format!("/_moat/portal/recordings/{id}"));
        async move {
            http.get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let page = detail(cookie.clone()).await;
    assert!(
        page.contains("id=\"verify-badge\" class=\"badge valid\">valid<"),
        "{page}"
    );

    // The HAR download, checked by an independent validator.
    let resp = http
        .get(moat.https_url(&format!("/_moat/portal/recordings/{id}/har")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"moat-"),
    );
    let har = moat.dir.path().join("portal.har");
    std::fs::write(&har, resp.bytes().await.unwrap()).unwrap();
    let node_path = std::env::var("MOAT_TEST_NODE_PATH").expect(
        "MOAT_TEST_NODE_PATH: run the tests with ./scripts/test, which installs har-validator",
    );
    let check = std::process::Command::new("node")
        .env("NODE_PATH", node_path)
        .args([
            "-e",
            "require('har-validator').har(JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'))).then(() => process.exit(0)).catch(e => { console.error(JSON.stringify(e.errors || e.message)); process.exit(1); });",
            har.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "HAR invalid: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // One flipped byte: the badge says altered and names the chunk.
    let chunk = moat
        .data_dir()
        .join("recordings")
        .join(&id)
        .join("chunk-000001.zst");
    let mut bytes = std::fs::read(&chunk).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&chunk, bytes).unwrap();
    // (The visit's idle timeout is short: sign in afresh for each step.)
    let cookie = sign_in(&moat, &http).await;
    let page = detail(cookie.clone()).await;
    assert!(
        page.contains("id=\"verify-badge\" class=\"badge altered\">altered<"),
        "{page}"
    );
    assert!(page.contains("chunk-000001.zst"), "{page}");
    // Inside its retention period it cannot be deleted, and the page says
    // why.
    let (_, token) = page_token(&page);
    let resp = http
        .post(moat.https_url(&format!("/_moat/portal/recordings/{id}/delete")))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("_csrf={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let back = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.contains("failed="), "{back}");

    // Reapply a new policy: a dry run says what would change and changes
    // nothing...
    let config = std::fs::read_to_string(&moat.config_path).unwrap().replace(
        POLICY,
        "[recording.policy]\nretain_for_days = 0\ndelete_after_days = 1\n",
    );
    moat.reload_with(&config);
    moat.wait_stderr("configuration reloaded").await;
    let cookie = sign_in(&moat, &http).await;
    let (_, token) = page_token(&detail(cookie.clone()).await);
    let post = |body: String| {
        let http = http.clone();
        let cookie = cookie.clone();
        let url = moat.https_url("/_moat/portal/storage/reapply");
        async move {
            let resp = http
                .post(url)
                .header("cookie", cookie)
                .header("sec-fetch-site", "same-origin")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.text().await.unwrap()
        }
    };
    let dry = post(format!("_csrf={token}&app=rec")).await;
    assert!(
        dry.contains("A dry run over the recordings of rec"),
        "{dry}"
    );
    assert!(dry.contains("name=\"confirm\" value=\"yes\""), "{dry}");
    assert!(dry.contains("<dd>1</dd>"), "one date would change: {dry}");
    let audit = moat
        .admin_get("/api/v1/audit?action=recording.reapply_policy")
        .await
        .unwrap();
    assert_eq!(
        audit.as_array().unwrap().len(),
        0,
        "a dry run changes nothing: {audit}"
    );
    // ...then, confirmed, applies it under the admin's name.
    let done = post(format!("_csrf={token}&app=rec&confirm=yes")).await;
    assert!(done.contains("Applied to the recordings of rec"), "{done}");
    let audit = moat
        .admin_get("/api/v1/audit?action=recording.reapply_policy")
        .await
        .unwrap();
    assert_eq!(audit[0]["source"], "portal:127.0.0.1", "{audit}");
}

/// The page's CSRF token (from its meta tag).
fn page_token(page: &str) -> ((), String) {
    let token = page
        .split("name=\"moat-csrf\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the page carries the token")
        .to_owned();
    ((), token)
}

/// A bucket added through the storage form (after the probe), then its
/// settings changed through its own form; its secret never shown.
#[tokio::test]
async fn a_bucket_is_added_and_changed_in_the_portal() {
    let dir = tempfile::tempdir().unwrap();
    let moat = start(dir.path(), "").await;
    let http = client::http1(&moat.local_ca_root());
    let cookie = sign_in(&moat, &http).await;
    let shelf = dir.path().join("shelf");
    std::fs::create_dir_all(&shelf).unwrap();
    let post = |path: String, body: String| {
        let http = http.clone();
        let cookie = cookie.clone();
        let url = moat.https_url(&path);
        async move {
            http.post(url)
                .header("cookie", cookie)
                .header("sec-fetch-site", "same-origin")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let (_, token) = page(&moat, &http, &cookie, "/_moat/portal/storage").await;
    let folder = shelf.to_str().unwrap().replace('/', "%2F");
    let resp = post(
        "/_moat/portal/storage/buckets".into(),
        format!("_csrf={token}&name=shelf&path={folder}&prefix=one"),
    )
    .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        "/_moat/portal/storage?done=created"
    );

    // Its page: the settings in a form, the name fixed.
    let edit = http
        .get(moat.https_url("/_moat/portal/storage/buckets/shelf"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(edit.contains("value=\"one\""), "{edit}");
    assert!(
        edit.contains("name=\"name\" type=\"text\" value=\"shelf\" readonly"),
        "{edit}"
    );
    // A folder that cannot be made (under a file) fails the probe:
    // nothing changes...
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let under_file = file.join("shelf").to_str().unwrap().replace('/', "%2F");
    let resp = post(
        "/_moat/portal/storage/buckets/shelf".into(),
        format!("_csrf={token}&path={under_file}&prefix=two"),
    )
    .await;
    assert_eq!(resp.status(), 503);
    let text = resp.text().await.unwrap();
    assert!(text.contains("probe"), "{text}");
    let bucket = moat.admin_get("/api/v1/buckets/shelf").await.unwrap();
    assert_eq!(bucket["config"]["prefix"], "one", "{bucket}");
    // ...a good change is saved, under the admin's name.
    let resp = post(
        "/_moat/portal/storage/buckets/shelf".into(),
        format!("_csrf={token}&path={folder}&prefix=two"),
    )
    .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        "/_moat/portal/storage?done=updated"
    );
    let bucket = moat.admin_get("/api/v1/buckets/shelf").await.unwrap();
    assert_eq!(bucket["config"]["prefix"], "two", "{bucket}");
    let entries = moat.admin_get("/api/v1/audit?target=shelf").await.unwrap();
    assert_eq!(entries[0]["actor"], "admin", "{entries}");
    assert_eq!(entries[0]["source"], "portal:127.0.0.1", "{entries}");
}
