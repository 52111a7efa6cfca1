//! Raw file values → the runtime [`Config`]. One [`Problem`] per bad key,
//! all collected, so an admin fixes a file in one pass.
//!
//! [`validate`] runs one validator per section, each in its own file and
//! each reporting keys relative to its section (the `Checker`'s scope adds
//! `server.`, `apps[2].`, …), then checks what spans sections (TLS and the
//! listeners, app names and mounts, zones and policies apps refer to).
//!
//! # Layout
//! - `checker`: the `Checker` and the value helpers every section uses.
//! - `server`, `tls`, `security`, `auth`, `portal`, `headers`, `csp`,
//!   `rate_limit`, `recording`, `log`: one `[section]` each.
//! - `cors`: an app's `[apps.cors]`.
//! - `apps`: one app (its upstream URL, static bundle and recording
//!   settings in files of their own); also [`validate_api_app`].

mod acme;
mod apps;
mod auth;
mod checker;
mod cors;
mod csp;
mod headers;
mod log;
mod portal;
mod rate_limit;
mod recording;
mod security;
mod server;
mod tls;

use std::collections::HashSet;
use std::path::Path;

#[cfg(test)]
pub(crate) use apps::Memory;
pub(crate) use apps::{BundleSource, FileSystem};
pub use rate_limit::unknown_zone;

use checker::Checker;
use moat_policy::access::Source;

use crate::error::Problem;
use crate::model::*;
use crate::raw::{RawApp, RawConfig};

pub fn validate(raw: RawConfig, base_dir: &Path) -> Result<Config, Vec<Problem>> {
    validate_with(raw, base_dir, &FileSystem)
}

/// [`validate`], reading static bundles from `bundles`.
pub(crate) fn validate_with(
    raw: RawConfig,
    base_dir: &Path,
    bundles: &dyn BundleSource,
) -> Result<Config, Vec<Problem>> {
    let mut c = Checker::new(base_dir);

    let data_dir = raw
        .data_dir
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| c.path(s));
    let server = c.scope("server.", |c| server::validate(c, &raw.server));
    let tls = c.scope("tls.", |c| tls::validate(c, &raw.tls));
    if tls.enabled && server.https.is_none() {
        c.problem(
            "server.https",
            "is empty but TLS is enabled",
            "give an address such as \"127.0.0.1:8443\", or set tls.enabled = false",
        );
    }
    if !tls.enabled && server.http.is_none() {
        c.problem(
            "server.http",
            "is empty but TLS is disabled, so nothing would listen",
            "give an address such as \"127.0.0.1:8080\"",
        );
    }
    // acme_for_app_hosts and on-demand order with [tls.acme_defaults].
    let defaults_used = tls.acme_for_app_hosts || tls.on_demand_ask.is_some();
    let acme_http01 = defaults_used && tls.acme_defaults.challenge == AcmeChallenge::Http01
        || tls
            .acme
            .iter()
            .any(|a| a.account.challenge == AcmeChallenge::Http01);
    let uses_acme = defaults_used || !tls.acme.is_empty();
    if uses_acme && !tls.enabled {
        c.problem(
            "tls.enabled",
            "is false but ACME certificates are configured",
            "turn TLS on, or remove [[tls.acme]] and tls.acme_for_app_hosts",
        );
    } else if acme_http01 && (server.http.is_none() || !tls.redirect_http) {
        c.problem(
            "tls.acme",
            "the http-01 challenge is answered on the HTTP listener, which is not started (server.http is empty or tls.redirect_http is false)",
            "set server.http (port 80 for a public CA) and tls.redirect_http = true, or use challenge = \"tls-alpn-01\"",
        );
    }
    let security = c.scope("security.", |c| security::validate(c, &raw.security));
    if security.admin_over_tcp && !tls.enabled {
        c.problem(
            "security.admin_over_tcp",
            "the admin API over TCP is only served over TLS, but tls.enabled is false",
            "turn TLS on, or leave admin_over_tcp off and use the Unix socket",
        );
    }
    let rate_limit = c.scope("rate_limit.", |c| rate_limit::validate(c, &raw.rate_limit));
    let recording = c.scope("recording.", |c| recording::validate(c, &raw.recording));
    let log = c.scope("log.", |c| log::validate(c, &raw.log));
    let headers = c.scope("headers.", |c| headers::validate(c, &raw.headers));
    let csp = c.scope("csp.", |c| csp::validate(c, &raw.csp));
    let auth = c.scope("auth.", |c| auth::validate(c, &raw.auth));
    let portal = c.scope("portal.", |c| portal::validate(c, &raw.portal));
    if let Some(missing) = unknown_provider(&AppAuth::SignIn(portal.sources.clone()), &auth) {
        c.problem(
            "portal.auth",
            format!("no [[auth.oidc]] provider is named {missing:?}"),
            "define it under [[auth.oidc]], or correct the name",
        );
    }

    let mut apps = Vec::new();
    let mut names = HashSet::new();
    let mut mounts = HashSet::new();
    for (i, a) in raw.apps.iter().enumerate() {
        let app = c.scope(&format!("apps[{i}]."), |c| {
            apps::validate(c, a, AppOrigin::ConfigFile, bundles)
        });
        if let Some(app) = app {
            if !names.insert(app.name.clone()) {
                c.problem(
                    format!("apps[{i}].name"),
                    format!("app name {:?} is used twice", app.name),
                    "give every app its own name",
                );
            }
            if !mounts.insert((app.host.clone(), app.path.clone())) {
                c.problem(
                    format!("apps[{i}].path"),
                    format!(
                        "another app is already mounted on the same host and path {:?}",
                        app.path
                    ),
                    "give each app its own path prefix or host",
                );
            }
            apps.push(app);
        }
    }

    // `i` counts the apps that validated: the file's index only while no
    // app before this one failed.
    for (i, app) in apps.iter().enumerate() {
        let policy = app
            .recording
            .as_ref()
            .map(|r| crate::model::retention_for(recording.policy.as_ref(), r));
        if let Some(Err(e)) = policy {
            c.problem(
                format!("apps[{i}].recording.policy"),
                e,
                "change the app's policy, or the global [recording.policy]",
            );
        }
    }
    if !tls.enabled {
        for (i, app) in apps.iter().enumerate() {
            if app.client_certs.is_some() {
                c.problem(
                    format!("apps[{i}].client_certs"),
                    "client certificates are asked for in the TLS handshake, but tls.enabled is false",
                    "turn TLS on, or remove [apps.client_certs]",
                );
            }
        }
    }
    for (i, app) in apps.iter().enumerate() {
        if let Some(missing) = unknown_provider(&app.auth, &auth) {
            c.problem(
                format!("apps[{i}].auth"),
                format!("no [[auth.oidc]] provider is named {missing:?}"),
                "define it under [[auth.oidc]] with name, issuer, client_id and client_secret_file, or correct the name",
            );
        }
    }
    let zone_names: Vec<&str> = rate_limit.zones.iter().map(|z| z.name.as_str()).collect();
    for (i, a) in raw.apps.iter().enumerate() {
        for (j, l) in a.rate_limit.iter().enumerate() {
            if !zone_names.contains(&l.zone.as_str()) {
                c.problem(
                    format!("apps[{i}].rate_limit[{j}].zone"),
                    format!("no rate-limit zone is named {:?}", l.zone),
                    "define it under [[rate_limit.zones]], or correct the name",
                );
            }
        }
    }
    let problems = c.into_problems();
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Config {
        source: None,
        data_dir,
        server,
        tls,
        security,
        rate_limit,
        recording,
        auth,
        portal,
        headers,
        csp,
        log,
        apps,
    })
}

/// The first `oidc:NAME` source of `auth` with no such provider in
/// `[[auth.oidc]]` (an API app's sources are checked against the running
/// config with this too).
pub fn unknown_provider<'a>(auth: &'a AppAuth, config: &Auth) -> Option<&'a str> {
    auth.sources().iter().find_map(|s| match s {
        Source::Oidc(name) if config.provider(name).is_none() => Some(name.as_str()),
        _ => None,
    })
}

/// Validates an app created or updated through the admin API. Problems name
/// the JSON field; a static folder must be an absolute path (there is no
/// config file for a relative one to be relative to).
pub fn validate_api_app(a: &RawApp) -> Result<App, Vec<Problem>> {
    validate_api_app_with(a, &FileSystem)
}

/// [`validate_api_app`], reading a static bundle from `bundles`.
pub(crate) fn validate_api_app_with(
    a: &RawApp,
    bundles: &dyn BundleSource,
) -> Result<App, Vec<Problem>> {
    let mut c = Checker::new(Path::new("/"));
    let relative = a
        .static_dir
        .as_ref()
        .filter(|d| !Path::new(d).is_absolute());
    if let Some(d) = relative {
        c.problem(
            "static",
            format!("{d:?} is not an absolute path"),
            "give the bundle's folder as an absolute path, e.g. \"/srv/apps/notes\"",
        );
    }
    let app = apps::validate(&mut c, a, AppOrigin::Api, bundles);
    let problems = c.into_problems();
    match app {
        Some(app) if problems.is_empty() => Ok(app),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests;
