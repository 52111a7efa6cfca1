//! The bodies of `/api/v1/...`. Field names are the JSON names; adding a
//! field is compatible, renaming or removing one needs `/api/v2`.

use serde::{Deserialize, Serialize};

/// `GET /api/v1/status`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub uptime_seconds: u64,
    pub listeners: Vec<Listener>,
    pub apps: Vec<AppSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub address: String,
    /// `https`, `http` (serving apps without TLS) or `http-redirect`.
    pub role: String,
}

/// One app in `GET /api/v1/apps` and `GET /api/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSummary {
    pub name: String,
    pub host: Option<String>,
    pub path: String,
    /// `upstream`, `static` or `built-in`.
    pub kind: String,
    /// The upstream URL or the bundle folder.
    pub target: String,
    /// Where the app is defined: `config` (the config file, read-only
    /// through the API) or `built-in`.
    pub defined_in: String,
}

/// `GET /api/v1/apps/{name}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppDetail {
    #[serde(flatten)]
    pub summary: AppSummary,
    pub preserve_host: bool,
    pub strip_path: bool,
    pub h2c: bool,
    pub max_body_size: u64,
    pub timeouts: Timeouts,
}

/// Durations in the config file's notation (`5s`, `1m30s`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    pub connect: String,
    pub response_header: String,
    pub idle: String,
}

/// Every error response: a sentence for people and a code for scripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    /// `not_found`, `bad_request`, `internal`.
    pub code: String,
}
