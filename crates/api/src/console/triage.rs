//! The triage tab (`/console/triage`): inbound emails the intake could not file on its
//! own (SPEC §6) — each with its sender, subject, text, the kind guessed and why it
//! waits — and the two ways out: file it as a request of a kind (the sender becomes the
//! requester) or dismiss it with a reason. Other outcomes are a filter away.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use askama_web::WebTemplate;
use rightsdesk_core::Services;
use rightsdesk_core::auth::Officer;
use rightsdesk_core::intake::IntakeMessageView;
use rightsdesk_domain::RequestKind;
use serde::Deserialize;

use super::{
    Chrome, Page, explain, field, html, id_of, message_page, nonempty, posted, redirect, signed_in,
    status_of,
};

pub(super) fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(triage).service(convert).service(dismiss);
}

/// The outcomes a message can have, the triage lane first.
const STATUSES: [&str; 7] = [
    "triage",
    "request",
    "reply",
    "ignored",
    "failed",
    "converted",
    "dismissed",
];

struct MessageRow {
    id: String,
    received_at: String,
    from: String,
    subject: String,
    body: String,
    reason: String,
    /// The kind guessed, with its confidence.
    guess: String,
    kind: String,
    attachments: usize,
    request_id: Option<String>,
}

impl From<IntakeMessageView> for MessageRow {
    fn from(m: IntakeMessageView) -> Self {
        Self {
            id: m.id.to_string(),
            received_at: m.received_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            from: m.from_address.unwrap_or_default(),
            subject: m.subject,
            body: m.body,
            reason: m.reason.unwrap_or_default(),
            guess: match (&m.kind, m.confidence) {
                (Some(k), Some(c)) => format!("{k} ({:.0} %)", c * 100.0),
                (Some(k), None) => k.clone(),
                _ => String::new(),
            },
            kind: m.kind.unwrap_or_default(),
            attachments: m.attachments.as_array().map_or(0, Vec::len),
            request_id: m.request_id.map(|id| id.to_string()),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/triage.html")]
struct TriagePage {
    chrome: Chrome,
    status: String,
    statuses: Vec<&'static str>,
    kinds: Vec<&'static str>,
    messages: Vec<MessageRow>,
    next_page: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct TriageParams {
    status: Option<String>,
    after: Option<String>,
}

async fn render_triage(
    req: &HttpRequest,
    services: &Services,
    officer: &Officer,
    csrf: String,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let chrome = Chrome::new(req, officer, csrf, "triage");
    let t = chrome.t;
    let params = web::Query::<TriageParams>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let lane = nonempty(&params.status).unwrap_or_else(|| "triage".to_owned());
    let page = match services
        .intake_messages(
            officer,
            Some(&lane),
            nonempty(&params.after).as_deref(),
            None,
        )
        .await
    {
        Ok(page) => page,
        Err(e) => return html(req, t, status_of(&e), message_page(&chrome, &explain(&e))),
    };
    let next_page = page.next_cursor.map(|c| {
        format!(
            "/console/triage?{}",
            serde_urlencoded::to_string([("status", lane.as_str()), ("after", c.as_str())])
                .unwrap_or_default()
        )
    });
    let body = TriagePage {
        status: lane,
        statuses: STATUSES.to_vec(),
        kinds: RequestKind::ALL.iter().map(|k| k.as_str()).collect(),
        messages: page.items.into_iter().map(MessageRow::from).collect(),
        next_page,
        error,
        chrome,
    }
    .render()
    .unwrap_or_default();
    html(req, t, status, body)
}

/// `/console/triage` (`?status=` another outcome).
#[get("/triage")]
async fn triage(req: HttpRequest, services: web::Data<Services>) -> Page {
    let (officer, csrf) = signed_in(&req, &services).await?;
    Ok(render_triage(&req, &services, &officer, csrf, None, StatusCode::OK).await)
}

/// The lane again after a refused form, with the reason (nothing changed).
async fn refused(
    req: &HttpRequest,
    services: &Services,
    officer: &Officer,
    csrf: String,
    e: rightsdesk_core::Error,
) -> HttpResponse {
    render_triage(
        req,
        services,
        officer,
        csrf,
        Some(explain(&e)),
        status_of(&e),
    )
    .await
}

/// `POST /console/triage/{id}/convert`: `kind` and optionally `requester_name`, as
/// `POST /api/v1/officer/intake/{id}/convert`; on to the new request.
#[post("/triage/{id}/convert")]
async fn convert(
    req: HttpRequest,
    services: web::Data<Services>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Page {
    let (officer, csrf, pairs) = posted(&req, &services, &body).await?;
    let id = id_of(&id)?;
    let mut input = serde_json::json!({ "kind": field(&pairs, "kind").unwrap_or_default() });
    if let Some(name) = nonempty(&field(&pairs, "requester_name").map(str::to_owned)) {
        input["requester_name"] = serde_json::Value::String(name);
    }
    Ok(match services.convert_intake(&officer, id, &input).await {
        Ok(outcome) => match outcome.request_id {
            Some(request) => redirect(&format!("/console/requests/{request}")),
            None => redirect("/console/triage"),
        },
        Err(e) => refused(&req, &services, &officer, csrf, e).await,
    })
}

/// `POST /console/triage/{id}/dismiss`: `reason`, as
/// `POST /api/v1/officer/intake/{id}/dismiss` (the raw message is destroyed).
#[post("/triage/{id}/dismiss")]
async fn dismiss(
    req: HttpRequest,
    services: web::Data<Services>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Page {
    let (officer, csrf, pairs) = posted(&req, &services, &body).await?;
    let id = id_of(&id)?;
    let input = serde_json::json!({ "reason": field(&pairs, "reason").unwrap_or_default() });
    Ok(match services.dismiss_intake(&officer, id, &input).await {
        Ok(_) => redirect("/console/triage"),
        Err(e) => refused(&req, &services, &officer, csrf, e).await,
    })
}
