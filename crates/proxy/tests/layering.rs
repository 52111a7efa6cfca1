//! The crate's dependency rules, checked on its source: the pipeline never
//! reaches the owner or the control interface, nothing imports the owner,
//! the runtime imports no stage, and the data plane does not depend on the
//! admin API's server (or on axum).

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(sources(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// The `crate::…` paths a file names (in `use` lines and inline paths),
/// comments left out.
fn crate_paths(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let tail = &rest[i + "crate::".len()..];
            let name: String = tail
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
            rest = tail;
        }
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn offenders(files: &[PathBuf], forbidden: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    for f in files {
        for p in crate_paths(f) {
            if forbidden.contains(&p.as_str()) {
                bad.push(format!("{} uses crate::{p}", f.display()));
            }
        }
    }
    bad
}

#[test]
fn the_pipeline_reaches_neither_the_gateway_nor_the_control_interface() {
    let files = sources(&src().join("pipeline"));
    assert!(files.len() > 10, "the stages are found");
    let bad = offenders(&files, &["gateway", "control", "listener"]);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn nothing_imports_the_gateway() {
    let files: Vec<PathBuf> = sources(&src())
        .into_iter()
        .filter(|f| !f.ends_with("gateway.rs") && !f.ends_with("lib.rs"))
        .collect();
    let bad = offenders(&files, &["gateway"]);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn the_runtime_and_what_it_builds_import_no_stage() {
    let mut files = sources(&src().join("runtime"));
    files.push(src().join("request.rs"));
    files.extend(sources(&src().join("tap")));
    let bad = offenders(&files, &["pipeline", "gateway", "control", "listener"]);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn the_control_interface_does_not_reach_up() {
    let files = sources(&src().join("control"));
    let bad = offenders(&files, &["gateway", "listener", "pipeline"]);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn the_data_plane_does_not_depend_on_the_admin_server() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    for name in ["moat-admin-server", "axum"] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(name)),
            "moat-proxy depends on {name}"
        );
    }
}

/// The check itself: a file naming a forbidden module is caught.
#[test]
fn the_scan_sees_inline_paths_and_ignores_comments() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.rs");
    std::fs::write(
        &f,
        "use crate::runtime::Runtime;\n// crate::gateway in a comment\nfn f() { crate::control::x(); }\n",
    )
    .unwrap();
    assert_eq!(
        crate_paths(&f),
        vec!["runtime".to_owned(), "control".to_owned()]
    );
}
