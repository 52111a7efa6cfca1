//! The CLI commands that talk to a running moat over its admin socket.

use std::path::PathBuf;
use std::process::ExitCode;

use http::Method;
use moat_admin::api::{
    AppDetail, AppSummary, AuditEntry, CspChange, CspChangeRequest, CspExplain, CspViolation,
    RecordingSummary, Status, VerifyResult,
};
use moat_admin::client::{self, AdminClient, ClientError};

/// Where to find the server, and how to print.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The admin socket (default: DATA_DIR/moat.sock).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// The data directory of the moat to talk to.
    #[arg(long, env = "MOAT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    json: bool,
    /// Client settings for a remote moat (server_uri, admin_user,
    /// [client] admin_password, ca_file, skip_cert_check).
    #[arg(long, env = "MOAT_CLIENT_CONFIG")]
    client_config: Option<PathBuf>,
}

impl Target {
    /// The local socket when --socket or --data-dir is given or no
    /// server_uri is configured; else the remote server.
    fn client(&self) -> Result<AdminClient, String> {
        if self.socket.is_none() && self.data_dir.is_none() {
            if let Some(remote) = crate::client_config::load(self.client_config.as_deref())? {
                if remote.skip_cert_check {
                    eprintln!(
                        "moat: warning: skip_cert_check is on; the server is not verified and the password can be intercepted"
                    );
                }
                let tls = client::tls_config(remote.ca_file.as_deref(), remote.skip_cert_check)?;
                return Ok(AdminClient::https(client::Remote {
                    server_uri: remote.server_uri,
                    user: remote.admin_user,
                    password: remote.admin_password,
                    tls,
                }));
            }
        }
        let socket = self.socket.clone().unwrap_or_else(|| {
            self.data_dir
                .clone()
                .unwrap_or_else(crate::data_dir::default)
                .join("moat.sock")
        });
        Ok(AdminClient::unix(socket))
    }
}

pub enum Request<'a> {
    Status,
    AppList,
    AppShow(&'a str),
    AppCreate(serde_json::Value),
    /// Only the settings to change (a JSON merge patch).
    AppUpdate(&'a str, serde_json::Value),
    AppDelete(&'a str),
    AppReload(&'a str),
    AuditList {
        limit: u32,
        action: Option<String>,
        app: Option<String>,
    },
    CspShow(&'a str),
    /// Any call; the answer is printed as JSON.
    Call(Method, String, Option<serde_json::Value>),
    /// The query string of the list.
    RecordingList(String),
    RecordingShow(&'a str),
    RecordingVerify(&'a str),
    RecordingHar(&'a str, &'a std::path::Path),
    CspReports(&'a str, u32),
    CspChange {
        app: &'a str,
        approve: bool,
        body: CspChangeRequest,
    },
}

/// Runs one request and prints the answer. Errors go to stderr with the
/// exit code of their kind.
pub fn run(target: &Target, request: Request<'_>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("moat: {e}");
            return ExitCode::from(1);
        }
    };
    let client = match target.client() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("moat: {e}");
            return ExitCode::from(1);
        }
    };
    // Set where a request succeeded but its answer means failure (a
    // recording that does not verify).
    let mut code = ExitCode::SUCCESS;
    let result = rt.block_on(async {
        match request {
            Request::Status => client
                .get::<Status>("/api/v1/status")
                .await
                .map(|s| print(target, &s, status_text)),
            Request::AppList => client
                .get::<Vec<AppSummary>>("/api/v1/apps")
                .await
                .map(|a| print(target, &a, |a| apps_text(a))),
            Request::AppShow(name) => client
                .get::<AppDetail>(&app_path(name))
                .await
                .map(|a| print(target, &a, app_text)),
            Request::AppCreate(body) => client
                .call::<AppDetail>(Method::POST, "/api/v1/apps", Some(&body))
                .await
                .map(|a| {
                    print(target, &a, |a| {
                        format!("created app {}\n\n{}", a.summary.name, app_text(a))
                    })
                }),
            Request::AppUpdate(name, patch) => client
                .call::<AppDetail>(Method::PATCH, &app_path(name), Some(&patch))
                .await
                .map(|a| {
                    print(target, &a, |a| {
                        format!("updated app {}\n\n{}", a.summary.name, app_text(a))
                    })
                }),
            Request::AppDelete(name) => client
                .call::<serde_json::Value>(Method::DELETE, &app_path(name), None)
                .await
                .map(|_| {
                    let done = serde_json::json!({"deleted": name});
                    print(target, &done, |_| format!("deleted app {name}\n"))
                }),
            Request::AppReload(name) => client
                .call::<serde_json::Value>(
                    Method::POST,
                    &format!("{}/reload", app_path(name)),
                    None,
                )
                .await
                .map(|v| print(target, &v, |_| format!("reloaded app {name}\n"))),
            Request::CspShow(app) => client
                .get::<CspExplain>(&format!("{}/csp", app_path(app)))
                .await
                .map(|c| print(target, &c, csp_text)),
            Request::Call(method, path, body) => client
                .call::<serde_json::Value>(method, &path, body.as_ref())
                .await
                .map(|v| {
                    if !v.is_null() {
                        println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
                    }
                }),
            Request::RecordingList(q) => client
                .get::<Vec<RecordingSummary>>(&format!("/api/v1/recordings?{q}"))
                .await
                .map(|r| print(target, &r, |r| recordings_text(r))),
            Request::RecordingShow(id) => client
                .get::<RecordingSummary>(&format!("/api/v1/recordings/{}", percent_encode(id)))
                .await
                .map(|r| print(target, &r, |r| recordings_text(std::slice::from_ref(r)))),
            Request::RecordingVerify(id) => {
                let v = client
                    .call::<VerifyResult>(
                        Method::POST,
                        &format!("/api/v1/recordings/{}/verify", percent_encode(id)),
                        None,
                    )
                    .await;
                match v {
                    Ok(v) if !v.ok => {
                        print(target, &v, |v| format!("FAILED: {}\n", v.error.clone().unwrap_or_default()));
                        code = ExitCode::from(1);
                        Ok(())
                    }
                    other => other.map(|v| {
                        print(target, &v, |v| {
                            format!(
                                "OK: recording {} is {} ({} chunks, {} events): every chunk's SHA-256 and the manifest's signature check out\n",
                                v.id,
                                v.state.clone().unwrap_or_default(),
                                v.chunks.unwrap_or(0),
                                v.events.unwrap_or(0)
                            )
                        })
                    }),
                }
            }
            Request::RecordingHar(id, file) => {
                let har = client
                    .get::<serde_json::Value>(&format!("/api/v1/recordings/{}/har", percent_encode(id)))
                    .await;
                match har {
                    Ok(h) => {
                        let text = serde_json::to_string_pretty(&h).expect("serializes");
                        if let Err(e) = std::fs::write(file, text) {
                            eprintln!("moat: cannot write {}: {e}", file.display());
                            code = ExitCode::from(1);
                            return Ok(());
                        }
                        let n = h["log"]["entries"].as_array().map(Vec::len).unwrap_or(0);
                        println!("wrote {} ({n} entries)", file.display());
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Request::CspReports(app, limit) => client
                .get::<Vec<CspViolation>>(&format!("{}/csp/reports?limit={limit}", app_path(app)))
                .await
                .map(|r| {
                    print(target, &r, |r| {
                        table(
                            &["LAST SEEN", "COUNT", "DIRECTIVE", "BLOCKED", "PAGE", "MODE"],
                            r.iter()
                                .map(|v| {
                                    vec![
                                        v.last_seen.clone(),
                                        v.count.to_string(),
                                        v.directive.clone(),
                                        v.blocked.clone(),
                                        v.document.clone(),
                                        v.disposition.clone(),
                                    ]
                                })
                                .collect(),
                        )
                    })
                }),
            Request::CspChange { app, approve, body } => {
                let verb = if approve { "approve" } else { "revoke" };
                let body = serde_json::to_value(&body).expect("serializes");
                client
                    .call::<CspChange>(
                        Method::POST,
                        &format!("{}/csp/{verb}", app_path(app)),
                        Some(&body),
                    )
                    .await
                    .map(|c| {
                        print(target, &c, |c| {
                            let done = if approve { "approved" } else { "revoked" };
                            let mut out = String::new();
                            for ch in &c.changed {
                                out.push_str(&format!("{done}: {ch}\n"));
                            }
                            out.push_str(&format!("policy now: {}\n", c.policy));
                            out
                        })
                    })
            }
            Request::AuditList { limit, action, app } => {
                let mut path = format!("/api/v1/audit?limit={limit}");
                if let Some(a) = action {
                    path.push_str(&format!("&action={}", percent_encode(&a)));
                }
                if let Some(a) = app {
                    path.push_str(&format!("&target={}", percent_encode(&a)));
                }
                client
                    .get::<Vec<AuditEntry>>(&path)
                    .await
                    .map(|e| print(target, &e, |e| audit_text(e)))
            }
        }
    });
    match result {
        Ok(()) => code,
        Err(e) => {
            eprintln!("moat: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn csp_text(c: &CspExplain) -> String {
    let mut out = format!("{} of app {}:\n  {}\n\n", c.header, c.app, c.policy);
    let mut rows = Vec::new();
    for d in &c.directives {
        for s in &d.sources {
            let layer = match &s.inherited_from {
                Some(from) => format!("{} (via {from})", s.layer),
                None => s.layer.clone(),
            };
            rows.push(vec![
                d.directive.clone(),
                s.source.clone(),
                layer,
                s.approval.clone(),
            ]);
        }
    }
    out.push_str(&table(&["DIRECTIVE", "SOURCE", "LAYER", "APPROVAL"], rows));
    if !c.pending.is_empty() {
        out.push_str("\nRequested by the manifest, not applied until approved:\n");
        for p in &c.pending {
            out.push_str(&format!(
                "  {} {}\n    approve: {}\n",
                p.directive, p.source, p.approve_with
            ));
        }
    }
    if !c.refused.is_empty() {
        out.push_str("\nRequested, refused as dangerous (only allow_unsafe in the app's admin layer accepts them):\n");
        for r in &c.refused {
            out.push_str(&format!("  {} {}: {}\n", r.directive, r.source, r.reason));
        }
    }
    if !c.unrestricted.is_empty() {
        out.push_str(
            "\nRequested for directives the policy does not restrict (allowed already):\n",
        );
        for u in &c.unrestricted {
            out.push_str(&format!("  {} {}\n", u.directive, u.source));
        }
    }
    out
}

fn recordings_text(r: &[RecordingSummary]) -> String {
    table(
        &[
            "ID", "APP", "USER", "CLIENT", "STARTED", "STATE", "EVENTS", "BYTES",
        ],
        r.iter()
            .map(|x| {
                vec![
                    x.id.clone(),
                    x.app.clone(),
                    x.user.clone().unwrap_or_else(|| "-".into()),
                    x.client_ip.clone(),
                    x.started_at.clone(),
                    x.state.clone(),
                    x.events.to_string(),
                    x.bytes.to_string(),
                ]
            })
            .collect(),
    )
}

fn app_path(name: &str) -> String {
    format!("/api/v1/apps/{}", percent_encode(name))
}

fn audit_text(entries: &[AuditEntry]) -> String {
    table(
        &["TIME", "ACTOR", "SOURCE", "ACTION", "TARGET"],
        entries
            .iter()
            .map(|e| {
                vec![
                    e.time.clone(),
                    e.actor.clone(),
                    e.source.clone(),
                    e.action.clone(),
                    e.target.clone(),
                ]
            })
            .collect(),
    )
}

fn exit_code(e: &ClientError) -> u8 {
    e.exit_code()
}

fn print<T: serde::Serialize>(target: &Target, value: &T, text: impl Fn(&T) -> String) {
    if target.json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("API values serialize")
        );
    } else {
        print!("{}", text(value));
    }
}

fn status_text(s: &Status) -> String {
    let mut out = format!("moat {}, up {}\n", s.version, uptime(s.uptime_seconds));
    if let Some(r) = &s.recording_storage {
        out.push_str(&format!(
            "recording storage: {} ({}, {} free, minimum {})\n",
            r.state,
            r.path,
            r.available_bytes
                .map(moat_config_size)
                .unwrap_or_else(|| "unknown".into()),
            moat_config_size(r.minimum_available_capacity)
        ));
        out.push_str(&format!(
            "recordings: {} open, recorder queue {} events ({})\n",
            r.open_recordings,
            r.queued_events,
            moat_config_size(r.queued_bytes)
        ));
    }
    out.push('\n');
    out.push_str(&table(
        &["LISTENER", "ROLE"],
        s.listeners
            .iter()
            .map(|l| vec![l.address.clone(), l.role.clone()])
            .collect(),
    ));
    out.push('\n');
    out.push_str(&apps_text(&s.apps));
    out
}

fn apps_text(apps: &[AppSummary]) -> String {
    table(
        &["APP", "MOUNT", "KIND", "TARGET", "DEFINED IN"],
        apps.iter()
            .map(|a| {
                vec![
                    a.name.clone(),
                    mount(a),
                    a.kind.clone(),
                    a.target.clone(),
                    a.defined_in.clone(),
                ]
            })
            .collect(),
    )
}

fn app_text(a: &AppDetail) -> String {
    let s = &a.summary;
    let rows = [
        ("name", s.name.clone()),
        ("mount", mount(s)),
        ("kind", s.kind.clone()),
        ("target", s.target.clone()),
        ("defined in", s.defined_in.clone()),
        ("auth", s.auth.clone()),
        ("identity jwt", a.identity_jwt.to_string()),
        ("preserve host", a.preserve_host.to_string()),
        ("strip path", a.strip_path.to_string()),
        ("h2c", a.h2c.to_string()),
        ("max body size", moat_config_size(a.max_body_size)),
        ("connect timeout", a.timeouts.connect.clone()),
        (
            "response header timeout",
            a.timeouts.response_header.clone(),
        ),
        ("idle timeout", a.timeouts.idle.clone()),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

fn moat_config_size(n: u64) -> String {
    // The same notation as the config file.
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    units
        .iter()
        .find(|(_, m)| n != 0 && n % m == 0)
        .map(|(u, m)| format!("{}{u}", n / m))
        .unwrap_or_else(|| n.to_string())
}

fn mount(a: &AppSummary) -> String {
    match &a.host {
        Some(h) => format!("{h}{}", a.path),
        None => a.path.clone(),
    }
}

fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Left-aligned columns, two spaces apart.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// App names are letters, digits, '-' and '_', but a typo may hold
/// anything; encode so it reaches the server as typed.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "BB"],
            vec![
                vec!["long".into(), "x".into()],
                vec!["s".into(), "yy".into()],
            ],
        );
        assert_eq!(t, "A     BB\nlong  x\ns     yy\n");
    }

    #[test]
    fn sizes_and_uptimes() {
        assert_eq!(moat_config_size(10 << 20), "10MiB");
        assert_eq!(moat_config_size(1000), "1000");
        assert_eq!(uptime(59), "59s");
        assert_eq!(uptime(3725), "1h 2m");
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }
}
