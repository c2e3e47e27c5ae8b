//! Fulfilment's look-ups: an officer has every data source searched for a request's
//! subject, or one source again; the request detail shows where each stands.

use actix_web::{HttpResponse, post, web};
use rightsdesk_core::Services;
use rightsdesk_core::collections::CollectionView;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{OfficerAuth, parse_id};

pub fn router(cfg: &mut ServiceConfig) {
    cfg.service(collect).service(rerun);
}

/// Search every data source for the subject of an access, copy or portability request
/// in progress (one job per source, on the worker). Sources that answered are left as
/// they are; failed ones run again. Answers 202 with where each source stands; the
/// request detail's `sources` follows them.
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path)),
    security(("officer_token" = [])),
    responses(
        (status = 202, body = Vec<CollectionView>),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "No sources, or the request is not one to collect for", body = ErrorBody),
    )
)]
#[post("/officer/requests/{id}/collect")]
async fn collect(
    services: web::Data<Services>,
    officer: OfficerAuth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_id(&id)?;
    let views = services.start_collection(&officer.0, id).await?;
    Ok(HttpResponse::Accepted().json(views))
}

/// Search one source again (after it was fixed, or to refresh its answer).
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path), ("source" = String, Path)),
    security(("officer_token" = [])),
    responses(
        (status = 202, body = Vec<CollectionView>),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such request or source", body = ErrorBody),
        (status = 409, body = ErrorBody),
    )
)]
#[post("/officer/requests/{id}/sources/{source}/rerun")]
async fn rerun(
    services: web::Data<Services>,
    officer: OfficerAuth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (id, source) = path.into_inner();
    let id = parse_id(&id)?;
    let views = services.rerun_collection(&officer.0, id, &source).await?;
    Ok(HttpResponse::Accepted().json(views))
}
