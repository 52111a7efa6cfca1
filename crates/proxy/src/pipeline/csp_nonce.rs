//! Response stage: nonces for legacy apps (`csp.nonce = true`).
//!
//! Every HTML response gets a fresh random nonce: the policy gains
//! `'nonce-…'` for scripts and styles (and `'strict-dynamic'` for scripts),
//! and the page is streamed through an HTML rewriter that puts the nonce on
//! each `<script>` and `<style>` tag, so an app with inline scripts runs
//! under a strict policy without `'unsafe-inline'`. The body is rewritten
//! chunk by chunk as it arrives, never buffered whole.
//!
//! Compressed bodies cannot be rewritten; the request stage removes
//! `Accept-Encoding` for these apps so they arrive plain.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body::{Body as HttpBody, Frame};
use lol_html::send::{ElementContentHandlers, HtmlRewriter, Settings};

use crate::body::{self, Body, BoxError};
use crate::runtime::response_policy::ResponsePolicy;

/// 128 bits from the operating system, base64: unguessable per response.
pub fn fresh_nonce() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random generator works");
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn is_html(resp: &Response<Body>) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/html")
        })
}

/// Adds a nonce to an HTML response of a nonce app; other responses pass.
pub fn apply(mut resp: Response<Body>, policy: &ResponsePolicy) -> Response<Body> {
    if !policy.nonce || !is_html(&resp) || resp.headers().contains_key(header::CONTENT_ENCODING) {
        return resp;
    }
    let nonce = fresh_nonce();
    let value = format!(
        "{}{}",
        policy.csp.with_nonce(&nonce).header_value(),
        policy.csp_report_suffix
    );
    let Ok(value) = HeaderValue::from_str(&value) else {
        return resp;
    };
    let h = resp.headers_mut();
    h.insert(policy.csp_header.clone(), value);
    // The length changes with every added attribute.
    h.remove(header::CONTENT_LENGTH);
    resp.map(|b| body::boxed(NonceBody::new(b, nonce)))
}

type Sink = Box<dyn FnMut(&[u8]) + Send>;

/// A body rewritten as it streams: each input chunk goes through the
/// rewriter, whose output is handed on at once.
pub struct NonceBody {
    inner: Body,
    rewriter: Option<HtmlRewriter<'static, Sink>>,
    out: Arc<Mutex<Vec<u8>>>,
}

impl NonceBody {
    pub fn new(inner: Body, nonce: String) -> NonceBody {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink_out = out.clone();
        let sink: Sink = Box::new(move |chunk: &[u8]| {
            sink_out
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(chunk)
        });
        let settings = Settings::new_send().append_element_content_handler((
            std::borrow::Cow::Owned("script, style".parse().expect("a valid selector")),
            ElementContentHandlers::default().element(
                move |el: &mut lol_html::send::Element<'_, '_>| {
                    // SECURITY: a nonce the page itself wrote is replaced, so
                    // markup injected with a guessed or copied nonce gains
                    // nothing.
                    el.set_attribute("nonce", &nonce)?;
                    Ok(())
                },
            ),
        ));
        NonceBody {
            inner,
            rewriter: Some(HtmlRewriter::new(settings, sink)),
            out,
        }
    }

    fn take_output(&self) -> Bytes {
        Bytes::from(std::mem::take(
            &mut *self.out.lock().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

impl HttpBody for NonceBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(rewriter) = this.rewriter.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        rewriter.write(&data).map_err(|e| Box::new(e) as BoxError)?;
                        let out = this.take_output();
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    let rewriter = this.rewriter.take().expect("checked above");
                    rewriter.end().map_err(|e| Box::new(e) as BoxError)?;
                    let out = this.take_output();
                    return Poll::Ready((!out.is_empty()).then(|| Ok(Frame::data(out))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// Splits `html` into chunks at every `step` bytes (so tags straddle
    /// chunk boundaries) and rewrites it.
    async fn rewrite(html: &'static str, step: usize) -> String {
        let chunks: Vec<Result<Frame<Bytes>, BoxError>> = html
            .as_bytes()
            .chunks(step)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let inner = body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
            chunks,
        )));
        let out = NonceBody::new(inner, "N0nce".into())
            .collect()
            .await
            .unwrap()
            .to_bytes();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn every_script_and_style_gets_the_nonce_across_chunk_boundaries() {
        let html = "<!doctype html><html><head><style>p{color:red}</style>\
                    <script src=\"/app.js\"></script><SCRIPT nonce=\"attacker\">alert(1)</SCRIPT></head>\
                    <body><p>text with <b>script</b> words</p><script>go()</script></body></html>";
        for step in [1, 3, 7, 64, 4096] {
            let out = rewrite(html, step).await;
            assert_eq!(
                out.matches("nonce=\"N0nce\"").count(),
                4,
                "step {step}: {out}"
            );
            assert!(!out.contains("attacker"), "step {step}");
            assert!(
                out.contains("<p>text with <b>script</b> words</p>"),
                "step {step}"
            );
        }
    }
}
