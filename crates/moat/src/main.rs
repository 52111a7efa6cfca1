//! The `moat` command: serve, and check or print configuration.

mod cli;
mod data_dir;

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
