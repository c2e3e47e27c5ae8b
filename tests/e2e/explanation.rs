//! Explanation (PIPL 48): completing an explanation request sends the requester the
//! processing rules — every category of personal data the company holds and the purpose
//! of its processing, as the privacy policy states them, in the requester's language —
//! and a sources file that restates a category changes what is sent.

use std::sync::Arc;

use rightsdesk_core::ManualClock;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::json;
use rightsdesk_tests::{TempDir, TestApp, TestDb, base_config, start_time, valid_details};

use crate::collections::started_request;

async fn explained(app: &TestApp) -> rightsdesk_tests::mail::Received {
    let (filed, officer) = started_request(app, "explanation", valid_details("explanation")).await;
    let id = filed["id"].as_str().expect("an id");
    let r = app
        .act(
            &officer,
            id,
            "complete",
            json!({"summary": "我们需要您的手机号用于登录和找回账户。"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.deliver().await;
    app.outbox_messages()
        .into_iter()
        .rfind(|m| m.to == "li.lei@example.com" && m.text.contains("我们需要您的手机号"))
        .expect("the completion notice")
}

#[tokio::test]
async fn an_explanation_sends_the_processing_rules_of_every_category() {
    let app = TestApp::spawn().await;
    let notice = explained(&app).await;
    // The policy's purposes, each with its section (the bundled catalogue: 15 categories).
    assert!(
        notice
            .text
            .contains("账户信息：注册并登录本网页、使用我们的服务"),
        "{}",
        notice.text
    );
    assert!(
        notice.text.contains("（隐私政策第一.1节）"),
        "{}",
        notice.text
    );
    assert_eq!(notice.text.matches("\n- ").count(), 15, "{}", notice.text);
    assert!(notice.html.contains("<li><strong>账户信息</strong>"));
}

#[tokio::test]
async fn the_rules_follow_the_categories_the_sources_file_restates() {
    let dir = TempDir::new();
    let path = dir.0.join("sources.toml");
    std::fs::write(
        &path,
        r#"
[[category]]
key = "account"
title_zh = "账户信息"
title_en = "Account"
purpose_zh = "仅用于登录与账户安全"
purpose_en = "Signing in and account security only"

[[source]]
name = "paper"
title_zh = "纸质档案"
title_en = "Paper archive"
owner = "archive@example.com"
categories = ["account"]
[source.manual]
"#,
    )
    .expect("a sources file");
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.sources.file = Some(path);
    let app = TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await;
    let notice = explained(&app).await;
    assert!(
        notice.text.contains("账户信息：仅用于登录与账户安全"),
        "{}",
        notice.text
    );
    assert!(!notice.text.contains("注册并登录本网页"));
}
