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

/// Runs `bin ARGS --data-dir DIR` against a running moat's data directory
/// (its admin socket).
pub fn against(bin: &str, moat: &crate::Moat, args: &[&str]) -> Output {
    let data = moat.data_dir();
    let mut all = args.to_vec();
    all.extend(["--data-dir", data.to_str().unwrap()]);
    run(bin, &all)
}

/// The command's stdout as JSON, or a panic that shows the output.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(o)))
}
