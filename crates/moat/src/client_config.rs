//! The CLI's own settings for reaching a remote moat: a small TOML file
//! (`--client-config`, `$MOAT_CLIENT_CONFIG`, or
//! `$XDG_CONFIG_HOME/moat/client.toml`), each value overridable by an
//! environment variable.
//!
//! ```toml
//! server_uri = "https://moat.example.com:8443"
//! admin_user = "admin"
//! [client]
//! admin_password = "..."
//! ca_file = "/etc/moat/ca.pem"   # trust this CA (e.g. the server's local CA: moat ca export)
//! skip_cert_check = false        # do not verify the server at all (unsafe)
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct File {
    server_uri: Option<String>,
    admin_user: Option<String>,
    client: ClientSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ClientSection {
    admin_password: Option<String>,
    ca_file: Option<PathBuf>,
    skip_cert_check: bool,
}

/// The settings for a remote server, when one is configured.
#[derive(Debug)]
pub struct RemoteSettings {
    pub server_uri: http::Uri,
    pub admin_user: String,
    pub admin_password: String,
    pub ca_file: Option<PathBuf>,
    pub skip_cert_check: bool,
}

fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("moat/client.toml")).filter(|p| p.is_file())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads the client settings. `Ok(None)`: no server_uri anywhere, so the
/// local socket is used.
pub fn load(explicit: Option<&Path>) -> Result<Option<RemoteSettings>, String> {
    let path = explicit
        .map(Path::to_path_buf)
        .or_else(|| env("MOAT_CLIENT_CONFIG").map(PathBuf::from))
        .or_else(default_path);
    let file: File = match &path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("{}: cannot read the client config: {e}", p.display()))?;
            toml::from_str(&text)
                .map_err(|e| format!("{}: {}", p.display(), e.to_string().trim()))?
        }
        None => File::default(),
    };
    let Some(uri) = env("MOAT_SERVER_URI").or(file.server_uri) else {
        return Ok(None);
    };
    let where_ = path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the environment".into());
    let server_uri: http::Uri = uri.parse().map_err(|_| {
        format!("{where_}: server_uri {uri:?} is not a URL (fix: write \"https://HOST:PORT\")")
    })?;
    if server_uri.scheme_str() != Some("https") || server_uri.authority().is_none() {
        return Err(format!(
            "{where_}: server_uri {uri:?} must be https://HOST:PORT (the admin API is only served over TLS)"
        ));
    }
    let admin_password = env("MOAT_ADMIN_PASSWORD").or(file.client.admin_password).ok_or_else(|| {
        format!("{where_}: server_uri is set but no admin password is (fix: set [client] admin_password, or MOAT_ADMIN_PASSWORD)")
    })?;
    let skip_cert_check = match env("MOAT_SKIP_CERT_CHECK") {
        Some(v) => matches!(v.as_str(), "1" | "true" | "yes"),
        None => file.client.skip_cert_check,
    };
    let ca_file = env("MOAT_CA_FILE")
        .map(PathBuf::from)
        .or(file.client.ca_file)
        .map(|p| match &path {
            Some(cfg) if p.is_relative() => cfg.parent().unwrap_or(Path::new(".")).join(p),
            _ => p,
        });
    Ok(Some(RemoteSettings {
        server_uri,
        admin_user: env("MOAT_ADMIN_USER")
            .or(file.admin_user)
            .unwrap_or_else(|| "admin".into()),
        admin_password,
        ca_file,
        skip_cert_check,
    }))
}
