//! The `manifest.json` of a static web-app bundle.
//!
//! It is a W3C web app manifest with moat's own keys beside the standard
//! ones; keys moat does not know are kept out of its way, not refused,
//! because a manifest belongs to the app and may carry anything browsers use.

use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Manifest {
    pub name: Option<String>,
    pub short_name: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    /// Single-page app: a request for a path that is not a file is answered
    /// with `index.html` (for requests that accept HTML), so the app's
    /// client-side router can handle it.
    pub spa: bool,
}

pub const FILE_NAME: &str = "manifest.json";

/// Reads `DIR/manifest.json`; the error says what is wrong in words an admin
/// can act on.
pub fn read(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join(FILE_NAME);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a valid manifest: {e}", path.display()))
}
