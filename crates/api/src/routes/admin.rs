//! Administration (`admin` role): officer accounts, and the data sources with their last
//! check.

use actix_web::{HttpResponse, get, post, web};
use rightsdesk_core::Services;
use rightsdesk_core::officers::OfficerView;
use rightsdesk_core::sources::SourceView;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, OfficerAuth};

pub fn router(cfg: &mut ServiceConfig) {
    cfg.service(list_officers)
        .service(create_officer)
        .service(list_sources)
        .service(check_sources);
}

/// Every officer account.
#[utoipa::path(
    tag = "admin",
    security(("officer_token" = [])),
    responses((status = 200, body = Vec<OfficerView>), (status = 403, body = ErrorBody))
)]
#[get("/admin/officers")]
async fn list_officers(
    services: web::Data<Services>,
    officer: OfficerAuth,
) -> ApiResult<web::Json<Vec<OfficerView>>> {
    Ok(web::Json(services.list_officers(&officer.0).await?))
}

/// Create an officer: `{username, display_name, email?, password, roles: [officer|dpo|auditor|admin]}`.
#[utoipa::path(
    tag = "admin",
    request_body(content = Object, content_type = "application/json"),
    security(("officer_token" = [])),
    responses(
        (status = 201, body = OfficerView),
        (status = 403, body = ErrorBody),
        (status = 409, description = "Username taken", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/admin/officers")]
async fn create_officer(
    services: web::Data<Services>,
    officer: OfficerAuth,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let created = services.create_officer(&officer.0, &body.value).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Every data source of the sources file, with its last check.
#[utoipa::path(
    tag = "admin",
    security(("officer_token" = [])),
    responses((status = 200, body = Vec<SourceView>), (status = 403, body = ErrorBody))
)]
#[get("/admin/sources")]
async fn list_sources(
    services: web::Data<Services>,
    officer: OfficerAuth,
) -> ApiResult<web::Json<Vec<SourceView>>> {
    Ok(web::Json(services.list_sources(&officer.0).await?))
}

/// Check every data source now (reached, its tables and columns, its service
/// answering); each check is recorded as the source's last.
#[utoipa::path(
    tag = "admin",
    security(("officer_token" = [])),
    responses((status = 200, body = Vec<SourceView>), (status = 403, body = ErrorBody))
)]
#[post("/admin/sources/check")]
async fn check_sources(
    services: web::Data<Services>,
    officer: OfficerAuth,
) -> ApiResult<web::Json<Vec<SourceView>>> {
    Ok(web::Json(services.check_sources(&officer.0).await?))
}
