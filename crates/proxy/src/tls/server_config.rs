//! The rustls server configs: the provider narrowed to the configured
//! suites and groups, versions, ALPN, and the resumption state they share.

use std::sync::Arc;

use moat_config::{Tls, TlsVersion};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};

use super::{SniResolver, TlsError};

/// Resumption state kept across config rebuilds.
pub struct Resumption {
    pub(super) cache: Arc<dyn StoresServerSessions>,
    ticketer: Arc<dyn ProducesTickets>,
}

impl Resumption {
    pub fn new() -> Result<Self, TlsError> {
        Ok(Resumption {
            cache: ServerSessionMemoryCache::new(10_240),
            ticketer: rustls::crypto::ring::Ticketer::new()
                .map_err(|e| TlsError::Settings(e.to_string()))?,
        })
    }
}

/// The crypto provider restricted to the configured suites and groups, in
/// the configured order.
pub fn provider(tls: &Tls) -> Result<CryptoProvider, TlsError> {
    let mut p = rustls::crypto::ring::default_provider();
    if !tls.cipher_suites.is_empty() {
        let all = std::mem::take(&mut p.cipher_suites);
        for name in &tls.cipher_suites {
            let suite = all
                .iter()
                .find(|s| format!("{:?}", s.suite()) == *name)
                .ok_or_else(|| {
                    TlsError::Settings(format!("cipher suite {name} is not available"))
                })?;
            p.cipher_suites.push(*suite);
        }
    }
    if !tls.kx_groups.is_empty() {
        let all = std::mem::take(&mut p.kx_groups);
        for name in &tls.kx_groups {
            let group = all
                .iter()
                .find(|g| format!("{:?}", g.name()) == *name)
                .ok_or_else(|| {
                    TlsError::Settings(format!("key-exchange group {name} is not available"))
                })?;
            p.kx_groups.push(*group);
        }
    }
    Ok(p)
}

/// Builds the server config for the current TLS settings.
pub fn server_config(
    tls: &Tls,
    provider: CryptoProvider,
    resolver: Arc<SniResolver>,
    resumption: &Resumption,
    http2: bool,
) -> Result<ServerConfig, TlsError> {
    server_config_with(tls, provider, resolver, resumption, http2, None)
}

/// [`server_config`], asking for client certificates through `client`.
pub(super) fn server_config_with(
    tls: &Tls,
    provider: CryptoProvider,
    resolver: Arc<SniResolver>,
    resumption: &Resumption,
    http2: bool,
    client: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> Result<ServerConfig, TlsError> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match tls.min_version {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Settings(e.to_string()))?;
    let builder = match client {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config.session_storage = resumption.cache.clone();
    config.ticketer = resumption.ticketer.clone();
    config.send_tls13_tickets = 2;
    // Unlike the server's preference, honouring the client's cipher order
    // lets devices without AES hardware pick ChaCha20.
    config.ignore_client_order = false;
    Ok(config)
}
