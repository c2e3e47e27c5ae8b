//! Fulfilment's look-ups (SPEC §7): an officer has every data source searched for the
//! verified subject of a copy request; a SQLite source answers with counts per category,
//! a `manual` source waits for its owner, an `http` source that nobody answers is tried
//! again and shown failed until it answers; the request cannot complete before every
//! source has answered, and each answer is an event in its chain.

use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use rightsdesk_connectors::http::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify};
use rightsdesk_core::ManualClock;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{
    TempDir, TestApp, TestDb, base_config, free_port, start_time, valid_details,
};
use sea_orm::{ConnectionTrait, Database};

pub(crate) const SECRET: &str = "a-shared-secret-of-at-least-32-bytes!";

/// A website database with li.lei@example.com's account and two downloads, and
/// others': one of them with the mobile number li.lei typed when filing.
pub(crate) async fn website_db(dir: &TempDir) -> String {
    let file = dir.0.join("website.db");
    let db = Database::connect(format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .expect("a source database");
    for sql in [
        "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT, mobile TEXT, name TEXT)",
        "CREATE TABLE downloads (user_id TEXT, product TEXT)",
        // u3 has the mobile number li.lei typed, but li.lei proved only the address.
        "INSERT INTO users VALUES ('u1', 'li.lei@example.com', '13812345678', '李雷'), ('u2', 'han@example.com', '13700000000', '韩梅梅'), ('u3', 'other@example.com', '13812345678', '别人')",
        "INSERT INTO downloads VALUES ('u1', 'ZStack'), ('u1', 'ZStack Cloud'), ('u2', 'ZStack')",
    ] {
        db.execute_unprepared(sql).await.expect("fill the source");
    }
    db.close().await.ok();
    format!("sqlite://{}", file.display())
}

/// The sources file: the website (sql), the CRM (http on `crm_port`), and, when
/// `manual`, the call centre (its owner answers).
pub(crate) fn sources_file(website: &str, crm_port: u16, manual: bool) -> String {
    let mut file = format!(
        r#"
[[source]]
name = "website"
title_zh = "官网"
title_en = "Website"
owner = "web@example.com"
portable = ["account"]
[source.sql]
url = "{website}"
mobile_format = "national"
[[source.sql.table]]
name = "users"
category = "account"
key = "id"
match = {{ email = "email", mobile = "mobile" }}
columns = ["id", "email", "name"]
[[source.sql.table]]
name = "downloads"
category = "downloads"
parent = {{ table = "users", column = "user_id" }}
columns = ["product"]

[[source]]
name = "crm"
title_zh = "客服系统"
title_en = "CRM"
owner = "crm@example.com"
categories = ["tickets"]
timeout_secs = 2
[source.http]
url = "http://127.0.0.1:{crm_port}/lookup"
secret = "{SECRET}"
"#
    );
    if manual {
        file.push_str(
            r#"
[[source]]
name = "callcenter"
title_zh = "呼叫中心"
title_en = "Call centre"
owner = "calls@example.com"
categories = ["feedback"]
[source.manual]
instructions_en = "Export the person's call recordings."
"#,
        );
    }
    file
}

pub(crate) async fn app_with(sources: String, dir: &TempDir) -> TestApp {
    let path = dir.0.join("sources.toml");
    std::fs::write(&path, sources).expect("a sources file");
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.sources.file = Some(path);
    TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await
}

/// Files a copy request as li.lei@example.com, verifies it by the emailed link, and
/// starts it; returns (request id, officer token).
pub(crate) async fn started_copy_request(app: &TestApp) -> (String, String) {
    let (filed, officer) = started_copy_request_with(app, valid_details("copy")).await;
    (filed["id"].as_str().expect("an id").to_owned(), officer)
}

/// As [`started_copy_request`], with `details`; returns the filing's answer (with the
/// requester token) and the officer's token.
pub(crate) async fn started_copy_request_with(app: &TestApp, details: Value) -> (Value, String) {
    started_request(app, "copy", details).await
}

/// As [`started_copy_request_with`], for a request of `kind`.
pub(crate) async fn started_request(app: &TestApp, kind: &str, details: Value) -> (Value, String) {
    let filed = app.file(kind, details).await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    app.deliver().await;
    let path = app.verification_message("li.lei@example.com").link_path();
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .send()
        .await
        .expect("the link answers");
    assert!(r.status().is_success());
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let r = app.act(&officer, &id, "start", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    (filed, officer)
}

pub(crate) fn source<'a>(detail: &'a Value, name: &str) -> &'a Value {
    detail["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|c| c["source"] == name))
        .unwrap_or_else(|| panic!("no source {name} in {detail}"))
}

/// A service of the company's speaking the `http` protocol on `port` at `path`: every
/// call's signature is checked (401 otherwise), `answer` turns the call into the
/// answer (`None`: 400), and the answer is signed.
pub(crate) async fn signed_service(
    port: u16,
    path: &'static str,
    answer: impl Fn(Value) -> Option<Value> + Clone + Send + Sync + 'static,
) -> actix_web::dev::ServerHandle {
    let server = HttpServer::new(move || {
        let answer = answer.clone();
        App::new().route(
            path,
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let answer = answer.clone();
                async move {
                    let header = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    if !verify(
                        SECRET.as_bytes(),
                        &header(TIMESTAMP_HEADER),
                        &body,
                        &header(SIGNATURE_HEADER),
                    ) {
                        return HttpResponse::Unauthorized().finish();
                    }
                    let call: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let Some(answer) = answer(call) else {
                        return HttpResponse::BadRequest().finish();
                    };
                    let bytes = serde_json::to_vec(&answer).unwrap_or_default();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs().to_string())
                        .unwrap_or_default();
                    HttpResponse::Ok()
                        .insert_header((TIMESTAMP_HEADER, now.clone()))
                        .insert_header((SIGNATURE_HEADER, sign(SECRET.as_bytes(), &now, &bytes)))
                        .content_type("application/json")
                        .body(bytes)
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .expect("bind the service's port");
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

/// A CRM speaking the `http` protocol on `port`: one ticket for li.lei@example.com.
pub(crate) async fn crm_service(port: u16) -> actix_web::dev::ServerHandle {
    signed_service(port, "/lookup", |call| {
        let records = if call["identifiers"]["email"] == "li.lei@example.com" {
            json!([{"category": "tickets", "data": {"title": "无法登录"}}])
        } else {
            json!([])
        };
        Some(json!({"records": records, "next_cursor": null}))
    })
    .await
}

#[tokio::test]
async fn every_source_is_searched_and_the_request_completes_only_when_all_have_answered() {
    let dir = TempDir::new();
    let website = website_db(&dir).await;
    let crm_port = free_port();
    let app = app_with(sources_file(&website, crm_port, false), &dir).await;
    let (id, officer) = started_copy_request(&app).await;

    // Nothing searched yet: the request cannot complete.
    let r = app
        .act(&officer, &id, "complete", json!({"summary": "done"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "sources_unanswered");
    assert_eq!(r.body["details"]["sources"], json!(["website", "crm"]));

    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/collect"),
            Some(&officer),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert!(
        r.body
            .as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|c| c["status"] == "pending"))
    );

    app.services.run_due_jobs().await.expect("the worker runs");
    let detail = app.detail(&officer, &id).await;
    let w = source(&detail, "website");
    assert_eq!(w["status"], "answered", "{w}");
    assert_eq!(
        w["records"],
        json!({"account": 1, "downloads": 2}),
        "only li.lei's rows"
    );
    assert_eq!(w["connector"], "sql");
    let crm = source(&detail, "crm");
    assert_eq!(crm["status"], "failed", "{crm}");
    assert_eq!(crm["error_code"], "unreachable");
    assert_eq!(crm["attempts"], 1);
    let events: Vec<&str> = detail["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(events.contains(&"collection_started"), "{events:?}");
    assert!(events.contains(&"source_answered"), "{events:?}");
    let r = app
        .act(&officer, &id, "complete", json!({"summary": "done"}))
        .await;
    assert_eq!(r.code(), "sources_unanswered");
    assert_eq!(r.body["details"]["sources"], json!(["crm"]));

    // Tried again after its back-off, still unreachable.
    app.clock.advance(chrono::Duration::minutes(10));
    let officer = app.login("wang", rightsdesk_tests::OFFICER_PASSWORD).await;
    app.services.run_due_jobs().await.expect("the worker runs");
    let crm = source(&app.detail(&officer, &id).await, "crm").clone();
    assert_eq!(crm["attempts"], 2, "{crm}");

    // The CRM comes up; the officer runs it again: it answers, and the request completes.
    let handle = crm_service(crm_port).await;
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/sources/crm/rerun"),
            Some(&officer),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    app.services.run_due_jobs().await.expect("the worker runs");
    let detail = app.detail(&officer, &id).await;
    let crm = source(&detail, "crm");
    assert_eq!(crm["status"], "answered", "{crm}");
    assert_eq!(crm["records"], json!({"tickets": 1}));
    assert_eq!(
        source(&detail, "website")["attempts"],
        1,
        "not searched twice"
    );
    let r = app
        .act(
            &officer,
            &id,
            "complete",
            json!({"summary": "all sources answered"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    handle.stop(true).await;

    // An unknown source, or a request that is not collected for.
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/sources/nowhere/rerun"),
            Some(&officer),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/collect"),
            Some(&officer),
            &json!({}),
        )
        .await;
    assert_eq!(
        r.code(),
        "collection_not_allowed",
        "completed: {:?}",
        r.body
    );
}

#[tokio::test]
async fn a_manual_source_waits_for_its_owner_and_a_person_without_data_gets_no_data() {
    let dir = TempDir::new();
    let website = dir.0.join("empty.db");
    let db = Database::connect(format!("sqlite://{}?mode=rwc", website.display()))
        .await
        .expect("a source database");
    db.execute_unprepared(
        "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT, mobile TEXT, name TEXT); \
         CREATE TABLE downloads (user_id TEXT, product TEXT)",
    )
    .await
    .expect("tables");
    db.close().await.ok();
    let crm_port = free_port();
    let handle = crm_service(crm_port).await;
    let app = app_with(
        sources_file(&format!("sqlite://{}", website.display()), crm_port, true),
        &dir,
    )
    .await;
    let (id, officer) = started_copy_request(&app).await;
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/collect"),
            Some(&officer),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    app.services.run_due_jobs().await.expect("the worker runs");
    let detail = app.detail(&officer, &id).await;
    assert_eq!(source(&detail, "website")["status"], "no_data");
    assert_eq!(source(&detail, "website")["records"], json!({}));
    assert_eq!(source(&detail, "crm")["status"], "answered");
    assert_eq!(source(&detail, "callcenter")["status"], "waiting_owner");
    let r = app
        .act(&officer, &id, "complete", json!({"summary": "done"}))
        .await;
    assert_eq!(r.code(), "sources_unanswered");
    assert_eq!(r.body["details"]["sources"], json!(["callcenter"]));

    // The owner is asked at once, and reminded once a day until they answer.
    app.deliver().await;
    let to_owner = |app: &TestApp| {
        app.outbox_messages()
            .into_iter()
            .filter(|m| m.to == "calls@example.com")
            .collect::<Vec<_>>()
    };
    let asked = to_owner(&app);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].subject.contains("呼叫中心"),
        "{}",
        asked[0].subject
    );
    assert!(asked[0].text.contains(&format!(
        "/api/v1/officer/requests/{id}/sources/callcenter/answer"
    )));
    assert!(
        !asked[0].text.contains("li.lei"),
        "the requester's address is not mailed around"
    );
    app.services.sweep_deadlines().await.expect("a sweep");
    app.deliver().await;
    assert_eq!(to_owner(&app).len(), 1, "not reminded the same day");
    app.clock.advance(chrono::Duration::days(1));
    let report = app.services.sweep_deadlines().await.expect("a sweep");
    assert_eq!(report.owner_reminders, 1);
    let report = app
        .services
        .sweep_deadlines()
        .await
        .expect("a second sweep that day");
    assert_eq!(report.owner_reminders, 0, "once a day");
    app.deliver().await;
    let mails = to_owner(&app);
    assert_eq!(mails.len(), 2, "one reminder a day: {mails:?}");
    assert!(
        mails[1].subject.starts_with("【提醒】"),
        "{}",
        mails[1].subject
    );
    let officer = app.login("wang", rightsdesk_tests::OFFICER_PASSWORD).await;
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/sources/callcenter/answer"),
            Some(&officer),
            &json!({"no_data": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.clock.advance(chrono::Duration::days(1));
    app.services.sweep_deadlines().await.expect("a sweep");
    app.deliver().await;
    assert_eq!(to_owner(&app).len(), 2, "answered: no more reminders");
    handle.stop(true).await;
}

#[tokio::test]
async fn without_sources_there_is_nothing_to_collect_and_completion_is_not_held() {
    let app = TestApp::spawn().await;
    let (id, officer) = started_copy_request(&app).await;
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/collect"),
            Some(&officer),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "no_sources");
    let r = app
        .act(&officer, &id, "complete", json!({"summary": "done"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}
