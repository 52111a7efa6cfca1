//! Signed values moat hands out: session cookies (HMAC-SHA256) and identity
//! tokens for upstreams (JWT, EdDSA over Ed25519).
//!
//! Keys come from the caller (the proxy keeps them in the data directory);
//! the time for a token is passed in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::sessions::SessionId;

type HmacSha256 = Hmac<Sha256>;

/// The session cookie's value: the id and its signature, so a forged or
/// altered cookie is refused without looking anything up.
pub fn sign_session(key: &[u8; 32], id: &SessionId) -> String {
    format!(
        "{}.{}",
        B64.encode(id),
        B64.encode(mac(key, b"session", id))
    )
}

/// The session id in a cookie value, if its signature is right.
pub fn verify_session(key: &[u8; 32], value: &str) -> Option<SessionId> {
    let (id, sig) = value.split_once('.')?;
    let id: SessionId = B64.decode(id).ok()?.try_into().ok()?;
    let sig = B64.decode(sig).ok()?;
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"session");
    m.update(&id);
    // verify_slice compares in constant time.
    m.verify_slice(&sig).ok()?;
    Some(id)
}

/// The device cookie's value: the user it signed in, when, and a MAC, so a
/// browser that has signed in before can prove it (see the proxy's
/// per-user lockout). `issued` is seconds since the epoch.
pub fn sign_device(key: &[u8; 32], user: &str, issued: u64) -> String {
    let body = format!("{}.{issued}", B64.encode(user));
    format!(
        "{body}.{}",
        B64.encode(mac(key, b"device", body.as_bytes()))
    )
}

/// Whether `value` is a device cookie for `user`, issued at most `max_age`
/// seconds before `now`.
pub fn verify_device(key: &[u8; 32], value: &str, user: &str, now: u64, max_age: u64) -> bool {
    let Some((body, sig)) = value.rsplit_once('.') else {
        return false;
    };
    let Some((name, issued)) = body.split_once('.') else {
        return false;
    };
    let Ok(sig) = B64.decode(sig) else {
        return false;
    };
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"device");
    m.update(body.as_bytes());
    if m.verify_slice(&sig).is_err() {
        return false;
    }
    let Ok(issued) = issued.parse::<u64>() else {
        return false;
    };
    B64.decode(name).is_ok_and(|n| n == user.as_bytes()) && issued <= now && now - issued <= max_age
}

/// The token the login page's second step carries: `user`'s password was
/// right at `issued`. Signed under its own label, so it can be neither a
/// device cookie nor a session.
pub fn sign_second_factor(key: &[u8; 32], user: &str, issued: u64) -> String {
    let body = format!("{}.{issued}", B64.encode(user));
    format!(
        "{body}.{}",
        B64.encode(mac(key, b"second-factor", body.as_bytes()))
    )
}

/// The user of a second-step token issued at most `max_age` seconds
/// before `now`.
pub fn verify_second_factor(key: &[u8; 32], value: &str, now: u64, max_age: u64) -> Option<String> {
    let (body, sig) = value.rsplit_once('.')?;
    let (name, issued) = body.split_once('.')?;
    let sig = B64.decode(sig).ok()?;
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"second-factor");
    m.update(body.as_bytes());
    m.verify_slice(&sig).ok()?;
    let issued = issued.parse::<u64>().ok()?;
    if issued > now || now - issued > max_age {
        return None;
    }
    String::from_utf8(B64.decode(name).ok()?).ok()
}

/// A session id standing for one set of HTTP Basic credentials, so a client
/// that sends them with every request pays for the password check once per
/// session. Keyed, so the table never holds a password or an unkeyed hash.
pub fn credentials_session_id(key: &[u8; 32], authorization: &[u8]) -> SessionId {
    mac(key, b"basic", authorization)
}

/// The admin portal's CSRF token for a session (named by its table key):
/// keyed, so it cannot be made without moat's key; bound to the session,
/// so one session's token is worthless in another; and it says nothing of
/// the cookie.
pub fn csrf_token(key: &[u8; 32], session: &SessionId) -> String {
    B64.encode(mac(key, b"portal-csrf", session))
}

/// Whether `token` is the session's CSRF token (compared in constant time).
pub fn verify_csrf_token(key: &[u8; 32], session: &SessionId, token: &str) -> bool {
    crate::basic_auth::constant_time_eq(csrf_token(key, session).as_bytes(), token.as_bytes())
}

fn mac(key: &[u8; 32], domain: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(domain);
    m.update(data);
    m.finalize().into_bytes().into()
}

/// The key that signs identity tokens; its public half is published as a
/// JWK set for upstreams to verify with.
pub struct IdentityKey {
    signing: SigningKey,
    kid: String,
}

/// The claims of an identity token.
pub struct Claims<'a> {
    pub user: &'a str,
    /// The app the token is for (`aud`), so one app's token is not valid at
    /// another.
    pub app: &'a str,
    /// Where the user signed in (`system`, `oidc:NAME`, `cert`).
    pub source: Option<&'a str>,
    /// From the user's OpenID provider, when it gave them.
    pub email: Option<&'a str>,
    pub groups: &'a [String],
    /// Unix seconds.
    pub issued_at: u64,
    pub lifetime_secs: u64,
}

impl IdentityKey {
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let digest = Sha256::digest(signing.verifying_key().as_bytes());
        let kid = B64.encode(&digest[..12]);
        IdentityKey { signing, kid }
    }

    /// The key id (`kid`), derived from the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A compact JWT: `iss` "moat", `sub` the user, `aud` the app, `iat`,
    /// `nbf`, `exp`.
    pub fn token(&self, c: &Claims<'_>) -> String {
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid});
        let mut claims = serde_json::json!({
            "iss": "moat",
            "sub": c.user,
            "aud": c.app,
            "iat": c.issued_at,
            "nbf": c.issued_at,
            "exp": c.issued_at + c.lifetime_secs,
        });
        if let Some(src) = c.source {
            claims["src"] = src.into();
        }
        if let Some(email) = c.email {
            claims["email"] = email.into();
        }
        if !c.groups.is_empty() {
            claims["groups"] = c.groups.into();
        }
        let signing_input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signature = self.signing.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(signature.to_bytes()))
    }

    /// The public key as a JWK set (RFC 7517, OKP keys per RFC 8037).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "x": B64.encode(self.signing.verifying_key().as_bytes()),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }]})
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn second_factor_tokens_expire_and_are_not_device_cookies() {
        let key = [3u8; 32];
        let t = sign_second_factor(&key, "admin", 1000);
        assert_eq!(
            verify_second_factor(&key, &t, 1100, 300).as_deref(),
            Some("admin")
        );
        assert_eq!(verify_second_factor(&key, &t, 1301, 300), None);
        assert_eq!(verify_second_factor(&[4u8; 32], &t, 1100, 300), None);
        assert!(!verify_device(&key, &t, "admin", 1100, 300));
        let d = sign_device(&key, "admin", 1000);
        assert_eq!(verify_second_factor(&key, &d, 1100, 300), None);
    }

    use super::*;

    #[test]
    fn csrf_tokens_belong_to_one_session_and_one_key() {
        let key = [5u8; 32];
        let t = csrf_token(&key, &[1u8; 32]);
        assert!(verify_csrf_token(&key, &[1u8; 32], &t));
        assert!(!verify_csrf_token(&key, &[2u8; 32], &t), "another session");
        assert!(
            !verify_csrf_token(&[6u8; 32], &[1u8; 32], &t),
            "another key"
        );
        assert!(!verify_csrf_token(&key, &[1u8; 32], ""), "none");
        assert_ne!(t, sign_session(&key, &[1u8; 32]), "not the cookie");
    }

    #[test]
    fn device_cookies() {
        let k = [7u8; 32];
        let v = sign_device(&k, "admin", 1000);
        assert!(verify_device(&k, &v, "admin", 1000 + 60, 3600));
        assert!(!verify_device(&k, &v, "other", 1060, 3600), "another user");
        assert!(
            !verify_device(&k, &v, "admin", 1000 + 7200, 3600),
            "too old"
        );
        assert!(
            !verify_device(&[8u8; 32], &v, "admin", 1060, 3600),
            "another key"
        );
        let forged = v.replacen("1000", "5000", 1);
        assert!(!verify_device(&k, &forged, "admin", 5060, 3600), "altered");
        assert!(!verify_device(&k, "garbage", "admin", 0, 10));
    }
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn session_cookies_verify_and_tampering_fails() {
        let key = [7u8; 32];
        let id = [42u8; 32];
        let v = sign_session(&key, &id);
        assert_eq!(verify_session(&key, &v), Some(id));
        assert_eq!(verify_session(&[8u8; 32], &v), None, "other key");
        let mut other = [42u8; 32];
        other[0] = 43;
        let forged = format!("{}.{}", B64.encode(other), v.split_once('.').unwrap().1);
        assert_eq!(
            verify_session(&key, &forged),
            None,
            "other id, old signature"
        );
        assert_eq!(verify_session(&key, "garbage"), None);
        assert_eq!(verify_session(&key, "a.b"), None);
    }

    #[test]
    fn tokens_verify_with_the_published_key() {
        let k = IdentityKey::from_seed(&[3u8; 32]);
        let t = k.token(&Claims {
            user: "alice",
            app: "grafana",
            source: Some("oidc:corp"),
            email: Some("alice@example.com"),
            groups: &["eng".to_string()],
            issued_at: 1_700_000_000,
            lifetime_secs: 60,
        });
        let parts: Vec<_> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["aud"], "grafana");
        assert_eq!(claims["exp"], 1_700_000_060u64);
        let jwks = k.jwks();
        let x = B64.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
        let vk = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        let sig = Signature::from_slice(&B64.decode(parts[2]).unwrap()).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(vk.verify(input.as_bytes(), &sig).is_ok());
        assert!(vk.verify(b"something else", &sig).is_err());
    }
}
