//! Administration (`admin` role): officer accounts, and the data sources with their last
//! check.

use actix_web::{HttpResponse, get, patch, post, web};
use rightsdesk_core::Services;
use rightsdesk_core::officers::OfficerView;
use rightsdesk_core::sources::SourceView;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, OfficerAuth, parse_id};

pub fn router(cfg: &mut ServiceConfig) {
    cfg.service(list_officers)
        .service(create_officer)
        .service(update_officer)
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

/// Change an officer: any of `{display_name, email (null removes it), roles, active,
/// password}`. A new password also lifts a lockout; `active: false` ends the account's
/// sessions at their next request. An admin cannot drop their own `admin` role or
/// deactivate themselves (`422`).
#[utoipa::path(
    tag = "admin",
    params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    security(("officer_token" = [])),
    responses(
        (status = 200, body = OfficerView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[patch("/admin/officers/{id}")]
async fn update_officer(
    services: web::Data<Services>,
    officer: OfficerAuth,
    id: web::Path<String>,
    body: JsonBody,
) -> ApiResult<web::Json<OfficerView>> {
    let id = parse_id(&id)?;
    Ok(web::Json(
        services.update_officer(&officer.0, id, &body.value).await?,
    ))
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
