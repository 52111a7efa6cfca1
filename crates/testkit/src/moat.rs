//! A real moat process for a test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running moat, killed when dropped. If the test is panicking, its logs
/// are printed so the failure can be read without re-running.
pub struct Moat {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub https: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
}

/// Starts listeners on ephemeral ports unless the config sets them.
pub const TEST_SERVER: &str = "[server]\nhttps = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n";

impl Moat {
    /// Writes `config` to a temp folder and starts `bin serve -c` on it.
    /// `config` should set listeners to port 0 (see [`TEST_SERVER`]).
    pub async fn start(bin: &str, config: &str) -> Moat {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(bin, config, dir).await
    }

    pub async fn start_in(bin: &str, config: &str, dir: tempfile::TempDir) -> Moat {
        let config_path = dir.path().join("moat.toml");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(bin)
            .args(["serve", "-c"])
            .arg(&config_path)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "info")
            .env_remove("MOAT_CONFIG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .expect("moat binary starts");
        let mut moat = Moat {
            child: Some(child),
            dir,
            config_path,
            https: None,
            http: None,
        };
        let status = moat.wait_ready().await;
        for l in status["listeners"].as_array().unwrap() {
            let addr: SocketAddr = l["address"].as_str().unwrap().parse().unwrap();
            match l["role"].as_str().unwrap() {
                "https" => moat.https = Some(addr),
                _ => moat.http = Some(addr),
            }
        }
        moat
    }

    async fn wait_ready(&mut self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("moat exited during start ({status}):\n{}", self.logs());
            }
            if let Ok(v) = self.admin_get("/api/v1/status").await {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "moat did not become ready:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn socket(&self) -> PathBuf {
        self.data_dir().join("moat.sock")
    }

    /// The root of moat's local CA (PEM), which its served certificate
    /// chains to.
    pub fn local_ca_root(&self) -> PathBuf {
        self.data_dir().join("tls/ca/root.crt")
    }

    pub fn https_url(&self, path: &str) -> String {
        format!(
            "https://localhost:{}{path}",
            self.https.expect("https listener").port()
        )
    }

    pub fn http_url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}{path}",
            self.http.expect("http listener").port()
        )
    }

    /// GET on the admin socket, parsed as JSON.
    pub async fn admin_get(&self, path: &str) -> std::io::Result<serde_json::Value> {
        self.admin_request("GET", path, None).await.map(|(_, v)| v)
    }

    /// Any request on the admin socket with an optional JSON body; returns
    /// the status and the body parsed as JSON (`null` when empty).
    pub async fn admin_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> std::io::Result<(u16, serde_json::Value)> {
        let (status, body) = self.admin_raw(method, path, body).await?;
        let value = if body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&body)
                .map_err(|e| std::io::Error::other(format!("{e}: {status} {body}")))?
        };
        Ok((status, value))
    }

    /// A recording's events from the admin API's NDJSON stream: the
    /// session (the first line) and every event after it.
    pub async fn admin_events(
        &self,
        path: &str,
    ) -> std::io::Result<(serde_json::Value, Vec<serde_json::Value>)> {
        let (status, body) = self.admin_raw("GET", path, None).await?;
        if status != 200 {
            return Err(std::io::Error::other(format!("{path}: {status} {body}")));
        }
        let mut lines = body.lines().map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .map_err(|e| std::io::Error::other(format!("{e}: {l}")))
        });
        let session = lines
            .next()
            .ok_or_else(|| std::io::Error::other("no session line"))??["session"]
            .take();
        Ok((session, lines.collect::<Result<_, _>>()?))
    }

    /// A whole recording as one value, `{"session": ..., "events": [...]}`,
    /// read from the admin API's events stream.
    pub async fn admin_recording(&self, id: &str) -> std::io::Result<serde_json::Value> {
        let (session, events) = self
            .admin_events(&format!("/api/v1/recordings/{id}/events"))
            .await?;
        Ok(serde_json::json!({"session": session, "events": events}))
    }

    /// One request on the admin socket; the status and the body as text
    /// (a chunked body decoded).
    pub async fn admin_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> std::io::Result<(u16, String)> {
        let mut s = tokio::net::UnixStream::connect(self.socket()).await?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        s.write_all(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: moat\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no status line: {text}")))?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let chunked = head
            .lines()
            .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
        let body = if chunked {
            dechunk(body).ok_or_else(|| std::io::Error::other(format!("bad chunking: {text}")))?
        } else {
            body.to_owned()
        };
        Ok((status, body))
    }

    /// The moat process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    /// Replaces the config file and sends SIGHUP.
    pub fn reload_with(&self, config: &str) {
        std::fs::write(&self.config_path, config).unwrap();
        self.signal(libc::SIGHUP);
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "moat did not exit:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Waits until stderr holds `needle` (log lines are written
    /// asynchronously), then returns all of stderr.
    pub async fn wait_stderr(&self, needle: &str) -> String {
        wait_for(
            || self.stderr().contains(needle).then(|| self.stderr()),
            &format!("stderr to contain {needle:?}"),
            || self.logs(),
        )
        .await
    }

    /// Access log lines (JSON) currently written.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for an access-log line matching `pred`.
    pub async fn wait_access(
        &self,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        wait_for(
            || self.access_log().into_iter().find(&pred),
            "a matching access log line",
            || self.logs(),
        )
        .await
    }

    pub fn logs(&self) -> String {
        format!(
            "--- config {} ---\n{}\n--- stderr ---\n{}\n--- stdout (access log) ---\n{}",
            self.config_path.display(),
            std::fs::read_to_string(&self.config_path).unwrap_or_default(),
            self.stderr(),
            self.stdout()
        )
    }
}

impl Moat {
    /// Polls `f` until it gives a value (up to `within`); on timeout the
    /// test fails with `what` and moat's logs.
    pub async fn wait_until<T>(
        &self,
        what: &str,
        within: Duration,
        f: impl FnMut() -> Option<T>,
    ) -> T {
        wait_for_within(f, what, || self.logs(), within).await
    }
}

async fn wait_for<T>(f: impl FnMut() -> Option<T>, what: &str, logs: impl Fn() -> String) -> T {
    wait_for_within(f, what, logs, Duration::from_secs(10)).await
}

async fn wait_for_within<T>(
    mut f: impl FnMut() -> Option<T>,
    what: &str,
    logs: impl Fn() -> String,
    within: Duration,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

impl Drop for Moat {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// Path helper for configs: a path as a TOML string.
pub fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// The payload of a chunked HTTP/1.1 body (RFC 9112 section 7.1).
fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}
