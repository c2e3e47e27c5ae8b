//! Arrangements (生前安排, SPEC §2, PIPL 49): a subject records what relatives may do
//! with their data after their death, logged in with the company's account; an officer
//! records one received in writing, and reads a subject's.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use rightsdesk_core::Services;
use rightsdesk_core::arrangements::{ArrangementView, SubjectArrangements};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, OfficerAuth, bearer};

pub fn router(cfg: &mut ServiceConfig) {
    cfg.service(record_own)
        .service(read_own)
        .service(record)
        .service(query);
}

/// Record your own arrangement, logged in with the company's account
/// (`Authorization: Bearer <account JWT>`, see `[account_login]`). Body:
/// `{legacy_contact?: {name, email?, phone?}, rights?: {access | copy | correction |
/// deletion: "allow" | "deny" | "legacy_contact"}, delete_everything?}`. It replaces the
/// one before (which stays in the history).
#[utoipa::path(
    tag = "requester",
    request_body(content = Object, content_type = "application/json"),
    params(("Authorization" = String, Header, description = "`Bearer <account-system JWT>`")),
    responses(
        (status = 201, body = ArrangementView),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/arrangements")]
async fn record_own(
    req: HttpRequest,
    services: web::Data<Services>,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let token = bearer(&req)?;
    let view = services
        .record_own_arrangement(token.as_deref(), &body.value)
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Your own arrangements (the current one first), logged in with the company's account.
#[utoipa::path(
    tag = "requester",
    params(("Authorization" = String, Header, description = "`Bearer <account-system JWT>`")),
    responses(
        (status = 200, body = SubjectArrangements),
        (status = 401, body = ErrorBody),
    )
)]
#[get("/arrangements")]
async fn read_own(
    req: HttpRequest,
    services: web::Data<Services>,
) -> ApiResult<web::Json<SubjectArrangements>> {
    let token = bearer(&req)?;
    Ok(web::Json(
        services.own_arrangements(token.as_deref()).await?,
    ))
}

/// Record an arrangement received in writing: `{subject: {email?, phone?, account_id?},
/// note, legacy_contact?, rights?, delete_everything?}`; `note` names the document.
#[utoipa::path(
    tag = "officer",
    request_body(content = Object, content_type = "application/json"),
    security(("officer_token" = [])),
    responses(
        (status = 201, body = ArrangementView),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/officer/arrangements")]
async fn record(
    services: web::Data<Services>,
    officer: OfficerAuth,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let view = services.record_arrangement(&officer.0, &body.value).await?;
    Ok(HttpResponse::Created().json(view))
}

/// A subject's arrangements: `{email?, phone?, account_id?}` (in the body, so that the
/// identifiers stay out of access logs).
#[utoipa::path(
    tag = "officer",
    request_body(content = Object, content_type = "application/json"),
    security(("officer_token" = [])),
    responses(
        (status = 200, body = SubjectArrangements),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/officer/arrangements/query")]
async fn query(
    services: web::Data<Services>,
    officer: OfficerAuth,
    body: JsonBody,
) -> ApiResult<web::Json<SubjectArrangements>> {
    Ok(web::Json(
        services.query_arrangements(&officer.0, &body.value).await?,
    ))
}
