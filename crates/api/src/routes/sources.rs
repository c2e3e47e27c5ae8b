//! Fulfilment's look-ups: an officer has every data source searched for a request's
//! subject, or one source again; the request detail shows where each stands.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use rightsdesk_core::collections::{CollectionView, OwnerAnswer, OwnerFile};
use rightsdesk_core::consents::SourceChangeView;
use rightsdesk_core::erasures::ErasureView;
use rightsdesk_core::{ErrorCode, Services};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, OfficerAuth, parse_id};

pub fn router(cfg: &mut ServiceConfig) {
    cfg.service(collect)
        .service(rerun)
        .service(answer)
        .service(erase)
        .service(rerun_erasure)
        .service(confirm_erasure)
        .service(rerun_change)
        .service(confirm_change);
}

/// Apply one source's change again (a consent withdrawal, after the source was fixed).
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path), ("source" = String, Path)),
    security(("officer_token" = [])),
    responses(
        (status = 202, body = Vec<SourceChangeView>),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "The request has no open change in that source", body = ErrorBody),
    )
)]
#[post("/officer/requests/{id}/changes/{source}/rerun")]
async fn rerun_change(
    services: web::Data<Services>,
    officer: OfficerAuth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (id, source) = path.into_inner();
    let id = parse_id(&id)?;
    let views = services.rerun_change(&officer.0, id, &source).await?;
    Ok(HttpResponse::Accepted().json(views))
}

/// Confirm, for the owner of a source that waits for them, that they applied the
/// change (a consent withdrawal): `{"outcome": "applied" | "no_data", "note": "..."}`.
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path), ("source" = String, Path)),
    security(("officer_token" = [])),
    responses(
        (status = 200, body = Vec<SourceChangeView>),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such request or source", body = ErrorBody),
        (status = 409, description = "The source is not waiting for its owner", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/officer/requests/{id}/changes/{source}/confirm")]
async fn confirm_change(
    services: web::Data<Services>,
    officer: OfficerAuth,
    path: web::Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let (id, source) = path.into_inner();
    let id = parse_id(&id)?;
    let views = services
        .confirm_change(&officer.0, id, &source, &body.value)
        .await?;
    Ok(HttpResponse::Ok().json(views))
}

/// Erase the subject of a deletion or account-closure request in progress from every
/// data source (one job per source, on the worker). Sources with an outcome are left
/// as they are; failed ones run again; a source rightsdesk cannot erase itself asks its
/// owner. Answers 202 with where each stands; the request detail's `erasures` follows
/// them.
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path)),
    security(("officer_token" = [])),
    responses(
        (status = 202, body = Vec<ErasureView>),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "No sources, or the request is not one to erase for", body = ErrorBody),
    )
)]
#[post("/officer/requests/{id}/erase")]
async fn erase(
    services: web::Data<Services>,
    officer: OfficerAuth,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_id(&id)?;
    let views = services.start_erasure(&officer.0, id).await?;
    Ok(HttpResponse::Accepted().json(views))
}

/// Erase one source again (after it was fixed).
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path), ("source" = String, Path)),
    security(("officer_token" = [])),
    responses(
        (status = 202, body = Vec<ErasureView>),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such request or source", body = ErrorBody),
        (status = 409, body = ErrorBody),
    )
)]
#[post("/officer/requests/{id}/erasures/{source}/rerun")]
async fn rerun_erasure(
    services: web::Data<Services>,
    officer: OfficerAuth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (id, source) = path.into_inner();
    let id = parse_id(&id)?;
    let views = services.rerun_erasure(&officer.0, id, &source).await?;
    Ok(HttpResponse::Accepted().json(views))
}

/// Confirm, for the owner of a source that waits for them, that they erased the
/// subject's data and how: `{"outcome": "deleted" | "no_data" | "restricted" |
/// "backup_pending", "restricted_categories": [...], "note": "..."}`.
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path), ("source" = String, Path)),
    security(("officer_token" = [])),
    responses(
        (status = 200, body = Vec<ErasureView>),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such request or source", body = ErrorBody),
        (status = 409, description = "The source is not waiting for its owner", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/officer/requests/{id}/erasures/{source}/confirm")]
async fn confirm_erasure(
    services: web::Data<Services>,
    officer: OfficerAuth,
    path: web::Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let (id, source) = path.into_inner();
    let id = parse_id(&id)?;
    let views = services
        .confirm_erasure(&officer.0, id, &source, &body.value)
        .await?;
    Ok(HttpResponse::Ok().json(views))
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

/// The largest owner's answer accepted, in bytes.
const ANSWER_MAX_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
struct AnswerQuery {
    /// With a `text/csv` body: the category its rows belong to.
    category: Option<String>,
}

/// Answer a `manual` source for its owner (who searched the system by hand): either
/// `{"no_data": true}`, or `{"records": {"<category>": [{…}, …]}}` as `application/json`,
/// or one category's rows as `text/csv` (UTF-8, a header row) with `?category=`, or a
/// `multipart/form-data` form with an optional `answer` part (that JSON) and up to 20
/// `file` parts (recordings, scans: they go into the bundle under `files/<source>/`). At
/// most 32 MiB in all. The records are stored encrypted until the bundle is written; once every source
/// has answered, the bundle is written on the worker.
#[utoipa::path(
    tag = "officer",
    params(("id" = String, Path), ("source" = String, Path), AnswerQuery),
    security(("officer_token" = [])),
    request_body(content = Object, description = "`{no_data: true}` or `{records: {category: [object]}}`; or CSV; or a form with `answer` and `file` parts", content_type = "application/json"),
    responses(
        (status = 200, body = Vec<CollectionView>),
        (status = 400, description = "Not a readable answer (`invalid_answer`)", body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such request or source", body = ErrorBody),
        (status = 409, description = "Not a manual source, or not waiting for its owner", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
    )
)]
#[post("/officer/requests/{id}/sources/{source}/answer")]
async fn answer(
    services: web::Data<Services>,
    officer: OfficerAuth,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<AnswerQuery>,
    mut payload: web::Payload,
) -> ApiResult<web::Json<Vec<CollectionView>>> {
    let (id, source) = path.into_inner();
    let id = parse_id(&id)?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if content_type == "multipart/form-data" {
        let form = read_form(&req, payload).await?;
        let answer = form.answer.as_deref().map(OwnerAnswer::Json);
        return Ok(web::Json(
            services
                .answer_source(&officer.0, id, &source, answer, form.files)
                .await?,
        ));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut payload).await {
        let chunk = chunk.map_err(|_| too_large())?;
        if body.len() + chunk.len() > ANSWER_MAX_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let answer = match (content_type.as_str(), query.category.as_deref()) {
        ("application/json", _) => OwnerAnswer::Json(&body),
        ("text/csv", Some(category)) => OwnerAnswer::Csv {
            category,
            body: &body,
        },
        ("text/csv", None) => {
            return Err(ApiError::new(
                ErrorCode::InvalidAnswer,
                "a CSV answer names its category: ?category=",
            ));
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the answer as application/json, text/csv or multipart/form-data",
            ));
        }
    };
    Ok(web::Json(
        services
            .answer_source(&officer.0, id, &source, Some(answer), Vec::new())
            .await?,
    ))
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the answer must be at most {ANSWER_MAX_BYTES} bytes"),
    )
}

fn invalid_form(problem: &str) -> ApiError {
    ApiError(
        rightsdesk_core::Error::new(ErrorCode::InvalidAnswer, "the answer cannot be read")
            .with_details(serde_json::json!({ "problem": problem })),
    )
}

/// A multipart answer: an optional `answer` part (the JSON of an `application/json`
/// answer) and `file` parts.
struct Form {
    answer: Option<Vec<u8>>,
    files: Vec<OwnerFile>,
}

/// Reads a multipart answer, at most [`ANSWER_MAX_BYTES`] in all.
async fn read_form(req: &HttpRequest, payload: web::Payload) -> Result<Form, ApiError> {
    let mut multipart = actix_multipart::Multipart::new(req.headers(), payload);
    let mut form = Form {
        answer: None,
        files: Vec::new(),
    };
    let mut total = 0usize;
    while let Some(field) = futures_util::StreamExt::next(&mut multipart).await {
        let mut field = field.map_err(|e| invalid_form(&e.to_string()))?;
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = futures_util::StreamExt::next(&mut field).await {
            let chunk = chunk.map_err(|e| invalid_form(&e.to_string()))?;
            total += chunk.len();
            if total > ANSWER_MAX_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "answer" if form.answer.is_some() => {
                return Err(invalid_form("more than one `answer` part"));
            }
            "answer" => form.answer = Some(bytes),
            "file" => form.files.push(OwnerFile {
                name: file_name
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| format!("file-{}", form.files.len() + 1)),
                bytes,
            }),
            other => {
                return Err(invalid_form(&format!(
                    "unknown part {other:?}: expected `answer` and `file`"
                )));
            }
        }
    }
    Ok(form)
}
