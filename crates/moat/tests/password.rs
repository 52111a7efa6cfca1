//! The admin password: `moat password`, the random password printed at
//! start, hashes checked by an independent bcrypt (Python's).

use std::io::Write;
use std::process::{Command, Stdio};

use moat_testkit::Moat;
use moat_testkit::moat::TEST_SERVER;

const BIN: &str = env!("CARGO_BIN_EXE_moat");

/// Checks a password against a hash with Python's bcrypt module.
fn python_checks(password: &str, hash: &str) -> bool {
    let out = Command::new("python3")
        .args(["-c", "import bcrypt, sys; sys.exit(0 if bcrypt.checkpw(sys.argv[1].encode(), sys.argv[2].encode()) else 1)"])
        .args([password, hash])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "python bcrypt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.success()
}

#[test]
fn random_password_and_hash() {
    let out = Command::new(BIN).arg("password").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .trim();
    let hash = text
        .lines()
        .find_map(|l| l.strip_prefix("bcrypt:"))
        .unwrap()
        .trim();
    assert_eq!(password.len(), 24);
    assert!(hash.starts_with("$2b$12$"), "cost 12: {hash}");
    assert!(python_checks(password, hash));
    assert!(!python_checks("not it", hash));
}

#[test]
fn prompt_hashes_what_is_typed() {
    let mut child = Command::new(BIN)
        .args(["password", "--prompt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery staple\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(python_checks("correct horse battery staple", &hash));
    assert!(!python_checks("correct horse battery stapl", &hash));
    // The hash is accepted by the config.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("moat.toml");
    std::fs::write(
        &file,
        format!("[security]\nadmin_password_bcrypt = \"{hash}\"\n"),
    )
    .unwrap();
    assert!(
        Command::new(BIN)
            .args(["config", "check"])
            .arg(&file)
            .status()
            .unwrap()
            .success()
    );
}

#[tokio::test]
async fn random_password_is_printed_once_and_never_logged() {
    let m = Moat::start(BIN, TEST_SERVER).await;
    let stdout = m.stdout();
    let line = stdout
        .lines()
        .position(|l| l.contains("the admin password for this run is"))
        .expect("announced on stdout");
    let password = stdout.lines().nth(line + 2).unwrap().trim().to_owned();
    assert_eq!(password.len(), 24, "{stdout}");
    assert_eq!(stdout.matches(&password).count(), 1, "printed once");
    assert!(
        !m.stderr().contains(&password),
        "the operational log never holds it"
    );
}

#[tokio::test]
async fn configured_hash_means_no_random_password() {
    let hash = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
    let config = format!("[security]\nadmin_password_bcrypt = \"{hash}\"\n\n{TEST_SERVER}");
    let m = Moat::start(BIN, &config).await;
    assert!(
        !m.stdout().contains("admin password for this run"),
        "{}",
        m.logs()
    );
}
