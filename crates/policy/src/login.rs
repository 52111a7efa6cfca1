//! The decisions around moat's login: who is sent to the login page, where
//! they go afterwards, and reading the session cookie and the login form.

use http::{HeaderMap, Method, header};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Where the login page and its friends live (moat's own namespace).
pub const LOGIN_PATH: &str = "/_moat/login";
pub const LOGOUT_PATH: &str = "/_moat/logout";

/// How an unauthenticated request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// A browser loading a page: redirect to the login page.
    LoginPage,
    /// Anything else (an API client, a script's fetch): 401.
    Unauthorized,
}

/// A browser navigating to a page is sent to the login page; everything
/// else gets a 401 it can act on. A navigation is a GET or HEAD that says
/// so (`Sec-Fetch-Mode: navigate`) or, from browsers too old to say,
/// prefers HTML.
pub fn challenge(method: &Method, headers: &HeaderMap) -> Challenge {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return Challenge::Unauthorized;
    }
    if let Some(mode) = headers.get("sec-fetch-mode") {
        return if mode.as_bytes() == b"navigate" {
            Challenge::LoginPage
        } else {
            Challenge::Unauthorized
        };
    }
    let html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    if html {
        Challenge::LoginPage
    } else {
        Challenge::Unauthorized
    }
}

/// Characters escaped in the `next` query parameter.
const QUERY_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'>')
    .add(b'=')
    .add(b'?');

/// The login page's URL for a request to `path_and_query`.
pub fn login_url(path_and_query: &str) -> String {
    format!(
        "{LOGIN_PATH}?next={}",
        utf8_percent_encode(path_and_query, QUERY_VALUE)
    )
}

/// Where to go after signing in. SECURITY: only a path on this host is
/// accepted, so the login page cannot be used to send people to another
/// site (an open redirect): `//host`, `/\host`, schemes and control
/// characters all fall back to `/`.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(next) = next else {
        return "/".into();
    };
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 2048
        && !next.bytes().any(|b| b.is_ascii_control() || b == b'\\')
        && !next.starts_with(LOGIN_PATH)
        && !next.starts_with(LOGOUT_PATH);
    if ok { next.to_owned() } else { "/".into() }
}

/// The value of cookie `name` from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// One field of an `application/x-www-form-urlencoded` body.
pub fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| decode_form(k) == name)
        .map(|(_, v)| decode_form(v))
}

fn decode_form(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// The value of query parameter `name`.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_field(query?, name)
}

/// Text made safe to put inside HTML (element content or a quoted
/// attribute).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_component(k), form_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn form_component(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn navigations_get_the_login_page_everything_else_401() {
        use Challenge::*;
        let nav = headers(&[("sec-fetch-mode", "navigate")]);
        assert_eq!(challenge(&Method::GET, &nav), LoginPage);
        assert_eq!(challenge(&Method::POST, &nav), Unauthorized);
        let fetch = headers(&[("sec-fetch-mode", "cors"), ("accept", "text/html")]);
        assert_eq!(challenge(&Method::GET, &fetch), Unauthorized);
        let old = headers(&[("accept", "text/html,application/xhtml+xml")]);
        assert_eq!(challenge(&Method::GET, &old), LoginPage);
        assert_eq!(
            challenge(&Method::GET, &headers(&[("accept", "*/*")])),
            Unauthorized
        );
        assert_eq!(challenge(&Method::GET, &HeaderMap::new()), Unauthorized);
    }

    #[test]
    fn next_stays_on_this_host() {
        assert_eq!(safe_next(Some("/grafana/d?x=1")), "/grafana/d?x=1");
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "/a\r\nb",
            "/_moat/login?next=/x",
            "/_moat/logout",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn login_url_round_trips_through_the_query() {
        let url = login_url("/a b/c?x=1&y=2#f");
        let query = url.split_once('?').unwrap().1;
        assert_eq!(
            query_param(Some(query), "next").unwrap(),
            "/a b/c?x=1&y=2#f"
        );
    }

    #[test]
    fn cookies_and_forms() {
        let h = headers(&[
            ("cookie", "a=1; __Host-moat_session=abc.def"),
            ("cookie", "b=2"),
        ]);
        assert_eq!(cookie(&h, "__Host-moat_session"), Some("abc.def"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        let body = "user=admin&password=p%40ss+word%26&next=%2Fx";
        assert_eq!(form_field(body, "password").unwrap(), "p@ss word&");
        assert_eq!(form_field(body, "next").unwrap(), "/x");
        assert_eq!(form_field(body, "missing"), None);
        assert_eq!(
            html_escape("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }

    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            form_encode(&[("a b", "x&y=z"), ("s", "é~._-")]),
            "a%20b=x%26y%3Dz&s=%C3%A9~._-"
        );
    }
}
