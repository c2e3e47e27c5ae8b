//! The officer's side: the queue, the dashboard, request detail, registering phone and post requests,
//! lifecycle actions and comments.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use rightsdesk_core::Services;
use rightsdesk_core::dashboard::Dashboard;
use rightsdesk_core::requests::{CommentView, Filed, QueuePage, QueueQuery, RequestDetail};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, OfficerAuth, idempotency, parse_id};

pub fn router(cfg: &mut ServiceConfig) {
    cfg.service(queue)
        .service(dashboard)
        .service(register)
        .service(detail)
        .service(act)
        .service(evidence_content)
        .service(refusal_letter)
        .service(comment);
}

/// The refusal letter of a rejected request (HTML, in the requester's language): the
/// reason, its explanation and legal basis, the complaint channel and the right to sue,
/// signed by the DPO who refused. The requester gets it attached to the refusal notice;
/// this is the copy to print (a request received by post) or to hand a regulator.
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path)),
    security(("officer_token" = [])),
    responses(
        (status = 200, description = "The letter", content_type = "text/html", body = String),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The request is not rejected (`not_rejected`)", body = ErrorBody),
    )
)]
#[get("/officer/requests/{id}/refusal-letter")]
async fn refusal_letter(
    services: web::Data<Services>,
    officer: OfficerAuth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_id(&id)?;
    let html = services.refusal_letter(&officer.0, id).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// The queue, ordered by due date (oldest first), with keyset pagination.
#[utoipa::path(
    tag = "officer",
    params(QueueQuery),
    security(("officer_token" = [])),
    responses(
        (status = 200, body = QueuePage),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
#[get("/officer/requests")]
async fn queue(
    services: web::Data<Services>,
    officer: OfficerAuth,
    query: web::Query<QueueQuery>,
) -> ApiResult<web::Json<QueuePage>> {
    Ok(web::Json(services.queue(&officer.0, &query).await?))
}

/// The dashboard: open, due this week and overdue now; over the last 30 and 90 days,
/// requests received by kind and channel, the on-time rate, refusals by reason and the
/// median time to close.
#[utoipa::path(
    tag = "officer",
    security(("officer_token" = [])),
    responses(
        (status = 200, body = Dashboard),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
#[get("/officer/dashboard")]
async fn dashboard(
    services: web::Data<Services>,
    officer: OfficerAuth,
) -> ApiResult<web::Json<Dashboard>> {
    Ok(web::Json(services.dashboard(&officer.0).await?))
}

/// Register a request received by phone, post, in person or email.
///
/// Body: the filing plus `channel` and `received_at` (RFC 3339, the real receipt time,
/// from which the deadline runs).
#[utoipa::path(
    tag = "officer",
    request_body(content = Object, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    security(("officer_token" = [])),
    responses(
        (status = 201, body = Filed),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/officer/requests")]
async fn register(
    req: HttpRequest,
    services: web::Data<Services>,
    officer: OfficerAuth,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let idem = idempotency(&req, &body)?;
    let filed = services
        .register_request(&officer.0, &body.value, idem)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/officer/requests/{}", filed.id)))
        .json(filed))
}

/// A request with its timeline, comments, deadline and the actions allowed now.
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path)),
    security(("officer_token" = [])),
    responses((status = 200, body = RequestDetail), (status = 404, body = ErrorBody))
)]
#[get("/officer/requests/{id}")]
async fn detail(
    services: web::Data<Services>,
    officer: OfficerAuth,
    id: web::Path<String>,
) -> ApiResult<web::Json<RequestDetail>> {
    let id = parse_id(&id)?;
    Ok(web::Json(services.request_detail(&officer.0, id).await?))
}

/// Take a lifecycle action.
///
/// Actions and their bodies: `assign {assignee_id | null}`, `verify {method, note?}`,
/// `start {note?}`, `request_info {message}`, `resume {note?}`, `complete {summary}`,
/// `reject {reason_code, explanation}` (dpo), `reopen {reason}`,
/// `accept_evidence {evidence_id, note?}` (verifies a request awaiting verification),
/// `reject_evidence {evidence_id, reason}` (the requester is told the reason),
/// `extend {reason, amount?}` (dpo), `quote_fee {amount, currency?, explanation}` (a
/// repeated request only: the request waits for the requester to accept). An action that is not
/// legal in the request's state is a 409 naming the state.
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path), ("action" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    security(("officer_token" = [])),
    responses(
        (status = 200, body = RequestDetail),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/officer/requests/{id}/actions/{action}")]
async fn act(
    services: web::Data<Services>,
    officer: OfficerAuth,
    path: web::Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<web::Json<RequestDetail>> {
    let (id, action) = path.into_inner();
    let id = parse_id(&id)?;
    Ok(web::Json(
        services.act(&officer.0, id, &action, &body.value).await?,
    ))
}

/// Add an internal comment (`{body}`), recorded in the timeline.
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    security(("officer_token" = [])),
    responses((status = 201, body = CommentView), (status = 422, body = ErrorBody))
)]
#[post("/officer/requests/{id}/comments")]
async fn comment(
    services: web::Data<Services>,
    officer: OfficerAuth,
    id: web::Path<String>,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let id = parse_id(&id)?;
    let c = services.comment(&officer.0, id, &body.value).await?;
    Ok(HttpResponse::Created().json(c))
}

/// Open an evidence file. Officers and the DPO only; every opening is recorded in the
/// request's timeline before the file is sent. Auditors see the list, never the file.
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path), ("evidence_id" = String, Path)),
    security(("officer_token" = [])),
    responses(
        (status = 200, description = "The file (PDF, JPEG or PNG)", content_type = "application/octet-stream"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 410, description = "Destroyed after the retention period", body = ErrorBody),
    )
)]
#[get("/officer/requests/{id}/evidence/{evidence_id}/content")]
async fn evidence_content(
    services: web::Data<Services>,
    officer: OfficerAuth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (id, evidence_id) = path.into_inner();
    let file = services
        .open_evidence(&officer.0, parse_id(&id)?, parse_id(&evidence_id)?)
        .await?;
    Ok(HttpResponse::Ok()
        .content_type(file.content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{}\"", file.download_name),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(file.bytes))
}
