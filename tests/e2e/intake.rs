//! Email intake (SPEC §6) through the signed raw-MIME endpoint: a confident message
//! files a request whose acknowledgement (reference, due date, code) goes back to the
//! sender; a reply threads onto its request and runs a paused clock again; machines'
//! mail is never answered; a bounce marks our notification failed; the rest waits in
//! triage for an officer; every message is recorded once.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use rightsdesk_core::ManualClock;
use rightsdesk_core::jobs::{Job, JobHandler};
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{Reply, TestApp, TestDb, base_config, start_time};
use sha2::Sha256;

const SECRET: &str = "an-inbound-hook-secret-of-at-least-32-bytes";

pub(crate) async fn app() -> TestApp {
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.intake.hook_secret = Some(SECRET.to_owned());
    TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await
}

fn sign(timestamp: &str, body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("a key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post_signed(app: &TestApp, raw: &[u8], timestamp: i64, secret: &str) -> Reply {
    let ts = timestamp.to_string();
    let res = app
        .client
        .post(format!("{}/api/v1/intake/messages", app.base))
        .header("Content-Type", "message/rfc822")
        .header("X-Rightsdesk-Timestamp", &ts)
        .header("X-Rightsdesk-Signature", sign(&ts, raw, secret))
        .body(raw.to_vec())
        .send()
        .await
        .expect("the service answers");
    TestApp::reply(res).await
}

/// Posts `raw`, signed now, and returns the outcome.
pub(crate) async fn ingest(app: &TestApp, raw: &str) -> Value {
    let r = post_signed(app, raw.as_bytes(), app.services.now().timestamp(), SECRET).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

pub(crate) fn mail(from: &str, message_id: &str, subject: &str, body: &str, extra: &str) -> String {
    format!(
        "From: {from}\r\nTo: privacy@example.com\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Sun, 1 Mar 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\n{extra}\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
}

#[tokio::test]
async fn a_deletion_email_files_a_request_the_sender_verifies_from_the_acknowledgement() {
    let app = app().await;
    let raw = mail(
        "李雷 <li.lei@example.com>",
        "req-1@mail.example.com",
        "请删除我的个人信息",
        "你好，我要求删除你们保存的我的全部个人信息，谢谢。",
        "",
    );
    let outcome = ingest(&app, &raw).await;
    assert_eq!(outcome["status"], "request", "{outcome}");
    assert_eq!(outcome["kind"], "deletion");
    assert_eq!(outcome["duplicate"], false);
    let reference = outcome["reference"]
        .as_str()
        .expect("a reference")
        .to_owned();
    let id = outcome["request_id"]
        .as_str()
        .expect("a request")
        .to_owned();

    let (_, officer) = app.officer("wang", &["officer"]).await;
    let detail = app.detail(&officer, &id).await;
    assert_eq!(detail["channel"], "email");
    assert_eq!(detail["kind"], "deletion");
    assert_eq!(detail["state"], "awaiting_verification");
    assert_eq!(detail["requester"]["email"], "li.lei@example.com");
    assert_eq!(detail["requester"]["name"], "李雷");

    // The acknowledgement names the reference and the due date; the code goes to the
    // sender, whose link verifies the request.
    app.deliver().await;
    let to_sender: Vec<_> = app
        .outbox_messages()
        .into_iter()
        .filter(|m| m.to == "li.lei@example.com")
        .collect();
    assert!(
        to_sender.iter().any(|m| m.subject.contains(&reference)
            && m.text
                .contains(detail["deadline"]["due_date"].as_str().expect("a due date"))),
        "{to_sender:?}"
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

    // The same message again (a second mailbox, a re-post) changes nothing.
    app.clock.advance(chrono::Duration::seconds(1));
    let again = ingest(&app, &raw).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["request_id"], outcome["request_id"]);
    assert_eq!(app.count("requests").await, 1);
    assert_eq!(app.count("intake_messages").await, 1);
}

#[tokio::test]
async fn a_reply_threads_onto_its_request_and_runs_the_paused_clock_again() {
    let app = app().await;
    let filed = ingest(
        &app,
        &mail(
            "Han Meimei <han@example.com>",
            "req-2@mail.example.com",
            "Please delete my account data",
            "Hello, please delete all personal data you hold about me.",
            "",
        ),
    )
    .await;
    assert_eq!(filed["status"], "request", "{filed}");
    let id = filed["request_id"].as_str().expect("a request").to_owned();
    let reference = filed["reference"].as_str().expect("a reference").to_owned();
    let (_, officer) = app.officer("wang", &["officer"]).await;
    for (action, body) in [
        ("verify", json!({"method": "call_back"})),
        ("start", json!({})),
        ("request_info", json!({"message": "Which account?"})),
    ] {
        let r = app.act(&officer, &id, action, body).await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
    }
    assert_eq!(
        app.detail(&officer, &id).await["state"],
        "awaiting_requester"
    );
    app.deliver().await;
    let question = app
        .outbox_messages()
        .into_iter()
        .rfind(|m| m.to == "han@example.com")
        .expect("the question to the requester");

    // Two days later the requester answers the question.
    app.clock.advance(chrono::Duration::days(2));
    let reply = mail(
        "Han Meimei <han@example.com>",
        "reply-1@mail.example.com",
        &format!("Re: {}", question.subject),
        "The account is han@example.com.\r\n\r\n> Which account?",
        &format!("In-Reply-To: <{}>\r\n", question.message_id),
    );
    let outcome = ingest(&app, &reply).await;
    assert_eq!(outcome["status"], "reply", "{outcome}");
    let officer = app.login("wang", rightsdesk_tests::OFFICER_PASSWORD).await;
    assert_eq!(outcome["request_id"], json!(id));
    assert_eq!(outcome["reference"], json!(reference));
    let detail = app.detail(&officer, &id).await;
    assert_eq!(detail["state"], "in_progress", "the clock runs again");
    let events: Vec<&str> = detail["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(events.contains(&"message_received"), "{events:?}");
    assert!(events.contains(&"requester_replied"), "{events:?}");
    let messages = detail["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "the filing email and the reply");
    assert_eq!(messages[1]["status"], "reply");
    assert!(
        messages[1]["body"]
            .as_str()
            .is_some_and(|b| b.contains("The account is han@example.com")),
        "{messages:?}"
    );
    assert_eq!(app.count("requests").await, 1, "a reply is not a request");

    // The reference in the subject threads as well, but only from the requester.
    let other = ingest(
        &app,
        &mail(
            "someone@else.example.com",
            "reply-2@mail.example.com",
            &format!("About {reference}"),
            "I want to know about this request.",
            "",
        ),
    )
    .await;
    assert_eq!(other["status"], "triage", "{other}");
    assert_eq!(other["reason"], "sender_is_not_the_requester");
}

/// A reply to a fee quote (SPEC §8) is recorded for the officer, but it is not taken
/// as the acceptance: the clock stays stopped until the requester accepts with their
/// token, or the officer resumes.
#[tokio::test]
async fn a_reply_to_a_fee_quote_is_recorded_but_does_not_accept_the_fee() {
    let app = app().await;
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let filed = app
            .file("copy", rightsdesk_tests::valid_details("copy"))
            .await;
        let id = filed["id"].as_str().expect("an id").to_owned();
        let r = app
            .act(&officer, &id, "verify", json!({"method": "call_back"}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        ids.push(id);
    }
    let id = &ids[1];
    let r = app
        .act(
            &officer,
            id,
            "quote_fee",
            json!({"amount": "20", "explanation": "the second copy within a week"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.deliver().await;
    let quote = app
        .outbox_messages()
        .into_iter()
        .find(|m| m.to == "li.lei@example.com" && m.text.contains("20.00 CNY"))
        .expect("the fee notice");

    let reply = mail(
        "李雷 <li.lei@example.com>",
        "fee-reply-1@mail.example.com",
        &format!("Re: {}", quote.subject),
        "这个费用太高了，能否减免？",
        &format!("In-Reply-To: <{}>\r\n", quote.message_id),
    );
    let outcome = ingest(&app, &reply).await;
    assert_eq!(outcome["status"], "reply", "{outcome}");
    assert_eq!(outcome["request_id"], json!(id));
    let detail = app.detail(&officer, id).await;
    assert_eq!(detail["state"], "awaiting_requester");
    assert_eq!(detail["fee_due"]["amount"], "20.00");
    let events: Vec<&str> = detail["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(events.contains(&"message_received"), "{events:?}");
    assert!(!events.contains(&"requester_replied"), "{events:?}");
}

#[tokio::test]
async fn machines_mail_is_never_answered_and_a_bounce_marks_our_notification_failed() {
    let app = app().await;
    let filed = ingest(
        &app,
        &mail(
            "gone@example.com",
            "req-3@mail.example.com",
            "Delete my data",
            "Please erase my personal data.",
            "",
        ),
    )
    .await;
    let id = filed["request_id"].as_str().expect("a request").to_owned();
    app.deliver().await;
    let sent = app.outbox_messages();
    let acknowledgement = sent
        .iter()
        .find(|m| m.to == "gone@example.com")
        .expect("an acknowledgement");
    let before = sent.len();

    let out_of_office = mail(
        "colleague@example.com",
        "ooo-1@mail.example.com",
        "Automatic reply: Delete my data",
        "I am out of the office until Monday.",
        "Auto-Submitted: auto-replied\r\n",
    );
    let o = ingest(&app, &out_of_office).await;
    assert_eq!(o["status"], "ignored", "{o}");
    let list = mail(
        "news@lists.example.com",
        "list-1@lists.example.com",
        "Please delete: weekly digest",
        "Unsubscribe at any time.",
        "List-Id: <weekly.lists.example.com>\r\nPrecedence: list\r\n",
    );
    assert_eq!(ingest(&app, &list).await["status"], "ignored");

    let bounce = format!(
        "From: MAILER-DAEMON@mx.example.com\r\nTo: privacy@example.com\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce-1@mx.example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThe mail system could not deliver the message.\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n\
         Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{}>\r\nSubject: x\r\n\r\n--b--\r\n",
        acknowledgement.message_id
    );
    let b = ingest(&app, &bounce).await;
    assert_eq!(b["status"], "ignored", "{b}");
    assert_eq!(b["reason"], "bounce");

    app.deliver().await;
    assert_eq!(app.outbox_messages().len(), before, "nothing answered them");
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let notifications = app.detail(&officer, &id).await["notifications"].clone();
    let failed = notifications
        .as_array()
        .expect("notifications")
        .iter()
        .filter(|n| n["status"] == "failed")
        .count();
    assert_eq!(failed, 1, "{notifications}");
    assert_eq!(app.count("requests").await, 1);
}

#[tokio::test]
async fn unclear_mail_waits_in_triage_until_an_officer_converts_or_dismisses_it() {
    let app = app().await;
    let unclear = ingest(
        &app,
        &mail(
            "Zhang Wei <zhang@example.com>",
            "t-1@mail.example.com",
            "关于我的账户",
            "你好，我想问一下我的账户的事情。",
            "",
        ),
    )
    .await;
    assert_eq!(unclear["status"], "triage", "{unclear}");
    let portability = ingest(
        &app,
        &mail(
            "Zhang Wei <zhang@example.com>",
            "t-2@mail.example.com",
            "请把我的数据转移给另一家公司",
            "请将我的个人信息转移至 B 公司，邮箱 dpo@b.example.com。",
            "",
        ),
    )
    .await;
    assert_eq!(portability["status"], "triage", "{portability}");
    assert_eq!(portability["kind"], "portability");
    assert_eq!(portability["reason"], "needs_details");
    assert_eq!(app.count("requests").await, 0);

    let (_, officer) = app.officer("wang", &["officer"]).await;
    let bad = app
        .get("/api/v1/officer/intake?status=everything", Some(&officer))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["code"], "invalid_query");
    let lane = app.get("/api/v1/officer/intake", Some(&officer)).await;
    assert_eq!(lane.status, StatusCode::OK);
    let items = lane.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["subject"], "关于我的账户");

    // Converted with the details the officer read out of it.
    let p_id = portability["id"].as_str().expect("an id");
    let converted = app
        .post(
            &format!("/api/v1/officer/intake/{p_id}/convert"),
            Some(&officer),
            &json!({
                "kind": "portability",
                "details": {"recipient": {"name": "B 公司", "email": "dpo@b.example.com"}},
                "requester_name": "张伟"
            }),
        )
        .await;
    assert_eq!(converted.status, StatusCode::OK, "{:?}", converted.body);
    assert_eq!(converted.body["status"], "converted");
    let request_id = converted.body["request_id"].as_str().expect("a request");
    let detail = app.detail(&officer, request_id).await;
    assert_eq!(detail["kind"], "portability");
    assert_eq!(detail["channel"], "email");
    assert_eq!(detail["requester"]["email"], "zhang@example.com");
    app.deliver().await;
    assert!(
        app.outbox_messages()
            .iter()
            .any(|m| m.to == "zhang@example.com"
                && m.subject
                    .contains(detail["reference"].as_str().expect("a reference"))),
        "the acknowledgement goes to the sender"
    );
    // Settled once.
    let again = app
        .post(
            &format!("/api/v1/officer/intake/{p_id}/convert"),
            Some(&officer),
            &json!({"kind": "access"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["code"], "intake_already_settled");

    // Dismissed with a reason; a reason is required.
    let u_id = unclear["id"].as_str().expect("an id");
    let path = format!("/api/v1/officer/intake/{u_id}/dismiss");
    let bad = app.post(&path, Some(&officer), &json!({})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let ok = app
        .post(
            &path,
            Some(&officer),
            &json!({"reason": "a question, answered by phone"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["status"], "dismissed");
    let lane = app.get("/api/v1/officer/intake", Some(&officer)).await;
    assert_eq!(lane.body["items"], json!([]));
    assert_eq!(app.count("intake_blobs").await, 0, "raw messages destroyed");
    assert_eq!(app.count("requests").await, 1);
}

#[tokio::test]
async fn an_officer_added_rule_classifies_the_next_message() {
    let app = app().await;
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let raw = |n: u32| {
        mail(
            "reader@example.com",
            &format!("rule-{n}@mail.example.com"),
            "Data subject request form",
            "Form 7B: please action my form.",
            "",
        )
    };
    assert_eq!(ingest(&app, &raw(1)).await["status"], "triage");
    let r = app
        .post(
            "/api/v1/officer/intake/rules",
            Some(&officer),
            &json!({"kind": "access", "terms": ["form 7b"], "field": "any", "weight": 3.0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let rule_id = r.body["id"].as_str().expect("an id").to_owned();
    let rules = app
        .get("/api/v1/officer/intake/rules", Some(&officer))
        .await;
    assert_eq!(rules.body["added"][0]["terms"], json!(["form 7b"]));
    let o = ingest(&app, &raw(2)).await;
    assert_eq!(
        (o["status"].clone(), o["kind"].clone()),
        (json!("request"), json!("access")),
        "{o}"
    );

    let bad = app
        .post(
            "/api/v1/officer/intake/rules",
            Some(&officer),
            &json!({"kind": "nonsense", "terms": ["x"]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let gone = app
        .request(
            rightsdesk_tests::reqwest::Method::DELETE,
            &format!("/api/v1/officer/intake/rules/{rule_id}"),
            Some(&officer),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(ingest(&app, &raw(3)).await["status"], "triage");
}

#[tokio::test]
async fn unsigned_stale_replayed_and_unreadable_posts() {
    let app = app().await;
    let raw = mail(
        "x@example.com",
        "sig-1@mail.example.com",
        "Delete my data",
        "Please delete my data.",
        "",
    );
    let now = app.services.now().timestamp();
    let wrong = post_signed(
        &app,
        raw.as_bytes(),
        now,
        "another-secret-of-at-least-32-bytes!!",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["code"], "invalid_signature");
    let stale = post_signed(&app, raw.as_bytes(), now - 3600, SECRET).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    let unsigned = app
        .client
        .post(format!("{}/api/v1/intake/messages", app.base))
        .body(raw.clone())
        .send()
        .await
        .expect("an answer");
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.count("intake_messages").await, 0, "nothing stored");

    let first = post_signed(&app, raw.as_bytes(), now, SECRET).await;
    assert_eq!(first.status, StatusCode::OK);
    let replay = post_signed(&app, raw.as_bytes(), now, SECRET).await;
    assert_eq!(replay.status, StatusCode::CONFLICT);
    assert_eq!(replay.body["code"], "replayed_message");

    // Bytes that are no message are recorded as failed, with the reason.
    let junk = ingest(&app, "\u{0}\u{1}\u{2} not a message").await;
    assert_eq!(junk["status"], "failed", "{junk}");
    assert!(junk["reason"].is_string());
    assert_eq!(app.count("intake_messages").await, 2);

    // Once a signature could no longer be replayed (its timestamp is out of tolerance),
    // the hourly housekeeping forgets it; a recent one is kept.
    assert_eq!(app.count("intake_hook_signatures").await, 2);
    app.clock.advance(chrono::Duration::seconds(601));
    let recent = ingest(&app, "\u{0}\u{1} more junk").await;
    assert_eq!(recent["status"], "failed");
    app.services
        .run(Job::PurgeJobs)
        .await
        .expect("the housekeeping job");
    assert_eq!(app.count("intake_hook_signatures").await, 1);
    let replay = post_signed(&app, raw.as_bytes(), now, SECRET).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "stale by now");
}

#[tokio::test]
async fn the_endpoint_is_off_without_a_secret() {
    let app = TestApp::spawn().await;
    let r = post_signed(&app, b"Subject: x\r\n\r\nx", 0, SECRET).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Every message of the fixture corpus (`tests/fixtures/mail/`, its outcomes in
/// `expected.toml`) posted to a fresh service ends where intake's rules put it: machines'
/// mail ignored with its reason, unreadable mail failed with its reason, confident
/// requests filed as their kind, the kinds an email alone cannot fill in (a recipient,
/// the fields to change, the purposes, the deceased) and complaints that name no
/// request of ours in triage, mail without a sender to answer in triage, unclear mail
/// in triage; replies name requests this
/// service never had, so they wait in triage too (`unknown_thread`) rather than become
/// requests. Each mismatch is listed.
#[tokio::test]
async fn the_fixture_corpus_ends_where_intake_puts_it() {
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.intake.hook_secret = Some(SECRET.to_owned());
    // The corpus's replies answer Message-IDs of this domain.
    config.mail.from = "Privacy team <privacy@rightsdesk.example.com>".to_owned();
    let app = TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mail");
    let expected: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("expected.toml")).expect("expected.toml"))
            .expect("valid TOML");
    let files = expected["files"].as_table().expect("[files]");
    assert!(files.len() >= 40, "{} files", files.len());
    let mut problems = Vec::new();
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for (name, entry) in files {
        let raw = std::fs::read(dir.join(name)).expect("a corpus file");
        let r = post_signed(&app, &raw, app.services.now().timestamp(), SECRET).await;
        if r.status != StatusCode::OK {
            problems.push(format!("{name}: {} {:?}", r.status, r.body));
            continue;
        }
        let outcome = entry["outcome"].as_str().expect("an outcome");
        let field = |key: &str| entry.get(key).and_then(|v| v.as_str());
        let (status, reason, kind) = match outcome {
            "ignored" | "failed" => (outcome, field("reason"), None),
            "triage" => ("triage", None, None),
            "reply" => ("triage", Some("unknown_thread"), None),
            "request"
                if entry
                    .get("from_absent")
                    .is_some_and(|v| v.as_bool() == Some(true)) =>
            {
                ("triage", Some("no_sender"), None)
            }
            "request" => match field("kind").expect("a kind") {
                "portability" | "correction" | "consent_withdrawal" | "next_of_kin" => {
                    ("triage", Some("needs_details"), None)
                }
                "complaint" => ("triage", Some("complaint_names_no_request"), None),
                kind => ("request", None, Some(kind)),
            },
            other => panic!("{name}: unknown outcome {other}"),
        };
        let got = &r.body;
        *statuses
            .entry(got["status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
        if got["status"] != status
            || reason.is_some_and(|reason| got["reason"] != reason)
            || kind.is_some_and(|kind| got["kind"] != kind)
        {
            problems.push(format!(
                "{name}: expected {status} {reason:?} {kind:?}, got {got}"
            ));
        }
        if status == "request" && got["reference"].as_str().is_none() {
            problems.push(format!("{name}: a request without a reference: {got}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        app.count("intake_messages").await,
        i64::try_from(files.len()).expect("a count"),
        "one row per message"
    );
    assert_eq!(
        app.count("requests").await,
        i64::try_from(statuses.get("request").copied().unwrap_or(0)).expect("a count")
    );
    eprintln!("corpus outcomes: {statuses:?}");
}
