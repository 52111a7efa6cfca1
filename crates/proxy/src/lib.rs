//! moat's data plane: listeners, TLS, the request pipeline, upstreams and
//! static apps.
//!
//! # Layout
//! - [`gateway`]: starts everything from a validated config, reloads it,
//!   drains on shutdown.
//! - [`listener`]: accept loops, the connection caps, TLS handshakes, one
//!   hyper connection per client.
//! - [`connections`]: the registry of open connections: caps, idle
//!   timeouts, which connection gives way when a pool is full, the drain.
//! - [`log_limit`]: warnings that repeat at attack rate, written once per
//!   period with a count.
//! - [`tls`]: rustls server config, SNI certificate choice, self-signed
//!   certificates, certificate reload.
//! - [`pipeline`]: the ordered request and response stages, one module each.
//! - [`runtime`]: the per-config state the pipeline reads (routes, apps,
//!   upstream pools), swapped atomically on reload.
//! - [`upstream_pool`]: keep-alive HTTP/1.1 connections to an upstream,
//!   one idle list per worker.
//! - [`body`]: body types and wrappers (size limit, idle timeout, access
//!   logging on completion).
//! - [`buckets`]: storage buckets as stored, and moving recordings there.
//! - [`error`]: why a request was refused, mapped to a status and a page.
//! - [`access_log`]: one line per request, written off the request path.
//! - [`admin`]: the admin API on a Unix socket.
//! - [`admin_password`]: the admin password (configured hash or random).
//! - [`auth`]: sign-in sessions, the session cookie, password checks with
//!   lockout, identity tokens.
//! - [`keys`]: the secret keys kept in the data directory.
//! - [`recorder`]: writes recorded sessions to local disk off the request
//!   path, seals them, indexes them.
//! - [`welcome`]: the built-in welcome app served when no app is configured.
//! - [`workers`]: thread-per-core workers that own connections and their
//!   upstream pools.

pub mod access_log;
pub mod admin;
pub mod admin_password;
pub mod auth;
pub mod body;
pub mod buckets;
pub mod connections;
pub mod error;
pub mod gateway;
pub mod keys;
pub mod listener;
pub mod log_limit;
pub mod pipeline;
pub mod recorder;
pub mod runtime;
pub mod tls;
pub mod upstream_pool;
pub mod welcome;
pub mod workers;

pub use gateway::{Gateway, GatewayError};
