//! Where moat keeps its state when neither `--data-dir` nor `data_dir` in
//! the config says.

use std::path::PathBuf;

/// `$MOAT_DATA_DIR`, else `/var/lib/moat` for root, else
/// `$XDG_DATA_HOME/moat`, else `~/.local/share/moat`.
pub fn default() -> PathBuf {
    if let Some(d) = std::env::var_os("MOAT_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/moat");
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("moat");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/moat"),
        None => PathBuf::from(".moat"),
    }
}
