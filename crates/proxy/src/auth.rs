//! Sign-in state: live sessions, the session cookie, password checks with
//! per-address and per-user lockout, and the identity-token key.
//!
//! The decisions (expiry, signatures, lockout arithmetic) are in
//! `moat_policy`; this module holds their state between requests and runs
//! the password hash off the worker threads.
//!
//! One file (over 900 lines with its tests) because sessions, lockout,
//! the second factor and the device cookie share one lock order and one
//! set of cookie rules; splitting them would spread that over several
//! files. It is the next candidate for a split (sessions and their store
//! on one side, password and code checks on the other) when it grows.

use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, header};
use moat_config::Security;
use moat_policy::access::{Identity, Source};
use moat_policy::basic_auth;
use moat_policy::sessions::{SessionId, SessionTable, Timeouts};
use moat_policy::signing::{self, IdentityKey};
use moat_policy::throttle::{Attempt, Limits, Throttle, Verdict};

use crate::admin_password::AdminPassword;
use crate::keys::Keys;

/// The session cookie over HTTPS. SECURITY: the `__Host-` prefix makes
/// browsers refuse it unless it is Secure, has `Path=/` and no `Domain`, so
/// a sibling subdomain cannot plant or overwrite it.
pub const SESSION_COOKIE: &str = "__Host-moat_session";
/// Over plain HTTP (only with `tls.enabled = false`) a `__Host-` cookie
/// would be refused, so the name drops the prefix.
pub const SESSION_COOKIE_PLAIN: &str = "moat_session";

/// Sessions kept at most; past this the least recently used end.
const SESSION_CAPACITY: usize = 100_000;

/// Five failed sign-ins from one address in five minutes lock it out for
/// fifteen.
pub const PER_ADDRESS: Limits = Limits {
    max_failures: 5,
    window: Duration::from_secs(300),
    lockout: Duration::from_secs(900),
    capacity: 100_000,
};

/// Ten failed sign-ins for one user name in five minutes, from anywhere,
/// lock that name out for fifteen (slows guessing spread over addresses).
pub const PER_USER: Limits = Limits {
    max_failures: 10,
    window: Duration::from_secs(300),
    lockout: Duration::from_secs(900),
    capacity: 10_000,
};

/// The outcome of a password check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// The user, and a key naming the session (empty for a sign-in that
    /// has no session yet).
    Accepted(String, String),
    Refused,
    /// Too many failures: try again after this long.
    Locked(Duration),
    /// Another sign-in for this address or user is being checked, or every
    /// password check is busy: try again in a moment.
    Busy,
}

/// The device cookie: a browser that signed in before.
pub const DEVICE_COOKIE: &str = "__Host-moat_device";
pub const DEVICE_COOKIE_PLAIN: &str = "moat_device";
/// How long a device cookie vouches for its browser.
pub const DEVICE_MAX_AGE: Duration = Duration::from_secs(90 * 86_400);

/// Releases an attempt reserved with `Throttle::begin`, however the
/// check ends (a client that goes away mid-hash included).
struct Reserved<'a, K: std::hash::Hash + Eq + Clone> {
    throttle: &'a Mutex<Throttle<K>>,
    key: K,
}

impl<K: std::hash::Hash + Eq + Clone> Drop for Reserved<'_, K> {
    fn drop(&mut self) {
        lock(self.throttle).end(&self.key);
    }
}

/// Reserves the one attempt `key` may have under way.
fn reserve<'a, K: std::hash::Hash + Eq + Clone>(
    throttle: &'a Mutex<Throttle<K>>,
    key: &K,
    now: Instant,
) -> Result<Reserved<'a, K>, SignIn> {
    match lock(throttle).begin(key, now) {
        Attempt::Reserved => Ok(Reserved {
            throttle,
            key: key.clone(),
        }),
        Attempt::Locked { retry_after } => Err(SignIn::Locked(retry_after)),
        Attempt::Busy => Err(SignIn::Busy),
    }
}

pub struct AuthState {
    session_key: [u8; 32],
    pub identity: IdentityKey,
    sessions: Mutex<SessionTable>,
    by_address: Mutex<Throttle<IpAddr>>,
    by_user: Mutex<Throttle<String>>,
    /// SECURITY: password hashes run at most this many at once (half the
    /// cores), so a flood of guesses from many addresses queues here
    /// instead of taking every core from the requests being served.
    hashing: std::sync::Arc<tokio::sync::Semaphore>,
    /// The system account's password (a configured hash, or this run's
    /// random password).
    admin_password: arc_swap::ArcSwap<AdminPassword>,
    /// Where sessions outlive a restart (None: memory only, in unit tests).
    store: Option<moat_store::Store>,
    /// OpenID Connect providers, logins under way, and the provider
    /// tokens behind sessions signed in through them.
    pub oidc: crate::oidc::Oidc,
    /// The login page's captcha.
    pub captcha: crate::captcha::CaptchaState,
}

/// A live session, as a request found it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub identity: Identity,
    /// Names the session outside moat's memory (recordings, logs).
    pub key: String,
    /// The session table's key (the hash of the id).
    pub id: SessionId,
}

/// A provider session's extra facts, as the store keeps them.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct StoredClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    /// The provider's subject.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    sub: String,
    /// When the provider's tokens stop vouching (Unix ms).
    #[serde(default)]
    renew_at: i64,
}

/// How long the login page's second step may follow the password.
const SECOND_STEP_MAX_AGE: u64 = 300;

/// How long a password check waits for a free hashing slot.
const HASH_QUEUE_WAIT: Duration = Duration::from_secs(10);

impl AuthState {
    pub fn new(keys: &Keys, auth: &moat_config::Auth, password: AdminPassword) -> AuthState {
        AuthState {
            admin_password: arc_swap::ArcSwap::from_pointee(password),
            session_key: keys.session,
            identity: IdentityKey::from_seed(&keys.identity_seed),
            sessions: Mutex::new(SessionTable::new(timeouts(auth), SESSION_CAPACITY)),
            by_address: Mutex::new(Throttle::new(PER_ADDRESS)),
            by_user: Mutex::new(Throttle::new(PER_USER)),
            hashing: std::sync::Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get().div_ceil(2))
                    .max(1),
            )),
            store: None,
            oidc: crate::oidc::Oidc::new(&auth.oidc),
            captcha: crate::captcha::CaptchaState::new(auth.captcha.as_ref(), keys.session),
        }
    }

    /// Keeps sessions in `store` too, so a restart signs nobody out.
    pub fn with_store(mut self, store: moat_store::Store) -> AuthState {
        self.store = Some(store);
        self
    }

    /// Puts back the sessions the store kept (at start). Sessions signed in
    /// with another admin password (a changed hash, or the last run's
    /// random one) are ended first; expired ones are not put back.
    pub async fn restore_sessions(&self) -> Result<(usize, u64), moat_store::StoreError> {
        let Some(store) = &self.store else {
            return Ok((0, 0));
        };
        let ended = store
            .delete_sessions_except(Some(&self.admin_password().fingerprint()))
            .await?;
        let rows = store.sessions().await?;
        let (now, now_ms) = (Instant::now(), wall_ms());
        // The table counts in `Instant`s, which start at boot: a time
        // before boot cannot be put back, and such a session ends (the
        // safe side: it never outlives its absolute timeout).
        let back = |ms: i64| now.checked_sub(Duration::from_millis((now_ms - ms).max(0) as u64));
        let mut table = lock(&self.sessions);
        let mut restored = 0;
        for r in rows {
            let Some(source) = Source::parse(&r.source) else {
                continue;
            };
            let claims: StoredClaims = serde_json::from_str(&r.claims).unwrap_or_default();
            let identity = Identity {
                user: r.user,
                email: claims.email,
                groups: claims.groups,
                source: source.clone(),
            };
            if let (Some(created), Some(seen)) = (back(r.created), back(r.last_seen))
                && table.restore(r.id_hash, identity, created, seen, now)
            {
                if let Source::Oidc(provider) = &source {
                    let renew_at = std::time::UNIX_EPOCH
                        + Duration::from_millis(claims.renew_at.max(0) as u64);
                    self.oidc
                        .restore(r.id_hash, provider, &claims.sub, renew_at);
                }
                restored += 1;
            }
        }
        Ok((restored, ended))
    }

    /// The system account's password now.
    pub fn admin_password(&self) -> std::sync::Arc<AdminPassword> {
        self.admin_password.load_full()
    }

    /// A configured hash replaces the current password.
    pub fn set_admin_password_hash(&self, hash: String) {
        self.admin_password
            .store(std::sync::Arc::new(AdminPassword::from_hash(hash)));
    }

    /// A reload: new timeouts apply to live sessions; a new password ends
    /// them all, kept ones included.
    pub async fn reconfigure(&self, auth: &moat_config::Auth, password_changed: bool) {
        {
            let mut s = lock(&self.sessions);
            s.set_timeouts(timeouts(auth));
            if password_changed {
                s.clear_system();
            }
        }
        self.oidc.reconfigure(&auth.oidc);
        self.captcha.reconfigure(auth.captcha.as_ref());
        if let (true, Some(store)) = (password_changed, &self.store) {
            let keep = self.admin_password().fingerprint();
            if let Err(e) = store.delete_sessions_except(Some(&keep)).await {
                tracing::error!(
                    "sessions of the old password could not be removed from the store (they are refused in memory): {e}"
                );
            }
        }
    }

    pub fn cookie_name(tls: bool) -> &'static str {
        if tls {
            SESSION_COOKIE
        } else {
            SESSION_COOKIE_PLAIN
        }
    }

    fn session_id(&self, headers: &HeaderMap, tls: bool) -> Option<SessionId> {
        let value = moat_policy::login::cookie(headers, Self::cookie_name(tls))?;
        signing::verify_session(&self.session_key, value)
    }

    /// The live session the request's cookie names, if any.
    pub fn session(&self, headers: &HeaderMap, tls: bool) -> Option<SignedIn> {
        let id = self.session_id(headers, tls)?;
        let key = table_key(&id);
        let identity = lock(&self.sessions)
            .touch(&key, Instant::now())?
            .identity
            .clone();
        Some(SignedIn {
            identity,
            key: session_key(&id),
            id: key,
        })
    }

    /// A provider's refresh brought new claims: the session (and the
    /// store's copy) carries them from now on.
    pub async fn update_session(
        &self,
        id: &SessionId,
        identity: Identity,
        subject: &str,
        renew_at: std::time::SystemTime,
    ) {
        let claims = stored_claims(&identity, subject, renew_at);
        if !lock(&self.sessions).update(id, identity) {
            return;
        }
        if let Some(store) = &self.store
            && let Err(e) = store.update_session_claims(id, &claims).await
        {
            tracing::warn!(
                "a refreshed session's claims were not stored (the next restart puts back the old ones until they expire): {e}"
            );
        }
    }

    /// Ends a session found stale (its provider no longer vouches for it).
    pub async fn drop_session(&self, id: &SessionId) {
        lock(&self.sessions).remove(id);
        self.oidc.forget(id);
        if let Some(store) = &self.store
            && let Err(e) = store.delete_session(id).await
        {
            tracing::warn!("an ended session could not be removed from the store: {e}");
        }
    }

    /// The admin portal's CSRF token of a live session.
    pub fn csrf_token(&self, session: &SignedIn) -> String {
        signing::csrf_token(&self.session_key, &session.id)
    }

    /// Whether `token` is the session's CSRF token.
    pub fn verify_csrf_token(&self, session: &SignedIn, token: &str) -> bool {
        signing::verify_csrf_token(&self.session_key, &session.id, token)
    }

    /// The key naming the request's session, live or not.
    pub fn session_key(&self, headers: &HeaderMap, tls: bool) -> Option<String> {
        self.session_id(headers, tls).map(|id| session_key(&id))
    }

    /// Starts a session for the system account; returns the `Set-Cookie`
    /// value.
    pub async fn start_session(&self, user: String, tls: bool) -> HeaderValue {
        self.start_identity_session(Identity::system(user), None, tls)
            .await
            .0
    }

    /// Starts a session for `identity`, kept in the store before the
    /// cookie is handed out (so a crash right after sign-in loses
    /// nothing); a provider's session keeps its tokens too. Returns the
    /// `Set-Cookie` value and the session's table key.
    pub async fn start_identity_session(
        &self,
        identity: Identity,
        tokens: Option<&crate::oidc::Tokens>,
        tls: bool,
    ) -> (HeaderValue, SessionId) {
        let mut id = [0u8; 32];
        getrandom::fill(&mut id).expect("the operating system's random generator works");
        let key = table_key(&id);
        let source = identity.source.to_string();
        let user = identity.user.clone();
        // The session before its tokens: a sweep in between would drop
        // tokens whose session it cannot find.
        lock(&self.sessions).insert(key, identity.clone(), Instant::now());
        let (password, claims) = match (&identity.source, tokens) {
            (Source::Oidc(provider), Some(t)) => {
                let renew_at = self.oidc.keep(key, provider, t);
                (
                    String::new(),
                    stored_claims(&identity, &t.subject, renew_at),
                )
            }
            _ => (self.admin_password().fingerprint(), "{}".to_owned()),
        };
        if let Some(store) = &self.store {
            let at = wall_ms();
            let row = moat_store::StoredSession {
                id_hash: key,
                user,
                password,
                created: at,
                last_seen: at,
                source,
                claims,
            };
            if let Err(e) = store.insert_session(&row).await {
                tracing::error!(
                    "the new session is not kept in the store, so it ends at the next restart: {e}"
                );
            }
        }
        let value = signing::sign_session(&self.session_key, &id);
        (cookie_header(tls, &value, None), key)
    }

    /// Ends the request's session, if any; returns the `Set-Cookie` value
    /// that removes the cookie, the session's identity and key, and for a
    /// provider's session its name and ID token (to end its session too).
    pub async fn end_session(
        &self,
        headers: &HeaderMap,
        tls: bool,
    ) -> (
        HeaderValue,
        Option<(Identity, String)>,
        Option<(String, Option<String>)>,
    ) {
        let id = self.session_id(headers, tls);
        let ended = id.and_then(|id| {
            lock(&self.sessions)
                .remove(&table_key(&id))
                .map(|s| (s.identity, session_key(&id)))
        });
        let provider = id.and_then(|id| self.oidc.forget(&table_key(&id)));
        if let (Some(id), Some(store)) = (id, &self.store)
            && let Err(e) = store.delete_session(&table_key(&id)).await
        {
            tracing::error!(
                "the ended session could not be removed from the store (it is refused in memory; the store forgets it at its expiry): {e}"
            );
        }
        (cookie_header(tls, "", Some(0)), ended, provider)
    }

    /// The user behind HTTP Basic credentials. Credentials already checked
    /// are remembered as a session (keyed by a MAC of the header), so a
    /// client sending them with every request pays for bcrypt once per
    /// session, not per request.
    pub async fn basic_user(
        &self,
        authorization: &HeaderValue,
        client: IpAddr,
        security: &Security,
        auth: &moat_config::Auth,
        password: std::sync::Arc<AdminPassword>,
    ) -> SignIn {
        let id = table_key(&signing::credentials_session_id(
            &self.session_key,
            authorization.as_bytes(),
        ));
        if let Some(s) = lock(&self.sessions).touch(&id, Instant::now()) {
            return SignIn::Accepted(s.identity.user.clone(), session_key(&id));
        }
        let Some((user, pass)) = authorization.to_str().ok().and_then(basic_auth::parse) else {
            return SignIn::Refused;
        };
        // Parallel requests with the same new credentials (a first page
        // load) are checked one at a time: the others wait for that check
        // and then find the credentials remembered.
        let mut verdict = SignIn::Busy;
        for _ in 0..100 {
            verdict = self
                .check_password(
                    &user,
                    pass.clone(),
                    client,
                    security,
                    auth,
                    password.clone(),
                    false,
                )
                .await;
            if verdict != SignIn::Busy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Some(s) = lock(&self.sessions).touch(&id, Instant::now()) {
                return SignIn::Accepted(s.identity.user.clone(), session_key(&id));
            }
        }
        match verdict {
            // Basic carries no one-time code: an account with a second
            // factor cannot sign in this way.
            SignIn::Accepted(user, _)
                if auth.require_totp || self.has_second_factor(&user).await =>
            {
                tracing::warn!(client = %client, user, "HTTP Basic refused: the account signs in with a second factor");
                SignIn::Refused
            }
            SignIn::Accepted(user, _) => {
                lock(&self.sessions).insert(id, Identity::system(user.clone()), Instant::now());
                SignIn::Accepted(user, session_key(&id))
            }
            other => other,
        }
    }

    /// Runs a password hash on the bounded hashing slots, off the worker
    /// thread; `None` when no slot came free in time.
    pub async fn verify_password(
        &self,
        hash: std::sync::Arc<AdminPassword>,
        password: String,
    ) -> Option<bool> {
        let slot = tokio::time::timeout(HASH_QUEUE_WAIT, self.hashing.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        // The slot goes with the hash: a client that gives up mid-check
        // frees nothing until the hash is done, so cancelling cannot run
        // more hashes at once than there are slots.
        Some(
            tokio::task::spawn_blocking(move || {
                let _slot = slot;
                hash.verify(&password)
            })
            .await
            .unwrap_or(false),
        )
    }

    /// Checks a user name and password for the system account, with
    /// lockout per client address and per user name. An attempt is
    /// reserved before the hash runs (one at a time per address and per
    /// user), so parallel guesses cannot all pass the lockout check.
    /// `trusted_device`: the browser holds a device cookie for this user,
    /// so the per-user lockout (which anyone can trigger from anywhere)
    /// does not apply to it; the per-address one still does.
    #[allow(clippy::too_many_arguments)]
    pub async fn check_password(
        &self,
        user: &str,
        password: String,
        client: IpAddr,
        security: &Security,
        auth: &moat_config::Auth,
        hash: std::sync::Arc<AdminPassword>,
        trusted_device: bool,
    ) -> SignIn {
        self.check_password_step(
            user,
            password,
            client,
            security,
            auth,
            hash,
            trusted_device,
            false,
        )
        .await
    }

    /// [`AuthState::check_password`] as the first of two steps: a right
    /// password resets no lockout count (`defer_success`).
    #[allow(clippy::too_many_arguments)]
    pub async fn check_password_step(
        &self,
        user: &str,
        password: String,
        client: IpAddr,
        security: &Security,
        auth: &moat_config::Auth,
        hash: std::sync::Arc<AdminPassword>,
        trusted_device: bool,
        defer_success: bool,
    ) -> SignIn {
        let now = Instant::now();
        let _by_address = match reserve(&self.by_address, &client, now) {
            Ok(r) => r,
            Err(verdict) => return verdict,
        };
        let user_key = user.to_owned();
        let _by_user = if trusted_device {
            None
        } else {
            match reserve(&self.by_user, &user_key, now) {
                Ok(r) => Some(r),
                Err(verdict) => return verdict,
            }
        };
        let user_ok = auth.system_account
            && basic_auth::constant_time_eq(user.as_bytes(), security.admin_user.as_bytes());
        // The hash is checked even for a wrong user name, so timing does not
        // tell which was wrong.
        let Some(password_ok) = self.verify_password(hash, password).await else {
            tracing::warn!(client = %client, "sign-in not checked: every password-hashing slot stayed busy");
            return SignIn::Busy;
        };
        let now = Instant::now();
        if user_ok && password_ok && defer_success {
            // The password was only the first step: the lockout counts
            // stay until the second factor passes too, so a stolen
            // password does not buy unlimited code guesses.
            return SignIn::Accepted(user.to_owned(), String::new());
        }
        if user_ok && password_ok {
            self.passed(client, &user_key, trusted_device);
            return SignIn::Accepted(user.to_owned(), String::new());
        }
        if !auth.system_account {
            tracing::warn!(client = %client, user, "sign-in refused: the system account is disabled (auth.system_account = false)");
        } else {
            tracing::warn!(client = %client, user, "sign-in failed: wrong user name or password");
        }
        self.failed(client, &user_key, trusted_device, now)
    }

    /// A whole sign-in passed: its address's (and, unless the browser is
    /// a known one, its name's) failure counts are cleared.
    fn passed(&self, client: IpAddr, user: &str, trusted_device: bool) {
        lock(&self.by_address).success(&client);
        // A known browser leaves the name's lockout alone: it was set by
        // failures elsewhere, and still holds for them.
        if !trusted_device {
            lock(&self.by_user).success(&user.to_owned());
        }
    }

    /// A step failed: counted per address and (unless the browser is a
    /// known one) per name; the verdict says whether either is now locked.
    fn failed(&self, client: IpAddr, user: &str, trusted_device: bool, now: Instant) -> SignIn {
        let a = lock(&self.by_address).failure(&client, now);
        let u = if trusted_device {
            Verdict::Allow
        } else {
            lock(&self.by_user).failure(&user.to_owned(), now)
        };
        match (a, u) {
            (Verdict::Locked { retry_after: x }, Verdict::Locked { retry_after: y }) => {
                SignIn::Locked(x.max(y))
            }
            (Verdict::Locked { retry_after }, _) | (_, Verdict::Locked { retry_after }) => {
                tracing::warn!(client = %client, user, "sign-in locked out for {}s after repeated failures", retry_after.as_secs());
                SignIn::Locked(retry_after)
            }
            _ => SignIn::Refused,
        }
    }

    /// Whether the login page asks `client` for the captcha (it has failed
    /// to sign in often enough lately, or the captcha is always asked).
    pub fn captcha_required(&self, client: IpAddr) -> bool {
        let failures = lock(&self.by_address).recent_failures(&client, Instant::now());
        self.captcha.required(failures)
    }

    /// Whether `user` signs in with a second factor: a confirmed TOTP
    /// enrolment in the store. A store that cannot be read counts as yes
    /// (the code step then fails closed).
    pub async fn has_second_factor(&self, user: &str) -> bool {
        let Some(store) = &self.store else {
            return false;
        };
        match store.totp(user).await {
            Ok(e) => e.is_some(),
            Err(e) => {
                tracing::error!("the second factor could not be read; sign-in needs it: {e}");
                true
            }
        }
    }

    /// The second step's token: `user`'s password was right just now.
    pub fn second_factor_token(&self, user: &str) -> Option<String> {
        Some(signing::sign_second_factor(
            &self.session_key,
            user,
            unix_now()?,
        ))
    }

    /// Checks the second step: the token from the first, and a TOTP code
    /// (or an unused recovery code), with the same lockout as passwords.
    /// Each code and recovery code is accepted once.
    pub async fn check_second_factor(
        &self,
        token: &str,
        code: &str,
        client: IpAddr,
        trusted_device: bool,
    ) -> SignIn {
        let Some(now_s) = unix_now() else {
            return SignIn::Refused;
        };
        let Some(user) =
            signing::verify_second_factor(&self.session_key, token, now_s, SECOND_STEP_MAX_AGE)
        else {
            return SignIn::Refused;
        };
        let now = Instant::now();
        let _by_address = match reserve(&self.by_address, &client, now) {
            Ok(r) => r,
            Err(verdict) => return verdict,
        };
        let _by_user = if trusted_device {
            None
        } else {
            match reserve(&self.by_user, &user, now) {
                Ok(r) => Some(r),
                Err(verdict) => return verdict,
            }
        };
        let passed = match &self.store {
            None => false,
            Some(store) => match store.totp(&user).await {
                Ok(Some(e)) => {
                    if code.chars().any(|c| c.is_ascii_alphabetic()) {
                        let hash = moat_policy::totp::recovery_hash(code);
                        store.use_recovery_code(&user, &hash).await.unwrap_or(false)
                    } else {
                        match moat_policy::totp::verify(&e.secret, code, now_s, e.last_step) {
                            // Recorded only if still later than the last:
                            // two sign-ins racing with one code cannot both
                            // win.
                            Ok(step) => store.use_totp_step(&user, step).await.unwrap_or(false),
                            Err(_) => false,
                        }
                    }
                }
                _ => false,
            },
        };
        let now = Instant::now();
        if passed {
            self.passed(client, &user, trusted_device);
            return SignIn::Accepted(user, String::new());
        }
        tracing::warn!(client = %client, user, "sign-in failed: wrong or reused one-time code");
        self.failed(client, &user, trusted_device, now)
    }

    /// The `Set-Cookie` value of a device cookie for `user`, set when a
    /// browser signs in.
    pub fn device_cookie(&self, user: &str, tls: bool) -> Option<HeaderValue> {
        let now = unix_now()?;
        let value = signing::sign_device(&self.session_key, user, now);
        let name = if tls {
            DEVICE_COOKIE
        } else {
            DEVICE_COOKIE_PLAIN
        };
        let secure = if tls { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            DEVICE_MAX_AGE.as_secs()
        ))
        .ok()
    }

    /// Whether the request carries a valid device cookie for `user`.
    pub fn is_trusted_device(&self, headers: &HeaderMap, tls: bool, user: &str) -> bool {
        let name = if tls {
            DEVICE_COOKIE
        } else {
            DEVICE_COOKIE_PLAIN
        };
        let (Some(value), Some(now)) = (moat_policy::login::cookie(headers, name), unix_now())
        else {
            return false;
        };
        signing::verify_device(
            &self.session_key,
            value,
            user,
            now,
            DEVICE_MAX_AGE.as_secs(),
        )
    }

    /// Drops expired sessions (run periodically; lookups also drop them),
    /// and brings the store up to date: when kept sessions were last used,
    /// and which have expired.
    pub async fn sweep(&self) {
        let now = Instant::now();
        let (seen, t) = {
            let mut s = lock(&self.sessions);
            s.sweep(now);
            (s.unflushed(), s.timeouts())
        };
        {
            let s = lock(&self.sessions);
            self.oidc.retain_sessions(|id| s.contains(id));
        }
        let Some(store) = &self.store else {
            return;
        };
        let now_ms = wall_ms();
        let seen: Vec<([u8; 32], i64)> = seen
            .into_iter()
            .map(|(id, at)| {
                (
                    id,
                    now_ms - now.saturating_duration_since(at).as_millis() as i64,
                )
            })
            .collect();
        let idle_before = now_ms - t.idle.as_millis() as i64;
        let created_before = now_ms - t.absolute.as_millis() as i64;
        let result = async {
            store.touch_sessions(&seen).await?;
            store
                .delete_expired_sessions(idle_before, created_before)
                .await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(
                "sessions in the store not brought up to date (tried again in a minute): {e}"
            );
        }
    }

    /// The `X-Moat-Identity` value for `user` at `app`: a JWT valid for one
    /// minute, enough for the upstream to check on arrival and of little
    /// use if replayed later.
    pub fn identity_token(
        &self,
        user: &str,
        source: Option<&str>,
        email: Option<&str>,
        groups: &[String],
        app: &str,
    ) -> Option<HeaderValue> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs();
        let token = self.identity.token(&signing::Claims {
            user,
            app,
            source,
            email,
            groups,
            issued_at: now,
            lifetime_secs: 60,
        });
        HeaderValue::from_str(&token).ok()
    }

    /// Live sessions, for status.
    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }
}

/// A session's name outside moat's memory: a digest of its id, so
/// recordings and logs never hold the id (which is the credential).
fn session_key(id: &SessionId) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(id);
    d[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// The table's (and the store's) key for a session id: its SHA-256, so
/// what is kept cannot be turned back into a cookie.
fn table_key(id: &SessionId) -> SessionId {
    use sha2::Digest;
    sha2::Sha256::digest(id).into()
}

fn stored_claims(identity: &Identity, subject: &str, renew_at: std::time::SystemTime) -> String {
    let renew_at = renew_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    serde_json::to_string(&StoredClaims {
        email: identity.email.clone(),
        groups: identity.groups.clone(),
        sub: subject.to_owned(),
        renew_at,
    })
    .unwrap_or_else(|_| "{}".into())
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn timeouts(auth: &moat_config::Auth) -> Timeouts {
    Timeouts {
        idle: auth.idle_timeout,
        absolute: auth.absolute_timeout,
    }
}

/// `Set-Cookie` for the session. No `Max-Age` on a live cookie: it lasts
/// the browser session, and moat's own timeouts end it sooner.
fn cookie_header(tls: bool, value: &str, max_age: Option<u32>) -> HeaderValue {
    let name = AuthState::cookie_name(tls);
    let secure = if tls { "; Secure" } else { "" };
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{age}"
    ))
    .expect("cookie values are base64url")
}

/// Removes moat's session cookie (and a provider login's binding cookie)
/// from a request's `Cookie` headers, so an upstream never sees (and
/// cannot replay) them.
pub fn strip_session_cookie(headers: &mut HeaderMap) {
    strip_cookies(
        headers,
        &[
            SESSION_COOKIE,
            SESSION_COOKIE_PLAIN,
            crate::oidc::BINDING_COOKIE,
            crate::oidc::BINDING_COOKIE_PLAIN,
        ],
    );
}

/// Removes the named cookies from a request's `Cookie` headers.
pub fn strip_cookies(headers: &mut HeaderMap, names: &[&str]) {
    if !headers.contains_key(header::COOKIE) {
        return;
    }
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split_once('=').map(|(k, _)| k).unwrap_or(pair);
            !names.contains(&name) && !pair.is_empty()
        })
        .map(str::to_owned)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
            headers.insert(header::COOKIE, v);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_is_stripped_and_others_kept() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; __Host-moat_session=x.y".parse().unwrap(),
        );
        h.append(header::COOKIE, "moat_session=z; b=2".parse().unwrap());
        strip_session_cookie(&mut h);
        assert_eq!(h.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(h[header::COOKIE], "a=1; b=2");
        let mut only = HeaderMap::new();
        only.insert(header::COOKIE, "__Host-moat_session=x".parse().unwrap());
        strip_session_cookie(&mut only);
        assert!(!only.contains_key(header::COOKIE));
    }

    #[test]
    fn cookie_flags() {
        let v = cookie_header(true, "abc", None);
        assert_eq!(
            v,
            "__Host-moat_session=abc; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        let gone = cookie_header(true, "", Some(0));
        assert!(gone.to_str().unwrap().ends_with("Max-Age=0"));
    }
}

fn unix_now() -> Option<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}
