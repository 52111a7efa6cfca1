//! Recording hardened, on real sockets: every exchange complete and in
//! order, floods of WebSocket control frames coalesced, open recordings
//! capped per client, the recorder's queue visible in `moat status`, and no
//! credential kept in any form a client sends it, in files only moat can
//! read.

use std::time::Duration;

use moat_testkit::cli::json;
use moat_testkit::moat::TEST_SERVER;
use moat_testkit::{Moat, client, upstream};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_moat");

fn cli(m: &Moat, args: &[&str]) -> std::process::Output {
    moat_testkit::cli::against(BIN, m, args)
}

async fn closed_recording(m: &Moat) -> Value {
    m.wait_until("the recording to close", Duration::from_secs(30), || {
        let l = json(&cli(m, &["recordings", "list", "--json"]));
        (l[0]["state"] == "complete").then(|| l[0].clone())
    })
    .await
}

#[tokio::test]
async fn recorded_exchanges_are_complete_and_in_order() {
    let up = upstream::echo("app").await;
    let m = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[auth]\nidle_timeout = \"2s\"\n[[apps]]\nname = \"rec\"\npath = \"/\"\nauth = \"none\"\nupstream = \"http://{up}\"\n[apps.recording]\nenabled = true\n"
        ),
    )
    .await;
    let http = client::http1(&m.local_ca_root());
    let first = http.get(m.https_url("/a")).send().await.unwrap();
    let cookie = first.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    first.bytes().await.unwrap();
    // A body of known length up, a streamed one down, an empty one, a
    // chunked one up.
    let r = http
        .post(m.https_url("/b"))
        .header("cookie", &cookie)
        .body(vec![1u8; 5000])
        .send()
        .await
        .unwrap();
    r.bytes().await.unwrap();
    let r = http
        .get(m.https_url("/bytes/150000"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 150_000);
    let chunks = futures_util::stream::iter(
        (0..3).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![2u8; 1000]))),
    );
    let r = http
        .put(m.https_url("/c"))
        .header("cookie", &cookie)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    r.bytes().await.unwrap();
    let rec = closed_recording(&m).await;
    let id = rec["id"].as_str().unwrap();
    let events = m.admin_recording(id).await.unwrap();
    let events = events["events"].as_array().unwrap();
    assert!(
        !events.iter().any(|e| e["type"] == "error"),
        "no exchange was aborted: {events:#?}"
    );
    for req in 1..=4u64 {
        let kinds: Vec<&str> = events
            .iter()
            .filter(|e| e["req"] == req)
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        let pos = |k: &str| {
            kinds
                .iter()
                .position(|x| *x == k)
                .unwrap_or_else(|| panic!("req {req}: no {k} in {kinds:?}"))
        };
        assert_eq!(
            kinds.iter().filter(|k| **k == "exchange_end").count(),
            1,
            "req {req}: {kinds:?}"
        );
        assert!(
            pos("request_head") < pos("response_head"),
            "req {req}: {kinds:?}"
        );
        assert_eq!(
            *kinds.last().unwrap(),
            "exchange_end",
            "req {req}: {kinds:?}"
        );
        if let Some(b) = kinds.iter().rposition(|k| *k == "request_body") {
            assert!(b < pos("exchange_end"));
        }
    }
    // The bodies add up to what was sent.
    let total = |req: u64, kind: &str| -> u64 {
        events
            .iter()
            .filter(|e| e["req"] == req && e["type"] == kind)
            .map(|e| e["len"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(total(2, "request_body"), 5000);
    assert_eq!(total(3, "response_body"), 150_000);
    assert_eq!(total(4, "request_body"), 3000);
}

#[tokio::test]
async fn a_ping_flood_is_coalesced() {
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
    let (socket, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    const PINGS: u64 = 20_000;
    let (mut tx, mut rx) = socket.split();
    let reader = tokio::spawn(async move {
        // Read (and drop) whatever comes back, so nothing backs up.
        while let Some(Ok(msg)) = rx.next().await {
            if msg.is_text() {
                return;
            }
        }
    });
    for _ in 0..PINGS {
        tx.feed(Message::Ping(bytes::Bytes::from_static(b"p")))
            .await
            .unwrap();
    }
    tx.send(Message::text("done")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .unwrap()
        .unwrap();
    let _ = tx.close().await;
    let rec = closed_recording(&m).await;
    let id = rec["id"].as_str().unwrap();
    let events = m.admin_recording(id).await.unwrap();
    let pings: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "ws_message" && e["dir"] == "client" && e["opcode"] == "ping")
        .collect();
    let stood_for: u64 = pings
        .iter()
        .map(|e| 1 + e["repeated"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(stood_for, PINGS, "every ping is accounted for");
    // The echoed pings and the pongs, from the app, are coalesced alike.
    let from_app = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "ws_message" && e["dir"] == "server")
        .count();
    assert!(
        from_app < 2000,
        "{from_app} events for the app's pings and pongs"
    );
    assert!(
        pings.len() < 1000,
        "{} ping events for {PINGS} pings",
        pings.len()
    );
}

#[tokio::test]
async fn open_recordings_are_capped_per_client_and_shown_in_status() {
    let up = upstream::echo("app").await;
    let m = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[recording]\nmax_open_per_client = 3\n[[apps]]\nname = \"rec\"\npath = \"/\"\nauth = \"none\"\nupstream = \"http://{up}\"\n[apps.recording]\nenabled = true\n"
        ),
    )
    .await;
    // Each request without the visit cookie would start a recording.
    let from = |ip: &str| client::http1_from(&m.local_ca_root(), ip.parse().unwrap());
    let one = from("127.0.0.1");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            one.get(m.https_url("/x"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 503, 503]);
    // Another address has its own allowance.
    assert_eq!(
        from("127.0.0.2")
            .get(m.https_url("/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    m.wait_stderr("max_open_per_client").await;
    let status = json(&cli(&m, &["status", "--json"]));
    let storage = &status["recording_storage"];
    assert_eq!(storage["open_recordings"], 4, "{status}");
    assert!(
        storage["queued_events"].is_u64() && storage["queued_bytes"].is_u64(),
        "{status}"
    );
    let text = String::from_utf8(cli(&m, &["status"]).stdout).unwrap();
    assert!(
        text.contains("recordings: 4 open, recorder queue"),
        "{text}"
    );
}

#[tokio::test]
async fn no_credential_is_kept_in_any_form() {
    use base64::Engine;
    let up = upstream::echo("app").await;
    let m = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[auth]\nidle_timeout = \"2s\"\n[[apps]]\nname = \"rec\"\npath = \"/\"\nauth = \"none\"\nupstream = \"http://{up}\"\n[apps.recording]\nenabled = true\n"
        ),
    )
    .await;
    let http = client::http1(&m.local_ca_root());
    let first = http
        .get(m.https_url("/bytes/3?password=querysecret&access_token=tok123&q=kept"))
        .header("x-api-key", "hdrsecret1")
        .header("x-csrf-token", "hdrsecret2")
        .send()
        .await
        .unwrap();
    let cookie = first.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    first.bytes().await.unwrap();
    let post = |ct: &'static str, body: &'static str| {
        let http = http.clone();
        let cookie = cookie.clone();
        let url = m.https_url("/submit");
        async move {
            let r = http
                .post(url)
                .header("cookie", cookie)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
        }
    };
    post(
        "application/x-www-form-urlencoded",
        "user=ann&Password=formsecret",
    )
    .await;
    post(
        "multipart/form-data; boundary=B0und",
        "--B0und\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nann\r\n--B0und\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nmultisecret\r\n--B0und--\r\n",
    )
    .await;
    post(
        "text/plain",
        r#"{"user": "ann", "Password": "jsonsecret", "client": {"api_key": "nestedsecret"}}"#,
    )
    .await;
    let rec = closed_recording(&m).await;
    let id = rec["id"].as_str().unwrap();
    let events = m.admin_recording(id).await.unwrap();
    // Everything kept: the events as text and every body decoded.
    let mut all = events.to_string();
    for e in events["events"].as_array().unwrap() {
        if let Some(d) = e["data"].as_str() {
            all.push_str(&String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD.decode(d).unwrap(),
            ));
        }
    }
    for secret in [
        "querysecret",
        "tok123",
        "hdrsecret1",
        "hdrsecret2",
        "formsecret",
        "multisecret",
        "jsonsecret",
        "nestedsecret",
    ] {
        assert!(!all.contains(secret), "{secret} was recorded");
    }
    // What is not a credential is kept, so the check above means something.
    assert!(
        all.contains("q=kept") && all.contains("user=ann") && all.contains("\"user\":\"ann\""),
        "{all}"
    );
    assert!(all.matches("[redacted]").count() >= 8, "{all}");
    // On disk: private whatever the umask, and nothing readable in the chunks.
    use std::os::unix::fs::PermissionsExt;
    let dir = m.data_dir().join("recordings").join(id);
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        assert_eq!(
            f.metadata().unwrap().permissions().mode() & 0o777,
            0o600,
            "{:?}",
            f.file_name()
        );
        let bytes = std::fs::read(f.path()).unwrap();
        assert!(
            !bytes.windows(3).any(|w| w == b"ann"),
            "{:?} holds plain text",
            f.file_name()
        );
    }
}
