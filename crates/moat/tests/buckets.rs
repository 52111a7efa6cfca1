//! Recordings moved to a real S3-compatible store (moto's server, started
//! here): buckets proven on create, uploads verified and the local copy
//! removed, verification from the bucket, and an outage survived.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use moat_testkit::moat::TEST_SERVER;
use moat_testkit::{Moat, client, upstream};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_moat");

/// moto's S3 server on a port of its own; killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    async fn start(port: u16) -> Moto {
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto's server starts (scripts/test installs moto[server])");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "moto did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let m = Moto { child, port };
        // A new moto is empty: make the bucket.
        let r = client::plain()
            .put(m.url("/recordings"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        m
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn keys(&self) -> String {
        client::plain()
            .get(self.url("/recordings?list-type=2"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(m: &Moat, args: &[&str]) -> std::process::Output {
    moat_testkit::cli::against(BIN, m, args)
}

fn show(o: &std::process::Output) -> String {
    moat_testkit::cli::show(o)
}

async fn visit(m: &Moat) {
    let http = client::http1(&m.local_ca_root());
    let r = http.get(m.https_url("/rec/page")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

async fn wait_location(m: &Moat, id_or_any: Option<&str>, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = cli(m, &["recordings", "list", "--json"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let found = list.as_array().into_iter().flatten().find(|r| {
            id_or_any.is_none_or(|id| r["id"] == id)
                && r["location"] == want
                && r["state"] != "recording"
        });
        if let Some(r) = found {
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no recording at {want}: {list}\n{}",
            m.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn recordings_move_to_an_s3_bucket_and_survive_an_outage() {
    let port = moat_testkit::free_port();
    let moto = Moto::start(port).await;
    let up = upstream::echo("app").await;
    let mut m = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[auth]\nidle_timeout = \"1s\"\n[[apps]]\nname = \"rec\"\npath = \"/rec\"\nauth = \"none\"\nupstream = \"http://{up}\"\n\
             [apps.recording]\nenabled = true\nbucket = \"archive\"\n"
        ),
    )
    .await;
    let endpoint = moto.url("");
    let s3 = |bucket: &'static str| {
        vec![
            "--provider",
            "s3",
            "--bucket",
            bucket,
            "--region",
            "us-east-1",
            "--endpoint",
            endpoint.as_str(),
            "--path-style",
            "--access-key-id",
            "testing",
            "--secret-access-key",
            "very-secret",
            "--prefix",
            "moat",
        ]
    };
    // A bucket moat cannot write to is refused.
    let mut args = vec!["bucket", "create", "archive"];
    args.extend(s3("no-such-bucket"));
    let out = cli(&m, &args);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("probe"),
        "{}",
        show(&out)
    );
    let mut args = vec!["bucket", "create", "archive"];
    args.extend(s3("recordings"));
    let out = cli(&m, &args);
    assert!(out.status.success(), "{}", show(&out));
    // The secret is never shown back.
    let out = cli(&m, &["bucket", "show", "archive"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("very-secret") && text.contains("[set]"),
        "{text}"
    );
    // An update that names the same key ID without the secret keeps it
    // (the API never shows it, so nobody could send it again).
    let (status, updated) = m
        .admin_request(
            "PUT",
            "/api/v1/buckets/archive",
            Some(&serde_json::json!({"config": {
                "provider": "s3", "bucket": "recordings", "region": "us-east-1",
                "endpoint": endpoint, "path_style": true, "prefix": "moat",
                "access_key_id": "testing"
            }})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["config"]["secret_access_key"], "[set]", "{updated}");
    let db = std::fs::read(m.data_dir().join("moat.db")).unwrap();
    assert!(
        !db.windows(11).any(|w| w == b"very-secret"),
        "stored encrypted"
    );

    // A session closes (idle timeout), moves to the bucket, verified.
    visit(&m).await;
    let rec = wait_location(&m, None, "bucket:archive").await;
    let id = rec["id"].as_str().unwrap().to_owned();
    assert!(
        !m.data_dir().join("recordings").join(&id).exists(),
        "the local copy is gone"
    );
    let keys = moto.keys().await;
    assert!(keys.contains(&format!("moat/{id}/manifest.json")), "{keys}");
    assert!(
        keys.contains(&format!("moat/{id}/chunk-000001.zst")),
        "{keys}"
    );
    let out = cli(&m, &["recordings", "verify", &id]);
    assert!(out.status.success(), "{}", show(&out));
    let har = m.dir.path().join("s.har");
    let out = cli(
        &m,
        &["recordings", "export", &id, "--har", har.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", show(&out));
    // It plays as a local one does: the events stream (what the portal's
    // player reads), fetched into a scratch copy of its own, removed after.
    let (session, events) = m
        .admin_events(&format!("/api/v1/recordings/{id}/events?bodies=false"))
        .await
        .unwrap();
    assert_eq!(session["id"], id.as_str());
    assert!(
        events.iter().any(|e| e["type"] == "request_head"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["data"].as_str().is_none_or(str::is_empty)),
        "bodies=false leaves the bodies out: {events:?}"
    );
    let scratch = m.data_dir().join("recordings").join(".fetched");
    m.wait_until("the scratch copy to go", Duration::from_secs(10), || {
        let left = std::fs::read_dir(&scratch).map_or(0, |d| d.count());
        (left == 0).then_some(())
    })
    .await;

    // The store goes down: the next recording waits on local disk, and
    // moves once the store is back.
    drop(moto);
    visit(&m).await;
    let waiting = wait_location(&m, None, "local").await;
    let id2 = waiting["id"].as_str().unwrap().to_owned();
    m.wait_stderr("upload failed, the local copy stays").await;
    assert!(
        m.data_dir()
            .join("recordings")
            .join(&id2)
            .join("manifest.json")
            .exists()
    );
    let moto = Moto::start(port).await;
    wait_location(&m, Some(&id2), "bucket:archive").await;
    assert!(
        moto.keys()
            .await
            .contains(&format!("moat/{id2}/manifest.json"))
    );
    let out = cli(&m, &["recordings", "verify", &id2]);
    assert!(out.status.success(), "{}", show(&out));

    // Killed mid-session: at the next start the recording is sealed as
    // incomplete and moved to the bucket like any other.
    let config = std::fs::read_to_string(&m.config_path)
        .unwrap()
        .replace("idle_timeout = \"1s\"", "idle_timeout = \"1h\"");
    m.reload_with(&config);
    m.wait_stderr("configuration reloaded").await;
    visit(&m).await;
    let root = m.data_dir().join("recordings");
    let deadline = Instant::now() + Duration::from_secs(20);
    let id3 = loop {
        let open = std::fs::read_dir(&root).unwrap().flatten().find(|d| {
            d.path().join("chunk-000001.zst").exists() && !d.path().join("manifest.json").exists()
        });
        if let Some(d) = open {
            break d.file_name().to_string_lossy().into_owned();
        }
        assert!(Instant::now() < deadline, "no flushed chunk\n{}", m.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let dir = std::mem::replace(&mut m.dir, tempfile::tempdir().unwrap());
    drop(m); // SIGKILL
    let m = Moat::start_in(BIN, &config, dir).await;
    let rec = wait_location(&m, Some(&id3), "bucket:archive").await;
    assert_eq!(rec["state"], "incomplete");
    assert!(
        moto.keys()
            .await
            .contains(&format!("moat/{id3}/manifest.sig"))
    );
}

/// The filesystem provider: a folder as a bucket.
#[tokio::test]
async fn recordings_move_to_a_folder_bucket() {
    let up = upstream::echo("app").await;
    let m = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[auth]\nidle_timeout = \"1s\"\n[[apps]]\nname = \"rec\"\npath = \"/rec\"\nauth = \"none\"\nupstream = \"http://{up}\"\n\
             [apps.recording]\nenabled = true\nbucket = \"shelf\"\n"
        ),
    )
    .await;
    let shelf = m.dir.path().join("shelf");
    let out = cli(
        &m,
        &[
            "bucket",
            "create",
            "shelf",
            "--provider",
            "filesystem",
            "--path",
            shelf.to_str().unwrap(),
            "--prefix",
            "rec",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let list: Value = serde_json::from_slice(&cli(&m, &["bucket", "list"]).stdout).unwrap();
    assert_eq!(list[0]["config"]["provider"], "filesystem");
    visit(&m).await;
    let rec = wait_location(&m, None, "bucket:shelf").await;
    let id = rec["id"].as_str().unwrap();
    assert!(shelf.join("rec").join(id).join("manifest.json").exists());
    assert!(!m.data_dir().join("recordings").join(id).exists());
    let out = cli(&m, &["recordings", "verify", id]);
    assert!(out.status.success(), "{}", show(&out));
    // A bucket in use cannot be deleted.
    let out = cli(&m, &["bucket", "delete", "shelf"]);
    assert_eq!(out.status.code(), Some(6), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("app \"rec\" sends its recordings"),
        "{}",
        show(&out)
    );
    let out = cli(
        &m,
        &[
            "bucket",
            "create",
            "spare",
            "--provider",
            "filesystem",
            "--path",
            m.dir.path().join("spare").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = cli(&m, &["bucket", "delete", "spare"]);
    assert!(out.status.success(), "{}", show(&out));
    let out = cli(&m, &["bucket", "show", "spare"]);
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
}

/// SIGTERM with recordings in progress: each is sealed, moved to its
/// bucket and the index updated before the store closes; a recording
/// whose local copy vanished while it waited is reconciled at the next
/// start (marked missing, with one error), never retried forever.
#[tokio::test]
async fn sigterm_uploads_and_indexes_and_start_reconciles_lost_copies() {
    let up = upstream::echo("app").await;
    let config = format!(
        "{TEST_SERVER}[[apps]]\nname = \"rec\"\npath = \"/rec\"\nauth = \"none\"\nupstream = \"http://{up}\"\n\
         [apps.recording]\nenabled = true\nbucket = \"shelf\"\n"
    );
    let mut m = Moat::start(BIN, &config).await;
    let shelf = m.dir.path().join("shelf");
    let out = cli(
        &m,
        &[
            "bucket",
            "create",
            "shelf",
            "--provider",
            "filesystem",
            "--path",
            shelf.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    visit(&m).await;
    let id = m
        .wait_until(
            "the recording in the index",
            Duration::from_secs(20),
            || {
                let l: Value =
                    serde_json::from_slice(&cli(&m, &["recordings", "list", "--json"]).stdout)
                        .ok()?;
                l[0]["id"].as_str().map(str::to_owned)
            },
        )
        .await;
    m.signal(libc::SIGTERM);
    assert!(m.wait_exit(Duration::from_secs(30)).await.success());
    assert!(
        !m.stderr().contains("index was not updated"),
        "{}",
        m.stderr()
    );
    assert!(
        shelf.join(&id).join("manifest.json").exists(),
        "{}",
        m.stderr()
    );
    assert!(!m.data_dir().join("recordings").join(&id).exists());
    let dir = std::mem::replace(&mut m.dir, tempfile::tempdir().unwrap());
    drop(m);
    let mut m = Moat::start_in(BIN, &config, dir).await;
    let rec = wait_location(&m, Some(&id), "bucket:shelf").await;
    assert_eq!(rec["state"], "complete");
    let out = cli(&m, &["recordings", "verify", &id]);
    assert!(out.status.success(), "{}", show(&out));

    // The bucket breaks (a file where its folder was): the next recording
    // waits on local disk. Then its local copy is lost while moat is down.
    std::fs::rename(&shelf, m.dir.path().join("shelf-moved")).unwrap();
    std::fs::write(&shelf, "not a folder").unwrap();
    visit(&m).await;
    m.signal(libc::SIGTERM);
    assert!(m.wait_exit(Duration::from_secs(30)).await.success());
    // Sealed on local disk, waiting for its bucket.
    let waiting: Vec<String> = std::fs::read_dir(m.data_dir().join("recordings"))
        .unwrap()
        .flatten()
        .filter(|d| d.path().join("manifest.json").exists())
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(waiting.len(), 1, "{waiting:?}\n{}", m.stderr());
    let lost = waiting[0].clone();
    std::fs::remove_dir_all(m.data_dir().join("recordings").join(&lost)).unwrap();
    // The bucket works again, but does not have it.
    std::fs::remove_file(&shelf).unwrap();
    std::fs::rename(m.dir.path().join("shelf-moved"), &shelf).unwrap();
    let dir = std::mem::replace(&mut m.dir, tempfile::tempdir().unwrap());
    drop(m);
    let m = Moat::start_in(BIN, &config, dir).await;
    wait_location(&m, Some(&lost), "missing").await;
    // One clear error, and no retry after it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let errors = m
        .stderr()
        .matches("neither on local disk nor in its bucket")
        .count();
    assert_eq!(errors, 1, "{}", m.stderr());
    assert!(!m.stderr().contains("retrying"), "{}", m.stderr());
}
