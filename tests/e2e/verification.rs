//! Identity verification (SPEC §5): the code and the link sent at filing, and every way
//! they must fail.

use chrono::Duration;
use rightsdesk_tests::mail::Received;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{Reply, TestApp, filing, valid_details};

struct Filed {
    id: String,
    token: String,
    reference: String,
}

async fn file(app: &TestApp, email: &str, language: &str) -> Filed {
    let mut body = filing("access", valid_details("access"));
    body["requester"]["email"] = json!(email);
    body["requester"]["language"] = json!(language);
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "awaiting_verification");
    Filed {
        id: r.body["id"].as_str().expect("an id").to_owned(),
        token: r.body["requester_token"]
            .as_str()
            .expect("a token")
            .to_owned(),
        reference: r.body["reference"]
            .as_str()
            .expect("a reference")
            .to_owned(),
    }
}

/// The newest verification message sent to `to`.
fn code_message(app: &TestApp, to: &str) -> Received {
    app.verification_message(to)
}

async fn enter(app: &TestApp, f: &Filed, code: &str) -> Reply {
    app.post(
        &format!("/api/v1/requests/{}/verification", f.id),
        Some(&f.token),
        &json!({ "code": code }),
    )
    .await
}

async fn resend(app: &TestApp, f: &Filed) -> Reply {
    app.post(
        &format!("/api/v1/requests/{}/verification/resend", f.id),
        Some(&f.token),
        &Value::Null,
    )
    .await
}

async fn state(app: &TestApp, f: &Filed) -> String {
    let r = app
        .get(&format!("/api/v1/requests/{}", f.id), Some(&f.token))
        .await;
    r.body["state"].as_str().unwrap_or_default().to_owned()
}

async fn post_link(app: &TestApp, path: &str) -> rightsdesk_tests::reqwest::Response {
    app.client
        .post(format!("{}{path}", app.base))
        .send()
        .await
        .expect("the link answers")
}

fn wrong(code: &str) -> String {
    let last = (code.as_bytes()[5] - b'0' + 1) % 10;
    format!("{}{last}", &code[..5])
}

#[tokio::test]
async fn the_emailed_code_verifies_the_request_and_links_the_subject() {
    let app = TestApp::spawn().await;
    let f = file(&app, "li.lei@example.com", "zh-CN").await;
    let report = app.deliver().await;
    assert_eq!(report.sent, 2, "{report:?}");
    let message = code_message(&app, "li.lei@example.com");
    assert!(
        message.subject.contains(&f.reference),
        "{}",
        message.subject
    );

    let r = enter(&app, &f, &message.code()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "verified");

    let (_, officer) = app.officer("verifier", &["officer"]).await;
    let d = app
        .get(
            &format!("/api/v1/officer/requests/{}", f.id),
            Some(&officer),
        )
        .await;
    assert!(d.body["subject_id"].is_string(), "{:?}", d.body);
    let verified = d.body["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .find(|e| e["event"] == "verified")
        .cloned()
        .expect("a verified event");
    assert_eq!(verified["actor"], "requester");
    assert_eq!(verified["data"]["method"], "email_code");
    // The same code cannot be used twice.
    let again = enter(&app, &f, &message.code()).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
}

#[tokio::test]
async fn five_wrong_codes_burn_the_code() {
    let app = TestApp::spawn().await;
    let f = file(&app, "wang@example.com", "en").await;
    app.deliver().await;
    let code = code_message(&app, "wang@example.com").code();
    for left in (1..=4).rev() {
        let r = enter(&app, &f, &wrong(&code)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
        assert_eq!(r.code(), "verification_code_invalid");
        assert_eq!(r.body["details"]["attempts_left"], left);
    }
    let r = enter(&app, &f, &wrong(&code)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", r.body);
    assert_eq!(r.code(), "verification_locked");
    // Burned: even the right code no longer works.
    let r = enter(&app, &f, &code).await;
    assert_eq!(r.code(), "verification_locked", "{:?}", r.body);
    assert_eq!(state(&app, &f).await, "awaiting_verification");
}

#[tokio::test]
async fn a_resent_code_replaces_the_old_one_after_the_cool_down() {
    let app = TestApp::spawn().await;
    let f = file(&app, "chen@example.com", "en").await;
    app.deliver().await;
    let old = code_message(&app, "chen@example.com").code();

    let r = resend(&app, &f).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", r.body);
    assert_eq!(r.code(), "verification_resend_too_soon");
    assert!(r.headers.get("retry-after").is_some());

    app.clock.advance(Duration::seconds(61));
    let r = resend(&app, &f).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["channel"], "email");
    assert_eq!(app.deliver().await.sent, 1);
    let new = code_message(&app, "chen@example.com").code();

    if old != new {
        let r = enter(&app, &f, &old).await;
        assert_eq!(r.code(), "verification_code_invalid", "{:?}", r.body);
    }
    let r = enter(&app, &f, &new).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn an_expired_code_fails() {
    let app = TestApp::spawn().await;
    let f = file(&app, "zhao@example.com", "en").await;
    app.deliver().await;
    let code = code_message(&app, "zhao@example.com").code();
    app.clock.advance(Duration::minutes(15));
    let r = enter(&app, &f, &code).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.code(), "verification_code_expired");
    assert_eq!(state(&app, &f).await, "awaiting_verification");
}

#[tokio::test]
async fn malformed_codes_and_strangers_are_refused() {
    let app = TestApp::spawn().await;
    let f = file(&app, "sun@example.com", "en").await;
    for bad in [
        json!({"code": "12345"}),
        json!({"code": "abcdef"}),
        json!({"code": 123456}),
        json!({}),
    ] {
        let r = app
            .post(
                &format!("/api/v1/requests/{}/verification", f.id),
                Some(&f.token),
                &bad,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {:?}",
            r.body
        );
        assert_eq!(r.code(), "validation_failed");
    }
    let other = file(&app, "zhou@example.com", "en").await;
    let r = app
        .post(
            &format!("/api/v1/requests/{}/verification", f.id),
            Some(&other.token),
            &json!({"code": "123456"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
}

#[tokio::test]
async fn the_link_verifies_once_and_a_tampered_or_late_link_fails() {
    let app = TestApp::spawn().await;
    let f = file(&app, "link@example.com", "zh-CN").await;
    app.deliver().await;
    let path = code_message(&app, "link@example.com").link_path();

    // Opening the link (a mail scanner does too) changes nothing.
    let page = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("method=\"post\""));
    assert_eq!(state(&app, &f).await, "awaiting_verification");

    // A tampered signature.
    let mut tampered = path.clone();
    let last = tampered.pop().expect("a character");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        post_link(&app, &tampered).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post_link(&app, "/verify/not-a-token").await.status(),
        StatusCode::BAD_REQUEST
    );

    let done = post_link(&app, &path).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains(&f.reference));
    assert_eq!(state(&app, &f).await, "verified");
    // Used once.
    assert_eq!(post_link(&app, &path).await.status(), StatusCode::GONE);

    // A link past its lifetime.
    let late = file(&app, "late@example.com", "en").await;
    app.deliver().await;
    let path = code_message(&app, "late@example.com").link_path();
    app.clock.advance(Duration::minutes(16));
    assert_eq!(post_link(&app, &path).await.status(), StatusCode::GONE);
    assert_eq!(state(&app, &late).await, "awaiting_verification");
}

#[tokio::test]
async fn an_unverified_request_expires_after_thirty_days_with_a_notice() {
    let app = TestApp::spawn().await;
    let stale = file(&app, "stale@example.com", "zh-CN").await;
    let fresh_enough = file(&app, "verified@example.com", "en").await;
    app.deliver().await;
    let code = code_message(&app, "verified@example.com").code();
    assert_eq!(
        enter(&app, &fresh_enough, &code).await.status,
        StatusCode::OK
    );

    app.clock.advance(Duration::days(30) - Duration::seconds(1));
    assert_eq!(app.services.expire_unverified().await.unwrap(), 0);
    app.clock.advance(Duration::seconds(2));
    assert_eq!(app.services.expire_unverified().await.unwrap(), 1);
    assert_eq!(app.services.expire_unverified().await.unwrap(), 0, "once");

    assert_eq!(state(&app, &stale).await, "expired");
    assert_eq!(state(&app, &fresh_enough).await, "verified");
    app.deliver().await;
    let notice = app
        .outbox_messages()
        .into_iter()
        .find(|m| m.to == "stale@example.com" && m.subject.contains("已关闭"))
        .expect("an expiry notice");
    assert!(notice.text.contains("30 天"), "{}", notice.text);
    assert!(notice.subject.contains(&stale.reference));
    // Its code no longer does anything.
    let r = enter(&app, &stale, "000000").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
}
