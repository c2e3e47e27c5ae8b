//! The officer queue: the filter variants measured, through the API and as the
//! console's queue page, their validation, and — to explain what the HTTP timings
//! show — the same SELECT the service issues, run and explained directly on the
//! database.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::sqlite::SqliteConnection;
use sea_orm::sqlx::{self, AssertSqlSafe, Connection, Row as _};
use serde_json::Value;
use uuid::Uuid;

use crate::load::{self, Conn};
use crate::server::{Api, Backend, Database, Server};

/// One term of the WHERE clause, in the order `store::requests::queue` adds them.
#[derive(Debug, Clone)]
pub enum Cond {
    States(Vec<String>),
    Open(bool),
    Kind(String),
    AssigneeNull,
    DueBefore(NaiveDate),
    /// Keyset position: after (due_date, id).
    After(NaiveDate, Uuid),
}

/// Which page of the queue a variant fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `GET /api/v1/officer/requests`, JSON, the access token as a bearer token.
    Api,
    /// `GET /console`, the officer console's HTML page of 50 rows, the access token as
    /// the session cookie.
    Console,
    /// `GET /api/v1/officer/dashboard`: the open, due and overdue counts and the last 90
    /// days' closed requests.
    Dashboard,
    /// `GET /metrics`: the installation's gauges, read from the database at most every
    /// 10 s (a scrape in between is served from the last read).
    Metrics,
}

#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    pub page: Page,
    /// Query strings, used in turn (several for the cursor variants).
    pub queries: Vec<String>,
    /// The filter of a representative request, for the direct SQL measurements (of the
    /// API's variants; the console issues the same SELECT).
    pub conds: Vec<Cond>,
    pub concurrency: usize,
    /// Items on the first page as checked through the API.
    pub items_checked: usize,
}

/// The variants the issue asks for, plus two that show the planner's choices.
pub fn base_variants(today: NaiveDate) -> Vec<Variant> {
    let v = |name: &str, q: &str, conds: Vec<Cond>| Variant {
        name: name.to_owned(),
        page: Page::Api,
        queries: vec![q.to_owned()],
        conds,
        concurrency: 1,
        items_checked: 0,
    };
    vec![
        v("open (default)", "limit=50", vec![Cond::Open(true)]),
        v(
            "state=in_progress",
            "state=in_progress&limit=50",
            vec![Cond::States(vec!["in_progress".to_owned()])],
        ),
        v(
            "kind=deletion",
            "kind=deletion&limit=50",
            vec![Cond::Open(true), Cond::Kind("deletion".to_owned())],
        ),
        v(
            "overdue=true",
            "overdue=true&limit=50",
            vec![Cond::Open(true), Cond::DueBefore(today)],
        ),
        v(
            "assignee=none",
            "assignee=none&limit=50",
            vec![Cond::Open(true), Cond::AssigneeNull],
        ),
    ]
}

fn page_position(item: &Value) -> anyhow::Result<(NaiveDate, Uuid)> {
    let date = item["deadline"]["due_date"]
        .as_str()
        .context("an item without deadline.due_date")?
        .parse()?;
    let id = item["id"].as_str().context("an item without id")?.parse()?;
    Ok((date, id))
}

/// Fetches the first page through the API and checks it: 200, at most 50 items,
/// ordered by (due date, id). Returns the page.
pub async fn check_page(api: &Api, token: &str, query: &str) -> anyhow::Result<Value> {
    let (status, body) = api
        .get(&format!("/api/v1/officer/requests?{query}"), token)
        .await?;
    if status != 200 {
        bail!("GET /api/v1/officer/requests?{query}: {status} {body}");
    }
    let items = body["items"].as_array().context("no items array")?;
    if items.len() > 50 {
        bail!("{query}: {} items on a page of 50", items.len());
    }
    let mut last: Option<(NaiveDate, Uuid)> = None;
    for item in items {
        let pos = page_position(item)?;
        if last.is_some_and(|l| l > pos) {
            bail!("{query}: items are not ordered by (due date, id)");
        }
        last = Some(pos);
    }
    Ok(body)
}

/// Walks `pages` pages of `base` by `next_cursor` and makes a variant of pages 2…
pub async fn cursor_variant(
    api: &Api,
    token: &str,
    name: &str,
    base: &str,
    mut conds: Vec<Cond>,
    pages: usize,
) -> anyhow::Result<Option<Variant>> {
    let mut queries = Vec::new();
    let mut positions = Vec::new();
    let mut query = base.to_owned();
    for _ in 0..pages {
        let body = check_page(api, token, &query).await?;
        let Some(next) = body["next_cursor"].as_str() else {
            break;
        };
        let items = body["items"].as_array().context("no items")?;
        let last = items.last().context("a next_cursor on an empty page")?;
        positions.push(page_position(last)?);
        query = format!("{base}&cursor={next}");
        queries.push(query.clone());
    }
    if queries.is_empty() {
        return Ok(None);
    }
    let (date, id) = positions[positions.len() / 2];
    conds.push(Cond::After(date, id));
    Ok(Some(Variant {
        name: format!("{name}, pages 2–{} by next_cursor", queries.len() + 1),
        page: Page::Api,
        queries,
        conds,
        concurrency: 1,
        items_checked: 0,
    }))
}

impl Variant {
    /// The request that fetches the page of `query`, one of its queries.
    pub fn request(&self, port: u16, token: &str, query: &str) -> Vec<u8> {
        match self.page {
            Page::Api => load::get(
                port,
                &format!("/api/v1/officer/requests?{query}"),
                Some(token),
            ),
            Page::Console => load::get_with_session(port, &console_path(query), token),
            Page::Dashboard => load::get(port, "/api/v1/officer/dashboard", Some(token)),
            Page::Metrics => load::get(port, "/metrics", None),
        }
    }
}

/// The operators' and managers' reads over the whole table: the dashboard and the
/// metrics scrape, one client each.
pub fn ops_variants() -> Vec<Variant> {
    [
        ("dashboard", Page::Dashboard),
        ("metrics scrape", Page::Metrics),
    ]
    .into_iter()
    .map(|(name, page)| Variant {
        name: name.to_owned(),
        page,
        queries: vec![String::new()],
        conds: Vec::new(),
        concurrency: 1,
        items_checked: 0,
    })
    .collect()
}

/// Checks that the dashboard and the metrics agree on the open requests, and returns
/// that count.
pub async fn check_ops(api: &Api, token: &str, port: u16) -> anyhow::Result<u64> {
    let (status, body) = api.get("/api/v1/officer/dashboard", token).await?;
    if status != 200 {
        bail!("GET /api/v1/officer/dashboard: {status} {body}");
    }
    let open = body["open"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("the dashboard has no open count: {body}"))?;
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await?
        .text()
        .await?;
    let gauge = metrics
        .lines()
        .find_map(|l| l.strip_prefix("rightsdesk_requests_open "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    if gauge != Some(open as f64) {
        bail!("the metrics say {gauge:?} open requests, the dashboard {open}");
    }
    Ok(open)
}

/// `/console`, with `query` when there is one.
fn console_path(query: &str) -> String {
    if query.is_empty() {
        "/console".to_owned()
    } else {
        format!("/console?{query}")
    }
}

/// The console's page for the filter of an API variant: the same query without
/// `limit` (the console shows 50 a page).
pub fn console_variant(api: &Variant) -> Variant {
    let without_limit = |q: &String| {
        q.split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("limit="))
            .collect::<Vec<_>>()
            .join("&")
    };
    Variant {
        name: api.name.clone(),
        page: Page::Console,
        queries: api.queries.iter().map(without_limit).collect(),
        conds: api.conds.clone(),
        concurrency: api.concurrency,
        items_checked: 0,
    }
}

/// What a console queue page shows.
pub struct ConsolePage {
    /// The rows' references (`data-reference`), in order.
    pub references: Vec<String>,
    /// The query string of the next-page link (`id="next"`), unescaped.
    pub next: Option<String>,
}

/// An attribute value as the template escaped it (askama writes `&` as `&#38;`),
/// unescaped: the named entities of HTML's escaping, and numeric ones.
fn unescape_attr(value: &str) -> String {
    let entity = |name: &str| -> Option<char> {
        let code = match name {
            "amp" => return Some('&'),
            "lt" => return Some('<'),
            "gt" => return Some('>'),
            "quot" => return Some('"'),
            "apos" => return Some('\''),
            _ => match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => name.strip_prefix('#')?.parse().ok()?,
            },
        };
        char::from_u32(code)
    };
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match rest
            .find(';')
            .and_then(|end| Some((entity(&rest[1..end])?, end)))
        {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of the first `attr="…"` after `after` in `html`, as written.
fn attribute<'a>(html: &'a str, after: &str, attr: &str) -> Option<&'a str> {
    let (_, rest) = html.split_once(after)?;
    let (_, value) = rest.split_once(&format!("{attr}=\""))?;
    value.split('"').next()
}

/// Fetches a console queue page with the request the timed runs send (the bench's own
/// client, which follows no redirect) and checks that it is the queue: 200 (a refused
/// session is a 303 to the login page), no error notice, at most 50 rows, and a
/// next-page link to `/console?…cursor=…` when there is one.
pub async fn console_page(
    server: &Server,
    token: &str,
    query: &str,
) -> anyhow::Result<ConsolePage> {
    let path = console_path(query);
    let res = Conn::new(server.addr())
        .roundtrip(&load::get_with_session(server.port, &path, token))
        .await
        .with_context(|| format!("GET {path}"))?;
    let html = res.text();
    if res.status != 200 {
        bail!(
            "GET {path}: {} instead of the queue page{}",
            res.status,
            if (300..400).contains(&res.status) {
                " (a redirect: the session cookie was not accepted)"
            } else {
                ""
            }
        );
    }
    if let Some((_, rest)) = html.split_once("id=\"error\">") {
        let message = rest.split('<').next().unwrap_or_default();
        bail!("GET {path}: the page shows an error: {message}");
    }
    if !html.contains("<tbody>") {
        bail!("GET {path}: 200, but no table of requests");
    }
    let references: Vec<String> = html
        .split("data-reference=\"")
        .skip(1)
        .map(|rest| unescape_attr(rest.split('"').next().unwrap_or_default()))
        .collect();
    if references.len() > 50 {
        bail!("GET {path}: {} rows on a page of 50", references.len());
    }
    let next = match attribute(&html, "id=\"next\"", "href") {
        None => None,
        Some(href) => {
            let href = unescape_attr(href);
            match href.strip_prefix("/console?") {
                Some(q) if q.split('&').any(|p| p.starts_with("cursor=")) => Some(q.to_owned()),
                _ => bail!("GET {path}: a next-page link to {href:?}"),
            }
        }
    };
    Ok(ConsolePage { references, next })
}

/// Checks the console's first page of `console` against the API's page of the same
/// filter (`api_page`, from [`check_page`]): the same requests in the same order, so
/// 50 rows whenever the API has more than a page. Returns the rows.
pub async fn check_console_page(
    server: &Server,
    token: &str,
    console: &Variant,
    api_page: &Value,
) -> anyhow::Result<usize> {
    let query = &console.queries[0];
    let page = console_page(server, token, query).await?;
    let expected = api_page["items"]
        .as_array()
        .context("no items array")?
        .iter()
        .map(|item| item["reference"].as_str().map(str::to_owned))
        .collect::<Option<Vec<String>>>()
        .context("an item without reference")?;
    if page.references.is_empty() || page.references != expected {
        bail!(
            "{}: {} rows, not the {} requests of the API's page for the same filter",
            console_path(query),
            page.references.len(),
            expected.len()
        );
    }
    if page.next.is_some() != api_page["next_cursor"].is_string() {
        bail!(
            "{}: a next-page link is {} where the API has {} next_cursor",
            console_path(query),
            if page.next.is_some() {
                "shown"
            } else {
                "missing"
            },
            if page.next.is_some() { "no" } else { "a" }
        );
    }
    Ok(page.references.len())
}

/// Walks `pages` pages of the console's queue for `base` by the next-page link and
/// makes a variant of pages 2…: every page checked first (see [`console_page`]), full
/// (50 rows) when it links to a next one, and no request shown on two pages.
pub async fn console_cursor_variant(
    server: &Server,
    token: &str,
    name: &str,
    base: &str,
    conds: Vec<Cond>,
    pages: usize,
) -> anyhow::Result<Option<Variant>> {
    let mut queries = Vec::new();
    let mut seen = HashSet::new();
    let mut query = base.to_owned();
    // Page 1, then each page it leads to: the last one is checked too, as it is timed.
    for fetched in 0..=pages {
        let page = console_page(server, token, &query).await?;
        if page.references.is_empty() {
            bail!("{}: a page without rows", console_path(&query));
        }
        if let Some(r) = page.references.iter().find(|r| !seen.insert((*r).clone())) {
            bail!("{}: {r} is on an earlier page too", console_path(&query));
        }
        if fetched == pages {
            break;
        }
        let Some(next) = page.next else {
            break;
        };
        if page.references.len() != 50 {
            bail!(
                "{}: {} rows and a next-page link",
                console_path(&query),
                page.references.len()
            );
        }
        queries.push(next.clone());
        query = next;
    }
    if queries.is_empty() {
        return Ok(None);
    }
    Ok(Some(Variant {
        name: format!("{name}, pages 2–{} by the next link", queries.len() + 1),
        page: Page::Console,
        queries,
        conds,
        concurrency: 1,
        items_checked: 0,
    }))
}

/// The columns of the entity, in its order (sea-orm selects them all).
const SELECT_COLUMNS: &[&str] = &[
    "id",
    "reference",
    "kind",
    "state",
    "is_open",
    "channel",
    "language",
    "requester_name",
    "requester_email",
    "requester_phone",
    "details",
    "subject_id",
    "assignee_id",
    "related_request_id",
    "received_at",
    "clock_started_at",
    "due_date",
    "time_zone",
    "deadline_pack",
    "deadline_pack_version",
    "token_hash",
    "event_seq",
    "head_hash",
    "created_at",
    "updated_at",
    "closed_at",
];

#[derive(Debug, Clone)]
enum Param {
    Bool(bool),
    Text(String),
    Date(NaiveDate),
    Uuid(Uuid),
    Int(i64),
}

impl Param {
    fn pg_type(&self) -> &'static str {
        match self {
            Param::Bool(_) => "boolean",
            Param::Text(_) => "text",
            Param::Date(_) => "date",
            Param::Uuid(_) => "uuid",
            Param::Int(_) => "bigint",
        }
    }

    fn pg_literal(&self) -> String {
        match self {
            Param::Bool(b) => b.to_string(),
            Param::Text(s) => format!("'{}'", s.replace('\'', "''")),
            Param::Date(d) => format!("'{d}'"),
            Param::Uuid(u) => format!("'{u}'"),
            Param::Int(i) => i.to_string(),
        }
    }
}

/// The SELECT `store::requests::queue` makes sea-orm issue for `conds`, with its
/// parameters (`$n` on PostgreSQL, `?` on SQLite).
fn queue_sql(conds: &[Cond], pg: bool) -> (String, Vec<Param>) {
    let mut params = Vec::new();
    let p = |v: Param, params: &mut Vec<Param>| {
        params.push(v);
        if pg {
            format!("${}", params.len())
        } else {
            "?".to_owned()
        }
    };
    let col = |c: &str| format!("\"requests\".\"{c}\"");
    let mut terms = Vec::new();
    for c in conds {
        match c {
            Cond::States(states) => {
                let ph: Vec<String> = states
                    .iter()
                    .map(|s| p(Param::Text(s.clone()), &mut params))
                    .collect();
                terms.push(format!("{} IN ({})", col("state"), ph.join(", ")));
            }
            Cond::Open(b) => terms.push(format!(
                "{} = {}",
                col("is_open"),
                p(Param::Bool(*b), &mut params)
            )),
            Cond::Kind(k) => terms.push(format!(
                "{} = {}",
                col("kind"),
                p(Param::Text(k.clone()), &mut params)
            )),
            Cond::AssigneeNull => terms.push(format!("{} IS NULL", col("assignee_id"))),
            Cond::DueBefore(d) => terms.push(format!(
                "{} < {}",
                col("due_date"),
                p(Param::Date(*d), &mut params)
            )),
            Cond::After(d, id) => {
                let a = p(Param::Date(*d), &mut params);
                let b = p(Param::Date(*d), &mut params);
                let c = p(Param::Uuid(*id), &mut params);
                terms.push(format!(
                    "{} >= {a} AND ({} > {b} OR {} > {c})",
                    col("due_date"),
                    col("due_date"),
                    col("id")
                ));
            }
        }
    }
    let limit = p(Param::Int(51), &mut params);
    let cols: Vec<String> = SELECT_COLUMNS.iter().map(|c| col(c)).collect();
    let sql = format!(
        "SELECT {} FROM \"requests\" WHERE {} ORDER BY {} ASC, {} ASC LIMIT {limit}",
        cols.join(", "),
        terms.join(" AND "),
        col("due_date"),
        col("id"),
    );
    (sql, params)
}

/// The plan and the database-side time of one variant's SELECT.
#[derive(Debug, Clone, Default)]
pub struct Explained {
    /// Median time of the prepared statement run directly (no HTTP, no ORM), ms.
    pub direct_ms: f64,
    /// The slowest of those runs, ms.
    pub direct_max_ms: f64,
    pub rows: usize,
    /// The plan the service's connections end up using (scan lines only).
    pub plan: Vec<String>,
    /// PostgreSQL: the custom plan when it differs from the one chosen.
    pub custom_plan: Vec<String>,
    /// PostgreSQL: rows the plan read to produce the page (from EXPLAIN ANALYZE).
    pub detail: String,
}

const DIRECT_RUNS: usize = 40;

fn summarize(times: &mut [f64]) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    (median, times.last().copied().unwrap_or(f64::NAN))
}

pub async fn explain(db: &Database, conds: &[Cond]) -> anyhow::Result<Explained> {
    match db.backend {
        Backend::Sqlite => explain_sqlite(db, conds).await,
        Backend::Postgres => explain_postgres(db, conds).await,
    }
}

async fn explain_sqlite(db: &Database, conds: &[Cond]) -> anyhow::Result<Explained> {
    let mut conn: SqliteConnection = crate::seed::sqlite_connect(db).await?;
    let (sql, params) = queue_sql(conds, false);
    let bind = |sql: String| {
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for p in &params {
            q = match p {
                Param::Bool(b) => q.bind(*b),
                Param::Text(s) => q.bind(s.clone()),
                Param::Date(d) => q.bind(*d),
                Param::Uuid(u) => q.bind(*u),
                Param::Int(i) => q.bind(*i),
            };
        }
        q
    };
    let plan_rows = bind(format!("EXPLAIN QUERY PLAN {sql}"))
        .fetch_all(&mut conn)
        .await
        .context("EXPLAIN QUERY PLAN")?;
    let plan = plan_rows
        .iter()
        .map(|r| r.try_get::<String, _>(3))
        .collect::<Result<Vec<_>, _>>()?;
    let mut times = Vec::with_capacity(DIRECT_RUNS);
    let mut rows = 0;
    for _ in 0..DIRECT_RUNS {
        let t = Instant::now();
        rows = bind(sql.clone()).fetch_all(&mut conn).await?.len();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    conn.close().await?;
    let (direct_ms, direct_max_ms) = summarize(&mut times);
    Ok(Explained {
        direct_ms,
        direct_max_ms,
        rows,
        plan,
        custom_plan: Vec::new(),
        detail: String::new(),
    })
}

fn scan_lines(plan: &[String]) -> Vec<String> {
    plan.iter()
        .filter(|l| l.contains("Scan") || l.contains("Sort") || l.contains("Rows Removed"))
        .map(|l| l.trim().trim_start_matches("->").trim().to_owned())
        .collect()
}

async fn explain_postgres(db: &Database, conds: &[Cond]) -> anyhow::Result<Explained> {
    let mut conn = PgConnection::connect(&db.url).await?;
    let (sql, params) = queue_sql(conds, true);
    // As the service runs it: a named prepared statement reused on one connection,
    // where PostgreSQL may switch to a generic plan after five executions.
    let mut times = Vec::with_capacity(DIRECT_RUNS);
    let mut rows = 0;
    for _ in 0..DIRECT_RUNS {
        let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
        for p in &params {
            q = match p {
                Param::Bool(b) => q.bind(*b),
                Param::Text(s) => q.bind(s.clone()),
                Param::Date(d) => q.bind(*d),
                Param::Uuid(u) => q.bind(*u),
                Param::Int(i) => q.bind(*i),
            };
        }
        let t = Instant::now();
        rows = q.fetch_all(&mut conn).await?.len();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (direct_ms, direct_max_ms) = summarize(&mut times);
    // The same statement prepared by name, to see which plan the cache settles on.
    let types: Vec<&str> = params.iter().map(Param::pg_type).collect();
    let literals: Vec<String> = params.iter().map(Param::pg_literal).collect();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "PREPARE bench_queue ({}) AS {sql}",
        types.join(", ")
    )))
    .execute(&mut conn)
    .await?;
    let execute = format!("EXECUTE bench_queue ({})", literals.join(", "));
    for _ in 0..6 {
        sqlx::raw_sql(AssertSqlSafe(execute.clone()))
            .execute(&mut conn)
            .await?;
    }
    let plan = pg_explain(&mut conn, "auto", &execute).await?;
    let custom = pg_explain(&mut conn, "force_custom_plan", &execute).await?;
    sqlx::raw_sql("DEALLOCATE bench_queue")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    // The first Buffers line is the top node's (the whole execution); planning has its own.
    let detail = [
        plan.iter().find(|l| l.contains("Buffers:")),
        plan.iter().find(|l| l.contains("Execution Time")),
    ]
    .into_iter()
    .flatten()
    .map(|l| l.trim().to_owned())
    .collect::<Vec<_>>()
    .join("; ");
    let plan_scans = scan_lines(&plan);
    let custom_scans = scan_lines(&custom);
    let same = |a: &[String], b: &[String]| {
        let heads = |v: &[String]| -> Vec<String> {
            v.iter()
                .filter(|l| l.contains("Scan"))
                .map(|l| l.split("  (").next().unwrap_or("").to_owned())
                .collect()
        };
        heads(a) == heads(b)
    };
    Ok(Explained {
        direct_ms,
        direct_max_ms,
        rows,
        custom_plan: if same(&plan_scans, &custom_scans) {
            Vec::new()
        } else {
            custom_scans
        },
        plan: plan_scans,
        detail,
    })
}

async fn pg_explain(
    conn: &mut PgConnection,
    mode: &str,
    execute: &str,
) -> anyhow::Result<Vec<String>> {
    sqlx::raw_sql(AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
        .execute(&mut *conn)
        .await?;
    let rows = sqlx::raw_sql(AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, BUFFERS) {execute}"
    )))
    .fetch_all(&mut *conn)
    .await?;
    sqlx::raw_sql("RESET plan_cache_mode")
        .execute(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).map_err(Into::into))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_read_and_unescaped() {
        let html = r#"<tr data-reference="PR-2026-000001"><td><a href="/console/requests/x">
            </tbody></table><p><a id="next" href="/console?kind=deletion&amp;cursor=MjAyNi0x">Next</a></p>"#;
        let href = attribute(html, r#"id="next""#, "href").map(unescape_attr);
        assert_eq!(
            href.as_deref(),
            Some("/console?kind=deletion&cursor=MjAyNi0x")
        );
        assert_eq!(
            unescape_attr("/console?overdue=true&#38;cursor=a&#x2F;b&#39;&amp;c & d&#;"),
            "/console?overdue=true&cursor=a/b'&c & d&#;"
        );
        assert_eq!(attribute("<p>no link</p>", r#"id="next""#, "href"), None);
    }

    #[test]
    fn a_console_variant_drops_the_limit() {
        let api = &base_variants(NaiveDate::MIN)[..];
        let queries: Vec<String> = api
            .iter()
            .map(|v| console_variant(v).queries[0].clone())
            .collect();
        assert_eq!(
            queries,
            [
                "",
                "state=in_progress",
                "kind=deletion",
                "overdue=true",
                "assignee=none"
            ]
        );
        assert_eq!(console_path(""), "/console");
        assert_eq!(console_path("overdue=true"), "/console?overdue=true");
    }
}
