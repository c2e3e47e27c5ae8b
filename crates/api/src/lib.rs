//! rightsdesk's HTTP interface on actix-web: the requester API, the officer API,
//! operations endpoints and the OpenAPI document. Handlers translate HTTP to use-cases
//! in `rightsdesk-core` and back; they never touch the database.

// Like `rightsdesk-core`: the release build's layout of the handlers' futures nests
// deeper than the default query depth of 128.
#![recursion_limit = "256"]

pub mod console;
pub mod error;
pub mod extract;
mod middleware;
pub mod routes;
mod upload;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpResponse, web};
use metrics_exporter_prometheus::PrometheusHandle;
use rightsdesk_core::{ErrorCode, Services};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa_actix_web::{AppExt, scope};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;

/// `[http]`: the listener and request limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address and port to listen on.
    pub bind: String,
    /// Largest accepted JSON body, in bytes.
    pub max_body_bytes: usize,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Seconds to finish in-flight requests on shutdown.
    pub shutdown_timeout_secs: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".to_owned(),
            max_body_bytes: 64 * 1024,
            workers: 0,
            shutdown_timeout_secs: 30,
        }
    }
}

impl ApiConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "http.bind: {:?} is not an address such as 127.0.0.1:8080",
                self.bind
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body_bytes) {
            problems.push("http.max_body_bytes: must be between 1024 and 16777216".to_owned());
        }
        if self.workers > 256 {
            problems.push("http.workers: must be at most 256".to_owned());
        }
        problems
    }
}

/// The OpenAPI 3.1 description of every route, collected from the handlers.
pub fn openapi() -> OpenApi {
    let (_, api) = App::new()
        .into_utoipa_app()
        .service(api_scope())
        .split_for_parts();
    finish_openapi(api)
}

fn api_scope() -> scope::Scope<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    scope::scope("/api/v1")
        .configure(routes::requests::router)
        .configure(routes::auth::router)
        .configure(routes::officer::router)
        .configure(routes::intake::router)
        .configure(routes::sources::router)
        .configure(routes::consents::router)
        .configure(routes::corrections::router)
        .configure(routes::arrangements::router)
        .configure(routes::downloads::router)
        .configure(routes::admin::router)
}

fn finish_openapi(mut api: OpenApi) -> OpenApi {
    api.info = InfoBuilder::new()
        .title("rightsdesk")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Privacy-rights requests under PIPL: file, verify, work and prove them. \
             Errors are `{code, message, request_id, details}`; see docs/errors.md.",
        ))
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "officer_token",
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    components.add_security_scheme(
        "requester_token",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    api
}

/// Everything the HTTP layer needs.
#[derive(Clone)]
pub struct ApiState {
    pub services: Services,
    pub config: ApiConfig,
    pub metrics: PrometheusHandle,
    pub openapi: OpenApi,
}

/// What `rightsdesk worker` serves on `worker.bind`: liveness, readiness and the
/// metrics of the work it does (jobs, deliveries, mailbox polls).
pub fn ops_app(
    services: Services,
    metrics: PrometheusHandle,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(services))
        .app_data(web::Data::new(metrics))
        .service(routes::ops::healthz)
        .service(routes::ops::readyz)
        .service(routes::ops::metrics)
}

/// The whole application, for `HttpServer::new` (one per worker thread) and tests.
pub fn app(
    state: ApiState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let openapi = state.openapi.clone();
    let (app, _) = App::new()
        .into_utoipa_app()
        .app_data(web::Data::new(state.services.clone()))
        .app_data(web::Data::new(state.config.clone()))
        .app_data(web::Data::new(state.metrics.clone()))
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            ApiError(
                rightsdesk_core::Error::new(ErrorCode::InvalidQuery, "invalid query parameters")
                    .with_details(serde_json::json!({"problem": e.to_string()})),
            )
            .into()
        }))
        .app_data(
            web::PathConfig::default()
                .error_handler(|_, _| ApiError(rightsdesk_core::Error::not_found()).into()),
        )
        // Before the /api/v1 scope, which would otherwise answer these paths with 404.
        .map(|app| {
            app.service(routes::ops::healthz)
                .service(routes::ops::readyz)
                .service(routes::ops::metrics)
                .service(routes::verification::show)
                .service(routes::verification::redeem)
                .service(SwaggerUi::new("/api/v1/docs/{_:.*}").url("/api/v1/openapi.json", openapi))
                .service(web::redirect("/api/v1/docs", "/api/v1/docs/"))
        })
        .service(api_scope())
        .split_for_parts();
    app.service(web::scope("/console").configure(console::router))
        .default_service(web::to(not_found))
        .wrap(actix_web::middleware::from_fn(middleware::observe))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::RouteNotFound, "no such endpoint"))
}
