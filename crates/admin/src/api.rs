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
    /// Every certificate the HTTPS listener serves, in the order a
    /// handshake considers them.
    #[serde(default)]
    pub certificates: Vec<Certificate>,
    /// How people sign in: providers, captcha, live sessions.
    #[serde(default)]
    pub sign_in: Option<SignInStatus>,
}

/// Sign-in as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInStatus {
    pub sessions: u64,
    /// `pow`, `recaptcha`, `hcaptcha`, `turnstile`, or absent (off).
    #[serde(default)]
    pub captcha: Option<String>,
    #[serde(default)]
    pub providers: Vec<ProviderStatus>,
}

/// An OpenID Connect provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStatus {
    pub name: String,
    /// Discovery succeeded: people can sign in through it.
    pub ready: bool,
    /// Why discovery is failing (retried with backoff).
    #[serde(default)]
    pub error: Option<String>,
}

/// `POST /api/v1/totp/enroll`: the new secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpEnrolment {
    /// Base32, for typing into an authenticator.
    pub secret: String,
    /// `otpauth://totp/…`, for scanning.
    pub otpauth_uri: String,
}

/// `POST /api/v1/totp/confirm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpConfirm {
    pub code: String,
}

/// The recovery codes an enrolment made, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpRecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// A served certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// `file`, `local CA` or `acme`.
    pub source: String,
    /// The certificate and key files, for `file`.
    #[serde(default)]
    pub files: Option<Vec<String>>,
    /// Subject alternative names (DNS names and IP addresses); for an
    /// ACME certificate not obtained yet, the names it is ordered for.
    pub names: Vec<String>,
    /// The rest is absent for an ACME certificate not obtained yet.
    #[serde(default)]
    pub issuer: Option<String>,
    /// RFC 3339, UTC.
    #[serde(default)]
    pub not_before: Option<String>,
    #[serde(default)]
    pub not_after: Option<String>,
    /// SHA-256 of the certificate, `AB:CD:…`.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The ACME directory, for `acme`.
    #[serde(default)]
    pub directory: Option<String>,
    /// When moat next renews it (RFC 3339), for certificates moat renews.
    #[serde(default)]
    pub next_renewal: Option<String>,
    /// Expires within 14 days (or has expired).
    #[serde(default)]
    pub expires_soon: bool,
    /// The last renewal or reload failure; the certificate shown still
    /// serves.
    #[serde(default)]
    pub error: Option<String>,
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
    /// Whether the app's traffic is recorded.
    #[serde(default)]
    pub recording: bool,
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
    pub code: ErrorCode,
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

/// What kind of error an answer is; scripts branch on it. Serialized in
/// snake case (`not_found`, `read_only`, ...); a code this version does
/// not know (a newer server's) reads as [`ErrorCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No such app, recording, bucket, approval or endpoint.
    NotFound,
    /// The request is malformed or names nothing to do.
    BadRequest,
    /// An app definition with bad fields (see `problems`).
    Invalid,
    /// It clashes with what exists (a name, a mount, an app in progress).
    Conflict,
    /// Defined in the config file: change it there.
    ReadOnly,
    /// A recording inside its retention period.
    Retained,
    /// A bucket that cannot be reached, or refused the probe.
    BucketUnavailable,
    /// Recording storage on this node is too low.
    LowStorage,
    /// Credentials missing or wrong (the HTTPS route).
    Unauthorized,
    /// Locked out after failed logins, or one is being checked.
    TooManyAttempts,
    /// moat failed; its log says why.
    Internal,
    #[serde(other)]
    Other,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Invalid => "invalid",
            ErrorCode::Conflict => "conflict",
            ErrorCode::ReadOnly => "read_only",
            ErrorCode::Retained => "retained",
            ErrorCode::BucketUnavailable => "bucket_unavailable",
            ErrorCode::LowStorage => "low_storage",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TooManyAttempts => "too_many_attempts",
            ErrorCode::Internal => "internal",
            ErrorCode::Other => "other",
        }
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
    /// Deletable from then on (RFC 3339); absent: never.
    #[serde(default)]
    pub retain_until: Option<String>,
    /// Deleted by moat from then on (RFC 3339); absent: never.
    #[serde(default)]
    pub delete_after: Option<String>,
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

/// `POST /api/v1/buckets` and `PUT /api/v1/buckets/{name}`: a bucket's
/// settings (`config`, as `moat bucket add` builds them); `name` only
/// when creating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub config: serde_json::Value,
}

/// A bucket as the API shows it: its settings without the secret, or why
/// they cannot be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketView {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /api/v1/recordings/reapply-policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReapplyRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Without it nothing changes: the answer says what would.
    #[serde(default)]
    pub confirm: bool,
}

/// The answer to a reapply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReapplyResult {
    pub recordings: usize,
    pub changed: usize,
    pub would_delete_now: u64,
    pub applied: bool,
}

/// `POST /api/v1/apps/{name}/reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reloaded {
    pub reloaded: String,
}

/// `GET /api/v1/recordings` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingFilter {
    pub app: Option<String>,
    pub user: Option<String>,
    pub client_ip: Option<String>,
    /// `recording`, `complete` or `incomplete`.
    pub state: Option<String>,
    /// Unix milliseconds.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: Option<u32>,
}

/// `GET /api/v1/recordings/{id}/events`: which events, and whether with
/// their bodies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsFilter {
    /// Only the events of this exchange (its heads, bodies, end, error
    /// and WebSocket messages).
    pub req: Option<u64>,
    /// `false` leaves out every body's `data` (its `len` stays): a
    /// player's timeline of a long recording.
    pub bodies: Option<bool>,
}

/// `GET /api/v1/audit` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub limit: Option<u32>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub actor: Option<String>,
    /// Entries at or after this time (Unix milliseconds).
    pub since: Option<i64>,
    /// Entries before this time (Unix milliseconds).
    pub until: Option<i64>,
}

/// `GET /api/v1/apps/{name}/csp/reports` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFilter {
    pub limit: Option<u32>,
}

/// The API's paths, so both sides spell them the same way. Names in a
/// path are percent-encoded here.
pub mod paths {
    use super::{AuditFilter, EventsFilter, RecordingFilter, ReportFilter};

    pub const STATUS: &str = "/api/v1/status";
    pub const TOTP: &str = "/api/v1/totp";
    pub const TOTP_ENROLL: &str = "/api/v1/totp/enroll";
    pub const TOTP_CONFIRM: &str = "/api/v1/totp/confirm";
    pub const APPS: &str = "/api/v1/apps";
    pub const AUDIT: &str = "/api/v1/audit";
    pub const BUCKETS: &str = "/api/v1/buckets";
    pub const RECORDINGS: &str = "/api/v1/recordings";
    pub const REAPPLY_POLICY: &str = "/api/v1/recordings/reapply-policy";

    pub fn app(name: &str) -> String {
        format!("{APPS}/{}", encode(name))
    }
    pub fn app_reload(name: &str) -> String {
        format!("{}/reload", app(name))
    }
    pub fn csp(name: &str) -> String {
        format!("{}/csp", app(name))
    }
    pub fn csp_approve(name: &str) -> String {
        format!("{}/csp/approve", app(name))
    }
    pub fn csp_revoke(name: &str) -> String {
        format!("{}/csp/revoke", app(name))
    }
    pub fn csp_reports(name: &str, f: &ReportFilter) -> String {
        format!(
            "{}/csp/reports{}",
            app(name),
            query(&[("limit", f.limit.map(|l| l.to_string()))])
        )
    }
    pub fn bucket(name: &str) -> String {
        format!("{BUCKETS}/{}", encode(name))
    }
    pub fn recording(id: &str) -> String {
        format!("{RECORDINGS}/{}", encode(id))
    }
    pub fn recording_verify(id: &str) -> String {
        format!("{}/verify", recording(id))
    }
    pub fn recording_events(id: &str, f: &EventsFilter) -> String {
        format!(
            "{}/events{}",
            recording(id),
            query(&[
                ("req", f.req.map(|v| v.to_string())),
                ("bodies", f.bodies.map(|v| v.to_string())),
            ])
        )
    }
    pub fn recording_har(id: &str) -> String {
        format!("{}/har", recording(id))
    }
    pub fn recordings(f: &RecordingFilter) -> String {
        format!(
            "{RECORDINGS}{}",
            query(&[
                ("app", f.app.clone()),
                ("user", f.user.clone()),
                ("client_ip", f.client_ip.clone()),
                ("state", f.state.clone()),
                ("since", f.since.map(|v| v.to_string())),
                ("until", f.until.map(|v| v.to_string())),
                ("limit", f.limit.map(|v| v.to_string())),
            ])
        )
    }
    pub fn audit(f: &AuditFilter) -> String {
        format!(
            "{AUDIT}{}",
            query(&[
                ("limit", f.limit.map(|v| v.to_string())),
                ("action", f.action.clone()),
                ("target", f.target.clone()),
                ("actor", f.actor.clone()),
                ("since", f.since.map(|v| v.to_string())),
                ("until", f.until.map(|v| v.to_string())),
            ])
        )
    }

    fn query(pairs: &[(&str, Option<String>)]) -> String {
        let parts: Vec<String> = pairs
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }

    /// Percent-encodes everything but unreserved characters: a name may
    /// hold anything, and reaches the server as typed.
    pub fn encode(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn paths_encode_names_and_queries() {
            assert_eq!(app("a b/c"), "/api/v1/apps/a%20b%2Fc");
            assert_eq!(csp_approve("wiki"), "/api/v1/apps/wiki/csp/approve");
            assert_eq!(
                recordings(&RecordingFilter::default()),
                "/api/v1/recordings"
            );
            let f = RecordingFilter {
                app: Some("w&x".into()),
                limit: Some(5),
                ..Default::default()
            };
            assert_eq!(recordings(&f), "/api/v1/recordings?app=w%26x&limit=5");
            assert_eq!(
                audit(&AuditFilter {
                    limit: Some(3),
                    action: Some("app.create".into()),
                    ..Default::default()
                }),
                "/api/v1/audit?limit=3&action=app.create"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_keep_their_wire_names() {
        for code in [
            ErrorCode::NotFound,
            ErrorCode::BadRequest,
            ErrorCode::Invalid,
            ErrorCode::Conflict,
            ErrorCode::ReadOnly,
            ErrorCode::Retained,
            ErrorCode::BucketUnavailable,
            ErrorCode::LowStorage,
            ErrorCode::Unauthorized,
            ErrorCode::TooManyAttempts,
            ErrorCode::Internal,
        ] {
            let wire = serde_json::to_string(&code).unwrap();
            assert_eq!(wire, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&wire).unwrap(), code);
        }
        assert_eq!(
            serde_json::from_str::<ErrorCode>("\"from_the_future\"").unwrap(),
            ErrorCode::Other
        );
    }
}
