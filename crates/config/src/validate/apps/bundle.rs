//! Validates a static app's bundle: the folder, its `manifest.json` (and
//! the CSP sources it requests), and the admin's `config.json` beside it.
//!
//! Every read goes through a [`BundleSource`], so tests can feed bytes
//! instead of writing folders.

use std::io;
use std::path::{Path, PathBuf};

use moat_policy::csp::Grant;

use super::super::checker::Checker;
use super::super::csp;
use crate::manifest;
use crate::model::{AppCsp, StaticBundle};

/// Where a bundle's files are read from.
pub(crate) trait BundleSource {
    /// Whether `dir` is a folder.
    fn is_dir(&self, dir: &Path) -> bool;
    /// The bytes of one of a bundle's files (`manifest.json`,
    /// `config.json`).
    fn read(&self, file: &Path) -> io::Result<Vec<u8>>;
}

/// The real file system.
pub(crate) struct FileSystem;

impl BundleSource for FileSystem {
    fn is_dir(&self, dir: &Path) -> bool {
        dir.is_dir()
    }

    fn read(&self, file: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(file)
    }
}

/// The bundle in `dir` (already resolved against the config's folder), with
/// its manifest read. Problems go on the scope's `static`.
pub(super) fn open(
    c: &mut Checker<'_>,
    dir: PathBuf,
    bundles: &dyn BundleSource,
) -> Option<StaticBundle> {
    if !bundles.is_dir(&dir) {
        c.problem(
            "static",
            format!("{} is not a folder", dir.display()),
            "give the folder of a web-app bundle (it holds manifest.json)",
        );
        return None;
    }
    let file = dir.join(manifest::FILE_NAME);
    match manifest::parse(&file, bundles.read(&file)) {
        Ok(m) => Some(StaticBundle { dir, manifest: m }),
        Err(e) => {
            c.problem(
                "static",
                e,
                "add a manifest.json such as {\"name\": \"My app\"} to the folder",
            );
            None
        }
    }
}

/// Adds the bundle's own CSP layers to `csp`: what its manifest requests,
/// and the admin's config.json beside it. Problems go on the scope's
/// `static` and name the file.
pub(super) fn csp_layers(
    c: &mut Checker<'_>,
    bundle: &StaticBundle,
    bundles: &dyn BundleSource,
    csp: &mut AppCsp,
) {
    let manifest_file = bundle.dir.join(manifest::FILE_NAME);
    for (directive, sources) in &bundle.manifest.csp {
        for (j, s) in sources.iter().enumerate() {
            match Grant::new(directive, s) {
                Ok(g) => csp.requested.push(g),
                Err(e) => c.problem(
                    "static",
                    format!(
                        "{}: csp.{directive}[{j}]: {}",
                        manifest_file.display(),
                        e.message
                    ),
                    e.fix
                        .unwrap_or_else(|| "correct the request in the app's manifest".into()),
                ),
            }
        }
    }
    let admin_file = bundle.dir.join(manifest::ADMIN_FILE_NAME);
    match manifest::parse_admin_file(&admin_file, bundles.read(&admin_file)) {
        Ok(Some(file)) => {
            let layer = c.scope("static", |c| {
                csp::app_layer(c, &file.csp, Some(&admin_file))
            });
            csp.merge(layer);
        }
        Ok(None) => {}
        Err(e) => c.problem("static", e, "correct the JSON of config.json, or remove it"),
    }
}

/// Bundles in memory, for tests: folders, and files by path.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Memory {
    dirs: Vec<PathBuf>,
    files: std::collections::HashMap<PathBuf, Vec<u8>>,
}

#[cfg(test)]
impl Memory {
    pub(crate) fn dir(mut self, dir: &str) -> Self {
        self.dirs.push(dir.into());
        self
    }

    pub(crate) fn file(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.insert(path.into(), bytes.into());
        self
    }
}

#[cfg(test)]
impl BundleSource for Memory {
    fn is_dir(&self, dir: &Path) -> bool {
        self.dirs.iter().any(|d| d == dir)
    }

    fn read(&self, file: &Path) -> io::Result<Vec<u8>> {
        self.files
            .get(file)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Problem;
    use crate::model::{App, AppOrigin, AppSource};
    use crate::raw::RawApp;
    use crate::validate::checker::{assert_problem, check};

    fn run(bundles: &Memory, dir: &str) -> (Option<App>, Vec<Problem>) {
        let raw = RawApp {
            name: "notes".into(),
            path: Some("/notes".into()),
            static_dir: Some(dir.into()),
            ..RawApp::default()
        };
        check(|c| super::super::validate(c, &raw, AppOrigin::Api, bundles))
    }

    #[test]
    fn a_valid_bundle_with_its_layers() {
        let bundles = Memory::default()
            .dir("/srv/notes")
            .file(
                "/srv/notes/manifest.json",
                r#"{"name": "Notes", "spa": true, "icons": [],
                    "csp": {"connect-src": ["https://api.example.com"]}}"#,
            )
            .file(
                "/srv/notes/config.json",
                r#"{"csp": {"add": ["img-src https://img.example.com"], "nonce": true}}"#,
            );
        let (app, problems) = run(&bundles, "/srv/notes");
        assert_eq!(problems, []);
        let app = app.unwrap();
        match &app.source {
            AppSource::Static(b) => {
                assert_eq!(b.dir, Path::new("/srv/notes"));
                assert_eq!(b.manifest.name.as_deref(), Some("Notes"));
                assert!(b.manifest.spa);
            }
            other => panic!("{other:?}"),
        }
        let grant = |d: &str, s: &str| Grant::new(d, s).unwrap();
        assert_eq!(
            app.csp.requested,
            [grant("connect-src", "https://api.example.com")]
        );
        assert_eq!(app.csp.add, [grant("img-src", "https://img.example.com")]);
        assert!(app.csp.nonce);
    }

    #[test]
    fn invalid_json_names_the_file_and_the_problem() {
        let bundles = Memory::default()
            .dir("/srv/notes")
            .file("/srv/notes/manifest.json", "{\"name\": ");
        let (app, problems) = run(&bundles, "/srv/notes");
        assert!(app.is_none());
        assert_problem(
            &problems,
            "static",
            "/srv/notes/manifest.json is not a valid manifest: EOF while parsing a value",
        );
        assert_eq!(problems.len(), 1, "{problems:#?}");

        let bundles = Memory::default()
            .dir("/srv/notes")
            .file("/srv/notes/manifest.json", "{}")
            .file("/srv/notes/config.json", r#"{"csp": {"nope": 1}}"#);
        let (_, problems) = run(&bundles, "/srv/notes");
        assert_problem(
            &problems,
            "static",
            "/srv/notes/config.json is not valid: unknown field `nope`",
        );
        assert_eq!(
            problems[0].fix.as_deref(),
            Some("correct the JSON of config.json, or remove it")
        );
    }

    #[test]
    fn a_missing_or_unreadable_manifest_is_named() {
        let bundles = Memory::default().dir("/srv/notes");
        let (app, problems) = run(&bundles, "/srv/notes");
        assert!(app.is_none());
        assert_problem(
            &problems,
            "static",
            "cannot read /srv/notes/manifest.json: ",
        );
        assert_eq!(
            problems[0].fix.as_deref(),
            Some("add a manifest.json such as {\"name\": \"My app\"} to the folder")
        );

        let bundles = Memory::default()
            .dir("/srv/notes")
            .file("/srv/notes/manifest.json", b"\xff\xfe".to_vec());
        let (_, problems) = run(&bundles, "/srv/notes");
        assert_problem(
            &problems,
            "static",
            "cannot read /srv/notes/manifest.json: stream did not contain valid UTF-8",
        );

        let (_, problems) = run(&bundles, "/srv/other");
        assert_problem(&problems, "static", "/srv/other is not a folder");
        assert_eq!(problems.len(), 1, "{problems:#?}");
    }

    #[test]
    fn bad_csp_in_either_file_names_the_file_and_entry() {
        let bundles = Memory::default()
            .dir("/srv/notes")
            .file(
                "/srv/notes/manifest.json",
                r#"{"csp": {"bogus-src": ["x"], "img-src": ["https://ok.example"]}}"#,
            )
            .file(
                "/srv/notes/config.json",
                r#"{"csp": {"add": ["script-src 'unsafe-inline'"], "approve": ["nospace"]}}"#,
            );
        let (app, problems) = run(&bundles, "/srv/notes");
        assert!(app.is_none());
        assert_problem(
            &problems,
            "static",
            "/srv/notes/manifest.json: csp.bogus-src[0]: \"bogus-src\" is not a CSP directive",
        );
        assert_problem(
            &problems,
            "static",
            "/srv/notes/config.json: csp.add[0]: script-src 'unsafe-inline' is dangerous",
        );
        assert_problem(
            &problems,
            "static",
            "/srv/notes/config.json: csp.approve[0]: \"nospace\" is not \"DIRECTIVE SOURCE\"",
        );
        assert_eq!(problems.len(), 3, "{problems:#?}");
    }

    #[test]
    fn config_file_bundles_are_relative_to_the_file_and_keyed_under_the_app() {
        let bundles = Memory::default()
            .dir("/etc/moat/bundle")
            .file("/etc/moat/bundle/manifest.json", "3");
        let raw = crate::raw::parse("[[apps]]\nname = \"a\"\npath = \"/a\"\nstatic = \"bundle\"\n")
            .unwrap();
        let problems =
            crate::validate::validate_with(raw, Path::new("/etc/moat"), &bundles).unwrap_err();
        assert_problem(
            &problems,
            "apps[0].static",
            "/etc/moat/bundle/manifest.json is not a valid manifest: invalid type: integer `3`",
        );
        assert_eq!(problems.len(), 1, "{problems:#?}");
    }
}
