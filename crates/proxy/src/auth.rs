//! Sign-in state: live sessions, the session cookie, password checks with
//! per-address and per-user lockout, and the identity-token key.
//!
//! The decisions (expiry, signatures, lockout arithmetic) are in
//! `moat_policy`; this module holds their state between requests and runs
//! the password hash off the worker threads.

use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, header};
use moat_config::Security;
use moat_policy::basic_auth;
use moat_policy::sessions::{SessionId, SessionTable, Timeouts};
use moat_policy::signing::{self, IdentityKey};
use moat_policy::throttle::{Limits, Throttle, Verdict};

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
}

pub struct AuthState {
    session_key: [u8; 32],
    pub identity: IdentityKey,
    sessions: Mutex<SessionTable>,
    by_address: Mutex<Throttle<IpAddr>>,
    by_user: Mutex<Throttle<String>>,
}

impl AuthState {
    pub fn new(keys: &Keys, auth: &moat_config::Auth) -> AuthState {
        AuthState {
            session_key: keys.session,
            identity: IdentityKey::from_seed(&keys.identity_seed),
            sessions: Mutex::new(SessionTable::new(timeouts(auth), SESSION_CAPACITY)),
            by_address: Mutex::new(Throttle::new(PER_ADDRESS)),
            by_user: Mutex::new(Throttle::new(PER_USER)),
        }
    }

    /// A reload: new timeouts apply to live sessions; a new password ends
    /// them all.
    pub fn reconfigure(&self, auth: &moat_config::Auth, password_changed: bool) {
        let mut s = lock(&self.sessions);
        s.set_timeouts(timeouts(auth));
        if password_changed {
            s.clear();
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

    /// The user of the request's session cookie, if it names a live
    /// session, and a key naming the session (for recordings).
    pub fn session_user(&self, headers: &HeaderMap, tls: bool) -> Option<(String, String)> {
        let id = self.session_id(headers, tls)?;
        let user = lock(&self.sessions).touch(&id, Instant::now())?.to_owned();
        Some((user, session_key(&id)))
    }

    /// The key naming the request's session, live or not.
    pub fn session_key(&self, headers: &HeaderMap, tls: bool) -> Option<String> {
        self.session_id(headers, tls).map(|id| session_key(&id))
    }

    /// Starts a session; returns the `Set-Cookie` value.
    pub fn start_session(&self, user: String, tls: bool) -> HeaderValue {
        let mut id = [0u8; 32];
        getrandom::fill(&mut id).expect("the operating system's random generator works");
        lock(&self.sessions).insert(id, user, Instant::now());
        let value = signing::sign_session(&self.session_key, &id);
        cookie_header(tls, &value, None)
    }

    /// Ends the request's session, if any; returns the `Set-Cookie` value
    /// that removes the cookie, and the user and key of the session.
    pub fn end_session(
        &self,
        headers: &HeaderMap,
        tls: bool,
    ) -> (HeaderValue, Option<(String, String)>) {
        let ended = self.session_id(headers, tls).and_then(|id| {
            lock(&self.sessions)
                .remove(&id)
                .map(|s| (s.user, session_key(&id)))
        });
        (cookie_header(tls, "", Some(0)), ended)
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
        let id = signing::credentials_session_id(&self.session_key, authorization.as_bytes());
        if let Some(user) = lock(&self.sessions).touch(&id, Instant::now()) {
            return SignIn::Accepted(user.to_owned(), session_key(&id));
        }
        let Some((user, pass)) = authorization.to_str().ok().and_then(basic_auth::parse) else {
            return SignIn::Refused;
        };
        let verdict = self
            .check_password(&user, pass, client, security, auth, password)
            .await;
        match verdict {
            SignIn::Accepted(user, _) => {
                lock(&self.sessions).insert(id, user.clone(), Instant::now());
                SignIn::Accepted(user, session_key(&id))
            }
            other => other,
        }
    }

    /// Checks a user name and password for the system account, with
    /// lockout per client address and per user name.
    pub async fn check_password(
        &self,
        user: &str,
        password: String,
        client: IpAddr,
        security: &Security,
        auth: &moat_config::Auth,
        hash: std::sync::Arc<AdminPassword>,
    ) -> SignIn {
        let now = Instant::now();
        for verdict in [
            lock(&self.by_address).check(&client, now),
            lock(&self.by_user).check(&user.to_owned(), now),
        ] {
            if let Verdict::Locked { retry_after } = verdict {
                return SignIn::Locked(retry_after);
            }
        }
        let user_ok = auth.system_account
            && basic_auth::constant_time_eq(user.as_bytes(), security.admin_user.as_bytes());
        // The hash is checked even for a wrong user name, so timing does not
        // tell which was wrong; off the worker thread, so a burst of
        // sign-ins does not stall the requests sharing it.
        let password_ok = tokio::task::spawn_blocking(move || hash.verify(&password))
            .await
            .unwrap_or(false);
        let now = Instant::now();
        if user_ok && password_ok {
            lock(&self.by_address).success(&client);
            lock(&self.by_user).success(&user.to_owned());
            return SignIn::Accepted(user.to_owned(), String::new());
        }
        if !auth.system_account {
            tracing::warn!(client = %client, user, "sign-in refused: the system account is disabled (auth.system_account = false)");
        } else {
            tracing::warn!(client = %client, user, "sign-in failed: wrong user name or password");
        }
        let a = lock(&self.by_address).failure(&client, now);
        let u = lock(&self.by_user).failure(&user.to_owned(), now);
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

    /// Drops expired sessions (run periodically; lookups also drop them).
    pub fn sweep(&self) {
        lock(&self.sessions).sweep(Instant::now());
    }

    /// The `X-Moat-Identity` value for `user` at `app`: a JWT valid for one
    /// minute, enough for the upstream to check on arrival and of little
    /// use if replayed later.
    pub fn identity_token(&self, user: &str, app: &str) -> Option<HeaderValue> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs();
        let token = self.identity.token(&signing::Claims {
            user,
            app,
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

/// Removes moat's session cookie from a request's `Cookie` headers, so an
/// upstream never sees (and cannot replay) it.
pub fn strip_session_cookie(headers: &mut HeaderMap) {
    strip_cookies(headers, &[SESSION_COOKIE, SESSION_COOKIE_PLAIN]);
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
