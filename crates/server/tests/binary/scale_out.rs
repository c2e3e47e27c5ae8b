//! The scale-out proof (SPEC §13, issue 9): two `rightsdesk serve` processes (API only,
//! `worker.in_process = false`) and two `rightsdesk worker` processes on one PostgreSQL
//! database, sending to a real SMTP server. The two APIs start together on the empty
//! database (they migrate it, taking turns, and create the administrator once); the
//! workers follow. Requests are filed through both APIs at once (some with the same
//! `Idempotency-Key` on both), verified with the codes the SMTP server received, started,
//! assigned, searched in two data sources (one-off jobs `collect_source`, then
//! `build_bundle`) and completed; a rule pack with a one-day period makes every request's
//! 1-day reminder due at once, so the workers' deadline sweep writes real reminders (and
//! a digest). While the searches run beside the mail of new filings, one worker is killed
//! with SIGKILL as it holds both claimed mail and a one-off job, and a replacement is
//! started. At the end, everything happened exactly once: one request per key, every
//! notification sent and received (a repeat only of a message the killed worker had
//! claimed and not marked sent, with its same Message-ID), one reminder per request,
//! every search answered and recorded once, one ready bundle per searched request,
//! every one-off job done, no job counted twice by the workers, nothing left to the dead
//! worker. Prints the counts in one block.
//!
//! PostgreSQL only (several processes on one SQLite file is not the deployment this
//! proves); `scripts/test` runs it after the PostgreSQL pass with `--nocapture`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rightsdesk_tests::mail::{SmtpMode, SmtpServer};
use rightsdesk_tests::reqwest::{self, Method, StatusCode};
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{
    ADMIN_PASSWORD, Backend, OFFICER_PASSWORD, Reply, TempDir, TestApp, TestDb, backend, free_port,
    valid_details,
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, QueryResult, Statement};
use tokio::process::{Child, Command};

use crate::{count, stop};

/// Requests filed.
const REQUESTS: usize = 300;
/// Concurrent HTTP clients.
const CLIENTS: usize = 8;
/// Where reminders of unassigned requests go.
const TEAM: &str = "team@example.com";
/// The officer's address (reminders of the requests assigned to them, the digest).
const OFFICER_EMAIL: &str = "officer.scale@example.com";
/// The longest wait for any one stage.
const STAGE: Duration = Duration::from_secs(120);

/// Which requests get which treatment, by their index.
fn verified(i: usize) -> bool {
    i.is_multiple_of(2)
}
fn assigned(i: usize) -> bool {
    i.is_multiple_of(6)
}
fn collected(i: usize) -> bool {
    i.is_multiple_of(4)
}
/// Filed on both APIs at the same moment with one key.
fn raced(i: usize) -> bool {
    i.is_multiple_of(10)
}
/// Filed, then filed again with the same key on the other API.
fn retried(i: usize) -> bool {
    i % 10 == 5
}

/// A rule pack whose requests are due the day after they are received: the 1-day
/// reminder (`reminders.offsets_days` holds 1 by default) is due at once.
const RUSH_PACK: &str = r#"
name = "rush"
version = 1
time_zone = "Asia/Shanghai"
clock_start = "receipt"
default = { amount = 1, unit = "calendar_days" }
"#;

/// Two `sql` sources on one SQLite file: each search is a `collect_source` job.
fn sources_file(url: &str) -> String {
    format!(
        r#"
[[source]]
name = "website"
title_zh = "官网"
title_en = "Website"
owner = "web@example.com"
[source.sql]
url = "{url}"
[[source.sql.table]]
name = "users"
category = "account"
key = "id"
match = {{ email = "email" }}
columns = ["id", "email", "name"]
[[source.sql.table]]
name = "downloads"
category = "downloads"
parent = {{ table = "users", column = "user_id" }}
columns = ["product"]

[[source]]
name = "crm"
title_zh = "客服系统"
title_en = "CRM"
owner = "crm@example.com"
[source.sql]
url = "{url}"
[[source.sql.table]]
name = "tickets"
category = "tickets"
key = "id"
match = {{ email = "email" }}
columns = ["id", "email", "subject"]
"#
    )
}

fn email(i: usize) -> String {
    format!("scale{i}@example.com")
}

/// The source database: an account and a download for every eighth requester, a
/// ticket for every twelfth (the others have no data there).
async fn source_db(dir: &TempDir) -> String {
    let file = dir.0.join("source.db");
    let db = Database::connect(format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .expect("a source database");
    db.execute_unprepared(
        "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT, name TEXT); \
         CREATE TABLE downloads (user_id TEXT, product TEXT); \
         CREATE TABLE tickets (id TEXT PRIMARY KEY, email TEXT, subject TEXT)",
    )
    .await
    .expect("the source's tables");
    for i in (0..REQUESTS).step_by(8) {
        db.execute_unprepared(&format!(
            "INSERT INTO users VALUES ('u{i}', '{}', 'Person {i}'); \
             INSERT INTO downloads VALUES ('u{i}', 'ZStack')",
            email(i)
        ))
        .await
        .expect("a user");
    }
    for i in (0..REQUESTS).step_by(12) {
        db.execute_unprepared(&format!(
            "INSERT INTO tickets VALUES ('t{i}', '{}', 'invoice')",
            email(i)
        ))
        .await
        .expect("a ticket");
    }
    db.close().await.ok();
    format!("sqlite://{}", file.display())
}

/// One process of the fleet.
struct Proc {
    name: String,
    pid: u32,
    child: Option<Child>,
    log: PathBuf,
    /// A worker's `/metrics` listener (`worker.bind`).
    metrics_port: Option<u16>,
}

/// The processes under test, all with one configuration (environment variables);
/// killed when dropped (a failed assertion), with the end of each log printed.
struct Fleet {
    dir: TempDir,
    env: Vec<(String, String)>,
    procs: Vec<Proc>,
}

impl Fleet {
    fn new(db: &TestDb, smtp_port: u16, sources_url: &str) -> Self {
        let dir = TempDir::new();
        let packs = dir.0.join("packs");
        std::fs::create_dir_all(&packs).expect("a packs folder");
        std::fs::write(packs.join("rush.toml"), RUSH_PACK).expect("the rush pack");
        let sources = dir.0.join("sources.toml");
        std::fs::write(&sources, sources_file(sources_url)).expect("the sources file");
        let path = |p: PathBuf| p.display().to_string();
        let env = [
            ("DATABASE__URL", db.url.clone()),
            ("DATABASE__MAX_CONNECTIONS", "6".to_owned()),
            ("BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
            ("WORKER__IN_PROCESS", "false".to_owned()),
            ("HTTP__WORKERS", "2".to_owned()),
            ("MAIL__TRANSPORT", "smtp".to_owned()),
            ("MAIL__SMTP__HOST", "127.0.0.1".to_owned()),
            ("MAIL__SMTP__PORT", smtp_port.to_string()),
            ("MAIL__SMTP__TLS", "none".to_owned()),
            ("MAIL__SMTP__TIMEOUT_SECS", "5".to_owned()),
            ("DEADLINES__PACKS_DIR", path(packs)),
            ("DEADLINES__DEFAULT_PACK", "rush".to_owned()),
            ("SOURCES__FILE", path(sources)),
            ("BUNDLES__DIR", path(dir.0.join("bundles"))),
            ("REMINDERS__TEAM_EMAIL", TEAM.to_owned()),
            ("WORKER__LEASE_SECS", "3".to_owned()),
            ("WORKER__POLL_INTERVAL_MS", "200".to_owned()),
            ("WORKER__EVERY_SECS__SWEEP_DEADLINES", "1".to_owned()),
            ("WORKER__EVERY_SECS__EXPIRE_UNVERIFIED", "2".to_owned()),
            ("WORKER__EVERY_SECS__PURGE_EVIDENCE", "2".to_owned()),
            ("WORKER__EVERY_SECS__CHECK_CALENDAR", "2".to_owned()),
            ("WORKER__EVERY_SECS__PURGE_JOBS", "2".to_owned()),
            ("WORKER__EVERY_SECS__PURGE_BUNDLES", "2".to_owned()),
            ("WORKER__EVERY_SECS__END_RESTRICTIONS", "2".to_owned()),
            ("WORKER__BACKOFF_BASE_SECS", "1".to_owned()),
            ("OUTBOX__LEASE_SECS", "3".to_owned()),
            ("OUTBOX__POLL_INTERVAL_MS", "200".to_owned()),
            ("OUTBOX__BATCH_SIZE", "50".to_owned()),
            ("OUTBOX__BACKOFF_BASE_SECS", "1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (format!("RIGHTSDESK__{k}"), v))
        .collect();
        Self {
            dir,
            env,
            procs: Vec::new(),
        }
    }

    /// Starts `rightsdesk <args>` as `name`, its log in `<dir>/<name>.log`.
    fn start(&mut self, name: &str, args: &[&str], extra: &[(&str, String)]) -> u32 {
        let log = self.dir.0.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("a log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_rightsdesk"));
        command
            .args(args)
            .current_dir(&self.dir.0)
            .env_remove("RIGHTSDESK_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true);
        let child = command.spawn().expect("start rightsdesk");
        let pid = child.id().expect("a pid");
        self.procs.push(Proc {
            name: name.to_owned(),
            pid,
            child: Some(child),
            log,
            metrics_port: None,
        });
        pid
    }

    /// An API instance on `port`.
    fn start_api(&mut self, name: &str, port: u16) -> u32 {
        self.start(
            name,
            &["serve"],
            &[
                ("RIGHTSDESK__HTTP__BIND", format!("127.0.0.1:{port}")),
                ("RIGHTSDESK__LOG__LEVEL", "warn".to_owned()),
            ],
        )
    }

    /// A worker, with its `/metrics` (the jobs it ran) on a port of its own; its log
    /// keeps each deadline sweep's counts (what it wrote).
    fn start_worker(&mut self, name: &str) -> u32 {
        let port = free_port();
        let pid = self.start(
            name,
            &["worker"],
            &[
                (
                    "RIGHTSDESK__LOG__LEVEL",
                    "warn,rightsdesk_core::reminders=info,rightsdesk_core::jobs=info".to_owned(),
                ),
                ("RIGHTSDESK__WORKER__BIND", format!("127.0.0.1:{port}")),
            ],
        );
        self.proc(name).metrics_port = Some(port);
        pid
    }

    /// The jobs worker `name` ran, by kind, from its `rightsdesk_jobs_total` counter
    /// (outcome `ran`); panics when it counted a failed job.
    async fn job_runs(&mut self, name: &str) -> BTreeMap<String, u64> {
        let port = self.proc(name).metrics_port.expect("a worker");
        let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("the worker's /metrics")
            .text()
            .await
            .expect("its text");
        let mut ran = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("rightsdesk_jobs_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            let label = |key: &str| {
                labels
                    .split(',')
                    .find_map(|l| l.strip_prefix(&format!("{key}=\"")))
                    .map(|v| v.trim_end_matches('"').to_owned())
                    .unwrap_or_default()
            };
            let n = value.trim().parse::<f64>().expect("a counter") as u64;
            match label("outcome").as_str() {
                "ran" => *ran.entry(label("kind")).or_default() += n,
                "failed" => panic!("{name} counted {n} failed {} jobs", label("kind")),
                _ => {}
            }
        }
        ran
    }

    fn proc(&mut self, name: &str) -> &mut Proc {
        self.procs
            .iter_mut()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    /// Panics (with its log) when `name` has exited.
    fn check_running(&mut self, name: &str) {
        let proc = self.proc(name);
        let exited = proc
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if let Some(status) = exited {
            let log = std::fs::read_to_string(&proc.log).unwrap_or_default();
            panic!("{name} exited early ({status}):\n{log}");
        }
    }

    /// SIGKILL (`Child::kill`), waiting for it to be gone.
    async fn kill(&mut self, name: &str) {
        let mut child = self.proc(name).child.take().expect("a running process");
        child.kill().await.expect("SIGKILL");
    }

    /// SIGTERM to each running process, each waited for and exited cleanly.
    async fn stop_all(&mut self) {
        for proc in &mut self.procs {
            if let Some(child) = proc.child.take() {
                stop(child).await;
            }
        }
    }

    /// Which process a `leased_by` (`host:pid:suffix`) names.
    fn name_of(&self, worker_id: &str) -> String {
        let pid = worker_id.split(':').nth(1).unwrap_or_default();
        self.procs
            .iter()
            .find(|p| p.pid.to_string() == pid)
            .map_or_else(|| format!("unknown ({worker_id})"), |p| p.name.clone())
    }

    fn log_of(&self, name: &str) -> String {
        self.procs
            .iter()
            .find(|p| p.name == name)
            .map(|p| std::fs::read_to_string(&p.log).unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for proc in &mut self.procs {
            if let Some(child) = proc.child.as_mut() {
                let _ = child.start_kill();
            }
        }
        if std::thread::panicking() {
            for proc in &self.procs {
                let log = std::fs::read_to_string(&proc.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                eprintln!("--- the end of {}'s log ---", proc.name);
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// The two API instances, called over loopback.
struct Apis {
    client: reqwest::Client,
    base: [String; 2],
}

impl Apis {
    async fn call(
        &self,
        api: usize,
        method: Method,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base[api]));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        TestApp::reply(req.send().await.expect("the API answers")).await
    }

    async fn post(&self, api: usize, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.call(api, Method::POST, path, token, None, Some(body))
            .await
    }

    async fn login(&self, api: usize, username: &str, password: &str) -> String {
        let r = self
            .post(
                api,
                "/api/v1/auth/token",
                None,
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login: {:?}", r.body);
        r.body["access_token"].as_str().expect("a token").to_owned()
    }

    /// Officer action `action` on request `id` through `api`; must answer 200.
    async fn act(&self, api: usize, token: &str, id: &str, action: &str, body: Value) {
        let r = self
            .post(
                api,
                &format!("/api/v1/officer/requests/{id}/actions/{action}"),
                Some(token),
                &body,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{action} on API {api}: {:?}",
            r.body
        );
    }
}

async fn wait_ready(fleet: &mut Fleet, name: &str, base: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        fleet.check_running(name);
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn rows(conn: &DatabaseConnection, sql: &str) -> Vec<QueryResult> {
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// `(a, b)` text columns of `sql`.
async fn pairs(conn: &DatabaseConnection, sql: &str) -> Vec<(String, String)> {
    rows(conn, sql)
        .await
        .iter()
        .map(|r| {
            (
                r.try_get("", "a").expect("column a"),
                r.try_get("", "b").expect("column b"),
            )
        })
        .collect()
}

/// `(label, n)` rows of `sql`, as a map.
async fn counts(conn: &DatabaseConnection, sql: &str) -> BTreeMap<String, i64> {
    rows(conn, sql)
        .await
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "a").expect("column a"),
                r.try_get::<i64>("", "n").expect("column n"),
            )
        })
        .collect()
}

/// Polls `check` (which says what is still missing, or `None` when done) until done,
/// failing after `STAGE` with the last answer.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let deadline = Instant::now() + STAGE;
    loop {
        let Some(missing) = check().await else {
            return;
        };
        assert!(
            Instant::now() < deadline,
            "{what}: still not done after {STAGE:?}: {missing}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Message-ID's local part (the notification id) of every message the SMTP server
/// received, and how often each came.
fn received(smtp: &SmtpServer) -> BTreeMap<String, usize> {
    let mut by_id = BTreeMap::new();
    for m in smtp.messages() {
        let id = m
            .message_id
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned();
        *by_id.entry(id).or_default() += 1;
    }
    by_id
}

/// A filed request: its index, id, requester token, and how it was filed.
struct Filed {
    i: usize,
    id: String,
    token: String,
    /// The API that filed it, or `None` when it was raced on both.
    api: Option<usize>,
}

/// Files request `i` with its own Idempotency-Key: on one API; raced on both at once;
/// or filed and then retried on the other API. Every answer names the same request.
async fn file(apis: &Apis, run: &str, i: usize) -> Filed {
    let kind = if i.is_multiple_of(3) {
        "copy"
    } else {
        "access"
    };
    let body = json!({
        "kind": kind,
        "requester": {
            "name": format!("Person {i}"),
            "email": email(i),
            "phone": null,
            "language": if (i / 2).is_multiple_of(2) { "zh-CN" } else { "en" },
        },
        "details": valid_details(kind),
    });
    let key = format!("scale-out-{run}-{i}");
    let file_on = |api: usize| {
        let (body, key) = (&body, &key);
        async move {
            let r = apis
                .call(
                    api,
                    Method::POST,
                    "/api/v1/requests",
                    None,
                    Some(key),
                    Some(body),
                )
                .await;
            assert!(
                r.status == StatusCode::CREATED || r.status == StatusCode::OK,
                "filing {i} on API {api}: {} {:?}",
                r.status,
                r.body
            );
            let id = r.body["id"].as_str().expect("an id").to_owned();
            let token = r.body["requester_token"]
                .as_str()
                .expect("a requester token")
                .to_owned();
            (id, token)
        }
    };
    let api = (i + i / 10) % 2;
    if raced(i) {
        let ((first, token), (second, _)) = tokio::join!(file_on(api), file_on(1 - api));
        assert_eq!(first, second, "one key raced on both APIs: one request");
        return Filed {
            i,
            id: first,
            token,
            api: None,
        };
    }
    let (id, token) = file_on(api).await;
    if retried(i) {
        let (again, _) = file_on(1 - api).await;
        assert_eq!(id, again, "one key retried on the other API: one request");
    }
    Filed {
        i,
        id,
        token,
        api: Some(api),
    }
}

/// What the SIGKILL took from the killed worker, read after it was gone.
struct Kill {
    pid: u32,
    /// Notifications it had claimed and not marked sent.
    notifications: BTreeSet<String>,
    /// Jobs it held: id, kind, and when the row was last updated.
    jobs: Vec<(String, String, String)>,
    /// Notifications it had sent before.
    sent_before: i64,
    /// How many requests had been filed then.
    filed: usize,
    /// The jobs it had run, by kind (its `/metrics`, read just before the kill).
    runs_before: BTreeMap<String, u64>,
    at: Instant,
}

/// Waits for worker A to be in the middle of its work (it has sent mail already, and
/// holds both claimed notifications it has not sent yet and a one-off job it is
/// running; or, once the drive waits for the kill, any lease), kills it with SIGKILL,
/// and starts the replacement, worker C.
async fn kill_mid_work(
    fleet: &mut Fleet,
    conn: &DatabaseConnection,
    filed: &AtomicUsize,
    killed: &AtomicBool,
    relax: &AtomicBool,
) -> Kill {
    let deadline = Instant::now() + 2 * STAGE;
    let pid = fleet.proc("worker A").pid;
    let mine = format!("leased_by LIKE '%:{pid}:%'");
    let live = format!("{mine} AND lease_until > now()");
    loop {
        fleet.check_running("worker A");
        let row = rows(
            conn,
            &format!(
                "SELECT (SELECT COUNT(*) FROM notifications WHERE status = 'sent' AND {mine}) AS sent, \
                 (SELECT COUNT(*) FROM notifications WHERE status = 'pending' AND {live}) AS notes, \
                 (SELECT COUNT(*) FROM jobs WHERE every_secs IS NULL AND {live}) AS one_off, \
                 (SELECT COUNT(*) FROM jobs WHERE {live}) AS jobs"
            ),
        )
        .await;
        let n = |c: &str| row[0].try_get::<i64>("", c).expect("a count");
        let (sent, notes, one_off, jobs) = (n("sent"), n("notes"), n("one_off"), n("jobs"));
        if (sent > 0 && notes > 0 && one_off > 0)
            || (relax.load(Ordering::SeqCst) && notes + jobs > 0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "worker A never held any work");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let filed_then = filed.load(Ordering::SeqCst);
    let runs_before = fleet.job_runs("worker A").await;
    fleet.kill("worker A").await;
    let at = Instant::now();
    fleet.start_worker("worker C");
    killed.store(true, Ordering::SeqCst);
    // What it held when it died (it can change nothing any more).
    let notifications = pairs(
        conn,
        &format!(
            "SELECT id::text AS a, template AS b FROM notifications \
             WHERE status = 'pending' AND lease_until IS NOT NULL AND {mine}"
        ),
    )
    .await
    .into_iter()
    .map(|(id, _)| id)
    .collect();
    let jobs = rows(
        conn,
        &format!(
            "SELECT id::text AS id, kind, updated_at::text AS at FROM jobs \
             WHERE lease_until IS NOT NULL AND {mine}"
        ),
    )
    .await
    .iter()
    .map(|r| {
        (
            r.try_get("", "id").expect("id"),
            r.try_get("", "kind").expect("kind"),
            r.try_get("", "at").expect("at"),
        )
    })
    .collect();
    let sent_before = count(
        conn,
        &format!("SELECT COUNT(*) AS n FROM notifications WHERE status = 'sent' AND {mine}"),
    )
    .await;
    Kill {
        pid,
        notifications,
        jobs,
        sent_before,
        filed: filed_then,
        runs_before,
        at,
    }
}

/// Every job claim seen while the fleet works (the `jobs` table keeps only who holds a
/// job now, not who ran it): (job id, its `run_at`, the claiming worker, kind), sampled
/// every 25 ms until `done`.
async fn sample_job_claims(
    conn: &DatabaseConnection,
    done: &AtomicBool,
) -> HashSet<(String, String, String, String)> {
    let mut seen = HashSet::new();
    while !done.load(Ordering::SeqCst) {
        for r in rows(
            conn,
            "SELECT id::text AS id, run_at::text AS run_at, leased_by, kind FROM jobs \
             WHERE lease_until IS NOT NULL",
        )
        .await
        {
            seen.insert((
                r.try_get("", "id").expect("id"),
                r.try_get("", "run_at").expect("run_at"),
                r.try_get("", "leased_by").expect("leased_by"),
                r.try_get("", "kind").expect("kind"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    seen
}

/// What the drive did through the APIs.
#[derive(Default)]
struct Drive {
    filed: Vec<Filed>,
    verified_via: [usize; 2],
    started: usize,
    assigned: usize,
    collected: usize,
    completed: usize,
    officer_calls_via: [usize; 2],
}

/// Files requests `range`, CLIENTS at a time, alternately on each API.
async fn file_wave(
    apis: &Apis,
    run: &str,
    range: std::ops::Range<usize>,
    filed_count: &AtomicUsize,
) -> Vec<Filed> {
    futures_util::stream::iter(range)
        .map(|i| async move {
            let filed = file(apis, run, i).await;
            filed_count.fetch_add(1, Ordering::SeqCst);
            filed
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await
}

/// Verifies `filed` with the code each requester received (its verification message,
/// found by the Message-ID naming the notification), once every code written so far
/// has been sent; returns the calls per API.
async fn verify_wave(
    apis: &Apis,
    conn: &DatabaseConnection,
    smtp: &SmtpServer,
    filed: &[&Filed],
) -> [usize; 2] {
    until("every verification code sent", || async {
        let pending = count(
            conn,
            "SELECT COUNT(*) AS n FROM notifications \
             WHERE template = 'verification_code' AND status <> 'sent'",
        )
        .await;
        (pending > 0).then(|| format!("{pending} codes not sent"))
    })
    .await;
    let code_of_notification: BTreeMap<String, String> = smtp
        .messages()
        .into_iter()
        .filter(|m| m.subject.chars().take(6).all(|c| c.is_ascii_digit()))
        .map(|m| {
            let id = m
                .message_id
                .split('@')
                .next()
                .unwrap_or_default()
                .to_owned();
            (id, m.code())
        })
        .collect();
    let code_notification_of: BTreeMap<String, String> = pairs(
        conn,
        "SELECT request_id::text AS a, id::text AS b FROM notifications \
         WHERE template = 'verification_code'",
    )
    .await
    .into_iter()
    .collect();
    let via: Vec<usize> = futures_util::stream::iter(filed.iter().copied())
        .map(|f| {
            let notification = &code_notification_of[&f.id];
            let code = code_of_notification
                .get(notification)
                .unwrap_or_else(|| panic!("no code received for request {}", f.i));
            async move {
                let api = (f.i / 2) % 2;
                let r = apis
                    .post(
                        api,
                        &format!("/api/v1/requests/{}/verification", f.id),
                        Some(&f.token),
                        &json!({ "code": code }),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::OK, "verify {}: {:?}", f.i, r.body);
                api
            }
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await;
    let mut out = [0; 2];
    for api in via {
        out[api] += 1;
    }
    out
}

/// The officer starts each of `filed`, assigns some to themself, and has the sources
/// searched for some (one `collect_source` job per source); returns the calls per API.
async fn officer_wave(
    apis: &Apis,
    officer: &str,
    officer_id: &str,
    filed: &[&Filed],
) -> [usize; 2] {
    let calls: Vec<[usize; 2]> = futures_util::stream::iter(filed.iter().copied())
        .map(|f| async move {
            let mut via = [0; 2];
            let mut api = f.i / 2 % 2;
            apis.act(api, officer, &f.id, "start", json!({})).await;
            via[api] += 1;
            if assigned(f.i) {
                api = 1 - api;
                let body = json!({ "assignee_id": officer_id });
                apis.act(api, officer, &f.id, "assign", body).await;
                via[api] += 1;
            }
            if collected(f.i) {
                api = 1 - api;
                let path = format!("/api/v1/officer/requests/{}/collect", f.id);
                let r = apis.post(api, &path, Some(officer), &json!({})).await;
                assert_eq!(r.status, StatusCode::ACCEPTED, "collect: {:?}", r.body);
                via[api] += 1;
            }
            via
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await;
    let mut out = [0; 2];
    for via in calls {
        out[0] += via[0];
        out[1] += via[1];
    }
    out
}

/// The work, in two waves that overlap: the first half is filed and verified; then the
/// second half is filed while the officer works the first (searches and bundles run on
/// the workers beside the mail of the new filings; the kill comes then); then the
/// second half is verified and worked, and every searched request is completed once
/// its bundle is built. Waits for the kill; then until every notification is sent,
/// every one-off job done, every open request reminded, and the digest written.
async fn drive(
    apis: &Apis,
    conn: &DatabaseConnection,
    smtp: &SmtpServer,
    run: &str,
    filed_count: &AtomicUsize,
    killed: &AtomicBool,
    relax: &AtomicBool,
) -> Drive {
    let mut out = Drive::default();
    let admin = apis.login(0, "admin", ADMIN_PASSWORD).await;
    let r = apis
        .post(
            1,
            "/api/v1/admin/officers",
            Some(&admin),
            &json!({
                "username": "scale.officer",
                "display_name": "Scale officer",
                "email": OFFICER_EMAIL,
                "password": OFFICER_PASSWORD,
                "roles": ["officer"],
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let officer_id = r.body["id"].as_str().expect("an id").to_owned();
    // Logged in on one instance, the token works on both (one stored key).
    let officer = apis.login(1, "scale.officer", OFFICER_PASSWORD).await;
    let add = |total: &mut [usize; 2], via: [usize; 2]| {
        total[0] += via[0];
        total[1] += via[1];
    };

    let half = REQUESTS / 2;
    let first = file_wave(apis, run, 0..half, filed_count).await;
    let first_verified: Vec<&Filed> = first.iter().filter(|f| verified(f.i)).collect();
    add(
        &mut out.verified_via,
        verify_wave(apis, conn, smtp, &first_verified).await,
    );
    let (second, via) = tokio::join!(
        file_wave(apis, run, half..REQUESTS, filed_count),
        officer_wave(apis, &officer, &officer_id, &first_verified),
    );
    add(&mut out.officer_calls_via, via);
    let second_verified: Vec<&Filed> = second.iter().filter(|f| verified(f.i)).collect();
    add(
        &mut out.verified_via,
        verify_wave(apis, conn, smtp, &second_verified).await,
    );
    add(
        &mut out.officer_calls_via,
        officer_wave(apis, &officer, &officer_id, &second_verified).await,
    );
    let worked: Vec<&Filed> = first_verified.into_iter().chain(second_verified).collect();
    out.started = worked.len();
    out.assigned = worked.iter().filter(|f| assigned(f.i)).count();
    let to_complete: Vec<&Filed> = worked.into_iter().filter(|f| collected(f.i)).collect();
    out.collected = to_complete.len();

    // Completion, once each bundle is built (the `build_bundle` job).
    let want = to_complete.len() as i64;
    until("every bundle built", || async {
        let ready = count(
            conn,
            "SELECT COUNT(DISTINCT request_id) AS n FROM bundles WHERE status = 'ready'",
        )
        .await;
        (ready < want).then(|| format!("{ready} of {want} bundles ready"))
    })
    .await;
    let via: Vec<usize> = futures_util::stream::iter(to_complete.iter().copied())
        .map(|f| {
            let officer = &officer;
            async move {
                let api = (f.i / 4) % 2;
                let body = json!({"summary": "您的数据见下载链接"});
                apis.act(api, officer, &f.id, "complete", body).await;
                api
            }
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await;
    for api in via {
        out.officer_calls_via[api] += 1;
    }
    out.completed = to_complete.len();
    out.filed = first.into_iter().chain(second).collect();
    out.filed.sort_by_key(|f| f.i);

    // Everything finishes (the kill happened meanwhile, or happens now).
    relax.store(true, Ordering::SeqCst);
    until("the kill of worker A", || async {
        (!killed.load(Ordering::SeqCst)).then(|| "not yet".to_owned())
    })
    .await;
    let digests = i64::from(out.assigned > 0);
    until("every notification sent and every job done", || async {
        let failed = count(
            conn,
            "SELECT (SELECT COUNT(*) FROM notifications WHERE status = 'failed') \
             + (SELECT COUNT(*) FROM jobs WHERE status = 'failed') AS n",
        )
        .await;
        assert_eq!(failed, 0, "a notification or a job failed");
        let unsent = count(
            conn,
            "SELECT COUNT(*) AS n FROM notifications WHERE status <> 'sent'",
        )
        .await;
        let jobs = count(
            conn,
            "SELECT COUNT(*) AS n FROM jobs WHERE every_secs IS NULL AND status <> 'done'",
        )
        .await;
        let unreminded = count(
            conn,
            "SELECT COUNT(*) AS n FROM requests r WHERE r.is_open AND NOT EXISTS \
             (SELECT 1 FROM notifications n WHERE n.request_id = r.id \
              AND n.template = 'deadline_reminder')",
        )
        .await;
        let digest = count(
            conn,
            "SELECT COUNT(*) AS n FROM notifications WHERE template = 'digest'",
        )
        .await;
        (unsent + jobs + unreminded > 0 || digest != digests).then(|| {
            format!(
                "{unsent} notifications unsent, {jobs} one-off jobs not done, \
                 {unreminded} open requests without a reminder, {digest} digests"
            )
        })
    })
    .await;
    out
}

/// Sums the `reminders` and `digests` each deadline sweep of a worker wrote (its log).
fn sweeps_written(log: &str) -> (i64, i64, usize) {
    let (mut reminders, mut digests, mut sweeps) = (0, 0, 0);
    for line in log.lines() {
        let Ok(v) = rightsdesk_tests::serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["fields"]["message"] == "deadline sweep" {
            sweeps += 1;
            reminders += v["fields"]["reminders"].as_i64().unwrap_or(0);
            digests += v["fields"]["digests"].as_i64().unwrap_or(0);
        }
    }
    (reminders, digests, sweeps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apis_and_two_workers_on_one_postgres_do_everything_exactly_once() {
    if backend() != Backend::Postgres {
        eprintln!(
            "scale_out: skipped on this backend: the scale-out proof (two API and two worker \
             processes on one database) runs on PostgreSQL (RIGHTSDESK_TEST_BACKEND=postgres)"
        );
        return;
    }
    let started = Instant::now();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let smtp = SmtpServer::start(SmtpMode::Accept).await;
    let db = TestDb::postgres().await;
    let source_dir = TempDir::new();
    let sources_url = source_db(&source_dir).await;
    let mut fleet = Fleet::new(&db, smtp.port, &sources_url);

    // Both API instances start together on the empty database: they migrate (taking
    // turns) and create the administrator once. The workers need the schema.
    let ports = [free_port(), free_port()];
    let api_pids = [
        fleet.start_api("API 1", ports[0]),
        fleet.start_api("API 2", ports[1]),
    ];
    let apis = Apis {
        client: reqwest::Client::new(),
        base: ports.map(|p| format!("http://127.0.0.1:{p}")),
    };
    wait_ready(&mut fleet, "API 1", &apis.base[0]).await;
    wait_ready(&mut fleet, "API 2", &apis.base[1]).await;
    for name in ["worker A", "worker B"] {
        fleet.start_worker(name);
    }
    for name in ["worker A", "worker B"] {
        let port = fleet.proc(name).metrics_port.expect("a worker");
        wait_ready(&mut fleet, name, &format!("http://127.0.0.1:{port}")).await;
    }
    let conn = db.connect().await;
    let sampler_conn = db.connect().await;

    let filed = AtomicUsize::new(0);
    let (killed, done, relax) = (
        AtomicBool::new(false),
        AtomicBool::new(false),
        AtomicBool::new(false),
    );
    let (out, kill, claims) = tokio::join!(
        async {
            let out = drive(&apis, &conn, &smtp, &run, &filed, &killed, &relax).await;
            done.store(true, Ordering::SeqCst);
            out
        },
        kill_mid_work(&mut fleet, &conn, &filed, &killed, &relax),
        sample_job_claims(&sampler_conn, &done),
    );
    let work_time = started.elapsed();
    let takeover_wait = kill.at.elapsed();
    let mut runs = BTreeMap::new();
    runs.insert("worker A", kill.runs_before.clone());
    for name in ["worker B", "worker C"] {
        runs.insert(name, fleet.job_runs(name).await);
    }
    // Nothing can arrive after every process has exited.
    fleet.stop_all().await;

    // --- Requests: one per key, each answer's id stored.
    let answered: BTreeSet<String> = out.filed.iter().map(|f| f.id.clone()).collect();
    assert_eq!(answered.len(), REQUESTS, "one request per Idempotency-Key");
    let stored: BTreeSet<String> =
        pairs(&conn, "SELECT id::text AS a, reference AS b FROM requests")
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect();
    assert_eq!(stored, answered, "the stored requests are those answered");
    let keys = count(
        &conn,
        "SELECT COUNT(*) AS n FROM idempotency_keys WHERE scope = 'requester'",
    )
    .await;
    assert_eq!(keys, REQUESTS as i64);
    let references = count(&conn, "SELECT COUNT(DISTINCT reference) AS n FROM requests").await;
    assert_eq!(references, REQUESTS as i64, "every reference once");

    // --- Notifications: all sent, each key once, each received (a repeat only of one
    //     the killed worker had claimed and not marked sent).
    let notifications: BTreeMap<String, String> = pairs(
        &conn,
        "SELECT id::text AS a, COALESCE(leased_by, '') AS b FROM notifications",
    )
    .await
    .into_iter()
    .collect();
    let written = notifications.len();
    let unsent = count(
        &conn,
        "SELECT COUNT(*) AS n FROM notifications WHERE status <> 'sent'",
    )
    .await;
    assert_eq!(unsent, 0);
    let dup_keys = count(
        &conn,
        "SELECT COUNT(*) AS n FROM (SELECT dedupe_key FROM notifications \
         GROUP BY dedupe_key HAVING COUNT(*) > 1) d",
    )
    .await;
    assert_eq!(dup_keys, 0, "a dedupe key written twice");
    let by_id = received(&smtp);
    let ids: BTreeSet<String> = notifications.keys().cloned().collect();
    assert_eq!(
        by_id.keys().cloned().collect::<BTreeSet<_>>(),
        ids,
        "every notification received, nothing else"
    );
    let repeated: BTreeSet<String> = by_id
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        repeated.is_subset(&kill.notifications),
        "received more than once though the killed worker did not hold them: {:?}",
        repeated.difference(&kill.notifications).collect::<Vec<_>>()
    );
    assert!(
        by_id.values().all(|n| *n <= 2),
        "a message came three times"
    );
    let messages: usize = by_id.values().sum();
    // Only the workers sent anything; what the killed one held, others sent.
    let mut sent_by: BTreeMap<String, usize> = BTreeMap::new();
    for worker in notifications.values() {
        *sent_by.entry(fleet.name_of(worker)).or_default() += 1;
    }
    assert!(
        sent_by.keys().all(|w| w.starts_with("worker ")),
        "sent by a process that is not a worker: {sent_by:?}"
    );
    for id in &kill.notifications {
        assert_ne!(
            fleet.name_of(&notifications[id]),
            "worker A",
            "a notification the killed worker held was never taken over"
        );
    }
    let by_template = counts(
        &conn,
        "SELECT template AS a, COUNT(*) AS n FROM notifications GROUP BY template",
    )
    .await;
    assert_eq!(by_template["acknowledgement"], REQUESTS as i64);
    assert_eq!(by_template["verification_code"], REQUESTS as i64);
    assert_eq!(by_template["officer_assigned"], out.assigned as i64);
    assert_eq!(by_template["completed"], out.completed as i64);

    // --- Reminders: one per request at most, one for every request still open.
    let reminded_twice = count(
        &conn,
        "SELECT COUNT(*) AS n FROM (SELECT request_id FROM notifications \
         WHERE template = 'deadline_reminder' GROUP BY request_id HAVING COUNT(*) > 1) d",
    )
    .await;
    assert_eq!(reminded_twice, 0, "a request reminded twice");
    let unreminded = count(
        &conn,
        "SELECT COUNT(*) AS n FROM requests r WHERE r.is_open AND NOT EXISTS \
         (SELECT 1 FROM notifications n WHERE n.request_id = r.id \
          AND n.template = 'deadline_reminder')",
    )
    .await;
    assert_eq!(unreminded, 0);
    let reminders = by_template
        .get("deadline_reminder")
        .copied()
        .unwrap_or_default();
    let reminder_to = counts(
        &conn,
        &format!(
            "SELECT CASE recipient WHEN '{TEAM}' THEN 'team' WHEN '{OFFICER_EMAIL}' \
             THEN 'assignee' ELSE 'other' END AS a, COUNT(*) AS n FROM notifications \
             WHERE template = 'deadline_reminder' GROUP BY 1"
        ),
    )
    .await;
    let digests = by_template.get("digest").copied().unwrap_or_default();
    assert_eq!(digests, 1, "one digest for the officer today");

    // --- Jobs: every one-off job done once (one row per key), none failed, none held.
    let one_off = counts(
        &conn,
        "SELECT kind AS a, COUNT(*) AS n FROM jobs WHERE every_secs IS NULL GROUP BY kind",
    )
    .await;
    let sources = 2;
    assert_eq!(
        one_off.get("collect_source").copied().unwrap_or_default(),
        (out.collected * sources) as i64,
        "one search per source of each collected request"
    );
    assert_eq!(
        one_off.get("build_bundle").copied().unwrap_or_default(),
        out.collected as i64,
        "one bundle job per collected request"
    );
    let not_done = count(
        &conn,
        "SELECT COUNT(*) AS n FROM jobs WHERE every_secs IS NULL AND status <> 'done'",
    )
    .await;
    assert_eq!(not_done, 0);
    let dup_job_keys = count(
        &conn,
        "SELECT COUNT(*) AS n FROM (SELECT key FROM jobs GROUP BY key HAVING COUNT(*) > 1) d",
    )
    .await;
    assert_eq!(dup_job_keys, 0);
    let attempts = counts(
        &conn,
        "SELECT attempts::text AS a, COUNT(*) AS n FROM jobs WHERE every_secs IS NULL GROUP BY attempts",
    )
    .await;
    let periodic = counts(
        &conn,
        "SELECT kind AS a, COUNT(*) AS n FROM jobs WHERE every_secs IS NOT NULL GROUP BY kind",
    )
    .await;
    assert_eq!(periodic.len(), 7, "the periodic jobs: {periodic:?}");
    assert!(periodic.values().all(|n| *n == 1), "{periodic:?}");
    let held = count(
        &conn,
        "SELECT COUNT(*) AS n FROM jobs WHERE lease_until IS NOT NULL OR leased_by IS NOT NULL",
    )
    .await;
    assert_eq!(held, 0, "a job still held after every worker stopped");
    // The jobs the killed worker held ran again after their lease, elsewhere.
    for (id, kind, at) in &kill.jobs {
        let after = count(
            &conn,
            &format!(
                "SELECT COUNT(*) AS n FROM jobs WHERE id = '{id}' \
                 AND (status = 'done' OR updated_at > '{at}'::timestamptz)"
            ),
        )
        .await;
        assert_eq!(
            after, 1,
            "the {kind} job the killed worker held was not taken over"
        );
    }
    // Each search and each bundle had its effect once.
    let searches = counts(
        &conn,
        "SELECT status AS a, COUNT(*) AS n FROM collections GROUP BY status",
    )
    .await;
    assert_eq!(
        searches.values().sum::<i64>(),
        (out.collected * sources) as i64
    );
    assert!(
        searches.keys().all(|s| s == "answered" || s == "no_data"),
        "{searches:?}"
    );
    let answers_twice = count(
        &conn,
        "SELECT COUNT(*) AS n FROM (SELECT request_id, data->>'source' FROM events \
         WHERE event_type = 'source_answered' GROUP BY 1, 2 HAVING COUNT(*) <> 1) d",
    )
    .await;
    let answer_events = count(
        &conn,
        "SELECT COUNT(*) AS n FROM events WHERE event_type = 'source_answered'",
    )
    .await;
    assert_eq!(answers_twice, 0, "a source's answer recorded twice");
    let unrecorded = pairs(
        &conn,
        "SELECT c.request_id::text || '/' || c.source AS a, \
         c.status || ' attempts ' || c.attempts || ' job attempts ' || \
         (SELECT string_agg(j.attempts::text, ',') FROM jobs j \
          WHERE j.key LIKE 'collect:' || c.request_id || ':' || c.source || ':%') AS b \
         FROM collections c WHERE NOT EXISTS (SELECT 1 FROM events e \
         WHERE e.request_id = c.request_id AND e.event_type = 'source_answered' \
         AND e.data->>'source' = c.source)",
    )
    .await;
    let held_jobs: Vec<&str> = kill.jobs.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(
        answer_events,
        (out.collected * sources) as i64,
        "searches answered without their event: {unrecorded:?}; the killed worker held {held_jobs:?}"
    );
    // One ready bundle per searched request, built once. A build the killed worker
    // was running is marked failed ("interrupted") by the worker that takes its job
    // over, which deletes its work folder (the plaintext spool and zip).
    let bundle_status = counts(
        &conn,
        "SELECT status AS a, COUNT(*) AS n FROM bundles GROUP BY status",
    )
    .await;
    let ready = count(
        &conn,
        "SELECT COUNT(DISTINCT request_id) AS n FROM bundles WHERE status = 'ready'",
    )
    .await;
    let bundles: i64 = bundle_status.values().sum();
    assert_eq!(
        bundle_status.get("ready").copied().unwrap_or_default(),
        out.collected as i64,
        "one ready bundle per searched request: {bundle_status:?}"
    );
    assert_eq!(ready, out.collected as i64);
    let built = count(
        &conn,
        "SELECT COUNT(*) AS n FROM events WHERE event_type = 'bundle_built'",
    )
    .await;
    assert_eq!(built, out.collected as i64);
    let builds_held = kill
        .jobs
        .iter()
        .filter(|(_, kind, _)| kind == "build_bundle")
        .count() as i64;
    let left_building = bundle_status.get("building").copied().unwrap_or_default();
    let interrupted = bundle_status.get("failed").copied().unwrap_or_default();
    assert!(
        bundle_status.keys().all(|s| s == "ready" || s == "failed"),
        "{bundle_status:?}"
    );
    assert!(
        interrupted <= builds_held,
        "{interrupted} bundles failed, the killed worker held {builds_held} builds"
    );
    if interrupted > 0 {
        let reasons = count(
            &conn,
            "SELECT COUNT(*) AS n FROM bundles WHERE status = 'failed' AND error LIKE 'interrupted%'",
        )
        .await;
        assert_eq!(reasons, interrupted, "only interrupted builds fail");
    }
    // What a build writes in plaintext before it seals the bundle, in its work folder
    // `bundles.dir/tmp/<bundle id>/`: nothing is left.
    let left_in_tmp: Vec<String> = std::fs::read_dir(fleet.dir.0.join("bundles").join("tmp"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left_in_tmp.is_empty(),
        "left in bundles/tmp: {left_in_tmp:?}; the killed worker held {builds_held} builds"
    );
    let search_attempts = counts(
        &conn,
        "SELECT attempts::text AS a, COUNT(*) AS n FROM collections GROUP BY attempts",
    )
    .await;

    // Who ran what: claims seen by sampling, and each worker's sweeps from its log.
    let mut claims_by: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (_, _, worker, kind) in &claims {
        *claims_by
            .entry(fleet.name_of(worker))
            .or_default()
            .entry(kind.clone())
            .or_default() += 1;
    }
    assert!(
        claims_by.keys().all(|w| w.starts_with("worker ")),
        "a job claimed by a process that is not a worker: {:?}",
        claims_by.keys()
    );
    let mut swept = BTreeMap::new();
    let mut reminders_logged = 0;
    let mut digests_logged = 0;
    for name in ["worker A", "worker B", "worker C"] {
        let (r, d, n) = sweeps_written(&fleet.log_of(name));
        reminders_logged += r;
        digests_logged += d;
        swept.insert(name, (r, d, n));
    }

    // No job ran to its end twice: the workers' own counters add up to at most one run
    // per one-off job (the killed worker's read just before the kill).
    let mut one_off_runs: BTreeMap<String, u64> = BTreeMap::new();
    for ran in runs.values() {
        for (kind, n) in ran {
            if one_off.contains_key(kind) {
                *one_off_runs.entry(kind.clone()).or_default() += n;
            }
        }
    }
    for (kind, n) in &one_off_runs {
        assert!(
            *n <= one_off[kind] as u64,
            "{kind}: {n} runs counted for {} jobs",
            one_off[kind]
        );
    }

    // The audit chains of every request, written by two API instances and three
    // workers, verify.
    let audit = Command::new(env!("CARGO_BIN_EXE_rightsdesk"))
        .args(["audit", "verify"])
        .current_dir(&fleet.dir.0)
        .env_remove("RIGHTSDESK_CONFIG")
        .env("RIGHTSDESK__DATABASE__URL", &db.url)
        .env("RIGHTSDESK__LOG__LEVEL", "error")
        .output()
        .await
        .expect("rightsdesk audit verify");
    assert!(
        audit.status.success(),
        "audit verify: {}",
        String::from_utf8_lossy(&audit.stdout)
    );

    let via = |api: usize| out.filed.iter().filter(|f| f.api == Some(api)).count();
    let raced_n = out.filed.iter().filter(|f| raced(f.i)).count();
    let retried_n = out.filed.iter().filter(|f| retried(f.i)).count();
    let one_off_total: i64 = one_off.values().sum();
    let show = |m: &BTreeMap<String, i64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let worker_pid = |name: &str| {
        fleet
            .procs
            .iter()
            .find(|p| p.name == name)
            .map_or(0, |p| p.pid)
    };
    let mut report = vec![
        "==== scale-out proof on PostgreSQL: 2 × `rightsdesk serve` (API only) + 2 × `rightsdesk worker`, one SIGKILLed and replaced ====".to_owned(),
        format!(
            "processes: API 1 pid {} (port {}), API 2 pid {} (port {}), worker A pid {}, worker B pid {}, worker C pid {} (replacement)",
            api_pids[0], ports[0], api_pids[1], ports[1],
            worker_pid("worker A"), worker_pid("worker B"), worker_pid("worker C")
        ),
        format!(
            "requests: {REQUESTS} Idempotency-Keys -> {} requests stored ({} distinct references); filed via API 1: {}, via API 2: {}, raced on both at once: {raced_n}",
            stored.len(), references, via(0), via(1)
        ),
        format!(
            "idempotent retries: {retried_n} retried on the other API after the first answer + {raced_n} raced on both APIs = {} second answers, each with the first one's id",
            retried_n + raced_n
        ),
        format!(
            "requester verifications (code read from the received mail): API 1 {}, API 2 {}; officer actions and searches: API 1 {}, API 2 {} (started {}, assigned {}, searched {}, completed {})",
            out.verified_via[0], out.verified_via[1], out.officer_calls_via[0], out.officer_calls_via[1],
            out.started, out.assigned, out.collected, out.completed
        ),
        format!(
            "notifications: written {written}, sent {written}, received {} distinct Message-IDs in {messages} messages (repeats: {}, each one the killed worker had claimed), duplicate dedupe keys {dup_keys}",
            by_id.len(), repeated.len()
        ),
        format!("  by template: {}", show(&by_template)),
        format!(
            "  sent by: {}",
            sent_by.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        ),
        format!(
            "reminders: {reminders} deadline_reminder (to {}), none twice for a request, every open request reminded; digests {digests}",
            show(&reminder_to)
        ),
        format!(
            "  written per worker (their logs, reminders/digests/sweeps that wrote): {} (total {reminders_logged}/{digests_logged})",
            swept.iter().map(|(k, (r, d, n))| format!("{k} {r}/{d}/{n}")).collect::<Vec<_>>().join(", ")
        ),
        format!(
            "one-off jobs: {one_off_total} ({}), all done, 0 failed, one row per key; attempts per job: {}",
            show(&one_off), show(&attempts)
        ),
        format!(
            "  effects: {} searches ({}; handler runs per search: {}), {answer_events} source_answered events (one per search), {bundles} bundle rows ({}), {built} bundle_built events",
            searches.values().sum::<i64>(), show(&searches), show(&search_attempts), show(&bundle_status)
        ),
        format!(
            "  the killed worker's {builds_held} interrupted builds: {interrupted} bundle rows marked failed (interrupted) and built again, {left_building} still `building`, {} entries left in bundles/tmp",
            left_in_tmp.len()
        ),
        format!("periodic jobs: {} rows, one per kind ({}), none held after the clean stop", periodic.len(), periodic.keys().cloned().collect::<Vec<_>>().join(", ")),
        format!(
            "jobs run (each worker's rightsdesk_jobs_total, outcome ran; worker A's read just before the kill): {}",
            runs.iter()
                .map(|(w, kinds)| format!(
                    "{w} {} [{}]",
                    kinds.values().sum::<u64>(),
                    kinds.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        format!(
            "  one-off runs counted by the workers: {} (of {} jobs: none ran twice)",
            one_off_runs.iter().map(|(k, n)| format!("{k} {n}/{}", one_off[k])).collect::<Vec<_>>().join(", "),
            one_off_total
        ),
        format!(
            "  job claims seen by sampling the jobs table every 25 ms: {} (all by workers: {})",
            claims.len(),
            claims_by.iter().map(|(w, kinds)| format!("{w} {}", kinds.values().sum::<usize>())).collect::<Vec<_>>().join(", ")
        ),
        format!(
            "killed: worker A (pid {}) with SIGKILL after {} of {REQUESTS} filings, having sent {} notifications; it held {} claimed, unsent notifications and {} jobs ({}); all taken over by the others once their leases (3 s) ran out; worker C started at once",
            kill.pid, kill.filed, kill.sent_before, kill.notifications.len(), kill.jobs.len(),
            kill.jobs.iter().map(|(_, k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
        ),
        "audit verify: every request's hash chain intact".to_owned(),
        format!(
            "time: {:.1} s of work ({:.1} s of it after the kill), {:.1} s in all",
            work_time.as_secs_f64(),
            takeover_wait.as_secs_f64(),
            started.elapsed().as_secs_f64()
        ),
    ];
    report.push("====".to_owned());
    eprintln!("\n{}\n", report.join("\n"));
    conn.close().await.ok();
    sampler_conn.close().await.ok();
}
