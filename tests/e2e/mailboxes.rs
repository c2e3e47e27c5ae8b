//! The IMAP poller (`poll_mailboxes`, SPEC §6) end to end against a real Dovecot fed by
//! a real SMTP server: mail sent over SMTP becomes a request, is acknowledged, verified
//! by the sender with the code from that acknowledgement, and a reply threads onto it;
//! a restart reads nothing twice; a changed UIDVALIDITY files nothing twice; a 5 MB
//! message, one of a thousand MIME parts, one over the size limit and a malformed one
//! are each recorded and never block the mail behind them; an unreachable mailbox waits
//! while the others are read.
//!
//! The poller being killed mid-mailbox is tested with a real worker process:
//! `crates/server/tests/mailbox_poller.rs`.

use std::sync::Arc;

use rightsdesk_core::ManualClock;
use rightsdesk_core::intake::mailboxes::PollReport;
use rightsdesk_mail::imap::ImapConfig;
use rightsdesk_tests::imap::ImapServer;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{TestApp, TestDb, base_config, start_time};

/// A plain-text message from `from` (`Name <address>`).
fn mail(from: &str, message_id: &str, subject: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: privacy@example.com\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Sun, 1 Mar 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\n{extra}\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A deletion request numbered `n`, from its own sender.
fn deletion(n: u32) -> Vec<u8> {
    mail(
        &format!("Person {n} <person{n}@example.com>"),
        &format!("deletion-{n}@mail.example.com"),
        "请删除我的个人信息",
        "你好，我要求删除你们保存的我的全部个人信息，谢谢。",
        "",
    )
}

/// A service reading `mailboxes` (name, configuration); mail goes to its folder.
async fn app_reading(mailboxes: Vec<(&str, ImapConfig)>) -> TestApp {
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    for (name, mailbox) in mailboxes {
        config.intake.mailboxes.insert(name.to_owned(), mailbox);
    }
    TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await
}

async fn poll(app: &TestApp) -> PollReport {
    app.services.poll_mailboxes().await.expect("a poll")
}

/// The intake messages recorded, oldest first, as the officer API lists them in `status`.
async fn intake(app: &TestApp, token: &str, status: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/api/v1/officer/intake?status={status}&limit=200"),
            Some(token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn mail_sent_over_smtp_is_filed_acknowledged_verified_and_its_reply_threads() {
    let mut server = ImapServer::start().await;
    server.create_folder("Processed");
    let mut mailbox = server.client_config();
    mailbox.processed_folder = Some("Processed".to_owned());
    let app = app_reading(vec![("privacy", mailbox)]).await;

    server
        .send_over_smtp(&mail(
            "李雷 <li.lei@example.com>",
            "smtp-1@mail.example.com",
            "=?UTF-8?B?6K+35Yig6Zmk5oiR55qE5Liq5Lq65L+h5oGv?=", // 请删除我的个人信息
            "你好，我要求删除你们保存的我的全部个人信息，谢谢。",
            "",
        ))
        .await;
    let report = poll(&app).await;
    assert_eq!(
        report,
        PollReport {
            polled: 1,
            messages: 1,
            failed: 0
        }
    );

    // Recorded, then moved out of the INBOX into the processed folder, read.
    assert!(server.stored(None).is_empty(), "the INBOX is emptied");
    let processed = server.stored(Some("Processed"));
    assert_eq!(processed.len(), 1);
    assert!(processed[0].seen() && processed[0].contains("smtp-1@mail.example.com"));

    let (_, officer) = app.officer("wang", &["officer"]).await;
    let filed = intake(&app, &officer, "request").await;
    assert_eq!(filed.len(), 1, "{filed:?}");
    assert_eq!(filed[0]["source"], "imap:privacy");
    let id = filed[0]["request_id"]
        .as_str()
        .expect("a request")
        .to_owned();
    let detail = app.detail(&officer, &id).await;
    assert_eq!(detail["channel"], "email");
    assert_eq!(detail["kind"], "deletion");
    assert_eq!(detail["state"], "awaiting_verification");
    let reference = detail["reference"]
        .as_str()
        .expect("a reference")
        .to_owned();

    // The acknowledgement (reference, due date) and the code go back to the sender;
    // the sender's link verifies the request.
    app.deliver().await;
    let due = detail["deadline"]["due_date"].as_str().expect("a due date");
    assert!(
        app.outbox_messages()
            .iter()
            .any(|m| m.to == "li.lei@example.com"
                && m.subject.contains(&reference)
                && m.text.contains(due)),
        "an acknowledgement with the reference and the due date"
    );
    let path = app.verification_message("li.lei@example.com").link_path();
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .send()
        .await
        .expect("the link answers");
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(app.detail(&officer, &id).await["state"], "verified");

    // The officer asks a question; the requester answers it by replying over SMTP.
    for (action, body) in [
        ("start", json!({})),
        ("request_info", json!({"message": "Which account?"})),
    ] {
        let r = app.act(&officer, &id, action, body).await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
    }
    app.deliver().await;
    let question = app
        .outbox_messages()
        .into_iter()
        .rfind(|m| m.to == "li.lei@example.com" && m.text.contains("Which account?"))
        .expect("the question to the requester");
    server
        .send_over_smtp(&mail(
            "李雷 <li.lei@example.com>",
            "smtp-2@mail.example.com",
            &format!("Re: {}", question.subject),
            "账号是 li.lei@example.com。\r\n\r\n> Which account?",
            &format!(
                "In-Reply-To: <{0}>\r\nReferences: <{0}>\r\n",
                question.message_id
            ),
        ))
        .await;
    assert_eq!(poll(&app).await.messages, 1);
    let detail = app.detail(&officer, &id).await;
    assert_eq!(detail["state"], "in_progress", "the answer runs the clock");
    let messages = detail["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[1]["status"], "reply");
    assert!(
        messages[1]["body"]
            .as_str()
            .is_some_and(|b| b.contains("账号是")),
        "{messages:?}"
    );
    assert_eq!(app.count("requests").await, 1, "a reply is not a request");

    // A restarted service reads nothing again: the cursor is in the database.
    let app = app.restart().await;
    assert_eq!(poll(&app).await.messages, 0);
    assert_eq!(app.count("intake_messages").await, 2);
    let states = app.services.mailbox_states().await.expect("states");
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].last_uid, Some(2));
    assert_eq!(states[0].failures, 0);
}

#[tokio::test]
async fn a_changed_uidvalidity_reads_the_mailbox_again_and_files_nothing_twice() {
    let mut server = ImapServer::start().await;
    let app = app_reading(vec![("privacy", server.client_config())]).await;
    for n in 1..=3 {
        server.deliver_raw(&deletion(n));
    }
    assert_eq!(poll(&app).await.messages, 3);
    assert_eq!(app.count("requests").await, 3);
    assert!(
        server.stored(None).iter().all(|m| m.seen()),
        "processed mail stays in the INBOX, marked read"
    );
    let before = app.services.mailbox_states().await.expect("states")[0].clone();

    // The server renumbers the mailbox; one more message arrives meanwhile.
    server.change_uidvalidity().await;
    server.deliver_raw(&deletion(4));
    let report = poll(&app).await;
    assert_eq!(report.failed, 0);
    assert_eq!(report.messages, 4, "every message is read again");

    let after = app.services.mailbox_states().await.expect("states")[0].clone();
    assert_ne!(after.uid_validity, before.uid_validity);
    assert_eq!(after.last_uid, Some(4));
    assert_eq!(app.count("requests").await, 4, "one new request only");
    assert_eq!(app.count("intake_messages").await, 4, "each recorded once");
    app.deliver().await;
    for n in 1..=4 {
        let to = format!("person{n}@example.com");
        let acks = app
            .outbox_messages()
            .into_iter()
            .filter(|m| m.to == to && m.text.contains("/verify/"))
            .count();
        assert_eq!(acks, 1, "{to} is acknowledged once");
    }
    assert_eq!(poll(&app).await.messages, 0);
}

/// A request with a PDF of `pdf_bytes` attached (base64, lines of 76).
fn with_pdf(n: u32, pdf_bytes: usize) -> Vec<u8> {
    use base64::Engine;
    let mut pdf = b"%PDF-1.4\n".to_vec();
    pdf.resize(pdf_bytes, b'x');
    let encoded = base64::engine::general_purpose::STANDARD.encode(&pdf);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "From: Big Sender <big{n}@example.com>\r\nTo: privacy@example.com\r\n\
         Subject: Please delete my personal data\r\nMessage-ID: <big-{n}@mail.example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Please delete all personal data you hold about me. My ID card is attached.\r\n\
         --b\r\nContent-Type: application/pdf; name=\"id-card.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"id-card.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

/// A request for a copy in a message of `parts` MIME parts: the text, then small PNG
/// attachments.
fn many_parts(parts: usize) -> Vec<u8> {
    let mut raw = String::from(
        "From: Many Parts <parts@example.com>\r\nTo: privacy@example.com\r\n\
         Subject: Request a copy of my personal data\r\nMessage-ID: <parts-1@mail.example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n\
         --p\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Please send me a copy of my personal data.\r\n",
    );
    // The smallest PNG signature and header: enough for the evidence type check.
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    for i in 1..parts {
        raw.push_str(&format!(
            "--p\r\nContent-Type: image/png; name=\"scan-{i}.png\"\r\n\
             Content-Disposition: attachment; filename=\"scan-{i}.png\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{png}\r\n"
        ));
    }
    raw.push_str("--p--\r\n");
    raw.into_bytes()
}

#[tokio::test]
async fn big_many_part_oversized_and_malformed_mail_is_recorded_and_never_blocks_the_mailbox() {
    let server = ImapServer::start().await;
    let mut mailbox = server.client_config();
    mailbox.max_message_bytes = 8 * 1024 * 1024;
    let app = app_reading(vec![("privacy", mailbox)]).await;

    let big = with_pdf(1, 3_700_000);
    assert!(
        (5_000_000..5_300_000).contains(&big.len()),
        "a 5 MB message: {}",
        big.len()
    );
    let parts = many_parts(1_000);
    let oversized = with_pdf(2, 6_500_000); // ~8.8 MB: over the mailbox's limit
    assert!(oversized.len() > 8 * 1024 * 1024);
    let malformed = include_bytes!("../fixtures/mail/malformed_no_headers.eml");
    for raw in [&big, &parts, &oversized, &malformed.to_vec(), &deletion(7)] {
        server.deliver_raw(raw);
    }
    let report = poll(&app).await;
    assert_eq!(report.failed, 0, "no message fails the poll");
    assert_eq!(report.messages, 5);
    assert!(
        server.stored(None).iter().all(|m| m.seen()),
        "every message is processed, the oversized one too"
    );

    let (_, officer) = app.officer("wang", &["officer"]).await;
    let filed = intake(&app, &officer, "request").await;
    let failed = intake(&app, &officer, "failed").await;
    let triage = intake(&app, &officer, "triage").await;
    let from = |items: &[Value], address: &str| {
        items
            .iter()
            .find(|m| m["from_address"] == address)
            .cloned()
            .unwrap_or_else(|| panic!("{address} in {items:?}"))
    };

    // The 5 MB message: filed, its PDF kept as evidence.
    let big = from(&filed, "big1@example.com");
    let id = big["request_id"].as_str().expect("a request");
    let detail = app.detail(&officer, id).await;
    assert_eq!(detail["kind"], "deletion");
    let evidence = detail["evidence"].as_array().expect("evidence");
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    assert_eq!(evidence[0]["file_name"], "id-card.pdf");

    // A thousand parts: filed; what is kept stays within the attachment and evidence
    // limits, and the message lists what was dropped.
    let parts = from(&filed, "parts@example.com");
    let listed = parts["attachments"].as_array().expect("attachments");
    assert_eq!(listed.len(), 999, "every attachment is listed");
    let kept = listed.iter().filter(|a| a.get("dropped").is_none()).count();
    assert_eq!(kept, 20, "intake.limits.max_attachments");
    let id = parts["request_id"].as_str().expect("a request");
    let evidence = app.detail(&officer, id).await["evidence"]
        .as_array()
        .expect("evidence")
        .len();
    assert_eq!(evidence, 10, "evidence.max_files_per_request");

    // Over the mailbox's size limit: recorded as failed, never downloaded.
    let too_large: Vec<&Value> = failed
        .iter()
        .filter(|m| m["reason"] == "too_large")
        .collect();
    assert_eq!(too_large.len(), 1, "{failed:?}");
    assert_eq!(
        too_large[0]["raw_size"].as_i64(),
        i64::try_from(oversized.len()).ok()
    );
    assert!(too_large[0]["from_address"].is_null(), "never read");

    // The malformed one is recorded as failed with its reason, and the message after
    // it is filed as usual.
    let mut reasons: Vec<&str> = failed.iter().filter_map(|m| m["reason"].as_str()).collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["malformed", "too_large"]);
    assert!(triage.is_empty(), "{triage:?}");
    from(&filed, "person7@example.com");
    assert_eq!(app.count("requests").await, 3);
}

#[tokio::test]
async fn an_unreachable_mailbox_waits_longer_each_time_while_the_others_are_read() {
    let server = ImapServer::start().await;
    let mut down = ImapServer::start().await;
    let down_config = down.client_config();
    down.stop().await;
    let app = app_reading(vec![
        ("privacy", server.client_config()),
        ("sales", down_config),
    ])
    .await;
    server.deliver_raw(&deletion(1));

    let report = poll(&app).await;
    assert_eq!(
        report,
        PollReport {
            polled: 2,
            messages: 1,
            failed: 1
        }
    );
    let state = |states: &[rightsdesk_core::intake::mailboxes::MailboxState], name: &str| {
        states
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .expect("a state")
    };
    let states = app.services.mailbox_states().await.expect("states");
    let sales = state(&states, "sales");
    assert_eq!(sales.failures, 1);
    assert_eq!(
        sales.next_poll_at,
        Some(app.services.now() + chrono::Duration::seconds(30))
    );
    assert!(sales.last_error.is_some());
    assert_eq!(state(&states, "privacy").failures, 0);

    // Within the wait it is not tried; after it, it is, and waits twice as long.
    server.deliver_raw(&deletion(2));
    assert_eq!(
        poll(&app).await,
        PollReport {
            polled: 1,
            messages: 1,
            failed: 0
        }
    );
    app.clock.advance(chrono::Duration::seconds(31));
    assert_eq!(poll(&app).await.failed, 1);
    let sales = state(
        &app.services.mailbox_states().await.expect("states"),
        "sales",
    );
    assert_eq!(sales.failures, 2);
    assert_eq!(
        sales.next_poll_at,
        Some(app.services.now() + chrono::Duration::seconds(60))
    );

    // Back up: its mail is read and the failures are cleared.
    down.restart().await;
    down.deliver_raw(&deletion(3));
    app.clock.advance(chrono::Duration::seconds(61));
    let report = poll(&app).await;
    assert_eq!(report.failed, 0);
    assert_eq!(report.messages, 1);
    let sales = state(
        &app.services.mailbox_states().await.expect("states"),
        "sales",
    );
    assert_eq!(sales.failures, 0);
    assert!(sales.last_error.is_none());
    assert_eq!(app.count("requests").await, 3);
}

#[tokio::test]
async fn a_poll_that_outlasts_a_third_of_its_lease_renews_it_without_stalling() {
    // The worker renews a running job's lease every third of `worker.lease_secs`. It once
    // did so inside the job's own task, which stopped polling the job meanwhile: a poll
    // suspended while it held SQLite's write lock then never let the renewal through, and
    // both waited forever. 2,000 messages take several renewals (lease 3 s: one a
    // second); with the old code this test hung at the timeout (each renewal has a fair
    // chance of landing inside a write).
    let server = ImapServer::start().await;
    for n in 1..=2_000 {
        server.deliver_raw(&deletion(n));
    }
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config
        .intake
        .mailboxes
        .insert("privacy".to_owned(), server.client_config());
    config.worker.lease_secs = 3;
    let app = TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await;
    app.services
        .schedule_periodic_jobs()
        .await
        .expect("the periodic jobs");
    let started = std::time::Instant::now();
    tokio::time::timeout(
        std::time::Duration::from_secs(120),
        app.services.run_due_jobs(),
    )
    .await
    .expect("the jobs finish: no deadlock")
    .expect("the jobs run");
    assert_eq!(app.count("intake_messages").await, 2_000);
    eprintln!(
        "2,000 messages polled as a job in {:?}, lease renewed every second",
        started.elapsed()
    );
}
