//! Unit tests of the control interface: a hand-made control (real store,
//! recorder and keys in a temporary folder), no sockets.

use std::sync::Arc;

use moat_store::Actor;
use serde_json::json;

use super::*;
use crate::clock::FixedClock;

struct Fixture {
    _dir: tempfile::TempDir,
    control: Control,
}

fn actor() -> Actor {
    Actor {
        name: "tester".into(),
        source: "unit".into(),
    }
}

async fn control(toml: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = moat_config::load_str(toml, None).unwrap();
    let clock = Arc::new(FixedClock::at_ms(1_700_000_000_000));
    Fixture {
        control: Control::standalone(config, dir.path(), clock)
            .await
            .unwrap(),
        _dir: dir,
    }
}

fn api_app(name: &str, path: &str) -> (moat_config::App, serde_json::Value) {
    let body = json!({"name": name, "path": path, "upstream": "http://127.0.0.1:9"});
    let raw: moat_config::raw::RawApp = serde_json::from_value(body.clone()).unwrap();
    (moat_config::validate::validate_api_app(&raw).unwrap(), body)
}

const FILE_APP: &str =
    "[[apps]]\nname = \"file\"\npath = \"/file\"\nupstream = \"http://127.0.0.1:9\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_is_checked_stored_and_served_in_one_operation() {
    let f = control(FILE_APP).await;
    let c = &f.control;
    let (app, body) = api_app("wiki", "/wiki");
    c.create_app(&actor(), app, &body).await.unwrap();
    assert!(
        c.runtime().apps.iter().any(|a| a.name == "wiki"),
        "served at once"
    );
    assert_eq!(c.store().apps().await.unwrap().len(), 1, "and stored");

    // The same mount again: refused before anything is stored.
    let (again, body) = api_app("wiki2", "/wiki");
    assert!(matches!(
        c.create_app(&actor(), again, &body).await,
        Err(ControlError::Conflict(_))
    ));
    assert_eq!(c.store().apps().await.unwrap().len(), 1);

    // Apps of the config file are read-only here.
    let (file, body) = api_app("file", "/elsewhere");
    assert!(matches!(
        c.update_app(&actor(), file, &body).await,
        Err(ControlError::ReadOnly(_))
    ));
    assert!(matches!(
        c.delete_app(&actor(), "file").await,
        Err(ControlError::ReadOnly(_))
    ));
    assert!(matches!(
        c.delete_app(&actor(), "ghost").await,
        Err(ControlError::NotFound(_))
    ));

    c.delete_app(&actor(), "wiki").await.unwrap();
    assert!(!c.runtime().apps.iter().any(|a| a.name == "wiki"));
    let audit = c.store().audit_log(&Default::default()).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["app.delete", "app.create"],
        "every change audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_api_apps_and_a_bad_config_changes_nothing() {
    let f = control(FILE_APP).await;
    let c = &f.control;
    let (app, body) = api_app("wiki", "/wiki");
    c.create_app(&actor(), app, &body).await.unwrap();
    let reloaded = moat_config::load_str(
        "[[apps]]\nname = \"other\"\npath = \"/other\"\nupstream = \"http://127.0.0.1:9\"\n",
        None,
    )
    .unwrap();
    c.reload_config(reloaded).await.unwrap();
    let names: Vec<String> = c.runtime().apps.iter().map(|a| a.name.clone()).collect();
    assert!(
        names.contains(&"other".to_owned()) && names.contains(&"wiki".to_owned()),
        "{names:?}"
    );
    assert!(!names.contains(&"file".to_owned()));
    assert_eq!(c.file_config().await.apps.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csp_changes_say_why_nothing_changed() {
    let f = control(FILE_APP).await;
    let c = &f.control;
    let none = CspSelection::default();
    assert!(matches!(
        c.approve_csp(&actor(), "file", &none).await,
        Err(ControlError::BadRequest(_))
    ));
    let one = CspSelection {
        source: Some("https://cdn.example".into()),
        ..Default::default()
    };
    match c.approve_csp(&actor(), "file", &one).await {
        Err(ControlError::NotFound(why)) => assert!(why.contains("no pending request"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.approve_csp(&actor(), "ghost", &one).await,
        Err(ControlError::NotFound(_))
    ));
    assert!(matches!(
        c.revoke_csp(&actor(), "file", &one).await,
        Err(ControlError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_and_recordings_are_checked_before_anything_changes() {
    let f = control(FILE_APP).await;
    let c = &f.control;
    let cfg = moat_recording::bucket::BucketConfig::Filesystem {
        path: "/nonexistent/x".into(),
        prefix: String::new(),
    };
    assert!(matches!(
        c.put_bucket(&actor(), "bad name!", cfg, true).await,
        Err(ControlError::InvalidValue(_))
    ));
    assert!(matches!(
        c.delete_bucket(&actor(), "ghost").await,
        Err(ControlError::NotFound(_))
    ));
    assert!(matches!(
        c.delete_recording(&actor(), "r1").await,
        Err(ControlError::NotFound(_))
    ));
    let dry = c.reapply_policy(&actor(), None, false).await.unwrap();
    assert_eq!(
        dry,
        Reapplied {
            recordings: 0,
            changed: 0,
            would_delete_now: 0,
            applied: false
        }
    );
    assert_eq!(
        c.storage_state(),
        crate::recorder::StorageState::NotConfigured
    );
}
