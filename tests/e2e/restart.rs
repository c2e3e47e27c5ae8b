//! What was acknowledged survives a restart of the process (SPEC §13): requests, their
//! timelines and tokens, officer accounts and the signing secret, and the audit chain.

use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{ADMIN_PASSWORD, OFFICER_PASSWORD, TestApp, valid_details};

struct Filed {
    id: String,
    token: String,
}

async fn file(app: &TestApp, kind: &str, details: Value) -> Filed {
    let filed = app.file(kind, details).await;
    Filed {
        id: filed["id"].as_str().expect("an id").to_owned(),
        token: filed["requester_token"]
            .as_str()
            .expect("a token")
            .to_owned(),
    }
}

async fn must(app: &TestApp, token: &str, id: &str, action: &str, body: Value) {
    let r = app.act(token, id, action, body).await;
    assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
}

/// The service after some work: three requests in different states, an assignment, a
/// comment, a refusal.
struct World {
    app: TestApp,
    officer_id: String,
    officer: String,
    requests: Vec<Filed>,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let (officer_id, officer) = app.officer("officer1", &["officer"]).await;
    let (_, dpo) = app.officer("dpo1", &["dpo"]).await;

    let worked = file(&app, "access", valid_details("access")).await;
    must(
        &app,
        &officer,
        &worked.id,
        "assign",
        json!({"assignee_id": officer_id}),
    )
    .await;
    must(
        &app,
        &officer,
        &worked.id,
        "verify",
        json!({"method": "call_back"}),
    )
    .await;
    must(&app, &officer, &worked.id, "start", json!({})).await;
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{}/comments", worked.id),
            Some(&officer),
            &json!({"body": "called back"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    must(
        &app,
        &officer,
        &worked.id,
        "request_info",
        json!({"message": "请提供注册手机号"}),
    )
    .await;

    let refused = file(&app, "deletion", valid_details("deletion")).await;
    must(
        &app,
        &dpo,
        &refused.id,
        "reject",
        json!({"reason_code": "outside_jurisdiction", "explanation": "不适用"}),
    )
    .await;

    let untouched = file(&app, "explanation", valid_details("explanation")).await;
    World {
        app,
        officer_id,
        officer,
        requests: vec![worked, refused, untouched],
    }
}

/// Everything a client can read about the requests, as one value.
async fn snapshot(app: &TestApp, officer: &str, requests: &[Filed]) -> Value {
    let mut seen = Vec::new();
    for req in requests {
        let view = app
            .get(&format!("/api/v1/requests/{}", req.id), Some(&req.token))
            .await;
        assert_eq!(view.status, StatusCode::OK, "{:?}", view.body);
        let detail = app
            .get(
                &format!("/api/v1/officer/requests/{}", req.id),
                Some(officer),
            )
            .await;
        assert_eq!(detail.status, StatusCode::OK, "{:?}", detail.body);
        seen.push(json!({"requester": view.body, "officer": detail.body}));
    }
    let queue = app
        .get("/api/v1/officer/requests?state=all", Some(officer))
        .await;
    assert_eq!(queue.status, StatusCode::OK, "{:?}", queue.body);
    let mine = app
        .get("/api/v1/officer/requests?assignee=me", Some(officer))
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    json!({"requests": seen, "queue": queue.body, "mine": mine.body})
}

async fn counts(app: &TestApp) -> Vec<i64> {
    let mut n = Vec::new();
    for table in ["requests", "events", "comments", "officers", "subjects"] {
        n.push(app.count(table).await);
    }
    n
}

#[tokio::test]
async fn requests_read_back_identically_after_a_restart() {
    let w = world().await;
    let before = snapshot(&w.app, &w.officer, &w.requests).await;
    assert_eq!(before["queue"]["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(before["mine"]["items"].as_array().map(Vec::len), Some(1));
    let counted = counts(&w.app).await;

    let app = w.app.restart().await;

    // The same requester tokens and the officer token from before the restart.
    let after = snapshot(&app, &w.officer, &w.requests).await;
    assert_eq!(after, before);
    assert_eq!(counts(&app).await, counted);
}

#[tokio::test]
async fn the_admin_is_not_recreated_and_tokens_still_verify_after_a_restart() {
    let w = world().await;
    let admin = w.app.admin_token().await;
    let officers = w.app.get("/api/v1/admin/officers", Some(&admin)).await;
    assert_eq!(officers.status, StatusCode::OK, "{:?}", officers.body);
    assert_eq!(officers.body.as_array().map(Vec::len), Some(3));

    let app = w.app.restart().await;

    // Tokens issued before the restart are still signed by a secret the service knows.
    let r = app.get("/api/v1/admin/officers", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body, officers.body,
        "the same accounts, the admin not recreated"
    );
    let r = app.get("/api/v1/officer/requests", Some(&w.officer)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // The same passwords still log in.
    let admin_again = app.login("admin", ADMIN_PASSWORD).await;
    let r = app.get("/api/v1/admin/officers", Some(&admin_again)).await;
    assert_eq!(r.body, officers.body);
    let officer_again = app.login("officer1", OFFICER_PASSWORD).await;
    let r = app
        .get("/api/v1/officer/requests?assignee=me", Some(&officer_again))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["items"][0]["id"], w.requests[0].id.as_str());
    assert_eq!(r.body["items"][0]["assignee_id"], w.officer_id.as_str());

    // A wrong password is still wrong.
    let r = app
        .post(
            "/api/v1/auth/token",
            None,
            &json!({"username": "admin", "password": "not-the-admin-password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
}

#[tokio::test]
async fn the_audit_chain_verifies_and_keeps_growing_after_a_restart() {
    let w = world().await;
    let before = rightsdesk::audit_verify(&w.app.config)
        .await
        .expect("audit verify runs");
    assert!(before.ok(), "{:?}", before.failures);

    let app = w.app.restart().await;

    let after = rightsdesk::audit_verify(&app.config)
        .await
        .expect("audit verify runs");
    assert!(after.ok(), "{:?}", after.failures);
    assert_eq!(
        (after.requests, after.events),
        (before.requests, before.events)
    );

    // Work continues on the same chains.
    let worked = &w.requests[0];
    let r = app.act(&w.officer, &worked.id, "resume", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let timeline = r.body["timeline"].as_array().expect("a timeline");
    assert_eq!(timeline.last().expect("events")["event"], "resumed");
    assert_eq!(
        timeline.last().expect("events")["seq"].as_i64(),
        Some(timeline.len() as i64)
    );
    let withdrawn = app
        .post(
            &format!("/api/v1/requests/{}/withdraw", w.requests[2].id),
            Some(&w.requests[2].token),
            &json!({}),
        )
        .await;
    assert_eq!(withdrawn.status, StatusCode::OK, "{:?}", withdrawn.body);

    let grown = rightsdesk::audit_verify(&app.config)
        .await
        .expect("audit verify runs");
    assert!(grown.ok(), "{:?}", grown.failures);
    assert_eq!(grown.events, before.events + 2);
}

/// SQLite: commits never checkpoint; the background task keeps the WAL from growing, and
/// what it moved into the database file is all there after a restart.
#[tokio::test]
async fn the_sqlite_wal_is_checkpointed_in_the_background() {
    if rightsdesk_tests::backend() != rightsdesk_tests::Backend::Sqlite {
        return;
    }
    let app = TestApp::spawn().await;
    for _ in 0..40 {
        file(&app, "access", valid_details("access")).await;
    }
    let wal = std::path::PathBuf::from(format!(
        "{}-wal",
        app.db.url.trim_start_matches("sqlite://")
    ));
    let size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    // The truncating checkpoint runs every 2 s while the WAL holds anything.
    let mut waited = 0;
    while size() > 0 && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(size(), 0, "the WAL was never truncated");
    let app = app.restart().await;
    assert_eq!(app.count("requests").await, 40);
}
