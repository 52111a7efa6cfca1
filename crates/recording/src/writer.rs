//! Writing a recording. Events are buffered in memory and written as
//! compressed chunks: when the buffer grows past a threshold, when the
//! caller flushes (moat does so every second), and at the end. Each chunk
//! is written to a temporary file, synced, renamed into place, and only
//! then named in `chunks.log` (also synced), so a crash loses at most the
//! events not yet flushed and never leaves a half chunk that counts.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::seal::{self, ChunkEntry, Kek, Manifest, State, sha256_hex};
use crate::{Error, Event, Recorded, files, io_err};

/// Uncompressed bytes buffered before a chunk is written.
const CHUNK_BYTES: usize = 256 * 1024;

/// What was kept, as the app's recording settings said at the start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Bytes kept per message; the rest is counted, not kept.
    pub body_limit: u64,
    pub redact_headers: Vec<String>,
    pub redact_json_fields: Vec<String>,
    /// The storage policy in force when the recording started (absent:
    /// none): days it must be kept (-1: forever) and after which it is
    /// deleted (0: never).
    #[serde(default)]
    pub retain_for_days: Option<i64>,
    #[serde(default)]
    pub delete_after_days: Option<i64>,
}

/// Everything needed to read a recording without moat's database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub format: u32,
    pub id: String,
    pub app: String,
    pub user: Option<String>,
    pub client_ip: String,
    pub user_agent: Option<String>,
    pub started_at_ms: i64,
    pub moat_version: String,
    pub policy: Policy,
}

pub struct Writer {
    dir: PathBuf,
    meta: Metadata,
    started: Instant,
    buf: Vec<u8>,
    seq: u64,
    chunks: Vec<ChunkEntry>,
    key: SigningKey,
    /// Encrypts the chunks (format 2).
    chunk_key: [u8; 32],
    kek: Kek,
    events: u64,
}

impl Writer {
    /// Creates `root/ID/` with `session.json` and the wrapped key.
    pub fn create(root: &Path, mut meta: Metadata, kek: &Kek) -> Result<Writer, Error> {
        // Every new recording has encrypted chunks.
        meta.format = seal::ENCRYPTED_FORMAT;
        let dir = root.join(&meta.id);
        private_dir(&dir)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the operating system's random generator works");
        let key = SigningKey::from_bytes(&seed);
        write_durably(&dir.join(files::KEY), &kek.wrap(&meta.id, &seed))?;
        write_durably(
            &dir.join(files::SESSION),
            &serde_json::to_vec_pretty(&meta).expect("serializes"),
        )?;
        Ok(Writer {
            dir,
            meta,
            started: Instant::now(),
            buf: Vec::new(),
            seq: 0,
            chunks: Vec::new(),
            key,
            chunk_key: seal::chunk_key(&seed),
            kek: kek.clone(),
            events: 0,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    /// Bytes written to disk so far (compressed chunks).
    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.size).sum()
    }

    /// Appends an event, timestamped now; writes a chunk when enough is
    /// buffered.
    pub fn record(&mut self, event: Event) -> Result<(), Error> {
        let r = Recorded {
            t_us: self.started.elapsed().as_micros() as u64,
            event,
        };
        serde_json::to_writer(&mut self.buf, &r).expect("serializes");
        self.buf.push(b'\n');
        self.events += 1;
        if self.buf.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is buffered as a chunk (nothing if empty).
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let compressed = zstd::bulk::compress(&self.buf, 3)
            .map_err(|e| Error::Format(format!("compressing a chunk: {e}")))?;
        self.seq += 1;
        // Encrypted at rest: a copied disk or bucket shows nothing of the
        // session; the manifest's hashes are over what is stored.
        let compressed = seal::encrypt_chunk(&self.chunk_key, &self.meta.id, self.seq, &compressed);
        let file = files::chunk(self.seq);
        let path = self.dir.join(&file);
        write_durably(&path, &compressed)?;
        let sha = sha256_hex(&compressed);
        let log_path = self.dir.join(files::CHUNKS_LOG);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        writeln!(log, "{} {sha} {}", self.seq, compressed.len())
            .and_then(|_| log.sync_data())
            .map_err(io_err(&log_path))?;
        self.chunks.push(ChunkEntry {
            seq: self.seq,
            file,
            sha256: sha,
            size: compressed.len() as u64,
        });
        self.buf.clear();
        Ok(())
    }

    /// Flushes and seals the recording.
    pub fn finish(mut self, closed_because: &str, ended_at_ms: i64) -> Result<Manifest, Error> {
        self.flush()?;
        seal::seal(
            &self.dir,
            &self.meta.id,
            &self.kek,
            &self.key,
            std::mem::take(&mut self.chunks),
            State::Complete,
            closed_because,
            ended_at_ms,
        )
    }
}

/// Creates a recording's folder, 0700 whatever the umask.
fn private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(dir)(e)),
    }
    // The mode passed to mkdir is masked by the umask: set it outright.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err(dir))
}

/// Writes a file so that after a crash it is either whole or absent:
/// a temporary file, synced, renamed over the name, the folder synced.
pub(crate) fn write_durably(path: &Path, data: &[u8]) -> Result<(), Error> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // 0600 whatever the umask: a recording is for moat and its admins.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Some(parent) = path.parent() {
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
