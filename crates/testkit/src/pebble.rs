//! Pebble, the ACME test CA (Debian package `pebble`), started on
//! 127.0.0.1 with its mock DNS server (`pebble-challtestsrv`) answering
//! every name with 127.0.0.1, so challenges for any test domain reach the
//! moat under test. Pebble's own HTTPS certificate comes from a CA made
//! here, whose PEM moat is pointed at (`directory_ca`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Pebble {
    pebble: Option<Child>,
    dns: Child,
    dir: tempfile::TempDir,
    pub listen: SocketAddr,
    pub management: SocketAddr,
    /// The CA of Pebble's own HTTPS certificate (PEM).
    pub directory_ca: PathBuf,
    dns_addr: SocketAddr,
    /// The mock DNS server's management API (`/set-txt`, `/clear-txt`).
    pub dns_management: SocketAddr,
}

use crate::free_port;

/// A port free now for both TCP and UDP (the DNS server uses both).
fn free_udp_port() -> u16 {
    loop {
        let p = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

impl Pebble {
    /// Starts Pebble validating http-01 on `http_port` and tls-alpn-01 on
    /// `tls_port` of 127.0.0.1, issuing certificates valid for
    /// `validity_secs`.
    pub async fn start(http_port: u16, tls_port: u16, validity_secs: u64) -> Pebble {
        Self::start_with(http_port, tls_port, validity_secs, None).await
    }

    /// [`Pebble::start`], requiring external account binding with this
    /// key id and base64url HMAC key when given.
    pub async fn start_with(
        http_port: u16,
        tls_port: u16,
        validity_secs: u64,
        eab: Option<(&str, &str)>,
    ) -> Pebble {
        assert!(
            std::path::Path::new("/usr/bin/pebble").exists(),
            "pebble is not installed (scripts/test installs the Debian package)"
        );
        let dir = tempfile::tempdir().unwrap();
        // The CA and certificate of Pebble's own HTTPS listener.
        let directory_ca =
            crate::certs::server_with_ca(dir.path(), "pebble-https", "test CA for Pebble's HTTPS");

        let dns_addr: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let dns_management: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let dns = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &dns_addr.to_string()])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &dns_management.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("challtestsrv.log")).unwrap())
            .spawn()
            .expect("pebble-challtestsrv starts");
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let management: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": listen.to_string(),
                "managementListenAddress": management.to_string(),
                "certificate": dir.path().join("cert.pem"),
                "privateKey": dir.path().join("key.pem"),
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": eab.is_some(),
                "externalAccountMACKeys": eab.map(|(kid, key)| serde_json::json!({ kid: key })).unwrap_or(serde_json::json!({})),
                "certificateValidityPeriod": validity_secs,
            }
        });
        std::fs::write(
            dir.path().join("pebble.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        let mut p = Pebble {
            pebble: None,
            dns,
            dir,
            listen,
            management,
            directory_ca,
            dns_addr,
            dns_management,
        };
        p.restart().await;
        p
    }

    /// The ACME directory URL.
    pub fn directory(&self) -> String {
        format!("https://{}/dir", self.listen)
    }

    /// Stops Pebble (its mock DNS keeps running): the CA is down.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.pebble.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts Pebble again on the same addresses. It forgets every account
    /// and issues from a new root, as Pebble does at each start.
    pub async fn restart(&mut self) {
        self.stop();
        let child = Command::new("pebble")
            .arg("-config")
            .arg(self.dir.path().join("pebble.json"))
            .args(["-dnsserver", &self.dns_addr.to_string()])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(std::fs::File::create(self.dir.path().join("pebble.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble starts");
        self.pebble = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(self.listen).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "pebble did not start:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Pebble's log (what its validation saw), for assertion messages.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// The root Pebble issues from now (PEM), from its management API.
    pub async fn root_pem(&self) -> String {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::client::tls_config(
                &self.directory_ca,
                &[b"http/1.1"],
            ))
            .build()
            .unwrap();
        http.get(format!("https://{}/roots/0", self.management))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
        let _ = self.dns.kill();
        let _ = self.dns.wait();
    }
}
