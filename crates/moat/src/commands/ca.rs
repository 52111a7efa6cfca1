//! `moat ca`: the local CA's root, read from the data directory (no
//! running moat needed), so a user can trust it before or after the first
//! start.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Context;
use moat_proxy::tls::inspect::{Permitted, Subtree, inspect};
use moat_proxy::tls::local_ca::CaFiles;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::args::{CaCommand, DataDir};

/// Where Debian's update-ca-certificates picks up local roots.
const DEBIAN_ANCHORS: &str = "/usr/local/share/ca-certificates";
const ANCHOR_NAME: &str = "moat-local-ca.crt";

pub fn run(command: CaCommand) -> anyhow::Result<ExitCode> {
    match command {
        CaCommand::Show { dir } => {
            let Some(root) = root(&dir)? else {
                return Ok(ExitCode::from(1));
            };
            print!("{}", show(&root)?);
            Ok(ExitCode::SUCCESS)
        }
        CaCommand::Export { out, dir } => {
            let Some(root) = root(&dir)? else {
                return Ok(ExitCode::from(1));
            };
            let pem =
                std::fs::read(&root).with_context(|| format!("reading {}", root.display()))?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &pem)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("wrote moat's local CA root to {}", path.display());
                }
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&pem)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CaCommand::Trust { print, dir } => {
            let Some(root) = root(&dir)? else {
                return Ok(ExitCode::from(1));
            };
            trust(&root, print)
        }
    }
}

/// The root's path, or None after telling the user why there is none.
fn root(dir: &DataDir) -> anyhow::Result<Option<PathBuf>> {
    let data_dir = match &dir.data_dir {
        Some(d) => d.clone(),
        None => {
            let config = crate::serve::load(dir.config.as_deref())?;
            config.data_dir.unwrap_or_else(crate::data_dir::default)
        }
    };
    let files = CaFiles::in_data_dir(&data_dir);
    if files.cert.is_file() {
        return Ok(Some(files.cert));
    }
    eprintln!(
        "moat: there is no local CA in {} yet: `moat serve` makes it at its first start when no certificate is configured (give --data-dir or --config if moat keeps its state elsewhere)",
        data_dir.display()
    );
    Ok(None)
}

fn read(root: &Path) -> anyhow::Result<CertificateDer<'static>> {
    CertificateDer::from_pem_file(root)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate: {e}", root.display()))
}

fn show(root: &Path) -> anyhow::Result<String> {
    let der = read(root)?;
    let facts = inspect(&der).map_err(|e| anyhow::anyhow!("{}: {e}", root.display()))?;
    let permitted = Permitted::of(&der).map_err(|e| anyhow::anyhow!("{}: {e}", root.display()))?;
    let at = |s: i64| {
        moat_proxy::access_log::rfc3339(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.max(0) as u64),
        )
    };
    let names = match &permitted.subtrees {
        None => "any name".to_owned(),
        Some(subtrees) => subtrees
            .iter()
            .map(|s| match s {
                Subtree::Dns(d) => d.clone(),
                Subtree::Ip { network, prefix } => format!("{network}/{prefix}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    Ok(format!(
        "root:     {}\nsubject:  {}\nsha256:   {}\nvalid:    {} to {}\nissues for: {names}\n",
        root.display(),
        facts.issuer,
        facts.sha256,
        at(facts.not_before),
        at(facts.not_after),
    ))
}

/// The commands that install `root` for the system and for browsers that
/// keep their own store (Firefox, and Chromium on Linux, use NSS).
fn instructions(root: &Path) -> String {
    format!(
        "To trust moat's local CA on this machine (Debian or Ubuntu), as root:\n\n    cp {root} {DEBIAN_ANCHORS}/{ANCHOR_NAME}\n    update-ca-certificates\n\nChromium and Firefox on Linux keep their own store (NSS); for your user:\n\n    certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n 'moat local CA' -i {root}\n\n(certutil is in the libnss3-tools package.) On another machine, copy the root there first: moat ca export --out moat-root.crt\n",
        root = root.display()
    )
}

fn trust(root: &Path, print_only: bool) -> anyhow::Result<ExitCode> {
    // The file must be moat's constrained root before anything is
    // installed into a trust store.
    let der = read(root)?;
    moat_proxy::tls::local_ca::check_root(&der)
        .map_err(|e| anyhow::anyhow!("{}: {e}", root.display()))?;
    let anchors = Path::new(DEBIAN_ANCHORS);
    let tool = find_in_path("update-ca-certificates");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    if print_only || tool.is_none() || !anchors.is_dir() || !is_root {
        if !print_only {
            let why = if tool.is_none() || !anchors.is_dir() {
                "this system has no update-ca-certificates (Debian's ca-certificates package)"
            } else {
                "installing into the system store needs root"
            };
            eprintln!("moat: {why}; nothing was installed.\n");
        }
        print!("{}", instructions(root));
        return Ok(if print_only {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let target = anchors.join(ANCHOR_NAME);
    std::fs::copy(root, &target).with_context(|| format!("copying to {}", target.display()))?;
    let status = Command::new(tool.expect("checked above"))
        .status()
        .context("running update-ca-certificates")?;
    if !status.success() {
        eprintln!(
            "moat: update-ca-certificates failed ({status}); {} is in place, run it again by hand",
            target.display()
        );
        return Ok(ExitCode::from(1));
    }
    println!(
        "installed moat's local CA root as {} and updated the system trust store.\nBrowsers with their own store need it too:\n\n    certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n 'moat local CA' -i {}",
        target.display(),
        root.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
