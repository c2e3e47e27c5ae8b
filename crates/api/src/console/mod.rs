//! The officer console (SPEC §10): pages rendered on the server (askama templates in
//! `templates/console/`), with htmx vendored as a static file — no build step, no CDN.
//!
//! A session is the officer's access token in a cookie (`HttpOnly`, `SameSite=Strict`,
//! `Path=/console`, `Secure` when the console is reached over HTTPS), issued by the same
//! login as the API (with its lockout). Every form that changes something carries a
//! CSRF token derived from the session (`rightsdesk_core::auth::csrf_token`), and the
//! login form a double-submitted random one. Roles apply exactly as on the API: the
//! pages call the same use-cases.
//!
//! One module per page: [`login`], [`queue`] (with bulk actions), [`request`] (a
//! request, its evidence, sources and actions), [`triage`] (the email intake's triage
//! lane), [`dashboard`] and [`admin`] (officers and sources); the words of every page
//! are in [`labels`].

mod admin;
mod dashboard;
mod labels;
mod login;
mod queue;
mod request;
mod triage;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, web};
use askama::Template;
use rightsdesk_core::Services;
use rightsdesk_core::auth::{Officer, csrf_token};
use rightsdesk_domain::Permission;
use rightsdesk_domain::roles::permits;
use serde::Deserialize;

pub use labels::Labels;
use labels::{EN, ZH};

/// The session cookie.
const SESSION: &str = "rightsdesk_session";
/// The login form's double-submitted token.
const LOGIN_CSRF: &str = "rightsdesk_login_csrf";
/// The officer's language.
const LANG: &str = "rightsdesk_lang";

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(asset);
    login::router(cfg);
    queue::router(cfg);
    request::router(cfg);
    triage::router(cfg);
    dashboard::router(cfg);
    admin::router(cfg);
}

/// The language asked in `?lang=`, else the cookie's, else Chinese.
pub(super) fn labels(req: &HttpRequest) -> &'static Labels {
    let asked = web::Query::<LangQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.lang.clone())
        .or_else(|| req.cookie(LANG).map(|c| c.value().to_owned()));
    match asked.as_deref() {
        Some("en") => &EN,
        _ => &ZH,
    }
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

/// Whether the console is reached over HTTPS (directly, or behind a proxy that says so).
fn secure(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

pub(super) fn cookie<'a>(req: &HttpRequest, name: &'a str, value: String) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(req))
        .finish()
}

/// Pages are never cached, framed or given a referrer; scripts and styles come from the
/// console itself only.
pub(super) fn page(mut res: HttpResponse, req: &HttpRequest, t: &Labels) -> HttpResponse {
    let headers = res.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    // The language chosen sticks.
    let _ = res.add_cookie(&cookie(req, LANG, t.lang.to_owned()));
    res
}

pub(super) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// `/console/static/…`: the vendored htmx and the stylesheet, built into the binary.
#[get("/static/{file}")]
async fn asset(file: web::Path<String>) -> HttpResponse {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "htmx.min.js" => (
            include_bytes!("../../static/htmx.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "console.css" => (
            include_bytes!("../../static/console.css"),
            "text/css; charset=utf-8",
        ),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

/// Why a console request is turned away before its page runs: it answers itself (see
/// [`actix_web::ResponseError`]), so a handler says `signed_in(…).await?`.
#[derive(Debug, thiserror::Error)]
pub(super) enum Refusal {
    /// No session (none, expired, deactivated): off to the login.
    #[error("no session")]
    Login,
    /// A form without the session's CSRF token, or with another.
    #[error("CSRF token missing or wrong")]
    Csrf,
    /// An id in the path that is not one.
    #[error("not found")]
    NotFound,
}

impl actix_web::ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        match self {
            Refusal::Login => StatusCode::SEE_OTHER,
            Refusal::Csrf => StatusCode::FORBIDDEN,
            Refusal::NotFound => StatusCode::NOT_FOUND,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Refusal::Login => redirect("/console/login"),
            Refusal::Csrf => csrf_refused(),
            Refusal::NotFound => HttpResponse::NotFound().finish(),
        }
    }
}

/// What a console handler answers: its page, or a [`Refusal`].
pub(super) type Page = Result<HttpResponse, Refusal>;

/// The signed-in officer and the session's CSRF token.
pub(super) async fn signed_in(
    req: &HttpRequest,
    services: &Services,
) -> Result<(Officer, String), Refusal> {
    session(req, services).await.ok_or(Refusal::Login)
}

/// A form posted by the signed-in officer: the officer, the session's CSRF token, and the
/// form's fields (names may repeat: `ids`, `roles`), its CSRF token checked.
pub(super) async fn posted(
    req: &HttpRequest,
    services: &Services,
    body: &[u8],
) -> Result<(Officer, String, Vec<(String, String)>), Refusal> {
    let (officer, csrf) = signed_in(req, services).await?;
    let pairs = checked_form(body, &csrf).ok_or(Refusal::Csrf)?;
    Ok((officer, csrf, pairs))
}

/// An id from the path.
pub(super) fn id_of(s: &str) -> Result<uuid::Uuid, Refusal> {
    s.parse().map_err(|_| Refusal::NotFound)
}

/// The officer of the session cookie, or `None` (no cookie, expired, deactivated).
async fn session(req: &HttpRequest, services: &Services) -> Option<(Officer, String)> {
    let token = req.cookie(SESSION)?.value().to_owned();
    let officer = services.authenticate_officer(Some(&token)).await.ok()?;
    Some((officer, csrf_token(&token)))
}

/// What every page of a signed-in officer shows around its content: the header with the
/// navigation the officer's roles open, who is signed in, the language switch and the
/// logout form (`templates/console/header.html`).
pub(super) struct Chrome {
    pub t: &'static Labels,
    /// The session's CSRF token, for every form of the page.
    pub csrf: String,
    pub officer_name: String,
    pub roles: String,
    /// The navigation entry of this page: `queue`, `triage`, `dashboard` or `admin`.
    pub current: &'static str,
    /// Reads requests (queue, triage, dashboard).
    pub reads: bool,
    /// Works requests (bulk actions, forms).
    pub works: bool,
    /// Administers officers and sources.
    pub admin: bool,
    /// This page's address, for the language switch.
    pub here: String,
}

impl Chrome {
    fn new(req: &HttpRequest, officer: &Officer, csrf: String, current: &'static str) -> Self {
        Self {
            t: labels(req),
            csrf,
            officer_name: officer.username.clone(),
            roles: officer
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            current,
            reads: permits(&officer.roles, Permission::ViewRequests),
            works: permits(&officer.roles, Permission::WorkRequests),
            admin: permits(&officer.roles, Permission::ManageOfficers),
            here: req.path().to_owned(),
        }
    }
}

/// An HTML page with `status`, with the console's headers.
pub(super) fn html(
    req: &HttpRequest,
    t: &Labels,
    status: StatusCode,
    body: String,
) -> HttpResponse {
    page(
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        req,
        t,
    )
}

/// A form posted without the session's CSRF token (or with another).
pub(super) fn csrf_refused() -> HttpResponse {
    HttpResponse::Forbidden()
        .content_type("text/plain; charset=utf-8")
        .body("CSRF token missing or wrong")
}

/// An error of a use-case as an HTTP status.
pub(super) fn status_of(e: &rightsdesk_core::Error) -> StatusCode {
    StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST)
}

/// A text field of a query string or form: trimmed, and `None` when empty.
pub(super) fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// How a deadline is shown: `late`, `soon` (3 days or fewer), `ontime`, or `paused`.
pub(super) fn urgency(d: &rightsdesk_core::requests::DeadlineView) -> &'static str {
    match d.days_left {
        _ if d.paused => "paused",
        Some(n) if n < 0 || d.overdue => "late",
        Some(n) if n <= 3 => "soon",
        _ => "ontime",
    }
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage<'a> {
    chrome: &'a Chrome,
    message: &'a str,
}

/// A page that only says `message` (a use-case refused, say, for the officer's roles).
pub(super) fn message_page(chrome: &Chrome, message: &str) -> String {
    MessagePage { chrome, message }.render().unwrap_or_default()
}

/// The fields of a form posted with repeated names (`ids`, `roles`), after checking its
/// CSRF token against the session's: `None` when it is missing or wrong.
fn checked_form(body: &[u8], csrf: &str) -> Option<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let sent = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    (sent == Some(csrf)).then_some(pairs)
}

/// The first value of `name` in a form.
pub(super) fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A use-case's error as the page says it: its message, and what is wrong with each
/// field of the form when that is the trouble.
pub(super) fn explain(e: &rightsdesk_core::Error) -> String {
    let fields: Vec<String> = e
        .details
        .as_ref()
        .and_then(|d| d["fields"].as_array())
        .into_iter()
        .flatten()
        .map(|f| {
            format!(
                "{}: {}",
                f["field"].as_str().unwrap_or_default(),
                f["message"].as_str().unwrap_or_default()
            )
        })
        .collect();
    if fields.is_empty() {
        e.message.clone()
    } else {
        format!("{} ({})", e.message, fields.join("; "))
    }
}
