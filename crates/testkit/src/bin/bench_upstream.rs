//! The benchmark's upstream: a fixed 13-byte response on the address given
//! as the first argument (default 127.0.0.1:9080).

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("bench upstream on {addr}");
    moat_testkit::upstream::fixed(listener, b"hello, world\n").await;
}
