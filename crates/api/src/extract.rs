//! Extractors that turn HTTP into the inputs of use-cases, with every failure mapped to
//! a code of the error table.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{FromRequest, HttpRequest};
use rightsdesk_core::auth::Officer;
use rightsdesk_core::requests::Idempotency;
use rightsdesk_core::{ErrorCode, Services};
use serde_json::Value;

use crate::ApiConfig;
use crate::error::ApiError;

/// A JSON body, size-limited, parsed into a `Value` for the use-case to validate (so
/// that every field problem is reported at once). Keeps the raw bytes for idempotency
/// fingerprints. An empty body reads as `null`.
pub struct JsonBody {
    pub value: Value,
    pub raw: Bytes,
}

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<ApiConfig>>()
            .map(|c| c.max_body_bytes)
            .unwrap_or(64 * 1024);
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            let too_large = || {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the body must be at most {limit} bytes"),
                )
            };
            if declared.is_some_and(|n| n > limit) {
                return Err(too_large());
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = futures_util::StreamExt::next(&mut payload).await {
                let chunk = chunk.map_err(|e| match e {
                    PayloadError::Overflow => too_large(),
                    _ => ApiError::new(ErrorCode::MalformedJson, "the body could not be read"),
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            let raw = body.freeze();
            if raw.iter().all(u8::is_ascii_whitespace) {
                return Ok(Self {
                    value: Value::Null,
                    raw,
                });
            }
            match content_type.as_deref() {
                Some("application/json") | Some("application/problem+json") => {}
                Some(t) if t.ends_with("+json") => {}
                _ => {
                    return Err(ApiError::new(
                        ErrorCode::UnsupportedMediaType,
                        "send the body as Content-Type: application/json",
                    ));
                }
            }
            match serde_json::from_slice::<Value>(&raw) {
                Ok(value) => Ok(Self { value, raw }),
                Err(e) => Err(ApiError(
                    rightsdesk_core::Error::new(
                        ErrorCode::MalformedJson,
                        "the body is not valid JSON",
                    )
                    .with_details(serde_json::json!({"line": e.line(), "column": e.column()})),
                )),
            }
        })
    }
}

/// The token of an `Authorization: Bearer …` header, if any.
pub fn bearer(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidToken,
            "Authorization must be `Bearer <token>`",
        )
    };
    let value = value.to_str().map_err(|_| invalid())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(invalid());
    }
    Ok(Some(token.trim().to_owned()))
}

/// The requester's token for their own request (may be absent: the use-case decides).
pub struct RequesterToken(pub Option<String>);

impl FromRequest for RequesterToken {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(bearer(req).map(RequesterToken))
    }
}

/// An authenticated officer.
pub struct OfficerAuth(pub Officer);

impl FromRequest for OfficerAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req);
        let services = req.app_data::<web::Data<Services>>().cloned();
        Box::pin(async move {
            let services = services.ok_or_else(|| ApiError(rightsdesk_core::Error::internal()))?;
            let officer = services.authenticate_officer(token?.as_deref()).await?;
            Ok(OfficerAuth(officer))
        })
    }
}

/// The `Idempotency-Key` header, if any, with the body it must match.
pub fn idempotency(req: &HttpRequest, body: &JsonBody) -> Result<Option<Idempotency>, ApiError> {
    match req.headers().get("Idempotency-Key") {
        None => Ok(None),
        Some(v) => {
            let key = v.to_str().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidIdempotencyKey,
                    "Idempotency-Key must be visible ASCII",
                )
            })?;
            Ok(Some(Idempotency::new(key, &body.raw)?))
        }
    }
}

/// A path parameter that must be a UUID: anything else cannot exist.
pub fn parse_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new(ErrorCode::NotFound, "no such request"))
}
