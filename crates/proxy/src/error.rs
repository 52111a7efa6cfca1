//! Why a request was refused, and the one place ("rescue") that turns a
//! refusal into a status code and a plain page. Each refusal records which
//! side was at fault, so logs tell a client mistake from an upstream failure.

use http::{HeaderValue, Response, StatusCode, header};

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
    pub public: &'static str,
    /// For the log: the cause in full.
    pub detail: String,
}

impl Rejection {
    pub fn client(status: StatusCode, public: &'static str) -> Self {
        Rejection {
            status,
            side: Side::Client,
            public,
            detail: String::new(),
        }
    }

    pub fn upstream(status: StatusCode, public: &'static str, detail: impl Into<String>) -> Self {
        Rejection {
            status,
            side: Side::Upstream,
            public,
            detail: detail.into(),
        }
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            side: Side::Internal,
            public: "moat could not handle this request.",
            detail: detail.into(),
        }
    }

    pub fn not_found() -> Self {
        Rejection::client(StatusCode::NOT_FOUND, "There is nothing here.")
    }

    pub fn into_response(self) -> Response<Body> {
        error_page(self.status, self.public)
    }
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
