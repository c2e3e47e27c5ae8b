//! The link in the verification email, opened in a browser. `GET` only shows a button:
//! mail scanners that open every link must not verify anyone. `POST` (the button)
//! redeems the link once.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use rightsdesk_core::{ErrorCode, Services};

/// Escapes text for HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Frame-Options", "DENY"))
        .body(format!(
            "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title></head><body style=\"font-family: sans-serif; max-width: 36em; margin: 2em auto; line-height: 1.6;\">\
             {body}</body></html>",
            title = escape(title)
        ))
}

#[get("/verify/{token}")]
pub async fn show(token: web::Path<String>) -> HttpResponse {
    let action = format!("/verify/{}", escape(&token));
    page(
        StatusCode::OK,
        "核验身份 · Confirm your identity",
        &format!(
            "<h1>核验身份 · Confirm your identity</h1>\
             <p>点击下面的按钮，确认是您本人提交了个人信息权利请求。<br>\
             Press the button to confirm that you made this privacy request.</p>\
             <form method=\"post\" action=\"{action}\"><button type=\"submit\" \
             style=\"font-size: 1.1em; padding: 0.5em 1.2em;\">确认 · Confirm</button></form>"
        ),
    )
}

#[post("/verify/{token}")]
pub async fn redeem(services: web::Data<Services>, token: web::Path<String>) -> HttpResponse {
    match services.verify_link(&token, None).await {
        Ok(done) if done.documents_required => page(
            StatusCode::OK,
            "联系方式已确认 · Contact confirmed",
            &format!(
                "<h1>联系方式已确认 · Contact confirmed</h1>\
                 <p>谢谢。请上传证明材料（如死亡证明、亲属关系证明）；材料经审核通过后，我们将处理您的请求 <strong>{r}</strong>。<br>\
                 Thank you. Please upload your documents (such as the death certificate and proof of relationship); once they are accepted we will work on your request <strong>{r}</strong>.</p>",
                r = escape(&done.reference)
            ),
        ),
        Ok(done) => page(
            StatusCode::OK,
            "身份已核验 · Identity confirmed",
            &format!(
                "<h1>身份已核验 · Identity confirmed</h1>\
                 <p>谢谢。我们将处理您的请求 <strong>{r}</strong>，并通过邮件告知结果。<br>\
                 Thank you. We will now work on your request <strong>{r}</strong> and write to you.</p>",
                r = escape(&done.reference)
            ),
        ),
        Err(e) => {
            let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let (zh, en) = match e.code {
                ErrorCode::VerificationLinkExpired => (
                    "此链接已过期或已使用。请在请求页面申请新的验证码。",
                    "This link has expired or was already used. Ask for a new code.",
                ),
                ErrorCode::VerificationLinkInvalid => (
                    "此链接无效，可能被截断或修改。请复制完整链接，或直接输入验证码。",
                    "This link is not valid: it was cut short or altered. Copy the whole link, or type the code instead.",
                ),
                _ => (
                    "暂时无法核验，请稍后再试。",
                    "We could not confirm your identity just now. Please try again later.",
                ),
            };
            page(
                status,
                "无法核验 · Not confirmed",
                &format!("<h1>无法核验 · Not confirmed</h1><p>{zh}<br>{en}</p>"),
            )
        }
    }
}
