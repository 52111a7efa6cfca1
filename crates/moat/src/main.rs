//! The `moat` command: serve; check or print configuration; ask a running
//! moat for its status, apps, policies, buckets, recordings and audit log
//! over the admin socket (or a remote moat over HTTPS).
//!
//! - `args`: every command and its arguments (clap);
//! - `serve`: `moat serve`, the wiring and the signals;
//! - `commands/`: what every other command does, one file per group.

mod args;
mod client_config;
mod commands;
mod data_dir;
mod password;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("moat: {e:#}");
            ExitCode::from(1)
        }
    }
}
