//! A real OpenID provider for the sign-in tests: `oidc-provider` from npm
//! (a certified implementation), run by `oidc/provider.mjs` on 127.0.0.1
//! over TLS with a certificate from a CA made here (moat is pointed at its
//! PEM with `ca`). Users, clients and token lifetimes come from the test;
//! signing keys persist in the provider's folder, so a restart with other
//! key names is a key rotation. `/__test/tamper` makes the next token
//! answer carry a forged or broken ID token.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

pub struct OidcProvider {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    /// `https://127.0.0.1:PORT`
    pub issuer: String,
    /// The CA of the provider's HTTPS certificate (PEM).
    pub ca: PathBuf,
    config: serde_json::Value,
    http: reqwest::Client,
}

/// A user the provider signs in.
pub struct User<'a> {
    pub sub: &'a str,
    pub password: &'a str,
    pub email: &'a str,
    /// `None`: the provider sends no groups claim at all.
    pub groups: Option<&'a [&'a str]>,
}

impl OidcProvider {
    /// Starts a provider with one client (`client_id`, `secret`) allowed to
    /// redirect to `redirect_uris` and, after logout, to
    /// `post_logout_uris`; tokens last `access_ttl` seconds.
    pub async fn start(
        client_id: &str,
        secret: &str,
        redirect_uris: &[String],
        post_logout_uris: &[String],
        users: &[User<'_>],
        access_ttl: u64,
    ) -> OidcProvider {
        let dir = tempfile::tempdir().unwrap();
        let ca =
            crate::certs::server_with_ca(dir.path(), "provider", "test CA for the OpenID provider");
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        let port = free_port();
        let issuer = format!("https://127.0.0.1:{port}");
        let users: Vec<_> = users
            .iter()
            .map(|u| {
                let mut v = serde_json::json!({
                    "sub": u.sub,
                    "password": u.password,
                    "email": u.email,
                    "email_verified": true,
                    "name": u.sub,
                });
                if let Some(g) = u.groups {
                    v["groups"] = serde_json::json!(g);
                }
                v
            })
            .collect();
        let config = serde_json::json!({
            "port": port,
            "cert": dir.path().join("cert.pem"),
            "key": dir.path().join("key.pem"),
            "issuer": issuer,
            "keys_dir": dir.path().join("keys"),
            "keys": ["k1"],
            "clients": [{
                "client_id": client_id,
                "client_secret": secret,
                "redirect_uris": redirect_uris,
                "post_logout_redirect_uris": post_logout_uris,
            }],
            "users": users,
            "ttl": {"AccessToken": access_ttl, "IdToken": access_ttl.max(60), "RefreshToken": 86400},
        });
        let roots = {
            let mut r = rustls::RootCertStore::empty();
            use rustls::pki_types::pem::PemObject;
            for c in rustls::pki_types::CertificateDer::pem_file_iter(&ca).unwrap() {
                r.add(c.unwrap()).unwrap();
            }
            r
        };
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut p = OidcProvider {
            child: None,
            dir,
            port,
            issuer,
            ca,
            config,
            http,
        };
        p.restart().await;
        p
    }

    /// A client that trusts the provider's certificate and follows no
    /// redirects.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Starts (again) with the current settings.
    pub async fn restart(&mut self) {
        self.stop();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc/provider.mjs");
        let node_path = std::env::var("MOAT_TEST_NODE_PATH").expect(
            "MOAT_TEST_NODE_PATH: run the tests with ./scripts/test, which installs oidc-provider",
        );
        let config_path = self.dir.path().join("config.json");
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("provider.log"))
            .unwrap();
        let child = Command::new("node")
            .arg(&script)
            .arg(&config_path)
            .env("MOAT_TEST_NODE_PATH", &node_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("node starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        // Not the discovery document: the tests count moat's requests.
        let url = format!("{}/__test/counts", self.issuer);
        loop {
            if let Ok(r) = self.http.get(&url).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("the OpenID provider exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the OpenID provider did not start:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Restarts signing with a new key `name`, publishing `keep` too.
    pub async fn rotate_keys(&mut self, keys: &[&str]) {
        self.config["keys"] = serde_json::json!(keys);
        self.restart().await;
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The provider's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("provider.log")).unwrap_or_default()
    }

    /// Makes the next token answer carry an ID token broken in `mode`
    /// (`aud`, `expired`, `signature`, `none`, `nonce`, `iss`, `hs256`).
    pub async fn tamper(&self, mode: &str) {
        let r = self
            .http
            .post(format!("{}/__test/tamper", self.issuer))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "mode": mode }).to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "tamper {mode}: {}", r.status());
    }

    /// How many requests each endpoint has had since the provider started.
    pub async fn counts(&self) -> serde_json::Value {
        let body = self
            .http
            .get(format!("{}/__test/counts", self.issuer))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    /// Signs `user` in at the provider's login form, following the
    /// browser's path from moat's redirect to the provider back to the
    /// callback on moat: returns the callback URL with its code and state.
    pub async fn sign_in(&self, authorize_url: &str, user: &str, password: &str) -> String {
        let mut url = authorize_url.to_owned();
        let mut cookies: Vec<String> = Vec::new();
        let mut posted = false;
        for _ in 0..20 {
            if !url.starts_with(&format!("{}/", self.issuer)) {
                return url;
            }
            let mut req = self.http.get(&url);
            if !cookies.is_empty() {
                req = req.header("cookie", cookies.join("; "));
            }
            let resp = req.send().await.unwrap();
            remember_cookies(&mut cookies, &resp);
            if resp.status().is_redirection() {
                url = absolute(&self.issuer, resp.headers()["location"].to_str().unwrap());
                continue;
            }
            assert!(
                !posted,
                "the provider showed a page after the login: {}",
                resp.text().await.unwrap_or_default()
            );
            // The login form: post to its action.
            let html = resp.text().await.unwrap();
            let action = html
                .split("action=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_else(|| panic!("no form at {url}: {html}"))
                .to_owned();
            let resp = self
                .http
                .post(absolute(&self.issuer, &action))
                .header("cookie", cookies.join("; "))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "login={}&password={}",
                    form_value(user),
                    form_value(password)
                ))
                .send()
                .await
                .unwrap();
            remember_cookies(&mut cookies, &resp);
            assert!(
                resp.status().is_redirection(),
                "login at the provider failed: {}",
                resp.status()
            );
            posted = true;
            url = absolute(&self.issuer, resp.headers()["location"].to_str().unwrap());
        }
        panic!("too many redirects at the provider");
    }
}

fn form_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn remember_cookies(cookies: &mut Vec<String>, resp: &reqwest::Response) {
    for v in resp.headers().get_all("set-cookie") {
        let pair = v.to_str().unwrap().split(';').next().unwrap().to_owned();
        let name = pair.split('=').next().unwrap().to_owned();
        cookies.retain(|c| !c.starts_with(&format!("{name}=")));
        cookies.push(pair);
    }
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        format!("{base}{location}")
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}
