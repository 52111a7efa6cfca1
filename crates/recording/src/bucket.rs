//! Storage buckets: where closed recordings go from local disk, through
//! the `object_store` crate: S3 and S3-compatible stores (MinIO, moto, …),
//! or a folder.
//!
//! A bucket is proven before use: [`probe`] writes, reads back and deletes
//! an object. [`upload`] copies a sealed recording object by object (the
//! manifest and its signature last, so a half-finished upload never looks
//! finished), then reads every object back and compares its SHA-256 with
//! the local file; only then may the caller remove the local copy.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::files;
use crate::seal::sha256_hex;

/// How to reach a bucket. Secrets are the caller's to keep safe (moat
/// stores them encrypted and never prints them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum BucketConfig {
    S3 {
        bucket: String,
        region: String,
        #[serde(default)]
        prefix: String,
        /// For S3-compatible stores, e.g. `http://127.0.0.1:9000`.
        #[serde(default)]
        endpoint: Option<String>,
        /// Path-style requests (`ENDPOINT/BUCKET/KEY`), which most
        /// S3-compatible stores want.
        #[serde(default)]
        path_style: bool,
        /// Static credentials; absent: from the environment
        /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, …).
        #[serde(default)]
        access_key_id: Option<String>,
        #[serde(default)]
        secret_access_key: Option<String>,
    },
    Filesystem {
        path: String,
        #[serde(default)]
        prefix: String,
    },
}

impl BucketConfig {
    pub fn prefix(&self) -> &str {
        match self {
            BucketConfig::S3 { prefix, .. } | BucketConfig::Filesystem { prefix, .. } => prefix,
        }
    }

    /// The settings with secrets replaced, for showing.
    pub fn redacted(&self) -> BucketConfig {
        let mut c = self.clone();
        if let BucketConfig::S3 {
            secret_access_key, ..
        } = &mut c
        {
            if secret_access_key.is_some() {
                *secret_access_key = Some("[set]".into());
            }
        }
        c
    }
}

pub fn open(cfg: &BucketConfig) -> Result<Arc<dyn ObjectStore>, String> {
    match cfg {
        BucketConfig::S3 {
            bucket,
            region,
            endpoint,
            path_style,
            access_key_id,
            secret_access_key,
            ..
        } => {
            // reqwest (HTTPS to the store) uses the process's rustls
            // provider; moat uses ring everywhere (see the README).
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_region(region)
                .with_virtual_hosted_style_request(!path_style)
                .with_http_connector(object_store::client::ReqwestConnector::default());
            if let Some(e) = endpoint {
                b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
            }
            if let (Some(k), Some(s)) = (access_key_id, secret_access_key) {
                b = b.with_access_key_id(k).with_secret_access_key(s);
            }
            b.build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                .map_err(|e| e.to_string())
        }
        BucketConfig::Filesystem { path, .. } => {
            std::fs::create_dir_all(path).map_err(|e| format!("{path}: {e}"))?;
            object_store::local::LocalFileSystem::new_with_prefix(path)
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                .map_err(|e| e.to_string())
        }
    }
}

fn key(prefix: &str, rest: &str) -> ObjectPath {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        ObjectPath::from(rest)
    } else {
        ObjectPath::from(format!("{p}/{rest}"))
    }
}

/// Writes, reads back and deletes a probe object.
pub async fn probe(store: &dyn ObjectStore, prefix: &str) -> Result<(), String> {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).expect("the operating system's random generator works");
    let name: String = r.iter().map(|b| format!("{b:02x}")).collect();
    let k = key(prefix, &format!("moat-probe-{name}"));
    let body = Bytes::from(format!("moat bucket probe {name}"));
    store
        .put(&k, PutPayload::from(body.clone()))
        .await
        .map_err(|e| format!("writing a probe object: {e}"))?;
    let got = store
        .get(&k)
        .await
        .map_err(|e| format!("reading the probe object back: {e}"))?
        .bytes()
        .await
        .map_err(|e| format!("reading the probe object back: {e}"))?;
    if got != body {
        return Err("the probe object read back is not what was written".into());
    }
    store
        .delete(&k)
        .await
        .map_err(|e| format!("deleting the probe object: {e}"))?;
    Ok(())
}

/// Files of a sealed recording, in upload order: everything else first,
/// the manifest and its signature last.
fn upload_order(dir: &Path) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".tmp"))
        .collect();
    names.sort_by_key(|n| (n == files::MANIFEST || n == files::SIGNATURE, n.clone()));
    if !names.iter().any(|n| n == files::MANIFEST) {
        return Err("the recording is not sealed (no manifest.json)".into());
    }
    Ok(names)
}

/// Copies a sealed recording to `PREFIX/ID/…` and checks every object
/// against the local file. Large files go up in parts.
pub async fn upload(
    store: &dyn ObjectStore,
    prefix: &str,
    id: &str,
    dir: &Path,
) -> Result<u64, String> {
    let names = upload_order(dir)?;
    let mut total = 0;
    for n in &names {
        let data = std::fs::read(dir.join(n)).map_err(|e| format!("{n}: {e}"))?;
        total += data.len() as u64;
        let k = key(prefix, &format!("{id}/{n}"));
        if data.len() > 8 * 1024 * 1024 {
            let mut up = object_store::WriteMultipart::new(
                store
                    .put_multipart(&k)
                    .await
                    .map_err(|e| format!("{n}: {e}"))?,
            );
            up.write(&data);
            up.finish().await.map_err(|e| format!("{n}: {e}"))?;
        } else {
            store
                .put(&k, PutPayload::from(Bytes::from(data)))
                .await
                .map_err(|e| format!("{n}: {e}"))?;
        }
    }
    for n in &names {
        let local = std::fs::read(dir.join(n)).map_err(|e| format!("{n}: {e}"))?;
        let remote = store
            .get(&key(prefix, &format!("{id}/{n}")))
            .await
            .map_err(|e| format!("reading {n} back: {e}"))?
            .bytes()
            .await
            .map_err(|e| format!("reading {n} back: {e}"))?;
        if sha256_hex(&remote) != sha256_hex(&local) {
            return Err(format!("{n} in the bucket is not what was written"));
        }
    }
    Ok(total)
}

/// Whether a sealed recording (its manifest) is in the bucket.
pub async fn is_sealed_in(store: &dyn ObjectStore, prefix: &str, id: &str) -> Result<bool, String> {
    match store
        .head(&key(prefix, &format!("{id}/{}", files::MANIFEST)))
        .await
    {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// Copies a recording from a bucket into `dir` (for verification and
/// export of recordings no longer on local disk).
pub async fn download(
    store: &dyn ObjectStore,
    prefix: &str,
    id: &str,
    dir: &Path,
) -> Result<(), String> {
    use futures_util::StreamExt;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let base = key(prefix, id);
    let mut list = store.list(Some(&base));
    while let Some(meta) = list.next().await {
        let meta = meta.map_err(|e| e.to_string())?;
        let name = meta.location.filename().unwrap_or_default().to_owned();
        let data = store
            .get(&meta.location)
            .await
            .map_err(|e| format!("{name}: {e}"))?
            .bytes()
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        std::fs::write(dir.join(&name), &data).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// Deletes every object of a recording.
pub async fn delete(store: &dyn ObjectStore, prefix: &str, id: &str) -> Result<(), String> {
    use futures_util::StreamExt;
    let base = key(prefix, id);
    let locations: Vec<ObjectPath> = store
        .list(Some(&base))
        .map(|m| m.map(|m| m.location))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    for l in locations {
        store.delete(&l).await.map_err(|e| format!("{l}: {e}"))?;
    }
    Ok(())
}
