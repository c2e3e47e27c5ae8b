//! Two `rightsdesk worker` processes (this package's binary) on one database, beside an
//! API instance without background work (SPEC §13): a few hundred requests have a
//! reminder due; every reminder reaches the real SMTP server exactly once, and a worker
//! killed with SIGKILL in the middle of its work loses nothing: what it held is taken
//! over when its leases run out. Runs on the backend of `RIGHTSDESK_TEST_BACKEND`
//! (`scripts/test` runs it on SQLite and on PostgreSQL).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rightsdesk_core::ManualClock;
use rightsdesk_tests::mail::{SmtpMode, SmtpServer};
use rightsdesk_tests::serde_json::json;
use rightsdesk_tests::{
    TempDir, TestApp, TestDb, base_config, filing, send_over_smtp, valid_details,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tokio::process::{Child, Command};

use crate::{count, stop};

const REQUESTS: usize = 300;
const TEAM: &str = "team@example.com";

/// The API instance with `REQUESTS` requests filed eight days ago (real time): under the
/// `pipl` pack each is due in seven days, so the 7-day reminder is due today.
async fn api_with_requests_due_in_a_week(smtp_port: u16) -> TestApp {
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    send_over_smtp(&mut config, smtp_port);
    let clock = Arc::new(ManualClock::new(Utc::now() - chrono::Duration::days(8)));
    let app = TestApp::spawn_with(db, clock, config).await;
    for chunk in (0..REQUESTS).collect::<Vec<_>>().chunks(16) {
        let filings = chunk.iter().map(|i| {
            let mut body = filing("access", valid_details("access"));
            body["requester"]["email"] = json!(format!("person{i}@example.com"));
            body["requester"]["phone"] = json!(null);
            let app = &app;
            async move { app.post("/api/v1/requests", None, &body).await }
        });
        for r in futures_util::future::join_all(filings).await {
            assert_eq!(r.status.as_u16(), 201, "{:?}", r.body);
        }
    }
    app
}

/// A `rightsdesk worker` process on `app`'s database, sending to the SMTP server on
/// `smtp_port`, with short leases and a sweep every second. Its log goes to
/// `dir/<name>.log`.
fn start_worker(app: &TestApp, smtp_port: u16, dir: &TempDir, name: &str) -> Child {
    let log = std::fs::File::create(dir.0.join(format!("{name}.log"))).expect("a log file");
    Command::new(env!("CARGO_BIN_EXE_rightsdesk"))
        .arg("worker")
        .current_dir(&dir.0)
        .env("RIGHTSDESK__DATABASE__URL", &app.db.url)
        .env("RIGHTSDESK__MAIL__TRANSPORT", "smtp")
        .env("RIGHTSDESK__MAIL__SMTP__HOST", "127.0.0.1")
        .env("RIGHTSDESK__MAIL__SMTP__PORT", smtp_port.to_string())
        .env("RIGHTSDESK__MAIL__SMTP__TLS", "none")
        .env("RIGHTSDESK__REMINDERS__TEAM_EMAIL", TEAM)
        .env("RIGHTSDESK__WORKER__LEASE_SECS", "3")
        .env("RIGHTSDESK__WORKER__POLL_INTERVAL_MS", "200")
        .env("RIGHTSDESK__WORKER__EVERY_SECS__SWEEP_DEADLINES", "1")
        .env("RIGHTSDESK__OUTBOX__LEASE_SECS", "3")
        .env("RIGHTSDESK__OUTBOX__POLL_INTERVAL_MS", "200")
        .env("RIGHTSDESK__OUTBOX__BATCH_SIZE", "50")
        .env("RIGHTSDESK__LOG__LEVEL", "warn")
        .env_remove("RIGHTSDESK_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start rightsdesk worker")
}

async fn ids(conn: &DatabaseConnection, sql: &str) -> BTreeSet<String> {
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .expect("an id query")
        .iter()
        .map(|row| {
            row.try_get::<uuid::Uuid>("", "id")
                .expect("an id")
                .to_string()
        })
        .collect()
}

/// Waits until every reminder is written and no notification is left to send.
async fn until_all_sent(conn: &DatabaseConnection) {
    for _ in 0..600 {
        let reminders = count(
            conn,
            "SELECT COUNT(*) AS n FROM notifications WHERE template = 'deadline_reminder'",
        )
        .await;
        let pending = count(
            conn,
            "SELECT COUNT(*) AS n FROM notifications WHERE status <> 'sent'",
        )
        .await;
        if reminders == REQUESTS as i64 && pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the workers did not send everything within a minute");
}

/// The Message-ID (its local part, the notification id) of every message received, and
/// how often each came.
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

#[tokio::test]
async fn two_worker_processes_send_every_reminder_exactly_once() {
    let smtp = SmtpServer::start(SmtpMode::Accept).await;
    let app = api_with_requests_due_in_a_week(smtp.port).await;
    let dir = TempDir::new();
    let first = start_worker(&app, smtp.port, &dir, "first");
    let second = start_worker(&app, smtp.port, &dir, "second");
    let conn = app.db.connect().await;
    until_all_sent(&conn).await;
    // A moment more, so that a duplicate would have arrived too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop(first).await;
    stop(second).await;

    let sent = ids(&conn, "SELECT id FROM notifications").await;
    let by_id = received(&smtp);
    assert_eq!(by_id.keys().cloned().collect::<BTreeSet<_>>(), sent);
    let twice: Vec<_> = by_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let reminders = smtp.messages().into_iter().filter(|m| m.to == TEAM).count();
    assert_eq!(reminders, REQUESTS, "one reminder per request");
    // Both workers did part of the work.
    let senders = count(
        &conn,
        "SELECT COUNT(DISTINCT leased_by) AS n FROM notifications",
    )
    .await;
    assert_eq!(senders, 2);

    // `rightsdesk jobs list` shows the periodic jobs, none held after a clean stop.
    let out = Command::new(env!("CARGO_BIN_EXE_rightsdesk"))
        .args(["jobs", "list"])
        .current_dir(&dir.0)
        .env("RIGHTSDESK__DATABASE__URL", &app.db.url)
        .env("RIGHTSDESK__LOG__LEVEL", "error")
        .env_remove("RIGHTSDESK_CONFIG")
        .output()
        .await
        .expect("rightsdesk jobs list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jobs: Vec<rightsdesk_tests::serde_json::Value> =
        rightsdesk_tests::serde_json::from_slice(&out.stdout).expect("a JSON list");
    let mut kinds: Vec<&str> = jobs.iter().filter_map(|j| j["kind"].as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "check_calendar",
            "end_restrictions",
            "expire_unverified",
            "purge_bundles",
            "purge_evidence",
            "purge_jobs",
            "sweep_deadlines"
        ]
    );
    assert!(
        jobs.iter()
            .all(|j| j["leased_by"].is_null() && j["status"] == "pending")
    );
    assert!(
        jobs.iter()
            .any(|j| j["kind"] == "sweep_deadlines" && j["every_secs"] == 1)
    );
    conn.close().await.ok();
}

#[tokio::test]
async fn a_worker_killed_in_the_middle_of_its_work_loses_nothing() {
    let smtp = SmtpServer::start(SmtpMode::Accept).await;
    let app = api_with_requests_due_in_a_week(smtp.port).await;
    let dir = TempDir::new();
    let mut doomed = start_worker(&app, smtp.port, &dir, "doomed");
    let survivor = start_worker(&app, smtp.port, &dir, "survivor");
    let conn = app.db.connect().await;
    let pid = doomed.id().expect("a running worker");
    let held_by_doomed = format!("leased_by LIKE '%:{pid}:%'");
    // Kill it while it holds notifications it has not marked sent.
    let mut held = BTreeSet::new();
    for _ in 0..1_000 {
        held = ids(
            &conn,
            &format!("SELECT id FROM notifications WHERE status = 'pending' AND {held_by_doomed}"),
        )
        .await;
        if !held.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!held.is_empty(), "the worker never held a notification");
    doomed.start_kill().expect("SIGKILL");
    doomed.wait().await.expect("the killed worker's status");
    let jobs_held = count(
        &conn,
        &format!(
            "SELECT COUNT(*) AS n FROM jobs WHERE lease_until IS NOT NULL AND {held_by_doomed}"
        ),
    )
    .await;

    until_all_sent(&conn).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Its jobs were taken over after their lease.
    for _ in 0..100 {
        let still = count(
            &conn,
            &format!(
                "SELECT COUNT(*) AS n FROM jobs WHERE lease_until IS NOT NULL AND {held_by_doomed}"
            ),
        )
        .await;
        if still == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(
            &conn,
            &format!(
                "SELECT COUNT(*) AS n FROM jobs WHERE lease_until IS NOT NULL AND {held_by_doomed}"
            ),
        )
        .await,
        0,
        "the killed worker still holds jobs (it held {jobs_held} when killed)"
    );
    stop(survivor).await;

    // Nothing lost: every notification reached the server.
    let sent = ids(&conn, "SELECT id FROM notifications").await;
    let by_id = received(&smtp);
    assert_eq!(by_id.keys().cloned().collect::<BTreeSet<_>>(), sent);
    // A message the killed worker had handed to the server but not yet marked sent goes
    // out again, with the same Message-ID (the receiving side drops the repeat); no other
    // message comes twice.
    let twice: BTreeSet<String> = by_id
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        twice.is_subset(&held),
        "repeated though the killed worker did not hold them: {:?}",
        twice.difference(&held).collect::<Vec<_>>()
    );
    assert!(by_id.values().all(|n| *n <= 2));
    eprintln!(
        "killed holding {} notifications and {jobs_held} jobs; {} were sent twice",
        held.len(),
        twice.len()
    );
    let reminders = count(
        &conn,
        "SELECT COUNT(*) AS n FROM notifications WHERE template = 'deadline_reminder'",
    )
    .await;
    assert_eq!(
        reminders, REQUESTS as i64,
        "one reminder per request, written once"
    );
    conn.close().await.ok();
}
