//! Every page of the admin portal, graded by tools that are not moat's:
//! axe-core finds no serious or critical accessibility fault in any page
//! (in headless Chromium at 1440 px), and no page is wider than a 360 px
//! screen; Google's CSP Evaluator finds nothing in the portal's policy;
//! Mozilla's HTTP Observatory grades the portal A+, signed in and out.
//!
//! With `MOAT_PORTAL_SCREENSHOTS=DIR` each page's screenshot at 1440 px is
//! saved in DIR (`docs/portal/` holds the README's).

use std::path::{Path, PathBuf};
use std::time::Duration;

use moat_testkit::Moat;
use moat_testkit::browser::Browser;
use moat_testkit::client;
use moat_testkit::moat::{TEST_SERVER, toml_path};

const BIN: &str = env!("CARGO_BIN_EXE_moat");
const PASSWORD: &str = "correct horse battery staple";

fn node_modules() -> PathBuf {
    std::env::var("MOAT_TEST_NODE_PATH")
        .expect(
            "MOAT_TEST_NODE_PATH: run the tests with ./scripts/test, which installs the graders",
        )
        .into()
}

/// A moat with a static app that asks for a CSP source (pending) and a
/// recorded app in front of a small website.
async fn start(dir: &Path) -> Moat {
    let notes = dir.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(
        notes.join("manifest.json"),
        r#"{"name": "notes", "csp": {"script-src": ["https://cdn.example.com"], "img-src": ["https://images.example.com"]}}"#,
    )
    .unwrap();
    std::fs::write(
        notes.join("index.html"),
        "<!doctype html><title>notes</title>",
    )
    .unwrap();
    let (site, _) = moat_testkit::upstream::website().await;
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[security]\nadmin_password_bcrypt = \"{hash}\"\n\
             [[apps]]\nname = \"notes\"\npath = \"/notes\"\nauth = \"none\"\nstatic = {}\n\
             [[apps]]\nname = \"site\"\npath = \"/site\"\nauth = \"system\"\nupstream = \"http://{site}\"\n\
             [apps.recording]\nenabled = true\n",
            toml_path(&notes)
        ),
    )
    .await
}

async fn sign_in(moat: &Moat, http: &reqwest::Client, next: &str) -> String {
    client::sign_in_admin(moat, http, PASSWORD, next).await
}

/// A signed-in visit to the recorded app, ended by signing out: one closed
/// recording. Its id.
async fn recorded_visit(moat: &Moat) -> String {
    let http = client::http1(&moat.local_ca_root());
    let cookie = sign_in(moat, &http, "/site/").await;
    for path in [
        "/site/",
        "/site/style.css",
        "/site/logo.png",
        "/site/api/data",
    ] {
        let resp = http
            .get(moat.https_url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        resp.bytes().await.unwrap();
    }
    http.post(moat.https_url("/_moat/logout"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    moat.wait_until("the recording to close", Duration::from_secs(20), || {
        let out = moat_testkit::cli::against(BIN, moat, &["recordings", "list", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (list[0]["state"] == "complete").then(|| list[0]["id"].as_str().unwrap().to_owned())
    })
    .await
}

#[tokio::test]
async fn every_portal_page_is_accessible_and_fits_a_phone() {
    let dir = tempfile::tempdir().unwrap();
    let moat = start(dir.path()).await;
    let id = recorded_visit(&moat).await;
    // One approval made, one left waiting: the audit log has an entry.
    let (status, _) = moat
        .admin_request(
            "POST",
            "/api/v1/apps/notes/csp/approve",
            Some(&serde_json::json!({"source": "https://images.example.com"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let shots = std::env::var_os("MOAT_PORTAL_SCREENSHOTS").map(PathBuf::from);

    let b = Browser::start().await;
    b.client.set_window_size(1440, 1000).await.unwrap();
    b.client
        .goto(&moat.https_url("/_moat/portal/"))
        .await
        .unwrap();
    b.wait_location("/_moat/login?next=/_moat/portal/").await;
    if let Some(dir) = &shots {
        b.screenshot(&dir.join("sign-in.png")).await;
    }
    b.fill("user", "admin").await;
    b.fill("password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_location("/_moat/portal/").await;

    let recording = format!("/_moat/portal/recordings/{id}");
    // Name, path, and what shows the page is ready.
    let pages = [
        ("overview", "/_moat/portal/", "main h1"),
        ("apps", "/_moat/portal/apps", "main h1"),
        ("app", "/_moat/portal/apps/notes", "#csp table"),
        ("recordings", "/_moat/portal/recordings", "table.recordings"),
        ("player", recording.as_str(), "#play:not([disabled])"),
        ("page-view", recording.as_str(), "#play:not([disabled])"),
        ("storage", "/_moat/portal/storage", "main h1"),
        ("audit", "/_moat/portal/audit", "main h1"),
    ];
    let modules = node_modules();
    let mut faults = Vec::new();
    for (name, path, ready) in pages {
        b.client.set_window_size(1440, 1000).await.unwrap();
        b.client.goto(&moat.https_url(path)).await.unwrap();
        b.wait_for(ready).await;
        match name {
            // An exchange opened, with its heads and bodies.
            "player" => {
                b.click("#timeline li:nth-child(4) .entry").await;
                b.wait_for("#detail table.headers").await;
            }
            // The recorded page, shown from the recording.
            "page-view" => {
                b.click("#timeline li:nth-child(1) .entry").await;
                b.click("#detail button.secondary").await;
                b.wait_for("iframe#page-view[data-loaded]").await;
                b.client
                    .execute(
                        "document.getElementById('page-view').scrollIntoView()",
                        vec![],
                    )
                    .await
                    .unwrap();
            }
            _ => {}
        }
        for fault in b.accessibility_faults(&modules).await {
            faults.push(format!("{name} ({path}): {fault}"));
        }
        if let Some(dir) = &shots {
            // The whole page, at 1440 px wide.
            let height = b
                .strings("return [String(document.documentElement.scrollHeight)]")
                .await[0]
                .parse::<u32>()
                .unwrap();
            b.client
                .set_window_size(1440, height.clamp(600, 2400))
                .await
                .unwrap();
            b.screenshot(&dir.join(format!("{name}.png"))).await;
        }
        // At 360 px nothing is wider than the screen (wide tables scroll
        // inside their own box).
        b.client.set_window_size(360, 800).await.unwrap();
        let overflow = b
            .strings(
                "const d = document.documentElement; \
                 return [String(d.scrollWidth - d.clientWidth), \
                 [...document.querySelectorAll('body *')].filter(e => (e.getBoundingClientRect().right > d.clientWidth + 1 || (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === 'visible')) && !e.parentElement.closest('.scroll')).slice(-5).map(e => e.tagName + '.' + e.className + ' ' + e.textContent.slice(0, 40)).join(' ')]",
            )
            .await;
        assert_eq!(
            overflow[0], "0",
            "{name} ({path}) is wider than 360 px: {}",
            overflow[1]
        );
    }
    assert!(
        faults.is_empty(),
        "axe-core found serious or critical faults:\n{}",
        faults.join("\n")
    );
    b.close().await;
}

/// Runs a grader under Node; its output, and whether it passed.
fn node(args: &[&str], extra_ca: Option<&Path>) -> (bool, String) {
    let mut cmd = std::process::Command::new("node");
    cmd.env("NODE_PATH", node_modules()).args(args);
    if let Some(ca) = extra_ca {
        cmd.env("NODE_EXTRA_CA_CERTS", ca);
    }
    let out = cmd.output().expect("node runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn the_portals_policy_and_headers_pass_googles_and_mozillas_graders() {
    let dir = tempfile::tempdir().unwrap();
    let moat = start(dir.path()).await;
    let http = client::http1(&moat.local_ca_root());
    let cookie = sign_in(&moat, &http, "/_moat/portal/").await;
    let resp = http
        .get(moat.https_url("/_moat/portal/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let grading = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grading");

    // Google's CSP Evaluator, default and strict-CSP checks: nothing.
    let (clean, findings) = node(
        &[grading.join("csp_evaluator.js").to_str().unwrap(), &csp],
        None,
    );
    assert!(clean, "CSP Evaluator on {csp}:\n{findings}");

    // Mozilla's HTTP Observatory: A+ for the portal signed in, and for
    // what a signed-out visitor is led to (the sign-in page).
    let https = moat.https.unwrap().port().to_string();
    let plain = moat.http.unwrap().port().to_string();
    let ca = moat.local_ca_root();
    let observatory = grading.join("observatory.mjs");
    let modules = node_modules();
    for who in [Some(cookie.as_str()), None] {
        let mut args = vec![
            observatory.to_str().unwrap(),
            modules.to_str().unwrap(),
            "localhost",
            &https,
            &plain,
            "/_moat/portal/",
        ];
        args.extend(who);
        let (a_plus, report) = node(&args, Some(&ca));
        let graded = match who {
            Some(_) => format!("\"graded\": \"https://localhost:{https}/_moat/portal/\""),
            None => {
                format!("\"graded\": \"https://localhost:{https}/_moat/login?next=/_moat/portal/\"")
            }
        };
        assert!(a_plus, "HTTP Observatory:\n{report}");
        assert!(report.contains(&graded), "{graded}:\n{report}");
        assert!(report.contains("\"grade\": \"A+\""), "{report}");
    }
}
