//! `GET /api/v1/status`: version, uptime, listeners, recording storage,
//! apps.

use axum::Json;
use axum::extract::State;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moat_admin::api::{
    Certificate, Listener, ProviderStatus, RecordingStorage, SignInStatus, Status,
};
use moat_proxy::tls::{CertificateStatus, Source};

use crate::Ctl;
use crate::apps::summaries;

pub async fn status(State(control): State<Ctl>) -> Json<Status> {
    let storage = control.storage_status();
    Json(Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: control.uptime().as_secs(),
        recording_storage: Some(RecordingStorage {
            state: storage.state.as_str().to_owned(),
            path: storage.path.display().to_string(),
            available_bytes: storage.available_bytes,
            minimum_available_capacity: storage.minimum_available_capacity,
            open_recordings: storage.open_recordings as u64,
            queued_events: storage.queued_events as u64,
            queued_bytes: storage.queued_bytes,
        }),
        listeners: control
            .listeners()
            .iter()
            .map(|l| Listener {
                address: l.address.to_string(),
                role: l.role.to_owned(),
            })
            .collect(),
        apps: summaries(&control.runtime().config),
        certificates: control
            .certificates()
            .iter()
            .map(|c| certificate(c, control.clock().now()))
            .collect(),
        sign_in: {
            let (providers, captcha, sessions) = control.sign_in_status();
            Some(SignInStatus {
                sessions: sessions as u64,
                captcha,
                providers: providers
                    .into_iter()
                    .map(|(name, ready, error)| ProviderStatus { name, ready, error })
                    .collect(),
            })
        },
    })
}

fn at(secs: i64) -> String {
    moat_proxy::access_log::rfc3339(UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64))
}

fn certificate(c: &CertificateStatus, now: SystemTime) -> Certificate {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Certificate {
        source: c.source.name().to_owned(),
        files: match &c.source {
            Source::File { cert, key } => {
                Some(vec![cert.display().to_string(), key.display().to_string()])
            }
            _ => None,
        },
        names: c.names.clone(),
        issuer: c.facts.as_ref().map(|f| f.issuer.clone()),
        not_before: c.facts.as_ref().map(|f| at(f.not_before)),
        not_after: c.facts.as_ref().map(|f| at(f.not_after)),
        sha256: c.facts.as_ref().map(|f| f.sha256.clone()),
        directory: match &c.source {
            Source::Acme { directory, .. } => Some(directory.clone()),
            _ => None,
        },
        next_renewal: c.next_renewal.map(at),
        // A failing renewal is overdue whenever its retry is.
        expires_soon: c.facts.as_ref().is_some_and(|f| {
            moat_policy::renewal::expires_soon(
                f.not_after,
                now,
                c.next_renewal.filter(|_| c.error.is_none()),
            )
        }),
        error: c.error.clone(),
    }
}
