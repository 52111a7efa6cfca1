//! The page view: a recorded HTML response shown as the user saw it, in a
//! sandboxed frame of the player, with nothing fetched from the live app
//! or from anywhere else.
//!
//! SECURITY: a recorded page is hostile input shown to an admin. So:
//! - its response carries its own policy: `sandbox` (no scripts, forms,
//!   popups, or navigation of the portal), `default-src 'none'`, images,
//!   fonts and media only as `data:` URLs, inline style only; the
//!   player's iframe is sandboxed as well;
//! - the subresources the page used (stylesheets, images, fonts) come from
//!   the same recording, inlined (`<style>`, `data:` URLs); what the
//!   recording does not hold is dropped, never fetched;
//! - what could navigate the frame or send a request (links, forms,
//!   `<base>`, every `<meta>`, frames, plugins, event handlers, scripts,
//!   `<noscript>` (read as markup where scripts are off), SMIL, `srcset`)
//!   is removed. The policy blocks any fetch a rewrite missed; navigation
//!   (a link) it does not govern, so the rewrite alone must remove those;
//! - the page is decoded by its charset and served as UTF-8, so moat's
//!   rewriter and the browser read the same markup; inlined CSS carries no
//!   `<`; output is bounded ([`OUTPUT_BUDGET`]).
//!
//! The recording is read twice as a stream: once for the page's own
//! exchange, once for the subresources, keeping at most [`BUDGET`] bytes
//! of them.
//!
//! One file (over 500 lines, half of it tests): the rewrite, what it lets
//! through and the tests that try to get past it are one security
//! argument, best read together.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http::{HeaderValue, Response, StatusCode, header};
use lol_html::html_content::ContentType;
use lol_html::{RewriteStrSettings, element, rewrite_str, text};
use maud::html;
use moat_admin::api::EventsFilter;
use moat_proxy::admin_api::Viewer;
use moat_proxy::body::{self, Body};
use moat_recording::{Event, Recorded};
use url::Url;

use crate::api::Api;

/// Bytes of subresources inlined into one page at most.
const BUDGET: usize = 16 << 20;

/// The page view's own policy (the portal stage keeps a page's policy).
const POLICY: &str = "sandbox; default-src 'none'; img-src data:; font-src data:; media-src data:; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'";

/// One recorded exchange as far as the page view needs it.
#[derive(Default)]
struct Exchange {
    t_us: u64,
    conn: u64,
    tls: bool,
    method: String,
    url: Option<Url>,
    status: u16,
    content_type: String,
    encoded: bool,
    body: Vec<u8>,
    /// Bytes sent, kept or not.
    sent: u64,
    /// The body is kept whole.
    whole: bool,
}

impl Exchange {
    fn add(&mut self, e: Event, tls: &HashMap<u64, bool>) {
        match e {
            Event::RequestHead {
                conn,
                method,
                uri,
                headers,
                ..
            } => {
                self.conn = conn;
                self.tls = tls.get(&conn).copied().unwrap_or(true);
                self.method = method;
                self.url = absolute(&uri, header_of(&headers, "host"), self.tls);
            }
            Event::ResponseHead {
                status, headers, ..
            } => {
                self.status = status;
                self.content_type = header_of(&headers, "content-type").unwrap_or("").to_owned();
                self.encoded = header_of(&headers, "content-encoding")
                    .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
                self.whole = true;
            }
            Event::ResponseBody {
                data,
                len,
                truncated,
                ..
            } => {
                let kept = B64.decode(data).unwrap_or_default();
                self.whole &= !truncated && kept.len() as u64 == len;
                self.sent += len;
                self.body.extend_from_slice(&kept);
            }
            _ => {}
        }
    }

    /// The media type alone, lower case (`text/css`).
    fn media_type(&self) -> String {
        self.content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    fn usable(&self) -> bool {
        self.method == "GET" && (200..300).contains(&self.status) && !self.encoded && self.whole
    }

    /// A stylesheet, image or font: what a page view inlines.
    fn wanted(&self) -> bool {
        let m = self.media_type();
        m == "text/css"
            || m.starts_with("image/")
            || m.starts_with("font/")
            || m == "application/font-woff"
    }
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The URL a request was for: its target, on the host it named.
fn absolute(uri: &str, host: Option<&str>, tls: bool) -> Option<Url> {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return Url::parse(uri).ok();
    }
    let scheme = if tls { "https" } else { "http" };
    Url::parse(&format!("{scheme}://{}{uri}", host?)).ok()
}

/// Subresources taken from the recording, by URL (fragment removed).
#[derive(Default)]
struct Resources {
    by_url: HashMap<String, Resource>,
    bytes: usize,
    /// Subresources left out because the budget was spent.
    dropped: usize,
    /// Each resource's `data:` URL, made once however often it is used.
    encoded: RefCell<HashMap<String, std::sync::Arc<str>>>,
    /// Bytes of `data:` URLs written into the page so far (a page that
    /// refers to one large image many times must not grow without end).
    written: std::cell::Cell<usize>,
}

/// Bytes of `data:` URLs one page view writes at most.
const OUTPUT_BUDGET: usize = 64 << 20;

struct Resource {
    media_type: String,
    body: Vec<u8>,
    /// How far in time from the page it was recorded.
    distance_us: u64,
}

impl Resources {
    /// Keeps `x` unless the same URL was recorded nearer to the page.
    fn offer(&mut self, x: Exchange, page_t_us: u64) {
        let media_type = x.media_type();
        let wanted = x.wanted();
        let Some(mut url) = x.url.filter(|_| wanted && x.status != 0) else {
            return;
        };
        url.set_fragment(None);
        let distance_us = x.t_us.abs_diff(page_t_us);
        let key = url.to_string();
        let old = self.by_url.get(&key).map(|r| (r.distance_us, r.body.len()));
        if old.is_some_and(|(d, _)| d <= distance_us) {
            return;
        }
        let freed = old.map_or(0, |(_, len)| len);
        if self.bytes - freed + x.body.len() > BUDGET {
            self.dropped += 1;
            return;
        }
        self.bytes = self.bytes - freed + x.body.len();
        self.by_url.insert(
            key,
            Resource {
                media_type,
                body: x.body,
                distance_us,
            },
        );
    }

    /// `data:` URL of what `reference` (relative to `base`) names, if the
    /// recording holds it, it is not a stylesheet, and the page's output
    /// budget allows it.
    fn data_url(&self, base: &Url, reference: &str) -> Option<std::sync::Arc<str>> {
        let mut url = base.join(&decode_entities(reference.trim())).ok()?;
        url.set_fragment(None);
        let key = url.to_string();
        let cached = self.encoded.borrow().get(&key).cloned();
        let data = match cached {
            Some(d) => d,
            None => {
                let r = self.by_url.get(&key)?;
                if r.media_type == "text/css" || !is_token(&r.media_type) {
                    return None;
                }
                let d: std::sync::Arc<str> =
                    format!("data:{};base64,{}", r.media_type, B64.encode(&r.body)).into();
                self.encoded.borrow_mut().insert(key, d.clone());
                d
            }
        };
        let written = self.written.get() + data.len();
        if written > OUTPUT_BUDGET {
            return None;
        }
        self.written.set(written);
        Some(data)
    }

    /// The stylesheet `reference` (relative to `base`) names, and its URL.
    fn stylesheet(&self, base: &Url, reference: &str) -> Option<(String, Url)> {
        let mut url = base.join(&decode_entities(reference.trim())).ok()?;
        url.set_fragment(None);
        let r = self.by_url.get(url.as_str())?;
        let written = self.written.get() + r.body.len();
        if r.media_type != "text/css" || written > OUTPUT_BUDGET {
            return None;
        }
        self.written.set(written);
        Some((String::from_utf8_lossy(&r.body).into_owned(), url))
    }
}

/// An attribute's value as the browser reads it: lol_html gives the text
/// as written, character references included (`&amp;`).
fn decode_entities(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('&') {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, e + 1))
        });
        match decoded {
            Some((c, used)) => {
                out.push(c);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

/// A media type safe to write into a `data:` URL unquoted.
fn is_token(media_type: &str) -> bool {
    !media_type.is_empty()
        && media_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/+-.".contains(&b))
}

/// `GET /recordings/ID/view/N`: exchange N's HTML as the user saw it.
pub async fn view(api: &Api, viewer: &Viewer, id: &str, req: &str) -> Response<Body> {
    let Ok(req) = req.parse::<u64>() else {
        return message(StatusCode::NOT_FOUND, "There is no such exchange.");
    };
    let actor = &viewer.actor;
    let mut page = Exchange::default();
    let mut tls: HashMap<u64, bool> = HashMap::new();
    let mut first = true;
    let only_page = EventsFilter {
        req: Some(req),
        bodies: None,
    };
    // The page's connection is not among its exchange's events; its
    // scheme is taken from the second pass.
    let read = api
        .each_event(actor, id, &only_page, |e| {
            if std::mem::take(&mut first) {
                page.t_us = e.t_us;
            }
            page.add(e.event, &tls);
            true
        })
        .await;
    if let Err(e) = read {
        return message(crate::api::status_of(&e), &e.error);
    }
    if page.url.is_none() {
        return message(StatusCode::NOT_FOUND, "There is no such exchange.");
    }
    if page.media_type() != "text/html" {
        return message(
            StatusCode::NOT_FOUND,
            "This exchange's response is not an HTML page.",
        );
    }
    if page.encoded {
        return message(
            StatusCode::CONFLICT,
            "The page was sent compressed, and compressed bodies are not kept in recordings (their credentials cannot be found and removed).",
        );
    }
    if page.body.is_empty() {
        return message(
            StatusCode::CONFLICT,
            "The page's body was not kept in the recording.",
        );
    }

    // Second pass: the subresources, nearest in time to the page.
    let mut resources = Resources::default();
    let mut open: HashMap<u64, Exchange> = HashMap::new();
    let mut pending_bytes = 0usize;
    let read = api
        .each_event(
            actor,
            id,
            &EventsFilter::default(),
            |Recorded { t_us, event }| {
                match event {
                    Event::ConnOpen { conn, tls: t, .. } => {
                        tls.insert(conn, t);
                    }
                    Event::ConnClose { conn } => {
                        tls.remove(&conn);
                        // Exchanges cut off with their connection end here.
                        open.retain(|_, x| {
                            let keep = x.conn != conn;
                            if !keep {
                                pending_bytes -= x.body.len();
                            }
                            keep
                        });
                    }
                    Event::RequestHead { req: r, .. } if r != req => {
                        let mut x = Exchange {
                            t_us,
                            ..Exchange::default()
                        };
                        x.add(event, &tls);
                        open.insert(r, x);
                    }
                    Event::RequestHead { conn, .. } => {
                        page.tls = tls.get(&conn).copied().unwrap_or(true);
                    }
                    Event::ResponseBody { req: r, .. } => {
                        // Bodies are held up to twice the budget, pending ones
                        // included; past it, an exchange is let go.
                        if let Some(x) = open.get_mut(&r) {
                            let before = x.body.len();
                            x.add(event, &tls);
                            pending_bytes += x.body.len() - before;
                            if !x.whole || pending_bytes + resources.bytes > 2 * BUDGET {
                                pending_bytes -= x.body.len();
                                open.remove(&r);
                                resources.dropped += 1;
                            }
                        }
                    }
                    Event::ResponseHead { req: r, .. } => {
                        if let Some(x) = open.get_mut(&r) {
                            x.add(event, &tls);
                            // Only what could be inlined is held.
                            if !x.usable() || !x.wanted() {
                                open.remove(&r);
                            }
                        }
                    }
                    Event::ExchangeEnd { req: r, .. } | Event::Error { req: r, .. } => {
                        if let Some(x) = open.remove(&r) {
                            pending_bytes -= x.body.len();
                            if x.usable() {
                                resources.offer(x, page.t_us);
                            }
                        }
                    }
                    _ => {}
                }
                true
            },
        )
        .await;
    if let Err(e) = read {
        return message(crate::api::status_of(&e), &e.error);
    }
    // The URL the page was loaded from, with the scheme now known.
    let base = page
        .url
        .clone()
        .map(|mut u| {
            let _ = u.set_scheme(if page.tls { "https" } else { "http" });
            u
        })
        .expect("checked above");
    if resources.dropped > 0 {
        tracing::info!(
            recording = id,
            dropped = resources.dropped,
            "page view: subresources over the budget were left out"
        );
    }
    // Decoded by the charset it was sent with, served as UTF-8: the page
    // is read the same way here and in the browser, whatever it claimed.
    let html = decode(&page.content_type, &page.body);
    match rewrite(&html, &base, &resources) {
        Ok(out) => respond(StatusCode::OK, out),
        Err(e) => message(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("The recorded page cannot be shown: {e}"),
        ),
    }
}

/// A page's text, decoded by the charset its content type names (a byte
/// order mark wins; UTF-8 when it names none or one unknown).
fn decode<'a>(content_type: &str, body: &'a [u8]) -> std::borrow::Cow<'a, str> {
    let charset = content_type
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .and_then(|(_, v)| encoding_rs::Encoding::for_label(v.trim().trim_matches('"').as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    charset.decode(body).0
}

/// The recorded page with everything that would fetch or navigate removed
/// and its subresources inlined from the recording.
fn rewrite(html: &str, base: &Url, res: &Resources) -> Result<String, String> {
    let style_text = RefCell::new(String::new());
    let settings = RewriteStrSettings::new()
        .append_element_content_handler(element!(
                // noscript: lol_html reads its content as text (scripting
                // on), the sandboxed browser as markup (scripting off), so
                // it is not shown at all. meta: refresh, referrer, charset
                // (the page is served as UTF-8). SMIL can set an href.
                "script, noscript, base, meta, iframe, frame, frameset, object, embed, applet, portal, animate, set",
                |el| {
                    el.remove();
                    Ok(())
                }
            ),)
        .append_element_content_handler(element!("link", |el| {
            let stylesheet = el.get_attribute("rel").is_some_and(|r| {
                r.split_ascii_whitespace()
                    .any(|w| w.eq_ignore_ascii_case("stylesheet"))
            });
            // Only in HTML: inside SVG or MathML a <style> holds markup.
            let html_ns = el.namespace_uri() == "http://www.w3.org/1999/xhtml";
            let css = el
                .get_attribute("href")
                .filter(|_| stylesheet && html_ns)
                .and_then(|href| res.stylesheet(base, &href))
                .map(|(css, url)| rewrite_css(&css, &url, res));
            match css {
                Some(css) => el.replace(
                    &format!("<style>{}</style>", in_style(&css)),
                    ContentType::Html,
                ),
                None => el.remove(),
            }
            Ok(())
        }))
        .append_element_content_handler(element!("*", |el| {
                let names: Vec<String> = el.attributes().iter().map(|a| a.name()).collect();
                for name in names {
                    let value = el.get_attribute(&name).unwrap_or_default();
                    match name.as_str() {
                        // Sources: from the recording, or nothing.
                        "src" | "poster" => match res.data_url(base, &value) {
                            Some(data) => el.set_attribute(&name, &data)?,
                            None => el.remove_attribute(&name),
                        },
                        "style" => el.set_attribute("style", &rewrite_css(&value, base, res))?,
                        // Fragment references inside the page stay.
                        "href" | "xlink:href" if value.trim_start().starts_with('#') => {}
                        "href" | "xlink:href" | "srcset" | "action" | "formaction" | "ping"
                        | "background" | "data" | "manifest" | "codebase" | "archive"
                        | "longdesc" | "lowsrc" | "dynsrc" | "target" => el.remove_attribute(&name),
                        n if n.starts_with("on") => el.remove_attribute(&name),
                        _ => {}
                    }
                }
                Ok(())
            }),)
        .append_element_content_handler(text!("style", |chunk| {
                let mut buf = style_text.borrow_mut();
                buf.push_str(chunk.as_str());
                if chunk.last_in_text_node() {
                    let css = rewrite_css(&std::mem::take(&mut *buf), base, res);
                    chunk.replace(&in_style(&css), ContentType::Html);
                } else {
                    chunk.remove();
                }
                Ok(())
            }),)
        ;
    rewrite_str(html, settings).map_err(|e| e.to_string())
}

/// CSS made safe to sit inside `<style>`: no `<` at all (CSS reads the
/// escape `\3c ` as one), so it can neither close the element nor start
/// markup where a parser reads it as such.
fn in_style(css: &str) -> String {
    css.replace('<', "\\3c ")
}

/// Every `url(...)` in `css` (relative to `base`) replaced with the
/// recording's copy as a `data:` URL, or with an empty one.
fn rewrite_css(css: &str, base: &Url, res: &Resources) -> String {
    let mut out = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(at) = find_url(rest) {
        out.push_str(&rest[..at]);
        let after = &rest[at + 4..];
        let (reference, used) = url_argument(after);
        let data = res
            .data_url(base, &reference)
            .unwrap_or_else(|| "data:,".into());
        out.push_str("url(\"");
        out.push_str(&data);
        out.push_str("\")");
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// Where the next `url(` starts (any case).
fn find_url(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    (0..bytes.len().saturating_sub(3)).find(|&i| bytes[i..i + 4].eq_ignore_ascii_case(b"url("))
}

/// The argument of a `url(` whose text follows, and how many bytes up to
/// and including its `)`.
fn url_argument(s: &str) -> (String, usize) {
    let trimmed = s.trim_start();
    let skipped = s.len() - trimmed.len();
    let mut value = String::new();
    let mut chars = trimmed.char_indices();
    let quote = match trimmed.chars().next() {
        Some(q @ ('"' | '\'')) => {
            chars.next();
            Some(q)
        }
        _ => None,
    };
    let mut escaped = false;
    let mut closed_quote = quote.is_none();
    for (i, c) in chars {
        if escaped {
            value.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if !closed_quote && Some(c) == quote {
            closed_quote = true;
        } else if closed_quote && c == ')' {
            return (value.trim().to_owned(), skipped + i + 1);
        } else if !closed_quote || !c.is_whitespace() {
            value.push(c);
        }
    }
    (value, s.len())
}

fn respond(status: StatusCode, html: String) -> Response<Body> {
    let mut resp = Response::new(body::full(html));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    resp
}

/// Why a page cannot be shown, as a page of its own in the frame.
fn message(status: StatusCode, text: &str) -> Response<Body> {
    let page = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Page view" } }
            body { p { (text) } }
        }
    };
    respond(status, page.into_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> Resources {
        let mut r = Resources::default();
        for (url, media_type, body) in [
            ("https://app.test/logo.png", "image/png", b"PNG".to_vec()),
            (
                "https://app.test/css/site.css",
                "text/css",
                b"body{background:url('../bg.gif')}".to_vec(),
            ),
            ("https://app.test/bg.gif", "image/gif", b"GIF".to_vec()),
        ] {
            r.by_url.insert(
                url.into(),
                Resource {
                    media_type: media_type.into(),
                    body,
                    distance_us: 0,
                },
            );
        }
        r
    }

    #[test]
    fn subresources_are_inlined_and_everything_that_fetches_is_removed() {
        let base = Url::parse("https://app.test/page/index.html").unwrap();
        let html = r##"<html><head><base href="https://evil.test/"><meta http-equiv="refresh" content="0;url=https://evil.test/">
<link rel="stylesheet" href="/css/site.css"><link rel="icon" href="/favicon.ico"><script src="/app.js"></script>
<style>p{background:URL( "/bg.gif" )} h1{background:url(https://evil.test/x.png)}</style></head>
<body onload="steal()"><img src="../logo.png" srcset="/big.png 2x" alt="logo"><img src="https://evil.test/pixel.gif">
<a href="https://evil.test/" ping="https://evil.test/p">out</a><a href="#top">top</a><form action="https://evil.test/"><button formaction="/x">go</button></form>
<iframe src="https://evil.test/"></iframe><div style="background-image:url(/logo.png)"></div></body></html>"##;
        let out = rewrite(html, &base, &resources()).unwrap();
        assert!(!out.contains("evil.test"), "{out}");
        assert!(!out.contains("<script") && !out.contains("onload"), "{out}");
        assert!(!out.contains("favicon") && !out.contains("srcset"), "{out}");
        assert!(out.contains(r#"src="data:image/png;base64,UE5H""#), "{out}");
        // The stylesheet inlined, its own url() resolved against its URL.
        assert!(
            out.contains(r#"<style>body{background:url("data:image/gif;base64,R0lG")}</style>"#),
            "{out}"
        );
        assert!(
            out.contains(r#"p{background:url("data:image/gif;base64,R0lG")}"#),
            "{out}"
        );
        assert!(out.contains(r#"h1{background:url("data:,")}"#), "{out}");
        assert!(out.contains(r##"<a href="#top">"##), "{out}");
        assert!(
            out.contains(r#"style="background-image:url(&quot;data:image/png;base64,UE5H&quot;)""#),
            "{out}"
        );
    }

    #[test]
    fn a_stylesheet_cannot_close_its_style_element() {
        let base = Url::parse("https://app.test/").unwrap();
        let mut r = Resources::default();
        r.by_url.insert(
            "https://app.test/x.css".into(),
            Resource {
                media_type: "text/css".into(),
                body: b"a{}</style><script>alert(1)</script>".to_vec(),
                distance_us: 0,
            },
        );
        let out = rewrite(r#"<link rel=stylesheet href="/x.css">"#, &base, &r).unwrap();
        assert!(!out.contains("</style><script>"), "{out}");
    }

    #[test]
    fn markup_the_browser_reads_differently_is_not_shown() {
        let base = Url::parse("https://app.test/").unwrap();
        let mut r = Resources::default();
        r.by_url.insert(
            "https://app.test/x.css".into(),
            Resource {
                media_type: "text/css".into(),
                body: b"a{}<meta http-equiv=refresh content='0;url=https://evil.test/'><a href=https://evil.test/>x</a>".to_vec(),
                distance_us: 0,
            },
        );
        for html in [
            // Scripting is off in the sandbox: a browser reads noscript's
            // content as markup.
            r#"<noscript><a href="https://evil.test/">x</a><link rel=preconnect href="//evil.test"></noscript>"#,
            // A <style> inside SVG holds markup.
            r#"<svg><link rel="stylesheet" href="/x.css"/></svg>"#,
            r#"<svg><style><a href="https://evil.test/">x</a></style></svg>"#,
            // SMIL can give a link an href.
            r#"<svg><a><set attributeName="href" to="https://evil.test/"/><text>x</text></a></svg>"#,
            r#"<meta name="referrer" content="unsafe-url"><meta charset="iso-2022-jp">"#,
        ] {
            let out = rewrite(html, &base, &r).unwrap();
            assert!(!out.contains("evil.test"), "{html} → {out}");
            assert!(!out.contains("<meta"), "{html} → {out}");
        }
    }

    #[test]
    fn a_page_is_decoded_by_its_charset_before_it_is_rewritten() {
        // ISO-2022-JP: an escape inside a tag name hides it from a reader
        // that takes the bytes as UTF-8.
        let body = b"<\x1b(Ba href=\"https://evil.test/\">x</a>";
        let text = decode("text/html; charset=ISO-2022-JP", body);
        assert!(text.starts_with("<a href"), "{text}");
        let out = rewrite(
            &text,
            &Url::parse("https://app.test/").unwrap(),
            &resources(),
        )
        .unwrap();
        assert!(!out.contains("evil.test"), "{out}");
        assert_eq!(decode("text/html", "é".as_bytes()), "é");
    }

    #[test]
    fn references_are_read_with_their_character_references_decoded() {
        let base = Url::parse("https://app.test/").unwrap();
        let mut r = Resources::default();
        r.by_url.insert(
            "https://app.test/a.png?x=1&y=2".into(),
            Resource {
                media_type: "image/png".into(),
                body: b"PNG".to_vec(),
                distance_us: 0,
            },
        );
        let out = rewrite(r#"<img src="/a.png?x=1&amp;y=2">"#, &base, &r).unwrap();
        assert!(out.contains("data:image/png;base64,UE5H"), "{out}");
        assert_eq!(
            decode_entities("a&#x26;b&#38;c&lt;&bogus;"),
            "a&b&c<&bogus;"
        );
    }

    #[test]
    fn a_page_cannot_grow_past_its_output_budget() {
        let base = Url::parse("https://app.test/").unwrap();
        let mut r = Resources::default();
        r.by_url.insert(
            "https://app.test/big.png".into(),
            Resource {
                media_type: "image/png".into(),
                body: vec![0; 4 << 20],
                distance_us: 0,
            },
        );
        let html = r#"<img src="/big.png">"#.repeat(100);
        let out = rewrite(&html, &base, &r).unwrap();
        assert!(out.len() < OUTPUT_BUDGET + (1 << 20), "{}", out.len());
        assert!(out.contains("data:image/png"), "the first ones are shown");
    }

    #[test]
    fn odd_url_arguments_end_where_css_ends_them() {
        assert_eq!(url_argument(" 'a b.png' ) x"), ("a b.png".into(), 12));
        assert_eq!(url_argument("x\\).png)"), ("x).png".into(), 8));
        assert_eq!(url_argument("unterminated"), ("unterminated".into(), 12));
    }
}
