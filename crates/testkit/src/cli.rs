//! Running the `moat` command in a test, with failures that show its
//! output.

use std::process::{Command, Output};

/// Runs `bin ARGS` without the environment variables that would point it
/// at another config, data directory or client config.
pub fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("MOAT_CONFIG")
        .env_remove("MOAT_DATA_DIR")
        .env_remove("MOAT_CLIENT_CONFIG")
        .output()
        .unwrap()
}

/// Status, stdout and stderr, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
