//! Administration (`/console/admin`, role `admin`): the officer accounts with their
//! roles, a form to add one, and the data sources with their last check and a button to
//! check them now. Each runs the API's use-case, so the same rules hold.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use askama_web::WebTemplate;
use rightsdesk_core::Services;
use rightsdesk_core::auth::Officer;
use rightsdesk_core::officers::OfficerView;
use rightsdesk_core::sources::SourceView;
use rightsdesk_domain::Role;

use super::{
    Chrome, Page, explain, field, html, id_of, message_page, posted, redirect, signed_in, status_of,
};

pub(super) fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(admin)
        .service(create_officer)
        .service(update_officer)
        .service(check_sources);
}

/// The roles an admin may give (`system`: an account of one of the company's systems,
/// which reads and records consents).
const ROLES: [Role; 5] = [
    Role::Officer,
    Role::Dpo,
    Role::Auditor,
    Role::Admin,
    Role::System,
];

struct OfficerRow {
    id: String,
    username: String,
    display_name: String,
    email: String,
    roles: String,
    /// Each role an admin may give, and whether the account holds it.
    role_boxes: Vec<(&'static str, bool)>,
    active: bool,
    locked: bool,
}

struct SourceRow {
    name: String,
    title: String,
    connector: String,
    owner: String,
    categories: String,
    /// `ok`, `failed` or `never`.
    check: &'static str,
    checked_at: String,
    /// The items of the last check that failed, with what was found.
    problems: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/admin.html")]
struct AdminPage {
    chrome: Chrome,
    officers: Vec<OfficerRow>,
    sources: Vec<SourceRow>,
    roles: Vec<&'static str>,
    error: Option<String>,
    /// What the last form did, when it worked.
    done: Option<String>,
}

fn officer_row(o: OfficerView, now: chrono::DateTime<chrono::Utc>) -> OfficerRow {
    OfficerRow {
        id: o.id.to_string(),
        role_boxes: ROLES
            .iter()
            .map(|r| (r.as_str(), o.roles.contains(r)))
            .collect(),
        username: o.username,
        display_name: o.display_name,
        email: o.email.unwrap_or_default(),
        roles: o
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        active: o.active,
        locked: o.locked_until.is_some_and(|u| u > now),
    }
}

fn source_row(s: SourceView, zh: bool) -> SourceRow {
    let (check, checked_at, problems) = match &s.last_check {
        None => ("never", String::new(), Vec::new()),
        Some(c) => (
            if c.ok { "ok" } else { "failed" },
            c.checked_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            c.items
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["ok"] == false)
                .map(|i| {
                    format!(
                        "{}: {}",
                        i["name"].as_str().unwrap_or_default(),
                        i["detail"].as_str().unwrap_or_default()
                    )
                })
                .collect(),
        ),
    };
    SourceRow {
        title: if zh { s.title_zh } else { s.title_en },
        name: s.name,
        connector: s.connector,
        owner: s.owner,
        categories: s.categories.join(", "),
        check,
        checked_at,
        problems,
    }
}

async fn render_admin(
    req: &HttpRequest,
    services: &Services,
    officer: &Officer,
    csrf: String,
    error: Option<String>,
    done: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let chrome = Chrome::new(req, officer, csrf, "admin");
    let t = chrome.t;
    let now = services.now();
    let officers = match services.list_officers(officer).await {
        Ok(list) => list,
        Err(e) => return html(req, t, status_of(&e), message_page(&chrome, &e.message)),
    };
    let sources = match services.list_sources(officer).await {
        Ok(list) => list,
        Err(e) => return html(req, t, status_of(&e), message_page(&chrome, &e.message)),
    };
    let zh = t.lang != "en";
    let body = AdminPage {
        officers: officers.into_iter().map(|o| officer_row(o, now)).collect(),
        sources: sources.into_iter().map(|s| source_row(s, zh)).collect(),
        roles: ROLES.iter().map(|r| r.as_str()).collect(),
        error,
        done,
        chrome,
    }
    .render()
    .unwrap_or_default();
    html(req, t, status, body)
}

/// `/console/admin`.
#[get("/admin")]
async fn admin(req: HttpRequest, services: web::Data<Services>) -> Page {
    let (officer, csrf) = signed_in(&req, &services).await?;
    Ok(render_admin(&req, &services, &officer, csrf, None, None, StatusCode::OK).await)
}

/// The page after a form: what it did, or why it was refused (nothing changed).
async fn after(
    req: &HttpRequest,
    services: &Services,
    officer: &Officer,
    csrf: String,
    outcome: Result<String, rightsdesk_core::Error>,
) -> HttpResponse {
    match outcome {
        Ok(done) => {
            render_admin(
                req,
                services,
                officer,
                csrf,
                None,
                Some(done),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            let status = status_of(&e);
            render_admin(
                req,
                services,
                officer,
                csrf,
                Some(explain(&e)),
                None,
                status,
            )
            .await
        }
    }
}

/// `POST /console/admin/officers`: `username`, `display_name`, `email`, `password` and
/// `roles` (repeated), as `POST /api/v1/admin/officers`.
#[post("/admin/officers")]
async fn create_officer(req: HttpRequest, services: web::Data<Services>, body: web::Bytes) -> Page {
    let (officer, csrf, pairs) = posted(&req, &services, &body).await?;
    let text = |name: &str| field(&pairs, name).unwrap_or_default().trim().to_owned();
    let mut input = serde_json::json!({
        "username": text("username"),
        "display_name": text("display_name"),
        "password": field(&pairs, "password").unwrap_or_default(),
        "roles": pairs.iter().filter(|(k, _)| k == "roles").map(|(_, v)| v.as_str()).collect::<Vec<_>>(),
    });
    if !text("email").is_empty() {
        input["email"] = serde_json::Value::String(text("email"));
    }
    let t = super::labels(&req);
    let outcome = services
        .create_officer(&officer, &input)
        .await
        .map(|o| format!("{} {}", t.officer_created, o.username));
    Ok(after(&req, &services, &officer, csrf, outcome).await)
}

/// `POST /console/admin/officers/{id}`: the account's `display_name`, `email` (blank
/// removes it), `roles` (repeated), `active` (`true`/`false`) and, when given, a new
/// `password`, as `PATCH /api/v1/admin/officers/{id}`.
#[post("/admin/officers/{id}")]
async fn update_officer(
    req: HttpRequest,
    services: web::Data<Services>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Page {
    let (officer, csrf, pairs) = posted(&req, &services, &body).await?;
    let id = id_of(&id)?;
    let text = |name: &str| field(&pairs, name).unwrap_or_default().trim().to_owned();
    let mut input = serde_json::json!({
        "display_name": text("display_name"),
        "roles": pairs.iter().filter(|(k, _)| k == "roles").map(|(_, v)| v.as_str()).collect::<Vec<_>>(),
        "active": text("active") == "true",
        "email": serde_json::Value::Null,
    });
    if !text("email").is_empty() {
        input["email"] = serde_json::Value::String(text("email"));
    }
    if let Some(password) = field(&pairs, "password").filter(|p| !p.is_empty()) {
        input["password"] = serde_json::Value::String(password.to_owned());
    }
    let t = super::labels(&req);
    let outcome = services
        .update_officer(&officer, id, &input)
        .await
        .map(|o| format!("{} {}", t.officer_changed, o.username));
    Ok(after(&req, &services, &officer, csrf, outcome).await)
}

/// `POST /console/admin/sources/check`: checks every source now and records it.
#[post("/admin/sources/check")]
async fn check_sources(req: HttpRequest, services: web::Data<Services>, body: web::Bytes) -> Page {
    let (officer, csrf, _) = posted(&req, &services, &body).await?;
    Ok(match services.check_sources(&officer).await {
        Ok(_) => redirect("/console/admin#sources"),
        Err(e) => after(&req, &services, &officer, csrf, Err(e)).await,
    })
}
