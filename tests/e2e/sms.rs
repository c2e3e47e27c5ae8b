//! Text messages (SPEC §5, §9, §13) through a real HTTP SMS gateway on a loopback port
//! that checks every signature (docs/sms-gateway.md): the code reaches a requester who
//! gave only a mobile number; an outage delays messages, which then go out once; a
//! refusal or a signature the gateway does not recognise fails the notification where
//! officers see it, without the number. And the development provider's folder.

use chrono::Duration;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::sms::{GATEWAY_SECRET, GatewayMode, SmsGateway};
use rightsdesk_tests::{TestApp, filing, valid_details};

/// The number every filing here gives, as typed and as stored (E.164).
const TYPED: &str = "13812345678";
const E164: &str = "+8613812345678";

struct Filed {
    id: String,
    token: String,
    reference: String,
}

/// Files an access request with a mobile number and no email address.
async fn file_by_phone(app: &TestApp) -> Filed {
    let mut body = filing("access", valid_details("access"));
    let requester = body["requester"].as_object_mut().expect("a requester");
    requester.remove("email");
    requester.insert("phone".to_owned(), json!(TYPED));
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let text = |key: &str| r.body[key].as_str().expect(key).to_owned();
    Filed {
        id: text("id"),
        token: text("requester_token"),
        reference: text("reference"),
    }
}

/// The request's notifications as its officers see them.
async fn notifications(app: &TestApp, officer: &str, id: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/officer/requests/{id}"), Some(officer))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn a_requester_with_only_a_number_verifies_with_the_code_from_the_gateway() {
    let gateway = SmsGateway::start(GATEWAY_SECRET).await;
    let app = TestApp::spawn_with_sms_gateway(&gateway.url, GATEWAY_SECRET).await;
    let (_, officer) = app.officer("watcher", &["officer"]).await;
    let f = file_by_phone(&app).await;
    let report = app.deliver().await;
    assert_eq!((report.sent, report.retried, report.failed), (2, 0, 0));

    let messages = gateway.messages();
    assert_eq!(
        messages.len(),
        2,
        "the acknowledgement and the code: {messages:?}"
    );
    assert!(messages.iter().all(|m| m.to == E164), "{messages:?}");
    assert!(messages.iter().all(|m| m.text.contains(&f.reference)));
    let listed = notifications(&app, &officer, &f.id).await;
    assert!(
        listed
            .iter()
            .all(|n| n["channel"] == "sms" && n["status"] == "sent")
    );
    assert_eq!(
        sorted(messages.iter().map(|m| m.id.clone()).collect()),
        sorted(
            listed
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_owned())
                .collect()
        ),
        "each message carries its notification's id"
    );
    let code = messages
        .iter()
        .find(|m| m.text.contains("验证码"))
        .expect("the code message")
        .code();

    let r = app
        .post(
            &format!("/api/v1/requests/{}/verification", f.id),
            Some(&f.token),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "verified");
    let d = app
        .get(
            &format!("/api/v1/officer/requests/{}", f.id),
            Some(&officer),
        )
        .await;
    let verified = d.body["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .find(|e| e["event"] == "verified")
        .cloned()
        .expect("a verified event");
    assert_eq!(verified["data"]["method"], "sms_code");
    // Nothing is sent twice.
    assert_eq!(app.deliver().await.claimed(), 0);
    assert_eq!(gateway.requests().len(), 2);
}

#[tokio::test]
async fn messages_wait_while_the_gateway_is_unavailable_and_then_go_out_once() {
    let gateway = SmsGateway::start(GATEWAY_SECRET).await;
    let app = TestApp::spawn_with_sms_gateway(&gateway.url, GATEWAY_SECRET).await;
    let (_, officer) = app.officer("watcher", &["officer"]).await;
    gateway.set_mode(GatewayMode::Unavailable);
    let f = file_by_phone(&app).await;
    let report = app.deliver().await;
    assert_eq!((report.sent, report.retried, report.failed), (0, 2, 0));
    for n in notifications(&app, &officer, &f.id).await {
        assert_eq!(n["status"], "pending", "{n}");
        assert_eq!(n["attempts"], 1, "{n}");
        let error = n["last_error"].as_str().unwrap_or_default();
        assert!(error.contains("503"), "{n}");
        assert!(!error.contains(TYPED), "{n}");
    }
    // Not due yet: the back-off holds them.
    assert_eq!(app.deliver().await.claimed(), 0);
    assert!(gateway.messages().is_empty());

    gateway.set_mode(GatewayMode::Accept);
    app.clock.advance(Duration::seconds(31));
    let report = app.deliver().await;
    assert_eq!((report.sent, report.retried, report.failed), (2, 0, 0));
    assert_eq!(app.deliver().await.claimed(), 0);

    let messages = gateway.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    let requests = gateway.requests();
    assert_eq!(requests.len(), 4, "two refused, two accepted: {requests:?}");
    for m in &messages {
        let attempts: Vec<u16> = requests
            .iter()
            .filter(|r| r.id == m.id)
            .map(|r| {
                assert_eq!(r.idempotency_key, m.id, "the same key on every attempt");
                r.status
            })
            .collect();
        assert_eq!(attempts, vec![503, 200], "{}", m.id);
    }
    for n in notifications(&app, &officer, &f.id).await {
        assert_eq!(n["status"], "sent", "{n}");
        assert_eq!(n["attempts"], 2, "{n}");
        assert!(n["sent_at"].is_string(), "{n}");
    }
}

#[tokio::test]
async fn a_refusal_by_the_gateway_marks_the_notification_failed_for_officers_to_see() {
    let gateway = SmsGateway::start(GATEWAY_SECRET).await;
    let app = TestApp::spawn_with_sms_gateway(&gateway.url, GATEWAY_SECRET).await;
    let (_, officer) = app.officer("watcher", &["officer"]).await;
    gateway.set_mode(GatewayMode::Reject);
    let f = file_by_phone(&app).await;
    let report = app.deliver().await;
    assert_eq!((report.sent, report.retried, report.failed), (0, 0, 2));
    let listed = notifications(&app, &officer, &f.id).await;
    assert_eq!(listed.len(), 2);
    for n in listed {
        assert_eq!(n["status"], "failed", "{n}");
        assert_eq!(n["recipient"], E164, "{n}");
        let error = n["last_error"].as_str().unwrap_or_default();
        assert!(error.contains("400"), "{n}");
        assert!(
            error.contains("invalid recipient"),
            "the gateway's words: {n}"
        );
        assert!(
            !error.contains(TYPED),
            "the number the gateway echoed is not kept: {n}"
        );
    }
    app.clock.advance(Duration::hours(2));
    assert_eq!(
        app.deliver().await.claimed(),
        0,
        "failed notifications are never retried"
    );
    assert_eq!(gateway.requests().len(), 2);
    assert!(gateway.messages().is_empty());
}

#[tokio::test]
async fn a_signature_the_gateway_does_not_recognise_fails_the_notification() {
    let gateway = SmsGateway::start(GATEWAY_SECRET).await;
    let app = TestApp::spawn_with_sms_gateway(
        &gateway.url,
        "another secret, also well over 32 bytes long",
    )
    .await;
    let (_, officer) = app.officer("watcher", &["officer"]).await;
    let f = file_by_phone(&app).await;
    let report = app.deliver().await;
    assert_eq!((report.sent, report.retried, report.failed), (0, 0, 2));
    for n in notifications(&app, &officer, &f.id).await {
        assert_eq!(n["status"], "failed", "{n}");
        assert!(
            n["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("401") && e.contains("signature mismatch")),
            "{n}"
        );
    }
    let statuses: Vec<u16> = gateway.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 401]);
    assert!(gateway.messages().is_empty());
}

#[tokio::test]
async fn on_the_embedded_defaults_a_text_message_is_written_to_the_folder_once() {
    let app = TestApp::spawn().await;
    let (_, officer) = app.officer("watcher", &["officer"]).await;
    let f = file_by_phone(&app).await;
    assert_eq!(app.deliver().await.sent, 2);
    let written = app.sms_folder_messages();
    assert_eq!(written.len(), 2, "{written:?}");
    let listed = notifications(&app, &officer, &f.id).await;
    assert_eq!(
        sorted(written.iter().map(|(id, _)| id.clone()).collect()),
        sorted(
            listed
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_owned())
                .collect()
        ),
    );
    for (_, message) in &written {
        assert_eq!(message["to"], E164);
        assert!(
            message["text"]
                .as_str()
                .is_some_and(|t| t.contains(&f.reference)),
            "{message}"
        );
    }
    assert!(
        app.outbox_messages().is_empty(),
        "no email without an address"
    );
    assert_eq!(app.deliver().await.claimed(), 0);
    assert_eq!(app.sms_folder_messages().len(), 2);
}
