//! The API's one error type: every handler returns it for a failure, and
//! it maps to a status and an [`ApiError`] with its typed code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use moat_admin::api::{ApiError, ErrorCode, FieldProblem};
use moat_proxy::control::ControlError;

#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub body: ApiError,
}

impl ApiFailure {
    pub fn new(status: StatusCode, code: ErrorCode, error: impl Into<String>) -> Self {
        ApiFailure {
            status,
            body: ApiError {
                error: error.into(),
                code,
                problems: Vec::new(),
            },
        }
    }

    pub fn not_found(error: impl Into<String>) -> Self {
        ApiFailure::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, error)
    }

    pub fn bad_request(error: impl Into<String>) -> Self {
        ApiFailure::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, error)
    }

    /// An app definition with bad fields.
    pub fn invalid(problems: Vec<FieldProblem>) -> Self {
        ApiFailure {
            status: StatusCode::BAD_REQUEST,
            body: ApiError {
                error: "the app definition is not valid".into(),
                code: ErrorCode::Invalid,
                problems,
            },
        }
    }
}

impl From<ControlError> for ApiFailure {
    fn from(e: ControlError) -> Self {
        use ControlError as E;
        let (status, code) = match &e {
            E::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            E::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            E::ReadOnly(_) => (StatusCode::CONFLICT, ErrorCode::ReadOnly),
            E::Invalid(problems) => {
                return ApiFailure::invalid(problems.iter().map(field_problem).collect());
            }
            E::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            E::InvalidValue(_) => (StatusCode::BAD_REQUEST, ErrorCode::Invalid),
            E::Retained(_) => (StatusCode::CONFLICT, ErrorCode::Retained),
            E::BucketUnavailable(_) => (StatusCode::BAD_GATEWAY, ErrorCode::BucketUnavailable),
            E::LowStorage(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::LowStorage),
            E::Unreadable(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::Invalid),
            E::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        };
        ApiFailure::new(status, code, e.to_string())
    }
}

impl From<moat_store::StoreError> for ApiFailure {
    fn from(e: moat_store::StoreError) -> Self {
        ControlError::from(e).into()
    }
}

pub fn field_problem(p: &moat_config::Problem) -> FieldProblem {
    FieldProblem {
        key: p.key.clone(),
        message: p.message.clone(),
        fix: p.fix.clone(),
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_error_has_its_status_and_code() {
        let cases = [
            (ControlError::NotFound("x".into()), 404, ErrorCode::NotFound),
            (ControlError::Conflict("x".into()), 409, ErrorCode::Conflict),
            (ControlError::ReadOnly("x".into()), 409, ErrorCode::ReadOnly),
            (
                ControlError::BadRequest("x".into()),
                400,
                ErrorCode::BadRequest,
            ),
            (
                ControlError::InvalidValue("x".into()),
                400,
                ErrorCode::Invalid,
            ),
            (ControlError::Retained("x".into()), 409, ErrorCode::Retained),
            (
                ControlError::BucketUnavailable("x".into()),
                502,
                ErrorCode::BucketUnavailable,
            ),
            (
                ControlError::LowStorage("x".into()),
                503,
                ErrorCode::LowStorage,
            ),
            (
                ControlError::Unreadable("x".into()),
                422,
                ErrorCode::Invalid,
            ),
            (ControlError::Internal("x".into()), 500, ErrorCode::Internal),
        ];
        for (e, status, code) in cases {
            let f = ApiFailure::from(e);
            assert_eq!((f.status.as_u16(), f.body.code), (status, code));
            assert_eq!(f.body.error, "x");
        }
        let f = ApiFailure::from(ControlError::Invalid(vec![
            moat_config::Problem::new("path", "must start with /").fix("/wiki"),
        ]));
        assert_eq!((f.status.as_u16(), f.body.code), (400, ErrorCode::Invalid));
        assert_eq!(f.body.problems[0].key, "path");
        assert_eq!(f.body.problems[0].fix.as_deref(), Some("/wiki"));
    }
}
