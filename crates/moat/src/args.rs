//! The command line: every command, its arguments and their help. What a
//! command does is in `commands/` (and `serve.rs` for `moat serve`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "moat",
    version,
    about = "A security gateway for self-hosted web apps."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the configured apps (the built-in welcome app when none are).
    Serve {
        /// Config file; without one moat runs on its embedded default.
        #[arg(short, long, env = "MOAT_CONFIG")]
        config: Option<PathBuf>,
        /// State directory (certificates, admin socket); overrides data_dir
        /// in the config.
        #[arg(long, env = "MOAT_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Check or print configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a random password and its bcrypt hash, for
    /// [security] admin_password_bcrypt.
    Password {
        /// Hash a password you type (not echoed) instead; prints the hash.
        #[arg(long)]
        prompt: bool,
    },
    /// Show a running moat: version, uptime, listeners and apps.
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// List, inspect, create, change and delete the apps of a running moat.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Explain, approve and revoke the sources of an app's
    /// Content-Security-Policy.
    Csp {
        #[command(subcommand)]
        command: CspCommand,
    },
    /// Storage buckets recordings move to (S3-compatible, or a folder).
    Bucket {
        #[command(subcommand)]
        command: BucketCommand,
    },
    /// Find, check and export recorded sessions.
    Recordings {
        #[command(subcommand)]
        command: RecordingsCommand,
    },
    /// The record of every admin change.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The system account's second factor (TOTP): enroll or remove it.
    Totp {
        #[command(subcommand)]
        command: TotpCommand,
    },
    /// moat's local certificate authority: show, export or trust its root.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TotpCommand {
    /// Prints an otpauth:// URI and a QR code for an authenticator app,
    /// asks for a code to confirm, and prints single-use recovery codes.
    Enroll {
        /// The confirming code, instead of asking for it.
        #[arg(long)]
        code: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Removes the second factor (the password alone signs in again,
    /// unless [auth] require_totp is on).
    Remove {
        #[command(flatten)]
        target: Target,
    },
}

/// Where the data directory is, as `moat serve` finds it.
#[derive(Debug, clap::Args)]
pub struct DataDir {
    /// Config file whose data_dir to use.
    #[arg(short, long, env = "MOAT_CONFIG")]
    pub config: Option<PathBuf>,
    /// State directory; overrides data_dir in the config.
    #[arg(long, env = "MOAT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// The root's path, SHA-256 fingerprint, names it may issue for and
    /// expiry.
    Show {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Write the root certificate (PEM) to a file, or to standard output.
    Export {
        /// File to write; standard output without one.
        #[arg(short, long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Install the root into the system trust store (Debian's
    /// update-ca-certificates, as root), or print the commands that would.
    Trust {
        /// Only print the commands.
        #[arg(long)]
        print: bool,
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Debug, Subcommand)]
pub enum CspCommand {
    /// The app's effective policy, where each source came from, and the
    /// requests waiting for approval.
    Show {
        app: String,
        #[command(flatten)]
        target: Target,
    },
    /// Approve a source the app's manifest requests (or --all of them).
    Approve {
        app: String,
        /// The source, exactly as requested (e.g. https://api.example.com/v1/).
        #[arg(required_unless_present = "all")]
        source: Option<String>,
        /// Only in this directive (default: every directive requesting it).
        #[arg(long)]
        directive: Option<String>,
        /// Every pending request of the app.
        #[arg(long, conflicts_with = "source")]
        all: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Violations browsers reported for the app, most recent first.
    Reports {
        app: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        target: Target,
    },
    /// Take back an approval given with `moat csp approve`.
    Revoke {
        app: String,
        #[arg(required_unless_present = "all")]
        source: Option<String>,
        #[arg(long)]
        directive: Option<String>,
        /// Every approval of the app.
        #[arg(long, conflicts_with = "source")]
        all: bool,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
pub enum BucketCommand {
    /// Add a bucket; moat proves access (writes, reads and deletes a probe
    /// object) and refuses the bucket if it cannot.
    Create {
        name: String,
        #[command(flatten)]
        settings: BucketSettings,
        #[command(flatten)]
        target: Target,
    },
    /// Every bucket (secrets are never shown).
    List {
        #[command(flatten)]
        target: Target,
    },
    Show {
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Replace a bucket's settings (proved again).
    Update {
        name: String,
        #[command(flatten)]
        settings: BucketSettings,
        #[command(flatten)]
        target: Target,
    },
    Delete {
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

/// A bucket's settings.
#[derive(Debug, clap::Args)]
pub struct BucketSettings {
    /// s3 (S3 and S3-compatible stores) or filesystem (a folder).
    #[arg(long, value_parser = ["s3", "filesystem"])]
    pub(crate) provider: String,
    /// s3: the bucket's name.
    #[arg(long)]
    pub(crate) bucket: Option<String>,
    /// s3: the region.
    #[arg(long, default_value = "us-east-1")]
    pub(crate) region: String,
    /// Objects go under this prefix.
    #[arg(long, default_value = "")]
    pub(crate) prefix: String,
    /// s3: the endpoint of an S3-compatible store, e.g. http://127.0.0.1:9000.
    #[arg(long)]
    pub(crate) endpoint: Option<String>,
    /// s3: path-style requests (most S3-compatible stores want them).
    #[arg(long)]
    pub(crate) path_style: bool,
    /// s3: a static access key; without one, credentials come from the
    /// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
    #[arg(long)]
    pub(crate) access_key_id: Option<String>,
    #[arg(long, env = "MOAT_BUCKET_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub(crate) secret_access_key: Option<String>,
    /// filesystem: the folder.
    #[arg(long)]
    pub(crate) path: Option<String>,
}

impl BucketSettings {
    /// The settings as the API takes them (`BucketRequest::config`).
    pub fn to_json(&self) -> anyhow::Result<serde_json::Value> {
        Ok(match self.provider.as_str() {
            "s3" => serde_json::json!({
                "provider": "s3",
                "bucket": self.bucket.clone().context("--bucket is needed for provider s3")?,
                "region": self.region,
                "prefix": self.prefix,
                "endpoint": self.endpoint,
                "path_style": self.path_style,
                "access_key_id": self.access_key_id,
                "secret_access_key": self.secret_access_key,
            }),
            _ => serde_json::json!({
                "provider": "filesystem",
                "path": self.path.clone().context("--path is needed for provider filesystem")?,
                "prefix": self.prefix,
            }),
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum RecordingsCommand {
    /// Recordings, newest first.
    List {
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        client_ip: Option<String>,
        /// recording, complete or incomplete.
        #[arg(long)]
        state: Option<String>,
        /// Started at or after (2026-11-24 or 2026-11-24T09:30:00Z, UTC).
        #[arg(long, value_parser = parse_time)]
        since: Option<i64>,
        /// Started at or before.
        #[arg(long, value_parser = parse_time)]
        until: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        target: Target,
    },
    /// One recording.
    Show {
        id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Check every chunk's SHA-256 and the manifest's signature; exit 1 and
    /// name the file when anything was altered.
    Verify {
        id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Delete a closed recording (refused inside its retention period).
    Delete {
        id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Apply today's storage policies to existing recordings. Without
    /// --confirm, only shows how many would change and how many the reaper
    /// would then delete at once (there is no undo).
    ReapplyPolicy {
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        confirm: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Write a recording as HAR 1.2 (browser developer tools import it).
    Export {
        id: String,
        /// The file to write.
        #[arg(long, value_name = "FILE")]
        har: PathBuf,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Admin changes, newest first.
    List {
        /// At most this many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only this action (app.create, app.update, app.delete, app.reload).
        #[arg(long)]
        action: Option<String>,
        /// Only changes to this app.
        #[arg(long)]
        app: Option<String>,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Every app, with its mount and target.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// One app's settings.
    Show {
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Create an app (kept in moat's metadata store; survives restarts).
    Create {
        name: String,
        #[command(flatten)]
        fields: AppFields,
        #[command(flatten)]
        target: Target,
    },
    /// Change settings of an app created with `moat app create`; settings
    /// not given stay as they are.
    Update {
        name: String,
        #[command(flatten)]
        fields: AppFields,
        #[command(flatten)]
        target: Target,
    },
    /// Delete an app created with `moat app create`.
    Delete {
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Read an app's bundle manifest again and reconnect to its upstream.
    Reload {
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

/// An app's settings, as in an [[apps]] entry of the config file.
#[derive(Debug, clap::Args)]
pub struct AppFields {
    /// Path prefix the app is mounted on, e.g. /wiki.
    #[arg(long)]
    pub(crate) path: Option<String>,
    /// Host the app is mounted on, e.g. wiki.example.com.
    #[arg(long)]
    pub(crate) host: Option<String>,
    /// The upstream HTTP service, e.g. http://127.0.0.1:3000.
    #[arg(long, conflicts_with = "static_dir")]
    pub(crate) upstream: Option<String>,
    /// A web-app bundle folder (absolute path) holding manifest.json.
    #[arg(long = "static", value_name = "DIR")]
    pub(crate) static_dir: Option<String>,
    /// system (sign in through moat) or none (open to anyone).
    #[arg(long, value_parser = ["system", "none"])]
    pub(crate) auth: Option<String>,
    /// Send the signed-in user as a signed JWT too (X-Moat-Identity).
    #[arg(long, value_name = "BOOL")]
    pub(crate) identity_jwt: Option<bool>,
    /// Remove the path prefix before proxying.
    #[arg(long, value_name = "BOOL")]
    pub(crate) strip_path: Option<bool>,
    /// Send the client's Host header upstream.
    #[arg(long, value_name = "BOOL")]
    pub(crate) preserve_host: Option<bool>,
    /// Speak HTTP/2 cleartext to the upstream.
    #[arg(long, value_name = "BOOL")]
    h2c: Option<bool>,
    /// Largest request body, e.g. 10MiB.
    #[arg(long, value_name = "SIZE")]
    pub(crate) max_body_size: Option<String>,
}

impl AppFields {
    /// The given settings as JSON, in the config file's field names.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: Option<serde_json::Value>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        put("path", self.path.clone().map(Into::into));
        put("host", self.host.clone().map(Into::into));
        put("upstream", self.upstream.clone().map(Into::into));
        put("static", self.static_dir.clone().map(Into::into));
        put("auth", self.auth.clone().map(Into::into));
        put("identity_jwt", self.identity_jwt.map(Into::into));
        put("strip_path", self.strip_path.map(Into::into));
        put("preserve_host", self.preserve_host.map(Into::into));
        put("h2c", self.h2c.map(Into::into));
        put("max_body_size", self.max_body_size.clone().map(Into::into));
        serde_json::Value::Object(m)
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file (and the certificate files it names) without serving.
    Check { file: PathBuf },
    /// Print the full default config, with a comment on every key.
    Default,
}

/// Where to find the server, and how to print.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The admin socket (default: DATA_DIR/moat.sock).
    #[arg(long)]
    pub(crate) socket: Option<PathBuf>,
    /// The data directory of the moat to talk to.
    #[arg(long, env = "MOAT_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Client settings for a remote moat (server_uri, admin_user,
    /// [client] admin_password, ca_file, skip_cert_check).
    #[arg(long, env = "MOAT_CLIENT_CONFIG")]
    pub(crate) client_config: Option<PathBuf>,
}

/// `2026-11-24`, `2026-11-24T09:30`, `2026-11-24T09:30:00Z` (UTC) → Unix
/// milliseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a date: write 2026-11-24 or 2026-11-24T09:30:00Z (UTC)");
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00:00"));
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [y, m, day] = d[..] else {
        return Err(bad());
    };
    let (h, min, sec) = match t[..] {
        [h, m] => (h, m, 0),
        [h, m, s] => (h, m, s),
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&h)
        || !(0..60).contains(&min)
        || !(0..61).contains(&sec)
    {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 86_400) + h * 3600 + min * 60 + sec) * 1000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times() {
        assert_eq!(super::parse_time("1970-01-01").unwrap(), 0);
        assert_eq!(
            super::parse_time("2026-11-18T11:06:40Z").unwrap(),
            1_795_000_000_000
        );
        assert_eq!(
            super::parse_time("2000-02-29T00:00").unwrap(),
            951_782_400_000
        );
        assert!(super::parse_time("yesterday").is_err());
        assert!(super::parse_time("2026-13-01").is_err());
    }
}
