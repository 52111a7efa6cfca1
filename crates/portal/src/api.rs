//! The admin API, called in process: the portal is one more client of it,
//! so every change goes through the same checks and is audited the same
//! way (under the admin's name and `portal:ADDRESS`).

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use moat_admin::api::{ApiError, ErrorCode};
use moat_proxy::admin_api::AdminApi;
use moat_store::Actor;
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Clone)]
pub struct Api {
    inner: Arc<dyn AdminApi>,
}

impl Api {
    pub fn new(inner: Arc<dyn AdminApi>) -> Api {
        Api { inner }
    }

    /// `GET path` (one of `moat_admin::api::paths`).
    pub async fn get<T: DeserializeOwned>(&self, actor: &Actor, path: &str) -> Result<T, ApiError> {
        self.call(actor, Method::GET, path, None::<&()>).await
    }

    /// `METHOD path` with a JSON body.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        actor: &Actor,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.call(actor, method, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, actor: &Actor, path: &str) -> Result<(), ApiError> {
        self.call::<(), serde_json::Value>(actor, Method::DELETE, path, None)
            .await
            .map(drop)
    }

    /// `GET path` whose answer is passed on as it streams (a recording's
    /// events): the response on success, its error otherwise.
    pub async fn stream(
        &self,
        actor: &Actor,
        path: &str,
    ) -> Result<http::Response<moat_proxy::body::Body>, ApiError> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(moat_proxy::body::empty())
            .map_err(|e| internal(format!("request: {e}")))?;
        let resp = self.inner.handle(req, actor.clone()).await;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| internal(format!("reading the API's answer: {e}")))?
            .to_bytes();
        Err(serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| internal(format!("the API answered {status}"))))
    }

    /// Reads a recording's events stream line by line, giving `each`
    /// every event in order (the session line is skipped); `each` answers
    /// whether to go on. Holds one piece of the stream at a time.
    pub async fn each_event(
        &self,
        actor: &Actor,
        id: &str,
        filter: &moat_admin::api::EventsFilter,
        mut each: impl FnMut(moat_recording::Recorded) -> bool,
    ) -> Result<(), ApiError> {
        let resp = self
            .stream(actor, &moat_admin::api::paths::recording_events(id, filter))
            .await?;
        let mut body = resp.into_body();
        let mut pending: Vec<u8> = Vec::new();
        let mut first = true;
        loop {
            let frame = body
                .frame()
                .await
                .transpose()
                .map_err(|e| internal(format!("reading the recording: {e}")))?;
            let Some(frame) = frame else {
                return match pending.iter().all(u8::is_ascii_whitespace) {
                    true => Ok(()),
                    false => Err(internal(
                        "the recording's events ended in the middle of one".into(),
                    )),
                };
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            // Every whole line of the piece, then what is left moved once.
            let mut start = 0;
            while let Some(len) = pending[start..].iter().position(|b| *b == b'\n') {
                let line = &pending[start..start + len];
                start += len + 1;
                if std::mem::take(&mut first) {
                    continue;
                }
                let event = serde_json::from_slice(line)
                    .map_err(|e| internal(format!("an event of the recording: {e}")))?;
                if !each(event) {
                    return Ok(());
                }
            }
            pending.drain(..start);
        }
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        actor: &Actor,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let mut req = Request::builder().method(method).uri(path);
        let body = match body {
            Some(b) => {
                req = req.header(http::header::CONTENT_TYPE, "application/json");
                moat_proxy::body::full(serde_json::to_vec(b).expect("API bodies serialize"))
            }
            None => moat_proxy::body::empty(),
        };
        let req = req
            .body(body)
            .map_err(|e| internal(format!("request: {e}")))?;
        let resp = self.inner.handle(req, actor.clone()).await;
        let status = resp.status();
        let bytes: Bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| internal(format!("reading the API's answer: {e}")))?
            .to_bytes();
        if status.is_success() {
            // An answer without a body reads as JSON null.
            let bytes = if bytes.is_empty() {
                Bytes::from_static(b"null")
            } else {
                bytes
            };
            serde_json::from_slice(&bytes)
                .map_err(|e| internal(format!("decoding the API's answer: {e}")))
        } else {
            Err(serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| internal(format!("the API answered {status}"))))
        }
    }
}

fn internal(error: String) -> ApiError {
    tracing::error!("portal: {error}");
    ApiError {
        error,
        code: ErrorCode::Internal,
        problems: Vec::new(),
    }
}

/// The HTTP status an API error is shown with.
pub fn status_of(e: &ApiError) -> StatusCode {
    match e.code {
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::Conflict | ErrorCode::ReadOnly | ErrorCode::Retained => StatusCode::CONFLICT,
        ErrorCode::BucketUnavailable | ErrorCode::LowStorage => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Internal | ErrorCode::Other => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A path segment, percent-encoded for a portal link.
pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
