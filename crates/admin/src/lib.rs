//! moat's admin API: the JSON types the server sends and the CLI reads, and
//! a client that speaks to the server over its Unix socket.
//!
//! # Layout
//! - [`api`]: request and response bodies of `/api/v1/...`.
//! - [`client`]: a client for the Unix socket, with errors that map to the
//!   CLI's exit codes.

pub mod api;
pub mod client;
