//! The handlers of every resource, through the router as the socket
//! serves it, on a standalone control (real store, recorder and keys in a
//! temporary folder; no sockets). The CLI's integration tests cover the
//! same routes end to end.

use std::sync::Arc;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use moat_admin::api::ErrorCode;
use moat_proxy::clock::FixedClock;
use moat_proxy::control::Control;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Api {
    _dir: tempfile::TempDir,
    router: axum::Router,
}

const FILE_APP: &str =
    "[[apps]]\nname = \"file\"\npath = \"/file\"\nupstream = \"http://127.0.0.1:9\"\n";

async fn api(toml: &str) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let config = moat_config::load_str(toml, None).unwrap();
    let clock = Arc::new(FixedClock::at_ms(1_700_000_000_000));
    let control = Control::standalone(config, dir.path(), clock)
        .await
        .unwrap();
    Api {
        router: crate::router(Arc::new(control)),
        _dir: dir,
    }
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let mut req = req
            .body(match body {
                Some(b) => Body::from(b.to_string()),
                None => Body::empty(),
            })
            .unwrap();
        req.extensions_mut().insert(moat_store::Actor {
            name: "tester".into(),
            source: "unit".into(),
        });
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
}

fn code(v: &Value) -> ErrorCode {
    serde_json::from_value(v["code"].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_the_apps_and_recording_storage() {
    let a = api(FILE_APP).await;
    let (s, v) = a.get("/api/v1/status").await;
    assert_eq!(s, 200);
    assert_eq!(v["apps"][0]["name"], "file");
    assert_eq!(v["recording_storage"]["state"], "not configured");
    let (s, v) = a.get("/api/v1/nothing").await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, ErrorCode::NotFound));
    let (s, _) = a.get("/api/v1/openapi.json").await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_are_created_changed_and_deleted_with_typed_errors() {
    let a = api(FILE_APP).await;
    let wiki = json!({"name": "wiki", "path": "/wiki", "upstream": "http://127.0.0.1:9"});
    let (s, v) = a
        .call(Method::POST, "/api/v1/apps", Some(wiki.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["name"], "wiki");
    let (s, v) = a.call(Method::POST, "/api/v1/apps", Some(wiki)).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, ErrorCode::Conflict));

    let bad = json!({"name": "x", "path": "nope", "upstream": "http://127.0.0.1:9"});
    let (s, v) = a.call(Method::POST, "/api/v1/apps", Some(bad)).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, ErrorCode::Invalid));
    assert_eq!(v["problems"][0]["key"], "path", "{v}");

    let (s, v) = a.call(Method::DELETE, "/api/v1/apps/file", None).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, ErrorCode::ReadOnly));

    let (s, v) = a
        .call(
            Method::PATCH,
            "/api/v1/apps/wiki",
            Some(json!({"strip_path": true})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["strip_path"], true);
    let (s, v) = a
        .call(
            Method::PATCH,
            "/api/v1/apps/wiki",
            Some(json!({"name": "other"})),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, ErrorCode::BadRequest)
    );
    let (s, v) = a
        .call(
            Method::PUT,
            "/api/v1/apps/wiki",
            Some(json!({"name": "other", "path": "/wiki", "upstream": "http://127.0.0.1:9"})),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, ErrorCode::BadRequest)
    );

    let (s, v) = a.call(Method::POST, "/api/v1/apps/wiki/reload", None).await;
    assert_eq!((s, &v["reloaded"]), (StatusCode::OK, &json!("wiki")));
    let (s, _) = a.call(Method::DELETE, "/api/v1/apps/wiki", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = a.get("/api/v1/apps/wiki").await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, ErrorCode::NotFound));

    let (_, log) = a.get("/api/v1/audit?limit=10").await;
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["app.delete", "app.reload", "app.update", "app.create"]
    );
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "tester")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csp_routes_explain_and_refuse_what_names_nothing() {
    let a = api(FILE_APP).await;
    let (s, v) = a.get("/api/v1/apps/file/csp").await;
    assert_eq!(s, 200);
    assert_eq!(v["app"], "file");
    assert!(v["policy"].as_str().unwrap().contains("default-src"), "{v}");
    let (s, v) = a
        .call(
            Method::POST,
            "/api/v1/apps/file/csp/approve",
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, ErrorCode::BadRequest)
    );
    let (s, v) = a
        .call(
            Method::POST,
            "/api/v1/apps/file/csp/approve",
            Some(json!({"source": "https://cdn.example"})),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, ErrorCode::NotFound));
    let (s, v) = a.get("/api/v1/apps/ghost/csp/reports").await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, ErrorCode::NotFound));
    let (s, v) = a.get("/api/v1/apps/file/csp/reports?limit=5").await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_are_probed_stored_and_never_shown_with_their_secret() {
    let a = api(FILE_APP).await;
    let folder = tempfile::tempdir().unwrap();
    let config = json!({"provider": "filesystem", "path": folder.path()});
    let (s, v) = a
        .call(
            Method::POST,
            "/api/v1/buckets",
            Some(json!({"config": config})),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, ErrorCode::Invalid),
        "a name is needed"
    );
    let (s, v) = a
        .call(
            Method::POST,
            "/api/v1/buckets",
            Some(json!({"name": "bad name", "config": config})),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, ErrorCode::Invalid));
    let (s, v) = a
        .call(
            Method::POST,
            "/api/v1/buckets",
            Some(json!({"name": "local", "config": config})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, list) = a.get("/api/v1/buckets").await;
    assert_eq!(list[0]["name"], "local");
    let s3 = json!({"provider": "s3", "bucket": "b", "region": "r", "endpoint": "http://127.0.0.1:9",
                    "access_key_id": "AKIA", "secret_access_key": "topsecret"});
    let (s, v) = a
        .call(
            Method::POST,
            "/api/v1/buckets",
            Some(json!({"name": "s3", "config": s3})),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_GATEWAY, ErrorCode::BucketUnavailable)
    );
    assert!(!v.to_string().contains("topsecret"), "{v}");
    let (s, _) = a.call(Method::DELETE, "/api/v1/buckets/local", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = a.get("/api/v1/buckets/local").await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, ErrorCode::NotFound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_routes_check_their_input() {
    let a = api(FILE_APP).await;
    let (s, v) = a.get("/api/v1/recordings").await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));
    let (s, v) = a.get("/api/v1/recordings?state=done").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, ErrorCode::BadRequest)
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("recording, complete, incomplete"),
        "{v}"
    );
    for path in [
        "/api/v1/recordings/r1",
        "/api/v1/recordings/r1/events",
        "/api/v1/recordings/../x",
    ] {
        let (s, v) = a.get(path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {v}");
    }
    let (s, v) = a.call(Method::DELETE, "/api/v1/recordings/r1", None).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, ErrorCode::NotFound));
    let (s, v) = a
        .call(
            Method::POST,
            "/api/v1/recordings/reapply-policy",
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"recordings": 0, "changed": 0, "would_delete_now": 0, "applied": false})
    );
}
