//! Rendering errors as `{code, message, request_id, details}` with the status of the
//! error-code table. 5xx bodies say nothing internal.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use rightsdesk_core::{Error, ErrorCode};
use serde::Serialize;
use serde_json::Value;

tokio::task_local! {
    /// The id of the HTTP request being handled, set by the `observe` middleware.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code from the table in docs/errors.md.
    pub code: &'static str,
    pub message: String,
    /// Quote it when reporting a problem: it finds the request in the logs.
    pub request_id: Option<String>,
    /// Per-field problems (`fields`) and other specifics.
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// A core error on its way to the client.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub Error);

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(Error::new(code, message))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let e = &self.0;
        let body = ErrorBody {
            code: e.code.as_str(),
            message: e.message.clone(),
            request_id: current_request_id(),
            details: e.details.clone(),
        };
        let mut res = HttpResponse::build(self.status_code());
        res.content_type("application/problem+json");
        // Any error that says how long to wait says it in `Retry-After` too.
        if let Some(secs) = e
            .details
            .as_ref()
            .and_then(|d| d.get("retry_after"))
            .and_then(Value::as_i64)
        {
            res.insert_header(("Retry-After", secs.to_string()));
        }
        if e.code == ErrorCode::Unauthenticated || e.code == ErrorCode::InvalidToken {
            res.insert_header(("WWW-Authenticate", "Bearer"));
        }
        res.json(body)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
