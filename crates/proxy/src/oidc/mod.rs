//! Sign-in through OpenID Connect providers: the configured providers,
//! the logins under way (authorization code flow with PKCE, `state` and
//! `nonce` each used once), and the provider tokens behind each session.
//!
//! A session signed in through a provider lasts as long as the provider's
//! tokens vouch for the person. Then moat asks the provider again with the
//! refresh token (the claims are read afresh, so a person removed from a
//! group loses the apps that need it); without one, or when the provider
//! refuses, the session ends. The session's own timeouts still bound it:
//! a refresh never carries it past `auth.absolute_timeout`.
//!
//! SECURITY: a login under way is bound to the browser that began it by a
//! cookie holding a random value whose hash the login keeps, so a callback
//! URL sent to someone else (login CSRF) signs nobody in.

pub mod provider;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use base64::Engine;
use moat_config::OidcProvider;
use moat_policy::access::Identity;
use moat_policy::sessions::SessionId;
use sha2::Digest;

pub use provider::{OidcError, Provider, Tokens};

/// The cookie binding a login under way to its browser.
pub const BINDING_COOKIE: &str = "__Host-moat_oidc";
pub const BINDING_COOKIE_PLAIN: &str = "moat_oidc";
/// How long a login may take at the provider.
const LOGIN_MAX_AGE: Duration = Duration::from_secs(600);
/// Logins under way kept at most; past this the oldest are dropped.
const PENDING_CAPACITY: usize = 10_000;

/// A login sent to a provider and not back yet.
struct Pending {
    provider: String,
    code_verifier: String,
    nonce: String,
    next: String,
    redirect_uri: String,
    /// SHA-256 of the binding cookie's value.
    binding: [u8; 32],
    started: Instant,
}

/// A provider's tokens behind one session.
struct SessionTokens {
    provider: String,
    subject: String,
    /// Held across a refresh, so parallel requests refresh once.
    state: tokio::sync::Mutex<TokenState>,
}

struct TokenState {
    id_token: Option<String>,
    refresh_token: Option<String>,
    renew_at: SystemTime,
}

/// Why a login could not begin.
#[derive(Debug, PartialEq, Eq)]
pub enum BeginError {
    UnknownProvider,
    /// Discovery has not succeeded yet; the last error, for the log.
    Unavailable(Option<String>),
}

/// Why a callback signed nobody in.
#[derive(Debug, PartialEq, Eq)]
pub enum CallbackError {
    /// No login under way has this `state` (made up, already used, or
    /// expired), or it is another browser's or provider's.
    UnknownState,
    /// The provider said no (the person cancelled, or is not allowed).
    Provider(String),
    /// The answer or the tokens failed a check; the reason is for the log.
    Invalid(String),
}

/// What a session check found.
pub enum Freshness {
    /// The provider's tokens still vouch for the person.
    Fresh,
    /// Refreshed: the person as the provider states them now, their
    /// subject, and until when the new tokens vouch for them.
    Renewed(Identity, String, SystemTime),
    /// The session must end: the reason is for the log.
    Ended(String),
}

pub struct Oidc {
    providers: ArcSwap<HashMap<String, Arc<Provider>>>,
    pending: Mutex<HashMap<String, Pending>>,
    sessions: Mutex<HashMap<SessionId, Arc<SessionTokens>>>,
}

impl Oidc {
    /// The configured providers, not yet discovered: [`Oidc::start`]
    /// begins that (it needs the runtime).
    pub fn new(configs: &[OidcProvider]) -> Oidc {
        Oidc {
            providers: ArcSwap::from_pointee(build(configs, &HashMap::new())),
            pending: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Starts discovering every provider not discovered yet.
    pub fn start(&self) {
        for p in self.providers.load().values() {
            if !p.is_ready() {
                p.spawn_discovery();
            }
        }
    }

    /// A reload: providers whose settings are unchanged stay as they are
    /// (discovered, with their keys); new and changed ones are discovered.
    pub fn reconfigure(&self, configs: &[OidcProvider]) {
        let old = self.providers.load_full();
        let new = build(configs, &old);
        self.providers.store(Arc::new(new));
        self.start();
    }

    pub fn provider(&self, name: &str) -> Option<Arc<Provider>> {
        self.providers.load().get(name).cloned()
    }

    /// Whether sign-in through `name` can begin now.
    pub fn is_ready(&self, name: &str) -> bool {
        self.provider(name).is_some_and(|p| p.is_ready())
    }

    /// Begins a login: the URL to send the browser to, and the binding
    /// cookie's value.
    pub fn begin(
        &self,
        name: &str,
        redirect_uri: &str,
        next: &str,
    ) -> Result<(String, String), BeginError> {
        let p = self.provider(name).ok_or(BeginError::UnknownProvider)?;
        if !p.is_ready() {
            return Err(BeginError::Unavailable(p.last_error()));
        }
        // Always a fresh binding: one the browser already holds could have
        // been planted (over plain HTTP the cookie has no `__Host-`
        // prefix), which would undo the binding. A second login in another
        // tab replaces the first's.
        let binding = random_token();
        let state = random_token();
        let nonce = random_token();
        let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
        let url = p
            .authorize_url(redirect_uri, &state, &nonce, challenge.as_str())
            .ok_or(BeginError::Unavailable(None))?;
        let now = Instant::now();
        let mut pending = lock(&self.pending);
        pending.retain(|_, l| now.duration_since(l.started) < LOGIN_MAX_AGE);
        if pending.len() >= PENDING_CAPACITY
            && let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, l)| l.started)
                .map(|(k, _)| k.clone())
        {
            pending.remove(&oldest);
        }
        pending.insert(
            state,
            Pending {
                provider: name.to_owned(),
                code_verifier: verifier.secret().clone(),
                nonce,
                next: next.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                binding: sha256(&binding),
                started: now,
            },
        );
        Ok((url, binding))
    }

    /// Completes a login from the provider's redirect back: the query's
    /// `state` names a login under way (which is used up, whatever
    /// follows), from this browser, for this provider; then the code is
    /// exchanged and the ID token checked. Returns the tokens and where
    /// the person was going.
    pub async fn finish(
        &self,
        name: &str,
        query: Option<&str>,
        binding: Option<&str>,
    ) -> Result<(Tokens, String), CallbackError> {
        let param = |k: &str| moat_policy::login::query_param(query, k);
        let state = param("state").ok_or(CallbackError::UnknownState)?;
        let login = lock(&self.pending)
            .remove(&state)
            .ok_or(CallbackError::UnknownState)?;
        let same_browser = binding
            .is_some_and(|b| moat_policy::basic_auth::constant_time_eq(&sha256(b), &login.binding));
        if login.provider != name || !same_browser || login.started.elapsed() >= LOGIN_MAX_AGE {
            return Err(CallbackError::UnknownState);
        }
        let p = self.provider(name).ok_or(CallbackError::UnknownState)?;
        // RFC 9207: a provider that names itself in the answer must name
        // the issuer this login went to (a mix-up attack otherwise).
        if let Some(iss) = param("iss")
            && iss != p.config.issuer
        {
            return Err(CallbackError::Invalid(format!(
                "the answer names the issuer {iss:?}, not {:?}",
                p.config.issuer
            )));
        }
        if let Some(e) = param("error") {
            // Quoted: the provider's words pass through the browser, so
            // they are the client's to choose.
            let described = param("error_description").unwrap_or_default();
            return Err(CallbackError::Provider(format!("{e:?} {described:?}")));
        }
        let code = param("code")
            .ok_or_else(|| CallbackError::Invalid("the answer carries no code".into()))?;
        let tokens = p
            .exchange(
                &code,
                &login.redirect_uri,
                &login.code_verifier,
                &login.nonce,
            )
            .await
            .map_err(|e| CallbackError::Invalid(e.0))?;
        Ok((tokens, login.next))
    }

    /// Keeps a new session's tokens; returns when it must be checked with
    /// the provider again.
    pub fn keep(&self, session: SessionId, provider: &str, tokens: &Tokens) -> SystemTime {
        let renew_at = SystemTime::now() + tokens.valid_for;
        lock(&self.sessions).insert(
            session,
            Arc::new(SessionTokens {
                provider: provider.to_owned(),
                subject: tokens.subject.clone(),
                state: tokio::sync::Mutex::new(TokenState {
                    id_token: Some(tokens.id_token.clone()),
                    refresh_token: tokens.refresh_token.clone(),
                    renew_at,
                }),
            }),
        );
        renew_at
    }

    /// A session put back after a restart: the tokens stayed in the old
    /// process's memory, so it lasts until `renew_at` and then signs in
    /// at the provider again.
    pub fn restore(&self, session: SessionId, provider: &str, subject: &str, renew_at: SystemTime) {
        lock(&self.sessions).insert(
            session,
            Arc::new(SessionTokens {
                provider: provider.to_owned(),
                subject: subject.to_owned(),
                state: tokio::sync::Mutex::new(TokenState {
                    id_token: None,
                    refresh_token: None,
                    renew_at,
                }),
            }),
        );
    }

    /// Whether a provider's session still stands, refreshing it when its
    /// tokens have run out.
    pub async fn check(&self, session: &SessionId) -> Freshness {
        let Some(tokens) = lock(&self.sessions).get(session).cloned() else {
            return Freshness::Ended("no provider tokens are known for the session".into());
        };
        let now = SystemTime::now();
        if now < tokens.state.lock().await.renew_at {
            return Freshness::Fresh;
        }
        let mut state = tokens.state.lock().await;
        // Another request refreshed while this one waited.
        if SystemTime::now() < state.renew_at {
            return Freshness::Fresh;
        }
        let Some(refresh_token) = state.refresh_token.clone() else {
            return Freshness::Ended(
                "the provider's tokens expired and it gave no refresh token".into(),
            );
        };
        let Some(p) = self.provider(&tokens.provider).filter(|p| p.is_ready()) else {
            return Freshness::Ended("the provider is not available to refresh the session".into());
        };
        match p.refresh(&refresh_token, &tokens.subject).await {
            Ok(t) => {
                state.id_token = Some(t.id_token.clone());
                state.refresh_token = t.refresh_token.clone();
                state.renew_at = SystemTime::now() + t.valid_for;
                Freshness::Renewed(t.identity, t.subject, state.renew_at)
            }
            Err(e) => Freshness::Ended(format!("refresh refused: {e}")),
        }
    }

    /// Forgets a session's tokens (sign-out); returns the provider and the
    /// ID token, for ending the provider's session too.
    pub fn forget(&self, session: &SessionId) -> Option<(String, Option<String>)> {
        let t = lock(&self.sessions).remove(session)?;
        let id_token = t.state.try_lock().ok().and_then(|s| s.id_token.clone());
        Some((t.provider.clone(), id_token))
    }

    /// Drops the tokens of sessions that are no longer live.
    pub fn retain_sessions(&self, live: impl Fn(&SessionId) -> bool) {
        lock(&self.sessions).retain(|id, _| live(id));
    }

    /// Each provider's name, whether it is discovered, and its last error.
    pub fn status(&self) -> Vec<(String, bool, Option<String>)> {
        let mut v: Vec<_> = self
            .providers
            .load()
            .values()
            .map(|p| (p.name().to_owned(), p.is_ready(), p.last_error()))
            .collect();
        v.sort();
        v
    }
}

/// Providers for `configs`, reusing those of `old` whose settings are the
/// same. A provider whose HTTP client cannot be built (its CA file became
/// unreadable) is left out with an error in the log; its apps answer 503.
fn build(
    configs: &[OidcProvider],
    old: &HashMap<String, Arc<Provider>>,
) -> HashMap<String, Arc<Provider>> {
    let mut out = HashMap::new();
    for c in configs {
        let p = match old.get(&c.name) {
            Some(p) if p.config == *c => p.clone(),
            _ => match Provider::new(c.clone()) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(provider = %c.name, "OpenID provider not usable: {e}");
                    continue;
                }
            },
        };
        out.insert(c.name.clone(), p);
    }
    out
}

/// 32 random bytes, base64url (43 characters).
fn random_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the operating system's random generator works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn sha256(s: &str) -> [u8; 32] {
    sha2::Sha256::digest(s.as_bytes()).into()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
