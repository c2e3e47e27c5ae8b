//! The queue (`/console`): requests by due date with filters, search and keyset paging,
//! and the bulk actions on the rows selected (`POST /console/bulk`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use askama_web::WebTemplate;
use rightsdesk_core::Services;
use rightsdesk_core::auth::Officer;
use rightsdesk_core::requests::{QueueItem, QueueQuery};
use rightsdesk_domain::{Channel, RequestKind};
use serde::Deserialize;

use super::{Chrome, Page, field, html, nonempty, posted, redirect, signed_in, urgency};

pub(super) fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(queue).service(bulk);
}

/// One row of the queue as the page shows it.
struct Row {
    id: String,
    reference: String,
    kind: String,
    state: String,
    channel: String,
    requester: String,
    due_date: String,
    days_left: String,
    /// `late`, `soon` (3 days or fewer), `ontime`, or `paused`.
    urgency: &'static str,
}

impl From<QueueItem> for Row {
    fn from(q: QueueItem) -> Self {
        let d = &q.deadline;
        let urgency = urgency(d);
        Self {
            id: q.id.to_string(),
            reference: q.reference,
            kind: q.kind.to_string(),
            state: q.state.to_string(),
            channel: q.channel.to_string(),
            requester: q.requester_name,
            due_date: d.due_date.to_string(),
            days_left: d.days_left.map_or_else(String::new, |n| n.to_string()),
            urgency,
        }
    }
}

/// The filters, as the query string carries them and the form shows them back.
#[derive(Deserialize, Default)]
struct Filters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    overdue: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    pack: String,
    #[serde(default)]
    cursor: String,
}

impl Filters {
    fn of(req: &HttpRequest) -> Self {
        web::Query::<Filters>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default()
    }

    fn query(&self) -> QueueQuery {
        let f = |s: &String| nonempty(&Some(s.clone()));
        QueueQuery {
            q: f(&self.q),
            state: f(&self.state),
            kind: f(&self.kind),
            assignee: f(&self.assignee),
            overdue: f(&self.overdue),
            channel: f(&self.channel),
            pack: f(&self.pack),
            cursor: f(&self.cursor),
            limit: None,
        }
    }

    /// The address of the page after this one, the same filters kept.
    fn next(&self, cursor: &str) -> String {
        let pairs = [
            ("q", self.q.as_str()),
            ("state", self.state.as_str()),
            ("kind", self.kind.as_str()),
            ("assignee", self.assignee.as_str()),
            ("overdue", self.overdue.as_str()),
            ("channel", self.channel.as_str()),
            ("pack", self.pack.as_str()),
            ("cursor", cursor),
        ];
        let kept: Vec<(&str, &str)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        format!(
            "/console?{}",
            serde_urlencoded::to_string(kept).unwrap_or_default()
        )
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/queue.html")]
struct QueuePage {
    chrome: Chrome,
    filters: Filters,
    kinds: Vec<&'static str>,
    channels: Vec<&'static str>,
    packs: Vec<String>,
    rows: Vec<Row>,
    next_page: Option<String>,
    error: Option<String>,
}

/// `/console`: the queue, ordered by due date, with filters, search and paging.
#[get("")]
async fn queue(req: HttpRequest, services: web::Data<Services>) -> Page {
    let (officer, csrf) = signed_in(&req, &services).await?;
    Ok(render_queue(&req, &services, &officer, csrf, None, StatusCode::OK).await)
}

async fn render_queue(
    req: &HttpRequest,
    services: &Services,
    officer: &Officer,
    csrf: String,
    notice: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let chrome = Chrome::new(req, officer, csrf, "queue");
    let filters = Filters::of(req);
    let (rows, next_cursor, error) = match services.queue(officer, &filters.query()).await {
        Ok(page) => (
            page.items.into_iter().map(Row::from).collect(),
            page.next_cursor,
            None,
        ),
        Err(e) => (Vec::new(), None, Some(e.message)),
    };
    let t = chrome.t;
    let body = QueuePage {
        next_page: next_cursor.map(|c| filters.next(&c)),
        chrome,
        filters,
        kinds: RequestKind::ALL.iter().map(|k| k.as_str()).collect(),
        channels: Channel::ALL.iter().map(|c| c.as_str()).collect(),
        packs: services.pack_names(),
        rows,
        error: notice.or(error),
    }
    .render()
    .unwrap_or_default();
    html(req, t, status, body)
}

/// `POST /console/bulk`: `assign` (to oneself) or `start` every selected request
/// (`ids`, repeated), each as the API's action; those refused are listed with why.
#[post("/bulk")]
async fn bulk(req: HttpRequest, services: web::Data<Services>, body: web::Bytes) -> Page {
    let (officer, csrf, pairs) = posted(&req, &services, &body).await?;
    let (action, input) = match field(&pairs, "action") {
        Some("assign") => ("assign", serde_json::json!({"assignee_id": officer.id})),
        Some("start") => ("start", serde_json::json!({})),
        _ => {
            return Ok(HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .body("action must be assign or start"));
        }
    };
    let mut refused = Vec::new();
    for (_, id) in pairs.iter().filter(|(k, _)| k == "ids").take(200) {
        let Ok(id) = id.parse::<uuid::Uuid>() else {
            refused.push(format!("{id}: not a request id"));
            continue;
        };
        if let Err(e) = services.act(&officer, id, action, &input).await {
            refused.push(format!("{id}: {}", e.message));
        }
    }
    if refused.is_empty() {
        return Ok(redirect("/console"));
    }
    Ok(render_queue(
        &req,
        &services,
        &officer,
        csrf,
        Some(refused.join("; ")),
        StatusCode::CONFLICT,
    )
    .await)
}
