//! What a recording must never keep: credentials in headers, query strings
//! and bodies.
//!
//! A built-in list of credential names is always applied, whatever an app
//! adds; names match without regard to case, `-` and `_` alike, and each
//! part of a compound name (`user[password]`, `auth.token`). Bodies are
//! redacted by what they are, not by what they claim: JSON is found by
//! parsing (so JSON sent as `text/plain` is redacted too), form-encoded and
//! multipart fields by their names. What cannot be redacted with
//! certainty (a cut-off or unparsable body of a type that could hold a
//! credential) is not kept at all.

use std::borrow::Cow;

/// Headers always redacted.
pub const DEFAULT_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
    "x-xsrf-token",
];

/// Field names always redacted (exact, after normalising).
pub const DEFAULT_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "api_key",
    "apikey",
    "otp",
    "totp",
    "code",
    "code_verifier",
    "pin",
];

/// Parts of a field name that make it a credential wherever they appear
/// (`new_password`, `csrfToken`, `x_api_key`).
const STEMS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "private_key",
    "credential",
];

pub const REDACTED: &str = "[redacted]";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    headers: Vec<String>,
    fields: Vec<String>,
}

/// What to keep of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// These bytes (redacted where needed).
    Bytes(Vec<u8>),
    /// Nothing: it could not be redacted with certainty.
    Nothing,
}

fn normalise(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('-', "_")
}

impl Redactor {
    /// The built-in lists and the app's additions.
    pub fn new(extra_headers: &[String], extra_fields: &[String]) -> Redactor {
        let mut headers: Vec<String> = DEFAULT_HEADERS.iter().map(|s| s.to_string()).collect();
        headers.extend(extra_headers.iter().map(|h| h.trim().to_ascii_lowercase()));
        headers.sort();
        headers.dedup();
        let mut fields: Vec<String> = DEFAULT_FIELDS.iter().map(|s| s.to_string()).collect();
        fields.extend(extra_fields.iter().map(|f| normalise(f)));
        fields.sort();
        fields.dedup();
        Redactor { headers, fields }
    }

    /// Every header redacted (lower case).
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Every field name redacted (normalised).
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    pub fn is_secret_header(&self, name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        // The listed names, and any whose name says it is a credential
        // (X-Goog-Api-Key, X-Amz-Security-Token, Private-Token, ...).
        self.headers.contains(&n) || {
            let flat = n.replace(['-', '_'], "");
            STEMS.iter().any(|s| flat.contains(&s.replace('_', "")))
        }
    }

    /// Whether a field (JSON member, form or multipart field, query
    /// parameter) holds a credential.
    pub fn is_secret_field(&self, name: &str) -> bool {
        let n = normalise(name);
        // Compared without `_` too: camelCase and snake_case are one name
        // (apiKey, api_key, API-KEY).
        n.split(['[', ']', '.']).filter(|p| !p.is_empty()).any(|p| {
            let flat = p.replace('_', "");
            self.fields
                .iter()
                .any(|f| f == p || f.replace('_', "") == flat)
                || STEMS.iter().any(|s| flat.contains(&s.replace('_', "")))
        })
    }

    /// A query string (or a form body) with credential values replaced.
    pub fn query<'a>(&self, q: &'a str) -> Cow<'a, str> {
        if !q.split('&').any(|pair| self.pair_is_secret(pair)) {
            return Cow::Borrowed(q);
        }
        let out: Vec<String> = q
            .split('&')
            .map(|pair| {
                if self.pair_is_secret(pair) {
                    let key = pair.split_once('=').map_or(pair, |(k, _)| k);
                    format!("{key}={REDACTED}")
                } else {
                    pair.to_owned()
                }
            })
            .collect();
        Cow::Owned(out.join("&"))
    }

    fn pair_is_secret(&self, pair: &str) -> bool {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        let decoded = percent_encoding::percent_decode_str(&key.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        self.is_secret_field(&decoded)
    }

    /// A request target (`/path?query`) with the query redacted.
    /// A URL's query and fragment redacted (OAuth's implicit flow puts
    /// tokens in the fragment: `#access_token=...`).
    pub fn uri(&self, uri: &str) -> String {
        let (rest, fragment) = match uri.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (uri, None),
        };
        let mut out = match rest.split_once('?') {
            Some((path, q)) => format!("{path}?{}", self.query(q)),
            None => rest.to_owned(),
        };
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(&self.query(f));
        }
        out
    }

    /// What to keep of a body of `content_type` (sent with
    /// `content_encoding`) whose first bytes are `body`; `complete` says
    /// whether that is all of it.
    pub fn body(
        &self,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        body: &[u8],
        complete: bool,
    ) -> Kept {
        let ct = content_type
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        if body.is_empty() {
            return Kept::Bytes(Vec::new());
        }
        // A compressed body cannot be searched for credentials (and
        // anyone can decompress it): not kept.
        if content_encoding.is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity")) {
            return Kept::Nothing;
        }
        if !complete {
            // A cut-off body cannot be parsed to find its credentials:
            // only media that cannot hold a form or JSON keep their start.
            return if is_opaque_media(&ct) {
                Kept::Bytes(body.to_vec())
            } else {
                Kept::Nothing
            };
        }
        if ct == "multipart/form-data" {
            return match content_type.and_then(boundary) {
                Some(b) => self.multipart(body, &b).map_or(Kept::Nothing, Kept::Bytes),
                None => Kept::Nothing,
            };
        }
        if ct == "application/x-www-form-urlencoded" {
            return match std::str::from_utf8(body) {
                Ok(text) => Kept::Bytes(self.query(text).into_owned().into_bytes()),
                Err(_) => Kept::Nothing,
            };
        }
        if is_opaque_media(&ct) {
            return Kept::Bytes(body.to_vec());
        }
        // Whatever it claims to be: JSON if it parses as JSON.
        if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) {
            self.json(&mut v);
            return Kept::Bytes(v.to_string().into_bytes());
        }
        // Claims JSON but does not parse (a BOM, NDJSON, JSONP, too deep):
        // its credentials cannot be found, so it is not kept.
        if ct.contains("json") {
            return Kept::Nothing;
        }
        // Text shaped like a form (`a=1&password=x`) is redacted as one.
        if let Ok(text) = std::str::from_utf8(body) {
            if looks_like_form(text) {
                return Kept::Bytes(self.query(text).into_owned().into_bytes());
            }
        }
        Kept::Bytes(body.to_vec())
    }

    /// Replaces the value of every credential member, at any depth.
    pub fn json(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, val) in map.iter_mut() {
                    if self.is_secret_field(k) {
                        *val = serde_json::Value::String(REDACTED.into());
                    } else {
                        self.json(val);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| self.json(i)),
            _ => {}
        }
    }

    /// A multipart body with the content of credential fields replaced;
    /// `None` if it does not parse.
    fn multipart(&self, body: &[u8], boundary: &str) -> Option<Vec<u8>> {
        let delim = format!("--{boundary}").into_bytes();
        let parts = split_on(body, &delim);
        // parts[0] is the preamble; the last one starts with "--".
        if parts.len() < 2 {
            return None;
        }
        // A preamble is ignored by servers but could hide fields from a
        // parser that disagrees on the boundary: refused.
        if !parts[0].iter().all(|b| b.is_ascii_whitespace()) {
            return None;
        }
        let mut out = Vec::with_capacity(body.len());
        out.extend_from_slice(parts[0]);
        let mut closed = false;
        for part in &parts[1..] {
            out.extend_from_slice(&delim);
            if part.starts_with(b"--") {
                out.extend_from_slice(part);
                closed = true;
                break;
            }
            let head_end = find(part, b"\r\n\r\n")?;
            let head = std::str::from_utf8(&part[..head_end]).ok()?;
            let name = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
                .and_then(disposition_name);
            out.extend_from_slice(&part[..head_end + 4]);
            let content = &part[head_end + 4..];
            match name {
                Some(n) if self.is_secret_field(&n) => {
                    out.extend_from_slice(REDACTED.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                _ => out.extend_from_slice(content),
            }
        }
        closed.then_some(out)
    }
}

/// Media whose bytes are not text a credential could be written in.
fn is_opaque_media(ct: &str) -> bool {
    ct.starts_with("image/")
        || ct.starts_with("audio/")
        || ct.starts_with("video/")
        || ct.starts_with("font/")
        || matches!(
            ct,
            "application/octet-stream"
                | "application/zip"
                | "application/gzip"
                | "application/pdf"
                | "application/wasm"
        )
}

/// Text with `=` and no whitespace: `a=1&password=x`, however its values
/// are written (`@`, `/`, `:` and such included).
fn looks_like_form(text: &str) -> bool {
    text.contains('=') && text.bytes().all(|b| b.is_ascii_graphic())
}

/// The boundary; `None` if absent or given twice (servers differ on which
/// one wins, so no reading of the body could be trusted).
fn boundary(content_type: &str) -> Option<String> {
    let mut found = content_type.split(';').skip(1).filter_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("boundary")).then(|| v.trim().trim_matches('"').to_owned())
    });
    let first = found.next().filter(|b| !b.is_empty())?;
    found.next().is_none().then_some(first)
}

fn disposition_name(line: &str) -> Option<String> {
    line.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("name")).then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_on<'a>(mut hay: &'a [u8], delim: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(hay, delim) {
        out.push(&hay[..i]);
        hay = &hay[i + delim.len()..];
    }
    out.push(hay);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Redactor {
        Redactor::new(&[], &["pinCode".into()])
    }

    fn kept(k: Kept) -> String {
        match k {
            Kept::Bytes(b) => String::from_utf8(b).unwrap(),
            Kept::Nothing => "<nothing>".into(),
        }
    }

    #[test]
    fn names_match_whatever_their_spelling() {
        let r = r();
        for n in [
            "password",
            "Password",
            "PASSWORD",
            "new_password",
            "passwordConfirm",
            "user[password]",
            "auth.token",
            "csrfToken",
            "X-Api-Key",
            "apiKey",
            "client_secret",
            "otp",
            "code",
            "pincode",
            "PIN_CODE",
            "refresh-token",
        ] {
            assert!(r.is_secret_field(n), "{n}");
        }
        for n in ["user", "username", "email", "name", "q", "codename_x"] {
            assert!(!r.is_secret_field(n), "{n}");
        }
        assert!(r.is_secret_header("X-CSRF-Token") && r.is_secret_header("proxy-authorization"));
        assert!(!r.is_secret_header("accept"));
    }

    #[test]
    fn queries_and_forms() {
        let r = r();
        assert_eq!(
            r.uri("/cb?state=1&access_token=abc&Password=x%20y&q=ok"),
            "/cb?state=1&access_token=[redacted]&Password=[redacted]&q=ok"
        );
        assert_eq!(r.uri("/plain?q=1"), "/plain?q=1");
        assert_eq!(r.uri("/none"), "/none");
        assert_eq!(
            kept(r.body(
                Some("application/x-www-form-urlencoded"),
                None,
                b"user=a&pass%77ord=s3cret",
                true
            )),
            "user=a&pass%77ord=[redacted]"
        );
    }

    #[test]
    fn json_by_parsing_whatever_the_type() {
        let r = r();
        let body = br#"{"user":"a","Password":"hunter2","nested":[{"token":"t"}]}"#;
        for ct in [Some("application/json"), Some("text/plain"), None] {
            let out = kept(r.body(ct, None, body, true));
            assert!(
                !out.contains("hunter2") && !out.contains("\"t\""),
                "{ct:?}: {out}"
            );
            assert!(out.contains("\"user\":\"a\""));
        }
        // Cut off: cannot be checked, so not kept; opaque media keep their start.
        assert_eq!(
            r.body(Some("application/json"), None, &body[..20], false),
            Kept::Nothing
        );
        assert_eq!(
            r.body(Some("text/plain"), None, b"abc", false),
            Kept::Nothing
        );
        assert_eq!(
            r.body(Some("image/png"), None, b"\x89PNG", false),
            Kept::Bytes(b"\x89PNG".to_vec())
        );
        // Text shaped like a form, sent as text/plain.
        assert_eq!(
            kept(r.body(Some("text/plain"), None, b"a=1&secret=zz", true)),
            "a=1&secret=[redacted]"
        );
        assert_eq!(
            kept(r.body(Some("text/html"), None, b"<p>hi</p>", true)),
            "<p>hi</p>"
        );
    }

    #[test]
    fn what_cannot_be_checked_is_not_kept() {
        let r = r();
        let json = br#"{"access_token":"t"}"#;
        assert_eq!(
            r.body(Some("application/json"), Some("gzip"), json, true),
            Kept::Nothing
        );
        assert_ne!(
            r.body(Some("application/json"), Some("identity"), json, true),
            Kept::Nothing
        );
        assert_eq!(
            r.body(
                Some("application/json"),
                None,
                b"\xef\xbb\xbf{\"token\":1}x",
                true
            ),
            Kept::Nothing
        );
        assert_eq!(
            r.body(Some("application/x-ndjson"), None, b"{}\n{}", true),
            Kept::Nothing
        );
        assert_eq!(
            kept(r.body(
                Some("text/plain"),
                None,
                b"email=a@b.example&password=p/q:r",
                true
            )),
            "email=a@b.example&password=[redacted]"
        );
        assert_eq!(
            r.uri("https://app/cb#access_token=abc&state=1"),
            "https://app/cb#access_token=[redacted]&state=1"
        );
        assert_eq!(r.uri("/cb?x=1#id_token=abc"), "/cb?x=1#id_token=[redacted]");
        assert!(r.is_secret_header("X-Goog-Api-Key") && r.is_secret_header("Private-Token"));
        let pre =
            b"hidden\r\n--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--B--\r\n";
        assert_eq!(
            r.body(Some("multipart/form-data; boundary=B"), None, pre, true),
            Kept::Nothing
        );
        let two = "multipart/form-data; boundary=B; boundary=C";
        assert_eq!(
            r.body(Some(two), None, b"--B\r\n\r\n--B--", true),
            Kept::Nothing
        );
    }

    #[test]
    fn multipart_fields() {
        let r = r();
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nann\r\n--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nhunter2\r\n--XyZ--\r\n";
        let out = kept(r.body(Some("multipart/form-data; boundary=XyZ"), None, body, true));
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("ann") && out.contains("[redacted]"), "{out}");
        assert_eq!(
            r.body(
                Some("multipart/form-data; boundary=XyZ"),
                None,
                b"--XyZ\r\nbroken",
                true
            ),
            Kept::Nothing
        );
        assert_eq!(
            r.body(Some("multipart/form-data"), None, body, true),
            Kept::Nothing,
            "no boundary"
        );
    }
}
