//! Operations: liveness, readiness, metrics.

use actix_web::{HttpResponse, get, web};
use metrics_exporter_prometheus::PrometheusHandle;
use rightsdesk_core::Services;

/// Liveness: the process answers.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the database answers.
#[get("/readyz")]
pub async fn readyz(services: web::Data<Services>) -> HttpResponse {
    if services.ready().await {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "database unavailable"}))
    }
}

/// Prometheus metrics: this process's counters, and the installation's gauges read
/// from the database (see `rightsdesk_core::monitoring`).
#[get("/metrics")]
pub async fn metrics(
    handle: web::Data<PrometheusHandle>,
    services: web::Data<Services>,
) -> HttpResponse {
    services.publish_gauges().await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}
