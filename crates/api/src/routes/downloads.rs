//! What a requester takes away: the download of their data bundle, through the signed
//! link of the completion notice (no login: the link is the credential, signed, expiring,
//! limited to `bundles.max_downloads` uses; every download is an event in the request's
//! chain), and the public key their deletion certificate verifies with.

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpRequest, HttpResponse, ResponseError, get, web};
use rightsdesk_core::Services;
use rightsdesk_core::bundles::chunks;
use rightsdesk_core::certificates::PublicKey;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiError, ErrorBody};

pub fn router(cfg: &mut ServiceConfig) {
    cfg.service(download).service(certificate_key);
}

/// The public key deletion certificates are signed with (Ed25519), for anyone to check
/// one (`rightsdesk certificate verify FILE --public-key KEY`).
#[utoipa::path(
    tag = "requester",
    responses((status = 200, body = PublicKey)),
)]
#[get("/certificates/public-key")]
async fn certificate_key(services: web::Data<Services>) -> web::Json<PublicKey> {
    web::Json(services.certificate_public_key())
}

/// Download a data bundle (`application/zip`), streamed. A browser that asks for HTML gets
/// a page that explains a refusal in Chinese and English; other clients get the usual
/// error body.
#[utoipa::path(
    tag = "requester",
    params(("token" = String, Path, description = "The token of the link in the completion notice")),
    responses(
        (status = 200, description = "The bundle", content_type = "application/zip", body = Vec<u8>),
        (status = 404, description = "Altered, cut short or unknown link (`download_link_invalid`)", body = ErrorBody),
        (status = 410, description = "Expired (`download_link_expired`), used up (`download_limit_reached`) or deleted (`bundle_purged`)", body = ErrorBody),
    )
)]
#[get("/downloads/{token}")]
async fn download(
    services: web::Data<Services>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    let found = match services.download(&token).await {
        Ok(found) => found,
        Err(e) => return refusal(&req, ApiError(e)),
    };
    let stream = futures_util::stream::unfold(chunks(found.body), |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (chunk.map(web::Bytes::from), rx))
    });
    HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(found.file_name)],
        })
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .no_chunking(found.size)
        .streaming(stream)
}

/// The refusal as a page for a browser, else as the error body.
fn refusal(req: &HttpRequest, e: ApiError) -> HttpResponse {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if !wants_html {
        return e.error_response();
    }
    let (zh, en) = match e.0.code.as_str() {
        "download_link_expired" => (
            "下载链接已过期。如仍需要您的数据，请联系我们的个人信息保护负责人，我们将重新发送。",
            "This download link has expired. If you still need your data, contact our privacy office and we will send a new one.",
        ),
        "download_limit_reached" => (
            "此下载链接的可用次数已用完。如仍需要您的数据，请联系我们的个人信息保护负责人。",
            "This download link has been used as many times as it allows. If you still need your data, contact our privacy office.",
        ),
        "bundle_purged" => (
            "该数据包已按期删除。如仍需要您的数据，请联系我们的个人信息保护负责人。",
            "This data bundle was deleted when its time was up. If you still need your data, contact our privacy office.",
        ),
        "download_link_invalid" => (
            "此下载链接无效：可能不完整或已被修改。请从邮件中完整复制链接。",
            "This download link is not valid: it may be cut short or altered. Copy the whole link from the email.",
        ),
        _ => (
            "暂时无法下载，请稍后重试。",
            "The download is not available right now; please try again later.",
        ),
    };
    let page = format!(
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>下载 / Download</title></head>\
         <body style=\"font-family: sans-serif; max-width: 40em; margin: 3em auto; padding: 0 1em;\">\
         <h1>无法下载 · Cannot download</h1><p>{zh}</p><p lang=\"en\">{en}</p>\
         <p><small>{code}</small></p></body></html>\n",
        code = e.0.code.as_str()
    );
    HttpResponse::build(e.status_code())
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(page)
}
