//! Correction (PIPL 46): an officer reads each requested change beside the values the
//! sources hold now, and approves or rejects it.

use actix_web::{get, post, web};
use rightsdesk_core::Services;
use rightsdesk_core::corrections::CorrectionView;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, OfficerAuth, parse_id};

pub fn router(cfg: &mut ServiceConfig) {
    cfg.service(read).service(decide);
}

/// A correction request's changes beside the values the sources hold now (read from
/// them at this moment, and recorded as `current_values_read`), with each change's
/// decision and the fields the sources file declares correctable.
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path)),
    security(("officer_token" = [])),
    responses(
        (status = 200, body = CorrectionView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not a correction request", body = ErrorBody),
    )
)]
#[get("/officer/requests/{id}/corrections")]
async fn read(
    services: web::Data<Services>,
    officer: OfficerAuth,
    id: web::Path<String>,
) -> ApiResult<web::Json<CorrectionView>> {
    let id = parse_id(&id)?;
    Ok(web::Json(services.correction_view(&officer.0, id).await?))
}

/// Approve or reject requested changes, each once: `{"decisions": [{"change": 0,
/// "decision": "approve", "field"?: "<correctable field>"}, {"change": 1, "decision":
/// "reject", "reason": "…"}]}`. Once every change is decided, the approved ones are
/// applied in every source that holds their field.
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    security(("officer_token" = [])),
    responses(
        (status = 200, body = CorrectionView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not a correction in progress (`correction_not_allowed`), or decided already (`already_decided`)", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/officer/requests/{id}/corrections")]
async fn decide(
    services: web::Data<Services>,
    officer: OfficerAuth,
    id: web::Path<String>,
    body: JsonBody,
) -> ApiResult<web::Json<CorrectionView>> {
    let id = parse_id(&id)?;
    Ok(web::Json(
        services
            .decide_corrections(&officer.0, id, &body.value)
            .await?,
    ))
}
