//! The officer console (SPEC §10): pages rendered on the server (askama templates in
//! `templates/console/`), with htmx vendored as a static file — no build step, no CDN.
//!
//! A session is the officer's access token in a cookie (`HttpOnly`, `SameSite=Strict`,
//! `Path=/console`, `Secure` when the console is reached over HTTPS), issued by the same
//! login as the API (with its lockout). Every form that changes something carries a
//! CSRF token derived from the session (`rightsdesk_core::auth::csrf_token`), and the
//! login form a double-submitted random one. Roles apply exactly as on the API: the
//! pages call the same use-cases.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use askama_web::WebTemplate;
use rightsdesk_core::auth::{Officer, csrf_token, random_token};
use rightsdesk_core::requests::{QueueItem, QueueQuery};
use rightsdesk_core::{ErrorCode, Services};
use rightsdesk_domain::RequestKind;
use serde::Deserialize;

/// The session cookie.
const SESSION: &str = "rightsdesk_session";
/// The login form's double-submitted token.
const LOGIN_CSRF: &str = "rightsdesk_login_csrf";
/// The officer's language.
const LANG: &str = "rightsdesk_lang";

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(asset)
        .service(login_page)
        .service(login)
        .service(logout)
        .service(queue)
        .service(request_page)
        .service(act)
        .service(bulk);
}

/// The console's words, in the officer's language.
pub struct Labels {
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub other_lang_name: &'static str,
    pub login_title: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub log_in: &'static str,
    pub log_out: &'static str,
    pub queue: &'static str,
    pub search: &'static str,
    pub state: &'static str,
    pub kind: &'static str,
    pub assignee: &'static str,
    pub overdue: &'static str,
    pub any: &'static str,
    pub me: &'static str,
    pub nobody: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub apply: &'static str,
    pub reference: &'static str,
    pub requester: &'static str,
    pub due: &'static str,
    pub days_left: &'static str,
    pub shown: &'static str,
    pub next_page: &'static str,
    pub bad_login: &'static str,
    pub locked: &'static str,
    pub expired_form: &'static str,
    pub actions: &'static str,
    pub no_actions: &'static str,
    pub timeline: &'static str,
    pub when: &'static str,
    pub who: &'static str,
    pub event: &'static str,
    pub notices: &'static str,
    pub evidence: &'static str,
    pub selected: &'static str,
    pub assign_to_me: &'static str,
    pub start: &'static str,
    pub states: &'static [(&'static str, &'static str)],
}

const ZH: Labels = Labels {
    lang: "zh-CN",
    other_lang: "en",
    other_lang_name: "English",
    login_title: "个人信息权利请求 · 登录",
    username: "用户名",
    password: "密码",
    log_in: "登录",
    log_out: "退出",
    queue: "请求队列",
    search: "搜索（编号、邮箱或手机号）",
    state: "状态",
    kind: "类型",
    assignee: "负责人",
    overdue: "已逾期",
    any: "全部",
    me: "我",
    nobody: "未分配",
    yes: "是",
    no: "否",
    apply: "筛选",
    reference: "编号",
    requester: "请求人",
    due: "答复期限",
    days_left: "剩余天数",
    shown: "条",
    next_page: "下一页",
    bad_login: "用户名或密码错误。",
    locked: "登录失败次数过多，账号已暂时锁定，请稍后再试。",
    expired_form: "表单已过期，请重试。",
    actions: "可执行的操作",
    no_actions: "您的角色在当前状态下没有可执行的操作。",
    timeline: "时间线",
    when: "时间",
    who: "操作者",
    event: "事件",
    notices: "通知",
    evidence: "证明材料",
    selected: "选中的请求",
    assign_to_me: "分配给我",
    start: "开始办理",
    states: &[("open", "办理中"), ("closed", "已结束"), ("all", "全部")],
};

const EN: Labels = Labels {
    lang: "en",
    other_lang: "zh-CN",
    other_lang_name: "中文",
    login_title: "Privacy requests · Log in",
    username: "Username",
    password: "Password",
    log_in: "Log in",
    log_out: "Log out",
    queue: "Queue",
    search: "Search (reference, email or phone)",
    state: "State",
    kind: "Kind",
    assignee: "Assignee",
    overdue: "Overdue",
    any: "Any",
    me: "Me",
    nobody: "Nobody",
    yes: "Yes",
    no: "No",
    apply: "Filter",
    reference: "Reference",
    requester: "Requester",
    due: "Due",
    days_left: "Days left",
    shown: "shown",
    next_page: "Next page",
    bad_login: "Unknown username or wrong password.",
    locked: "Too many failed logins: the account is locked for a while.",
    expired_form: "The form expired; please try again.",
    actions: "Actions",
    no_actions: "Your roles allow no action in this state.",
    timeline: "Timeline",
    when: "When",
    who: "Who",
    event: "Event",
    notices: "Notices",
    evidence: "Evidence",
    selected: "Selected requests",
    assign_to_me: "Assign to me",
    start: "Start",
    states: &[("open", "Open"), ("closed", "Closed"), ("all", "All")],
};

/// The language asked in `?lang=`, else the cookie's, else Chinese.
fn labels(req: &HttpRequest) -> &'static Labels {
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

fn cookie<'a>(req: &HttpRequest, name: &'a str, value: String) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(req))
        .finish()
}

/// Pages are never cached, framed or given a referrer; scripts and styles come from the
/// console itself only.
fn page(mut res: HttpResponse, req: &HttpRequest, t: &Labels) -> HttpResponse {
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

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// `/console/static/…`: the vendored htmx and the stylesheet, built into the binary.
#[get("/static/{file}")]
async fn asset(file: web::Path<String>) -> HttpResponse {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "htmx.min.js" => (
            include_bytes!("../static/htmx.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "console.css" => (
            include_bytes!("../static/console.css"),
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
    status: actix_web::http::StatusCode,
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
    login_form(
        &req,
        labels(&req),
        String::new(),
        None,
        actix_web::http::StatusCode::OK,
    )
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
            actix_web::http::StatusCode::FORBIDDEN,
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
                (t.locked, actix_web::http::StatusCode::TOO_MANY_REQUESTS)
            } else {
                (t.bad_login, actix_web::http::StatusCode::UNAUTHORIZED)
            };
            login_form(&req, t, form.username, Some(message), status)
        }
    }
}

/// The officer of the session cookie, or `None` (no cookie, expired, deactivated).
async fn session(req: &HttpRequest, services: &Services) -> Option<(Officer, String)> {
    let token = req.cookie(SESSION)?.value().to_owned();
    let officer = services.authenticate_officer(Some(&token)).await.ok()?;
    Some((officer, csrf_token(&token)))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

#[post("/logout")]
async fn logout(
    req: HttpRequest,
    services: web::Data<Services>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let Some((officer, csrf)) = session(&req, &services).await else {
        return redirect("/console/login");
    };
    if form.csrf != csrf {
        return HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body("CSRF token missing or wrong");
    }
    tracing::info!(officer_id = %officer.id, "console logout");
    let mut res = redirect("/console/login");
    let mut gone = cookie(&req, SESSION, String::new());
    gone.make_removal();
    let _ = res.add_cookie(&gone);
    res
}

/// One row of the queue as the page shows it.
struct Row {
    id: String,
    reference: String,
    kind: String,
    state: String,
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
            requester: q.requester_name,
            due_date: d.due_date.to_string(),
            days_left: d.days_left.map_or_else(String::new, |n| n.to_string()),
            urgency,
        }
    }
}

/// The filters as the form shows them back.
#[derive(Default)]
struct Filters {
    q: String,
    state: String,
    kind: String,
    assignee: String,
    overdue: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/queue.html")]
struct QueuePage {
    t: &'static Labels,
    csrf: String,
    officer_name: String,
    roles: String,
    filters: Filters,
    kinds: Vec<&'static str>,
    rows: Vec<Row>,
    next_page: Option<String>,
    error: Option<String>,
    /// Whether the officer works requests (and so may select rows for bulk actions).
    can_work: bool,
}

#[derive(Deserialize, Default)]
struct QueueParams {
    q: Option<String>,
    state: Option<String>,
    kind: Option<String>,
    assignee: Option<String>,
    overdue: Option<String>,
    cursor: Option<String>,
    #[allow(dead_code)]
    lang: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `/console`: the queue, ordered by due date, with filters, search and paging.
#[get("")]
async fn queue(req: HttpRequest, services: web::Data<Services>) -> HttpResponse {
    let Some((officer, csrf)) = session(&req, &services).await else {
        return redirect("/console/login");
    };
    render_queue(
        &req,
        &services,
        &officer,
        csrf,
        None,
        actix_web::http::StatusCode::OK,
    )
    .await
}

async fn render_queue(
    req: &HttpRequest,
    services: &Services,
    officer: &Officer,
    csrf: String,
    notice: Option<String>,
    status: actix_web::http::StatusCode,
) -> HttpResponse {
    let t = labels(req);
    let params = web::Query::<QueueParams>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let query = QueueQuery {
        q: nonempty(&params.q),
        state: nonempty(&params.state),
        kind: nonempty(&params.kind),
        assignee: nonempty(&params.assignee),
        overdue: nonempty(&params.overdue),
        cursor: nonempty(&params.cursor),
        ..QueueQuery::default()
    };
    let (rows, next_cursor, error) = match services.queue(officer, &query).await {
        Ok(page) => (
            page.items.into_iter().map(Row::from).collect(),
            page.next_cursor,
            None,
        ),
        Err(e) => (Vec::new(), None, Some(e.message)),
    };
    let filters = Filters {
        q: query.q.clone().unwrap_or_default(),
        state: query.state.clone().unwrap_or_default(),
        kind: query.kind.clone().unwrap_or_default(),
        assignee: query.assignee.clone().unwrap_or_default(),
        overdue: query.overdue.clone().unwrap_or_default(),
    };
    let next_page = next_cursor.map(|cursor| {
        let pairs = [
            ("q", filters.q.as_str()),
            ("state", filters.state.as_str()),
            ("kind", filters.kind.as_str()),
            ("assignee", filters.assignee.as_str()),
            ("overdue", filters.overdue.as_str()),
            ("cursor", cursor.as_str()),
        ];
        let kept: Vec<(&str, &str)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        format!(
            "/console?{}",
            serde_urlencoded::to_string(kept).unwrap_or_default()
        )
    });
    let body = QueuePage {
        t,
        csrf,
        officer_name: officer.username.clone(),
        roles: roles_of(officer),
        can_work: rightsdesk_domain::roles::permits(
            &officer.roles,
            rightsdesk_domain::Permission::WorkRequests,
        ),
        filters,
        kinds: RequestKind::ALL.iter().map(|k| k.as_str()).collect(),
        rows,
        next_page,
        error: notice.or(error),
    }
    .render()
    .unwrap_or_default();
    page(
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        req,
        t,
    )
}

/// `POST /console/bulk`: `assign` (to oneself) or `start` every selected request
/// (`ids`, repeated), each as the API's action; those refused are listed with why.
#[post("/bulk")]
async fn bulk(req: HttpRequest, services: web::Data<Services>, body: web::Bytes) -> HttpResponse {
    let Some((officer, csrf)) = session(&req, &services).await else {
        return redirect("/console/login");
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if value("csrf") != Some(csrf.as_str()) {
        return HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body("CSRF token missing or wrong");
    }
    let (action, input) = match value("action") {
        Some("assign") => ("assign", serde_json::json!({"assignee_id": officer.id})),
        Some("start") => ("start", serde_json::json!({})),
        _ => {
            return HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .body("action must be assign or start");
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
        return redirect("/console");
    }
    render_queue(
        &req,
        &services,
        &officer,
        csrf,
        Some(refused.join("; ")),
        actix_web::http::StatusCode::CONFLICT,
    )
    .await
}

/// How a deadline is shown: `late`, `soon` (3 days or fewer), `ontime`, or `paused`.
fn urgency(d: &rightsdesk_core::requests::DeadlineView) -> &'static str {
    match d.days_left {
        _ if d.paused => "paused",
        Some(n) if n < 0 || d.overdue => "late",
        Some(n) if n <= 3 => "soon",
        _ => "ontime",
    }
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

#[derive(Template, WebTemplate)]
#[template(path = "console/request.html")]
struct RequestPage {
    t: &'static Labels,
    csrf: String,
    officer_name: String,
    roles: String,
    id: String,
    reference: String,
    kind: String,
    state: String,
    due_date: String,
    days_left: String,
    urgency: &'static str,
    requester: String,
    assignee: String,
    actions: Vec<ActionForm>,
    timeline: Vec<TimelineRow>,
    notices: Vec<(String, String, String)>,
    evidence: Vec<(String, String, String)>,
    error: Option<String>,
}

fn roles_of(officer: &Officer) -> String {
    officer
        .roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Renders request `id` for the session's officer, with `error` on top.
async fn render_request(
    req: &HttpRequest,
    services: &Services,
    officer: &Officer,
    csrf: String,
    id: uuid::Uuid,
    error: Option<String>,
    status: actix_web::http::StatusCode,
) -> HttpResponse {
    let t = labels(req);
    let d = match services.request_detail(officer, id).await {
        Ok(d) => d,
        Err(e) => {
            return page(
                HttpResponse::build(
                    actix_web::http::StatusCode::from_u16(e.code.status())
                        .unwrap_or(actix_web::http::StatusCode::NOT_FOUND),
                )
                .content_type("text/plain; charset=utf-8")
                .body(e.message),
                req,
                t,
            );
        }
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
    let body = RequestPage {
        t,
        csrf,
        officer_name: officer.username.clone(),
        roles: roles_of(officer),
        id: d.id.to_string(),
        reference: d.reference.clone(),
        kind: d.kind.to_string(),
        state: d.state.to_string(),
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
            .map(|n| {
                (
                    n.template.clone(),
                    n.status.clone(),
                    n.created_at.format("%Y-%m-%d %H:%M").to_string(),
                )
            })
            .collect(),
        evidence: d
            .evidence
            .iter()
            .map(|e| {
                (
                    e.kind.clone(),
                    e.file_name.clone().unwrap_or_default(),
                    e.status.clone(),
                )
            })
            .collect(),
        error,
    }
    .render()
    .unwrap_or_default();
    page(
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        req,
        t,
    )
}

/// `/console/requests/{id}`: a request with its timeline, notices, evidence and the
/// actions the officer may take now.
#[get("/requests/{id}")]
async fn request_page(
    req: HttpRequest,
    services: web::Data<Services>,
    id: web::Path<String>,
) -> HttpResponse {
    let Some((officer, csrf)) = session(&req, &services).await else {
        return redirect("/console/login");
    };
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return HttpResponse::NotFound().finish();
    };
    render_request(
        &req,
        &services,
        &officer,
        csrf,
        id,
        None,
        actix_web::http::StatusCode::OK,
    )
    .await
}

/// `POST /console/requests/{id}/actions/{action}`: the action's form, as the API's
/// action (same checks, same roles); back to the request, with the error if refused.
#[post("/requests/{id}/actions/{action}")]
async fn act(
    req: HttpRequest,
    services: web::Data<Services>,
    path: web::Path<(String, String)>,
    form: web::Form<std::collections::BTreeMap<String, String>>,
) -> HttpResponse {
    let Some((officer, csrf)) = session(&req, &services).await else {
        return redirect("/console/login");
    };
    let mut form = form.into_inner();
    if form.remove("csrf").as_deref() != Some(csrf.as_str()) {
        return HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body("CSRF token missing or wrong");
    }
    let (id, action) = path.into_inner();
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return HttpResponse::NotFound().finish();
    };
    // Form fields are text; empty ones are left out, and a number is sent as one.
    let mut body = serde_json::Map::new();
    for (k, v) in form {
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
        body.insert(k, value);
    }
    match services
        .act(&officer, id, &action, &serde_json::Value::Object(body))
        .await
    {
        Ok(_) => redirect(&format!("/console/requests/{id}")),
        Err(e) => {
            let status = actix_web::http::StatusCode::from_u16(e.code.status())
                .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
            render_request(&req, &services, &officer, csrf, id, Some(e.message), status).await
        }
    }
}
