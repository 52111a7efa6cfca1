//! Protective limits on the request head and declared body size.
//!
//! hyper already refuses heads larger than its read buffer (431) on
//! HTTP/1.1; these checks apply moat's exact configured limits on every
//! protocol, HTTP/2 included. Streamed bodies without a length are limited
//! while they flow, in the upstream stage.

use http::{Request, StatusCode};
use moat_config::Server;

use crate::error::Rejection;
use crate::pipeline::{Flow, Step};
use crate::runtime::AppRuntime;

pub fn check_head<B>(req: &Request<B>, server: &Server) -> Step {
    let target_len = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().len())
        .unwrap_or(0);
    if target_len > server.max_uri_length {
        return Err(Rejection::client(
            StatusCode::URI_TOO_LONG,
            "The request URI is too long.",
        ));
    }
    // RFC 9112 §3.2: a request with more than one Host is answered 400;
    // which one counts is exactly what two parsers disagree on.
    if req
        .headers()
        .get_all(http::header::HOST)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(Rejection::client(
            StatusCode::BAD_REQUEST,
            "The request has more than one Host header.",
        ));
    }
    // Counted as on the wire: "name: value\r\n" per field.
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > server.max_header_size {
        return Err(Rejection::client(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "The request headers are too large.",
        ));
    }
    Ok(Flow::Continue)
}

/// Refuses a body whose declared length is over the app's limit before any
/// of it reaches the upstream.
pub fn check_declared_body<B>(req: &Request<B>, app: &AppRuntime) -> Result<(), Rejection> {
    if declared_length(req).is_some_and(|n| n > app.max_body_size) {
        return Err(too_large());
    }
    Ok(())
}

pub fn too_large() -> Rejection {
    Rejection::client(
        StatusCode::PAYLOAD_TOO_LARGE,
        "The request body is too large for this app.",
    )
}

/// Most of an over-limit body moat reads and throws away before answering
/// 413, and for how long. A client that is still sending when the
/// connection closes sees a broken pipe, not the 413; reading a bounded
/// amount first (as a lingering close does) lets ordinary clients read the
/// answer, while a client declaring gigabytes is still cut off at once.
const DISCARD_LIMIT: u64 = 16 << 20;
const DISCARD_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and discards a body known to be over the limit, within bounds.
pub async fn discard_body<B>(body: B, declared: Option<u64>)
where
    B: http_body::Body + Unpin,
{
    use http_body_util::BodyExt;
    if declared.is_none_or(|n| n > DISCARD_LIMIT) {
        return;
    }
    let mut body = body;
    let _ = tokio::time::timeout(DISCARD_TIME, async {
        while let Some(Ok(_)) = body.frame().await {}
    })
    .await;
}

pub fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing;

    fn verdict(req: &Request<()>) -> Option<u16> {
        let server = moat_config::default_config().server;
        match check_head(req, &server) {
            Ok(Flow::Continue) => None,
            Ok(Flow::Respond(_)) => panic!("limits never answer"),
            Err(r) => Some(r.status.as_u16()),
        }
    }

    #[test]
    fn heads_over_the_limits_are_refused() {
        let ok = Request::get("/a").header("host", "x").body(()).unwrap();
        assert_eq!(verdict(&ok), None);
        let long = Request::get(format!("/{}", "a".repeat(20_000)))
            .body(())
            .unwrap();
        assert_eq!(verdict(&long), Some(414));
        let two_hosts = Request::get("/")
            .header("host", "a")
            .header("host", "b")
            .body(())
            .unwrap();
        assert_eq!(verdict(&two_hosts), Some(400));
        let big = Request::get("/")
            .header("x-big", "v".repeat(20_000))
            .body(())
            .unwrap();
        assert_eq!(verdict(&big), Some(431));
    }

    #[test]
    fn a_declared_body_over_the_apps_limit_is_refused() {
        let rt = testing::one_app("", "max_body_size = \"1KiB\"");
        let app = testing::app(&rt, "app");
        let small = Request::post("/")
            .header("content-length", "10")
            .body(())
            .unwrap();
        assert!(check_declared_body(&small, &app).is_ok());
        let big = Request::post("/")
            .header("content-length", "5000")
            .body(())
            .unwrap();
        assert_eq!(check_declared_body(&big, &app).unwrap_err().status, 413);
        assert_eq!(declared_length(&big), Some(5000));
    }
}
