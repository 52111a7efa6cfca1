//! Secret keys kept in the data directory: the session-cookie key and the
//! identity-token signing key. Each is 32 random bytes in its own file
//! (mode 0600), made on first start and read at every start after, so
//! sessions and published keys survive restarts.
//!
//! SECURITY: anyone who can read these files can forge sessions or identity
//! tokens; they live in the 0700 data directory with moat's other secrets.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub struct Keys {
    pub session: [u8; 32],
    pub identity_seed: [u8; 32],
    /// Wraps each recording's own signing key.
    pub recording_kek: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
#[error("key file {path}: {message}")]
pub struct KeyError {
    pub path: PathBuf,
    pub message: String,
}

impl Keys {
    pub fn load_or_create(data_dir: &Path) -> Result<Keys, KeyError> {
        let dir = data_dir.join("keys");
        crate::tls::create_private_dir(&dir).map_err(|e| KeyError {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        Ok(Keys {
            session: key_file(&dir.join("session.key"))?,
            identity_seed: key_file(&dir.join("identity.key"))?,
            recording_kek: key_file(&dir.join("recording.kek"))?,
        })
    }
}

fn key_file(path: &Path) -> Result<[u8; 32], KeyError> {
    let err = |message: String| KeyError {
        path: path.to_owned(),
        message,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let mode = std::fs::metadata(path)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "a key file is readable by other users; run chmod 600 on it");
            }
            bytes.try_into().map_err(|b: Vec<u8>| {
                err(format!(
                    "holds {} bytes, not 32; delete it to make a new key (signed-in sessions end)",
                    b.len()
                ))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| err(e.to_string()))?;
            // create_new: two starts racing cannot both write a key.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| err(e.to_string()))?;
            f.write_all(&key)
                .and_then(|_| f.sync_all())
                .map_err(|e| err(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = Keys::load_or_create(dir.path()).unwrap();
        let b = Keys::load_or_create(dir.path()).unwrap();
        assert_eq!(a.session, b.session);
        assert_eq!(a.identity_seed, b.identity_seed);
        assert_ne!(a.session, a.identity_seed);
        let mode = std::fs::metadata(dir.path().join("keys/session.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join("keys/session.key"), b"short").unwrap();
        let e = Keys::load_or_create(dir.path()).err().unwrap().to_string();
        assert!(e.contains("holds 5 bytes"), "{e}");
    }
}
