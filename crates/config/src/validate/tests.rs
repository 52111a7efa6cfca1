//! Tests of [`validate`](super::validate) as a whole: sections keyed under
//! their prefix, and the checks that span sections.

use std::path::Path;

use super::checker::assert_problem;
use super::*;

fn problems(text: &str) -> Vec<Problem> {
    let raw = crate::raw::parse(text).expect("the test's TOML parses");
    validate_with(raw, Path::new("/etc/moat"), &Memory::default())
        .err()
        .unwrap_or_default()
}

#[test]
fn every_section_reports_under_its_own_prefix() {
    let p = problems(
        "[server]\nmax_connections = 0\n[tls]\nmin_version = \"1.0\"\n[security]\nadmin_user = \"\"\n\
         [auth]\nidle_timeout = \"x\"\n[headers]\nframe_options = \"x\"\n[csp]\npolicy = \"bogus-src x\"\n\
         [rate_limit]\nmax_keys_per_zone = 0\n[recording]\nmax_open = 0\n[log]\naccess_log_format = \"xml\"\n\
         [[apps]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://h:1\"\n[apps.cors]\nallow_methods = [\"A B\"]\nallow_origin = [\"*\"]\n",
    );
    for (key, message) in [
        ("server.max_connections", "must be at least 1"),
        ("tls.min_version", "\"1.0\" is not supported"),
        ("security.admin_user", "\"\" is not a usable user name"),
        ("auth.idle_timeout", "\"x\" is not a duration"),
        ("headers.frame_options", "\"x\" is not a value moat knows"),
        ("csp.policy", "\"bogus-src\""),
        ("rate_limit.max_keys_per_zone", "must be at least 1"),
        ("recording.max_open", "0 is out of range"),
        ("log.access_log_format", "unknown format \"xml\""),
        (
            "apps[0].cors.allow_methods[0]",
            "\"A B\" is not an HTTP method",
        ),
    ] {
        assert_problem(&p, key, message);
    }
    assert_eq!(p.len(), 10, "{p:#?}");
}

#[test]
fn listeners_and_the_admin_api_follow_tls() {
    let p = problems("[server]\nhttps = \"\"\n");
    assert_problem(&p, "server.https", "is empty but TLS is enabled");
    let p = problems(
        "[server]\nhttp = \"\"\n[tls]\nenabled = false\n[security]\nadmin_over_tcp = true\n",
    );
    assert_problem(&p, "server.http", "is empty but TLS is disabled");
    assert_problem(&p, "security.admin_over_tcp", "only served over TLS");
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!(problems("[tls]\nenabled = false\n"), []);
}

#[test]
fn apps_are_checked_against_each_other_and_the_global_settings() {
    let p = problems(
        "[recording.policy]\nretain_for_days = 30\nretain_for_days_overridable = false\ndelete_after_days = 365\n\
         [[rate_limit.zones]]\nname = \"z\"\nrate = \"1r/s\"\n\
         [[apps]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://h:1\"\n[[apps.rate_limit]]\nzone = \"z\"\n\
         [[apps]]\nname = \"a\"\npath = \"/b\"\nupstream = \"http://h:1\"\n\
         [[apps]]\nname = \"c\"\npath = \"/a/\"\nupstream = \"http://h:1\"\n[[apps.rate_limit]]\nzone = \"nope\"\n\
         [apps.recording]\nenabled = true\n[apps.recording.policy]\nretain_for_days = 7\n",
    );
    assert_problem(&p, "apps[1].name", "app name \"a\" is used twice");
    assert_problem(
        &p,
        "apps[2].path",
        "another app is already mounted on the same host and path \"/a\"",
    );
    assert_problem(
        &p,
        "apps[2].rate_limit[0].zone",
        "no rate-limit zone is named \"nope\"",
    );
    assert_problem(
        &p,
        "apps[2].recording.policy",
        "retain_for_days is set globally and not overridable",
    );
    assert_eq!(p.len(), 4, "{p:#?}");
}

#[test]
fn a_good_file_gives_its_config() {
    let raw = crate::raw::parse(
        "data_dir = \"data\"\n[[apps]]\nname = \"notes\"\npath = \"/notes\"\nstatic = \"/srv/notes\"\n",
    )
    .unwrap();
    let bundles = Memory::default()
        .dir("/srv/notes")
        .file("/srv/notes/manifest.json", r#"{"name": "Notes"}"#);
    let config = validate_with(raw, Path::new("/etc/moat"), &bundles).unwrap();
    assert_eq!(
        config.data_dir.as_deref(),
        Some(Path::new("/etc/moat/data"))
    );
    assert_eq!(config.apps[0].origin, AppOrigin::ConfigFile);
    assert!(matches!(config.apps[0].source, AppSource::Static(_)));
}

#[test]
fn api_apps_use_field_names_and_absolute_bundles() {
    let bundles = Memory::default()
        .dir("/srv/notes")
        .file("/srv/notes/manifest.json", "{}");
    let raw: RawApp = serde_json::from_value(serde_json::json!({
        "name": "notes", "path": "/notes", "static": "/srv/notes"
    }))
    .unwrap();
    let app = validate_api_app_with(&raw, &bundles).unwrap();
    assert_eq!(app.origin, AppOrigin::Api);

    let raw: RawApp = serde_json::from_value(serde_json::json!({
        "name": "notes", "path": "/notes", "static": "srv/other",
        "cors": {"allow_origin": []}
    }))
    .unwrap();
    let p = validate_api_app_with(&raw, &bundles).unwrap_err();
    assert_problem(&p, "static", "\"srv/other\" is not an absolute path");
    assert_problem(&p, "static", "/srv/other is not a folder");
    assert_problem(&p, "cors.allow_origin", "is empty");
    assert_eq!(p.len(), 3, "{p:#?}");
}
