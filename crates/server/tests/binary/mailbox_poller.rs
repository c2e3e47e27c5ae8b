//! The IMAP poller killed in the middle of a mailbox (SPEC §6): a `rightsdesk worker`
//! process reading a real Dovecot is killed with SIGKILL while it works through the
//! INBOX; a new worker goes on where the database says the first one stopped. Every
//! message is recorded once, files one request, and its sender gets one
//! acknowledgement, whatever the moment of the kill. Runs on the backend of
//! `RIGHTSDESK_TEST_BACKEND` (`scripts/test` runs it on SQLite and on PostgreSQL).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rightsdesk_core::ManualClock;
use rightsdesk_tests::imap::ImapServer;
use rightsdesk_tests::mail::{SmtpMode, SmtpServer};
use rightsdesk_tests::{TempDir, TestApp, TestDb, base_config, send_over_smtp};
use tokio::process::{Child, Command};

use crate::{count, stop};

const MESSAGES: u32 = 150;

/// A deletion request from person `n`, with a Message-ID of its own.
fn deletion(n: u32) -> Vec<u8> {
    format!(
        "From: Person {n} <person{n}@example.com>\r\nTo: privacy@example.com\r\n\
         Subject: =?UTF-8?B?6K+35Yig6Zmk5oiR55qE5Liq5Lq65L+h5oGv?=\r\n\
         Message-ID: <deletion-{n}@mail.example.com>\r\n\
         Date: Wed, 2 Dec 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         你好，我要求删除你们保存的我的全部个人信息，谢谢。（{n}）\r\n"
    )
    .into_bytes()
}

/// A `rightsdesk worker` process on `app`'s database reading `imap`'s INBOX every
/// second and sending mail to the SMTP server on `smtp_port`. Its log goes to
/// `dir/<name>.log`.
fn start_worker(
    app: &TestApp,
    imap: &ImapServer,
    smtp_port: u16,
    dir: &TempDir,
    name: &str,
) -> Child {
    let log = std::fs::File::create(dir.0.join(format!("{name}.log"))).expect("a log file");
    Command::new(env!("CARGO_BIN_EXE_rightsdesk"))
        .arg("worker")
        .envs(mailbox_env(imap))
        .current_dir(&dir.0)
        .env("RIGHTSDESK__DATABASE__URL", &app.db.url)
        .env("RIGHTSDESK__MAIL__TRANSPORT", "smtp")
        .env("RIGHTSDESK__MAIL__SMTP__HOST", "127.0.0.1")
        .env("RIGHTSDESK__MAIL__SMTP__PORT", smtp_port.to_string())
        .env("RIGHTSDESK__MAIL__SMTP__TLS", "none")
        .env("RIGHTSDESK__WORKER__LEASE_SECS", "3")
        .env("RIGHTSDESK__WORKER__POLL_INTERVAL_MS", "200")
        .env("RIGHTSDESK__WORKER__EVERY_SECS__POLL_MAILBOXES", "1")
        .env("RIGHTSDESK__OUTBOX__LEASE_SECS", "3")
        .env("RIGHTSDESK__OUTBOX__POLL_INTERVAL_MS", "200")
        .env("RIGHTSDESK__LOG__LEVEL", "warn")
        .env_remove("RIGHTSDESK_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start rightsdesk worker")
}

/// The mailbox `privacy` on `imap`, as environment variables.
fn mailbox_env(imap: &ImapServer) -> Vec<(String, String)> {
    let key = |k: &str| format!("RIGHTSDESK__INTAKE__MAILBOXES__PRIVACY__{k}");
    vec![
        (key("HOST"), "127.0.0.1".to_owned()),
        (key("PORT"), imap.port.to_string()),
        (key("SECURITY"), "plain".to_owned()),
        (key("ALLOW_PLAIN"), "true".to_owned()),
        (key("USERNAME"), imap.user.clone()),
        (key("PASSWORD"), imap.password.clone()),
        (key("BATCH_SIZE"), "20".to_owned()),
    ]
}

#[tokio::test]
async fn a_poller_killed_mid_mailbox_and_restarted_processes_every_message_exactly_once() {
    let imap = ImapServer::start().await;
    for n in 1..=MESSAGES {
        imap.deliver_raw(&deletion(n));
    }
    let smtp = SmtpServer::start(SmtpMode::Accept).await;
    // The API instance migrates the database; the workers do the reading.
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    send_over_smtp(&mut config, smtp.port);
    let app = TestApp::spawn_with(db, Arc::new(ManualClock::new(Utc::now())), config).await;
    let conn = app.db.connect().await;
    let dir = TempDir::new();

    let mut doomed = start_worker(&app, &imap, smtp.port, &dir, "doomed");
    let mut at_kill = 0;
    for _ in 0..3_000 {
        at_kill = count(&conn, "SELECT COUNT(*) AS n FROM intake_messages").await;
        if at_kill >= 30 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(at_kill >= 30, "the first worker read too little: {at_kill}");
    doomed.start_kill().expect("SIGKILL");
    doomed.wait().await.expect("the killed worker's status");
    let at_kill = count(&conn, "SELECT COUNT(*) AS n FROM intake_messages").await;
    assert!(
        at_kill < i64::from(MESSAGES),
        "killed after the whole mailbox ({at_kill}): not mid-mailbox"
    );

    let survivor = start_worker(&app, &imap, smtp.port, &dir, "survivor");
    let mut done = false;
    for _ in 0..1_200 {
        let recorded = count(&conn, "SELECT COUNT(*) AS n FROM intake_messages").await;
        let unsent = count(
            &conn,
            "SELECT COUNT(*) AS n FROM notifications WHERE status <> 'sent'",
        )
        .await;
        if recorded == i64::from(MESSAGES) && unsent == 0 {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(dir.0.join("survivor.log")).unwrap_or_default();
    assert!(
        done,
        "the second worker did not finish in two minutes:\n{log}"
    );
    // A moment more, so that a repeat would have arrived too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop(survivor).await;

    // Every message recorded once, each a request of its own.
    let n = i64::from(MESSAGES);
    assert_eq!(
        count(&conn, "SELECT COUNT(*) AS n FROM intake_messages").await,
        n
    );
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(DISTINCT message_id) AS n FROM intake_messages WHERE status = 'request'"
        )
        .await,
        n
    );
    assert_eq!(count(&conn, "SELECT COUNT(*) AS n FROM requests").await, n);
    // The server's side: every message read, none left behind.
    let stored = imap.stored(None);
    assert_eq!(stored.len(), MESSAGES as usize);
    assert!(
        stored.iter().all(|m| m.seen()),
        "every message is marked read"
    );

    // One acknowledgement per sender: as many notifications for each request, each
    // received (a message the killed worker handed over but did not mark sent may
    // come twice with the same Message-ID; the receiving side drops the repeat).
    let per_request = count(
        &conn,
        "SELECT COUNT(DISTINCT n) AS n FROM (SELECT COUNT(*) AS n FROM notifications GROUP BY request_id) t",
    )
    .await;
    assert_eq!(per_request, 1, "every request got the same notices");
    let mut by_sender: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in smtp.messages() {
        by_sender
            .entry(m.to.clone())
            .or_default()
            .insert(m.message_id);
    }
    let notices = count(&conn, "SELECT COUNT(*) AS n FROM notifications").await / n;
    for k in 1..=MESSAGES {
        let to = format!("person{k}@example.com");
        assert_eq!(
            by_sender.get(&to).map_or(0, BTreeSet::len),
            usize::try_from(notices).expect("a count"),
            "{to}"
        );
    }

    // The operator's view: where the poller stands, and a poll by hand finds nothing new.
    let rightsdesk = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rightsdesk"));
        command
            .args(args)
            .current_dir(&dir.0)
            .env("RIGHTSDESK__DATABASE__URL", &app.db.url)
            .env("RIGHTSDESK__LOG__LEVEL", "error")
            .env_remove("RIGHTSDESK_CONFIG")
            .envs(mailbox_env(&imap));
        command
    };
    let out = rightsdesk(&["intake", "status"])
        .output()
        .await
        .expect("rightsdesk intake status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let states: rightsdesk_tests::serde_json::Value =
        rightsdesk_tests::serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(states[0]["name"], "privacy");
    assert_eq!(states[0]["last_uid"], MESSAGES);
    assert_eq!(states[0]["failures"], 0);
    let out = rightsdesk(&["intake", "poll"])
        .output()
        .await
        .expect("rightsdesk intake poll");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: rightsdesk_tests::serde_json::Value =
        rightsdesk_tests::serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["polled"], 1);
    assert_eq!(report["messages"], 0);

    eprintln!("killed after {at_kill} of {MESSAGES} messages; {notices} notice(s) per request");
    conn.close().await.ok();
}
