//! Pure request and response decisions for moat.
//!
//! Everything here is a plain function (or a small value type) from
//! configuration and request parts to a verdict. Nothing in this crate opens
//! a socket, reads a file or looks at a clock, so every rule can be unit
//! tested and fuzzed in isolation. The proxy crate does the I/O and calls in.
//!
//! # Layout
//! - [`access`]: signed-in identities, their sources, and the allow rules
//!   of providers and apps.
//! - [`basic_auth`]: HTTP Basic credentials and constant-time comparison.
//! - [`captcha`]: the login page's proof of work, and the hosted
//!   captcha services' facts.
//! - [`client_ip`]: who the client is, given the peer address, the trusted
//!   proxies and the forwarding headers.
//! - [`forwarding`]: the clean forwarding headers moat sends upstream.
//! - [`canonical_path`]: the one form of a request path every decision
//!   is made on (and the upstream is sent).
//! - [`glob`]: path patterns with `*` and one-segment `{name}`.
//! - [`hop_by_hop`]: headers that belong to one connection and must not be
//!   forwarded.
//! - [`retention`]: recording storage policies, their rules and dates.
//! - [`secret_ref`]: `{{secret:NAME}}` and `secret:NAME` in configuration
//!   values: the names used, and substitution through a resolver.
//! - [`route`]: which app a request belongs to, by host and path prefix.
//! - [`static_path`]: turning a request path into a safe relative file path.
//! - [`negotiate`]: choosing a precompressed variant from `Accept-Encoding`.
//! - [`cors`]: CORS origin patterns, preflight and response verdicts.
//! - [`csp`]: Content-Security-Policy parsing, dangerous sources, and
//!   composition from layers with each source's origin.
//! - [`csp_report`]: CSP violation reports (both browser formats),
//!   normalised for storage.
//! - [`csrf`]: is a state-changing request cross-origin (Go's
//!   `CrossOriginProtection` algorithm).
//! - [`login`]: who is sent to the login page, where they return, reading
//!   the session cookie and the login form.
//! - [`sessions`]: signed-in sessions with idle and absolute timeouts.
//! - [`signing`]: session cookie signatures and identity tokens (JWT).
//! - [`conditional`]: `If-None-Match` / `If-Modified-Since` evaluation.
//! - [`rate_limit`]: nginx `limit_req` arithmetic with an injected clock.
//! - [`redact`]: the credentials a recording never keeps (headers, query
//!   parameters, JSON, form and multipart fields).
//! - [`redirect`]: the HTTPS URL an HTTP request is redirected to.
//! - [`renewal`]: when a certificate is renewed and a failed renewal
//!   retried.
//! - [`throttle`]: lockout after repeated failed authentication attempts.
//! - [`totp`]: the second factor's one-time passwords and recovery codes.
//! - [`units`]: parsing sizes (`16KiB`) and durations (`10s`) from config.

pub mod access;
pub mod basic_auth;
pub mod canonical_path;
pub mod captcha;
pub mod client_ip;
pub mod conditional;
pub mod cors;
pub mod csp;
pub mod csp_report;
pub mod csrf;
pub mod forwarding;
pub mod glob;
pub mod hop_by_hop;
pub mod login;
pub mod negotiate;
pub mod rate_limit;
pub mod redact;
pub mod redirect;
pub mod renewal;
pub mod retention;
pub mod route;
pub mod secret_ref;
pub mod sessions;
pub mod signing;
pub mod static_path;
pub mod throttle;
pub mod totp;
pub mod units;
