//! Security headers and the composed Content-Security-Policy on real
//! responses from upstream and static apps; approvals through the CLI.

use moat_testkit::moat::{TEST_SERVER, toml_path};
use moat_testkit::{Moat, client, upstream};

const BIN: &str = env!("CARGO_BIN_EXE_moat");

fn moat(args: &[&str]) -> std::process::Output {
    moat_testkit::cli::run(BIN, args)
}

use moat_testkit::cli::show;

const BASE: &str = "default-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'; form-action 'self'";

/// A policy as sent for `app`: with its report endpoint.
fn reported(policy: &str, app: &str) -> String {
    format!("{policy}; report-uri /_moat/csp-report/{app}; report-to moat-csp")
}

/// An upstream that sends its own versions of every header moat owns.
const UPSTREAM_HEADERS: &str = "/respond-with?x-frame-options=ALLOWALL&content-security-policy=default-src+*&strict-transport-security=max-age%3D1&referrer-policy=unsafe-url&permissions-policy=camera%3D*&x-debug-token=secret&x-app=kept&cross-origin-embedder-policy=unsafe-none";

fn bundle(dir: &std::path::Path, manifest: &str, admin: Option<&str>) -> std::path::PathBuf {
    let b = dir.join("bundle");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("manifest.json"), manifest).unwrap();
    std::fs::write(
        b.join("index.html"),
        "<!doctype html><title>notes</title><p>notes</p>",
    )
    .unwrap();
    if let Some(a) = admin {
        std::fs::write(b.join("config.json"), a).unwrap();
    }
    b
}

#[tokio::test]
async fn moat_is_authoritative_for_security_headers() {
    let up = upstream::echo("up").await;
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path(), "{\"name\": \"notes\"}", None);
    let m = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[headers]\nhide_upstream = [\"X-Debug-Token\"]\n\
             [[apps]]\nname = \"up\"\npath = \"/up\"\nauth = \"none\"\nstrip_path = true\nupstream = \"http://{up}\"\n\
             [[apps]]\nname = \"strict\"\npath = \"/strict\"\nauth = \"none\"\nstrip_path = true\nupstream = \"http://{up}\"\n\
             [apps.headers]\nframe_options = \"DENY\"\nreferrer_policy = \"off\"\ncross_origin_embedder_policy = \"require-corp\"\n\
             [[apps]]\nname = \"notes\"\npath = \"/notes\"\nauth = \"none\"\nstatic = {}\n",
            toml_path(&b)
        ),
    )
    .await;
    let http = client::http1(&m.local_ca_root());
    let get = |path: String| {
        let http = http.clone();
        async move { http.get(path).send().await.unwrap() }
    };

    let r = get(m.https_url(&format!("/up{UPSTREAM_HEADERS}"))).await;
    let h = r.headers();
    assert_eq!(h["x-frame-options"], "SAMEORIGIN");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    assert_eq!(h["cross-origin-resource-policy"], "same-origin");
    assert!(
        h["permissions-policy"]
            .to_str()
            .unwrap()
            .starts_with("accelerometer=()")
    );
    assert_eq!(h.get_all("content-security-policy").iter().count(), 1);
    assert_eq!(h["content-security-policy"], reported(BASE, "up").as_str());
    assert_eq!(
        h["reporting-endpoints"],
        "moat-csp=\"/_moat/csp-report/up\""
    );
    assert_eq!(h["strict-transport-security"], "max-age=31536000");
    assert!(
        h.get("cross-origin-embedder-policy").is_none(),
        "off by default, and the upstream's is removed"
    );
    assert!(h.get("x-debug-token").is_none(), "hide_upstream");
    assert_eq!(h["x-app"], "kept", "other upstream headers pass");

    let r = get(m.https_url(&format!("/strict{UPSTREAM_HEADERS}"))).await;
    let h = r.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cross-origin-embedder-policy"], "require-corp");
    assert!(
        h.get("referrer-policy").is_none(),
        "off removes the upstream's too"
    );
    assert!(
        h.get("x-debug-token").is_none(),
        "the global list applies to every app"
    );

    for (path, csp) in [
        ("/notes/", reported(BASE, "notes")),
        ("/nothing-here", BASE.to_owned()),
    ] {
        let r = get(m.https_url(path)).await;
        assert_eq!(
            r.headers()["content-security-policy"],
            csp.as_str(),
            "{path}"
        );
        assert_eq!(r.headers()["x-frame-options"], "SAMEORIGIN", "{path}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
    }
    // moat's login page keeps its own, stricter policy.
    let r = get(m.https_url("/_moat/login")).await;
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
}

#[tokio::test]
async fn csp_layers_compose_and_requests_wait_for_approval() {
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(
        dir.path(),
        r#"{"name": "notes", "csp": {
            "connect-src": ["https://api.example.com/v1/"],
            "frame-src": ["https://maps.example.com"],
            "script-src": ["'unsafe-inline'"]
        }}"#,
        Some(
            r#"{"csp": {"add": ["img-src https://img.example.com"], "remove": ["form-action 'self'"]}}"#,
        ),
    );
    let config = format!(
        "{TEST_SERVER}[[csp.allow]]\nsource = \"regex:https://[a-z]+\\\\.example\\\\.com\"\ndirective = \"frame-src\"\n\
         [[apps]]\nname = \"notes\"\npath = \"/notes\"\nauth = \"none\"\nstatic = {}\n",
        toml_path(&b)
    );
    let mut m = Moat::start(BIN, &config).await;
    let data = m.data_dir().to_str().unwrap().to_owned();
    let csp_of = |m: &Moat| {
        let http = client::http1(&m.local_ca_root());
        let url = m.https_url("/notes/");
        async move {
            let r = http.get(url).send().await.unwrap();
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    let policy = csp_of(&m).await;
    assert_eq!(
        policy,
        reported(
            "default-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'; form-action 'none'; \
             frame-src 'self' https://maps.example.com; img-src 'self' https://img.example.com",
            "notes"
        )
    );

    // The explanation: every source's layer and approval, what waits.
    let out = moat(&["csp", "show", "notes", "--json", "--data-dir", &data]);
    assert!(out.status.success(), "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["policy"], policy);
    let source = |d: &str, s: &str| {
        v["directives"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["directive"] == d)
            .and_then(|x| {
                x["sources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["source"] == s)
            })
            .cloned()
            .unwrap_or_else(|| panic!("{d} {s} not in {v}"))
    };
    assert_eq!(
        source("frame-src", "'self'")["inherited_from"],
        "default-src"
    );
    assert_eq!(
        source("frame-src", "https://maps.example.com")["layer"],
        "manifest"
    );
    assert!(
        source("frame-src", "https://maps.example.com")["approval"]
            .as_str()
            .unwrap()
            .contains("[[csp.allow]]")
    );
    assert_eq!(
        source("img-src", "https://img.example.com")["layer"],
        "admin"
    );
    assert_eq!(v["pending"][0]["source"], "https://api.example.com/v1/");
    assert_eq!(
        v["pending"][0]["approve_with"],
        "moat csp approve notes https://api.example.com/v1/ --directive connect-src"
    );
    assert_eq!(v["refused"][0]["source"], "'unsafe-inline'");
    let out = moat(&["csp", "show", "notes", "--data-dir", &data]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("not applied until approved") && text.contains("refused as dangerous"),
        "{text}"
    );

    // A dangerous request cannot be approved here; a pending one can.
    let out = moat(&[
        "csp",
        "approve",
        "notes",
        "'unsafe-inline'",
        "--data-dir",
        &data,
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("allow_unsafe"));
    let out = moat(&[
        "csp",
        "approve",
        "notes",
        "https://nope.example",
        "--data-dir",
        &data,
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    let out = moat(&[
        "csp",
        "approve",
        "notes",
        "https://api.example.com/v1/",
        "--data-dir",
        &data,
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        csp_of(&m)
            .await
            .contains("connect-src 'self' https://api.example.com/v1/")
    );

    // The approval survives a restart, and is in the audit log.
    let dir = std::mem::replace(&mut m.dir, tempfile::tempdir().unwrap());
    drop(m);
    let m = Moat::start_in(BIN, &config, dir).await;
    assert!(
        csp_of(&m)
            .await
            .contains("connect-src 'self' https://api.example.com/v1/")
    );
    let out = moat(&["audit", "list", "--json", "--data-dir", &data]);
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log[0]["action"], "csp.approve");
    assert_eq!(
        log[0]["after"]["approved"][0],
        "connect-src https://api.example.com/v1/"
    );

    let out = moat(&[
        "csp",
        "revoke",
        "notes",
        "https://api.example.com/v1/",
        "--data-dir",
        &data,
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(!csp_of(&m).await.contains("api.example.com"));
}

#[tokio::test]
async fn report_only_and_bad_layers() {
    let up = upstream::echo("up").await;
    let m = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nname = \"try\"\npath = \"/try\"\nauth = \"none\"\nupstream = \"http://{up}\"\n[apps.csp]\nreport_only = true\n"
        ),
    )
    .await;
    let r = client::http1(&m.local_ca_root())
        .get(m.https_url("/try/x"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-security-policy").is_none());
    assert_eq!(
        r.headers()["content-security-policy-report-only"],
        reported(BASE, "try").as_str()
    );

    // Every layer is checked, and problems name the layer and the file.
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(
        dir.path(),
        r#"{"csp": {"conect-src": ["https://x"], "img-src": ["self"]}}"#,
        Some(r#"{"csp": {"add": ["script-src https:"]}}"#),
    );
    let file = dir.path().join("moat.toml");
    std::fs::write(
        &file,
        format!(
            "[csp]\npolicy = \"default-src 'self' 'unsafe-eval'\"\n[[apps]]\nname = \"n\"\npath = \"/n\"\nstatic = {}\n[apps.csp]\nadd = [\"style-src 'unsafe-inline'\", \"nonsense\"]\n",
            toml_path(&b)
        ),
    )
    .unwrap();
    let out = moat(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "csp.policy: default-src 'unsafe-eval' is dangerous",
        "apps[0].csp.add[0]: style-src 'unsafe-inline' is dangerous",
        "allow_unsafe",
        "apps[0].csp.add[1]: \"nonsense\" is not \"DIRECTIVE SOURCE\"",
        "manifest.json: csp.conect-src[0]: \"conect-src\" is not a CSP directive",
        "did you mean connect-src?",
        "manifest.json: csp.img-src[0]: img-src: unknown source self",
        "config.json: csp.add[0]: script-src https: is dangerous",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

/// Violation reports in both browser formats are stored, counted once per
/// distinct violation, bounded in size and rate, and listed by the CLI.
#[tokio::test]
async fn violation_reports_are_bounded_deduplicated_and_listed() {
    let up = upstream::echo("up").await;
    let m = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nname = \"app\"\npath = \"/app\"\nupstream = \"http://{up}\"\n"
        ),
    )
    .await;
    let http = client::http1(&m.local_ca_root());
    let post = |ct: &'static str, body: String, app: &'static str| {
        let http = http.clone();
        let url = m.https_url(&format!("/_moat/csp-report/{app}"));
        async move {
            http.post(url)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let legacy = |q: &str| {
        format!(
            r#"{{"csp-report": {{"document-uri": "https://m/app/page?{q}", "effective-directive": "script-src-elem",
               "violated-directive": "script-src-elem", "blocked-uri": "https://cdn.example/lib.js?{q}", "disposition": "enforce"}}}}"#
        )
    };
    // No login needed (browsers send reports without credentials); the
    // same violation with other query strings counts as one.
    for q in ["a=1", "b=2", "c=3"] {
        assert_eq!(post("application/csp-report", legacy(q), "app").await, 204);
    }
    let modern = r#"[{"type": "csp-violation", "body": {"documentURL": "https://m/app/", "blockedURL": "inline",
        "effectiveDirective": "style-src-attr", "disposition": "report"}}]"#;
    assert_eq!(
        post("application/reports+json", modern.into(), "app").await,
        204
    );
    assert_eq!(post("text/plain", legacy("x"), "app").await, 415);
    assert_eq!(
        post("application/csp-report", "{oops".into(), "app").await,
        400
    );
    assert_eq!(
        post("application/csp-report", "x".repeat(70_000), "app").await,
        413
    );
    // An unknown app gets the same answer (no way to learn app names), and
    // nothing is kept for it.
    assert_eq!(
        post("application/csp-report", legacy("x"), "nope").await,
        204
    );

    let data = m.data_dir().to_str().unwrap().to_owned();
    let out = moat(&["csp", "reports", "app", "--json", "--data-dir", &data]);
    assert!(out.status.success(), "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    let script = rows
        .iter()
        .find(|r| r["directive"] == "script-src-elem")
        .unwrap();
    assert_eq!(script["count"], 3, "{v}");
    assert_eq!(script["blocked"], "https://cdn.example/lib.js");
    let out = moat(&["csp", "reports", "app", "--data-dir", &data]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("style-src-attr"));

    // A flood is cut off per app.
    let mut statuses = Vec::new();
    for _ in 0..120 {
        statuses.push(post("application/reports+json", "[]".into(), "app").await);
    }
    assert!(
        statuses.contains(&429),
        "no 429 among {} posts",
        statuses.len()
    );
}
