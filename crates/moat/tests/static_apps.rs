//! Static web-app bundles over real TLS: content types, validators,
//! precompressed files, SPA fallback, no listings, no way out of the folder.

use std::path::Path;

use moat_testkit::moat::{TEST_SERVER, toml_path};
use moat_testkit::{Moat, client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_moat");
const SECRET: &str = "TOP-SECRET-OUTSIDE";

fn write(p: &Path, body: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// Two bundles (`/notes` with SPA fallback, `/plain` without) and secrets
/// beside and outside them.
async fn start() -> (Moat, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let notes = r.join("notes");
    write(
        &notes.join("manifest.json"),
        br#"{"name": "Notes", "spa": true}"#,
    );
    write(
        &notes.join("index.html"),
        b"<!doctype html><title>notes</title>SPA-INDEX",
    );
    write(&notes.join("app.js"), b"console.log('plain js');");
    write(&notes.join("app.js.br"), b"BROTLI-BYTES");
    write(&notes.join("app.js.gz"), b"GZIP-BYTES");
    write(&notes.join("style.css"), b"body{}");
    write(&notes.join("data.json"), b"{}");
    write(&notes.join("logo.svg"), b"<svg/>");
    write(&notes.join("font.woff2"), b"wOF2");
    write(&notes.join(".env"), SECRET.as_bytes());
    write(&r.join("secret.txt"), SECRET.as_bytes());
    write(&r.join("outside/inner.txt"), SECRET.as_bytes());
    std::os::unix::fs::symlink(r.join("secret.txt"), notes.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink(r.join("outside"), notes.join("outdir")).unwrap();
    std::os::unix::fs::symlink(notes.join("style.css"), notes.join("alias.css")).unwrap();
    let plain = r.join("plain");
    write(&plain.join("manifest.json"), br#"{"name": "Plain"}"#);
    write(&plain.join("sub/index.html"), b"SUB-INDEX");
    std::fs::create_dir_all(plain.join("empty")).unwrap();
    write(&plain.join("empty/file.txt"), b"x");
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"notes\"\npath = \"/notes\"\nstatic = {}\n\n[[apps]]\nauth = \"none\"\nname = \"plain\"\npath = \"/plain\"\nstatic = {}\n",
            toml_path(&notes),
            toml_path(&plain)
        ),
    )
    .await;
    (moat, root)
}

#[tokio::test]
async fn content_types_head_and_methods() {
    let (moat, _root) = start().await;
    let http = client::http1(&moat.local_ca_root());
    for (path, ty) in [
        ("/notes/", "text/html; charset=utf-8"),
        ("/notes/app.js", "text/javascript; charset=utf-8"),
        ("/notes/style.css", "text/css; charset=utf-8"),
        ("/notes/data.json", "application/json; charset=utf-8"),
        ("/notes/logo.svg", "image/svg+xml; charset=utf-8"),
        ("/notes/font.woff2", "font/woff2"),
        ("/notes/alias.css", "text/css; charset=utf-8"),
    ] {
        let resp = http.get(moat.https_url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], ty, "{path}");
    }
    let resp = http
        .head(moat.https_url("/notes/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], "24");
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = http
        .post(moat.https_url("/notes/app.js"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
}

#[tokio::test]
async fn validators_give_304() {
    let (moat, _root) = start().await;
    let http = client::http1(&moat.local_ca_root());
    let resp = http
        .get(moat.https_url("/notes/style.css"))
        .send()
        .await
        .unwrap();
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let modified = resp.headers()["last-modified"].to_str().unwrap().to_owned();
    let resp = http
        .get(moat.https_url("/notes/style.css"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert_eq!(resp.headers()["etag"], etag.as_str());
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = http
        .get(moat.https_url("/notes/style.css"))
        .header("if-modified-since", &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    let resp = http
        .get(moat.https_url("/notes/style.css"))
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "body{}");
    // A changed file gets a new validator.
    std::fs::write(_root.path().join("notes/style.css"), b"body{color:red}").unwrap();
    let resp = http
        .get(moat.https_url("/notes/style.css"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_ne!(resp.headers()["etag"], etag.as_str());
}

#[tokio::test]
async fn precompressed_variants() {
    let (moat, _root) = start().await;
    let http = client::http1(&moat.local_ca_root());
    let get = |enc: Option<&'static str>| {
        let mut r = http.get(moat.https_url("/notes/app.js"));
        if let Some(e) = enc {
            r = r.header("accept-encoding", e);
        }
        r.send()
    };
    let resp = get(Some("gzip, deflate, br")).await.unwrap();
    assert_eq!(resp.headers()["content-encoding"], "br");
    assert_eq!(
        resp.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(resp.headers()["vary"], "Accept-Encoding");
    let br_etag = resp.headers()["etag"].clone();
    assert_eq!(resp.text().await.unwrap(), "BROTLI-BYTES");
    let resp = get(Some("gzip")).await.unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_ne!(
        resp.headers()["etag"],
        br_etag,
        "each variant has its own validator"
    );
    assert_eq!(resp.text().await.unwrap(), "GZIP-BYTES");
    let resp = get(Some("br;q=0, identity")).await.unwrap();
    assert!(resp.headers().get("content-encoding").is_none());
    assert_eq!(resp.text().await.unwrap(), "console.log('plain js');");
    let resp = get(None).await.unwrap();
    assert!(resp.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn spa_fallback_and_folders() {
    let (moat, _root) = start().await;
    let http = client::http1(&moat.local_ca_root());
    let html = |p: &str| {
        http.get(moat.https_url(p))
            .header("accept", "text/html,application/xhtml+xml")
            .send()
    };
    let resp = html("/notes/settings/profile").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("SPA-INDEX"));
    // Missing assets stay 404 even in an SPA, and non-HTML requests too.
    assert_eq!(html("/notes/missing.js").await.unwrap().status(), 404);
    assert_eq!(
        http.get(moat.https_url("/notes/settings"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Without "spa" in the manifest there is no fallback.
    assert_eq!(html("/plain/settings/profile").await.unwrap().status(), 404);
    // Mount and folders redirect to their slash form; folders without
    // index.html are not listed.
    let resp = http.get(moat.https_url("/notes?x=1")).send().await.unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(resp.headers()["location"], "/notes/?x=1");
    let resp = http.get(moat.https_url("/plain/sub")).send().await.unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(resp.headers()["location"], "/plain/sub/");
    assert_eq!(
        http.get(moat.https_url("/plain/sub/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "SUB-INDEX"
    );
    let resp = http
        .get(moat.https_url("/plain/empty/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(!resp.text().await.unwrap().contains("file.txt"));
}

/// Sends a raw request target, exactly as written (clients normalise `..`).
async fn raw_get(moat: &Moat, target: &str) -> String {
    let mut s = client::raw_https(moat).await;
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn no_path_traversal() {
    let (moat, _root) = start().await;
    for target in [
        "/notes/../secret.txt",
        "/notes/%2e%2e/secret.txt",
        "/notes/%2E%2E/%2E%2E/etc/passwd",
        "/notes/..%2fsecret.txt",
        "/notes/%2e%2e%2fsecret.txt",
        "/notes/.%2e/secret.txt",
        "/notes/..%5csecret.txt",
        "/notes/secret.txt%00.js",
        "/notes/.env",
        "/notes/%2eenv",
        "/notes/escape.txt",
        "/notes/outdir/inner.txt",
        "/notes/outdir/",
        "/notes//../secret.txt",
    ] {
        let resp = raw_get(&moat, target).await;
        let status: u16 = resp
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        assert!(status == 400 || status == 404, "{target}: {resp}");
        assert!(!resp.contains(SECRET), "{target} leaked: {resp}");
    }
    // The symlink attempt is logged.
    moat.wait_stderr("resolves outside its app folder").await;
}
