//! Notifications through the outbox over a real SMTP server (SPEC §9): delivered once,
//! kept while the server is down, failed for good on a 5xx, in the requester's language,
//! with what they typed escaped.

use chrono::Duration;
use rightsdesk_tests::mail::{SmtpMode, SmtpServer};
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{TestApp, filing, valid_details};

async fn file(app: &TestApp, name: &str, email: &str, language: &str) -> Value {
    let mut body = filing("deletion", valid_details("deletion"));
    body["requester"]["name"] = json!(name);
    body["requester"]["email"] = json!(email);
    body["requester"]["language"] = json!(language);
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

async fn notifications(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/officer/requests/{id}"), Some(token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_requester_verifies_with_the_code_from_a_real_mail_server() {
    let smtp = SmtpServer::start(SmtpMode::Accept).await;
    let app = TestApp::spawn_with_smtp(smtp.port).await;
    let filed = file(&app, "李雷", "li.lei@example.com", "zh-CN").await;
    let reference = filed["reference"].as_str().unwrap();
    assert_eq!(app.deliver().await.sent, 2);

    let mail = smtp.messages();
    assert_eq!(mail.len(), 2, "{mail:?}");
    assert!(mail.iter().all(|m| m.to == "li.lei@example.com"));
    assert!(
        mail.iter()
            .all(|m| m.auto_submitted.as_deref() == Some("auto-generated"))
    );
    let ack = mail
        .iter()
        .find(|m| m.subject.contains("我们已收到"))
        .expect("an acknowledgement in Chinese");
    assert!(ack.subject.contains(reference));
    assert!(
        ack.text.contains("2026-03-16"),
        "the due date: {}",
        ack.text
    );
    assert!(ack.html.contains(reference));
    let code = mail
        .iter()
        .find(|m| m.subject.contains("验证码"))
        .expect("the code")
        .code();

    let r = app
        .post(
            &format!(
                "/api/v1/requests/{}/verification",
                filed["id"].as_str().unwrap()
            ),
            filed["requester_token"].as_str(),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "verified");
    // Nothing is sent twice.
    assert_eq!(app.deliver().await.claimed(), 0);
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test]
async fn mail_waits_while_the_server_is_down_and_each_message_goes_out_once() {
    let mut smtp = SmtpServer::start(SmtpMode::Accept).await;
    let app = TestApp::spawn_with_smtp(smtp.port).await;
    let (_, officer) = app.officer("watcher", &["officer"]).await;
    smtp.stop().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let filed = file(&app, "Alice", &format!("alice{i}@example.com"), "en").await;
        ids.push(filed["id"].as_str().unwrap().to_owned());
    }
    let report = app.deliver().await;
    assert_eq!((report.sent, report.retried, report.failed), (0, 6, 0));
    let waiting = notifications(&app, &officer, &ids[0]).await;
    assert_eq!(waiting.len(), 2);
    for n in &waiting {
        assert_eq!(n["status"], "pending");
        assert_eq!(n["attempts"], 1);
        assert!(
            n["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "{n}"
        );
    }
    // Not due yet: the back-off holds them.
    assert_eq!(app.deliver().await.claimed(), 0);

    smtp.restart().await;
    app.clock.advance(Duration::seconds(31));
    let report = app.deliver().await;
    assert_eq!((report.sent, report.retried, report.failed), (6, 0, 0));
    assert_eq!(app.deliver().await.claimed(), 0);
    let mail = smtp.messages();
    assert_eq!(mail.len(), 6);
    let mut message_ids: Vec<&str> = mail.iter().map(|m| m.message_id.as_str()).collect();
    message_ids.sort_unstable();
    message_ids.dedup();
    assert_eq!(message_ids.len(), 6, "every message once");
    for n in notifications(&app, &officer, &ids[0]).await {
        assert_eq!(n["status"], "sent");
        assert_eq!(n["attempts"], 2);
        assert!(n["sent_at"].is_string());
    }
}

#[tokio::test]
async fn a_refusal_by_the_server_marks_the_notification_failed_for_officers_to_see() {
    let smtp = SmtpServer::start(SmtpMode::Reject).await;
    let app = TestApp::spawn_with_smtp(smtp.port).await;
    let (_, officer) = app.officer("watcher", &["officer"]).await;
    let filed = file(&app, "Bob", "bob@example.com", "en").await;
    let report = app.deliver().await;
    assert_eq!((report.sent, report.retried, report.failed), (0, 0, 2));
    let list = notifications(&app, &officer, filed["id"].as_str().unwrap()).await;
    assert_eq!(list.len(), 2);
    for n in list {
        assert_eq!(n["status"], "failed", "{n}");
        assert!(
            n["last_error"].as_str().unwrap_or_default().contains("550"),
            "{n}"
        );
    }
    app.clock.advance(Duration::hours(2));
    assert_eq!(
        app.deliver().await.claimed(),
        0,
        "failed notifications are never retried"
    );
}

#[tokio::test]
async fn answers_reach_the_requester_in_their_language_with_their_words_escaped() {
    let app = TestApp::spawn().await;
    let (_, dpo) = app.officer("dpo", &["officer", "dpo"]).await;
    let en = file(&app, "<b>Eve</b>", "eve@example.com", "en").await;
    let zh = file(&app, "韩梅梅", "han@example.com", "zh-CN").await;
    let en_id = en["id"].as_str().unwrap();
    let zh_id = zh["id"].as_str().unwrap();
    for (id, action, body) in [
        (en_id, "verify", json!({"method": "call_back"})),
        (en_id, "start", json!({})),
        (
            en_id,
            "request_info",
            json!({"message": "Which <account> & since when?"}),
        ),
        (
            zh_id,
            "reject",
            json!({"reason_code": "harms_others", "explanation": "涉及他人信息"}),
        ),
    ] {
        let r = app.act(&dpo, id, action, body).await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
    }
    app.deliver().await;
    let mail = app.outbox_messages();

    let info = mail
        .iter()
        .find(|m| m.to == "eve@example.com" && m.subject.starts_with("We need more information"))
        .expect("the information request");
    assert!(info.text.contains("Which <account> & since when?"));
    assert!(
        info.html
            .contains("Which &lt;account&gt; &amp; since when?"),
        "{}",
        info.html
    );
    assert!(info.html.contains("&lt;b&gt;Eve"), "{}", info.html);
    assert!(!info.html.contains("<b>Eve</b>"));

    let refusal = mail
        .iter()
        .find(|m| m.to == "han@example.com" && m.subject.contains("答复"))
        .expect("the refusal");
    assert!(
        refusal.text.contains("将损害他人的合法权益"),
        "{}",
        refusal.text
    );
    assert!(refusal.text.contains("涉及他人信息"));
    assert!(
        refusal.text.contains("人民法院"),
        "the right to go to court"
    );
    assert!(
        refusal.text.contains("dpo@example.com"),
        "the complaint channel"
    );
}

#[tokio::test]
async fn the_assignee_is_told_which_request_is_theirs_and_when_it_is_due() {
    let app = TestApp::spawn().await;
    let (wang, _) = app
        .officer_with_email("wang", &["officer"], Some("wang@corp.example.com"))
        .await;
    let (_, lead) = app.officer("lead", &["officer"]).await;
    let filed = app.file("deletion", valid_details("deletion")).await;
    let id = filed["id"].as_str().expect("an id");
    let r = app
        .act(&lead, id, "assign", json!({ "assignee_id": wang }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.deliver().await;
    let notice = app
        .outbox_messages()
        .into_iter()
        .find(|m| m.to == "wang@corp.example.com")
        .expect("an assignment notice");
    let reference = filed["reference"].as_str().expect("a reference");
    assert_eq!(notice.subject, format!("请求 {reference} 已分配给您"));
    assert!(notice.text.contains("wang"), "{}", notice.text);
    assert!(
        notice.text.contains(&format!(
            "请求 {reference}（删除个人信息）已分配给您，答复期限为 2026-03-16"
        )),
        "{}",
        notice.text
    );
    // Nothing about the requester: officers read that in the console.
    assert!(
        !notice.text.contains("li.lei@example.com"),
        "{}",
        notice.text
    );
}

#[tokio::test]
async fn a_batch_slower_than_its_lease_is_not_taken_over_by_another_sender() {
    // One message a second through one connection: a batch of six takes twice the
    // three-second lease, while a second sender keeps looking for work.
    let smtp = SmtpServer::start(SmtpMode::Slow(1_000)).await;
    let db = rightsdesk_tests::TestDb::fresh().await;
    let mut config = rightsdesk_tests::base_config(&db);
    rightsdesk_tests::send_over_smtp(&mut config, smtp.port);
    config.mail.smtp.pool_size = 1;
    config.outbox.lease_secs = 3;
    config.outbox.batch_size = 6;
    let app = TestApp::spawn_with(
        db,
        std::sync::Arc::new(rightsdesk_core::ManualClock::new(
            rightsdesk_tests::start_time(),
        )),
        config.clone(),
    )
    .await;
    for i in 0..3 {
        file(&app, "李雷", &format!("person{i}@example.com"), "zh-CN").await;
    }
    let other = rightsdesk::Application::build_with_clock(&app.config, app.clock.clone())
        .await
        .expect("a second instance")
        .services()
        .clone();
    let clock = app.clock.clone();
    let first = app.services.clone();
    let sending = tokio::spawn(async move { first.deliver_notifications().await });
    // The second sender polls, on a clock that runs with the wall clock.
    let mut taken = 0;
    for _ in 0..16 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        clock.advance(Duration::milliseconds(500));
        taken += other
            .deliver_notifications()
            .await
            .expect("a pass")
            .claimed();
    }
    let report = sending.await.expect("the first sender").expect("a pass");
    assert_eq!(report.sent, 6, "{report:?}");
    assert_eq!(taken, 0, "the second sender took none of the batch");
    assert_eq!(smtp.messages().len(), 6, "each message once");
}
