//! A real browser for tests: Debian's headless Chromium, driven through
//! its chromedriver with the WebDriver protocol (fantoccini).
//!
//! `scripts/test` installs the `chromium` and `chromium-driver` packages.
//! Each [`Browser`] runs its own chromedriver on a free port and its own
//! empty profile, and stops both when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fantoccini;
use fantoccini::{Client, ClientBuilder};

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session. The browser
    /// accepts moat's self-signed certificate, as a person would after
    /// clicking through the warning.
    pub async fn start() -> Browser {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        // Its own process group: a test that fails (and so never closes
        // the session) takes the browser down with the driver on drop,
        // rather than leaving Chromium running.
        use std::os::unix::process::CommandExt;
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver runs (scripts/test installs Debian's chromium-driver)");
        let profile = tempfile::tempdir().unwrap();
        // As root, Chromium needs --no-sandbox; the network flags stop it
        // from reaching for Google's services, which this machine refuses.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1024,768",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let mut caps = serde_json::Map::new();
        caps.insert("acceptInsecureCerts".into(), true.into());
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "no WebDriver session from chromedriver: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// The path and query of the page the browser shows.
    pub async fn location(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits (up to 10 s) until the browser shows `expected` (path and
    /// query): a click that submits a form returns before the next page
    /// has loaded.
    pub async fn wait_location(&self, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.location().await;
            if now == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the browser shows {now}, not {expected}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `script` (which returns an array) and gives its items as
    /// strings (a non-string item reads as empty).
    pub async fn strings(&self, script: &str) -> Vec<String> {
        let v = self.client.execute(script, vec![]).await.unwrap();
        v.as_array()
            .unwrap_or_else(|| panic!("{script} did not return an array: {v}"))
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Types `text` into the field with this id, replacing what it held.
    pub async fn fill(&self, id: &str, text: &str) {
        let field = self
            .client
            .find(fantoccini::Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no field #{id}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Waits for the element `css` selects, then clicks it.
    pub async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.unwrap();
    }

    /// Waits for the element `css` selects, then gives its text.
    pub async fn text_of(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.unwrap()
    }

    /// Waits (up to 30 s) for an element `css` selects.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// Runs axe-core (from `node_modules`, see `scripts/test`) in the page
    /// and gives its violations of serious or critical impact, each as
    /// `rule (impact): help — the elements`.
    pub async fn accessibility_faults(&self, node_modules: &std::path::Path) -> Vec<String> {
        let axe = std::fs::read_to_string(node_modules.join("axe-core/axe.min.js"))
            .expect("axe-core is installed (scripts/test installs it)");
        let script = format!(
            "{axe}\n;const done = arguments[arguments.length - 1];\
             axe.run(document).then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
             .map(v => `${{v.id}} (${{v.impact}}): ${{v.help}} — ${{v.nodes.map(n => n.target.join(' ')).join(', ')}}`)),\
             e => done(['axe failed: ' + e]));"
        );
        let v = self.client.execute_async(&script, vec![]).await.unwrap();
        v.as_array()
            .unwrap_or_else(|| panic!("axe answered {v}"))
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Saves a screenshot (PNG), for looking at what a test saw.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(path, png).unwrap();
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // Drop stops the driver and whatever is left of its group.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group of our own child (its id is
        // the group's, see `start`).
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
