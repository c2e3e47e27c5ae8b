//! The requester's side: file a request, verify it with the code sent, read it with the
//! requester token, accept a quoted fee, withdraw it.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use rightsdesk_core::evidence::RequesterEvidence;
use rightsdesk_core::requests::{Filed, Filing, RequesterView};
use rightsdesk_core::verification::{CodeSent, LinkVerified};
use rightsdesk_core::{ErrorCode, Services};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, RequesterToken, bearer, idempotency, parse_id};

pub fn router(cfg: &mut ServiceConfig) {
    cfg.service(file_request)
        .service(get_request)
        .service(verify)
        .service(resend_code)
        .service(verify_link)
        .service(upload_evidence)
        .service(withdraw)
        .service(accept_fee);
}

/// File a rights request.
///
/// Body: `{kind, requester: {name, email, phone, language}, details: {...}}`; at least
/// one of email and phone. The answer carries the reference, the due date and the
/// requester token, which is shown only here. With an `Idempotency-Key`, a retry with
/// the same body returns the first answer and stores nothing new. With
/// `Authorization: Bearer <JWT of the company's account system>` (see
/// `[account_login]`), the request is verified at once for that account and no code is
/// sent; a token that does not verify is refused (401) and nothing is stored.
#[utoipa::path(
    tag = "requester",
    request_body(content = Object, description = "The filing", content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
        ("Authorization" = Option<String>, Header, description = "`Bearer <account-system JWT>`: verified at filing"),
    ),
    responses(
        (status = 201, description = "Filed", body = Filed),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Account token refused", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    )
)]
#[post("/requests")]
async fn file_request(
    req: HttpRequest,
    services: web::Data<Services>,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let account_token = bearer(&req)?;
    let idem = idempotency(&req, &body)?;
    if body.value.is_null() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "the body must be a JSON object",
        ));
    }
    let filing = Filing::read(&body.value)?;
    let filed = services
        .file_request(filing, idem, account_token.as_deref())
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/requests/{}", filed.id)))
        .json(filed))
}

/// Read a request with its requester token.
///
/// Without a token: 401. With a token that is not this request's: 404, so that nobody
/// learns whether another request exists.
#[utoipa::path(
    tag = "requester",
    params(("id" = String, Path, description = "The request id")),
    security(("requester_token" = [])),
    responses(
        (status = 200, body = RequesterView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/requests/{id}")]
async fn get_request(
    services: web::Data<Services>,
    id: web::Path<String>,
    token: RequesterToken,
) -> ApiResult<web::Json<RequesterView>> {
    let id = parse_id(&id)?;
    Ok(web::Json(
        services.requester_view(id, token.0.as_deref()).await?,
    ))
}

/// Withdraw an open request. Body (optional): `{note}`.
#[utoipa::path(
    tag = "requester",
    params(("id" = String, Path, description = "The request id")),
    security(("requester_token" = [])),
    responses(
        (status = 200, body = RequesterView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Already closed", body = ErrorBody),
    )
)]
#[post("/requests/{id}/withdraw")]
async fn withdraw(
    services: web::Data<Services>,
    id: web::Path<String>,
    token: RequesterToken,
    body: JsonBody,
) -> ApiResult<web::Json<RequesterView>> {
    let id = parse_id(&id)?;
    Ok(web::Json(
        services
            .withdraw(id, token.0.as_deref(), &body.value)
            .await?,
    ))
}

/// Verify the request with the 6-digit code sent to the requester.
///
/// Body: `{code}`. A right code moves the request to `verified`. A wrong one answers
/// `422 verification_code_invalid` with `details.attempts_left`; after
/// `verification.max_attempts` wrong codes the code is burned (`429
/// verification_locked`) and a new one must be requested.
#[utoipa::path(
    tag = "requester",
    params(("id" = String, Path, description = "The request id")),
    security(("requester_token" = [])),
    request_body(content = Object, description = "`{\"code\": \"123456\"}`", content_type = "application/json"),
    responses(
        (status = 200, description = "Verified", body = RequesterView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not waiting for verification", body = ErrorBody),
        (status = 422, description = "Wrong, expired or malformed code", body = ErrorBody),
        (status = 429, description = "Code burned by too many wrong tries", body = ErrorBody),
    )
)]
#[post("/requests/{id}/verification")]
async fn verify(
    services: web::Data<Services>,
    id: web::Path<String>,
    token: RequesterToken,
    body: JsonBody,
) -> ApiResult<web::Json<RequesterView>> {
    let id = parse_id(&id)?;
    Ok(web::Json(
        services
            .verify_code(id, token.0.as_deref(), &body.value)
            .await?,
    ))
}

/// Send a new verification code (and link); the previous one stops working.
///
/// Allowed once per `verification.resend_cooldown_secs`; earlier asks answer `429
/// verification_resend_too_soon` with `Retry-After`.
#[utoipa::path(
    tag = "requester",
    params(("id" = String, Path, description = "The request id")),
    security(("requester_token" = [])),
    responses(
        (status = 202, description = "A new code is on its way", body = CodeSent),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not waiting for verification", body = ErrorBody),
        (status = 429, description = "Asked too soon", body = ErrorBody),
    )
)]
#[post("/requests/{id}/verification/resend")]
async fn resend_code(
    services: web::Data<Services>,
    id: web::Path<String>,
    token: RequesterToken,
) -> ApiResult<HttpResponse> {
    let id = parse_id(&id)?;
    let sent = services.resend_code(id, token.0.as_deref()).await?;
    Ok(HttpResponse::Accepted().json(sent))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
struct LinkQuery {
    /// The token of the link in the verification email (the part after `/verify/`).
    token: String,
}

/// Redeem the verification link for a page of the company's own website that received
/// the link token: verifies the request (or, for a next of kin, confirms the contact
/// and leaves the documents to review). Usable once.
#[utoipa::path(
    tag = "requester",
    params(("id" = String, Path, description = "The request id"), LinkQuery),
    responses(
        (status = 200, description = "Verified", body = LinkVerified),
        (status = 400, description = "Altered, cut short, or not this request's link", body = ErrorBody),
        (status = 410, description = "Expired or already used", body = ErrorBody),
    )
)]
#[get("/requests/{id}/verify")]
async fn verify_link(
    services: web::Data<Services>,
    id: web::Path<String>,
    query: web::Query<LinkQuery>,
) -> ApiResult<web::Json<LinkVerified>> {
    let id = parse_id(&id)?;
    Ok(web::Json(
        services.verify_link(&query.token, Some(id)).await?,
    ))
}

/// Upload an evidence file: an ID document, a death certificate, a proof of
/// relationship, a power of attorney or a proof of guardianship.
///
/// `multipart/form-data` with a `kind` field (`id_document`, `death_certificate`,
/// `relationship_proof`, `power_of_attorney`, `guardian_proof`, `other`) and one `file`
/// part: PDF, JPEG or PNG, at most `evidence.max_bytes`. The file is stored encrypted
/// and only officers can open it; the requester sees that it arrived and how it was
/// judged, in the request.
#[utoipa::path(
    tag = "requester",
    params(("id" = String, Path, description = "The request id")),
    security(("requester_token" = [])),
    request_body(content = Object, description = "`kind` and `file`", content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = RequesterEvidence),
        (status = 400, description = "Not a proper form", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Request closed, or too many files", body = ErrorBody),
        (status = 413, description = "File too large", body = ErrorBody),
        (status = 415, description = "Not a PDF, JPEG or PNG", body = ErrorBody),
        (status = 422, description = "Missing or unknown kind", body = ErrorBody),
    )
)]
#[post("/requests/{id}/evidence")]
async fn upload_evidence(
    req: HttpRequest,
    services: web::Data<Services>,
    id: web::Path<String>,
    token: RequesterToken,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let id = parse_id(&id)?;
    let token = token.0.as_deref();
    services.check_requester(id, token).await?;
    let upload = crate::upload::read(&req, payload, services.evidence_max_bytes()).await?;
    let stored = services.upload_evidence(id, token, upload).await?;
    Ok(HttpResponse::Created().json(stored))
}

/// Accept the cost fee quoted for a repeated request (`fee_due` in the request): the
/// clock runs again and the officer goes on. Body (optional): `{note}`.
#[utoipa::path(
    tag = "requester",
    params(("id" = String, Path, description = "The request id")),
    security(("requester_token" = [])),
    responses(
        (status = 200, body = RequesterView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "No fee is waiting to be accepted (`no_fee_quoted`, `illegal_transition`)", body = ErrorBody),
    )
)]
#[post("/requests/{id}/fee/accept")]
async fn accept_fee(
    services: web::Data<Services>,
    id: web::Path<String>,
    token: RequesterToken,
    body: JsonBody,
) -> ApiResult<web::Json<RequesterView>> {
    let id = parse_id(&id)?;
    Ok(web::Json(
        services
            .accept_fee(id, token.0.as_deref(), &body.value)
            .await?,
    ))
}
