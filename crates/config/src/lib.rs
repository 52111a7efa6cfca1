//! moat's configuration: one TOML file, read into a validated [`Config`].
//!
//! Reading happens in two steps, so that every mistake is reported with the
//! file, the line, the key and a fix, all at once:
//! 1. the file is deserialized into the [`raw`] structs (unknown keys and
//!    wrong types stop here, with the line from the TOML parser);
//! 2. [`validate`] turns raw values into the runtime [`Config`], collecting
//!    one [`Problem`] per bad value, and the loader looks up each problem's
//!    line from its key path.
//!
//! # Layout
//! - [`raw`]: the file format, with its defaults.
//! - [`model`]: the validated runtime config the server uses.
//! - [`validate`]: raw → model, one problem per bad key; a file per section.
//! - [`error`]: problems with file, line, key and fix.
//! - [`tls_names`]: the TLS cipher suite and group names moat accepts.
//! - [`manifest`]: the `manifest.json` of a static web-app bundle.
//! - [`DEFAULT_CONFIG`]: the full default file, a comment on every key.

pub mod error;
pub mod manifest;
pub mod model;
pub mod raw;
pub mod tls_names;
pub mod validate;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, Problem};
pub use model::*;

/// The default configuration file, with a comment on every key. Loading it
/// gives the same config as loading an empty file (a test holds this true).
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Reads and validates a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::single(
            path.display().to_string(),
            Problem::new("", format!("cannot read the file: {e}"))
                .fix("check the path given with -c / --config and its permissions"),
        )
    })?;
    load_str(&text, Some(path))
}

/// Parses and validates config text. `path` names the file in errors and is
/// the base for relative paths in it; `None` means the embedded default.
pub fn load_str(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    let file = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<embedded default>".into());
    let base_dir: PathBuf = path
        .and_then(|p| p.parent())
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
            .to_path_buf()
        })
        .unwrap_or_else(|| PathBuf::from("."));
    let raw = raw::parse(text).map_err(|p| ConfigError::single(file.clone(), p))?;
    match validate::validate(raw, &base_dir) {
        Ok(mut config) => {
            config.source = path.map(Path::to_path_buf);
            Ok(config)
        }
        Err(problems) => Err(ConfigError::located(file, text, problems)),
    }
}

/// The default configuration (the same as an empty file).
pub fn default_config() -> Config {
    load_str("", None).expect("the empty config is valid")
}

#[cfg(test)]
mod tests;
