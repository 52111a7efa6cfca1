//! moat's data plane: listeners, TLS, the request pipeline, upstreams and
//! static apps.
//!
//! # Layout
//! Modules are listed from the top down; a module imports only modules
//! below it (checked by `tests/layering.rs`):
//! - [`gateway`]: the owner: starts every part in order, stops them in
//!   reverse. Nothing imports it.
//! - [`control`]: the only way to change running state (API apps, CSP
//!   approvals, buckets, config reload, recordings' retention).
//! - [`listener`]: accept loops, the connection caps, TLS handshakes, one
//!   hyper connection per client.
//! - [`pipeline`]: the ordered request and response stages, one module
//!   each, with one contract (`pipeline::Step`).
//! - [`tap`]: records an exchange's bodies and tunnels as they stream.
//! - [`runtime`]: the per-config state the pipeline reads (routes, apps,
//!   upstream pools, headers, rate-limit zones), swapped whole on a change.
//! - [`request`]: what is known about one request and its connection.
//! - [`recorder`]: writes recorded sessions to local disk off the request
//!   path, seals and indexes them; storage states; the reaper.
//! - [`buckets`]: storage buckets as stored, and moving recordings there.
//! - [`auth`]: sign-in sessions, the session cookie, password checks with
//!   lockout, identity tokens.
//! - [`captcha`]: the login page's captcha (proof of work, hosted
//!   services) and checking its answers.
//! - [`oidc`]: OpenID Connect providers (discovery, the code flow, ID
//!   token checks, refresh) and the provider tokens behind sessions.
//! - [`admin_api`]: the seam the admin API (its own crate) plugs into.
//! - [`connections`]: the registry of open connections: caps, idle
//!   timeouts, which connection gives way when a pool is full, the drain.
//! - [`tls`]: rustls server config, SNI certificate choice, the local CA
//!   and its renewals, certificate reload.
//! - [`upstream_pool`]: keep-alive HTTP/1.1 connections to an upstream,
//!   one idle list per worker.
//! - [`body`], [`error`], [`access_log`], [`log_limit`], [`namespace`],
//!   [`clock`], [`keys`], [`admin_password`], [`welcome`], [`workers`]:
//!   the leaves.

pub mod access_log;
pub mod admin_api;
pub mod admin_password;
pub mod auth;
pub mod body;
pub mod buckets;
pub mod captcha;
pub mod clock;
pub mod connections;
pub mod control;
pub mod error;
mod gateway;
pub mod keys;
pub mod listener;
pub mod log_limit;
pub mod namespace;
pub mod oidc;
pub mod pipeline;
pub mod recorder;
pub mod request;
pub mod runtime;
pub mod tap;
pub mod tls;
pub mod upstream_pool;
pub mod welcome;
pub mod workers;

pub use gateway::{AdminFactory, Gateway, GatewayError};
