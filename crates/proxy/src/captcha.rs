//! The login page's captcha: when it is asked, what the page carries for
//! it, and checking the answer (moat's proof of work with a replay cache,
//! or a hosted service's siteverify with the secret, the token and the
//! client's address, failing closed).
//!
//! SECURITY: the hosted service's secret is sent only to its verify URL
//! and never logged; a service that is slow or down refuses the sign-in
//! (a captcha that fails open is none).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use moat_config::{Captcha, CaptchaKind};
use moat_policy::captcha::{self, Hosted, PowError};

/// How long a proof-of-work challenge may be worked on.
const CHALLENGE_LIFETIME: u64 = 600;
/// Solved challenges remembered at most (each until it expires).
const REPLAY_CAPACITY: usize = 100_000;

/// What the login page carries for the captcha.
pub enum Widget {
    /// moat's script solves this challenge in the page.
    Pow {
        challenge: String,
        difficulty: u8,
    },
    Hosted {
        service: Hosted,
        site_key: String,
    },
}

/// Why an answer was refused (for the page and the log; never a secret).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// No answer in the form.
    Missing,
    /// The answer is wrong, forged, expired or used before.
    Wrong(String),
    /// The service could not be asked (down, slow, a bad answer).
    Unavailable(String),
}

pub struct CaptchaState {
    config: ArcSwapOption<Captcha>,
    key: [u8; 32],
    /// Solved challenges' ids, until they expire.
    used: Mutex<HashMap<String, u64>>,
    http: std::sync::OnceLock<reqwest::Client>,
}

impl CaptchaState {
    pub fn new(config: Option<&Captcha>, key: [u8; 32]) -> CaptchaState {
        CaptchaState {
            config: ArcSwapOption::from(config.cloned().map(Arc::new)),
            key,
            used: Mutex::new(HashMap::new()),
            http: std::sync::OnceLock::new(),
        }
    }

    /// The client for siteverify, made at first use (reading the system's
    /// roots costs time a start without a hosted captcha need not spend).
    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            // reqwest asks for the process's provider too; moat uses ring.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("the verify client builds")
        })
    }

    /// A reload's settings.
    pub fn reconfigure(&self, config: Option<&Captcha>) {
        self.config.store(config.cloned().map(Arc::new));
    }

    /// Whether an address with `failures` recent failed sign-ins is asked.
    pub fn required(&self, failures: u32) -> bool {
        self.config
            .load()
            .as_ref()
            .is_some_and(|c| failures >= c.after_failures)
    }

    /// The widget for a login page (when the captcha is on).
    pub fn widget(&self, now: u64) -> Option<Widget> {
        let c = self.config.load_full()?;
        Some(match &c.kind {
            CaptchaKind::Pow { difficulty } => {
                let mut random = [0u8; 16];
                getrandom::fill(&mut random)
                    .expect("the operating system's random generator works");
                Widget::Pow {
                    challenge: captcha::issue(
                        &self.key,
                        now + CHALLENGE_LIFETIME,
                        *difficulty,
                        &random,
                    ),
                    difficulty: *difficulty,
                }
            }
            CaptchaKind::Hosted {
                service, site_key, ..
            } => Widget::Hosted {
                service: *service,
                site_key: site_key.clone(),
            },
        })
    }

    /// Checks the answer the login form carries (`field` reads a form
    /// field).
    pub async fn check(
        &self,
        field: impl Fn(&str) -> Option<String>,
        client: IpAddr,
        now: u64,
    ) -> Result<(), Refused> {
        let Some(c) = self.config.load_full() else {
            return Ok(());
        };
        match &c.kind {
            CaptchaKind::Pow { difficulty } => {
                let challenge = field("captcha_challenge").ok_or(Refused::Missing)?;
                let solution = field("captcha_solution").ok_or(Refused::Missing)?;
                let solved = captcha::verify(&self.key, &challenge, &solution, now, *difficulty)
                    .map_err(|e| {
                        Refused::Wrong(
                            match e {
                                PowError::Forged => "a challenge moat did not issue",
                                PowError::Expired => "an expired challenge",
                                PowError::TooEasy => "a challenge easier than required",
                                PowError::Unsolved => "a wrong solution",
                            }
                            .into(),
                        )
                    })?;
                let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
                used.retain(|_, expires| *expires > now);
                if used.len() >= REPLAY_CAPACITY {
                    // Full of live challenges: refuse rather than forget
                    // one (which would let it be replayed).
                    return Err(Refused::Unavailable("the replay cache is full".into()));
                }
                if used.insert(solved.id, solved.expires).is_some() {
                    return Err(Refused::Wrong("a solution used before".into()));
                }
                Ok(())
            }
            CaptchaKind::Hosted {
                service,
                secret,
                verify_url,
                timeout,
                ..
            } => {
                let token = field(service.response_field())
                    .filter(|t| !t.is_empty())
                    .ok_or(Refused::Missing)?;
                let body = moat_policy::login::form_encode(&[
                    ("secret", secret),
                    ("response", &token),
                    ("remoteip", &client.to_string()),
                ]);
                let ask = self
                    .http()
                    .post(verify_url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send();
                let resp = match tokio::time::timeout(*timeout, async {
                    let r = ask.await?;
                    let status = r.status();
                    r.bytes().await.map(|b| (status, b))
                })
                .await
                {
                    Err(_) => {
                        return Err(Refused::Unavailable(format!(
                            "{} did not answer within {:?}",
                            service.name(),
                            timeout
                        )));
                    }
                    Ok(Err(e)) => {
                        return Err(Refused::Unavailable(format!(
                            "{}: {}",
                            service.name(),
                            without_url(&e)
                        )));
                    }
                    Ok(Ok(r)) => r,
                };
                let (status, bytes) = resp;
                let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
                    Refused::Unavailable(format!(
                        "{} answered HTTP {status} without JSON",
                        service.name()
                    ))
                })?;
                if v["success"] == serde_json::Value::Bool(true) {
                    Ok(())
                } else {
                    Err(Refused::Wrong(format!(
                        "{} said no ({})",
                        service.name(),
                        v["error-codes"]
                    )))
                }
            }
        }
    }
}

/// reqwest's error text without the URL (which a log need not repeat).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
