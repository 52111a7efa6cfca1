//! `moat status` and `moat app` against a running moat over its socket.

use std::process::Command;

use moat_testkit::moat::TEST_SERVER;
use moat_testkit::{Moat, upstream};

const BIN: &str = env!("CARGO_BIN_EXE_moat");

fn moat(args: &[&str]) -> std::process::Output {
    moat_testkit::cli::run(BIN, args)
}

use moat_testkit::cli::show;

async fn two_apps() -> (Moat, std::net::SocketAddr) {
    let a = upstream::echo("a").await;
    let m = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"grafana\"\npath = \"/grafana\"\nupstream = \"http://{a}\"\nmax_body_size = \"2MiB\"\n\n[[apps]]\nauth = \"none\"\nname = \"wiki\"\nhost = \"wiki.example.com\"\nupstream = \"http://{a}/w\"\nstrip_path = true\n"
        ),
    )
    .await;
    (m, a)
}

#[tokio::test]
async fn status_and_app_commands() {
    let (m, upstream_addr) = two_apps().await;
    let data = m.data_dir();
    let data = data.to_str().unwrap();

    let out = moat(&["status", "--data-dir", data]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("moat {}, up ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}  https", m.https.unwrap())),
        "{text}"
    );
    assert!(text.contains("grafana  /grafana"), "{text}");
    assert!(text.contains("wiki.example.com/"), "{text}");

    let out = moat(&["status", "--json", "--socket", m.socket().to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["apps"].as_array().unwrap().len(), 2);
    assert_eq!(v["listeners"][0]["role"], "https");

    let out = moat(&["app", "list", "--json", "--data-dir", data]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[1]["name"], "wiki");
    assert_eq!(v[1]["target"], format!("http://{upstream_addr}/w"));
    assert_eq!(v[1]["defined_in"], "config");

    let out = moat(&["app", "show", "grafana", "--data-dir", data]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("max body size            2MiB"), "{text}");
    let out = moat(&["app", "show", "wiki", "--json", "--data-dir", data]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["strip_path"], true);
    assert_eq!(v["timeouts"]["idle"], "5m");

    // Exit codes scripts can rely on.
    let out = moat(&["app", "show", "nope", "--data-dir", data]);
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("app \"nope\" not found"));
}

#[tokio::test]
async fn server_not_running_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = moat(&["status", "--data-dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("moat is not running"),
        "{}",
        show(&out)
    );
    // A moat that stopped removes its socket: the same answer.
    let mut m = Moat::start(BIN, TEST_SERVER).await;
    m.signal(libc::SIGTERM);
    m.wait_exit(std::time::Duration::from_secs(20)).await;
    let out = moat(&["status", "--data-dir", m.data_dir().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
}

/// Runs a copy of the binary as `nobody` (the build directory need not be
/// readable by other users).
fn as_nobody(args: &[&str]) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("moat");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&bin)
        .args(args)
        .output()
        .unwrap()
}

/// SECURITY: only moat's own user may use the admin socket.
#[tokio::test]
async fn another_user_is_refused() {
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test runs the client as `nobody` and needs root (CI runs as root)");
    }
    let m = Moat::start(BIN, TEST_SERVER).await;
    let out = as_nobody(&["status", "--socket", m.socket().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission denied"),
        "{}",
        show(&out)
    );
    // Even with the directories opened up, the socket's own mode refuses.
    use std::os::unix::fs::PermissionsExt;
    for dir in [m.dir.path().to_path_buf(), m.data_dir()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = as_nobody(&["status", "--socket", m.socket().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    // The owner still gets in.
    assert!(
        moat(&["status", "--socket", m.socket().to_str().unwrap()])
            .status
            .success()
    );
}

/// The served OpenAPI document is the repo's, every path in it answers,
/// and every answer has the fields the document marks required.
#[tokio::test]
async fn api_matches_its_openapi_document() {
    let (m, _) = two_apps().await;
    let served = m.admin_get("/api/v1/openapi.json").await.unwrap();
    let repo: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(served, repo);

    let schemas = &repo["components"]["schemas"];
    // Changes first, so the audit log has entries to check; their answers
    // are checked too.
    let (status, _) = m
        .admin_request("POST", "/api/v1/apps/grafana/reload", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, created) = m
        .admin_request(
            "POST",
            "/api/v1/apps",
            Some(&serde_json::json!({"name": "api-app", "path": "/api-app", "upstream": "http://127.0.0.1:9"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{created}");
    check(
        &created,
        &serde_json::json!({"$ref": "#/components/schemas/AppDetail"}),
        schemas,
        "created",
    );
    let (status, invalid) = m
        .admin_request(
            "POST",
            "/api/v1/apps",
            Some(&serde_json::json!({"name": "x", "path": "nope", "upstream": "ftp://x", "colour": 1})),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{invalid}");
    check(
        &invalid,
        &serde_json::json!({"$ref": "#/components/schemas/ApiError"}),
        schemas,
        "invalid",
    );
    assert_eq!(invalid["code"], "invalid");
    assert!(
        invalid["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{invalid}"
    );
    let (status, _) = m
        .admin_request("DELETE", "/api/v1/apps/api-app", None)
        .await
        .unwrap();
    assert_eq!(status, 204);
    let paths = repo["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, item) in paths {
        // Paths of one recording or bucket need one; tests/recording.rs and
        // tests/buckets.rs cover them.
        if item.get("get").is_none()
            || path.contains("{id}")
            || path.starts_with("/api/v1/buckets/")
        {
            continue;
        }
        let concrete = path.replace("{name}", "grafana");
        let value = m.admin_get(&concrete).await.unwrap();
        let schema = &item["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        if !schema.is_null() {
            check(&value, schema, schemas, &concrete);
            checked += 1;
        }
    }
    assert_eq!(
        checked, 8,
        "status, apps, app detail, audit, CSP, CSP reports, buckets and recordings were checked"
    );
    // The documented 404 body.
    let missing = m.admin_get("/api/v1/apps/nope").await.unwrap();
    check(
        &missing,
        &serde_json::json!({"$ref": "#/components/schemas/ApiError"}),
        schemas,
        "404",
    );
}

/// Checks required fields and basic types, following $ref, allOf and arrays.
fn check(
    value: &serde_json::Value,
    schema: &serde_json::Value,
    schemas: &serde_json::Value,
    at: &str,
) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return check(value, &schemas[name], schemas, at);
    }
    if let Some(all) = schema["allOf"].as_array() {
        return all.iter().for_each(|s| check(value, s, schemas, at));
    }
    match schema["type"].as_str() {
        Some("object") => {
            let obj = value
                .as_object()
                .unwrap_or_else(|| panic!("{at}: expected an object, got {value}"));
            for req in schema["required"].as_array().into_iter().flatten() {
                assert!(
                    obj.contains_key(req.as_str().unwrap()),
                    "{at}: missing required field {req} in {value}"
                );
            }
            for (k, sub) in schema["properties"].as_object().into_iter().flatten() {
                if let Some(v) = obj.get(k) {
                    check(v, sub, schemas, &format!("{at}.{k}"));
                }
            }
        }
        Some("array") => value
            .as_array()
            .unwrap_or_else(|| panic!("{at}: expected an array"))
            .iter()
            .for_each(|v| check(v, &schema["items"], schemas, at)),
        Some("string") => assert!(value.is_string(), "{at}: expected a string, got {value}"),
        Some("integer") => assert!(
            value.is_u64() || value.is_i64(),
            "{at}: expected an integer, got {value}"
        ),
        Some("boolean") => assert!(value.is_boolean(), "{at}: expected a boolean, got {value}"),
        _ => {}
    }
    if let Some(options) = schema["enum"].as_array() {
        assert!(
            options.contains(value),
            "{at}: {value} is not one of {options:?}"
        );
    }
}

/// bcrypt (cost 4, to keep tests quick) of "admin-test-pass", made by
/// Python's bcrypt.
const TEST_HASH: &str = "$2b$04$BiI6EeLbVeVGtQbzlLdLJOb8nHs.FiuH7LywPwpH8R6RT8hURmQrS";

#[tokio::test]
async fn admin_api_over_tcp_is_absent_by_default() {
    let a = upstream::echo("a").await;
    let m = Moat::start(
        BIN,
        &format!("{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"a\"\npath = \"/\"\nupstream = \"http://{a}\"\n"),
    )
    .await;
    let http = moat_testkit::client::http1(&m.local_ca_root());
    let resp = http
        .get(m.https_url("/_moat/api/v1/status"))
        .basic_auth("admin", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(
        resp.headers().get("x-upstream").is_none(),
        "the namespace never reaches an app"
    );
    // Other paths still reach the app mounted on "/".
    assert_eq!(
        http.get(m.https_url("/api/v1/status"))
            .send()
            .await
            .unwrap()
            .headers()["x-upstream"],
        "a"
    );
}

#[tokio::test]
async fn admin_api_over_tcp_needs_credentials_and_throttles() {
    let m = Moat::start(
        BIN,
        &format!("[security]\nadmin_over_tcp = true\nadmin_password_bcrypt = \"{TEST_HASH}\"\n\n{TEST_SERVER}"),
    )
    .await;
    let http = moat_testkit::client::http1(&m.local_ca_root());
    let url = m.https_url("/_moat/api/v1/status");

    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=\"moat admin\"")
    );
    let resp = http
        .get(&url)
        .basic_auth("admin", Some("admin-test-pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let status: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    // No app: the portal stands in for the welcome app.
    assert_eq!(status["apps"], serde_json::json!([]), "{status}");
    let resp = http
        .get(m.https_url("/_moat/api/v1/apps/welcome"))
        .basic_auth("admin", Some("admin-test-pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // The plain-HTTP listener only redirects.
    let resp = moat_testkit::client::plain()
        .get(m.http_url("/_moat/api/v1/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 308);

    // Wrong user (right password) and wrong password count alike; the
    // fifth failure locks the address out, even for right credentials.
    let resp = http
        .get(&url)
        .basic_auth("root", Some("admin-test-pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    for _ in 0..3 {
        assert_eq!(
            http.get(&url)
                .basic_auth("admin", Some("guess"))
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
    }
    let resp = http
        .get(&url)
        .basic_auth("admin", Some("guess"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["code"], "too_many_attempts");
    let resp = http
        .get(&url)
        .basic_auth("admin", Some("admin-test-pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        429,
        "locked out even with the right password"
    );
    m.wait_stderr("admin API over TCP: failed login").await;
}

#[test]
fn admin_over_tcp_requires_tls() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("moat.toml");
    std::fs::write(
        &file,
        "[security]\nadmin_over_tcp = true\n\n[tls]\nenabled = false\n",
    )
    .unwrap();
    let out = moat(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("security.admin_over_tcp: the admin API over TCP is only served over TLS"),
        "{}",
        show(&out)
    );
}

fn moat_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("MOAT_DATA_DIR")
        .env_remove("MOAT_CLIENT_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[tokio::test]
async fn cli_talks_to_a_remote_moat() {
    let m = Moat::start(
        BIN,
        &format!("[security]\nadmin_over_tcp = true\nadmin_password_bcrypt = \"{TEST_HASH}\"\n\n{TEST_SERVER}"),
    )
    .await;
    let uri = format!("https://localhost:{}", m.https.unwrap().port());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("client.toml");
    std::fs::write(
        &cfg,
        format!(
            "server_uri = \"{uri}\"\nadmin_user = \"admin\"\n[client]\nadmin_password = \"admin-test-pass\"\nca_file = {:?}\n",
            m.local_ca_root().display().to_string()
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();

    // Config file, certificate verified against ca_file.
    let out = moat_env(&["status", "--json", "--client-config", cfg], &[]);
    assert!(out.status.success(), "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let out = moat_env(&["app", "show", "nope", "--client-config", cfg], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    // A change over TCP is audited under the admin user and the address.
    let out = moat_env(
        &[
            "app",
            "create",
            "remote",
            "--path",
            "/remote",
            "--upstream",
            "http://127.0.0.1:9",
            "--client-config",
            cfg,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = moat_env(&["audit", "list", "--json", "--client-config", cfg], &[]);
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log[0]["action"], "app.create");
    assert_eq!(log[0]["actor"], "admin");
    assert_eq!(log[0]["source"], "tcp:127.0.0.1");

    // Environment variables only, with the named unsafe switch.
    let env = [
        ("MOAT_SERVER_URI", uri.as_str()),
        ("MOAT_ADMIN_PASSWORD", "admin-test-pass"),
        ("MOAT_SKIP_CERT_CHECK", "1"),
    ];
    let out = moat_env(&["app", "list"], &env);
    assert!(out.status.success(), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("remote"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("skip_cert_check is on"));

    // Without a trusted certificate the connection is refused.
    let out = moat_env(
        &["status"],
        &[
            ("MOAT_SERVER_URI", uri.as_str()),
            ("MOAT_ADMIN_PASSWORD", "admin-test-pass"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TLS"),
        "{}",
        show(&out)
    );

    // Wrong password: permission denied.
    let env = [
        ("MOAT_SERVER_URI", uri.as_str()),
        ("MOAT_ADMIN_PASSWORD", "wrong"),
        ("MOAT_SKIP_CERT_CHECK", "1"),
    ];
    let out = moat_env(&["status"], &env);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong user name or password"),
        "{}",
        show(&out)
    );

    // Plain http is refused before anything is sent.
    let out = moat_env(
        &["status"],
        &[
            ("MOAT_SERVER_URI", "http://localhost:1"),
            ("MOAT_ADMIN_PASSWORD", "x"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be https://HOST:PORT"),
        "{}",
        show(&out)
    );

    // --data-dir (or --socket) always means the local socket.
    let out = moat_env(
        &["status", "--data-dir", m.data_dir().to_str().unwrap()],
        &env,
    );
    assert!(out.status.success(), "{}", show(&out));
}

/// Apps created through the CLI are served at once, survive a restart,
/// yield to the config file, and every change is in the audit log.
#[tokio::test]
async fn app_lifecycle_persists_and_is_audited() {
    let a = upstream::echo("a").await;
    let config = format!(
        "{TEST_SERVER}[[apps]]\nauth = \"none\"\nname = \"grafana\"\npath = \"/grafana\"\nupstream = \"http://{a}\"\n"
    );
    let mut m = Moat::start(BIN, &config).await;
    let http = moat_testkit::client::http1(&m.local_ca_root());
    let data = m.data_dir();
    let data = data.to_str().unwrap().to_owned();
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--data-dir", data.as_str()]);
        moat(&all)
    };
    let up = format!("http://{a}");

    let out = cli(&[
        "app",
        "create",
        "wiki",
        "--path",
        "/wiki",
        "--upstream",
        &up,
        "--auth",
        "none",
        "--json",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["defined_in"], "api");
    assert_eq!(v["auth"], "none");
    let resp = http.get(m.https_url("/wiki/page")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "served at once");

    // Clashes are refused with exit code 6 and say with what.
    for (args, says) in [
        (
            vec![
                "app",
                "create",
                "wiki",
                "--path",
                "/other",
                "--upstream",
                &up,
            ],
            "already exists",
        ),
        (
            vec![
                "app",
                "create",
                "x",
                "--path",
                "/grafana",
                "--upstream",
                &up,
            ],
            "mounted on /grafana",
        ),
        (
            vec![
                "app",
                "create",
                "grafana",
                "--path",
                "/g2",
                "--upstream",
                &up,
            ],
            "config file",
        ),
        (
            vec!["app", "update", "grafana", "--strip-path", "true"],
            "read-only",
        ),
        (vec!["app", "delete", "grafana"], "read-only"),
    ] {
        let out = cli(&args);
        assert_eq!(out.status.code(), Some(6), "{args:?}: {}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {}",
            show(&out)
        );
    }
    // A bad definition names the field and the fix.
    let out = cli(&[
        "app",
        "create",
        "bad",
        "--path",
        "/bad",
        "--upstream",
        "ftp://x",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("upstream: \"ftp://x\"") && err.contains("fix:"),
        "{err}"
    );
    let out = cli(&["app", "update", "nope", "--strip-path", "true"]);
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));

    // An update changes only what it names.
    let out = cli(&["app", "update", "wiki", "--strip-path", "true", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["strip_path"], true);
    assert_eq!(v["path"], "/wiki");
    let seen = http
        .get(m.https_url("/wiki/page"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let seen: serde_json::Value = serde_json::from_str(&seen).unwrap();
    assert_eq!(seen["uri"], "/page");
    let out = cli(&["app", "reload", "wiki"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "reloaded app wiki\n");

    // Restart (killed, not stopped): the app is still there.
    let dir = std::mem::replace(&mut m.dir, tempfile::tempdir().unwrap());
    drop(m);
    let m = Moat::start_in(BIN, &config, dir).await;
    let out = cli(&["app", "show", "wiki", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["strip_path"], true);
    let http = moat_testkit::client::http1(&m.local_ca_root());
    assert_eq!(
        http.get(m.https_url("/wiki/page"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let out = cli(&["app", "delete", "wiki"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        http.get(m.https_url("/wiki/page"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // The audit log: newest first, who, from where, before and after.
    let out = cli(&["audit", "list", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["app.delete", "app.reload", "app.update", "app.create"]
    );
    let uid = unsafe { libc::geteuid() };
    for e in log.as_array().unwrap() {
        assert_eq!(e["source"], format!("unix:uid={uid}"));
        assert_eq!(e["target"], "wiki");
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(log[2]["before"]["strip_path"], false);
    assert_eq!(log[2]["after"]["strip_path"], true);
    assert_eq!(log[0]["after"], serde_json::Value::Null);
    let out = cli(&["audit", "list", "--action", "app.create"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("TIME") && text.contains("app.create") && !text.contains("app.delete"),
        "{text}"
    );
}

/// The config file wins a clash with a stored app; the stored app is
/// left out (and said so in the log) until the clash is gone.
#[tokio::test]
async fn the_config_file_wins_over_a_stored_app() {
    let a = upstream::echo("a").await;
    let mut m = Moat::start(BIN, TEST_SERVER).await;
    let data = m.data_dir();
    let data = data.to_str().unwrap().to_owned();
    let up = format!("http://{a}");
    let out = moat(&[
        "app",
        "create",
        "wiki",
        "--path",
        "/wiki",
        "--upstream",
        &up,
        "--data-dir",
        &data,
    ]);
    assert!(out.status.success(), "{}", show(&out));

    let dir = std::mem::replace(&mut m.dir, tempfile::tempdir().unwrap());
    drop(m);
    let config = format!(
        "{TEST_SERVER}[[apps]]\nname = \"wiki\"\npath = \"/w2\"\nupstream = \"http://{a}\"\n"
    );
    let m = Moat::start_in(BIN, &config, dir).await;
    m.wait_stderr("the config file wins").await;
    let out = moat(&["app", "list", "--json", "--data-dir", &data]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["defined_in"], "config");
    assert_eq!(v[0]["path"], "/w2");
}
