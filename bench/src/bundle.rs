//! The bundle phase (issue 6): a person's data written as a bundle from a large source
//! table, with the server's resident memory watched throughout.
//!
//! 1. A source database of the same kind as the service's (a SQLite file, or a
//!    PostgreSQL database) with one table, `page_views`, of N rows (10,000,000 by
//!    default) indexed by email: `big.owner@example.com` owns a tenth (1,000,000 rows of
//!    about 1 KB once exported as JSON and CSV), `mid.owner@example.com` a hundredth, and
//!    everyone else 4 or 5 rows each (the long tail a real access log has). With
//!    `--keep-source` it is kept for the next run (and reused when it has the same size).
//! 2. `rightsdesk serve` with that table as an `sql` source. Per measured bundle: a copy
//!    request is filed for the owner, verified by an officer, started and collected; the
//!    time from the collect call until the bundle is `ready` is the bundle's time, and the
//!    server's peak resident memory (VmHWM, reset before each bundle through
//!    `/proc/PID/clear_refs`) its memory. The mid owner's bundle runs first, then the big
//!    owner's: memory that stays flat does not grow with the size.
//! 3. The last big bundle is delivered: the request is completed, the download link read
//!    from the completion notice (the `folder` mail transport), the zip downloaded over
//!    loopback and checked with `rightsdesk bundle verify`.
//! 4. The look-up of a person with a few rows in that table, through the connector in
//!    this process (as the worker calls it): latency over many calls.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rightsdesk_connectors::{Identifiers, Record, Sources};
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::sqlite::SqliteConnection;
use sea_orm::sqlx::{self, AssertSqlSafe, Connection};
use serde_json::{Value, json};

use crate::procstat::{self, Memory};
use crate::server::{Api, Backend, Database, Server, ServerSettings};
use crate::{BackendResult, Options};

/// The owners of the measured bundles, and one person with a few rows.
const BIG_OWNER: &str = "big.owner@example.com";
const MID_OWNER: &str = "mid.owner@example.com";
/// `p<i mod TAIL_PEOPLE>@example.com` owns the other rows.
const TAIL_PEOPLE: u64 = 2_000_003;
const FEW_ROWS_PERSON: &str = "p12345@example.com";
/// Look-ups of the few-rows person timed, after a warm-up of a tenth as many.
pub const LOOKUPS_TIMED: usize = 500;
/// A measured bundle may take this long before the phase fails.
const BUNDLE_LIMIT: Duration = Duration::from_secs(1800);

/// One measured bundle.
#[derive(Debug, Clone, Default)]
pub struct BundleRun {
    pub owner: &'static str,
    /// From the collect call to the bundle's `ready`.
    pub secs: f64,
    pub records: u64,
    /// Bytes of the zip as stored (deflated).
    pub zip_bytes: u64,
    /// Bytes of the data files inside it (the JSON and CSV, uncompressed).
    pub exported_bytes: Option<u64>,
    /// Peak resident memory of the server while it was written.
    pub peak: Memory,
    /// Resident memory right before the collect call.
    pub before: Memory,
    pub server_cpu_secs: f64,
}

/// The download of the last big bundle.
#[derive(Debug, Clone, Default)]
pub struct DownloadRun {
    pub secs: f64,
    pub bytes: u64,
    pub peak: Memory,
    /// `rightsdesk bundle verify` accepted it.
    pub verified: bool,
    pub verify_secs: f64,
}

/// The source table.
#[derive(Debug, Clone, Default)]
pub struct SourceTable {
    pub rows: u64,
    pub big_rows: u64,
    pub mid_rows: u64,
    pub few_rows: u64,
    /// Seconds to write it, or `None` when an earlier run's was reused.
    pub made_secs: Option<f64>,
    pub bytes: u64,
}

/// Everything the phase measured on one backend.
#[derive(Debug, Clone, Default)]
pub struct BundleResult {
    pub source: SourceTable,
    pub idle: Memory,
    pub runs: Vec<BundleRun>,
    pub download: Option<DownloadRun>,
    /// Look-up latency of the few-rows person, milliseconds, sorted.
    pub lookup_ms: Vec<f64>,
    pub lookup_records: usize,
}

impl BundleResult {
    pub fn lookup_quantile(&self, q: f64) -> f64 {
        if self.lookup_ms.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lookup_ms.len() as f64 - 1.0) * q).round() as usize;
        self.lookup_ms[i.min(self.lookup_ms.len() - 1)]
    }
}

/// Where the source lives: a SQLite file or a PostgreSQL database, kept or not.
struct Source {
    url: String,
    sqlite_path: Option<PathBuf>,
    pg: Option<(String, String)>,
    keep: bool,
}

impl Source {
    async fn open(opts: &Options, backend: Backend, dir: &Path) -> anyhow::Result<Self> {
        let rows = opts.bundle_rows;
        match backend {
            Backend::Sqlite => {
                let path = if opts.keep_source {
                    let d =
                        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rightsdesk-bench");
                    std::fs::create_dir_all(&d)?;
                    d.join(format!("source-{rows}.db"))
                } else {
                    dir.join("source.db")
                };
                Ok(Self {
                    url: format!("sqlite://{}", path.display()),
                    sqlite_path: Some(path),
                    pg: None,
                    keep: opts.keep_source,
                })
            }
            Backend::Postgres => {
                let name = if opts.keep_source {
                    format!("rightsdesk_bench_source_{rows}")
                } else {
                    format!("rightsdesk_bench_{}_source", std::process::id())
                };
                let mut admin = PgConnection::connect(&opts.pg_admin_url).await?;
                let exists: Option<(i32,)> =
                    sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
                        .bind(&name)
                        .fetch_optional(&mut admin)
                        .await?;
                if exists.is_none() {
                    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                        .execute(&mut admin)
                        .await
                        .with_context(|| format!("creating the database {name}"))?;
                }
                admin.close().await?;
                let (base, db_and_params) = opts
                    .pg_admin_url
                    .rsplit_once('/')
                    .context("the PostgreSQL URL needs a database name")?;
                let params = db_and_params
                    .split_once('?')
                    .map_or(String::new(), |(_, p)| format!("?{p}"));
                Ok(Self {
                    url: format!("{base}/{name}{params}"),
                    sqlite_path: None,
                    pg: Some((opts.pg_admin_url.clone(), name)),
                    keep: opts.keep_source,
                })
            }
        }
    }

    async fn drop_unless_kept(&self) -> anyhow::Result<()> {
        if self.keep {
            return Ok(());
        }
        if let Some((admin_url, name)) = &self.pg {
            let mut admin = PgConnection::connect(admin_url).await?;
            sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await?;
            admin.close().await?;
        }
        if let Some(path) = &self.sqlite_path {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        Ok(())
    }

    /// The table, written unless an earlier run left one of `rows` rows.
    async fn ensure(&self, rows: u64) -> anyhow::Result<SourceTable> {
        let started = Instant::now();
        let made = match &self.sqlite_path {
            Some(path) => {
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let mut c = SqliteConnection::connect(&url).await?;
                let made = if sqlite_complete(&mut c, rows).await {
                    false
                } else {
                    drop(c);
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                    }
                    c = SqliteConnection::connect(&url).await?;
                    eprintln!("bench:   writing a source table of {rows} rows into SQLite…");
                    for sql in sqlite_fill(rows) {
                        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut c).await?;
                    }
                    true
                };
                c.close().await?;
                made
            }
            None => {
                let mut c = PgConnection::connect(&self.url).await?;
                let done: Option<(i64,)> = sqlx::query_as(
                    "SELECT rows FROM bench_source_meta WHERE complete AND rows = $1",
                )
                .bind(i64::try_from(rows)?)
                .fetch_optional(&mut c)
                .await
                .unwrap_or(None);
                let made = if done.is_some() {
                    false
                } else {
                    eprintln!("bench:   writing a source table of {rows} rows into PostgreSQL…");
                    for sql in pg_fill(rows) {
                        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut c).await?;
                    }
                    true
                };
                c.close().await?;
                made
            }
        };
        let made_secs = made.then(|| started.elapsed().as_secs_f64());
        let mut table = SourceTable {
            rows,
            made_secs,
            ..SourceTable::default()
        };
        // Counted through the same index the service uses.
        for (email, into) in [
            (BIG_OWNER, &mut table.big_rows),
            (MID_OWNER, &mut table.mid_rows),
            (FEW_ROWS_PERSON, &mut table.few_rows),
        ] {
            *into = self.count(email).await?;
        }
        table.bytes = self.size().await?;
        Ok(table)
    }

    async fn count(&self, email: &str) -> anyhow::Result<u64> {
        let n: (i64,) = match &self.sqlite_path {
            Some(path) => {
                let mut c =
                    SqliteConnection::connect(&format!("sqlite://{}?mode=ro", path.display()))
                        .await?;
                let n = sqlx::query_as("SELECT count(*) FROM page_views WHERE email = ?")
                    .bind(email)
                    .fetch_one(&mut c)
                    .await?;
                c.close().await?;
                n
            }
            None => {
                let mut c = PgConnection::connect(&self.url).await?;
                let n = sqlx::query_as("SELECT count(*) FROM page_views WHERE email = $1")
                    .bind(email)
                    .fetch_one(&mut c)
                    .await?;
                c.close().await?;
                n
            }
        };
        Ok(u64::try_from(n.0)?)
    }

    async fn size(&self) -> anyhow::Result<u64> {
        match (&self.sqlite_path, &self.pg) {
            (Some(path), _) => Ok(std::fs::metadata(path)?.len()),
            (None, Some((_, name))) => {
                let mut c = PgConnection::connect(&self.url).await?;
                let (n,): (i64,) = sqlx::query_as("SELECT pg_database_size($1)")
                    .bind(name)
                    .fetch_one(&mut c)
                    .await?;
                c.close().await?;
                Ok(u64::try_from(n)?)
            }
            _ => Ok(0),
        }
    }
}

async fn sqlite_complete(c: &mut SqliteConnection, rows: u64) -> bool {
    let done: Result<Option<(i64,)>, _> =
        sqlx::query_as("SELECT rows FROM bench_source_meta WHERE complete AND rows = ?")
            .bind(i64::try_from(rows).unwrap_or(-1))
            .fetch_optional(c)
            .await;
    matches!(done, Ok(Some(_)))
}

/// Who owns row `i` (1-based), as a SQL expression over `i`.
fn owner_expr(concat: &str) -> String {
    format!(
        "CASE WHEN i % 10 = 0 THEN '{BIG_OWNER}' WHEN i % 100 = 5 THEN '{MID_OWNER}' \
         ELSE 'p' {concat} (i % {TAIL_PEOPLE}) {concat} '@example.com' END"
    )
}

fn sqlite_fill(rows: u64) -> Vec<String> {
    vec![
        "PRAGMA journal_mode = OFF".to_owned(),
        "PRAGMA synchronous = OFF".to_owned(),
        "CREATE TABLE bench_source_meta (rows INTEGER, complete BOOLEAN)".to_owned(),
        "CREATE TABLE page_views (id INTEGER PRIMARY KEY, email TEXT NOT NULL, mobile TEXT, \
         viewed_at TEXT NOT NULL, page TEXT NOT NULL, user_agent TEXT NOT NULL, detail TEXT NOT NULL)"
            .to_owned(),
        format!(
            "BEGIN; \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
             INSERT INTO page_views \
             SELECT i, {owner}, CASE WHEN i % 10 = 0 THEN '13800138000' END, \
               strftime('%Y-%m-%dT%H:%M:%SZ', 1700000000 + i * 3, 'unixepoch'), \
               '/products/' || (i % 997) || '/docs?lang=zh-CN', \
               'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/' || (100 + i % 40) || '.0 Safari/537.36', \
               CASE WHEN i % 10 = 0 OR i % 100 = 5 THEN hex(randomblob(160)) ELSE 'view' END \
             FROM n; COMMIT",
            owner = owner_expr("||")
        ),
        "CREATE INDEX page_views_email ON page_views (email)".to_owned(),
        "ANALYZE".to_owned(),
        format!("INSERT INTO bench_source_meta VALUES ({rows}, 1)"),
    ]
}

fn pg_fill(rows: u64) -> Vec<String> {
    vec![
        "DROP TABLE IF EXISTS page_views, bench_source_meta".to_owned(),
        "CREATE TABLE bench_source_meta (rows BIGINT, complete BOOLEAN)".to_owned(),
        "CREATE TABLE page_views (id BIGINT PRIMARY KEY, email TEXT NOT NULL, mobile TEXT, \
         viewed_at TIMESTAMPTZ NOT NULL, page TEXT NOT NULL, user_agent TEXT NOT NULL, detail TEXT NOT NULL)"
            .to_owned(),
        format!(
            "INSERT INTO page_views \
             SELECT i, {owner}, CASE WHEN i % 10 = 0 THEN '13800138000' END, \
               to_timestamp(1700000000 + i * 3), \
               '/products/' || (i % 997) || '/docs?lang=zh-CN', \
               'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/' || (100 + i % 40) || '.0 Safari/537.36', \
               CASE WHEN i % 10 = 0 OR i % 100 = 5 THEN \
                 md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text) || md5((i + 3)::text) || md5((i + 4)::text) \
                 || md5((i + 5)::text) || md5((i + 6)::text) || md5((i + 7)::text) || md5((i + 8)::text) || md5((i + 9)::text) \
               ELSE 'view' END \
             FROM generate_series(1::bigint, {rows}::bigint) AS i",
            owner = owner_expr("||")
        ),
        "CREATE INDEX page_views_email ON page_views (email)".to_owned(),
        "ANALYZE page_views".to_owned(),
        format!("INSERT INTO bench_source_meta VALUES ({rows}, true)"),
    ]
}

/// The sources file the server and the look-ups read.
fn sources_toml(url: &str) -> String {
    format!(
        r#"[[source]]
name = "website"
title_zh = "官网访问日志"
title_en = "Website access logs"
owner = "web-team@example.com"

[source.sql]
url = "{url}"

[[source.sql.table]]
name = "page_views"
category = "access_logs"
match = {{ email = "email" }}
columns = ["id", "email", "mobile", "viewed_at", "page", "user_agent", "detail"]
"#
    )
}

/// Resets the process's peak resident memory (VmHWM) to what it holds now.
fn reset_peak(pid: u32) -> anyhow::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .with_context(|| format!("resetting the peak memory of process {pid}"))
}

struct Officer<'a> {
    api: &'a Api,
    token: String,
}

impl Officer<'_> {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let (status, body) = self.api.post(path, Some(&self.token), &body).await?;
        if !(200..300).contains(&status) {
            bail!("POST {path}: {status} {body}");
        }
        Ok(body)
    }

    async fn act(&self, id: &str, action: &str, body: Value) -> anyhow::Result<Value> {
        self.post(
            &format!("/api/v1/officer/requests/{id}/actions/{action}"),
            body,
        )
        .await
    }

    async fn detail(&self, id: &str) -> anyhow::Result<Value> {
        let (status, body) = self
            .api
            .get(&format!("/api/v1/officer/requests/{id}"), &self.token)
            .await?;
        if status != 200 {
            bail!("GET request {id}: {status} {body}");
        }
        Ok(body)
    }
}

/// Files a copy request for `owner`, verifies it, starts it and collects: returns its
/// id and the run, once the bundle is ready.
async fn one_bundle(
    server: &Server,
    officer: &Officer<'_>,
    owner: &'static str,
) -> anyhow::Result<(String, BundleRun)> {
    let (status, filed) = officer
        .api
        .post(
            "/api/v1/requests",
            None,
            &json!({
                "kind": "copy",
                "requester": {"name": "Bench Owner", "email": owner, "language": "en"},
            }),
        )
        .await?;
    if status != 201 {
        bail!("filing: {status} {filed}");
    }
    let id = filed["id"].as_str().context("no id")?.to_owned();
    officer
        .act(&id, "verify", json!({"method": "document_review"}))
        .await?;
    officer.act(&id, "start", json!({})).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.memory()?;
    reset_peak(server.pid)?;
    let cpu_before = procstat::process_cpu_secs(server.pid)?;
    let started = Instant::now();
    officer
        .post(&format!("/api/v1/officer/requests/{id}/collect"), json!({}))
        .await?;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let detail = officer.detail(&id).await?;
        if let Some(b) = detail["bundles"].as_array().and_then(|b| b.first()) {
            match b["status"].as_str() {
                Some("ready") => {
                    let run = BundleRun {
                        owner,
                        secs: started.elapsed().as_secs_f64(),
                        records: b["records"].as_u64().unwrap_or_default(),
                        zip_bytes: b["size"].as_u64().unwrap_or_default(),
                        exported_bytes: None,
                        peak: server.memory()?,
                        before,
                        server_cpu_secs: procstat::process_cpu_secs(server.pid)? - cpu_before,
                    };
                    return Ok((id, run));
                }
                Some("failed") => bail!("the bundle failed: {b}"),
                _ => {}
            }
        }
        if let Some(failed) = detail["sources"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["status"] == "failed"))
        {
            bail!("a source failed: {failed}");
        }
        if started.elapsed() > BUNDLE_LIMIT {
            bail!("no bundle after {} s: {detail}", BUNDLE_LIMIT.as_secs());
        }
    }
}

/// Completes `id`, reads the download link from its completion notice in `outbox`,
/// downloads the zip into `dir` and verifies it.
async fn deliver(
    settings: &ServerSettings,
    server: &Server,
    officer: &Officer<'_>,
    id: &str,
    outbox: &Path,
    dir: &Path,
    run: &mut BundleRun,
) -> anyhow::Result<DownloadRun> {
    officer
        .act(
            id,
            "complete",
            json!({"summary": "Your data, as every system holds it."}),
        )
        .await?;
    let started = Instant::now();
    let link = loop {
        if let Some(link) = find_link(outbox, &server.base_url()) {
            break link;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "no completion notice with a download link in {}",
                outbox.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let zip = dir.join("bundle.zip");
    reset_peak(server.pid)?;
    let started = Instant::now();
    let http = reqwest::Client::new();
    let mut res = http.get(&link).send().await?;
    if res.status() != 200 {
        bail!("downloading: {}", res.status());
    }
    let mut file = tokio::fs::File::create(&zip).await?;
    let mut bytes = 0u64;
    while let Some(chunk) = res.chunk().await? {
        bytes += chunk.len() as u64;
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
    }
    tokio::io::AsyncWriteExt::flush(&mut file).await?;
    let secs = started.elapsed().as_secs_f64();
    let peak = server.memory()?;
    let started = Instant::now();
    let out = tokio::process::Command::new(&settings.binary)
        .args(["bundle", "verify"])
        .arg(&zip)
        .output()
        .await?;
    let verify_secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "rightsdesk bundle verify refused the download: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    run.exported_bytes = Some(data_bytes(&zip)?);
    let _ = std::fs::remove_file(&zip);
    Ok(DownloadRun {
        secs,
        bytes,
        peak,
        verified: true,
        verify_secs,
    })
}

/// The download link in the completion notice in `outbox`, pointed at `base` (the
/// notice names `verification.link_base_url`; the server listens on a port of its own).
fn find_link(outbox: &Path, base: &str) -> Option<String> {
    rightsdesk_tests::mail::folder_messages(outbox)
        .into_iter()
        .rev()
        .find_map(|m| {
            let at = m.text.find("/api/v1/downloads/")?;
            let path = m.text[at..].split_whitespace().next()?;
            Some(format!("{base}{path}"))
        })
}

/// Uncompressed bytes of the zip's data files (`data/…`).
fn data_bytes(zip: &Path) -> anyhow::Result<u64> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip)?)?;
    let mut total = 0;
    for i in 0..archive.len() {
        let f = archive.by_index_raw(i)?;
        if f.name()?.starts_with("data/") {
            total += f.size();
        }
    }
    Ok(total)
}

/// The look-up of the few-rows person, as the worker makes it.
async fn lookups(sources_file: &str) -> anyhow::Result<(Vec<f64>, usize)> {
    let sources = Sources::from_toml(sources_file, |_| None).map_err(|e| anyhow::anyhow!(e))?;
    let source = sources.get("website").context("no source website")?;
    let ids = Identifiers {
        email: Some(FEW_ROWS_PERSON.to_owned()),
        ..Identifiers::default()
    };
    let mut found = 0;
    let mut times = Vec::with_capacity(LOOKUPS_TIMED);
    for i in 0..LOOKUPS_TIMED + LOOKUPS_TIMED / 10 {
        let mut records: Vec<Record> = Vec::new();
        let started = Instant::now();
        source
            .connector
            .lookup("RD-BENCH", &ids, &mut records)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        found = records.len();
        if i >= LOOKUPS_TIMED / 10 {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((times, found))
}

pub async fn bundle_phase(
    opts: &Options,
    settings: &ServerSettings,
    dir: &Path,
    backend: Backend,
    result: &mut BackendResult,
) -> anyhow::Result<()> {
    let source = Source::open(opts, backend, dir).await?;
    let outcome = measure(opts, settings, dir, backend, &source).await;
    source.drop_unless_kept().await?;
    result.bundle = Some(outcome?);
    Ok(())
}

async fn measure(
    opts: &Options,
    settings: &ServerSettings,
    dir: &Path,
    backend: Backend,
    source: &Source,
) -> anyhow::Result<BundleResult> {
    let table = source.ensure(opts.bundle_rows).await?;
    eprintln!(
        "bench:   source: {} rows ({:.0} MB), {} of the big owner, {} of the mid owner, {} of the few-rows person{}",
        table.rows,
        table.bytes as f64 / 1e6,
        table.big_rows,
        table.mid_rows,
        table.few_rows,
        table
            .made_secs
            .map_or(" (kept from an earlier run)".to_owned(), |s| format!(
                ", written in {s:.0} s"
            ))
    );
    let toml = sources_toml(&source.url);
    let (lookup_ms, lookup_records) = lookups(&toml).await?;
    if lookup_records as u64 != table.few_rows {
        bail!(
            "the look-up found {lookup_records} records, the table holds {}",
            table.few_rows
        );
    }
    let work = dir.join("bundle");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let sources_path = work.join("sources.toml");
    std::fs::write(&sources_path, &toml)?;
    let db = Database::create(backend, dir, &opts.pg_admin_url, "bundle").await?;
    let outbox = work.join("outbox");
    let mut with_env = settings.clone();
    with_env.extra_env.extend([
        (
            "RIGHTSDESK__SOURCES__FILE".to_owned(),
            sources_path.display().to_string(),
        ),
        (
            "RIGHTSDESK__BUNDLES__DIR".to_owned(),
            work.join("bundles").display().to_string(),
        ),
        (
            "RIGHTSDESK__MAIL__FOLDER".to_owned(),
            outbox.display().to_string(),
        ),
    ]);
    let outcome = async {
        let server = Server::start(&with_env, &work, &db).await?;
        let api = Api::new(&server)?;
        let admin = api.token("admin", &settings.admin_password).await?;
        api.create_officer(&admin, "bench.officer", "bench-officer-password", &["officer"])
            .await?;
        let officer = Officer {
            token: api.token("bench.officer", "bench-officer-password").await?,
            api: &api,
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = server.memory()?;
        let mut runs = Vec::new();
        let mut last = None;
        for (round, owner) in std::iter::once(MID_OWNER)
            .chain(std::iter::repeat_n(BIG_OWNER, opts.bundle_rounds))
            .enumerate()
        {
            let (id, run) = one_bundle(&server, &officer, owner).await?;
            eprintln!(
                "bench:   bundle {}: {} records in {:.1} s ({:.0} records/s), zip {:.0} MB, peak RSS {:.1} MB (before {:.1} MB), server CPU {:.1} s",
                round + 1,
                run.records,
                run.secs,
                run.records as f64 / run.secs,
                run.zip_bytes as f64 / 1e6,
                run.peak.hwm_kib as f64 * 1024.0 / 1e6,
                run.before.rss_kib as f64 * 1024.0 / 1e6,
                run.server_cpu_secs,
            );
            let expected = if owner == BIG_OWNER {
                table.big_rows
            } else {
                table.mid_rows
            };
            if run.records != expected {
                bail!("the bundle holds {} records, the source {expected}", run.records);
            }
            runs.push(run);
            last = Some(id);
        }
        let download = match (last, runs.last_mut()) {
            (Some(id), Some(run)) => {
                let d = deliver(&with_env, &server, &officer, &id, &outbox, &work, run).await?;
                eprintln!(
                    "bench:   download: {:.0} MB in {:.1} s, peak RSS {:.1} MB; verified in {:.1} s",
                    d.bytes as f64 / 1e6,
                    d.secs,
                    d.peak.hwm_kib as f64 * 1024.0 / 1e6,
                    d.verify_secs
                );
                Some(d)
            }
            _ => None,
        };
        server.stop().await?;
        Ok(BundleResult {
            source: table,
            idle,
            runs,
            download,
            lookup_ms,
            lookup_records,
        })
    }
    .await;
    db.drop_now().await?;
    let _ = std::fs::remove_dir_all(&work);
    outcome
}
