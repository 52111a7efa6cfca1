//! On-demand certificates: the first handshake for a name moat holds no
//! certificate for may order one, but only after the admin's `ask` URL
//! approves the name. Without that gate anyone could make moat order
//! certificates for names of their choosing (and spend its CA rate limit).
//!
//! A refusal is remembered for [`DENIAL_MEMORY`], so a client cycling
//! through names costs one ask per name, not one per handshake.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How long a refused name is not asked about again.
pub const DENIAL_MEMORY: Duration = Duration::from_secs(300);

/// How long the ask URL gets to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Names refused lately, with the Unix second they may be asked again.
#[derive(Default)]
pub struct Denials(Mutex<HashMap<String, i64>>);

impl Denials {
    pub fn refused(&self, name: &str, now: i64) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, until| *until > now);
        m.contains_key(name)
    }

    pub fn remember(&self, name: &str, now: i64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a flood of names forgets the oldest rather than grow.
        if m.len() >= 10_000 {
            m.clear();
        }
        m.insert(name.to_owned(), now + DENIAL_MEMORY.as_secs() as i64);
    }
}

/// Asks `ask` whether a certificate may be ordered for `name`: `GET
/// ask?domain=NAME`, approved by a 200. Any failure to ask is a refusal.
pub async fn approved(ask: &str, name: &str) -> Result<bool, String> {
    let sep = if ask.contains('?') { '&' } else { '?' };
    // A DNS name's dots and hyphens stay as they are.
    const QUERY: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'.').remove(b'-');
    let encoded = percent_encoding::utf8_percent_encode(name, QUERY).to_string();
    let uri: http::Uri = format!("{ask}{sep}domain={encoded}")
        .parse()
        .map_err(|e| format!("tls.on_demand.ask: {e}"))?;
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let resp = tokio::time::timeout(ASK_TIMEOUT, client.get(uri))
        .await
        .map_err(|_| {
            format!(
                "the ask URL did not answer within {}s",
                ASK_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("the ask URL could not be reached: {e}"))?;
    let status = resp.status();
    // Drain the (small) body so the connection closes cleanly.
    let _ = tokio::time::timeout(ASK_TIMEOUT, resp.into_body().collect()).await;
    Ok(status == http::StatusCode::OK)
}

/// Whether `name` is worth asking about: a DNS name a public CA could
/// validate.
pub fn plausible(name: &str) -> bool {
    moat_policy::renewal::is_issuable_dns_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_expire() {
        let d = Denials::default();
        d.remember("a.example", 100);
        assert!(d.refused("a.example", 101));
        assert!(!d.refused("b.example", 101));
        assert!(!d.refused("a.example", 100 + DENIAL_MEMORY.as_secs() as i64));
    }
}
