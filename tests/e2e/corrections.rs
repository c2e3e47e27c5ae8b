//! Correction (PIPL 46): the officer sees each requested change beside the values the
//! sources hold now — a SQLite website, a PostgreSQL CRM, an `http` billing service and
//! a call centre's owner — approves or rejects it with a reason; the approved ones are
//! applied to exactly the requester's rows and confirmed to them; the event log holds
//! digests of the old and new values, never the values.

use std::sync::{Arc, Mutex};

use rightsdesk_core::ManualClock;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{TempDir, TestApp, TestDb, base_config, free_port, source_rows, start_time};
use sea_orm::{ConnectionTrait, Database};

use crate::collections::{SECRET, signed_service};

const OLD_ADDRESS: &str = "北京市海淀区中关村大街 1 号";
const NEW_ADDRESS: &str = "上海市浦东新区世纪大道 100 号";

async fn website_db(dir: &TempDir) -> String {
    let file = dir.0.join("website.db");
    let db = Database::connect(format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .expect("a source database");
    for sql in [
        "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT, name TEXT, address TEXT)",
        &format!(
            "INSERT INTO users VALUES ('u1', 'li.lei@example.com', '李雷', '{OLD_ADDRESS}'), ('u2', 'han@example.com', '韩梅梅', '{OLD_ADDRESS}')"
        ),
    ] {
        db.execute_unprepared(sql).await.expect("fill the source");
    }
    db.close().await.ok();
    format!("sqlite://{}", file.display())
}

async fn crm_db() -> TestDb {
    let db = TestDb::postgres().await;
    let conn = Database::connect(&db.url).await.expect("the CRM");
    for sql in [
        "CREATE TABLE customers (email TEXT, postal_address TEXT)".to_owned(),
        format!(
            "INSERT INTO customers VALUES ('li.lei@example.com', '{OLD_ADDRESS}'), ('han@example.com', '{OLD_ADDRESS}')"
        ),
    ] {
        conn.execute_unprepared(&sql).await.expect("fill the CRM");
    }
    conn.close().await.ok();
    db
}

fn sources_file(website: &str, crm: &str, billing_port: u16) -> String {
    format!(
        r#"
[[source]]
name = "website"
title_zh = "官网"
title_en = "Website"
owner = "web@example.com"
[source.sql]
url = "{website}"
[[source.sql.table]]
name = "users"
category = "account"
match = {{ email = "email" }}
columns = ["id", "name", "address"]
[source.sql.correct.address]
table = "users"
column = "address"
[source.sql.correct.name]
table = "users"
column = "name"

[[source]]
name = "crm"
title_zh = "客户关系系统"
title_en = "CRM"
owner = "crm@example.com"
[source.sql]
url = "{crm}"
[[source.sql.table]]
name = "customers"
category = "account"
match = {{ email = "email" }}
columns = ["postal_address"]
[source.sql.correct.address]
table = "customers"
column = "postal_address"

[[source]]
name = "billing"
title_zh = "计费系统"
title_en = "Billing"
owner = "billing@example.com"
categories = ["account"]
correctable = ["address"]
timeout_secs = 2
[source.http]
url = "http://127.0.0.1:{billing_port}/calls"
secret = "{SECRET}"
correct = true

[[source]]
name = "callcenter"
title_zh = "呼叫中心"
title_en = "Call centre"
owner = "calls@example.com"
categories = ["feedback"]
correctable = ["address"]
[source.manual]
"#
    )
}

fn source<'a>(change: &'a Value, name: &str) -> &'a Value {
    change["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["source"] == name))
        .unwrap_or_else(|| panic!("no {name} in {change}"))
}

fn change_of<'a>(detail: &'a Value, source: &str) -> &'a Value {
    detail["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|x| x["source"] == source))
        .unwrap_or_else(|| panic!("no change of {source} in {detail}"))
}

#[tokio::test]
async fn approved_corrections_reach_every_source_and_the_log_keeps_only_digests() {
    let dir = TempDir::new();
    let website = website_db(&dir).await;
    let crm = crm_db().await;
    let port = free_port();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let billing = signed_service(port, "/calls", move |call| {
        seen.lock().expect("the calls").push(call.clone());
        match call["action"].as_str() {
            Some("current") => Some(json!({"values": {"address": [OLD_ADDRESS]}})),
            Some("correct") => Some(json!({"fields": [
                {"field": "address", "table": "invoices_to", "rows": 2, "old_values": [OLD_ADDRESS]}
            ]})),
            _ => None,
        }
    })
    .await;
    let path = dir.0.join("sources.toml");
    std::fs::write(&path, sources_file(&website, &crm.url, port)).expect("sources");
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.sources.file = Some(path);
    let app = TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await;

    // Li Lei moved; she also asks for a name and a field nobody holds.
    let filed = app
        .file(
            "correction",
            json!({"changes": [
                {"field": "address", "new_value": NEW_ADDRESS, "reason": "搬家了"},
                {"field": "name", "new_value": "李 磊"},
                {"field": "星座", "new_value": "天秤座"}
            ]}),
        )
        .await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    app.deliver().await;
    let link = app.verification_message("li.lei@example.com").link_path();
    let r = app
        .client
        .post(format!("{}{link}", app.base))
        .send()
        .await
        .expect("the link answers");
    assert!(r.status().is_success());
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let corrections = format!("/api/v1/officer/requests/{id}/corrections");
    // Decisions wait for the request to be in progress.
    let r = app
        .post(
            &corrections,
            Some(&officer),
            &json!({"decisions": [{"change": 0, "decision": "approve"}]}),
        )
        .await;
    assert_eq!(r.code(), "correction_not_allowed", "{:?}", r.body);
    let r = app.act(&officer, &id, "start", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // Each change beside what the sources hold now.
    let r = app.get(&corrections, Some(&officer)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let view = r.body;
    let address = &view["changes"][0];
    assert_eq!(address["new_value"], NEW_ADDRESS);
    assert_eq!(source(address, "website")["current"], json!([OLD_ADDRESS]));
    assert_eq!(source(address, "crm")["current"], json!([OLD_ADDRESS]));
    assert_eq!(source(address, "billing")["current"], json!([OLD_ADDRESS]));
    let owner = source(address, "callcenter");
    assert_eq!(owner["applied_by_rightsdesk"], false);
    assert!(owner["current"].is_null());
    assert_eq!(
        view["changes"][1]["sources"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        source(&view["changes"][1], "website")["current"],
        json!(["李雷"])
    );
    assert_eq!(view["changes"][2]["sources"], json!([]));
    assert_eq!(
        view["correctable"],
        json!({"address": ["website", "crm", "billing", "callcenter"], "name": ["website"]})
    );
    assert_eq!(view["decided"], false);

    // Bad decisions are refused and record nothing.
    let events_before = app.count("events").await;
    for (body, field, code) in [
        (
            json!({"decisions": [{"change": 2, "decision": "approve"}]}),
            "decisions[0].field",
            "field_not_correctable",
        ),
        (
            json!({"decisions": [{"change": 7, "decision": "approve"}]}),
            "decisions[0].change",
            "invalid_value",
        ),
        (
            json!({"decisions": [{"change": 1, "decision": "reject"}]}),
            "decisions[0].reason",
            "required",
        ),
        (
            json!({"decisions": [{"change": 1, "decision": "maybe"}]}),
            "decisions[0].decision",
            "invalid_value",
        ),
    ] {
        let r = app.post(&corrections, Some(&officer), &body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let found = r.body["details"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["field"] == field && f["code"] == code);
        assert!(found, "{body}: {:?}", r.body);
    }
    assert_eq!(app.count("events").await, events_before);
    let r = app
        .act(&officer, &id, "complete", json!({"summary": "done"}))
        .await;
    assert_eq!(r.code(), "corrections_undecided");
    assert_eq!(r.body["details"]["changes"], json!([0, 1, 2]));

    // The address is approved, the name rejected: nothing is applied before the last.
    let r = app
        .post(
            &corrections,
            Some(&officer),
            &json!({"decisions": [
                {"change": 0, "decision": "approve"},
                {"change": 1, "decision": "reject", "reason": "与您身份证件上的姓名不一致"}
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["changes"][0]["decision"]["decision"], "approved");
    assert_eq!(r.body["changes"][0]["decision"]["field"], "address");
    assert!(app.detail(&officer, &id).await["changes"] == json!([]));
    let r = app
        .post(
            &corrections,
            Some(&officer),
            &json!({"decisions": [{"change": 0, "decision": "reject", "reason": "changed my mind"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "already_decided");
    let r = app
        .post(
            &corrections,
            Some(&officer),
            &json!({"decisions": [{"change": 2, "decision": "reject", "reason": "我们不保存该信息"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["decided"], true);

    // Applied in every source that holds the address; the call centre is its owner's.
    app.services.run_due_jobs().await.expect("the worker runs");
    let detail = app.detail(&officer, &id).await;
    for name in ["website", "crm", "billing"] {
        let c = change_of(&detail, name);
        assert_eq!(c["outcome"], "applied", "{c}");
        let field = &c["changes"][0];
        assert_eq!(field["field"], "address");
        let old = field["old_value_digests"][0].as_str().expect("a digest");
        let new = field["new_value_digest"].as_str().expect("a digest");
        assert!(
            old.starts_with("hmac-sha256:") && old.len() == 12 + 64,
            "{old}"
        );
        assert_ne!(old, new);
    }
    // The same value gives the same digest wherever it was held.
    assert_eq!(
        change_of(&detail, "website")["changes"][0]["old_value_digests"],
        change_of(&detail, "crm")["changes"][0]["old_value_digests"]
    );
    let users = source_rows(&website, "SELECT * FROM users ORDER BY id").await;
    assert_eq!(users[0]["address"], NEW_ADDRESS);
    assert_eq!(users[0]["name"], "李雷", "the name was rejected");
    assert_eq!(users[1]["address"], OLD_ADDRESS, "another person's row");
    let customers = source_rows(&crm.url, "SELECT * FROM customers ORDER BY email").await;
    assert_eq!(customers[0]["postal_address"], OLD_ADDRESS, "han");
    assert_eq!(customers[1]["postal_address"], NEW_ADDRESS, "li.lei");
    let call = calls
        .lock()
        .expect("calls")
        .iter()
        .find(|c| c["action"] == "correct")
        .cloned()
        .expect("a correct call");
    assert_eq!(
        call["changes"],
        json!([{"field": "address", "value": NEW_ADDRESS}])
    );
    assert_eq!(call["identifiers"]["email"], "li.lei@example.com");
    assert_eq!(change_of(&detail, "callcenter")["status"], "waiting_owner");
    app.deliver().await;
    let task = app
        .outbox_messages()
        .into_iter()
        .find(|m| m.to == "calls@example.com")
        .expect("the call centre is asked");
    assert!(task.text.contains("address"), "{}", task.text);
    assert!(
        !task.text.contains(NEW_ADDRESS),
        "values stay in the console"
    );
    let r = app
        .act(&officer, &id, "complete", json!({"summary": "done"}))
        .await;
    assert_eq!(r.code(), "sources_unchanged");
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/changes/callcenter/confirm"),
            Some(&officer),
            &json!({"outcome": "applied", "note": "updated in the CRM of the call centre"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // Completed: the requester is told what was corrected and what not, and why.
    let r = app
        .act(
            &officer,
            &id,
            "complete",
            json!({"summary": "已按您的要求更正。"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.deliver().await;
    let done = app
        .outbox_messages()
        .into_iter()
        .find(|m| m.to == "li.lei@example.com" && m.text.contains("已按您的要求更正"))
        .expect("the completion notice");
    assert!(done.text.contains("address：已在"), "{}", done.text);
    assert!(
        done.text
            .contains("name：未更正，原因：与您身份证件上的姓名不一致"),
        "{}",
        done.text
    );

    // The log proves each step without holding the values.
    let detail = app.detail(&officer, &id).await;
    let timeline = detail["timeline"].to_string();
    for value in [OLD_ADDRESS, NEW_ADDRESS, "李 磊"] {
        assert!(!timeline.contains(value), "{value} in the log");
    }
    let events: Vec<&str> = detail["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for expected in [
        "current_values_read",
        "correction_decided",
        "source_changed",
        "completed",
    ] {
        assert!(events.contains(&expected), "{expected}: {events:?}");
    }
    billing.stop(true).await;
}

#[tokio::test]
async fn only_a_correction_has_corrections() {
    let app = TestApp::spawn().await;
    let filed = app
        .file("access", rightsdesk_tests::valid_details("access"))
        .await;
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let id = filed["id"].as_str().expect("an id");
    let r = app
        .get(
            &format!("/api/v1/officer/requests/{id}/corrections"),
            Some(&officer),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "correction_not_allowed");
    let (_, auditor) = app.officer("audit", &["auditor"]).await;
    let r = app
        .get(
            &format!("/api/v1/officer/requests/{id}/corrections"),
            Some(&auditor),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
