//! `GET /api/v1/status`: version, uptime, listeners, recording storage,
//! apps.

use axum::Json;
use axum::extract::State;
use moat_admin::api::{Listener, RecordingStorage, Status};

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
    })
}
