//! One middleware for every request: a request id (echoed in `X-Request-Id` and in
//! error bodies), a tracing span that names the route template but never the query
//! string or personal data, one log line per request, and HTTP metrics.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

use crate::error::REQUEST_ID;

fn request_id(req: &ServiceRequest) -> String {
    // A caller's id is kept when it is short and harmless; otherwise we make one.
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let id = request_id(&req);
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!("http", request_id = %id, method = %method, route = %route);
    let started = Instant::now();
    let result = REQUEST_ID
        .scope(id.clone(), next.call(req).instrument(span.clone()))
        .await;
    let elapsed = started.elapsed();
    let status = match &result {
        Ok(res) => res.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(
                status,
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                "request failed"
            );
        } else {
            tracing::info!(status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "request");
        }
    });
    let labels = [
        ("method", method),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("rightsdesk_http_requests_total", &labels).increment(1);
    metrics::histogram!("rightsdesk_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    result.map(|mut res| {
        if let Ok(v) = HeaderValue::from_str(&id) {
            res.headers_mut()
                .insert(HeaderName::from_static("x-request-id"), v);
        }
        res
    })
}
