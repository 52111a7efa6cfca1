//! Why a request was refused, and the one place ("rescue") that turns a
//! refusal into a status code and a plain page. Each refusal records which
//! side was at fault, so logs tell a client mistake from an upstream failure.

use std::borrow::Cow;

use http::{HeaderName, HeaderValue, Response, StatusCode, header};

use crate::body::{self, Body};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client sent something moat will not pass on.
    Client,
    /// The upstream failed or was too slow.
    Upstream,
    /// moat itself failed (a bug or the local system).
    Internal,
}

#[derive(Debug)]
pub struct Rejection {
    pub status: StatusCode,
    pub side: Side,
    /// Shown to the client: short, no internals.
    pub public: Cow<'static, str>,
    /// For the log: the cause in full.
    pub detail: String,
    /// Headers the answer needs (`Retry-After`, a `WWW-Authenticate`
    /// challenge, `Vary`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Answered as the admin API answers (JSON with this code) rather than
    /// as a page: refusals of the admin API's HTTPS route.
    pub api_code: Option<moat_admin::api::ErrorCode>,
}

impl Rejection {
    pub fn client(status: StatusCode, public: impl Into<Cow<'static, str>>) -> Self {
        Rejection {
            status,
            side: Side::Client,
            public: public.into(),
            detail: String::new(),
            headers: Vec::new(),
            api_code: None,
        }
    }

    pub fn upstream(status: StatusCode, public: &'static str, detail: impl Into<String>) -> Self {
        Rejection {
            status,
            side: Side::Upstream,
            public: public.into(),
            detail: detail.into(),
            headers: Vec::new(),
            api_code: None,
        }
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            side: Side::Internal,
            public: "moat could not handle this request.".into(),
            detail: detail.into(),
            headers: Vec::new(),
            api_code: None,
        }
    }

    /// Adds a header to the answer.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// `Retry-After` in whole seconds, at least one.
    pub fn retry_after(self, after: std::time::Duration) -> Self {
        let secs = after.as_millis().div_ceil(1000).max(1) as u64;
        self.with_header(header::RETRY_AFTER, HeaderValue::from(secs))
    }

    pub fn not_found() -> Self {
        Rejection::client(StatusCode::NOT_FOUND, "There is nothing here.")
    }

    /// Answers as the admin API does, with `code`.
    pub fn as_api(mut self, code: moat_admin::api::ErrorCode) -> Self {
        self.api_code = Some(code);
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let mut resp = match self.api_code {
            Some(code) => api_error(self.status, &self.public, code),
            None => error_page(self.status, &self.public),
        };
        let h = resp.headers_mut();
        for (name, value) in self.headers {
            h.append(name, value);
        }
        resp
    }
}

/// The admin API's error answer.
fn api_error(
    status: StatusCode,
    message: &str,
    code: moat_admin::api::ErrorCode,
) -> Response<Body> {
    let json = serde_json::to_string(&moat_admin::api::ApiError {
        error: message.to_owned(),
        code,
        problems: Vec::new(),
    })
    .expect("an ApiError serializes");
    let mut resp = Response::new(body::full(json));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A small HTML page with no scripts, styles or external resources, so it
/// is safe under any Content-Security-Policy.
pub fn error_page(status: StatusCode, message: &str) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("Error");
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} {reason}</title></head>\n\
         <body><h1>{code} {reason}</h1>\n<p>{message}</p>\n<hr><p>moat</p></body></html>\n",
        code = status.as_u16(),
        message = moat_policy::login::html_escape(message),
    );
    let mut resp = Response::new(body::full(html));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
