//! moat's own namespace on the app listeners, `/_moat/`: the paths moat
//! answers itself, before any app is routed. One list, so the runtime
//! (which names the report endpoint in every policy) and the stages agree.

/// The namespace's prefix.
pub const NAMESPACE: &str = "/_moat";
/// The admin API over HTTPS (off unless `security.admin_over_tcp`).
pub const ADMIN_API: &str = "/_moat/api/";
/// The admin portal (`[portal]`): the prefix its pages' links carry.
pub const PORTAL: &str = "/_moat/portal";
/// CSP violation reports, one endpoint per app.
pub const CSP_REPORT_PREFIX: &str = "/_moat/csp-report/";
/// OpenID Connect logins: `/_moat/oidc/NAME/start` and `.../callback`.
pub const OIDC_PREFIX: &str = "/_moat/oidc/";

/// The callback path of a provider (what the provider is told to
/// redirect to, on the host the login began on).
pub fn oidc_callback_path(provider: &str) -> String {
    format!("{OIDC_PREFIX}{provider}/callback")
}

/// The path that begins a login through a provider.
pub fn oidc_start_path(provider: &str) -> String {
    format!("{OIDC_PREFIX}{provider}/start")
}

/// The Reporting API endpoint name used in every policy.
pub const CSP_REPORT_GROUP: &str = "moat-csp";

/// The CSP report endpoint of an app.
pub fn csp_report_path(app: &str) -> String {
    format!("{CSP_REPORT_PREFIX}{app}")
}

/// Whether a path is the admin API's.
pub fn is_admin_api(path: &str) -> bool {
    path.starts_with(ADMIN_API) || path == "/_moat/api"
}
