//! The `moat` command: serve; check or print configuration; ask a running
//! moat for its status and apps over the admin socket.

mod admin_cli;
mod cli;
mod client_config;
mod data_dir;
mod password;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("moat: {e:#}");
            ExitCode::from(1)
        }
    }
}
