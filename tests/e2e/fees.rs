//! Cost fees for repeated requests (SPEC §8, policy §六): an officer quotes a fee only
//! for a repeat; the request waits for its requester with the clock stopped; the
//! requester is told the amount and why, sees it on their request, and accepts it with
//! their token, after which the clock runs again and the due date moves by the pause.

use chrono::{NaiveDate, TimeDelta};
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{OFFICER_PASSWORD, TestApp};

const EXPLANATION: &str = "您在 30 天内第三次申请复制全部个人信息，每次导出需人工核对五个系统";

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_owned()
}

fn date(v: &Value) -> NaiveDate {
    v.as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("a date: {v}"))
}

fn events(detail: &Value) -> Vec<String> {
    detail["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_fee_for_a_repeat_pauses_the_clock_until_the_requester_accepts_it() {
    let app = TestApp::spawn().await;
    let first = app.file_verified("copy").await;
    app.clock.advance(TimeDelta::days(5));
    let second = app.file_verified("copy").await;
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let (first_id, id, token) = (
        s(&first, "id"),
        s(&second, "id"),
        s(&second, "requester_token"),
    );

    // The first request repeats nothing: no fee is offered, and one asked is refused.
    let detail = app.detail(&officer, &first_id).await;
    assert!(
        !detail["allowed_actions"]
            .as_array()
            .expect("actions")
            .contains(&json!("quote_fee")),
        "{}",
        detail["allowed_actions"]
    );
    let quote = json!({"amount": "30", "explanation": EXPLANATION});
    let r = app
        .act(&officer, &first_id, "quote_fee", quote.clone())
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "fee_not_allowed");

    // The second is a repeat: the officer may quote, and a bad quote changes nothing.
    let r = app.act(&officer, &id, "start", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let detail = app.detail(&officer, &id).await;
    assert!(
        detail["allowed_actions"]
            .as_array()
            .expect("actions")
            .contains(&json!("quote_fee"))
    );
    let due_before = date(&detail["deadline"]["due_date"]);
    let events_before = app.count("events").await;
    for (body, field) in [
        (
            json!({"amount": "30.123", "explanation": EXPLANATION}),
            "amount",
        ),
        (
            json!({"amount": "-5", "explanation": EXPLANATION}),
            "amount",
        ),
        (
            json!({"amount": "30", "currency": "rmb", "explanation": EXPLANATION}),
            "currency",
        ),
        (json!({"amount": "30"}), "explanation"),
        (json!({"explanation": EXPLANATION}), "amount"),
    ] {
        let r = app.act(&officer, &id, "quote_fee", body.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            r.fields().contains(&field.to_owned()),
            "{body}: {:?}",
            r.body
        );
    }
    assert_eq!(app.count("events").await, events_before);

    let r = app.act(&officer, &id, "quote_fee", quote).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "awaiting_requester");
    assert_eq!(r.body["deadline"]["paused"], true);
    assert_eq!(r.body["fee_due"]["amount"], "30.00");
    assert_eq!(r.body["fee_due"]["currency"], "CNY");
    let quoted = r.body["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .rfind(|e| e["event"] == "fee_quoted")
        .expect("the quote in the timeline")
        .clone();
    assert_eq!(quoted["data"]["repeats"], json!([s(&first, "reference")]));
    assert_eq!(
        quoted["data"]["fee"],
        json!({"amount": "30.00", "currency": "CNY"})
    );

    // The requester is told the amount and why, and sees it on their request.
    app.deliver().await;
    let notice = app
        .outbox_messages()
        .into_iter()
        .find(|m| m.to == "li.lei@example.com" && m.text.contains("30.00 CNY"))
        .expect("the fee notice");
    assert!(
        notice.subject.contains(&s(&second, "reference")),
        "{}",
        notice.subject
    );
    assert!(notice.text.contains(EXPLANATION), "{}", notice.text);
    assert!(
        notice
            .text
            .contains(&format!("/api/v1/requests/{id}/fee/accept"))
    );
    let view = app
        .get(&format!("/api/v1/requests/{id}"), Some(&token))
        .await;
    assert_eq!(view.body["fee_due"]["amount"], "30.00", "{:?}", view.body);
    assert_eq!(view.body["fee_due"]["explanation"], EXPLANATION);
    let public = view.body["history"]
        .as_array()
        .expect("a history")
        .iter()
        .rfind(|e| e["event"] == "fee_quoted")
        .expect("the quote in the requester's history")
        .clone();
    assert_eq!(public["fee"]["amount"], "30.00");
    assert_eq!(public["message"], EXPLANATION);

    // A week later the requester accepts: only with their own token.
    app.clock.advance(TimeDelta::days(7));
    let path = format!("/api/v1/requests/{id}/fee/accept");
    let r = app.post(&path, None, &json!({})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .post(&path, Some(&s(&first, "requester_token")), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.post(&path, Some(&token), &json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "in_progress");
    assert!(r.body["fee_due"].is_null());

    let officer = app.login("wang", OFFICER_PASSWORD).await;
    let detail = app.detail(&officer, &id).await;
    assert_eq!(detail["deadline"]["paused"], false);
    let due_after = date(&detail["deadline"]["due_date"]);
    assert!(due_after > due_before, "{due_before} → {due_after}");
    let accepted = detail["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .rfind(|e| e["event"] == "fee_accepted")
        .expect("the acceptance")
        .clone();
    assert_eq!(accepted["actor"], "requester");
    assert_eq!(accepted["data"]["fee"]["amount"], "30.00");
    assert_eq!(
        accepted["data"]["deadline"]["effect"], "pause_ended",
        "{accepted}"
    );
    assert!(accepted["data"]["deadline"]["paused"].as_u64().unwrap_or(0) > 0);

    // Accepted once: nothing waits for a fee now, nor after a question to the requester.
    let r = app.post(&path, Some(&token), &json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "illegal_transition");
    let r = app
        .act(
            &officer,
            &id,
            "request_info",
            json!({"message": "哪个账号？"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.post(&path, Some(&token), &json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "no_fee_quoted");
    assert_eq!(
        app.detail(&officer, &id).await["state"],
        "awaiting_requester"
    );
    assert_eq!(
        events(&app.detail(&officer, &id).await)
            .iter()
            .filter(|e| *e == "fee_accepted")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_requester_who_will_not_pay_withdraws_and_an_officer_may_waive_the_fee() {
    let app = TestApp::spawn().await;
    app.file_verified("access").await;
    let second = app.file_verified("access").await;
    let third = app.file_verified("access").await;
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let quote = json!({"amount": 12.5, "currency": "CNY", "explanation": EXPLANATION});

    // Quoted straight from verified; the requester withdraws rather than pay.
    let id = s(&second, "id");
    let r = app.act(&officer, &id, "quote_fee", quote.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["fee_due"]["amount"], "12.50");
    let r = app
        .post(
            &format!("/api/v1/requests/{id}/withdraw"),
            Some(&s(&second, "requester_token")),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "withdrawn");
    assert!(r.body["fee_due"].is_null());

    // The officer waives it (or records an acceptance received in writing): resume.
    let id = s(&third, "id");
    let r = app.act(&officer, &id, "quote_fee", quote).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .act(&officer, &id, "resume", json!({"note": "fee waived"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "in_progress");
    assert!(r.body["fee_due"].is_null());
    let r = app
        .post(
            &format!("/api/v1/requests/{id}/fee/accept"),
            Some(&s(&third, "requester_token")),
            &json!({}),
        )
        .await;
    assert_eq!(r.code(), "illegal_transition");
}
