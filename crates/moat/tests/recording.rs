//! Session recording end to end: sessions through a real moat and a real
//! upstream, recorded to local disk, sealed, indexed, verified, exported as
//! HAR (checked against the HAR 1.2 schema by an independent validator),
//! tampered with, and recovered after kill -9.

use std::time::Duration;

use moat_testkit::cli::json;
use moat_testkit::moat::TEST_SERVER;
use moat_testkit::{Moat, client, upstream};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_moat");

fn cli(m: &Moat, args: &[&str]) -> std::process::Output {
    moat_testkit::cli::against(BIN, m, args)
}

async fn recorded_moat(extra: &str) -> Moat {
    let up = upstream::echo("app").await;
    Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}{extra}\n[[apps]]\nname = \"rec\"\npath = \"/rec\"\nauth = \"none\"\nstrip_path = true\nupstream = \"http://{up}\"\n\
             [apps.recording]\nenabled = true\nredact_json_fields = [\"password\"]\nbody_limit = \"64KiB\"\n"
        ),
    )
    .await
}

/// A visit: requests sharing the visit cookie moat sets.
async fn visit(m: &Moat) -> String {
    let http = client::http1(&m.local_ca_root());
    let first = http
        .get(m.https_url("/rec/start?token=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let set = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("__Host-moat_visit=") && set.contains("HttpOnly"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let login = http
        .post(m.https_url("/rec/login"))
        .header("cookie", &cookie)
        .header("authorization", "Bearer secret-token")
        .header("content-type", "application/json")
        .body(r#"{"user": "alice", "password": "hunter2"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    // The upstream never sees moat's visit cookie.
    let seen: Value = serde_json::from_str(&login.text().await.unwrap()).unwrap();
    assert!(
        !seen["headers"].to_string().contains("moat_visit"),
        "{seen}"
    );
    let big = http
        .get(m.https_url("/rec/bytes/200000"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(big.bytes().await.unwrap().len(), 200_000);
    cookie
}

async fn wait_for<T>(what: &str, m: &Moat, f: impl FnMut() -> Option<T>) -> T {
    m.wait_until(what, Duration::from_secs(20), f).await
}

#[tokio::test]
async fn a_session_is_recorded_sealed_verified_and_exported() {
    let m = recorded_moat("[auth]\nidle_timeout = \"2s\"\n").await;
    visit(&m).await;
    // In progress, then closed by the idle timeout.
    // The recorder indexes a new recording off the request path: soon.
    wait_for("the recording in the index", &m, || {
        let l = json(&cli(&m, &["recordings", "list", "--json"]));
        (l[0]["state"] == "recording").then_some(())
    })
    .await;
    // Time filters.
    let none = json(&cli(
        &m,
        &["recordings", "list", "--json", "--until", "2000-01-01"],
    ));
    assert_eq!(none.as_array().unwrap().len(), 0);
    let today = json(&cli(
        &m,
        &[
            "recordings",
            "list",
            "--json",
            "--since",
            "2020-01-01T00:00:00Z",
            "--client-ip",
            "127.0.0.1",
        ],
    ));
    assert_eq!(today.as_array().unwrap().len(), 1);
    let rec = wait_for("the recording to close", &m, || {
        let l = json(&cli(&m, &["recordings", "list", "--json", "--app", "rec"]));
        (l[0]["state"] == "complete").then(|| l[0].clone())
    })
    .await;
    assert_eq!(rec["closed_because"], "idle timeout");
    assert_eq!(rec["client_ip"], "127.0.0.1");
    assert!(rec["events"].as_i64().unwrap() >= 12, "{rec}");
    let id = rec["id"].as_str().unwrap().to_owned();

    let out = cli(&m, &["recordings", "verify", &id]);
    assert!(out.status.success(), "{}", moat_testkit::cli::show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK: recording"));

    // Redaction: headers and JSON fields the policy names never reach disk.
    let events = m.admin_recording(&id).await.unwrap();
    let text = events.to_string();
    assert!(
        !text.contains("secret-token") && !text.contains("aHVudGVyMg"),
        "redacted"
    );
    let bodies: Vec<String> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "request_body")
        .map(|e| {
            use base64::Engine;
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(e["data"].as_str().unwrap())
                    .unwrap(),
            )
            .unwrap()
        })
        .collect();
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("\"password\":\"[redacted]\"") && b.contains("alice")),
        "{bodies:?}"
    );
    // A body over the limit is counted, not kept.
    let kept: u64 = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "response_body" && e["req"] == 3)
        .map(|e| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(e["data"].as_str().unwrap())
                .unwrap()
                .len() as u64
        })
        .sum();
    // Cut at the limit and of no opaque media type, its redaction cannot
    // be checked: nothing of it is kept, all of it is counted.
    assert_eq!(kept, 0);
    let counted: u64 = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "response_body" && e["req"] == 3)
        .map(|e| e["len"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 200_000);

    // HAR 1.2, checked by an independent validator.
    let har = m.dir.path().join("session.har");
    let out = cli(
        &m,
        &["recordings", "export", &id, "--har", har.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", moat_testkit::cli::show(&out));
    let node_path = std::env::var("MOAT_TEST_NODE_PATH").expect(
        "MOAT_TEST_NODE_PATH: run the tests with ./scripts/test, which installs har-validator",
    );
    let check = std::process::Command::new("node")
        .env("NODE_PATH", node_path)
        .args(["-e", HAR_CHECK, har.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "HAR invalid: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let har: Value = serde_json::from_str(&std::fs::read_to_string(&har).unwrap()).unwrap();
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[1]["request"]["method"], "POST");
    // A credential in the query is never kept.
    let url = entries[0]["request"]["url"].as_str().unwrap();
    assert!(url.ends_with("/rec/start?token=[redacted]"), "{url}");

    // One flipped byte in a chunk: verify fails and names the chunk.
    let dir = m.data_dir().join("recordings").join(&id);
    let chunk = dir.join("chunk-000001.zst");
    let mut bytes = std::fs::read(&chunk).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&chunk, bytes).unwrap();
    let out = cli(&m, &["recordings", "verify", &id]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        moat_testkit::cli::show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("chunk-000001.zst"),
        "{}",
        moat_testkit::cli::show(&out)
    );
}

const HAR_CHECK: &str = r#"
const v = require('har-validator');
const data = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));
v.har(data).then(() => process.exit(0)).catch(e => { console.error(JSON.stringify(e.errors || e.message)); process.exit(1); });
"#;

#[tokio::test]
async fn kill_9_mid_session_leaves_an_incomplete_recording_that_verifies() {
    let mut m = recorded_moat("").await;
    visit(&m).await;
    // The recorder flushes every second: wait until the events are on disk.
    let root = m.data_dir().join("recordings");
    wait_for("a flushed chunk", &m, || {
        std::fs::read_dir(&root)
            .ok()?
            .flatten()
            .find(|d| d.path().join("chunk-000001.zst").exists())
            .map(|_| ())
    })
    .await;
    let config = std::fs::read_to_string(&m.config_path).unwrap();
    let dir = std::mem::replace(&mut m.dir, tempfile::tempdir().unwrap());
    drop(m); // SIGKILL
    let m = Moat::start_in(BIN, &config, dir).await;
    m.wait_stderr("sealed as incomplete").await;
    let list = json(&cli(
        &m,
        &["recordings", "list", "--json", "--state", "incomplete"],
    ));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let id = list[0]["id"].as_str().unwrap().to_owned();
    assert!(list[0]["events"].as_i64().unwrap() > 0);
    let out = cli(&m, &["recordings", "verify", &id]);
    assert!(out.status.success(), "{}", moat_testkit::cli::show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("incomplete"));
}

#[tokio::test]
async fn stopping_moat_closes_recordings_and_full_disks_refuse_sessions() {
    let mut m = recorded_moat("").await;
    visit(&m).await;
    m.signal(libc::SIGTERM);
    m.wait_exit(Duration::from_secs(20)).await;
    let config = std::fs::read_to_string(&m.config_path).unwrap();
    let dir = std::mem::replace(&mut m.dir, tempfile::tempdir().unwrap());
    drop(m);
    // Restart with a minimum no disk can meet: recorded sessions are
    // refused (no recording, no session).
    let config = config.replace(
        "[[apps]]",
        "[recording]\nminimum_available_capacity = \"1000000000GiB\"\n[[apps]]",
    );
    let m = Moat::start_in(BIN, &config, dir).await;
    let list = json(&cli(&m, &["recordings", "list", "--json"]));
    assert_eq!(list[0]["state"], "complete", "{list}");
    assert_eq!(list[0]["closed_because"], "moat stopped");
    let r = client::http1(&m.local_ca_root())
        .get(m.https_url("/rec/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    m.wait_stderr("cannot be recorded").await;
}

#[tokio::test]
async fn retention_is_enforced_and_a_new_policy_reapplied_after_a_dry_run() {
    let policy = |retain: i64, delete: i64| {
        format!(
            "[auth]\nidle_timeout = \"1s\"\n[recording.policy]\nretain_for_days = {retain}\ndelete_after_days = {delete}\n"
        )
    };
    let m = recorded_moat(&policy(30, 365)).await;
    visit(&m).await;
    let rec = wait_for("the recording to close", &m, || {
        let l = json(&cli(&m, &["recordings", "list", "--json"]));
        (l[0]["state"] == "complete").then(|| l[0].clone())
    })
    .await;
    let id = rec["id"].as_str().unwrap().to_owned();
    // Inside retention nobody can delete it.
    let out = cli(&m, &["recordings", "delete", &id]);
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        moat_testkit::cli::show(&out)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside its retention period"));

    // A new policy: dry run first, then confirmed.
    let config = std::fs::read_to_string(&m.config_path)
        .unwrap()
        .replace(&policy(30, 365), &policy(0, 1));
    m.reload_with(&config);
    m.wait_stderr("configuration reloaded").await;
    let dry = json(&cli(&m, &["recordings", "reapply-policy"]));
    assert_eq!(dry["changed"], 1, "{dry}");
    assert_eq!(dry["would_delete_now"], 0, "{dry}");
    assert_eq!(dry["applied"], false);
    let out = cli(&m, &["recordings", "delete", &id]);
    assert_eq!(out.status.code(), Some(6), "the dry run changed nothing");
    let done = json(&cli(&m, &["recordings", "reapply-policy", "--confirm"]));
    assert_eq!(done["applied"], true, "{done}");
    let out = cli(&m, &["recordings", "delete", &id]);
    assert!(out.status.success(), "{}", moat_testkit::cli::show(&out));
    assert!(!m.data_dir().join("recordings").join(&id).exists());
    let log = json(&cli(&m, &["audit", "list", "--json"]));
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..2],
        ["recording.delete", "recording.reapply_policy"],
        "{log}"
    );
}

/// Free bytes where the test's moat keeps its recordings.
fn free_bytes(path: &std::path::Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs fills `s` for the NUL-terminated path.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    s.f_bavail as u64 * s.f_frsize as u64
}

/// Each storage state, driven by the configured minimum against the real
/// free space: low refuses new recorded sessions, critically low closes
/// the ones in progress, and status and the log say so.
#[tokio::test]
async fn storage_states_follow_the_configured_minimum() {
    let m = recorded_moat("").await;
    let free = free_bytes(&m.data_dir());
    let with_minimum = |bytes: u64| {
        let c = std::fs::read_to_string(&m.config_path).unwrap();
        let c = match c.find("[recording]\n") {
            Some(i) => c[..i].to_owned() + &c[c[i..].find("[[apps]]").map(|j| i + j).unwrap()..],
            None => c,
        };
        c.replacen(
            "[[apps]]",
            &format!("[recording]\nminimum_available_capacity = {bytes}\n[[apps]]"),
            1,
        )
    };
    let state = |m: &Moat| {
        json(&cli(m, &["status", "--json"]))["recording_storage"]["state"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(state(&m), "available");

    // Low: free is below the minimum but above half of it.
    m.reload_with(&with_minimum(free / 2 * 3));
    m.wait_stderr("configuration reloaded").await;
    wait_for("low storage", &m, || {
        (state(&m) == "low storage").then_some(())
    })
    .await;
    let r = client::http1(&m.local_ca_root())
        .get(m.https_url("/rec/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "no new recorded session");
    m.wait_stderr("\"low storage\"").await;

    // Back to available: a session starts recording.
    m.reload_with(&with_minimum(1024));
    wait_for("available", &m, || (state(&m) == "available").then_some(())).await;
    visit(&m).await;
    // The recorder indexes a new recording off the request path: soon.
    wait_for("the recording in the index", &m, || {
        let l = json(&cli(&m, &["recordings", "list", "--json"]));
        (l[0]["state"] == "recording").then_some(())
    })
    .await;

    // Critically low: the session in progress is closed cleanly.
    m.reload_with(&with_minimum(free * 3));
    let closed = wait_for("the recording to close", &m, || {
        let l = json(&cli(&m, &["recordings", "list", "--json"]));
        (l[0]["state"] == "complete").then(|| l[0].clone())
    })
    .await;
    assert_eq!(closed["closed_because"], "critically low storage");
    assert_eq!(state(&m), "critically low storage");
    let out = cli(
        &m,
        &[
            "recordings",
            "export",
            closed["id"].as_str().unwrap(),
            "--har",
            "/dev/null",
        ],
    );
    assert_ne!(out.status.code(), Some(0), "no playback from this node");
}

/// A WebSocket conversation in a recorded session: every message, both
/// ways, unmasked, with its direction and kind.
#[tokio::test]
async fn websocket_messages_are_recorded_both_ways() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let ws = upstream::websocket_echo().await;
    let m = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[auth]\nidle_timeout = \"1s\"\n[[apps]]\nname = \"chat\"\npath = \"/chat\"\nauth = \"none\"\nupstream = \"http://{ws}\"\n[apps.recording]\nenabled = true\n"
        ),
    )
    .await;
    let stream = client::raw_https(&m).await;
    let url = format!("wss://localhost:{}/chat/socket", m.https.unwrap().port());
    let (mut socket, resp) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(resp.status(), 101);
    for text in ["hello", "how are you?"] {
        socket.send(Message::text(text)).await.unwrap();
        let echoed = socket.next().await.unwrap().unwrap();
        assert_eq!(echoed.into_text().unwrap().as_str(), text);
    }
    socket
        .send(Message::binary(vec![7u8; 70_000]))
        .await
        .unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap().into_data().len(),
        70_000
    );
    socket.close(None).await.unwrap();
    let rec = wait_for("the recording to close", &m, || {
        let l = json(&cli(&m, &["recordings", "list", "--json"]));
        (l[0]["state"] == "complete").then(|| l[0].clone())
    })
    .await;
    let id = rec["id"].as_str().unwrap();
    let events = m.admin_recording(id).await.unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let messages: Vec<(String, String, String, u64)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "ws_message")
        .map(|e| {
            (
                e["dir"].as_str().unwrap().to_owned(),
                e["opcode"].as_str().unwrap().to_owned(),
                String::from_utf8_lossy(&b64.decode(e["data"].as_str().unwrap()).unwrap())
                    .into_owned(),
                e["len"].as_u64().unwrap(),
            )
        })
        .collect();
    let texts: Vec<(&str, &str)> = messages
        .iter()
        .filter(|m| m.1 == "text")
        .map(|m| (m.0.as_str(), m.2.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            ("client", "hello"),
            ("server", "hello"),
            ("client", "how are you?"),
            ("server", "how are you?")
        ],
        "{messages:?}"
    );
    let binary: Vec<_> = messages.iter().filter(|m| m.1 == "binary").collect();
    assert_eq!(binary.len(), 2);
    assert!(
        binary
            .iter()
            .all(|m| m.3 == 70_000 && m.2.bytes().all(|b| b == 7))
    );
    assert!(messages.iter().any(|m| m.0 == "client" && m.1 == "close"));
    let out = cli(&m, &["recordings", "verify", id]);
    assert!(out.status.success(), "{}", moat_testkit::cli::show(&out));
    // In the HAR, as Chrome's developer tools keep WebSocket messages.
    let har = m.dir.path().join("ws.har");
    let out = cli(
        &m,
        &["recordings", "export", id, "--har", har.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", moat_testkit::cli::show(&out));
    let har: Value = serde_json::from_str(&std::fs::read_to_string(&har).unwrap()).unwrap();
    let ws = &har["log"]["entries"][0]["_webSocketMessages"];
    assert_eq!(ws[0]["type"], "send");
    assert_eq!(ws[0]["data"], "hello");
    assert_eq!(ws[1]["type"], "receive");
}
