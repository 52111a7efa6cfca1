//! CSP violation reports as browsers send them, reduced to what an admin
//! needs to see what a new app is missing.
//!
//! Two formats: the legacy `report-uri` one (`application/csp-report`,
//! `{"csp-report": {...}}`) and the Reporting API's
//! (`application/reports+json`, an array of reports of which those with
//! `"type": "csp-violation"` count). URLs are cut to scheme, host and path:
//! a query may carry tokens, and the path is enough to tell one resource
//! from another.

use serde_json::Value;

/// One violation, normalised; equal values are the same violation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Violation {
    /// The directive that blocked (effective directive), e.g. `script-src-elem`.
    pub directive: String,
    /// What was blocked: a URL without query, or `inline`, `eval`, …
    pub blocked: String,
    /// The page it happened on, without query.
    pub document: String,
    /// `enforce` or `report`.
    pub disposition: String,
}

/// The largest report body moat reads.
pub const MAX_BODY: usize = 64 * 1024;
/// At most this many violations are taken from one body.
const MAX_PER_BODY: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportError {
    UnsupportedType,
    Malformed(String),
}

/// Parses a report body by its content type.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Violation>, ReportError> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let v: Value = match mime.as_str() {
        "application/csp-report" | "application/reports+json" | "application/json" => {
            serde_json::from_slice(body).map_err(|e| ReportError::Malformed(e.to_string()))?
        }
        _ => return Err(ReportError::UnsupportedType),
    };
    let mut out = Vec::new();
    if let Some(r) = v.get("csp-report") {
        out.extend(legacy(r));
    } else if let Some(list) = v.as_array() {
        for item in list.iter().take(MAX_PER_BODY) {
            if item.get("type").and_then(Value::as_str) == Some("csp-violation") {
                if let Some(body) = item.get("body") {
                    out.extend(modern(body));
                }
            }
        }
    } else {
        return Err(ReportError::Malformed(
            "neither a csp-report object nor a list of reports".into(),
        ));
    }
    Ok(out)
}

fn text<'a>(v: &'a Value, keys: &[&str]) -> &'a str {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .unwrap_or("")
}

fn legacy(r: &Value) -> Option<Violation> {
    let directive = text(r, &["effective-directive", "violated-directive"]);
    let directive = directive.split_whitespace().next().unwrap_or("");
    violation(
        directive,
        text(r, &["blocked-uri"]),
        text(r, &["document-uri"]),
        text(r, &["disposition"]),
    )
}

fn modern(b: &Value) -> Option<Violation> {
    violation(
        text(b, &["effectiveDirective"]),
        text(b, &["blockedURL"]),
        text(b, &["documentURL"]),
        text(b, &["disposition"]),
    )
}

fn violation(
    directive: &str,
    blocked: &str,
    document: &str,
    disposition: &str,
) -> Option<Violation> {
    let directive = directive.trim().to_ascii_lowercase();
    let ok = !directive.is_empty()
        && directive.len() <= 40
        && directive
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-');
    if !ok {
        return None;
    }
    Some(Violation {
        directive,
        blocked: short_url(blocked),
        document: short_url(document),
        disposition: match disposition {
            "report" => "report".into(),
            _ => "enforce".into(),
        },
    })
}

/// A URL without query or fragment, bounded in length; keywords such as
/// `inline` pass as they are.
fn short_url(u: &str) -> String {
    let cut = u.find(['?', '#']).map(|i| &u[..i]).unwrap_or(u);
    let cut: String = cut.chars().filter(|c| !c.is_control()).take(512).collect();
    if cut.is_empty() { "(none)".into() } else { cut }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_reports() {
        let body = br#"{"csp-report": {"document-uri": "https://moat.example/notes/?token=1",
            "violated-directive": "script-src-elem", "effective-directive": "script-src-elem",
            "blocked-uri": "https://cdn.example/lib.js?v=2#x", "disposition": "enforce"}}"#;
        let v = parse("application/csp-report", body).unwrap();
        assert_eq!(
            v,
            [Violation {
                directive: "script-src-elem".into(),
                blocked: "https://cdn.example/lib.js".into(),
                document: "https://moat.example/notes/".into(),
                disposition: "enforce".into(),
            }]
        );
    }

    #[test]
    fn reporting_api_reports() {
        let body = br#"[{"type": "csp-violation", "url": "https://m/x", "body": {
              "documentURL": "https://m/x", "blockedURL": "inline", "effectiveDirective": "style-src-attr",
              "disposition": "report"}},
            {"type": "deprecation", "body": {}}]"#;
        let v = parse("application/reports+json", body).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].blocked, "inline");
        assert_eq!(v[0].disposition, "report");
    }

    #[test]
    fn refusals() {
        assert_eq!(
            parse("text/plain", b"{}"),
            Err(ReportError::UnsupportedType)
        );
        assert!(matches!(
            parse("application/csp-report", b"{not json"),
            Err(ReportError::Malformed(_))
        ));
        assert!(matches!(
            parse("application/json", b"42"),
            Err(ReportError::Malformed(_))
        ));
        // A report whose directive is garbage is dropped, not stored.
        let v = parse(
            "application/csp-report",
            br#"{"csp-report": {"effective-directive": "<script>"}}"#,
        )
        .unwrap();
        assert!(v.is_empty());
    }
}
