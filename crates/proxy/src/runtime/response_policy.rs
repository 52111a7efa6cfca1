//! The response headers of one app, built once per config: moat's
//! security headers with the app's overrides, the composed
//! Content-Security-Policy, and the headers an upstream's copy of which is
//! removed. The response stage (`pipeline::response_headers`) only copies
//! them.

use http::{HeaderName, HeaderValue, header};
use moat_config::Headers;
use moat_policy::csp::Composed;

use crate::namespace;

/// Headers upstreams commonly use to advertise their software; an
/// attacker's shortcut to known vulnerabilities, so they do not leave moat.
pub(crate) const FINGERPRINT: [HeaderName; 2] =
    [header::SERVER, HeaderName::from_static("x-powered-by")];

const COOP: HeaderName = HeaderName::from_static("cross-origin-opener-policy");
const COEP: HeaderName = HeaderName::from_static("cross-origin-embedder-policy");
const CORP: HeaderName = HeaderName::from_static("cross-origin-resource-policy");
const PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");
pub const REPORTING_ENDPOINTS: HeaderName = HeaderName::from_static("reporting-endpoints");

/// Every header moat may set; an upstream's copy of each is removed.
const OWNED: [HeaderName; 11] = [
    header::X_FRAME_OPTIONS,
    header::X_CONTENT_TYPE_OPTIONS,
    header::REFERRER_POLICY,
    COOP,
    COEP,
    CORP,
    PERMISSIONS_POLICY,
    header::CONTENT_SECURITY_POLICY,
    header::CONTENT_SECURITY_POLICY_REPORT_ONLY,
    REPORTING_ENDPOINTS,
    header::STRICT_TRANSPORT_SECURITY,
];

/// One app's response headers, built once per config.
pub struct ResponsePolicy {
    /// Set on every response.
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Removed from upstream responses first.
    pub hide: Vec<HeaderName>,
    /// The composed CSP, explained (for the admin API and nonces).
    pub csp: Composed,
    /// `Content-Security-Policy` or `...-Report-Only`.
    pub csp_header: HeaderName,
    /// The CSP exactly as sent (with the report endpoint).
    pub csp_value: String,
    /// What follows the directives in the CSP: the report endpoint.
    pub csp_report_suffix: String,
    /// A fresh nonce on every HTML response (`csp.nonce`).
    pub nonce: bool,
}

impl ResponsePolicy {
    /// `report_to`: the app's report endpoint path, named in the policy
    /// (`report-uri` and `report-to`) and in `Reporting-Endpoints`.
    pub fn build(
        headers: &Headers,
        csp: Composed,
        report_only: bool,
        report_to: Option<&str>,
        nonce: bool,
    ) -> ResponsePolicy {
        let mut set = Vec::new();
        let mut put = |name: HeaderName, v: &Option<String>| {
            if let Some(v) = v.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                set.push((name, v));
            }
        };
        put(header::X_FRAME_OPTIONS, &headers.frame_options);
        put(
            header::X_CONTENT_TYPE_OPTIONS,
            &headers.content_type_options,
        );
        put(header::REFERRER_POLICY, &headers.referrer_policy);
        put(COOP, &headers.cross_origin_opener_policy);
        put(COEP, &headers.cross_origin_embedder_policy);
        put(CORP, &headers.cross_origin_resource_policy);
        put(PERMISSIONS_POLICY, &headers.permissions_policy);
        let csp_header = if report_only {
            header::CONTENT_SECURITY_POLICY_REPORT_ONLY
        } else {
            header::CONTENT_SECURITY_POLICY
        };
        let mut value = csp.header_value();
        let mut csp_report_suffix = String::new();
        if !value.is_empty() {
            if let Some(path) = report_to {
                csp_report_suffix = format!(
                    "; report-uri {path}; report-to {}",
                    namespace::CSP_REPORT_GROUP
                );
                value.push_str(&csp_report_suffix);
                if let Ok(v) =
                    HeaderValue::from_str(&format!("{}=\"{path}\"", namespace::CSP_REPORT_GROUP))
                {
                    set.push((REPORTING_ENDPOINTS, v));
                }
            }
            if let Ok(v) = HeaderValue::from_str(&value) {
                set.push((csp_header.clone(), v));
            }
        }
        let csp_value = value;
        let mut hide: Vec<HeaderName> = OWNED.iter().chain(FINGERPRINT.iter()).cloned().collect();
        hide.extend(
            headers
                .hide_upstream
                .iter()
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok()),
        );
        ResponsePolicy {
            set,
            hide,
            csp,
            csp_header,
            csp_value,
            csp_report_suffix,
            nonce,
        }
    }
}
