//! The `manifest.json` of a static web-app bundle.
//!
//! It is a W3C web app manifest with moat's own keys beside the standard
//! ones; keys moat does not know are kept out of its way, not refused,
//! because a manifest belongs to the app and may carry anything browsers use.

use std::io;
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
    /// Sources the app asks for, by directive. Nothing here is applied
    /// until an admin approves it.
    pub csp: std::collections::BTreeMap<String, Vec<String>>,
}

/// The admin-owned `config.json` beside a bundle's manifest: settings an
/// admin keeps with the app that survive updates of its files.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminFile {
    pub csp: crate::raw::RawAppCsp,
}

pub const ADMIN_FILE_NAME: &str = "config.json";

/// Reads `DIR/config.json` if there is one.
pub fn read_admin_file(dir: &Path) -> Result<Option<AdminFile>, String> {
    let path = dir.join(ADMIN_FILE_NAME);
    parse_admin_file(&path, std::fs::read(&path))
}

/// A `config.json` at `path` from what reading it gave: `None` if there is
/// none.
pub(crate) fn parse_admin_file(
    path: &Path,
    read: io::Result<Vec<u8>>,
) -> Result<Option<AdminFile>, String> {
    match read.and_then(utf8) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is not valid: {e}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

pub const FILE_NAME: &str = "manifest.json";

/// Reads `DIR/manifest.json`; the error says what is wrong in words an admin
/// can act on.
pub fn read(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join(FILE_NAME);
    parse(&path, std::fs::read(&path))
}

/// The manifest at `path` from what reading it gave, with [`read`]'s errors.
pub(crate) fn parse(path: &Path, read: io::Result<Vec<u8>>) -> Result<Manifest, String> {
    let text = read
        .and_then(utf8)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a valid manifest: {e}", path.display()))
}

/// Text, failing as `std::fs::read_to_string` does on bytes that are not
/// UTF-8.
fn utf8(bytes: Vec<u8>) -> io::Result<String> {
    String::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}
