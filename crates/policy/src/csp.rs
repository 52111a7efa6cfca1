//! Content-Security-Policy: parsing and checking policies and sources, and
//! composing an app's policy from layers with the origin of every source.
//!
//! The layers, in order:
//! 1. the **base** policy (`[csp] policy`), written by the admin;
//! 2. the **manifest**'s requests: sources an app asks for, applied only
//!    once approved (by the app's admin layer, a server-wide allow rule, or
//!    an approval granted through the admin API), else left pending;
//! 3. the **admin** layer of the app: sources it adds (applied at once) and
//!    removes (removals win over everything).
//!
//! Composition follows CSP's fallback rules so that it never widens or
//! narrows anything by accident: a source added to a fetch directive the
//! policy lacks first copies what the directive fell back to (e.g.
//! `default-src`), so the new directive allows what it allowed before plus
//! the new source; a source added to a directive holding `'none'` replaces
//! it; a requested source for a directive that nothing restricts is already
//! allowed and changes nothing. A removal that empties a directive leaves
//! `'none'`.
//!
//! Dangerous sources (`'unsafe-inline'`, `'unsafe-eval'`, `*`, wildcard
//! hosts, scheme-only sources where scripts load, hosts serving anyone's
//! content without a path) are refused unless the admin layer names them in
//! `allow_unsafe`; nothing in a manifest can make them acceptable.

use std::fmt;

/// Directives whose value is a source list.
const SOURCE_LIST: &[&str] = &[
    "default-src",
    "child-src",
    "connect-src",
    "font-src",
    "frame-src",
    "fenced-frame-src",
    "img-src",
    "manifest-src",
    "media-src",
    "object-src",
    "script-src",
    "script-src-elem",
    "script-src-attr",
    "style-src",
    "style-src-elem",
    "style-src-attr",
    "worker-src",
    "base-uri",
    "form-action",
    "frame-ancestors",
];

/// Directives with other values, passed through as written.
const OTHER: &[&str] = &[
    "sandbox",
    "upgrade-insecure-requests",
    "require-trusted-types-for",
    "trusted-types",
    "webrtc",
];

/// Directives moat writes itself (reporting).
const MOAT_OWNED: &[&str] = &["report-uri", "report-to"];

/// Where scripts (or plugins, or the base URL) come from: scheme-only
/// sources there let any page on the web run code.
const SCRIPT_LIKE: &[&str] = &[
    "default-src",
    "script-src",
    "script-src-elem",
    "script-src-attr",
    "object-src",
    "worker-src",
    "base-uri",
];

const KEYWORDS: &[&str] = &[
    "'self'",
    "'none'",
    "'unsafe-inline'",
    "'unsafe-eval'",
    "'unsafe-hashes'",
    "'strict-dynamic'",
    "'report-sample'",
    "'wasm-unsafe-eval'",
    "'inline-speculation-rules'",
];

/// Hosts that serve content anyone can publish: allowed only with a path
/// that narrows them to one publisher's files.
const USER_CONTENT_HOSTS: &[&str] = &[
    "raw.githubusercontent.com",
    "gist.githubusercontent.com",
    "objects.githubusercontent.com",
    "cdn.jsdelivr.net",
    "unpkg.com",
    "cdnjs.cloudflare.com",
    "esm.sh",
    "cdn.skypack.dev",
    "storage.googleapis.com",
    "s3.amazonaws.com",
    "firebasestorage.googleapis.com",
    "pastebin.com",
    "glitch.me",
    "github.io",
    "gitlab.io",
    "netlify.app",
    "vercel.app",
    "pages.dev",
    "herokuapp.com",
    "blob.core.windows.net",
];

/// The fetch directive a directive falls back to when absent (one step).
pub fn fallback(directive: &str) -> Option<&'static str> {
    Some(match directive {
        "script-src-elem" | "script-src-attr" => "script-src",
        "style-src-elem" | "style-src-attr" => "style-src",
        "worker-src" => "child-src",
        "frame-src" | "fenced-frame-src" => "child-src",
        "child-src" | "connect-src" | "font-src" | "img-src" | "manifest-src" | "media-src"
        | "object-src" | "script-src" | "style-src" => "default-src",
        _ => return None,
    })
}

/// The whole fallback chain of a directive, nearest first (worker-src:
/// child-src, script-src, default-src).
pub fn fallback_chain(directive: &str) -> Vec<&'static str> {
    let mut chain = Vec::new();
    let mut d = directive.to_owned();
    while let Some(next) = fallback(&d) {
        // CSP3: worker-src → child-src → script-src → default-src.
        if d == "child-src" && directive == "worker-src" {
            chain.push("script-src");
            chain.push("default-src");
            break;
        }
        chain.push(next);
        d = next.to_owned();
    }
    chain
}

/// A problem with a directive or a source, in words an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspError {
    pub message: String,
    pub fix: Option<String>,
}

impl CspError {
    fn new(message: impl Into<String>, fix: Option<String>) -> Self {
        CspError {
            message: message.into(),
            fix,
        }
    }
}

impl fmt::Display for CspError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, " (fix: {fix})")?;
        }
        Ok(())
    }
}

/// Checks a directive name for a layer that lists sources; returns it in
/// lower case.
pub fn check_directive(name: &str) -> Result<String, CspError> {
    let lower = name.trim().to_ascii_lowercase();
    if SOURCE_LIST.contains(&lower.as_str()) {
        return Ok(lower);
    }
    if MOAT_OWNED.contains(&lower.as_str()) {
        return Err(CspError::new(
            format!("{lower} is set by moat itself (it collects violation reports for each app)"),
            Some("remove it".into()),
        ));
    }
    if OTHER.contains(&lower.as_str()) {
        return Err(CspError::new(
            format!("{lower} does not take sources"),
            Some(format!("set {lower} in the base policy ([csp] policy)")),
        ));
    }
    let near = SOURCE_LIST
        .iter()
        .chain(OTHER)
        .map(|d| (edit_distance(d, &lower), d))
        .filter(|(n, _)| *n <= 2)
        .min()
        .map(|(_, d)| d);
    Err(CspError::new(
        format!("{name:?} is not a CSP directive"),
        Some(match near {
            Some(d) => format!("did you mean {d}?"),
            None => "use a directive such as connect-src, img-src or frame-src".into(),
        }),
    ))
}

/// Whether a directive's value is a source list.
pub fn takes_sources(directive: &str) -> bool {
    SOURCE_LIST.contains(&directive)
}

const SANDBOX: &[&str] = &[
    "allow-downloads",
    "allow-forms",
    "allow-modals",
    "allow-orientation-lock",
    "allow-pointer-lock",
    "allow-popups",
    "allow-popups-to-escape-sandbox",
    "allow-presentation",
    "allow-same-origin",
    "allow-scripts",
    "allow-storage-access-by-user-activation",
    "allow-top-navigation",
    "allow-top-navigation-by-user-activation",
    "allow-top-navigation-to-custom-protocols",
];

/// Checks the value of a directive that does not take sources.
fn check_other(d: &str, values: &[String]) -> Result<(), CspError> {
    let bad = |what: &str| Err(CspError::new(format!("{d}: {what}"), None));
    match d {
        "upgrade-insecure-requests" if !values.is_empty() => bad("takes no value"),
        "sandbox" => match values
            .iter()
            .find(|v| !SANDBOX.contains(&v.to_ascii_lowercase().as_str()))
        {
            Some(v) => Err(CspError::new(
                format!("sandbox: {v:?} is not a sandbox flag"),
                Some(format!("use flags such as {}", SANDBOX[..4].join(", "))),
            )),
            None => Ok(()),
        },
        "require-trusted-types-for" if values != ["'script'"] => bad("the only value is 'script'"),
        "webrtc" if !(values.len() == 1 && (values[0] == "'allow'" || values[0] == "'block'")) => {
            bad("the value is 'allow' or 'block'")
        }
        "trusted-types" => {
            let ok = values.iter().all(|v| {
                matches!(v.as_str(), "'none'" | "'allow-duplicates'" | "*")
                    || v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-#=_/@.%".contains(&b))
            });
            if !ok {
                bad("a policy name holds a character that is not allowed")
            } else if values.len() > 1 && values.iter().any(|v| v == "'none'") {
                bad("'none' cannot stand beside policy names")
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// Levenshtein distance, for "did you mean" hints on short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Checks one source expression; returns it normalised (keywords and
/// schemes in lower case).
pub fn check_source(source: &str) -> Result<String, CspError> {
    let s = source.trim();
    if s.is_empty() {
        return Err(CspError::new("empty source", None));
    }
    if s.starts_with('\'') {
        let lower = s.to_ascii_lowercase();
        if KEYWORDS.contains(&lower.as_str()) {
            return Ok(lower);
        }
        let inner = s.trim_matches('\'');
        for prefix in ["nonce-", "sha256-", "sha384-", "sha512-"] {
            if let Some(value) = inner.strip_prefix(prefix) {
                let ok = !value.is_empty()
                    && s.ends_with('\'')
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b));
                return if ok {
                    Ok(s.to_owned())
                } else {
                    Err(CspError::new(
                        format!("{s} is not a valid {prefix}… source"),
                        Some("write the base64 value inside quotes, e.g. 'sha256-…='".into()),
                    ))
                };
            }
        }
        return Err(CspError::new(
            format!("{s} is not a CSP keyword"),
            Some(format!("use one of {}", KEYWORDS.join(", "))),
        ));
    }
    let bare = format!("'{}'", s.to_ascii_lowercase());
    if KEYWORDS.contains(&bare.as_str()) {
        return Err(CspError::new(
            format!("unknown source {s}"),
            Some(format!(
                "did you mean \"{bare}\"? keywords are written in single quotes"
            )),
        ));
    }
    if s == "*" {
        return Ok(s.into());
    }
    if s.ends_with(':') && !s.contains('/') {
        let scheme = &s[..s.len() - 1];
        return if is_scheme(scheme) {
            Ok(s.to_ascii_lowercase())
        } else {
            Err(CspError::new(format!("{s} is not a scheme"), None))
        };
    }
    check_host_source(s).map_err(|why| {
        CspError::new(
            format!("{s} is not a valid source: {why}"),
            Some("write a host source such as https://api.example.com or https://cdn.example.com/lib/".into()),
        )
    })
}

fn is_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || b"+.-".contains(&c))
}

fn check_host_source(s: &str) -> Result<String, &'static str> {
    if s.bytes()
        .any(|b| b.is_ascii_whitespace() || b == b';' || b == b',' || b.is_ascii_control())
    {
        return Err("it holds a space, ';' or ','");
    }
    let (scheme, rest) = match s.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme.to_ascii_lowercase()), rest),
        Some(_) => return Err("the scheme is not valid"),
        None => (None, s),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if let Some(p) = port {
        if !(p == "*" || (!p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))) {
            return Err("the port is not a number");
        }
    }
    let labels = host.strip_prefix("*.").unwrap_or(host);
    if host != "*"
        && (labels.is_empty()
            || !labels.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
    {
        return Err("the host is not a host name");
    }
    let mut out = String::new();
    if let Some(scheme) = scheme {
        out.push_str(&scheme);
        out.push_str("://");
    }
    out.push_str(&host.to_ascii_lowercase());
    if let Some(p) = port {
        out.push(':');
        out.push_str(p);
    }
    out.push_str(path);
    Ok(out)
}

/// Why a source is dangerous in a directive, if it is.
pub fn danger(directive: &str, source: &str) -> Option<String> {
    let s = source.to_ascii_lowercase();
    match s.as_str() {
        "'unsafe-inline'" => {
            return Some("'unsafe-inline' lets injected markup run script or style".into());
        }
        "'unsafe-eval'" => return Some("'unsafe-eval' lets strings run as code".into()),
        "'unsafe-hashes'" => return Some("'unsafe-hashes' lets inline event handlers run".into()),
        "*" => return Some("* allows any host".into()),
        _ => {}
    }
    if s.ends_with(':') && !s.contains('/') {
        return SCRIPT_LIKE.contains(&directive).then(|| {
            format!("the scheme-only source {s} in {directive} allows any host with that scheme")
        });
    }
    if s.starts_with('\'') {
        return None;
    }
    let rest = s.split_once("://").map(|(_, r)| r).unwrap_or(&s);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(authority);
    if host == "*" || host.starts_with("*.") {
        return Some(format!(
            "the wildcard host {host} allows hosts nobody has reviewed"
        ));
    }
    let user_content = USER_CONTENT_HOSTS
        .iter()
        .any(|u| host == *u || host.ends_with(&format!(".{u}")));
    if user_content && path.len() <= 1 {
        return Some(format!(
            "{host} serves content anyone can publish; allow a path that narrows it (e.g. {host}/OWNER/PROJECT/)"
        ));
    }
    None
}

/// A parsed policy: directives in order, names in lower case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub directives: Vec<(String, Vec<String>)>,
}

impl Policy {
    /// Parses a policy such as `default-src 'self'; object-src 'none'`.
    /// Every bad directive and source is reported.
    pub fn parse(text: &str) -> Result<Policy, Vec<CspError>> {
        let mut errors = Vec::new();
        let mut directives: Vec<(String, Vec<String>)> = Vec::new();
        for part in text.split(';') {
            let mut tokens = part.split_ascii_whitespace();
            let Some(name) = tokens.next() else { continue };
            let lower = name.to_ascii_lowercase();
            if directives.iter().any(|(d, _)| *d == lower) {
                errors.push(CspError::new(
                    format!("{lower} appears twice (browsers ignore the second)"),
                    Some("merge the two into one".into()),
                ));
                continue;
            }
            if OTHER.contains(&lower.as_str()) {
                let values: Vec<String> = tokens.map(str::to_owned).collect();
                match check_other(&lower, &values) {
                    Ok(()) => directives.push((lower, values)),
                    Err(e) => errors.push(e),
                }
                continue;
            }
            match check_directive(name) {
                Ok(d) => {
                    let mut sources = Vec::new();
                    for t in tokens {
                        match check_source(t) {
                            Ok(s) => {
                                if !sources.contains(&s) {
                                    sources.push(s)
                                }
                            }
                            Err(e) => {
                                errors.push(CspError::new(format!("{d}: {}", e.message), e.fix))
                            }
                        }
                    }
                    if sources.len() > 1 && sources.iter().any(|s| s == "'none'") {
                        errors.push(CspError::new(
                            format!("{d}: 'none' cannot stand beside other sources"),
                            Some("remove 'none', or the other sources".into()),
                        ));
                    }
                    directives.push((d, sources));
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Policy { directives })
        } else {
            Err(errors)
        }
    }

    pub fn get(&self, directive: &str) -> Option<&[String]> {
        self.directives
            .iter()
            .find(|(d, _)| d == directive)
            .map(|(_, s)| s.as_slice())
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (d, sources)) in self.directives.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(d)?;
            for s in sources {
                write!(f, " {s}")?;
            }
        }
        Ok(())
    }
}

/// One directive and source: a request, an addition, a removal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    pub directive: String,
    pub source: String,
}

impl Grant {
    /// Checks both parts; the error names what is wrong.
    pub fn new(directive: &str, source: &str) -> Result<Grant, CspError> {
        let directive = check_directive(directive)?;
        let source = check_source(source).map_err(|e| CspError {
            message: format!("{directive}: {}", e.message),
            fix: e.fix,
        })?;
        if source == "'none'" {
            return Err(CspError::new(
                format!("{directive}: 'none' cannot be added"),
                Some("to forbid a directive's sources, remove them instead".into()),
            ));
        }
        Ok(Grant { directive, source })
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.directive, self.source)
    }
}

/// A server-wide approval (`[[csp.allow]]`): a source, exactly or by an
/// anchored regular expression, optionally for one directive only.
#[derive(Debug, Clone)]
pub struct AllowRule {
    pub directive: Option<String>,
    pub pattern: SourcePattern,
}

#[derive(Debug, Clone)]
pub enum SourcePattern {
    Exact(String),
    Regex(regex::Regex),
}

impl SourcePattern {
    /// `regex:PATTERN` (anchored at both ends) or an exact source.
    pub fn parse(text: &str) -> Result<SourcePattern, CspError> {
        match text.strip_prefix("regex:") {
            Some(re) => regex::Regex::new(&format!("^(?:{re})$"))
                .map(SourcePattern::Regex)
                .map_err(|e| CspError::new(format!("not a valid regular expression: {e}"), None)),
            None => check_source(text).map(SourcePattern::Exact),
        }
    }

    pub fn matches(&self, source: &str) -> bool {
        match self {
            SourcePattern::Exact(s) => s == source,
            SourcePattern::Regex(r) => r.is_match(source),
        }
    }

    pub fn as_text(&self) -> String {
        match self {
            SourcePattern::Exact(s) => s.clone(),
            SourcePattern::Regex(r) => {
                let s = r.as_str();
                format!("regex:{}", &s[4..s.len() - 2])
            }
        }
    }
}

impl AllowRule {
    pub fn approves(&self, g: &Grant) -> bool {
        self.directive.as_ref().is_none_or(|d| *d == g.directive) && self.pattern.matches(&g.source)
    }
}

/// Which layer a source in the composed policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Base,
    Manifest,
    Admin,
    /// Added by moat itself (a per-response nonce).
    Moat,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Base => "base",
            Layer::Manifest => "manifest",
            Layer::Admin => "admin",
            Layer::Moat => "moat",
        }
    }
}

/// Why a source requested by a manifest is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Not a request: the base or the admin layer put it there.
    NotNeeded,
    /// The app's admin layer approves it.
    AdminLayer,
    /// A server-wide `[[csp.allow]]` rule (its pattern).
    Rule(String),
    /// Approved through the admin API (`moat csp approve`, the portal).
    Granted,
}

impl Approval {
    pub fn describe(&self) -> String {
        match self {
            Approval::NotNeeded => "not needed".into(),
            Approval::AdminLayer => "approved by the app's admin layer".into(),
            Approval::Rule(p) => format!("approved by [[csp.allow]] {p}"),
            Approval::Granted => {
                "approved by an admin (moat csp approve, the API or the portal)".into()
            }
        }
    }
}

/// A source in the composed policy and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub source: String,
    pub layer: Layer,
    pub approval: Approval,
    /// Copied from this directive when the directive was created, because
    /// CSP would have fallen back to it.
    pub inherited_from: Option<String>,
}

/// Everything that goes into one app's policy.
#[derive(Debug, Clone)]
pub struct Layers<'a> {
    pub base: &'a Policy,
    /// What the app's manifest asks for.
    pub requested: &'a [Grant],
    pub admin_add: &'a [Grant],
    pub admin_remove: &'a [Grant],
    pub admin_approve: &'a [Grant],
    pub admin_approve_all: bool,
    /// Dangerous sources the admin accepts for this app.
    pub allow_unsafe: &'a [Grant],
    pub rules: &'a [AllowRule],
    /// Approvals granted through the admin API.
    pub granted: &'a [Grant],
}

static EMPTY_POLICY: Policy = Policy {
    directives: Vec::new(),
};

impl Default for Layers<'_> {
    fn default() -> Self {
        Layers {
            base: &EMPTY_POLICY,
            requested: &[],
            admin_add: &[],
            admin_remove: &[],
            admin_approve: &[],
            admin_approve_all: false,
            allow_unsafe: &[],
            rules: &[],
            granted: &[],
        }
    }
}

/// A composed policy, explained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Composed {
    pub directives: Vec<(String, Vec<Entry>)>,
    /// Requested and not approved: not applied.
    pub pending: Vec<Grant>,
    /// Dangerous and not in `allow_unsafe`: never applied.
    pub refused: Vec<(Grant, String)>,
    /// Requested for a directive nothing restricts: allowed already.
    pub unrestricted: Vec<Grant>,
}

impl Composed {
    /// The header value.
    pub fn header_value(&self) -> String {
        self.directives
            .iter()
            .map(|(d, entries)| {
                let mut s = d.clone();
                for e in entries {
                    s.push(' ');
                    s.push_str(&e.source);
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn sources(&self, directive: &str) -> Option<Vec<&str>> {
        self.directives
            .iter()
            .find(|(d, _)| d == directive)
            .map(|(_, e)| e.iter().map(|e| e.source.as_str()).collect())
    }

    fn position(&self, directive: &str) -> Option<usize> {
        self.directives.iter().position(|(d, _)| d == directive)
    }

    /// Adds a source. `create`: make the directive even when nothing
    /// restricts it now (the admin's explicit wish); otherwise such an
    /// addition changes nothing and returns false.
    fn add(&mut self, g: &Grant, layer: Layer, approval: Approval, create: bool) -> bool {
        let i = match self.position(&g.directive) {
            Some(i) => i,
            None => {
                let inherited = fallback_chain(&g.directive)
                    .into_iter()
                    .find_map(|a| self.position(a).map(|i| (a, i)));
                let entries = match inherited {
                    Some((from, i)) => self.directives[i]
                        .1
                        .iter()
                        .map(|e| Entry {
                            inherited_from: Some(
                                e.inherited_from.clone().unwrap_or_else(|| from.to_owned()),
                            ),
                            ..e.clone()
                        })
                        .collect(),
                    None if create => Vec::new(),
                    None => return false,
                };
                self.directives.push((g.directive.clone(), entries));
                self.directives.len() - 1
            }
        };
        let entries = &mut self.directives[i].1;
        if entries.len() == 1 && entries[0].source == "'none'" {
            entries.clear();
        }
        if !entries.iter().any(|e| e.source == g.source) {
            entries.push(Entry {
                source: g.source.clone(),
                layer,
                approval,
                inherited_from: None,
            });
        }
        true
    }

    fn remove(&mut self, g: &Grant) {
        // A removal from an absent directive that falls back to one holding
        // the source must first make the directive, or the source would
        // stay allowed through the fallback.
        let holds = |c: &Composed, d: &str| {
            c.position(d)
                .is_some_and(|i| c.directives[i].1.iter().any(|e| e.source == g.source))
        };
        if self.position(&g.directive).is_none() {
            let via = fallback_chain(&g.directive)
                .into_iter()
                .find(|a| self.position(a).is_some());
            match via {
                Some(a) if holds(self, a) => {
                    let i = self.position(a).unwrap();
                    let copied = self.directives[i]
                        .1
                        .iter()
                        .map(|e| Entry {
                            inherited_from: Some(
                                e.inherited_from.clone().unwrap_or_else(|| a.to_owned()),
                            ),
                            ..e.clone()
                        })
                        .collect();
                    self.directives.push((g.directive.clone(), copied));
                }
                _ => return,
            }
        }
        let i = self.position(&g.directive).unwrap();
        let entries = &mut self.directives[i].1;
        entries.retain(|e| e.source != g.source);
        if entries.is_empty() {
            entries.push(Entry {
                source: "'none'".into(),
                layer: Layer::Admin,
                approval: Approval::NotNeeded,
                inherited_from: None,
            });
        }
    }

    /// Adds a per-response nonce to the script and style directives (and
    /// `'strict-dynamic'` to scripts), creating them from their fallback if
    /// needed. Returns the policy with it.
    pub fn with_nonce(&self, nonce: &str) -> Composed {
        let mut c = self.clone();
        let n = format!("'nonce-{nonce}'");
        for d in ["script-src", "style-src"] {
            let g = Grant {
                directive: d.into(),
                source: n.clone(),
            };
            c.add(&g, Layer::Moat, Approval::NotNeeded, true);
        }
        c.add(
            &Grant {
                directive: "script-src".into(),
                source: "'strict-dynamic'".into(),
            },
            Layer::Moat,
            Approval::NotNeeded,
            true,
        );
        c
    }
}

/// Composes an app's policy from its layers.
pub fn compose(l: &Layers<'_>) -> Composed {
    let mut c = Composed {
        directives: l
            .base
            .directives
            .iter()
            .filter(|(d, _)| SOURCE_LIST.contains(&d.as_str()) || OTHER.contains(&d.as_str()))
            .map(|(d, sources)| {
                (
                    d.clone(),
                    sources
                        .iter()
                        .map(|s| Entry {
                            source: s.clone(),
                            layer: Layer::Base,
                            approval: Approval::NotNeeded,
                            inherited_from: None,
                        })
                        .collect(),
                )
            })
            .collect(),
        ..Default::default()
    };
    let unsafe_ok = |g: &Grant| l.allow_unsafe.contains(g);
    for g in l.requested {
        if let Some(why) = danger(&g.directive, &g.source) {
            if !unsafe_ok(g) {
                c.refused.push((g.clone(), why));
                continue;
            }
        }
        let approval = if l.admin_approve_all || l.admin_approve.contains(g) {
            Approval::AdminLayer
        } else if let Some(rule) = l.rules.iter().find(|r| r.approves(g)) {
            Approval::Rule(match &rule.directive {
                Some(d) => format!("{d} {}", rule.pattern.as_text()),
                None => rule.pattern.as_text(),
            })
        } else if l.granted.contains(g) {
            Approval::Granted
        } else {
            c.pending.push(g.clone());
            continue;
        };
        if !c.add(g, Layer::Manifest, approval, false) {
            c.unrestricted.push(g.clone());
        }
    }
    for g in l.admin_add {
        if let Some(why) = danger(&g.directive, &g.source) {
            if !unsafe_ok(g) {
                c.refused.push((g.clone(), why));
                continue;
            }
        }
        c.add(g, Layer::Admin, Approval::NotNeeded, true);
    }
    for g in l.admin_remove {
        c.remove(g);
    }
    c
}

#[cfg(test)]
mod tests;
