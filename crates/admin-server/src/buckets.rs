//! `/api/v1/buckets`: storage buckets for recordings. Secrets are never
//! shown back.

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use moat_admin::api::{BucketRequest, BucketView};
use moat_recording::bucket::BucketConfig;

use crate::Ctl;
use crate::actor::Who;
use crate::error::ApiFailure;

pub async fn list(State(control): State<Ctl>) -> Result<Json<Vec<BucketView>>, ApiFailure> {
    let buckets = control.buckets().await?;
    Ok(Json(
        buckets
            .into_iter()
            .map(|(name, cfg)| match cfg {
                Ok(cfg) => view(name, &cfg),
                Err(e) => BucketView {
                    name,
                    config: None,
                    error: Some(e),
                },
            })
            .collect(),
    ))
}

pub async fn show(
    State(control): State<Ctl>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<BucketView>, ApiFailure> {
    let cfg = control.bucket(&name).await?;
    Ok(Json(view(name, &cfg)))
}

pub async fn create(
    State(control): State<Ctl>,
    Who(actor): Who,
    Json(body): Json<BucketRequest>,
) -> Result<(StatusCode, Json<BucketView>), ApiFailure> {
    let Some(name) = body.name.clone() else {
        return Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            moat_admin::api::ErrorCode::Invalid,
            "the bucket needs a name",
        ));
    };
    let cfg = settings(body)?;
    let shown = control.put_bucket(&actor, &name, cfg, true).await?;
    Ok((StatusCode::CREATED, Json(view(name, &shown))))
}

pub async fn update(
    State(control): State<Ctl>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
    Json(body): Json<BucketRequest>,
) -> Result<Json<BucketView>, ApiFailure> {
    let cfg = settings(body)?;
    let shown = control.put_bucket(&actor, &name, cfg, false).await?;
    Ok(Json(view(name, &shown)))
}

pub async fn delete(
    State(control): State<Ctl>,
    Who(actor): Who,
    UrlPath(name): UrlPath<String>,
) -> Result<StatusCode, ApiFailure> {
    control.delete_bucket(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The request's settings as the recording crate reads them.
fn settings(body: BucketRequest) -> Result<BucketConfig, ApiFailure> {
    serde_json::from_value(body.config).map_err(|e| {
        ApiFailure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            moat_admin::api::ErrorCode::Invalid,
            format!("the bucket settings are not valid: {e}"),
        )
    })
}

fn view(name: String, cfg: &BucketConfig) -> BucketView {
    BucketView {
        name,
        config: Some(serde_json::to_value(cfg).expect("bucket settings serialize")),
        error: None,
    }
}
