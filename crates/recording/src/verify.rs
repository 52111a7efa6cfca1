//! Checking a recording, and reading its events back.
//!
//! [`verify`] checks the manifest's signature with the key it names, that
//! key's attestation under moat's KEK, the digest of `session.json` and of
//! the wrapped key, and every chunk's size, SHA-256 and contents. The first
//! problem found is returned, naming the file.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use crate::seal::{Kek, Manifest, State, sha256_hex};
use crate::{Recorded, files};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    /// The file that failed (e.g. `chunk-000003.zst`).
    pub file: String,
    pub why: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.why)
    }
}

impl std::error::Error for VerifyError {}

/// What a verified recording holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub state: State,
    pub chunks: usize,
    pub events: u64,
    pub bytes: u64,
}

fn fail(file: &str, why: impl Into<String>) -> VerifyError {
    VerifyError {
        file: file.to_owned(),
        why: why.into(),
    }
}

fn read(dir: &Path, file: &str) -> Result<Vec<u8>, VerifyError> {
    std::fs::read(dir.join(file)).map_err(|e| fail(file, format!("cannot be read: {e}")))
}

pub fn verify(dir: &Path, kek: &Kek) -> Result<Report, VerifyError> {
    let manifest_bytes = read(dir, files::MANIFEST)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| fail(files::MANIFEST, format!("is not a valid manifest: {e}")))?;
    let public: [u8; 32] = B64
        .decode(&manifest.public_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| fail(files::MANIFEST, "the public key is not an Ed25519 key"))?;
    if kek.attest(&manifest.id, &public) != manifest.key_attestation {
        return Err(fail(
            files::MANIFEST,
            "the signing key is not this recording's (its attestation does not match)",
        ));
    }
    let key = VerifyingKey::from_bytes(&public)
        .map_err(|_| fail(files::MANIFEST, "the public key is not valid"))?;
    let sig_text = read(dir, files::SIGNATURE)?;
    let sig = B64
        .decode(sig_text.trim_ascii())
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
        .ok_or_else(|| fail(files::SIGNATURE, "is not an Ed25519 signature"))?;
    key.verify(&manifest_bytes, &sig).map_err(|_| {
        fail(
            files::MANIFEST,
            "the signature does not match (manifest.json or manifest.sig was altered)",
        )
    })?;
    if sha256_hex(&read(dir, files::SESSION)?) != manifest.session_sha256 {
        return Err(fail(
            files::SESSION,
            "its SHA-256 is not the one the manifest signed",
        ));
    }
    if sha256_hex(&read(dir, files::KEY)?) != manifest.key_sha256 {
        return Err(fail(
            files::KEY,
            "its SHA-256 is not the one the manifest signed",
        ));
    }
    let log = std::fs::read(dir.join(files::CHUNKS_LOG)).unwrap_or_default();
    if sha256_hex(&log) != manifest.chunks_log_sha256 {
        return Err(fail(
            files::CHUNKS_LOG,
            "its SHA-256 is not the one the manifest signed",
        ));
    }
    let keys = ChunkKeys::load(dir, kek)?;
    let mut events = 0;
    let mut bytes = 0;
    for c in &manifest.chunks {
        let data = read(dir, &c.file)?;
        if data.len() as u64 != c.size {
            return Err(fail(
                &c.file,
                format!("holds {} bytes, the manifest says {}", data.len(), c.size),
            ));
        }
        if sha256_hex(&data) != c.sha256 {
            return Err(fail(
                &c.file,
                "its SHA-256 is not the one the manifest signed",
            ));
        }
        events += parse_chunk(&c.file, &open_chunk(&keys, c.seq, &c.file, data)?)?.len() as u64;
        bytes += c.size;
    }
    Ok(Report {
        state: manifest.state,
        chunks: manifest.chunks.len(),
        events,
        bytes,
    })
}

fn parse_chunk(file: &str, data: &[u8]) -> Result<Vec<Recorded>, VerifyError> {
    let plain = zstd::stream::decode_all(data)
        .map_err(|e| fail(file, format!("does not decompress: {e}")))?;
    plain
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l)
                .map_err(|e| fail(file, format!("holds an event that is not valid: {e}")))
        })
        .collect()
}

/// The manifest of a sealed recording.
pub fn manifest(dir: &Path) -> Result<Manifest, VerifyError> {
    serde_json::from_slice(&read(dir, files::MANIFEST)?)
        .map_err(|e| fail(files::MANIFEST, format!("is not a valid manifest: {e}")))
}

/// The session metadata.
pub fn metadata(dir: &Path) -> Result<crate::Metadata, VerifyError> {
    serde_json::from_slice(&read(dir, files::SESSION)?)
        .map_err(|e| fail(files::SESSION, format!("is not valid: {e}")))
}

/// What opens a recording's chunks: its chunk key (format 2), or nothing
/// (format 1, chunks in clear).
struct ChunkKeys {
    id: String,
    key: Option<[u8; 32]>,
}

impl ChunkKeys {
    fn load(dir: &Path, kek: &Kek) -> Result<ChunkKeys, VerifyError> {
        let meta = metadata(dir)?;
        let key = if meta.format >= crate::seal::ENCRYPTED_FORMAT {
            let seed = kek
                .unwrap(&meta.id, &read(dir, files::KEY)?)
                .map_err(|e| fail(files::KEY, e.to_string()))?;
            Some(crate::seal::chunk_key(&seed))
        } else {
            None
        };
        Ok(ChunkKeys { id: meta.id, key })
    }
}

fn open_chunk(
    keys: &ChunkKeys,
    seq: u64,
    file: &str,
    data: Vec<u8>,
) -> Result<Vec<u8>, VerifyError> {
    match &keys.key {
        None => Ok(data),
        Some(k) => crate::seal::decrypt_chunk(k, &keys.id, seq, &data)
            .ok_or_else(|| fail(file, "does not decrypt (altered, or not this recording's)")),
    }
}

/// Every event of a sealed recording, in order (not verified: call
/// [`verify`] first where it matters). The KEK opens encrypted chunks.
pub fn events(dir: &Path, kek: &Kek) -> Result<Vec<Recorded>, VerifyError> {
    let mut out = Vec::new();
    for chunk in chunks(dir, kek)? {
        out.extend(chunk?);
    }
    Ok(out)
}

/// A sealed recording's events one chunk at a time, so that a reader of
/// a long recording holds one chunk in memory, never the whole of it.
pub fn chunks(dir: &Path, kek: &Kek) -> Result<Chunks, VerifyError> {
    let m = manifest(dir)?;
    Ok(Chunks {
        dir: dir.to_owned(),
        keys: ChunkKeys::load(dir, kek)?,
        pending: m.chunks.into_iter(),
    })
}

/// See [`chunks`].
pub struct Chunks {
    dir: std::path::PathBuf,
    keys: ChunkKeys,
    pending: std::vec::IntoIter<crate::seal::ChunkEntry>,
}

impl Iterator for Chunks {
    type Item = Result<Vec<Recorded>, VerifyError>;

    fn next(&mut self) -> Option<Self::Item> {
        let c = self.pending.next()?;
        Some(
            read(&self.dir, &c.file)
                .and_then(|data| open_chunk(&self.keys, c.seq, &c.file, data))
                .and_then(|plain| parse_chunk(&c.file, &plain)),
        )
    }
}
