//! Storage buckets: a bucket is stored only once moat proved it can write,
//! read back and delete there; one still in use (an app sends recordings
//! to it, recordings are stored in it or waiting to go) cannot be deleted.

use moat_recording::bucket::BucketConfig;
use moat_store::Actor;

use super::{Control, ControlError};

/// A bucket as the API shows it: never its secret.
pub type ShownBucket = Result<BucketConfig, String>;

impl Control {
    /// Every bucket, each with its settings (secrets removed) or why they
    /// cannot be read.
    pub async fn buckets(&self) -> Result<Vec<(String, ShownBucket)>, ControlError> {
        let kek = self.parts.recorder.kek();
        let mut out = Vec::new();
        for (name, _) in self.parts.store.buckets().await? {
            let cfg = crate::buckets::load(&self.parts.store, kek, &name)
                .await
                .map(|c| c.redacted());
            out.push((name, cfg));
        }
        Ok(out)
    }

    /// One bucket's settings, secrets removed.
    pub async fn bucket(&self, name: &str) -> Result<BucketConfig, ControlError> {
        crate::buckets::load(&self.parts.store, self.parts.recorder.kek(), name)
            .await
            .map(|c| c.redacted())
            .map_err(ControlError::NotFound)
    }

    /// Proves access (write, read back, delete a probe object), then
    /// stores: a new bucket with `create`, else a replacement.
    pub async fn put_bucket(
        &self,
        actor: &Actor,
        name: &str,
        cfg: BucketConfig,
        create: bool,
    ) -> Result<BucketConfig, ControlError> {
        let _inputs = self.inputs.lock().await;
        if !bucket_name_ok(name) {
            return Err(ControlError::InvalidValue(format!(
                "{name:?} is not a valid bucket name (1-64 letters, digits, '-', '_')"
            )));
        }
        // An update naming the same access key ID without its secret keeps
        // the stored secret: the API never shows it, so an admin changing
        // another setting cannot send it again.
        let cfg = match create {
            true => cfg,
            false => keep_secret(
                cfg,
                crate::buckets::load(&self.parts.store, self.parts.recorder.kek(), name)
                    .await
                    .ok(),
            ),
        };
        let probe = async {
            let os = moat_recording::bucket::open(&cfg)?;
            moat_recording::bucket::probe(os.as_ref(), cfg.prefix()).await
        }
        .await;
        if let Err(e) = probe {
            return Err(ControlError::BucketUnavailable(format!(
                "bucket {name:?} refused: moat could not write, read and delete a probe object there: {e}"
            )));
        }
        let shown = serde_json::to_value(cfg.redacted()).expect("serializes");
        let stored = crate::buckets::sealed_json(self.parts.recorder.kek(), name, cfg.clone());
        self.parts
            .store
            .put_bucket(actor, name, &stored, &shown, create)
            .await?;
        tracing::info!(bucket = name, actor = actor.name, create, "bucket stored");
        Ok(cfg.redacted())
    }

    pub async fn delete_bucket(&self, actor: &Actor, name: &str) -> Result<(), ControlError> {
        let _inputs = self.inputs.lock().await;
        // A bucket still in use stays: an app sending recordings there, or
        // recordings stored in it or waiting to go, would be stranded.
        let config = self.runtime().config.clone();
        if let Some(app) = config
            .apps
            .iter()
            .find(|a| a.recording.as_ref().and_then(|r| r.bucket.as_deref()) == Some(name))
        {
            return Err(ControlError::Conflict(format!(
                "app {:?} sends its recordings to bucket {name:?}; change the app first",
                app.name
            )));
        }
        let using = self
            .parts
            .store
            .recordings(&moat_store::RecordingQuery {
                limit: Some(u32::MAX),
                ..Default::default()
            })
            .await?
            .iter()
            .filter(|r| r.bucket.as_deref() == Some(name) || r.location.bucket() == Some(name))
            .count();
        if using > 0 {
            return Err(ControlError::Conflict(format!(
                "{using} recording(s) are stored in bucket {name:?} or waiting to go there; delete them first"
            )));
        }
        self.parts.store.delete_bucket(actor, name).await?;
        Ok(())
    }
}

fn bucket_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `new` with `old`'s secret where `new` gives none and names the same
/// store (endpoint, bucket, region) and access key ID: a stored
/// credential is never sent to a host it was not given for.
fn keep_secret(mut new: BucketConfig, old: Option<BucketConfig>) -> BucketConfig {
    if let (
        BucketConfig::S3 {
            bucket,
            region,
            endpoint,
            access_key_id: Some(id),
            secret_access_key: secret @ None,
            ..
        },
        Some(BucketConfig::S3 {
            bucket: old_bucket,
            region: old_region,
            endpoint: old_endpoint,
            access_key_id: Some(old_id),
            secret_access_key: Some(old_secret),
            ..
        }),
    ) = (&mut new, old)
        && (&*id, &*bucket, &*region, &*endpoint)
            == (&old_id, &old_bucket, &old_region, &old_endpoint)
    {
        *secret = Some(old_secret);
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(id: Option<&str>, secret: Option<&str>) -> BucketConfig {
        BucketConfig::S3 {
            bucket: "b".into(),
            region: "r".into(),
            prefix: String::new(),
            endpoint: None,
            path_style: false,
            access_key_id: id.map(Into::into),
            secret_access_key: secret.map(Into::into),
        }
    }

    #[test]
    fn an_update_without_the_secret_keeps_it_only_for_the_same_key() {
        let stored = Some(s3(Some("AKIA1"), Some("old")));
        assert_eq!(
            keep_secret(s3(Some("AKIA1"), None), stored.clone()),
            s3(Some("AKIA1"), Some("old"))
        );
        // A new secret replaces it; another key ID does not get it.
        assert_eq!(
            keep_secret(s3(Some("AKIA1"), Some("new")), stored.clone()),
            s3(Some("AKIA1"), Some("new"))
        );
        assert_eq!(
            keep_secret(s3(Some("AKIA2"), None), stored.clone()),
            s3(Some("AKIA2"), None)
        );
        // Another store does not get it.
        let BucketConfig::S3 { access_key_id, .. } = s3(Some("AKIA1"), None) else {
            unreachable!()
        };
        let elsewhere = BucketConfig::S3 {
            bucket: "b".into(),
            region: "r".into(),
            prefix: String::new(),
            endpoint: Some("https://other.example".into()),
            path_style: false,
            access_key_id,
            secret_access_key: None,
        };
        assert_eq!(keep_secret(elsewhere.clone(), stored.clone()), elsewhere);
        // No key ID: credentials from the environment, nothing kept.
        assert_eq!(keep_secret(s3(None, None), stored), s3(None, None));
    }
}
