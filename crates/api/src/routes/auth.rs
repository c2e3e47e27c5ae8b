//! Officer login.

use actix_web::{post, web};
use rightsdesk_core::auth::IssuedToken;
use rightsdesk_core::{ErrorCode, Services};
use rightsdesk_domain::ValidationErrors;
use rightsdesk_domain::validation::ObjectReader;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::JsonBody;

pub fn router(cfg: &mut ServiceConfig) {
    cfg.service(token);
}

/// Exchange `{username, password}` for a short-lived officer token.
#[utoipa::path(
    tag = "auth",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, body = IssuedToken),
        (status = 401, description = "Unknown username or wrong password", body = ErrorBody),
        (status = 429, description = "Locked after repeated failures", body = ErrorBody),
    )
)]
#[post("/auth/token")]
async fn token(services: web::Data<Services>, body: JsonBody) -> ApiResult<web::Json<IssuedToken>> {
    if !body.value.is_object() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "the body must be a JSON object",
        ));
    }
    let mut errors = ValidationErrors::default();
    let (username, password) = {
        let mut r =
            ObjectReader::new(Some(&body.value), "", false, &mut errors).ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidBody, "the body must be a JSON object")
            })?;
        let u = r.string("username", true, 64);
        // The password is compared verbatim: no trimming.
        let p = r.secret("password", "invalid_value", |p| {
            if !p.is_empty() && p.len() <= 1024 {
                Ok(())
            } else {
                Err("must be 1 to 1024 bytes".to_owned())
            }
        });
        r.deny_unknown();
        (u, p)
    };
    match (username, password) {
        (Some(u), Some(p)) if errors.is_empty() => Ok(web::Json(services.login(&u, &p).await?)),
        _ => Err(ApiError(errors.into())),
    }
}
