//! Session recordings: what moat writes while it records a session, and
//! everything that reads it back.
//!
//! A recording is a folder (see `docs/recording-format.md`):
//! `session.json` (who, what, when, under which policy), `key.wrapped` (the
//! recording's own Ed25519 signing key, encrypted under moat's
//! key-encryption key), zstd-compressed chunks of timestamped events, each
//! named with its SHA-256 in the append-only `chunks.log`, and, once
//! closed, `manifest.json` listing every chunk's digest and
//! `manifest.sig`, its signature. Flipping any byte of any of them makes
//! [`verify`] fail and name the file.
//!
//! Must not know about HTTP servers or storage back ends: the proxy feeds
//! it events, the storage layer moves finished folders.
//!
//! # Layout
//! - [`bucket`]: storage buckets (S3-compatible or a folder): probe,
//!   upload with read-back verification, download.
//! - [`event`]: the events of a session.
//! - [`writer`]: writing a recording, chunk by chunk.
//! - [`seal`]: keys, manifests, signatures, recovery of unclosed recordings.
//! - [`verify`](mod@verify): checking a recording.
//! - [`har`]: export as HAR 1.2.

pub mod bucket;
pub mod event;
pub mod har;
pub mod seal;
pub mod verify;
pub mod writer;

pub use event::{Event, Recorded};
pub use seal::{Kek, Manifest, State};
pub use verify::{VerifyError, verify};
pub use writer::{Metadata, Policy, Writer};

/// File names inside a recording folder.
pub mod files {
    pub const SESSION: &str = "session.json";
    pub const KEY: &str = "key.wrapped";
    pub const CHUNKS_LOG: &str = "chunks.log";
    pub const MANIFEST: &str = "manifest.json";
    pub const SIGNATURE: &str = "manifest.sig";

    pub fn chunk(seq: u64) -> String {
        format!("chunk-{seq:06}.zst")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Format(String),
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests;
