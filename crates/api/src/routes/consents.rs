//! The consent ledger for the company's systems (SPEC §7): read a subject's consents,
//! record one given (or withdrawn elsewhere). Callers log in with an account holding
//! the `system` role (officers may read, and record one received on paper).

use actix_web::{HttpResponse, post, web};
use rightsdesk_core::Services;
use rightsdesk_core::consents::SubjectConsents;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, OfficerAuth};

pub fn router(cfg: &mut ServiceConfig) {
    cfg.service(query).service(record);
}

/// A subject's consents, per purpose as they stand (`active`: whether new processing for
/// it may go ahead) and their whole history. The body names the subject:
/// `{"email": "…", "phone": "…", "account_id": "…"}` (at least one; identifiers stay out
/// of URLs and access logs). A subject never recorded answers `subject_known: false`.
#[utoipa::path(
    tag = "consents",
    security(("officer_token" = [])),
    responses(
        (status = 200, body = SubjectConsents),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/consents/query")]
async fn query(
    services: web::Data<Services>,
    officer: OfficerAuth,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let answer = services.query_consents(&officer.0, &body.value).await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// Record a change of a subject's consent: `{"subject": {"email", "phone",
/// "account_id"}, "purpose": "marketing_sms", "state": "given" | "withdrawn" |
/// "narrowed", "scope": "…", "method": "web_form", "policy_version": "2026-06",
/// "at": "2026-12-01T09:30:00+08:00"}` (`at` defaults to now and may not be in the
/// future; `scope` is required for `narrowed`). A subject not known yet is created with
/// the identifiers. Answers 201 with the subject's consents.
#[utoipa::path(
    tag = "consents",
    security(("officer_token" = [])),
    responses(
        (status = 201, body = SubjectConsents),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/consents")]
async fn record(
    services: web::Data<Services>,
    officer: OfficerAuth,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let answer = services.record_consent(&officer.0, &body.value).await?;
    Ok(HttpResponse::Created().json(answer))
}
