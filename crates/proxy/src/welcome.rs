//! The built-in welcome app: a static bundle compiled into the binary and
//! written to `DATA_DIR/welcome/` at start, then served like any other
//! static app (same code path, same headers).

use std::path::{Path, PathBuf};

const FILES: [(&str, &str); 3] = [
    ("index.html", include_str!("welcome/index.html")),
    ("welcome.css", include_str!("welcome/welcome.css")),
    ("manifest.json", include_str!("welcome/manifest.json")),
];

/// Whether the welcome bundle is served: with no app, where the portal's
/// overview (which says how to add one) is not.
pub fn served(config: &moat_config::Config) -> bool {
    config.apps.is_empty() && !(config.portal.enabled && config.tls.enabled)
}

/// Writes the bundle (replacing an older version) and returns its folder.
pub fn install(data_dir: &Path) -> std::io::Result<PathBuf> {
    let dir = data_dir.join("welcome");
    std::fs::create_dir_all(&dir)?;
    for (name, text) in FILES {
        let path = dir.join(name);
        // Rewriting an unchanged file would change its ETag for nothing.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::write(&path, text)?;
        }
    }
    Ok(dir)
}
