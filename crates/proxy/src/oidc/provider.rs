//! One OpenID Connect provider: its discovery document and keys (fetched
//! in the background, retried with backoff while it is down), the token
//! endpoint, ID token verification, userinfo and refresh.
//!
//! The JOSE work (signature checks against the provider's JWKS, `iss`,
//! `aud`, `azp`, `exp`, `nonce`, the algorithm allowlist) is
//! `openidconnect`'s; this file fetches what it verifies and turns claims
//! into an [`Identity`]. HTTP to the provider is plain reqwest, so every
//! failure is one error with the provider's name in it.
//!
//! One file (over 700 lines, a sixth of it tests) because discovery, the
//! token endpoint and verification share the discovered state and one
//! error type; each part is a few methods of [`Provider`].

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use base64::Engine;
use moat_config::OidcProvider;
use moat_policy::access::{Identity, Source};
use moat_policy::login::{form_component, form_encode};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{ClientId, IssuerUrl, Nonce, NonceVerifier};
use serde::Deserialize;

/// Signature algorithms an ID token may use: asymmetric only. `none` and
/// the HMAC family are never accepted (an HMAC "signed" with a public key
/// is the classic algorithm-confusion forgery).
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Clocks differ a little between moat and the provider.
const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// A token naming a key moat does not know fetches the key set again, at
/// most this often (a rotation right after discovery is still picked up:
/// only these fetches count).
const JWKS_REFETCH_EVERY: Duration = Duration::from_secs(10);
/// Any one request to the provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Discovery retries start here and double up to the cap.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(60);

/// What went wrong talking to a provider or checking what it sent. The
/// text names no secret and no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcError(pub String);

impl std::fmt::Display for OidcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(s: impl Into<String>) -> OidcError {
    OidcError(s.into())
}

/// The parts of the discovery document moat uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

struct Discovered {
    meta: Metadata,
    jwks: CoreJsonWebKeySet,
}

/// The tokens an exchange or a refresh gave, and who they name.
pub struct Tokens {
    pub identity: Identity,
    /// The provider's subject (stays the same across refreshes).
    pub subject: String,
    pub id_token: String,
    pub refresh_token: Option<String>,
    /// When the provider's tokens stop vouching for the person: the
    /// session is checked with the provider again then.
    pub valid_for: Duration,
}

pub struct Provider {
    pub config: OidcProvider,
    http: reqwest::Client,
    discovered: ArcSwapOption<Discovered>,
    /// The last discovery failure, for the 503 page's log and status.
    last_error: Mutex<Option<String>>,
    jwks_fetched: Mutex<Option<Instant>>,
    /// A discovery loop is running (one per provider, however many
    /// reloads ask for it).
    discovering: std::sync::atomic::AtomicBool,
}

impl Provider {
    /// A provider not discovered yet; [`Provider::spawn_discovery`]
    /// starts looking.
    pub fn new(config: OidcProvider) -> Result<Arc<Provider>, OidcError> {
        let http = http_client(&config)?;
        Ok(Arc::new(Provider {
            config,
            http,
            discovered: ArcSwapOption::empty(),
            last_error: Mutex::new(None),
            jwks_fetched: Mutex::new(None),
            discovering: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether discovery has succeeded (sign-in through it can start).
    pub fn is_ready(&self) -> bool {
        self.discovered.load().is_some()
    }

    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    pub fn metadata(&self) -> Option<Metadata> {
        self.discovered.load().as_ref().map(|d| d.meta.clone())
    }

    /// Fetches the discovery document and key set until both arrive, with
    /// backoff; the task ends when the provider is dropped (a reload that
    /// replaced it).
    pub fn spawn_discovery(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.discovering.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Provider> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut wait = RETRY_FIRST;
            loop {
                let Some(p) = weak.upgrade() else { return };
                match p.discover().await {
                    Ok(d) => {
                        tracing::info!(provider = p.name(), issuer = %p.config.issuer, keys = d.jwks.keys().len(), "OpenID provider discovered");
                        p.discovered.store(Some(Arc::new(d)));
                        *lock(&p.last_error) = None;
                        p.discovering
                            .store(false, std::sync::atomic::Ordering::Release);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(
                            provider = p.name(),
                            "OpenID provider unavailable, retrying in {}s: {e}",
                            wait.as_secs()
                        );
                        *lock(&p.last_error) = Some(e.0);
                    }
                }
                drop(p);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_CAP);
            }
        });
    }

    async fn discover(&self) -> Result<Discovered, OidcError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let meta: Metadata = self.get_json(&url, "the discovery document").await?;
        // OpenID Connect Discovery 1.0, section 4.3: the document must name
        // exactly the issuer it was fetched for.
        if meta.issuer != self.config.issuer {
            return Err(err(format!(
                "the discovery document names the issuer {:?}, not {:?} (check auth.oidc issuer: it must match exactly, trailing slash included)",
                meta.issuer, self.config.issuer
            )));
        }
        if let Some(methods) = &meta.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(err(
                "the provider does not offer PKCE with S256, which moat requires",
            ));
        }
        let jwks = self.fetch_jwks(&meta.jwks_uri).await?;
        Ok(Discovered { meta, jwks })
    }

    async fn fetch_jwks(&self, uri: &str) -> Result<CoreJsonWebKeySet, OidcError> {
        self.get_json(uri, "the key set (jwks_uri)").await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        what: &str,
    ) -> Result<T, OidcError> {
        let resp = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| err(format!("{what} at {url}: {}", error_chain(&e))))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(err(format!("{what} at {url}: HTTP {status}")));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| err(format!("{what} at {url}: {}", error_chain(&e))))?;
        serde_json::from_slice(&bytes).map_err(|e| err(format!("{what} at {url}: not valid: {e}")))
    }

    /// The authorization endpoint's URL for a code flow with PKCE.
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> Option<String> {
        let d = self.discovered.load_full()?;
        let ep = &d.meta.authorization_endpoint;
        let scope = self.config.scopes.join(" ");
        let params = [
            ("response_type", "code"),
            ("client_id", self.config.client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("scope", scope.as_str()),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", code_challenge),
            ("code_challenge_method", "S256"),
        ];
        let sep = if ep.contains('?') { '&' } else { '?' };
        Some(format!("{ep}{sep}{}", form_encode(&params)))
    }

    /// The code from the callback exchanged for tokens, and the ID token
    /// checked against `nonce`.
    pub async fn exchange(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
        nonce: &str,
    ) -> Result<Tokens, OidcError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
        ];
        let resp = self.token_request(&form).await?;
        let id_token = resp
            .id_token
            .clone()
            .ok_or_else(|| err("the token endpoint sent no ID token (is \"openid\" in scopes?)"))?;
        let nonce = Nonce::new(nonce.to_owned());
        let claims = self.verify(&id_token, &nonce).await?;
        self.tokens(resp, id_token, claims).await
    }

    /// New tokens for a session: the same subject, claims as the provider
    /// states them now.
    pub async fn refresh(&self, refresh_token: &str, subject: &str) -> Result<Tokens, OidcError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        let mut resp = self.token_request(&form).await?;
        // A provider may keep the refresh token (no rotation).
        if resp.refresh_token.is_none() {
            resp.refresh_token = Some(refresh_token.to_owned());
        }
        let tokens = match resp.id_token.clone() {
            Some(id_token) => {
                // OpenID Connect Core 12.2: a refreshed ID token carries no
                // new nonce; the rest is checked as at sign-in.
                let claims = self.verify(&id_token, AnyNonce).await?;
                self.tokens(resp, id_token, claims).await?
            }
            None => {
                return Err(err(
                    "the refresh answer carried no ID token, so the person's claims cannot be checked again",
                ));
            }
        };
        if tokens.subject != subject {
            return Err(err("the refreshed ID token names another subject"));
        }
        Ok(tokens)
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, OidcError> {
        let d = self
            .discovered
            .load_full()
            .ok_or_else(|| err("not discovered yet"))?;
        // client_secret_basic: both parts form-encoded first (RFC 6749,
        // section 2.3.1).
        let user = form_component(&self.config.client_id);
        let pass = form_component(&self.config.client_secret);
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let resp = self
            .http
            .post(&d.meta.token_endpoint)
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(form_encode(form))
            .send()
            .await
            .map_err(|e| err(format!("the token endpoint: {}", error_chain(&e))))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| err(format!("the token endpoint: {}", error_chain(&e))))?;
        if !status.is_success() {
            // The error code and description are the provider's words
            // about the request, never a token.
            let e: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            return Err(err(format!(
                "the token endpoint answered HTTP {status}: {} {}",
                e["error"].as_str().unwrap_or("(no error code)"),
                e["error_description"].as_str().unwrap_or("")
            )));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| err(format!("the token endpoint's answer is not valid: {e}")))
    }

    /// Checks an ID token: signature with the provider's keys (fetched
    /// again once when the token names a key not in the set), issuer,
    /// audience and authorized party, expiry and issue time with a small
    /// skew, and the nonce. Returns the payload's claims.
    async fn verify<N: NonceVerifier + Copy>(
        &self,
        id_token: &str,
        nonce: N,
    ) -> Result<serde_json::Value, OidcError> {
        let token: CoreIdToken = id_token
            .parse()
            .map_err(|e| err(format!("the ID token is malformed: {e}")))?;
        let first = self.check(&token, nonce);
        let unknown_key = matches!(
            &first,
            Err(
                openidconnect::ClaimsVerificationError::SignatureVerification(
                    openidconnect::SignatureVerificationError::NoMatchingKey
                )
            )
        );
        let result = if unknown_key && self.refetch_jwks().await? {
            self.check(&token, nonce)
        } else {
            first
        };
        result.map_err(|e| err(format!("the ID token was refused: {}", error_chain(&e))))?;
        // Verified: now read the claims moat maps (groups and the user
        // claim are not among the library's typed ones).
        payload(id_token)
    }

    fn check<N: NonceVerifier>(
        &self,
        token: &CoreIdToken,
        nonce: N,
    ) -> Result<(), openidconnect::ClaimsVerificationError> {
        let Some(d) = self.discovered.load_full() else {
            return Err(openidconnect::ClaimsVerificationError::Other(
                "not discovered".into(),
            ));
        };
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| openidconnect::ClaimsVerificationError::Other(e.to_string()))?;
        let client_id = self.config.client_id.clone();
        // A public-client verifier: it holds no client secret, so no
        // HMAC-signed token can be checked (and so accepted) at all.
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(client_id.clone()),
            issuer,
            d.jwks.clone(),
        )
        .set_allowed_algs(ALLOWED_ALGS)
        // `exp` may be up to the skew in the past...
        .set_time_fn(|| chrono_now() - skew())
        // ...and `iat` up to the skew in the future.
        .set_issue_time_verifier_fn(|iat| {
            if iat > chrono_now() + skew() {
                Err("issued in the future".into())
            } else {
                Ok(())
            }
        })
        // Other audiences than moat's client are not trusted.
        .set_other_audience_verifier_fn(|_| false);
        let claims = token.claims(&verifier, nonce)?;
        // With one audience the library leaves `azp` unchecked when
        // present; it must still be moat (Core 3.1.3.7, step 5).
        if let Some(azp) = claims.authorized_party()
            && azp.as_str() != client_id
        {
            return Err(openidconnect::ClaimsVerificationError::InvalidAudience(
                format!("azp is {:?}, not this client", azp.as_str()),
            ));
        }
        Ok(())
    }

    /// Fetches the key set again (key rotation); false when it was fetched
    /// too recently to try.
    async fn refetch_jwks(&self) -> Result<bool, OidcError> {
        {
            let mut at = lock(&self.jwks_fetched);
            if at.is_some_and(|t| t.elapsed() < JWKS_REFETCH_EVERY) {
                return Ok(false);
            }
            *at = Some(Instant::now());
        }
        let Some(d) = self.discovered.load_full() else {
            return Ok(false);
        };
        let jwks = self.fetch_jwks(&d.meta.jwks_uri).await?;
        tracing::info!(
            provider = self.name(),
            keys = jwks.keys().len(),
            "OpenID provider's key set fetched again (a token named an unknown key)"
        );
        self.discovered.store(Some(Arc::new(Discovered {
            meta: d.meta.clone(),
            jwks,
        })));
        Ok(true)
    }

    /// Claims of a verified token (and of userinfo, when configured) as
    /// an identity.
    async fn tokens(
        &self,
        resp: TokenResponse,
        id_token: String,
        mut claims: serde_json::Value,
    ) -> Result<Tokens, OidcError> {
        let subject = claims["sub"]
            .as_str()
            .ok_or_else(|| err("the ID token has no subject"))?
            .to_owned();
        if self.config.userinfo {
            let more = self.userinfo(&resp.access_token, &subject).await?;
            if let (Some(c), serde_json::Value::Object(m)) = (claims.as_object_mut(), more) {
                c.extend(m);
            }
        }
        let identity = self.identity(&claims)?;
        let exp = claims["exp"].as_u64().unwrap_or(0);
        let id_left = exp.saturating_sub(unix_now());
        // The access token's life when the provider gives one (that is
        // how long it vouches for the person), else the ID token's.
        // At most a day: a provider's huge value must not overflow the
        // clock (the session's own absolute timeout bounds it anyway).
        let valid = resp.expires_in.unwrap_or(id_left).min(86_400);
        Ok(Tokens {
            identity,
            subject,
            id_token,
            refresh_token: resp.refresh_token,
            valid_for: Duration::from_secs(valid.max(1)),
        })
    }

    async fn userinfo(
        &self,
        access_token: &str,
        subject: &str,
    ) -> Result<serde_json::Value, OidcError> {
        let d = self
            .discovered
            .load_full()
            .ok_or_else(|| err("not discovered yet"))?;
        let Some(url) = &d.meta.userinfo_endpoint else {
            return Err(err(
                "userinfo = true, but the provider has no userinfo endpoint",
            ));
        };
        let resp = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| err(format!("the userinfo endpoint: {}", error_chain(&e))))?;
        if !resp.status().is_success() {
            return Err(err(format!(
                "the userinfo endpoint answered HTTP {}",
                resp.status()
            )));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| err(format!("the userinfo endpoint: {}", error_chain(&e))))?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| err(format!("the userinfo answer is not JSON: {e}")))?;
        // Core 5.3.2: the answer must be about the same subject.
        if v["sub"].as_str() != Some(subject) {
            return Err(err("the userinfo answer names another subject"));
        }
        Ok(v)
    }

    fn identity(&self, claims: &serde_json::Value) -> Result<Identity, OidcError> {
        let c = &self.config;
        // An address the provider says it has not verified is no address:
        // it could be anyone's, so no rule and no app may rely on it.
        // Only an address the provider vouches for: `email_verified` true
        // (some providers send the string "true"). A missing claim is no
        // vouching: providers that let people edit their address without
        // saying so would otherwise let anyone claim anyone's.
        let verified = matches!(&claims["email_verified"], serde_json::Value::Bool(true))
            || claims["email_verified"].as_str() == Some("true");
        let email = claims["email"]
            .as_str()
            .filter(|_| verified)
            .map(str::to_owned);
        let user = match (c.user_claim.as_str(), &claims[c.user_claim.as_str()]) {
            ("email", _) => email.clone(),
            (_, serde_json::Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let user = user.filter(|u| !u.is_empty()).ok_or_else(|| {
            err(format!(
                "the provider's claims have no usable {:?} (user_claim){}; ask for the scope that carries it, or set user_claim = \"sub\"",
                c.user_claim,
                if c.user_claim == "email" { " or the email is not verified" } else { "" }
            ))
        })?;
        let groups = match &claims[c.groups_claim.as_str()] {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        };
        Ok(Identity {
            user,
            email,
            groups,
            source: Source::Oidc(c.name.clone()),
        })
    }

    /// Where to send a browser to end its provider session too (RP-initiated
    /// logout), when the provider offers it.
    pub fn end_session_url(&self, id_token_hint: Option<&str>, after: &str) -> Option<String> {
        let d = self.discovered.load_full()?;
        let ep = d.meta.end_session_endpoint.as_ref()?;
        let mut params = vec![
            ("client_id", self.config.client_id.as_str()),
            ("post_logout_redirect_uri", after),
        ];
        if let Some(hint) = id_token_hint {
            params.push(("id_token_hint", hint));
        }
        let sep = if ep.contains('?') { '&' } else { '?' };
        Some(format!("{ep}{sep}{}", form_encode(&params)))
    }
}

/// Any nonce: for refreshed ID tokens.
#[derive(Clone, Copy)]
struct AnyNonce;

impl NonceVerifier for AnyNonce {
    fn verify(self, _: Option<&Nonce>) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The payload of a compact JWS, as JSON.
fn payload(jwt: &str) -> Result<serde_json::Value, OidcError> {
    let part = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| err("the ID token is malformed"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| err("the ID token's payload is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| err("the ID token's payload is not JSON"))
}

/// The HTTP client for one provider: its own CA when configured (a
/// private provider), else the system's roots; no redirects followed.
fn http_client(config: &OidcProvider) -> Result<reqwest::Client, OidcError> {
    // reqwest asks for the process's provider too; moat uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| err(format!("auth.oidc ca {}: {e}", path.display())))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| err(format!("auth.oidc ca {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| err(format!("auth.oidc ca {}: {e}", path.display())))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .user_agent(concat!("moat/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| err(format!("HTTP client: {e}")))
}

/// reqwest's error with its causes (the TLS or connection reason).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

fn skew() -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(CLOCK_SKEW.as_secs() as i64)
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_is_read_from_the_middle_part() {
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"sub":"a"}"#);
        assert_eq!(payload(&format!("x.{body}.y")).unwrap()["sub"], "a");
        assert!(payload("nodots").is_err());
        assert!(payload("x.!!!.y").is_err());
    }

    fn corp(user_claim: &str) -> Arc<Provider> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Provider::new(OidcProvider {
            name: "corp".into(),
            display_name: "corp".into(),
            issuer: "https://login.example.com".into(),
            client_id: "moat".into(),
            client_secret: "s".into(),
            scopes: vec!["openid".into()],
            groups_claim: "groups".into(),
            user_claim: user_claim.into(),
            userinfo: false,
            rules: Default::default(),
            ca: None,
        })
        .unwrap()
    }

    #[test]
    fn only_a_vouched_for_email_is_an_email() {
        let p = corp("email");
        let id = |c: serde_json::Value| p.identity(&c);
        let ok =
            id(serde_json::json!({"email": "a@x.org", "email_verified": true, "groups": ["g"]}))
                .unwrap();
        assert_eq!(
            (ok.user.as_str(), ok.email.as_deref()),
            ("a@x.org", Some("a@x.org"))
        );
        assert_eq!(ok.groups, ["g"]);
        assert!(id(serde_json::json!({"email": "a@x.org", "email_verified": "true"})).is_ok());
        // Unverified, said "false" as a string, or not said at all: no
        // email, and so no user under user_claim = "email".
        for c in [
            serde_json::json!({"email": "a@x.org", "email_verified": false}),
            serde_json::json!({"email": "a@x.org", "email_verified": "false"}),
            serde_json::json!({"email": "a@x.org"}),
        ] {
            assert!(id(c).is_err());
        }
        let by_name = corp("preferred_username");
        let n = by_name
            .identity(&serde_json::json!({"preferred_username": "al", "email": "a@x.org"}))
            .unwrap();
        assert_eq!((n.user.as_str(), n.email), ("al", None));
        assert!(by_name.identity(&serde_json::json!({"sub": "1"})).is_err());
    }
}
