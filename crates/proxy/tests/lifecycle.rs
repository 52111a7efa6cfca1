//! The owner's start and stop, on real sockets: everything a gateway
//! starts is stopped by `shutdown`, in an order that loses nothing — the
//! admin API's serve ends, the listener is closed, a recording in progress
//! is sealed and indexed before the store closes, and the same data
//! directory starts again with nothing left to recover.

use std::sync::{Arc, Mutex};

use moat_proxy::admin_api::{AdminApi, BoxFuture};
use moat_proxy::admin_password::AdminPassword;
use moat_proxy::body::Body;
use moat_proxy::{AdminFactory, Gateway};
use moat_store::{RecordingState, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An admin API that only notes what the gateway did with it.
struct Witness {
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl AdminApi for Witness {
    fn handle(
        &self,
        _: http::Request<Body>,
        _: moat_store::Actor,
    ) -> BoxFuture<http::Response<Body>> {
        Box::pin(async { http::Response::new(moat_proxy::body::empty()) })
    }
    fn serve(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) -> BoxFuture<()> {
        let log = self.log.clone();
        Box::pin(async move {
            log.lock().unwrap().push("admin serving");
            let _ = shutdown.changed().await;
            log.lock().unwrap().push("admin stopped");
        })
    }
}

fn witness(log: Arc<Mutex<Vec<&'static str>>>) -> AdminFactory {
    Box::new(move |_control, _path| {
        Box::pin(async move {
            let api: Arc<dyn AdminApi> = Arc::new(Witness { log });
            Ok(api.into())
        })
    })
}

/// An upstream that answers every request with 200 and closes.
async fn upstream() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    addr
}

async fn get(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_everything_and_loses_nothing() {
    let up = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\nhttp = \"127.0.0.1:0\"\nhttps = \"\"\nworkers = 1\nshutdown_timeout = \"2s\"\n[tls]\nenabled = false\n\
         [[apps]]\nname = \"app\"\npath = \"/\"\nauth = \"none\"\nupstream = \"http://{up}\"\n[apps.recording]\nenabled = true\n"
    );
    let config = || moat_config::load_str(&toml, None).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gateway = Gateway::start(
        config(),
        dir.path().to_owned(),
        AdminPassword::from_hash(String::new()),
        witness(log.clone()),
    )
    .await
    .unwrap();
    let addr = gateway.http_addr.expect("the plain HTTP listener");
    let answer = get(addr).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(gateway.control().runtime().apps.len(), 1);

    gateway.shutdown().await;
    assert_eq!(*log.lock().unwrap(), ["admin serving", "admin stopped"]);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
    // The recording was sealed by the recorder and indexed before the
    // store closed: complete, not left "recording".
    let store = Store::open(&dir.path().join("moat.db")).await.unwrap();
    let rows = store.recordings(&Default::default()).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].state, RecordingState::Complete);
    assert_eq!(rows[0].closed_because.as_deref(), Some("moat stopped"));
    store.close().await;

    // The same data directory starts again; nothing was left to recover.
    let log = Arc::new(Mutex::new(Vec::new()));
    let again = Gateway::start(
        config(),
        dir.path().to_owned(),
        AdminPassword::from_hash(String::new()),
        witness(log),
    )
    .await
    .unwrap();
    let rows = again
        .control()
        .store()
        .recordings(&Default::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, RecordingState::Complete);
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_part_stops_the_start_and_nothing_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let toml =
        format!("[server]\nhttp = \"127.0.0.1:{port}\"\nhttps = \"\"\n[tls]\nenabled = false\n");
    let log = Arc::new(Mutex::new(Vec::new()));
    let err = Gateway::start(
        moat_config::load_str(&toml, None).unwrap(),
        dir.path().to_owned(),
        AdminPassword::from_hash(String::new()),
        witness(log.clone()),
    )
    .await
    .err()
    .expect("the port is taken");
    assert!(err.to_string().contains("server.http"), "{err}");
    assert!(
        log.lock().unwrap().is_empty(),
        "the admin API was never served"
    );

    // An admin API that cannot bind stops the start the same way.
    let refusing: AdminFactory = Box::new(|_, _| {
        Box::pin(async { Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "in use")) })
    });
    let toml = "[server]\nhttp = \"127.0.0.1:0\"\nhttps = \"\"\n[tls]\nenabled = false\n";
    let err = Gateway::start(
        moat_config::load_str(toml, None).unwrap(),
        dir.path().to_owned(),
        AdminPassword::from_hash(String::new()),
        refusing,
    )
    .await
    .err()
    .expect("the admin socket is refused");
    assert!(err.to_string().contains("admin socket"), "{err}");
}
