//! Keys, manifests and signatures: what makes a recording tamper-evident.
//!
//! Each recording has its own Ed25519 key, made when it starts. Its seed
//! is stored in the recording encrypted (ChaCha20-Poly1305) under moat's
//! key-encryption key, so a recording left unclosed by a crash can still
//! be signed at the next start, and nobody without the KEK can re-sign a
//! altered one. The manifest names every chunk's SHA-256 and carries the
//! public key with an attestation (HMAC under the KEK) that the key is the
//! recording's own; its signature covers the exact manifest bytes.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, files, io_err};

/// The format whose chunks are encrypted (format 1 kept them in clear and
/// is still read).
pub const ENCRYPTED_FORMAT: u32 = 2;

/// The key a recording's chunks are encrypted with, derived from its own
/// secret seed (the one wrapped in key.wrapped): HMAC-SHA256 as a PRF,
/// with a label, so the signing key and the chunk key never coincide.
pub fn chunk_key(seed: &[u8; 32]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(seed).expect("HMAC takes any key");
    mac.update(b"moat recording chunk key v1");
    mac.finalize().into_bytes().into()
}

/// The nonce of chunk `seq`: unique per key, since a recording's chunks
/// are numbered once and never rewritten.
fn chunk_nonce(seq: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&seq.to_be_bytes());
    Nonce::from(n)
}

fn chunk_aad(id: &str, seq: u64) -> String {
    format!("moat-recording-chunk:{id}:{seq}")
}

/// Encrypts a compressed chunk (ChaCha20-Poly1305, bound to the recording
/// and the chunk's number, so chunks cannot be swapped or moved).
pub fn encrypt_chunk(key: &[u8; 32], id: &str, seq: u64, compressed: &[u8]) -> Vec<u8> {
    ChaCha20Poly1305::new(key.into())
        .encrypt(
            &chunk_nonce(seq),
            Payload {
                msg: compressed,
                aad: chunk_aad(id, seq).as_bytes(),
            },
        )
        .expect("encrypting a chunk cannot fail")
}

pub fn decrypt_chunk(key: &[u8; 32], id: &str, seq: u64, sealed: &[u8]) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(key.into())
        .decrypt(
            &chunk_nonce(seq),
            Payload {
                msg: sealed,
                aad: chunk_aad(id, seq).as_bytes(),
            },
        )
        .ok()
}

/// moat's key-encryption key (32 bytes, kept in the data directory).
#[derive(Clone)]
pub struct Kek([u8; 32]);

impl Kek {
    pub fn from_bytes(b: [u8; 32]) -> Kek {
        Kek(b)
    }

    /// nonce (12 bytes) ‖ ciphertext of the seed, bound to the recording id.
    pub fn wrap(&self, id: &str, seed: &[u8; 32]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system's random generator works");
        let cipher = ChaCha20Poly1305::new((&self.0).into());
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: seed,
                    aad: aad(id).as_bytes(),
                },
            )
            .expect("encrypting 32 bytes cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn unwrap(&self, id: &str, wrapped: &[u8]) -> Result<[u8; 32], Error> {
        if wrapped.len() < 12 {
            return Err(Error::Format("key.wrapped is too short".into()));
        }
        let cipher = ChaCha20Poly1305::new((&self.0).into());
        let seed = cipher
            .decrypt(
                &Nonce::try_from(&wrapped[..12]).expect("12 bytes"),
                Payload {
                    msg: &wrapped[12..],
                    aad: aad(id).as_bytes(),
                },
            )
            .map_err(|_| {
                Error::Format(
                    "key.wrapped cannot be opened with this key-encryption key (altered, or another moat's)".into(),
                )
            })?;
        seed.try_into()
            .map_err(|_| Error::Format("key.wrapped holds a key of the wrong size".into()))
    }

    /// Encrypts a secret (a bucket's access key) for storing, bound to
    /// `context` (the bucket's name): base64 of nonce ‖ ciphertext.
    pub fn seal_secret(&self, context: &str, secret: &str) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system's random generator works");
        let cipher = ChaCha20Poly1305::new((&self.0).into());
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: format!("moat-secret:{context}").as_bytes(),
                },
            )
            .expect("encrypting cannot fail");
        B64.encode([nonce.as_slice(), &sealed].concat())
    }

    pub fn open_secret(&self, context: &str, sealed: &str) -> Result<String, Error> {
        let bad = || Error::Format(format!("the stored secret of {context} cannot be opened"));
        let raw = B64.decode(sealed).map_err(|_| bad())?;
        if raw.len() < 12 {
            return Err(bad());
        }
        let cipher = ChaCha20Poly1305::new((&self.0).into());
        let plain = cipher
            .decrypt(
                &Nonce::try_from(&raw[..12]).map_err(|_| bad())?,
                Payload {
                    msg: &raw[12..],
                    aad: format!("moat-secret:{context}").as_bytes(),
                },
            )
            .map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }

    /// HMAC-SHA256 under the KEK of the recording id and its public key.
    pub fn attest(&self, id: &str, public_key: &[u8]) -> String {
        let mut m =
            <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.0).expect("any key length");
        m.update(b"moat-recording-key\0");
        m.update(id.as_bytes());
        m.update(b"\0");
        m.update(public_key);
        B64.encode(m.finalize().into_bytes())
    }
}

fn aad(id: &str) -> String {
    format!("moat-recording-key:{id}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Closed normally (logout, timeout, shutdown).
    Complete,
    /// Closed at the next start after moat stopped without closing it;
    /// holds what was flushed before the stop.
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkEntry {
    pub seq: u64,
    pub file: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub state: State,
    /// Why the recording closed, in words.
    pub closed_because: String,
    pub ended_at_ms: i64,
    pub session_sha256: String,
    pub key_sha256: String,
    /// The working log of chunks, kept for the record.
    pub chunks_log_sha256: String,
    pub public_key: String,
    pub key_attestation: String,
    pub chunks: Vec<ChunkEntry>,
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `manifest.json` and `manifest.sig` for a recording.
pub fn seal(
    dir: &Path,
    id: &str,
    kek: &Kek,
    key: &SigningKey,
    chunks: Vec<ChunkEntry>,
    state: State,
    closed_because: &str,
    ended_at_ms: i64,
) -> Result<Manifest, Error> {
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(io_err(&dir.join(name)));
    let public = key.verifying_key().to_bytes();
    let manifest = Manifest {
        format: 1,
        id: id.to_owned(),
        state,
        closed_because: closed_because.to_owned(),
        ended_at_ms,
        session_sha256: sha256_hex(&read(files::SESSION)?),
        key_sha256: sha256_hex(&read(files::KEY)?),
        chunks_log_sha256: sha256_hex(
            &std::fs::read(dir.join(files::CHUNKS_LOG)).unwrap_or_default(),
        ),
        public_key: B64.encode(public),
        key_attestation: kek.attest(id, &public),
        chunks,
    };
    let bytes = serde_json::to_vec_pretty(&manifest).expect("serializes");
    let sig = key.sign(&bytes);
    crate::writer::write_durably(&dir.join(files::MANIFEST), &bytes)?;
    crate::writer::write_durably(
        &dir.join(files::SIGNATURE),
        B64.encode(sig.to_bytes()).as_bytes(),
    )?;
    Ok(manifest)
}

/// Closes a recording that moat did not close (it was killed): keeps the
/// chunks named in `chunks.log` whose files are whole, in order up to the
/// first that is not, and signs them as [`State::Incomplete`].
pub fn recover(dir: &Path, kek: &Kek, now_ms: i64) -> Result<Manifest, Error> {
    let session: crate::Metadata = serde_json::from_slice(
        &std::fs::read(dir.join(files::SESSION)).map_err(io_err(&dir.join(files::SESSION)))?,
    )
    .map_err(|e| Error::Format(format!("session.json: {e}")))?;
    let wrapped = std::fs::read(dir.join(files::KEY)).map_err(io_err(&dir.join(files::KEY)))?;
    let key = SigningKey::from_bytes(&kek.unwrap(&session.id, &wrapped)?);
    let log = std::fs::read_to_string(dir.join(files::CHUNKS_LOG)).unwrap_or_default();
    let mut chunks = Vec::new();
    for line in log.lines() {
        let mut parts = line.split_whitespace();
        let (Some(seq), Some(sha), Some(size)) = (parts.next(), parts.next(), parts.next()) else {
            break;
        };
        let (Ok(seq), Ok(size)) = (seq.parse::<u64>(), size.parse::<u64>()) else {
            break;
        };
        let file = files::chunk(seq);
        match std::fs::read(dir.join(&file)) {
            Ok(data) if data.len() as u64 == size && sha256_hex(&data) == sha => {
                chunks.push(ChunkEntry {
                    seq,
                    file,
                    sha256: sha.to_owned(),
                    size,
                });
            }
            _ => break,
        }
    }
    seal(
        dir,
        &session.id,
        kek,
        &key,
        chunks,
        State::Incomplete,
        "moat stopped without closing it; sealed at the next start over what was flushed",
        now_ms,
    )
}
