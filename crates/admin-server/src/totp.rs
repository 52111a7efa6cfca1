//! `/api/v1/totp`: the system account's second factor: enrol (the secret,
//! shown once), confirm with a code (the recovery codes, shown once), and
//! remove.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use moat_admin::api::{TotpConfirm, TotpEnrolment, TotpRecoveryCodes};

use crate::Ctl;
use crate::error::ApiFailure;

pub async fn enroll(
    State(control): State<Ctl>,
    crate::actor::Who(actor): crate::actor::Who,
) -> Result<Json<TotpEnrolment>, ApiFailure> {
    let e = control.totp_begin(&actor).await?;
    Ok(Json(TotpEnrolment {
        secret: e.secret_base32,
        otpauth_uri: e.otpauth_uri,
    }))
}

pub async fn confirm(
    State(control): State<Ctl>,
    crate::actor::Who(actor): crate::actor::Who,
    Json(req): Json<TotpConfirm>,
) -> Result<Json<TotpRecoveryCodes>, ApiFailure> {
    let recovery_codes = control.totp_confirm(&actor, &req.code).await?;
    Ok(Json(TotpRecoveryCodes { recovery_codes }))
}

pub async fn remove(
    State(control): State<Ctl>,
    crate::actor::Who(actor): crate::actor::Who,
) -> Result<StatusCode, ApiFailure> {
    control.totp_remove(&actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
