//! `moat config`: print the commented default, or check a file (and the
//! certificate files it names) without serving.

use std::path::Path;
use std::process::ExitCode;

use crate::args::ConfigCommand;

pub fn run(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Default => {
            print!("{}", moat_config::DEFAULT_CONFIG);
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Check { file } => check(&file),
    }
}

pub fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let config = match moat_config::load_file(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    // Certificates are checked the way the server loads them, so a key that
    // does not match its certificate is caught here too.
    if config.tls.enabled && !config.tls.certificates.is_empty() {
        if let Err(e) = moat_proxy::tls::check_files(&config.tls) {
            eprintln!("{}: {e}", file.display());
            return Ok(ExitCode::from(1));
        }
    }
    println!(
        "{}: OK ({} app{})",
        file.display(),
        config.apps.len(),
        if config.apps.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}
