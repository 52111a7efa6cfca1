//! The `moat` command itself: config check/default, start-up errors, the
//! embedded default, the admin socket.

use moat_testkit::moat::{TEST_SERVER, toml_path};
use moat_testkit::{Moat, certs, client};

const BIN: &str = env!("CARGO_BIN_EXE_moat");

fn moat(args: &[&str]) -> std::process::Output {
    moat_testkit::cli::run(BIN, args)
}

use moat_testkit::cli::show;

#[test]
fn config_default_is_a_valid_config() {
    let out = moat(&["config", "default"]);
    assert!(out.status.success(), "{}", show(&out));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("default.toml");
    std::fs::write(&file, &out.stdout).unwrap();
    let check = moat(&["config", "check", file.to_str().unwrap()]);
    assert!(check.status.success(), "{}", show(&check));
    assert!(String::from_utf8_lossy(&check.stdout).contains("OK (0 apps)"));
    // Every non-comment key line is preceded by a comment.
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.contains(" = ") && !l.starts_with('#') {
            assert!(lines[i - 1].starts_with('#'), "key without a comment: {l}");
        }
    }
}

#[test]
fn config_check_reports_every_problem_with_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nmax_header_size = \"lots\"\n\n[[apps]]\nname = \"a\"\npath = \"/a\"\nupstream = \"htp://x\"\n").unwrap();
    let out = moat(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = file.display();
    assert!(
        err.contains(&format!("{f}:2: server.max_header_size:")),
        "{err}"
    );
    assert!(err.contains(&format!("{f}:7: apps[0].upstream:")), "{err}");
    assert_eq!(err.matches("(fix: ").count(), 2, "{err}");

    std::fs::write(&file, "[tls]\nmin_versoin = \"1.3\"\n").unwrap();
    let out = moat(&["config", "check", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{f}:2: tls.min_versoin: unknown field")),
        "{err}"
    );
}

#[test]
fn config_check_loads_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let a = certs::write(dir.path(), "a", &["a.test"]);
    let b = certs::write(dir.path(), "b", &["b.test"]);
    let file = dir.path().join("moat.toml");
    std::fs::write(
        &file,
        format!(
            "[[tls.certificates]]\ncert = {}\nkey = {}\n",
            toml_path(&a.cert),
            toml_path(&b.key)
        ),
    )
    .unwrap();
    let out = moat(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not belong to the certificate"),
        "{}",
        show(&out)
    );
    std::fs::write(
        &file,
        format!(
            "[[tls.certificates]]\ncert = {}\nkey = {}\n",
            toml_path(&a.key),
            toml_path(&a.key)
        ),
    )
    .unwrap();
    let out = moat(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CERTIFICATE"),
        "{}",
        show(&out)
    );
}

#[test]
fn serve_refuses_a_bad_config_and_a_busy_port() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("moat.toml");
    std::fs::write(&file, "[server]\nhttps = \"nonsense\"\n").unwrap();
    let data = dir.path().join("data");
    let out = moat(&[
        "serve",
        "-c",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(":2: server.https: \"nonsense\" is not an address:port"),
        "{}",
        show(&out)
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std::fs::write(
        &file,
        format!(
            "[server]\nhttps = \"{}\"\nhttp = \"\"\n",
            busy.local_addr().unwrap()
        ),
    )
    .unwrap();
    let out = moat(&[
        "serve",
        "-c",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("(server.https)"),
        "{}",
        show(&out)
    );
}

#[tokio::test]
async fn admin_socket_is_private_and_exclusive() {
    use std::os::unix::fs::PermissionsExt;
    let m = Moat::start(BIN, TEST_SERVER).await;
    let mode = std::fs::metadata(m.socket()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(m.data_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let status = m.admin_get("/api/v1/status").await.unwrap();
    assert_eq!(status["apps"], serde_json::json!([]), "{status}");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    // A second moat on the same data directory is refused, and the first
    // keeps its socket.
    let out = moat(&[
        "serve",
        "-c",
        m.config_path.to_str().unwrap(),
        "--data-dir",
        m.data_dir().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another moat is running"),
        "{}",
        show(&out)
    );
    assert!(m.admin_get("/api/v1/status").await.is_ok());
}

/// The README's first command: no config file, fixed ports. `/` leads to
/// the admin portal, which asks for a login; the password printed at start
/// lets one in, to the overview's empty state (a form to add the first
/// app); and `moat app list` with no flags (the same environment) finds
/// the server.
#[tokio::test]
async fn embedded_default_leads_to_the_portal_behind_a_login() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stdout_path = dir.path().join("stdout.log");
    let mut child = tokio::process::Command::new(BIN)
        .arg("serve")
        .env_remove("MOAT_CONFIG")
        .env("MOAT_DATA_DIR", &data)
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let cert = data.join("tls/ca/root.crt");
    let http = loop {
        if cert.exists()
            && tokio::net::TcpStream::connect("127.0.0.1:8443")
                .await
                .is_ok()
        {
            break client::http1(&cert);
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "moat exited; is port 8443 or 8080 in use?"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // The listeners accept before the start finishes; the password is
    // printed when it has.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let password = loop {
        let stdout = std::fs::read_to_string(&stdout_path).unwrap();
        if let Some(p) = stdout.lines().find_map(|l| l.strip_prefix("    ")) {
            break p.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no password on stdout:\n{stdout}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    // The root leads to the portal; the portal to the login page (a
    // script gets a challenge).
    let resp = http
        .get("https://localhost:8443/")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/_moat/portal/");
    let resp = http
        .get("https://localhost:8443/_moat/portal/")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        "/_moat/login?next=/_moat/portal/"
    );
    let resp = http
        .get("https://localhost:8443/_moat/portal/")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));

    // The printed password signs in.
    let resp = http
        .post("https://localhost:8443/_moat/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://localhost:8443")
        .body(format!(
            "user=admin&password={password}&next=%2F_moat%2Fportal%2F"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/_moat/portal/");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    let session = cookie.split(';').next().unwrap().to_owned();
    let resp = http
        .get("https://localhost:8443/_moat/portal/")
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The full set of headers public scanners grade, with values they
    // rate best (a nonce policy with nothing inline, no framing, HSTS).
    let h = resp.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'nonce-"),
        "{csp}"
    );
    // Only the fallback for browsers without nonces, which the others
    // ignore (see the portal's policy).
    assert!(
        csp.contains("'strict-dynamic' 'unsafe-inline' https:;")
            && csp.matches("unsafe").count() == 1,
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(h.contains_key("permissions-policy"));
    assert_eq!(h["strict-transport-security"], "max-age=31536000");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    assert_eq!(h["cross-origin-resource-policy"], "same-origin");
    let page = resp.text().await.unwrap();
    assert!(page.contains("No apps yet"), "{page}");
    assert!(
        page.contains("action=\"/_moat/portal/apps\""),
        "the empty state has a form to add an app"
    );

    let resp = client::plain()
        .get("http://127.0.0.1:8080/some/page")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(
        resp.headers()["location"],
        "https://127.0.0.1:8443/some/page"
    );
    assert!(data.join("moat.sock").exists());

    // No flags: the environment that started the server finds it.
    let list = std::process::Command::new(BIN)
        .args(["app", "list"])
        .env_remove("MOAT_CLIENT_CONFIG")
        .env("MOAT_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", show(&list));
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("No apps yet"), "{text}");
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

/// `data_dir` in the config is used when `--data-dir` is not given, and
/// the access log can be written in Common Log Format to a file.
#[tokio::test]
async fn data_dir_from_config_and_common_log_format() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("moat.toml");
    let up = moat_testkit::upstream::echo("a").await;
    std::fs::write(
        &file,
        format!(
            "data_dir = \"state\"\n{TEST_SERVER}[log]\naccess_log = \"access.log\"\naccess_log_format = \"common\"\n[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{up}\"\n"
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "-c", file.to_str().unwrap()])
        .env_remove("MOAT_CONFIG")
        .env_remove("MOAT_DATA_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Relative paths in the file are relative to the file's folder.
    let socket = dir.path().join("state/moat.sock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !socket.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no admin socket in the configured data_dir"
        );
        assert!(child.try_wait().unwrap().is_none(), "moat exited");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Ask the admin socket where HTTPS listens (port 0 in the config).
    let m = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    use std::io::{Read, Write};
    let mut m = m;
    m.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: moat\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    m.read_to_string(&mut text).unwrap();
    let status: serde_json::Value =
        serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let https = status["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["role"] == "https")
        .unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let port = https.rsplit(':').next().unwrap();
    let http = client::http1(&dir.path().join("state/tls/ca/root.crt"));
    let resp = http
        .get(format!("https://localhost:{port}/clf?secret=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let log = dir.path().join("access.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("/clf")) {
            break l.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no access log line in {}",
            log.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(line.contains("\"GET /clf HTTP/1.1\" 200 "), "{line}");
    assert!(line.contains("app=a "), "{line}");
    assert!(
        !line.contains("secret"),
        "query strings are not logged: {line}"
    );
    child.start_kill().unwrap();
    let _ = child.wait().await;
}
