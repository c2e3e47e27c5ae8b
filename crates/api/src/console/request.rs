//! A request's page (`/console/requests/{id}`): its summary, timeline, notices and
//! evidence, and the forms of exactly the actions its state and the officer's roles
//! allow, each run as the API's action (`POST /console/requests/{id}/actions/{action}`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use askama_web::WebTemplate;
use rightsdesk_core::Services;
use rightsdesk_core::auth::Officer;
use rightsdesk_core::requests::RequestDetail;
use rightsdesk_domain::{Action, RequestKind, State};

use super::{
    Chrome, Page, Refusal, explain, field, html, id_of, message_page, posted, redirect, signed_in,
    status_of, urgency,
};

pub(super) fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(request_page)
        .service(act)
        .service(evidence)
        .service(source_work)
        .service(rerun)
        .service(comment)
        .service(corrections);
}

/// One field of an action's form.
struct Field {
    name: &'static str,
    label: &'static str,
    /// `input`, `textarea`, `select` or `hidden`.
    kind: &'static str,
    required: bool,
    value: String,
    options: Vec<&'static str>,
}

impl Field {
    fn text(name: &'static str, required: bool) -> Self {
        Self {
            name,
            label: name,
            kind: "textarea",
            required,
            value: String::new(),
            options: Vec::new(),
        }
    }

    fn input(name: &'static str, required: bool) -> Self {
        Self {
            kind: "input",
            ..Self::text(name, required)
        }
    }

    fn select(name: &'static str, options: Vec<&'static str>) -> Self {
        Self {
            kind: "select",
            options,
            ..Self::text(name, true)
        }
    }

    fn hidden(name: &'static str, value: String) -> Self {
        Self {
            kind: "hidden",
            value,
            ..Self::text(name, true)
        }
    }
}

/// An action's form: exactly the inputs the action takes (docs/api.md#actions).
struct ActionForm {
    name: &'static str,
    fields: Vec<Field>,
}

fn action_form(action: rightsdesk_domain::Action, officer: &Officer) -> Option<ActionForm> {
    use rightsdesk_domain::Action as A;
    let fields = match action {
        // Assigning from the page assigns to oneself.
        A::Assign => vec![Field::hidden("assignee_id", officer.id.to_string())],
        A::Verify => vec![
            Field::select(
                "method",
                vec!["call_back", "document_review", "in_person", "other"],
            ),
            Field::text("note", false),
        ],
        A::Start | A::Resume => vec![Field::text("note", false)],
        A::RequestInfo => vec![Field::text("message", true)],
        A::Complete => vec![Field::text("summary", true)],
        A::Reject => vec![
            Field::select(
                "reason_code",
                rightsdesk_domain::ReasonCode::ALL
                    .iter()
                    .map(|r| r.as_str())
                    .collect(),
            ),
            Field::text("explanation", true),
        ],
        A::Reopen => vec![Field::text("reason", true)],
        A::Extend => vec![Field::text("reason", true), Field::input("amount", false)],
        A::QuoteFee => vec![
            Field::input("amount", true),
            Field::input("currency", false),
            Field::text("explanation", true),
        ],
        A::Hold => vec![Field::text("reason", true)],
        A::Release => vec![Field::text("decision", true)],
        // Evidence is judged from its own row (later); the rest is not an officer's.
        _ => return None,
    };
    Some(ActionForm {
        name: action.as_str(),
        fields,
    })
}

/// One event of the timeline as the page shows it.
struct TimelineRow {
    seq: i64,
    at: String,
    actor: String,
    event: String,
}

/// A notice sent (or queued) about the request, with its delivery.
struct NoticeRow {
    template: String,
    channel: String,
    status: String,
    attempts: i32,
    at: String,
}

/// An evidence file, and whether this officer may open it and judge it.
struct EvidenceRow {
    id: String,
    kind: String,
    file_name: String,
    size: String,
    status: String,
    uploaded: String,
    review_note: String,
    deleted: bool,
    /// Pending, and the officer's role may accept or reject it in this state.
    reviewable: bool,
}

/// Where one data source stands for this request: a look-up, an erasure or a change.
struct SourceRow {
    /// `collection`, `erasure` or `change`.
    work: &'static str,
    source: String,
    status: String,
    /// What it found or did: records by category, an erasure's outcome.
    outcome: String,
    error: String,
    /// Failed: it may be run again.
    rerun: bool,
}

/// A bundle and its download links.
struct BundleRow {
    status: String,
    size: String,
    records: String,
    sha256: String,
    expires: String,
    /// `requester: 1/3 until 2026-12-20`.
    links: Vec<String>,
}

/// One requested change of a correction, and its decision.
struct ChangeRow {
    index: usize,
    field: String,
    new_value: String,
    reason: String,
    decision: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/request.html")]
struct RequestPage {
    chrome: Chrome,
    id: String,
    reference: String,
    kind: String,
    state: String,
    channel: String,
    due_date: String,
    days_left: String,
    urgency: &'static str,
    requester: String,
    assignee: String,
    on_hold: bool,
    actions: Vec<ActionForm>,
    timeline: Vec<TimelineRow>,
    notices: Vec<NoticeRow>,
    evidence: Vec<EvidenceRow>,
    source_work: Vec<String>,
    sources: Vec<SourceRow>,
    bundles: Vec<BundleRow>,
    messages: Vec<(String, String, String)>,
    comments: Vec<(String, String)>,
    /// A correction's changes, while some are undecided (and the officer decides).
    changes: Vec<ChangeRow>,
    decide_changes: bool,
    error: Option<String>,
}

fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn kib(bytes: i64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// A source's records by category, `contact: 2, orders: 14`.
fn records(v: &serde_json::Value) -> String {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn source_rows(d: &RequestDetail) -> Vec<SourceRow> {
    let collections = d.sources.iter().map(|c| SourceRow {
        work: "collection",
        source: c.source.clone(),
        status: c.status.clone(),
        outcome: records(&c.records),
        error: c.error.clone().unwrap_or_default(),
        rerun: c.status == "failed",
    });
    let erasures = d.erasures.iter().map(|e| SourceRow {
        work: "erasure",
        source: e.source.clone(),
        status: e.status.clone(),
        outcome: e.outcome.clone().unwrap_or_default(),
        error: e.error.clone().unwrap_or_default(),
        rerun: e.status == "failed",
    });
    let changes = d.changes.iter().map(|c| SourceRow {
        work: "change",
        source: c.source.clone(),
        status: c.status.clone(),
        outcome: c.outcome.clone().unwrap_or_default(),
        error: c.error.clone().unwrap_or_default(),
        rerun: c.status == "failed",
    });
    collections.chain(erasures).chain(changes).collect()
}

/// Renders request `id` for the session's officer, with `error` on top.
async fn render_request(
    req: &HttpRequest,
    services: &Services,
    officer: &Officer,
    csrf: String,
    id: uuid::Uuid,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let chrome = Chrome::new(req, officer, csrf, "queue");
    let t = chrome.t;
    let d = match services.request_detail(officer, id).await {
        Ok(d) => d,
        Err(e) => return html(req, t, status_of(&e), message_page(&chrome, &e.message)),
    };
    let requester = [
        Some(d.requester.name.clone()),
        d.requester.email.clone(),
        d.requester.phone.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ");
    let reviewable = d.allowed_actions.contains(&Action::AcceptEvidence);
    let (changes, decide_changes) = if d.kind == RequestKind::Correction && chrome.works {
        match services.correction_view(officer, id).await {
            Ok(v) => (
                v.changes
                    .into_iter()
                    .map(|c| ChangeRow {
                        index: c.change,
                        field: c.field,
                        new_value: c.new_value,
                        reason: c.reason.unwrap_or_default(),
                        decision: c.decision.map(|d| d.decision).unwrap_or_default(),
                    })
                    .collect(),
                !v.decided && d.state == State::InProgress,
            ),
            Err(_) => (Vec::new(), false),
        }
    } else {
        (Vec::new(), false)
    };
    let body = RequestPage {
        id: d.id.to_string(),
        reference: d.reference.clone(),
        kind: d.kind.to_string(),
        state: d.state.to_string(),
        channel: d.channel.to_string(),
        due_date: d.deadline.due_date.to_string(),
        days_left: d
            .deadline
            .days_left
            .map_or_else(String::new, |n| n.to_string()),
        urgency: urgency(&d.deadline),
        requester,
        assignee: match d.assignee_id {
            Some(a) if a == officer.id => officer.username.clone(),
            Some(a) => a.to_string(),
            None => "—".to_owned(),
        },
        on_hold: d.on_hold,
        actions: d
            .allowed_actions
            .iter()
            .filter_map(|a| action_form(*a, officer))
            .collect(),
        timeline: d
            .timeline
            .iter()
            .map(|e| TimelineRow {
                seq: e.seq,
                at: e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                actor: e.actor.clone(),
                event: e.event.clone(),
            })
            .collect(),
        notices: d
            .notifications
            .iter()
            .map(|n| NoticeRow {
                template: n.template.clone(),
                channel: n.channel.clone(),
                status: n.status.clone(),
                attempts: n.attempts,
                at: when(n.sent_at.unwrap_or(n.created_at)),
            })
            .collect(),
        evidence: d
            .evidence
            .iter()
            .map(|e| EvidenceRow {
                id: e.id.to_string(),
                kind: e.kind.clone(),
                file_name: e.file_name.clone().unwrap_or_default(),
                size: kib(e.size_bytes),
                status: e.status.clone(),
                uploaded: when(e.uploaded_at),
                review_note: e.review_note.clone().unwrap_or_default(),
                deleted: e.deleted_at.is_some(),
                reviewable: reviewable && e.status == "pending" && e.deleted_at.is_none(),
            })
            .collect(),
        source_work: d.source_work.clone(),
        sources: source_rows(&d),
        bundles: d
            .bundles
            .iter()
            .map(|b| BundleRow {
                status: b.status.clone(),
                size: b.size.map(kib).unwrap_or_default(),
                records: b.records.map(|n| n.to_string()).unwrap_or_default(),
                sha256: b.sha256.clone().unwrap_or_default(),
                expires: b.expires_at.map(when).unwrap_or_default(),
                links: b
                    .links
                    .iter()
                    .map(|l| {
                        format!(
                            "{}: {}/{} · {}",
                            l.audience,
                            l.uses,
                            l.max_uses,
                            when(l.expires_at)
                        )
                    })
                    .collect(),
            })
            .collect(),
        messages: d
            .messages
            .iter()
            .map(|m| {
                (
                    when(m.received_at),
                    m.from_address.clone().unwrap_or_default(),
                    m.subject.clone(),
                )
            })
            .collect(),
        comments: d
            .comments
            .iter()
            .map(|c| (when(c.created_at), c.body.clone()))
            .collect(),
        changes,
        decide_changes,
        error,
        chrome,
    }
    .render()
    .unwrap_or_default();
    html(req, t, status, body)
}

/// `/console/requests/{id}`: a request with its timeline, notices, evidence and the
/// actions the officer may take now.
#[get("/requests/{id}")]
async fn request_page(
    req: HttpRequest,
    services: web::Data<Services>,
    id: web::Path<String>,
) -> Page {
    let (officer, csrf) = signed_in(&req, &services).await?;
    let id = id_of(&id)?;
    Ok(render_request(&req, &services, &officer, csrf, id, None, StatusCode::OK).await)
}

/// `POST /console/requests/{id}/actions/{action}`: the action's form, as the API's
/// action (same checks, same roles); back to the request, with the error if refused.
#[post("/requests/{id}/actions/{action}")]
async fn act(
    req: HttpRequest,
    services: web::Data<Services>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Page {
    let (officer, csrf, pairs) = posted(&req, &services, &body).await?;
    let (id, action) = path.into_inner();
    let id = id_of(&id)?;
    // Form fields are text; empty ones are left out, and a number is sent as one.
    let mut input = serde_json::Map::new();
    for (k, v) in pairs.into_iter().filter(|(k, _)| k != "csrf") {
        let v = v.trim().to_owned();
        if v.is_empty() {
            continue;
        }
        let value = match (action.as_str(), k.as_str()) {
            ("extend", "amount") => v
                .parse::<u64>()
                .map_or(serde_json::Value::String(v), serde_json::Value::from),
            _ => serde_json::Value::String(v),
        };
        input.insert(k, value);
    }
    let result = services
        .act(&officer, id, &action, &serde_json::Value::Object(input))
        .await;
    after(&req, &services, &officer, csrf, id, result).await
}

/// The request's page again after a form: on to it when `result` worked, else with the
/// error on top (nothing changed).
async fn after<T>(
    req: &HttpRequest,
    services: &Services,
    officer: &Officer,
    csrf: String,
    id: uuid::Uuid,
    result: Result<T, rightsdesk_core::Error>,
) -> Page {
    Ok(match result {
        Ok(_) => redirect(&format!("/console/requests/{id}")),
        Err(e) => {
            let status = status_of(&e);
            render_request(req, services, officer, csrf, id, Some(explain(&e)), status).await
        }
    })
}

/// `GET /console/requests/{id}/evidence/{evidence_id}`: an evidence file, opened as on
/// the API (recorded in the request's chain first; officers and DPOs only), shown in
/// the browser under a sandbox (no script of the file runs).
#[get("/requests/{id}/evidence/{evidence_id}")]
async fn evidence(
    req: HttpRequest,
    services: web::Data<Services>,
    path: web::Path<(String, String)>,
) -> Page {
    let (officer, csrf) = signed_in(&req, &services).await?;
    let (id, evidence_id) = (id_of(&path.0)?, id_of(&path.1)?);
    Ok(
        match services.open_evidence(&officer, id, evidence_id).await {
            Ok(file) => HttpResponse::Ok()
                .content_type(file.content_type)
                .insert_header((
                    "Content-Disposition",
                    format!("inline; filename=\"{}\"", file.download_name),
                ))
                .insert_header(("Cache-Control", "no-store"))
                .insert_header(("X-Content-Type-Options", "nosniff"))
                .insert_header(("Content-Security-Policy", "sandbox; default-src 'none'"))
                .body(file.bytes),
            Err(e) => {
                let chrome = Chrome::new(&req, &officer, csrf, "queue");
                html(
                    &req,
                    chrome.t,
                    status_of(&e),
                    message_page(&chrome, &explain(&e)),
                )
            }
        },
    )
}

/// `POST /console/requests/{id}/sources/{work}`: `collect` (search every source for the
/// subject) or `erase` (erase them everywhere), as `POST /api/v1/officer/requests/{id}/collect`
/// and `…/erase`.
#[post("/requests/{id}/sources/{work}")]
async fn source_work(
    req: HttpRequest,
    services: web::Data<Services>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Page {
    let (officer, csrf, _) = posted(&req, &services, &body).await?;
    let id = id_of(&path.0)?;
    let result = match path.1.as_str() {
        "collect" => services.start_collection(&officer, id).await.map(drop),
        "erase" => services.start_erasure(&officer, id).await.map(drop),
        _ => return Err(Refusal::NotFound),
    };
    after(&req, &services, &officer, csrf, id, result).await
}

/// `POST /console/requests/{id}/{work}/{source}/rerun`: one failed source again
/// (`collection`, `erasure` or `change`), as the API's `…/rerun`.
#[post("/requests/{id}/{work}/{source}/rerun")]
async fn rerun(
    req: HttpRequest,
    services: web::Data<Services>,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> Page {
    let (officer, csrf, _) = posted(&req, &services, &body).await?;
    let (id, work, source) = path.into_inner();
    let id = id_of(&id)?;
    let result = match work.as_str() {
        "collection" => services
            .rerun_collection(&officer, id, &source)
            .await
            .map(drop),
        "erasure" => services
            .rerun_erasure(&officer, id, &source)
            .await
            .map(drop),
        "change" => services.rerun_change(&officer, id, &source).await.map(drop),
        _ => return Err(Refusal::NotFound),
    };
    after(&req, &services, &officer, csrf, id, result).await
}

/// `POST /console/requests/{id}/comments`: an internal note (`body`).
#[post("/requests/{id}/comments")]
async fn comment(
    req: HttpRequest,
    services: web::Data<Services>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Page {
    let (officer, csrf, pairs) = posted(&req, &services, &body).await?;
    let id = id_of(&id)?;
    let input = serde_json::json!({ "body": field(&pairs, "body").unwrap_or_default() });
    let result = services.comment(&officer, id, &input).await;
    after(&req, &services, &officer, csrf, id, result).await
}

/// `POST /console/requests/{id}/corrections`: a decision per requested change
/// (`decision_N` = `approve` or `reject`, `reason_N` for a rejection; a change left
/// blank stays undecided), as `POST /api/v1/officer/requests/{id}/corrections`.
#[post("/requests/{id}/corrections")]
async fn corrections(
    req: HttpRequest,
    services: web::Data<Services>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Page {
    let (officer, csrf, pairs) = posted(&req, &services, &body).await?;
    let id = id_of(&id)?;
    let decisions: Vec<serde_json::Value> = pairs
        .iter()
        .filter_map(|(k, v)| {
            let change: usize = k.strip_prefix("decision_")?.parse().ok()?;
            if v.is_empty() {
                return None;
            }
            let mut d = serde_json::json!({ "change": change, "decision": v });
            if let Some(reason) = field(&pairs, &format!("reason_{change}"))
                .map(str::trim)
                .filter(|r| !r.is_empty())
            {
                d["reason"] = serde_json::Value::String(reason.to_owned());
            }
            Some(d)
        })
        .collect();
    let result = services
        .decide_corrections(&officer, id, &serde_json::json!({ "decisions": decisions }))
        .await;
    after(&req, &services, &officer, csrf, id, result).await
}
