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
