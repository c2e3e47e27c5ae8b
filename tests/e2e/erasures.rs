//! Deletion (SPEC §7, PIPL 47): an officer has the verified subject of a deletion
//! request erased from every source — a SQLite website (rows deleted, anonymised and
//! unlinked, the marketing list kept under a retention rule), a PostgreSQL forum whose
//! backups rotate weekly, an `http` CRM that erases on a signed call, and a call centre
//! whose owner erases by hand and is confirmed by an officer. Each source ends with its
//! outcome; the request completes only when all have one; other people's rows are
//! untouched; the kept rows are erased by the worker when their retention ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::TimeDelta;
use rightsdesk_core::ManualClock;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{
    TempDir, TestApp, TestDb, base_config, free_port, start_time, valid_details,
};
use sea_orm::{ConnectionTrait, Database, FromQueryResult, Statement};

use crate::collections::{SECRET, signed_service, started_request};

/// The website: li.lei's account, downloads and two marketing subscriptions, and
/// others' — one with li.lei's mobile number, which li.lei did not prove.
async fn website_db(dir: &TempDir) -> String {
    let file = dir.0.join("website.db");
    let db = Database::connect(format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .expect("a source database");
    for sql in [
        "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT, mobile TEXT, name TEXT, status TEXT DEFAULT 'active')",
        "CREATE TABLE downloads (user_id TEXT, product TEXT)",
        "CREATE TABLE subscribers (email TEXT, channel TEXT, restricted_until TEXT)",
        "INSERT INTO users (id, email, mobile, name) VALUES ('u1', 'li.lei@example.com', '13812345678', '李雷'), ('u2', 'han@example.com', '13700000000', '韩梅梅'), ('u3', 'other@example.com', '13812345678', '别人')",
        "INSERT INTO downloads VALUES ('u1', 'ZStack'), ('u1', 'ZStack Cloud'), ('u2', 'ZStack')",
        "INSERT INTO subscribers VALUES ('li.lei@example.com', 'email', NULL), ('li.lei@example.com', 'sms', NULL), ('han@example.com', 'email', NULL)",
    ] {
        db.execute_unprepared(sql).await.expect("fill the source");
    }
    db.close().await.ok();
    format!("sqlite://{}", file.display())
}

/// The forum on PostgreSQL: li.lei's posts and han's.
async fn forum_db() -> TestDb {
    let db = TestDb::postgres().await;
    let conn = Database::connect(&db.url).await.expect("the forum");
    for sql in [
        "CREATE TABLE posts (author_email TEXT, body TEXT)",
        "INSERT INTO posts VALUES ('li.lei@example.com', '第一帖'), ('li.lei@example.com', '第二帖'), ('han@example.com', '你好')",
    ] {
        conn.execute_unprepared(sql).await.expect("fill the forum");
    }
    conn.close().await.ok();
    db
}

fn sources_file(website: &str, forum: &str, crm_port: u16) -> String {
    format!(
        r#"
[[retention]]
category = "marketing"
basis_zh = "《电子商务法》第三十一条"
basis_en = "E-Commerce Law art. 31"
days = 30

[[source]]
name = "website"
title_zh = "官网"
title_en = "Website"
owner = "web@example.com"
[source.sql]
url = "{website}"
deactivate = {{ table = "users", set = {{ status = "closed" }} }}
[[source.sql.table]]
name = "users"
category = "account"
key = "id"
match = {{ email = "email", mobile = "mobile" }}
columns = ["id", "email", "name"]
erase = "anonymise"
erase_columns = ["email", "mobile", "name"]
[[source.sql.table]]
name = "downloads"
category = "downloads"
parent = {{ table = "users", column = "user_id" }}
columns = ["product"]
erase = "null"
erase_columns = ["user_id"]
[[source.sql.table]]
name = "subscribers"
category = "marketing"
match = {{ email = "email" }}
columns = ["channel"]
erase = "delete"
restrict_column = "restricted_until"

[[source]]
name = "forum"
title_zh = "论坛"
title_en = "Forum"
owner = "forum@example.com"
backup_rotation_days = 7
[source.sql]
url = "{forum}"
[[source.sql.table]]
name = "posts"
category = "forum"
match = {{ email = "author_email" }}
columns = ["body"]
erase = "delete"

[[source]]
name = "crm"
title_zh = "客服系统"
title_en = "CRM"
owner = "crm@example.com"
categories = ["tickets"]
timeout_secs = 2
[source.http]
url = "http://127.0.0.1:{crm_port}/calls"
secret = "{SECRET}"
erase = true

[[source]]
name = "callcenter"
title_zh = "呼叫中心"
title_en = "Call centre"
owner = "calls@example.com"
categories = ["feedback"]
[source.manual]
instructions_en = "Delete the person's call recordings."
"#
    )
}

/// A CRM that erases on a signed call: two tickets of li.lei's, none of anyone else's
/// (none left after the first erasure).
async fn crm_service(port: u16, erasures: Arc<AtomicUsize>) -> actix_web::dev::ServerHandle {
    signed_service(port, "/calls", move |call| match call["action"].as_str() {
        Some("erase") if call["identifiers"]["email"] == "li.lei@example.com" => {
            let first = erasures.fetch_add(1, Ordering::SeqCst) == 0;
            Some(
                json!({"tables": [{"table": "tickets", "category": "tickets",
                "outcome": "deleted", "rows": if first { 2 } else { 0 }}]}),
            )
        }
        Some("erase") => Some(json!({"tables": []})),
        _ => None,
    })
    .await
}

/// Every row of `table` in the source at `url`, as JSON text, in a stable order.
async fn rows(url: &str, table: &str) -> Vec<String> {
    let db = Database::connect(url).await.expect("the source");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT * FROM {table}"),
        ))
        .await
        .expect("read the source");
    db.close().await.ok();
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| Value::from_query_result(r, "").expect("a row").to_string())
        .collect();
    out.sort();
    out
}

/// The service with the four sources, and the sources (keep `_dir`: it holds the
/// website's file).
struct Setup {
    app: TestApp,
    website: String,
    forum: TestDb,
    crm: actix_web::dev::ServerHandle,
    _dir: TempDir,
}

async fn setup() -> Setup {
    let dir = TempDir::new();
    let website = website_db(&dir).await;
    let forum = forum_db().await;
    let crm_port = free_port();
    let crm = crm_service(crm_port, Arc::new(AtomicUsize::new(0))).await;
    let path = dir.0.join("sources.toml");
    std::fs::write(&path, sources_file(&website, &forum.url, crm_port)).expect("sources");
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.sources.file = Some(path);
    let app = TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await;
    Setup {
        app,
        website,
        forum,
        crm,
        _dir: dir,
    }
}

/// Files a request of `kind` with `details` as li.lei, verifies and starts it, and
/// erases: returns (the filing's answer, the officer's token, the request's detail).
async fn erased(app: &TestApp, kind: &str, details: Value) -> (Value, String, Value) {
    let (filed, officer) = started_request(app, kind, details).await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/erase"),
            Some(&officer),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    app.services.run_due_jobs().await.expect("the worker runs");
    let detail = app.detail(&officer, &id).await;
    (filed, officer, detail)
}

fn erasure<'a>(detail: &'a Value, source: &str) -> &'a Value {
    detail["erasures"]
        .as_array()
        .and_then(|e| e.iter().find(|x| x["source"] == source))
        .unwrap_or_else(|| panic!("no erasure of {source} in {detail}"))
}

#[tokio::test]
async fn every_source_is_erased_with_its_outcome_and_kept_data_goes_when_its_retention_ends() {
    let Setup {
        app,
        website,
        forum,
        crm,
        _dir,
    } = setup().await;
    let users_before = rows(&website, "users").await;
    let (filed, officer, detail) =
        erased(&app, "deletion", json!({"reason": "no longer a customer"})).await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    assert_eq!(detail["erasures"].as_array().map(Vec::len), Some(4));

    // The website: the account anonymised, downloads unlinked, marketing kept.
    let website_erasure = erasure(&detail, "website");
    assert_eq!(website_erasure["status"], "done", "{website_erasure}");
    assert_eq!(website_erasure["outcome"], "restricted");
    let until = (start_time() + TimeDelta::hours(8) + TimeDelta::days(30))
        .date_naive()
        .to_string();
    assert_eq!(website_erasure["restricted_until"], json!(until));
    assert_eq!(
        website_erasure["restricted"]["marketing"]["basis_en"],
        "E-Commerce Law art. 31"
    );
    let users = rows(&website, "users").await;
    assert_eq!(users.len(), 3);
    assert!(
        !users
            .iter()
            .any(|u| u.contains("li.lei") || u.contains("李雷"))
    );
    assert!(users.iter().any(|u| u.contains("\"u1\"")), "the key stays");
    for other in users_before.iter().filter(|u| !u.contains("\"u1\"")) {
        assert!(users.contains(other), "{other} changed");
    }
    let downloads = rows(&website, "downloads").await;
    assert_eq!(downloads.iter().filter(|d| d.contains("\"u1\"")).count(), 0);
    assert_eq!(downloads.len(), 3);
    assert_eq!(downloads.iter().filter(|d| d.contains("\"u2\"")).count(), 1);
    let subscribers = rows(&website, "subscribers").await;
    assert_eq!(
        subscribers
            .iter()
            .filter(|s| s.contains("li.lei") && s.contains(&until))
            .count(),
        2,
        "{subscribers:?}"
    );
    assert!(
        subscribers
            .iter()
            .any(|s| s.contains("han@example.com") && s.contains("null"))
    );

    // The forum: deleted live, its backups still hold it for a week.
    let forum_erasure = erasure(&detail, "forum");
    assert_eq!(
        forum_erasure["outcome"], "backup_pending",
        "{forum_erasure}"
    );
    let week = (start_time() + TimeDelta::hours(8) + TimeDelta::days(7))
        .date_naive()
        .to_string();
    assert_eq!(forum_erasure["backup_until"], json!(week));
    assert_eq!(rows(&forum.url, "posts").await.len(), 1);
    // The CRM erased on its signed call; the call centre's owner was asked.
    assert_eq!(erasure(&detail, "crm")["outcome"], "deleted");
    assert_eq!(erasure(&detail, "crm")["tables"][0]["rows"], 2);
    let callcenter = erasure(&detail, "callcenter");
    assert_eq!(callcenter["status"], "waiting_owner");
    app.deliver().await;
    let task = app
        .outbox_messages()
        .into_iter()
        .find(|m| m.to == "calls@example.com")
        .expect("the call centre's owner is asked");
    assert!(
        task.text.contains(&format!(
            "/api/v1/officer/requests/{id}/erasures/callcenter/confirm"
        )),
        "{}",
        task.text
    );

    // Not complete while the call centre has no outcome.
    let r = app
        .act(&officer, &id, "complete", json!({"summary": "erased"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "sources_unerased");
    assert_eq!(r.body["details"]["sources"], json!(["callcenter"]));

    // A bad confirmation changes nothing; a good one records the outcome.
    let confirm = format!("/api/v1/officer/requests/{id}/erasures/callcenter/confirm");
    for bad in [
        json!({"outcome": "vanished"}),
        json!({"outcome": "restricted"}),
        json!({"outcome": "deleted", "restricted_categories": ["feedback"]}),
        json!({"outcome": "backup_pending"}),
        json!({"outcome": "deleted", "surprise": true}),
        json!("deleted"),
    ] {
        let r = app.post(&confirm, Some(&officer), &bad).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {:?}",
            r.body
        );
        assert_eq!(r.code(), "validation_failed");
    }
    assert_eq!(
        erasure(&app.detail(&officer, &id).await, "callcenter")["status"],
        "waiting_owner"
    );
    let r = app
        .post(
            &confirm,
            Some(&officer),
            &json!({"outcome": "deleted", "note": "3 recordings deleted"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(&confirm, Some(&officer), &json!({"outcome": "deleted"}))
        .await;
    assert_eq!(r.code(), "source_not_waiting");

    let r = app
        .act(&officer, &id, "complete", json!({"summary": "erased"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let events: Vec<Value> = r.body["timeline"].as_array().cloned().unwrap_or_default();
    let erased: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "source_erased")
        .collect();
    assert_eq!(erased.len(), 4, "{events:?}");
    assert!(
        !serde_json::to_string(&events)
            .unwrap_or_default()
            .contains("li.lei"),
        "names and counts only in the event log"
    );

    // The signed certificate, in the completed event and attached to the notice.
    let certificate = events
        .iter()
        .find(|e| e["event"] == "completed")
        .map(|e| e["data"]["certificate"].clone())
        .expect("a certificate in the completed event");
    let doc = &certificate["certificate"];
    assert_eq!(doc["reference"], filed["reference"]);
    let outcomes: Vec<String> = doc["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| {
            format!(
                "{}: {}",
                s["source"].as_str().unwrap_or(""),
                s["outcome"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            "callcenter: deleted",
            "crm: deleted",
            "forum: backup_pending",
            "website: restricted"
        ]
    );
    assert_eq!(
        doc["sources"][3]["restricted"]["marketing"]["basis_zh"],
        "《电子商务法》第三十一条"
    );
    assert!(
        !certificate.to_string().contains("li.lei"),
        "no personal data"
    );
    app.deliver().await;
    let notice = app
        .outbox_messages()
        .into_iter()
        .rfind(|m| m.to == "li.lei@example.com" && !m.attachments.is_empty())
        .expect("the completion notice with the certificate");
    let (name, bytes) = &notice.attachments[0];
    assert!(name.starts_with("deletion-certificate-PR-"), "{name}");
    let key = app.services.certificate_public_key();
    let r = app.get("/api/v1/certificates/public-key", None).await;
    assert_eq!(r.body["public_key"], json!(key.public_key));
    let verified = rightsdesk_core::certificates::verify(bytes, Some(&key.public_key))
        .expect("the attached certificate verifies");
    assert_eq!(verified.sources.len(), 4);
    let text = String::from_utf8(bytes.clone()).expect("JSON text");
    let tampered = text.replacen("backup_pending", "deleted", 1);
    assert!(rightsdesk_core::certificates::verify(tampered.as_bytes(), None).is_err());

    // The forum's backups still hold li.lei's posts: a restore brings them back, and the
    // tombstones erase them again.
    let tombstones = app.services.tombstones(None).await.expect("tombstones");
    assert_eq!(tombstones.len(), 1, "{tombstones:?}");
    assert_eq!(tombstones[0].source, "forum");
    assert_eq!(tombstones[0].email.as_deref(), Some("li.lei@example.com"));
    assert_eq!(tombstones[0].backup_until.as_deref(), Some(week.as_str()));
    let restored = Database::connect(&forum.url).await.expect("the forum");
    restored
        .execute_unprepared(
            "INSERT INTO posts VALUES ('li.lei@example.com', '第一帖'), ('li.lei@example.com', '第二帖')",
        )
        .await
        .expect("restore the backup");
    restored.close().await.ok();
    let again = app
        .services
        .reapply_tombstones("forum")
        .await
        .expect("re-applied");
    assert_eq!((again.erasures, again.rows), (1, 2));
    assert_eq!(rows(&forum.url, "posts").await.len(), 1);

    // The retention ends: the kept subscriptions go, han's stays.
    assert_eq!(app.services.end_restrictions().await.expect("runs"), 0);
    app.clock.advance(TimeDelta::days(31));
    assert_eq!(app.services.end_restrictions().await.expect("runs"), 1);
    let subscribers = rows(&website, "subscribers").await;
    assert_eq!(subscribers.len(), 1, "{subscribers:?}");
    assert!(subscribers[0].contains("han@example.com"));
    assert_eq!(app.services.end_restrictions().await.expect("runs"), 0);
    // The forum's backups have rotated since.
    assert!(
        app.services
            .tombstones(None)
            .await
            .expect("tombstones")
            .is_empty()
    );
    // A month on, the first officer's token has expired.
    let (_, officer) = app.officer("zhao", &["officer"]).await;
    let detail = app.detail(&officer, &id).await;
    assert!(erasure(&detail, "website")["restriction_ended_at"].is_string());
    assert!(
        detail["timeline"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["event"] == "restriction_ended"))
    );
    crm.stop(true).await;
}

#[tokio::test]
async fn an_account_closure_deactivates_the_account_before_erasing() {
    let Setup {
        app,
        website,
        forum: _forum,
        crm,
        _dir,
    } = setup().await;
    let (_, _, detail) = erased(&app, "account_closure", valid_details("account_closure")).await;
    let website_erasure = erasure(&detail, "website");
    assert_eq!(
        website_erasure["tables"][0],
        json!({"table": "users", "category": "account", "outcome": "deactivated", "rows": 1})
    );
    let users = rows(&website, "users").await;
    assert_eq!(
        users.iter().filter(|u| u.contains("\"closed\"")).count(),
        1,
        "only li.lei's account: {users:?}"
    );
    assert!(
        users
            .iter()
            .any(|u| u.contains("\"u1\"") && u.contains("\"closed\""))
    );
    crm.stop(true).await;
}

#[tokio::test]
async fn a_deletion_that_names_categories_erases_only_those() {
    let Setup {
        app,
        website,
        forum,
        crm,
        _dir,
    } = setup().await;
    let users_before = rows(&website, "users").await;
    let (_, _, detail) = erased(&app, "deletion", valid_details("deletion")).await;
    // `marketing` only: kept under its retention rule; nothing else is touched.
    let website_erasure = erasure(&detail, "website");
    assert_eq!(
        website_erasure["outcome"], "restricted",
        "{website_erasure}"
    );
    assert_eq!(
        website_erasure["tables"],
        json!([{"table": "subscribers", "category": "marketing", "outcome": "restricted", "rows": 2}])
    );
    assert_eq!(rows(&website, "users").await, users_before);
    assert_eq!(rows(&website, "downloads").await.len(), 3);
    assert_eq!(erasure(&detail, "forum")["outcome"], "no_data");
    assert_eq!(rows(&forum.url, "posts").await.len(), 3);
    // The CRM was told the scope, and answered within it.
    assert_eq!(erasure(&detail, "crm")["status"], "failed");
    assert_eq!(erasure(&detail, "crm")["error_code"], "protocol");
    crm.stop(true).await;
}

#[tokio::test]
async fn only_a_deletion_or_account_closure_in_progress_is_erased_for() {
    let dir = TempDir::new();
    let website = website_db(&dir).await;
    let forum = forum_db().await;
    let path = dir.0.join("sources.toml");
    std::fs::write(&path, sources_file(&website, &forum.url, free_port())).expect("sources");
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.sources.file = Some(path);
    let app = TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await;
    let (filed, officer) = started_request(&app, "copy", valid_details("copy")).await;
    let id = filed["id"].as_str().expect("an id");
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/erase"),
            Some(&officer),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "erasure_not_allowed");
    assert_eq!(app.count("erasures").await, 0);
    let before = rows(&website, "users").await;
    assert_eq!(rows(&website, "users").await, before);
}
