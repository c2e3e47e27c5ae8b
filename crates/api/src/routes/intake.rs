//! Email intake: the signed raw-MIME endpoint an MTA pipe or a provider's inbound hook
//! posts to, and the officers' triage lane and classification rules.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use futures_util::StreamExt;
use rightsdesk_core::intake::{IntakeOutcome, IntakePage};
use rightsdesk_core::{ErrorCode, Services};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, OfficerAuth, parse_id};

pub fn router(cfg: &mut ServiceConfig) {
    cfg.service(post_message)
        .service(list)
        .service(convert)
        .service(dismiss)
        .service(rules)
        .service(add_rule)
        .service(delete_rule);
}

/// Post one raw message (`message/rfc822`), signed.
///
/// Headers: `X-Rightsdesk-Timestamp` (Unix seconds, within `intake.hook_tolerance_secs`
/// of now) and `X-Rightsdesk-Signature: sha256=<hex>`, the HMAC-SHA256 with
/// `intake.hook_secret` of `<timestamp>.<body>`. Each signature is accepted once. The
/// answer says what the message became; a message seen before (same Message-ID)
/// answers `duplicate: true` and changes nothing. 404 when `intake.hook_secret` is unset.
#[utoipa::path(
    tag = "intake",
    request_body(content = String, content_type = "message/rfc822"),
    params(
        ("X-Rightsdesk-Timestamp" = String, Header, description = "Unix seconds"),
        ("X-Rightsdesk-Signature" = String, Header, description = "sha256=<hex>"),
    ),
    responses(
        (status = 200, body = IntakeOutcome),
        (status = 401, description = "Unsigned, badly signed, or stale", body = ErrorBody),
        (status = 404, description = "The endpoint is off", body = ErrorBody),
        (status = 409, description = "A replayed post", body = ErrorBody),
        (status = 413, body = ErrorBody),
    )
)]
#[post("/intake/messages")]
async fn post_message(
    req: HttpRequest,
    services: web::Data<Services>,
    mut payload: web::Payload,
) -> ApiResult<web::Json<IntakeOutcome>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let max = services.config().intake.limits.max_bytes;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|_| ApiError::new(ErrorCode::InvalidBody, "the body could not be read"))?;
        if body.len() + chunk.len() > max {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("a message may be at most {max} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let outcome = services
        .ingest_signed(
            header("X-Rightsdesk-Timestamp").as_deref(),
            header("X-Rightsdesk-Signature").as_deref(),
            &body,
        )
        .await?;
    Ok(web::Json(outcome))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IntakeQuery {
    /// `triage` (default), `request`, `reply`, `ignored`, `failed`, `converted`, `dismissed`.
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    pub after: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u64>,
}

/// Inbound messages by what they became, oldest first: the triage lane by default.
#[utoipa::path(
    tag = "intake",
    params(IntakeQuery),
    security(("officer_token" = [])),
    responses((status = 200, body = IntakePage), (status = 422, body = ErrorBody))
)]
#[get("/officer/intake")]
async fn list(
    services: web::Data<Services>,
    officer: OfficerAuth,
    query: web::Query<IntakeQuery>,
) -> ApiResult<web::Json<IntakePage>> {
    Ok(web::Json(
        services
            .intake_messages(
                &officer.0,
                query.status.as_deref(),
                query.after.as_deref(),
                query.limit,
            )
            .await?,
    ))
}

/// Convert a triage item into a request: `{kind, details?, requester_name?}` (details
/// as in a filing). The sender becomes the requester, gets the acknowledgement and the
/// verification code; the message's attachments become evidence.
#[utoipa::path(
    tag = "intake",
    params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    security(("officer_token" = [])),
    responses(
        (status = 200, body = IntakeOutcome),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Converted or dismissed already", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/officer/intake/{id}/convert")]
async fn convert(
    services: web::Data<Services>,
    officer: OfficerAuth,
    id: web::Path<String>,
    body: JsonBody,
) -> ApiResult<web::Json<IntakeOutcome>> {
    let id = parse_id(&id)?;
    Ok(web::Json(
        services.convert_intake(&officer.0, id, &body.value).await?,
    ))
}

/// Dismiss a triage item: `{reason}`. Its raw message is destroyed.
#[utoipa::path(
    tag = "intake",
    params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    security(("officer_token" = [])),
    responses(
        (status = 200, body = IntakeOutcome),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/officer/intake/{id}/dismiss")]
async fn dismiss(
    services: web::Data<Services>,
    officer: OfficerAuth,
    id: web::Path<String>,
    body: JsonBody,
) -> ApiResult<web::Json<IntakeOutcome>> {
    let id = parse_id(&id)?;
    Ok(web::Json(
        services.dismiss_intake(&officer.0, id, &body.value).await?,
    ))
}

/// The classification rules in force: the threshold, the bundled rules and those
/// officers added.
#[utoipa::path(
    tag = "intake",
    security(("officer_token" = [])),
    responses((status = 200, body = Object))
)]
#[get("/officer/intake/rules")]
async fn rules(
    services: web::Data<Services>,
    officer: OfficerAuth,
) -> ApiResult<web::Json<serde_json::Value>> {
    Ok(web::Json(services.intake_rule_list(&officer.0).await?))
}

/// Add a rule: `{kind, terms: [..], field?: any|subject|body, weight?, unless?: [..]}`.
/// It applies from the next message.
#[utoipa::path(
    tag = "intake",
    request_body(content = Object, content_type = "application/json"),
    security(("officer_token" = [])),
    responses((status = 201, body = Object), (status = 422, body = ErrorBody))
)]
#[post("/officer/intake/rules")]
async fn add_rule(
    services: web::Data<Services>,
    officer: OfficerAuth,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let rule = services.add_intake_rule(&officer.0, &body.value).await?;
    Ok(HttpResponse::Created().json(rule))
}

/// Remove a rule an officer added.
#[utoipa::path(
    tag = "intake",
    params(("id" = String, Path)),
    security(("officer_token" = [])),
    responses((status = 204), (status = 404, body = ErrorBody))
)]
#[delete("/officer/intake/rules/{id}")]
async fn delete_rule(
    services: web::Data<Services>,
    officer: OfficerAuth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    services
        .delete_intake_rule(&officer.0, parse_id(&id)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
