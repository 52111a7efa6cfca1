use std::path::Path;

use super::*;

fn kek() -> Kek {
    Kek::from_bytes([9u8; 32])
}

fn meta(id: &str) -> Metadata {
    Metadata {
        format: 1,
        id: id.into(),
        app: "wiki".into(),
        user: Some("admin".into()),
        client_ip: "203.0.113.7".into(),
        user_agent: Some("test".into()),
        started_at_ms: 1_795_000_000_000,
        moat_version: "0.1.0".into(),
        policy: Policy {
            body_limit: 1 << 20,
            redact_headers: vec!["authorization".into()],
            redact_json_fields: vec!["password".into()],
            retain_for_days: Some(30),
            delete_after_days: Some(365),
        },
    }
}

fn exchange(w: &mut Writer, req: u64) {
    w.record(Event::RequestHead {
        conn: 1,
        req,
        method: "GET".into(),
        uri: format!("/page/{req}?q=1"),
        version: "HTTP/1.1".into(),
        headers: vec![("host".into(), "wiki.example".into())],
    })
    .unwrap();
    w.record(Event::ResponseHead {
        conn: 1,
        req,
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
    })
    .unwrap();
    w.record(Event::ResponseBody {
        conn: 1,
        req,
        data: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"hello"),
        len: 5,
        truncated: false,
    })
    .unwrap();
    w.record(Event::ExchangeEnd { conn: 1, req }).unwrap();
}

fn recording(root: &Path, id: &str, exchanges: u64) -> std::path::PathBuf {
    let mut w = Writer::create(root, meta(id), &kek()).unwrap();
    w.record(Event::ConnOpen {
        conn: 1,
        client: "203.0.113.7:5555".into(),
        tls: true,
    })
    .unwrap();
    for r in 0..exchanges {
        exchange(&mut w, r);
        w.flush().unwrap();
    }
    let dir = w.dir().to_owned();
    w.finish("logout", 1_795_000_060_000).unwrap();
    dir
}

#[test]
fn a_closed_recording_verifies_and_reads_back() {
    let root = tempfile::tempdir().unwrap();
    let dir = recording(root.path(), "rec1", 3);
    let report = verify(&dir, &kek()).unwrap();
    assert_eq!(report.state, State::Complete);
    assert_eq!(report.chunks, 3);
    assert_eq!(report.events, 13);
    let events = verify::events(&dir, &kek()).unwrap();
    assert!(matches!(events[0].event, Event::ConnOpen { .. }));
    assert!(events.windows(2).all(|w| w[0].t_us <= w[1].t_us));
    assert!(
        verify(&dir, &Kek::from_bytes([1u8; 32])).is_err(),
        "another moat's KEK"
    );
}

#[test]
fn one_flipped_byte_anywhere_fails_and_names_the_file() {
    let root = tempfile::tempdir().unwrap();
    let dir = recording(root.path(), "rec2", 2);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert!(files.contains(&"chunk-000002.zst".to_owned()), "{files:?}");
    for name in files {
        let path = dir.join(&name);
        let original = std::fs::read(&path).unwrap();
        for at in [0, original.len() / 2, original.len() - 1] {
            let mut bad = original.clone();
            bad[at] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            let err = verify(&dir, &kek()).expect_err(&format!("{name} byte {at} flipped"));
            let named = err.file == name
                || (name == files::SIGNATURE && err.file == files::MANIFEST)
                || (name == files::SIGNATURE && err.file == files::SIGNATURE);
            assert!(named, "{name} flipped at {at}, but the error names {err}");
        }
        std::fs::write(&path, &original).unwrap();
        verify(&dir, &kek()).unwrap();
    }
}

#[test]
fn a_recording_left_open_is_recovered_as_incomplete() {
    let root = tempfile::tempdir().unwrap();
    let mut w = Writer::create(root.path(), meta("rec3"), &kek()).unwrap();
    exchange(&mut w, 1);
    w.flush().unwrap();
    exchange(&mut w, 2);
    w.flush().unwrap();
    exchange(&mut w, 3); // never flushed: lost with the process
    let dir = w.dir().to_owned();
    drop(w);
    // A half-written chunk the crash left behind, not in chunks.log.
    std::fs::write(dir.join("chunk-000003.zst.tmp"), b"partial").unwrap();
    let m = seal::recover(&dir, &kek(), 1_795_000_100_000).unwrap();
    assert_eq!(m.state, State::Incomplete);
    assert_eq!(m.chunks.len(), 2);
    let report = verify(&dir, &kek()).unwrap();
    assert_eq!((report.state, report.events), (State::Incomplete, 8));
}

#[test]
fn recovery_stops_at_the_first_damaged_chunk() {
    let root = tempfile::tempdir().unwrap();
    let mut w = Writer::create(root.path(), meta("rec4"), &kek()).unwrap();
    for r in 0..3 {
        exchange(&mut w, r);
        w.flush().unwrap();
    }
    let dir = w.dir().to_owned();
    drop(w);
    std::fs::remove_file(dir.join("chunk-000002.zst")).unwrap();
    let m = seal::recover(&dir, &kek(), 0).unwrap();
    assert_eq!(m.chunks.len(), 1);
    verify(&dir, &kek()).unwrap();
}

/// The overhead of a session with no events, reported in
/// docs/recording-format.md.
#[test]
fn an_empty_session_costs_about_one_kilobyte() {
    let root = tempfile::tempdir().unwrap();
    let w = Writer::create(root.path(), meta("empty"), &kek()).unwrap();
    let dir = w.dir().to_owned();
    w.finish("logout", 0).unwrap();
    let bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    eprintln!("empty session: {bytes} bytes");
    assert!(bytes < 3000, "{bytes}");
}

#[test]
fn har_export() {
    let root = tempfile::tempdir().unwrap();
    let dir = recording(root.path(), "rec5", 2);
    let har = har::to_har(
        &verify::metadata(&dir).unwrap(),
        &verify::events(&dir, &kek()).unwrap(),
    );
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(har["log"]["version"], "1.2");
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0]["request"]["url"],
        "https://wiki.example/page/0?q=1"
    );
    assert_eq!(entries[0]["request"]["queryString"][0]["name"], "q");
    assert_eq!(entries[0]["response"]["content"]["text"], "hello");
    assert!(
        entries[0]["startedDateTime"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-18T")
    );
}

#[test]
fn chunks_are_encrypted_at_rest_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = recording(root.path(), "rec6", 2);
    assert_eq!(verify::metadata(&dir).unwrap().format, 2);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?}", entry.file_name());
        let name = entry.file_name().into_string().unwrap();
        if name.starts_with("chunk-") {
            let data = std::fs::read(entry.path()).unwrap();
            // Neither zstd's magic number nor anything of the events.
            assert_ne!(
                &data[..4],
                &[0x28, 0xb5, 0x2f, 0xfd],
                "{name} is not plain zstd"
            );
            assert!(zstd::stream::decode_all(&data[..]).is_err(), "{name}");
        }
    }
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    // Readable with the KEK, and only with it.
    assert_eq!(verify::events(&dir, &kek()).unwrap().len(), 9);
    assert!(verify::events(&dir, &Kek::from_bytes([1u8; 32])).is_err());
    // A chunk moved into another place does not open.
    std::fs::copy(dir.join("chunk-000001.zst"), dir.join("chunk-000002.zst")).unwrap();
    let e = verify::events(&dir, &kek()).unwrap_err().to_string();
    assert!(e.contains("chunk-000002.zst"), "{e}");
}
