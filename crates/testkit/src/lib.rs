//! Test harness for moat: the real `moat` binary started on ephemeral
//! ports in a temporary folder, real upstream servers, and clients that trust
//! the moat under test.
//!
//! # Layout
//! - [`moat`]: start and stop a moat process, read its logs, signal it.
//! - [`upstream`]: HTTP upstreams (echo, streaming, slow) and a WebSocket
//!   echo server, each on `127.0.0.1:0`.
//! - [`cli`]: run the `moat` command and show its output on failure.
//! - [`client`]: TLS client configs and reqwest clients for a moat.
//! - [`certs`]: certificates for test host names.
//! - [`browser`]: headless Chromium driven through chromedriver.
//! - [`pebble`]: the ACME test CA and its mock DNS server.
//! - [`oidc`]: a real OpenID provider (`oidc-provider` from npm).

pub mod browser;
pub mod certs;
pub mod cli;
pub mod client;
pub mod moat;
pub mod oidc;
pub mod pebble;
pub mod upstream;

pub use moat::Moat;

/// A TCP port on 127.0.0.1 that was free a moment ago (for servers that
/// must be told their port before they start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
