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
    /// Local storage for recordings.
    #[serde(default)]
    pub recording_storage: Option<RecordingStorage>,
}

/// The state of local recording storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingStorage {
    /// `available`, `low storage`, `critically low storage`,
    /// `out of storage`, `not configured` (no app records) or `unknown`.
    pub state: String,
    pub path: String,
    pub available_bytes: Option<u64>,
    pub minimum_available_capacity: u64,
    /// Recordings in progress.
    #[serde(default)]
    pub open_recordings: u64,
    /// Events waiting for the recorder, and their bytes (bounded; see
    /// docs/recording-format.md).
    #[serde(default)]
    pub queued_events: u64,
    #[serde(default)]
    pub queued_bytes: u64,
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
    /// through the API), `api` (created through the API, kept in the
    /// metadata store) or `built-in`.
    pub defined_in: String,
    /// `system` (sign in through moat) or `none`.
    #[serde(default)]
    pub auth: String,
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
    /// The signed-in user is also sent as a signed JWT (`X-Moat-Identity`).
    #[serde(default)]
    pub identity_jwt: bool,
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
    /// `not_found`, `bad_request`, `invalid`, `conflict`, `read_only`,
    /// `unauthorized`, `too_many_attempts`, `internal`.
    pub code: String,
    /// For `invalid`: one entry per bad field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<FieldProblem>,
}

impl ApiError {
    /// The sentence, followed by one line per problem.
    pub fn describe(&self) -> String {
        let mut s = self.error.clone();
        for p in &self.problems {
            s.push_str(&format!("\n  {}: {}", p.key, p.message));
            if let Some(fix) = &p.fix {
                s.push_str(&format!(" (fix: {fix})"));
            }
        }
        s
    }
}

/// One bad field of an app definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    pub key: String,
    pub message: String,
    pub fix: Option<String>,
}

/// One admin change in `GET /api/v1/audit`, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    /// RFC 3339, UTC.
    pub time: String,
    /// Who: a local user (over the socket) or the admin user (over TCP).
    pub actor: String,
    /// From where: `unix:uid=N` or `tcp:ADDRESS`.
    pub source: String,
    /// `app.create`, `app.update`, `app.delete`, `app.reload`.
    pub action: String,
    pub target: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// `GET /api/v1/apps/{name}/csp`: an app's effective policy, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspExplain {
    pub app: String,
    /// `Content-Security-Policy` or `Content-Security-Policy-Report-Only`.
    pub header: String,
    /// The header's value.
    pub policy: String,
    pub directives: Vec<CspDirective>,
    /// Requested by the manifest, waiting for an approval.
    pub pending: Vec<CspPending>,
    /// Requested but dangerous; applied only if the admin layer lists them
    /// in allow_unsafe.
    pub refused: Vec<CspRefused>,
    /// Requested for a directive nothing restricts: allowed already.
    pub unrestricted: Vec<CspPair>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspDirective {
    pub directive: String,
    pub sources: Vec<CspSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspSource {
    pub source: String,
    /// `base`, `manifest`, `admin` or `moat`.
    pub layer: String,
    /// How a manifest's request was approved, or `not needed`.
    pub approval: String,
    /// Copied from this directive (CSP fallback) when the directive was made.
    pub inherited_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspPair {
    pub directive: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspPending {
    pub directive: String,
    pub source: String,
    /// The command that approves it.
    pub approve_with: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspRefused {
    pub directive: String,
    pub source: String,
    pub reason: String,
}

/// Body of `POST /api/v1/apps/{name}/csp/approve` and `.../revoke`: one
/// source (in every directive that requests it, or in `directive` only),
/// or `all` pending requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspChangeRequest {
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub directive: Option<String>,
    #[serde(default)]
    pub all: bool,
}

impl CspChangeRequest {
    /// Whether the change names this directive and source.
    pub fn names(&self, directive: &str, source: &str) -> bool {
        self.all
            || (self.source.as_deref() == Some(source)
                && self.directive.as_deref().is_none_or(|d| d == directive))
    }
}

/// The answer to an approval or revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspChange {
    /// "DIRECTIVE SOURCE" entries approved or revoked.
    pub changed: Vec<String>,
    /// The app's policy now.
    pub policy: String,
}

/// One distinct violation in `GET /api/v1/apps/{name}/csp/reports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspViolation {
    /// The directive that blocked, e.g. `script-src-elem`.
    pub directive: String,
    /// What was blocked: a URL without its query, or `inline`, `eval`.
    pub blocked: String,
    /// The page, without its query.
    pub document: String,
    /// `enforce` (blocked) or `report` (report-only: would have been).
    pub disposition: String,
    pub count: i64,
    pub first_seen: String,
    pub last_seen: String,
}

/// One recording in `GET /api/v1/recordings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingSummary {
    pub id: String,
    pub app: String,
    pub user: Option<String>,
    pub client_ip: String,
    pub user_agent: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// `recording` (in progress), `complete` or `incomplete`.
    pub state: String,
    pub closed_because: Option<String>,
    pub events: i64,
    pub bytes: i64,
    /// `local` (more to come: a storage bucket).
    pub location: String,
}

/// `POST /api/v1/recordings/{id}/verify`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResult {
    pub id: String,
    pub ok: bool,
    /// When not ok: the file that failed, and why.
    pub file: Option<String>,
    pub error: Option<String>,
    pub state: Option<String>,
    pub chunks: Option<usize>,
    pub events: Option<u64>,
}
