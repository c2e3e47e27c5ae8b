//! The officer queue: the filter variants measured, their validation through the API,
//! and — to explain what the HTTP timings show — the same SELECT the service issues,
//! run and explained directly on the database.

use std::time::Instant;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::sqlite::SqliteConnection;
use sea_orm::sqlx::{self, AssertSqlSafe, Connection, Row as _};
use serde_json::Value;
use uuid::Uuid;

use crate::server::{Api, Backend, Database};

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

#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    /// Query strings, used in turn (several for the cursor variants).
    pub queries: Vec<String>,
    /// The filter of a representative request, for the direct SQL measurements.
    pub conds: Vec<Cond>,
    pub concurrency: usize,
    /// Items on the first page as checked through the API.
    pub items_checked: usize,
}

/// The variants the issue asks for, plus two that show the planner's choices.
pub fn base_variants(today: NaiveDate) -> Vec<Variant> {
    let v = |name: &str, q: &str, conds: Vec<Cond>| Variant {
        name: name.to_owned(),
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
