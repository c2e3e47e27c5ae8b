//! Logging in and out: the login form (a double-submitted CSRF token), the session
//! cookie, and the lockout of the API's login.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use askama_web::WebTemplate;
use rightsdesk_core::auth::random_token;
use rightsdesk_core::{ErrorCode, Services};
use serde::Deserialize;

use super::{LOGIN_CSRF, Labels, Page, SESSION, cookie, labels, page, posted, redirect};

pub(super) fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(login_page).service(login).service(logout);
}

#[derive(Template, WebTemplate)]
#[template(path = "console/login.html")]
struct LoginPage {
    t: &'static Labels,
    csrf: String,
    username: String,
    error: Option<&'static str>,
}

fn login_form(
    req: &HttpRequest,
    t: &'static Labels,
    username: String,
    error: Option<&'static str>,
    status: StatusCode,
) -> HttpResponse {
    let csrf = random_token();
    let body = LoginPage {
        t,
        csrf: csrf.clone(),
        username,
        error,
    }
    .render()
    .unwrap_or_default();
    let mut res = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body);
    let _ = res.add_cookie(&cookie(req, LOGIN_CSRF, csrf));
    page(res, req, t)
}

#[get("/login")]
async fn login_page(req: HttpRequest) -> HttpResponse {
    login_form(&req, labels(&req), String::new(), None, StatusCode::OK)
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    username: String,
    password: String,
}

#[post("/login")]
async fn login(
    req: HttpRequest,
    services: web::Data<Services>,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let t = labels(&req);
    let form = form.into_inner();
    let expected = req.cookie(LOGIN_CSRF).map(|c| c.value().to_owned());
    if expected.as_deref() != Some(form.csrf.as_str()) || form.csrf.is_empty() {
        return login_form(
            &req,
            t,
            form.username,
            Some(t.expired_form),
            StatusCode::FORBIDDEN,
        );
    }
    match services.login(&form.username, &form.password).await {
        Ok(issued) => {
            let mut res = redirect("/console");
            let _ = res.add_cookie(&cookie(&req, SESSION, issued.access_token));
            let mut gone = cookie(&req, LOGIN_CSRF, String::new());
            gone.make_removal();
            let _ = res.add_cookie(&gone);
            page(res, &req, t)
        }
        Err(e) => {
            let (message, status) = if e.code == ErrorCode::AccountLocked {
                (t.locked, StatusCode::TOO_MANY_REQUESTS)
            } else {
                (t.bad_login, StatusCode::UNAUTHORIZED)
            };
            login_form(&req, t, form.username, Some(message), status)
        }
    }
}

#[post("/logout")]
async fn logout(req: HttpRequest, services: web::Data<Services>, body: web::Bytes) -> Page {
    let (officer, _, _) = posted(&req, &services, &body).await?;
    tracing::info!(officer_id = %officer.id, "console logout");
    let mut res = redirect("/console/login");
    let mut gone = cookie(&req, SESSION, String::new());
    gone.make_removal();
    let _ = res.add_cookie(&gone);
    Ok(res)
}
