//! What each command does. `moat serve` is `serve.rs`; every other
//! command that talks to a running moat goes through [`remote`], which
//! picks the client (the admin socket, or a remote moat from the client
//! config), runs the command's calls with the API's typed bodies and
//! paths (`moat_admin::api`), and prints the answer as a table or JSON.
//!
//! One file per command group: `status`, `apps`, `csp`, `buckets`,
//! `recordings`, `audit`, `config`, `ca` (local files, no server); `text`
//! holds the tables.

mod apps;
mod audit;
mod buckets;
mod ca;
mod config;
mod csp;
mod recordings;
mod text;
mod totp;

use std::future::Future;
use std::process::ExitCode;

use moat_admin::api::{Status, paths};
use moat_admin::client::{self, AdminClient, ClientError};

use crate::args::{Cli, Command, Target};

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config, data_dir } => crate::serve::serve(config.as_deref(), data_dir),
        Command::Config { command } => config::run(command),
        Command::Password { prompt } => crate::password::run(prompt),
        Command::Status { target } => Ok(remote(&target, |c, out| async move {
            let s: Status = c.get(paths::STATUS).await?;
            out.print(&s, text::status);
            Ok(ExitCode::SUCCESS)
        })),
        Command::App { command } => Ok(apps::run(command)),
        Command::Csp { command } => Ok(csp::run(command)),
        Command::Bucket { command } => buckets::run(command),
        Command::Recordings { command } => Ok(recordings::run(command)),
        Command::Audit { command } => Ok(audit::run(command)),
        Command::Ca { command } => ca::run(command),
        Command::Totp { command } => Ok(totp::run(command)),
    }
}

/// How to print an answer: the API's JSON (`--json`) or text for people.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    pub fn print<T: serde::Serialize>(self, value: &T, text: impl Fn(&T) -> String) {
        if self.json {
            println!("{}", pretty(value));
        } else {
            print!("{}", text(value));
        }
    }
}

/// Pretty JSON, as printed for answers that have no table.
pub fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("API values serialize")
}

/// Runs `command` against the moat `target` names and returns its exit
/// code. Errors go to stderr with the exit code of their kind (README).
pub fn remote<F, Fut>(target: &Target, command: F) -> ExitCode
where
    F: FnOnce(AdminClient, Output) -> Fut,
    Fut: Future<Output = Result<ExitCode, ClientError>>,
{
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
    let out = Output { json: target.json };
    match rt.block_on(command(client, out)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("moat: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

impl Target {
    /// The local socket when --socket or --data-dir is given or no
    /// server_uri is configured; else the remote server.
    pub fn client(&self) -> Result<AdminClient, String> {
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
