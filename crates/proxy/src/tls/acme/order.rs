//! One ACME order, start to finish (RFC 8555 §7.4), with instant-acme:
//! the account (created once per directory and kept), the order, each
//! authorization's challenge answered through [`Challenges`], a CSR for a
//! fresh P-256 key, and the chain. Every failure becomes a [`Failure`]
//! that says what to do, and whether the CA asked to be left alone for a
//! while (rate limits).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeType,
    ExternalAccountKey, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use moat_config::{AcmeAccount, AcmeCertificate, AcmeChallenge};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;

use super::challenge::Challenges;

/// An order that takes longer than this is given up and tried again
/// later: a CA that stops answering must not hold the renewal forever.
const ORDER_TIMEOUT: Duration = Duration::from_secs(180);

/// How long the CA gets to validate the challenges and to issue.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.5)
    .timeout(Duration::from_secs(90));

/// A certificate just obtained, as PEM.
pub struct Obtained {
    pub chain_pem: String,
    pub key_pem: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    /// Seconds the CA asked us to wait (a rate limit), at least.
    pub retry_after: Option<i64>,
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            retry_after: None,
        }
    }
}

/// What an instant-acme error means to an admin.
fn explain(what: &str, e: instant_acme::Error) -> Failure {
    match e {
        instant_acme::Error::Api(p) => {
            let kind = p.r#type.as_deref().unwrap_or("");
            let detail = p.detail.clone().unwrap_or_default();
            if kind.ends_with(":rateLimited") {
                Failure {
                    message: format!(
                        "{what}: the CA's rate limit was reached ({detail}); moat waits before trying again"
                    ),
                    // Let's Encrypt's limits reset over hours; without a
                    // Retry-After, an hour is the least that helps.
                    retry_after: Some(3600),
                }
            } else if kind.ends_with(":externalAccountRequired") {
                Failure::new(format!(
                    "{what}: the CA requires external account binding: set eab_kid and eab_hmac_key from your CA's dashboard"
                ))
            } else if kind.ends_with(":rejectedIdentifier")
                || kind.ends_with(":unsupportedIdentifier")
            {
                Failure::new(format!(
                    "{what}: the CA will not issue for these names ({detail}); check the domains"
                ))
            } else {
                Failure::new(format!("{what}: the CA refused: {p}"))
            }
        }
        instant_acme::Error::Json(e) => Failure::new(format!(
            "{what}: the CA's answer is not valid ACME JSON ({e}); check the directory URL"
        )),
        instant_acme::Error::Timeout(_) => Failure::new(format!(
            "{what}: the CA did not finish in time; moat tries again later"
        )),
        other => Failure::new(format!(
            "{what}: {other}; check that the directory URL is reachable from this machine"
        )),
    }
}

/// `DATA_DIR/tls/acme/<directory>/`: one folder per CA, holding the
/// account and the certificates it issued.
pub fn directory_dir(data_dir: &Path, directory: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let host: String = directory
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = Sha256::digest(directory.as_bytes());
    let short: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    data_dir
        .join("tls")
        .join("acme")
        .join(format!("{host}-{short}"))
}

/// The folder of one certificate: named after its first domain.
pub fn certificate_dir(data_dir: &Path, cert: &AcmeCertificate) -> PathBuf {
    directory_dir(data_dir, &cert.account.directory).join(&cert.domains[0])
}

async fn builder(account: &AcmeAccount) -> Result<instant_acme::AccountBuilder, Failure> {
    match &account.directory_ca {
        Some(ca) => Account::builder_with_root(ca).map_err(|e| {
            Failure::new(format!(
                "tls.acme directory_ca {}: {e}; give a PEM certificate file",
                ca.display()
            ))
        }),
        None => Account::builder().map_err(|e| {
            Failure::new(format!(
                "no system root certificates for the CA's HTTPS: {e}"
            ))
        }),
    }
}

/// The account for `account.directory`: the stored one, else a new one
/// (stored with mode 0600 before it is used).
async fn account(data_dir: &Path, account: &AcmeAccount) -> Result<Account, Failure> {
    let dir = directory_dir(data_dir, &account.directory);
    let path = dir.join("account.json");
    if let Ok(bytes) = std::fs::read(&path) {
        let creds: AccountCredentials = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::new(format!(
                "{} is not a readable ACME account ({e}); move it aside to register a new one",
                path.display()
            ))
        })?;
        return builder(account)
            .await?
            .from_credentials(creds)
            .await
            .map_err(|e| explain("loading the ACME account", e));
    }
    let contact = account.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let eab = match &account.eab {
        Some(eab) => {
            use base64::Engine;
            let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(eab.hmac_key.trim_end_matches('='))
                .map_err(|_| Failure::new("tls.acme eab_hmac_key is not base64url"))?;
            Some(ExternalAccountKey::new(eab.kid.clone(), &key))
        }
        None => None,
    };
    let (acct, creds) = builder(account)
        .await?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            account.directory.clone(),
            eab.as_ref(),
        )
        .await
        .map_err(|e| explain("registering an ACME account", e))?;
    let json = serde_json::to_vec(&creds).map_err(|e| Failure::new(e.to_string()))?;
    crate::tls::create_private_dir(&dir)
        .and_then(|()| crate::tls::write_private(&path, &json))
        .map_err(|e| {
            Failure::new(format!(
                "storing the ACME account in {}: {e}",
                path.display()
            ))
        })?;
    tracing::info!(directory = account.directory, "registered an ACME account");
    Ok(acct)
}

/// Orders a certificate for `cert.domains`, answering its challenges, and
/// returns it. Gives up after [`ORDER_TIMEOUT`].
pub async fn obtain(
    data_dir: &Path,
    cert: &AcmeCertificate,
    challenges: &Challenges,
    provider: &Arc<CryptoProvider>,
) -> Result<Obtained, Failure> {
    let records = std::sync::Mutex::new(Vec::new());
    let result = match tokio::time::timeout(
        ORDER_TIMEOUT,
        run(data_dir, cert, challenges, provider, &records),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(Failure::new(format!(
            "the order took longer than {}s; moat tries again later",
            ORDER_TIMEOUT.as_secs()
        ))),
    };
    // The TXT records go whichever way the order ended.
    let records = std::mem::take(&mut *records.lock().unwrap_or_else(|p| p.into_inner()));
    if let Some(hook) = &cert.account.dns_hook {
        for (name, value) in records {
            if let Err(e) = dns_hook(hook, "clear", &name, &value).await {
                tracing::warn!(name, "the TXT record was not cleared: {}", e.message);
            }
        }
    }
    result
}

/// What the CA said of a certificate's renewal (RFC 9773).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalInfo {
    /// The suggested window, Unix seconds.
    pub window: (i64, i64),
    /// Seconds until asking again.
    pub retry_after: i64,
}

/// The CA's renewal information for `leaf`. `Ok(None)`: the CA offers
/// none (its directory has no `renewalInfo`).
pub async fn renewal_window(
    data_dir: &Path,
    cert: &AcmeCertificate,
    leaf: &CertificateDer<'_>,
) -> Result<Option<RenewalInfo>, Failure> {
    let id = CertificateIdentifier::try_from(leaf).map_err(Failure::new)?;
    let acct = account(data_dir, &cert.account).await?;
    let asked = tokio::time::timeout(Duration::from_secs(30), acct.renewal_info(&id)).await;
    match asked {
        Ok(Ok((info, retry))) => Ok(Some(RenewalInfo {
            window: (
                info.suggested_window.start.unix_timestamp(),
                info.suggested_window.end.unix_timestamp(),
            ),
            retry_after: retry.as_secs() as i64,
        })),
        Ok(Err(instant_acme::Error::Unsupported(_))) => Ok(None),
        Ok(Err(e)) => Err(explain("asking the CA for renewal information", e)),
        Err(_) => Err(Failure::new(
            "the CA did not answer for renewal information within 30s",
        )),
    }
}

/// How long one call of the dns-01 hook may take.
const HOOK_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `HOOK set|clear NAME VALUE`.
async fn dns_hook(hook: &Path, action: &str, name: &str, value: &str) -> Result<(), Failure> {
    let run = tokio::process::Command::new(hook)
        .args([action, name, value])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(HOOK_TIMEOUT, run)
        .await
        .map_err(|_| {
            Failure::new(format!(
                "dns_hook {} {action} {name} did not finish within {}s",
                hook.display(),
                HOOK_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| Failure::new(format!("dns_hook {} could not run: {e}", hook.display())))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output");
    Err(Failure::new(format!(
        "dns_hook {} {action} {name} failed ({}): {why}",
        hook.display(),
        out.status
    )))
}

async fn run(
    data_dir: &Path,
    cert: &AcmeCertificate,
    challenges: &Challenges,
    provider: &Arc<CryptoProvider>,
    records: &std::sync::Mutex<Vec<(String, String)>>,
) -> Result<Obtained, Failure> {
    let identifiers: Vec<Identifier> = cert
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let acct = account(data_dir, &cert.account).await?;
    let mut order = match acct.new_order(&NewOrder::new(&identifiers)).await {
        Ok(o) => o,
        // The CA no longer knows the stored account (a test CA restarted,
        // a staging reset, a deactivation): register anew, once.
        Err(instant_acme::Error::Api(p))
            if p.r#type
                .as_deref()
                .is_some_and(|t| t.ends_with(":accountDoesNotExist")) =>
        {
            let path = directory_dir(data_dir, &cert.account.directory).join("account.json");
            tracing::warn!(
                directory = cert.account.directory,
                "the CA no longer knows moat's ACME account; registering a new one"
            );
            let _ = std::fs::remove_file(&path);
            account(data_dir, &cert.account)
                .await?
                .new_order(&NewOrder::new(&identifiers))
                .await
                .map_err(|e| explain("creating the order", e))?
        }
        Err(e) => return Err(explain("creating the order", e)),
    };
    let kind = match cert.account.challenge {
        AcmeChallenge::Http01 => ChallengeType::Http01,
        AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
        AcmeChallenge::Dns01 => ChallengeType::Dns01,
    };
    // The answers stay open until the order is done with them.
    let mut open = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result.map_err(|e| explain("reading the order's authorizations", e))?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(Failure::new(format!(
                    "the CA's authorization for {} is {other:?}, not pending",
                    authz.identifier()
                )));
            }
        }
        let name = authz.identifier().to_string();
        // The TXT record is for the name without a wildcard's `*.`.
        let base = match authz.identifier().identifier {
            Identifier::Dns(d) => d.clone(),
            other => format!("{other:?}"),
        };
        let challenge = authz.challenge(kind.clone()).ok_or_else(|| {
            Failure::new(format!(
                "the CA offers no {} challenge for {name}; use the other challenge type",
                cert.account.challenge.name()
            ))
        })?;
        let key_auth = challenge.key_authorization();
        // Only the token's answer is needed from here; the handle borrows
        // the order.
        let token = challenge.token.clone();
        match cert.account.challenge {
            AcmeChallenge::Http01 => {
                open.push(challenges.open_http01(&token, key_auth.as_str()));
            }
            AcmeChallenge::TlsAlpn01 => {
                open.push(
                    challenges
                        .open_alpn(&name, key_auth.digest().as_ref(), provider)
                        .map_err(|e| Failure::new(format!("making the tls-alpn-01 answer: {e}")))?,
                );
            }
            AcmeChallenge::Dns01 => {
                let hook =
                    cert.account.dns_hook.as_deref().ok_or_else(|| {
                        Failure::new("the dns-01 challenge needs tls.acme dns_hook")
                    })?;
                let record = format!("_acme-challenge.{base}.");
                let value = key_auth.dns_value();
                dns_hook(hook, "set", &record, &value).await?;
                records
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((record, value));
            }
        }
    }
    // Every answer is in place before the CA is told to look at any (a
    // wildcard and its base name share one TXT record name).
    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result.map_err(|e| explain("reading the order's authorizations", e))?;
        if !matches!(authz.status, AuthorizationStatus::Pending) {
            continue;
        }
        if let Some(mut challenge) = authz.challenge(kind.clone()) {
            challenge
                .set_ready()
                .await
                .map_err(|e| explain("telling the CA the challenge is ready", e))?;
        }
    }
    let status = match order.poll_ready(&POLL).await {
        Ok(status) => status,
        // The order's own problem: what the CA saw when it checked.
        Err(instant_acme::Error::Api(p)) => {
            let detail = p.detail.clone().unwrap_or_else(|| p.to_string());
            return Err(Failure::new(refused(cert, &[detail])));
        }
        Err(e) => return Err(explain("waiting for the CA to validate", e)),
    };
    if status != OrderStatus::Ready {
        return Err(Failure::new(refused_challenges(&mut order, cert).await));
    }
    drop(open);

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| Failure::new(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(cert.domains.clone())
        .map_err(|e| Failure::new(e.to_string()))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .map_err(|e| Failure::new(e.to_string()))?;
    order
        .finalize_csr(csr.der())
        .await
        .map_err(|e| explain("finalizing the order", e))?;
    let chain_pem = order
        .poll_certificate(&POLL)
        .await
        .map_err(|e| explain("downloading the certificate", e))?;
    Ok(Obtained {
        chain_pem,
        key_pem: key.serialize_pem(),
    })
}

/// Why the CA marked the order invalid: each failed challenge's problem.
async fn refused_challenges(order: &mut instant_acme::Order, cert: &AcmeCertificate) -> String {
    let mut why = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        let name = authz.identifier().to_string();
        if let Ok(state) = authz.refresh().await {
            for c in &state.challenges {
                if let Some(p) = &c.error {
                    why.push(format!(
                        "{name}: {}",
                        p.detail.clone().unwrap_or_else(|| p.to_string())
                    ));
                }
            }
        }
    }
    refused(cert, &why)
}

/// The message for a challenge the CA could not verify.
fn refused(cert: &AcmeCertificate, why: &[String]) -> String {
    let hint = match cert.account.challenge {
        AcmeChallenge::Http01 => {
            "the CA must reach this moat's HTTP listener on port 80 of each name"
        }
        AcmeChallenge::TlsAlpn01 => {
            "the CA must reach this moat's HTTPS listener on port 443 of each name"
        }
        AcmeChallenge::Dns01 => {
            "the CA must see the TXT record dns_hook set at _acme-challenge of each name (check the hook, and that it returns only once the record is visible)"
        }
    };
    if why.is_empty() {
        format!(
            "the CA refused the {} challenge; {hint}",
            cert.account.challenge.name()
        )
    } else {
        format!(
            "the CA refused the {} challenge ({}); {hint}",
            cert.account.challenge.name(),
            why.join("; ")
        )
    }
}
