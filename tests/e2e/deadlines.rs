//! Deadlines (SPEC §4): the clock stops while the company waits for the requester, and
//! the due date moves by exactly the time it stood still.

use chrono::Duration;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::json;
use rightsdesk_tests::{OFFICER_PASSWORD, TestApp, valid_details};

async fn overdue_ids(app: &TestApp, officer: &str, overdue: bool) -> Vec<String> {
    let r = app
        .get(
            &format!("/api/v1/officer/requests?overdue={overdue}"),
            Some(officer),
        )
        .await;
    r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn waiting_for_the_requester_stops_the_clock_and_resuming_moves_the_due_date() {
    let app = TestApp::spawn().await;
    let filed = app.file("access", valid_details("access")).await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    assert_eq!(filed["due_date"], "2026-03-16");
    let (_, officer) = app.officer("officer", &["officer"]).await;
    for (action, body) in [
        ("verify", json!({"method": "call_back"})),
        ("start", json!({})),
    ] {
        assert_eq!(
            app.act(&officer, &id, action, body).await.status,
            StatusCode::OK
        );
    }

    // 3 March: the officer asks for information; the clock stops with 13 days left.
    // (Officer tokens live 15 minutes: log in again after each jump of the clock.)
    app.clock.advance(Duration::days(2));
    let officer = app.login("officer", OFFICER_PASSWORD).await;
    let d = app
        .act(
            &officer,
            &id,
            "request_info",
            json!({"message": "请提供注册手机号"}),
        )
        .await
        .body;
    assert_eq!(d["deadline"]["paused"], true);
    assert_eq!(d["deadline"]["days_left"], 13);
    let last = d["timeline"]
        .as_array()
        .expect("a timeline")
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last["data"]["deadline"]["effect"], "paused");

    // 23 March, a week past the first due date: still not late, because the clock stood.
    app.clock.advance(Duration::days(20));
    let officer = app
        .login("officer", rightsdesk_tests::OFFICER_PASSWORD)
        .await;
    let d = app.detail(&officer, &id).await;
    assert_eq!(d["deadline"]["overdue"], false);
    assert_eq!(d["deadline"]["days_left"], 13);
    assert!(!overdue_ids(&app, &officer, true).await.contains(&id));
    assert!(overdue_ids(&app, &officer, false).await.contains(&id));

    // The requester answered: 20 days stood still, so the due date moves 20 days.
    let d = app.act(&officer, &id, "resume", json!({})).await.body;
    assert_eq!(d["deadline"]["due_date"], "2026-04-05");
    assert_eq!(d["deadline"]["paused"], false);
    assert_eq!(d["deadline"]["days_left"], 13);
    let last = d["timeline"]
        .as_array()
        .expect("a timeline")
        .last()
        .cloned()
        .unwrap();
    assert_eq!(
        last["data"]["deadline"],
        json!({"effect": "pause_ended", "due_date": "2026-04-05", "paused": 20, "unit": "calendar_days"})
    );
    let view = app
        .get(
            &format!("/api/v1/requests/{id}"),
            Some(filed["requester_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(view.body["due_date"], "2026-04-05");
}

#[tokio::test]
async fn closing_a_paused_request_keeps_its_due_date() {
    let app = TestApp::spawn().await;
    let filed = app.file("deletion", valid_details("deletion")).await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    let (_, dpo) = app.officer("dpo", &["dpo"]).await;
    for (action, body) in [
        ("verify", json!({"method": "call_back"})),
        ("start", json!({})),
        ("request_info", json!({"message": "?"})),
    ] {
        assert_eq!(
            app.act(&dpo, &id, action, body).await.status,
            StatusCode::OK
        );
    }
    app.clock.advance(Duration::days(5));
    let dpo = app.login("dpo", OFFICER_PASSWORD).await;
    let d = app
        .act(
            &dpo,
            &id,
            "reject",
            json!({"reason_code": "identity_not_verified", "explanation": "no answer"}),
        )
        .await
        .body;
    assert_eq!(d["state"], "rejected");
    assert_eq!(d["deadline"]["due_date"], "2026-03-16");
    assert_eq!(d["deadline"]["paused"], false);
}

#[tokio::test]
async fn a_request_can_be_filed_under_another_pack() {
    let app = TestApp::spawn().await;
    let mut body = rightsdesk_tests::filing("access", valid_details("access"));
    body["pack"] = json!("gdpr");
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // Received 1 March 2026 (Brussels time too): one calendar month.
    assert_eq!(r.body["due_date"], "2026-04-01");
    assert_eq!(r.body["time_zone"], "Europe/Brussels");
    let (_, officer) = app.officer("officer", &["officer"]).await;
    let d = app.detail(&officer, r.body["id"].as_str().unwrap()).await;
    assert_eq!(d["deadline"]["pack"], "gdpr");
    assert_eq!(d["deadline"]["pack_version"], 1);

    body["pack"] = json!("hipaa");
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.fields(), ["pack"]);
    assert_eq!(r.body["details"]["fields"][0]["code"], "unknown_pack");
}

async fn file_under(app: &TestApp, pack: &str) -> String {
    let mut body = rightsdesk_tests::filing("access", valid_details("access"));
    body["pack"] = json!(pack);
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().expect("an id").to_owned()
}

#[tokio::test]
async fn the_dpo_extends_within_the_packs_limit_and_the_requester_is_told() {
    let app = TestApp::spawn().await;
    let gdpr = file_under(&app, "gdpr").await;
    let pipl = file_under(&app, "pipl").await;
    let (_, officer) = app.officer("officer", &["officer"]).await;
    let (_, dpo) = app.officer("dpo", &["dpo"]).await;
    let reason = json!({"reason": "数据分散在多个系统中，需要更多时间汇总", "amount": 1});

    let r = app.act(&officer, &gdpr, "extend", reason.clone()).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "only the DPO: {:?}",
        r.body
    );
    let r = app.act(&dpo, &pipl, "extend", reason.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "extension_not_allowed");
    let r = app.act(&dpo, &gdpr, "extend", json!({"amount": 1})).await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reason is required"
    );

    // 1 April was due; one month more.
    let r = app.act(&dpo, &gdpr, "extend", reason.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["deadline"]["due_date"], "2026-05-01");
    let last = r.body["timeline"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last["event"], "extended");
    assert_eq!(
        last["data"]["deadline"],
        json!({"effect": "extended", "due_date": "2026-05-01", "amount": 1, "unit": "months"})
    );
    app.deliver().await;
    let notice = app
        .outbox_messages()
        .into_iter()
        .find(|m| m.subject.contains("延长"))
        .expect("an extension notice");
    assert!(notice.text.contains("2026-05-01"), "{}", notice.text);
    assert!(
        notice.text.contains("数据分散在多个系统中"),
        "{}",
        notice.text
    );

    // Two months at most in all.
    let r = app
        .act(
            &dpo,
            &gdpr,
            "extend",
            json!({"reason": "again", "amount": 2}),
        )
        .await;
    assert_eq!(r.code(), "extension_limit_exceeded", "{:?}", r.body);
    assert_eq!(r.body["details"], json!({"max": 2, "used": 1}));

    // Announced within the first month only.
    let late = file_under(&app, "gdpr").await;
    app.clock.advance(Duration::days(32));
    let dpo = app.login("dpo", OFFICER_PASSWORD).await;
    let r = app.act(&dpo, &late, "extend", reason).await;
    assert_eq!(r.code(), "extension_too_late", "{:?}", r.body);
    assert_eq!(r.body["details"]["deadline"], "2026-04-01");
}

#[tokio::test]
async fn a_pack_from_the_packs_dir_can_start_the_clock_at_verification() {
    let db = rightsdesk_tests::TestDb::fresh().await;
    let dir = rightsdesk_tests::TempDir::new();
    std::fs::write(
        dir.0.join("pipl.toml"),
        "name = \"pipl\"\nversion = 3\ntime_zone = \"Asia/Shanghai\"\nclock_start = \"verification\"\ndefault = { amount = 15, unit = \"calendar_days\" }\n",
    )
    .unwrap();
    let mut config = rightsdesk_tests::base_config(&db);
    config.deadlines.packs_dir = Some(dir.0.clone());
    let app = TestApp::spawn_with(
        db,
        std::sync::Arc::new(rightsdesk_core::ManualClock::new(
            rightsdesk_tests::start_time(),
        )),
        config,
    )
    .await;
    let filed = app.file("access", valid_details("access")).await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    let token = filed["requester_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let (_, officer) = app.officer("officer", &["officer"]).await;
    let d = app.detail(&officer, &id).await;
    assert_eq!(d["deadline"]["pack_version"], 3);
    assert_eq!(d["deadline"]["clock_started"], false);
    assert_eq!(d["deadline"]["days_left"], json!(null));

    // Verified five days later (the officer called back): 15 days from then.
    app.clock.advance(Duration::days(5));
    let officer = app.login("officer", OFFICER_PASSWORD).await;
    let r = app
        .act(&officer, &id, "verify", json!({"method": "call_back"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .get(&format!("/api/v1/requests/{id}"), Some(&token))
        .await;
    assert_eq!(r.body["due_date"], "2026-03-21");
    assert_eq!(r.body["days_left"], 15);
    let d = app.detail(&officer, &id).await;
    assert_eq!(d["deadline"]["clock_started"], true);
    let verified = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "verified")
        .cloned()
        .unwrap();
    assert_eq!(
        verified["data"]["deadline"],
        json!({"effect": "set", "due_date": "2026-03-21"})
    );
}

#[test]
fn a_broken_pack_file_stops_the_start_with_its_name() {
    let dir = rightsdesk_tests::TempDir::new();
    std::fs::write(dir.0.join("eu.toml"), "name = \"eu\"\nversion = 1\n").unwrap();
    let mut config = rightsdesk::Config::default();
    config.deadlines.packs_dir = Some(dir.0.clone());
    let problems = config.validate();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("deadlines.packs_dir: "),
        "{problems:?}"
    );
    assert!(problems[0].contains("eu.toml"), "{problems:?}");
}

#[tokio::test]
async fn a_pause_under_a_pack_of_months_moves_the_due_date_by_calendar_days() {
    let app = TestApp::spawn().await;
    let id = file_under(&app, "gdpr").await;
    let (_, officer) = app.officer("officer", &["officer"]).await;
    for (action, body) in [
        ("verify", json!({"method": "call_back"})),
        ("start", json!({})),
        ("request_info", json!({"message": "Which account?"})),
    ] {
        let r = app.act(&officer, &id, action, body).await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
    }
    app.clock.advance(Duration::days(10));
    let officer = app.login("officer", OFFICER_PASSWORD).await;
    let d = app.act(&officer, &id, "resume", json!({})).await.body;
    let last = d["timeline"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(
        last["data"]["deadline"],
        json!({"effect": "pause_ended", "due_date": "2026-04-11", "paused": 10, "unit": "calendar_days"})
    );
}
