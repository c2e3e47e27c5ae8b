//! Consent (SPEC §7): the ledger per subject and purpose, read and recorded by the
//! company's systems; a consent withdrawal takes effect in the ledger the moment the
//! requester is verified, and reaches every source that uses the purpose — a SQLite
//! website and a PostgreSQL mailing list through their columns, an `http` SMS platform
//! on a signed call, an events team's list by its owner — before it completes with a
//! confirmation to the requester.

use std::sync::{Arc, Mutex};

use chrono::TimeDelta;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rightsdesk_core::{Clock, ManualClock};
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{
    TempDir, TestApp, TestDb, base_config, filing, free_port, source_rows, start_time,
};
use sea_orm::{ConnectionTrait, Database};

use crate::collections::{SECRET, signed_service};

/// The website's members, li.lei opted in to text messages and email, and others.
async fn website_db(dir: &TempDir) -> String {
    let file = dir.0.join("website.db");
    let db = Database::connect(format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .expect("a source database");
    for sql in [
        "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT, mobile TEXT, sms_opt_in INTEGER, email_opt_in INTEGER)",
        "INSERT INTO users VALUES ('u1', 'li.lei@example.com', '13812345678', 1, 1), ('u2', 'han@example.com', '13700000000', 1, 1)",
    ] {
        db.execute_unprepared(sql).await.expect("fill the source");
    }
    db.close().await.ok();
    format!("sqlite://{}", file.display())
}

/// The mailing list on PostgreSQL.
async fn mailer_db() -> TestDb {
    let db = TestDb::postgres().await;
    let conn = Database::connect(&db.url).await.expect("the mailer");
    for sql in [
        "CREATE TABLE subscribers (email TEXT, active BOOLEAN)",
        "INSERT INTO subscribers VALUES ('li.lei@example.com', TRUE), ('han@example.com', TRUE)",
    ] {
        conn.execute_unprepared(sql).await.expect("fill the mailer");
    }
    conn.close().await.ok();
    db
}

fn sources_file(website: &str, mailer: &str, sms_port: u16) -> String {
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
match = {{ email = "email", mobile = "mobile" }}
columns = ["id", "email"]
[source.sql.consent.marketing_sms]
table = "users"
set = {{ sms_opt_in = 0 }}
[source.sql.consent.marketing_email]
table = "users"
set = {{ email_opt_in = 0 }}

[[source]]
name = "mailer"
title_zh = "邮件营销平台"
title_en = "Mailer"
owner = "mail@example.com"
[source.sql]
url = "{mailer}"
[[source.sql.table]]
name = "subscribers"
category = "marketing"
match = {{ email = "email" }}
columns = ["email"]
[source.sql.consent.marketing_email]
table = "subscribers"
set = {{ active = false }}

[[source]]
name = "sms"
title_zh = "短信平台"
title_en = "SMS platform"
owner = "sms@example.com"
categories = ["marketing"]
purposes = ["marketing_sms"]
timeout_secs = 2
[source.http]
url = "http://127.0.0.1:{sms_port}/calls"
secret = "{SECRET}"
consent = true

[[source]]
name = "events"
title_zh = "市场活动"
title_en = "Events"
owner = "events@example.com"
categories = ["events"]
purposes = ["marketing_email"]
[source.manual]

[[source]]
name = "callcenter"
title_zh = "呼叫中心"
title_en = "Call centre"
owner = "calls@example.com"
categories = ["feedback"]
purposes = ["marketing_phone"]
[source.manual]
"#
    )
}

struct Setup {
    app: TestApp,
    website: String,
    mailer: TestDb,
    sms: actix_web::dev::ServerHandle,
    /// The calls the SMS platform received.
    calls: Arc<Mutex<Vec<Value>>>,
    _dir: TempDir,
}

const ACCOUNT_ISSUER: &str = "https://accounts.example.com";
const ACCOUNT_SECRET: &str = "the-account-system-shared-secret-0123456789";

async fn setup() -> Setup {
    let dir = TempDir::new();
    let website = website_db(&dir).await;
    let mailer = mailer_db().await;
    let sms_port = free_port();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let sms = signed_service(sms_port, "/calls", move |call| {
        seen.lock().expect("the calls").push(call.clone());
        match call["action"].as_str() {
            Some("consent") => Some(json!({"purposes": call["purposes"]
                .as_array()
                .expect("purposes")
                .iter()
                .map(|p| json!({"purpose": p, "table": "sms_subscriptions", "rows": 1}))
                .collect::<Vec<_>>()})),
            _ => None,
        }
    })
    .await;
    let path = dir.0.join("sources.toml");
    std::fs::write(&path, sources_file(&website, &mailer.url, sms_port)).expect("sources");
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.sources.file = Some(path);
    let login = &mut config.account_login;
    login.issuer = Some(ACCOUNT_ISSUER.to_owned());
    login.algorithm = "HS256".to_owned();
    login.key = Some(ACCOUNT_SECRET.to_owned());
    let app = TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await;
    Setup {
        app,
        website,
        mailer,
        sms,
        calls,
        _dir: dir,
    }
}

/// li.lei's consents, as the company's systems read them.
async fn consents(app: &TestApp, token: &str) -> Value {
    let r = app
        .post(
            "/api/v1/consents/query",
            Some(token),
            &json!({"email": "LI.LEI@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

fn state<'a>(consents: &'a Value, purpose: &str) -> &'a Value {
    consents["consents"]
        .as_array()
        .and_then(|c| c.iter().find(|x| x["purpose"] == purpose))
        .unwrap_or_else(|| panic!("no consent to {purpose} in {consents}"))
}

fn change<'a>(detail: &'a Value, source: &str) -> &'a Value {
    detail["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|x| x["source"] == source))
        .unwrap_or_else(|| panic!("no change of {source} in {detail}"))
}

#[tokio::test]
async fn a_withdrawal_takes_effect_at_verification_and_reaches_every_source_that_uses_the_purpose()
{
    let Setup {
        app,
        website,
        mailer,
        sms,
        calls,
        _dir,
    } = setup().await;
    let (_, system) = app.officer("crm", &["system"]).await;
    // The website records li.lei's consents when she signs up.
    let signed_up = (start_time() - TimeDelta::days(100)).to_rfc3339();
    for purpose in ["marketing_sms", "marketing_phone", "marketing_email"] {
        let r = app
            .post(
                "/api/v1/consents",
                Some(&system),
                &json!({
                    "subject": {"email": "li.lei@example.com", "phone": "13812345678"},
                    "purpose": purpose,
                    "state": "given",
                    "method": "web_form",
                    "policy_version": "2026-06",
                    "at": signed_up,
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let before = consents(&app, &system).await;
    assert_eq!(before["subject_known"], true);
    assert_eq!(state(&before, "marketing_sms")["active"], true);
    assert_eq!(before["history"].as_array().map(Vec::len), Some(3));

    // She withdraws text messages and email; once verified, the ledger says so at once,
    // before any source has been changed.
    let filed = app
        .file(
            "consent_withdrawal",
            json!({"purposes": ["marketing_sms", "marketing_email"]}),
        )
        .await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        state(&consents(&app, &system).await, "marketing_sms")["state"],
        "given",
        "not before verification"
    );
    app.deliver().await;
    let path = app.verification_message("li.lei@example.com").link_path();
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .send()
        .await
        .expect("the link answers");
    assert!(r.status().is_success());
    let now = consents(&app, &system).await;
    for purpose in ["marketing_sms", "marketing_email"] {
        let c = state(&now, purpose);
        assert_eq!(c["state"], "withdrawn", "{c}");
        assert_eq!(c["active"], false);
        assert_eq!(c["since"], json!(start_time()));
    }
    assert_eq!(state(&now, "marketing_phone")["active"], true);
    let history = now["history"].as_array().expect("a history");
    assert_eq!(history.len(), 5, "appended, never rewritten: {history:?}");
    assert!(
        history
            .iter()
            .filter(|h| h["state"] == "withdrawn")
            .all(|h| h["request_id"] == json!(id) && h["method"] == "rights_request")
    );
    assert_eq!(
        source_rows(&website, "SELECT * FROM users WHERE id = 'u1'").await[0]["sms_opt_in"],
        1
    );

    // Every source that uses a withdrawn purpose has a change; the call centre (phone
    // only) has none.
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let detail = app.detail(&officer, &id).await;
    let names: Vec<&str> = detail["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["source"].as_str())
        .collect();
    assert_eq!(names, ["events", "mailer", "sms", "website"]);
    app.services.run_due_jobs().await.expect("the worker runs");
    let detail = app.detail(&officer, &id).await;

    // The website: exactly li.lei's columns; han's row as it was.
    let website_change = change(&detail, "website");
    assert_eq!(website_change["outcome"], "applied", "{website_change}");
    assert_eq!(website_change["changes"].as_array().map(Vec::len), Some(2));
    let users = source_rows(&website, "SELECT * FROM users ORDER BY id").await;
    assert_eq!(users[0]["sms_opt_in"], 0);
    assert_eq!(users[0]["email_opt_in"], 0);
    assert_eq!(users[1]["sms_opt_in"], 1);
    assert_eq!(users[1]["email_opt_in"], 1);
    // The mailer on PostgreSQL.
    assert_eq!(change(&detail, "mailer")["outcome"], "applied");
    let subscribers = source_rows(&mailer.url, "SELECT * FROM subscribers ORDER BY email").await;
    assert_eq!(
        subscribers,
        [
            json!({"email": "han@example.com", "active": true}),
            json!({"email": "li.lei@example.com", "active": false}),
        ]
    );
    // The SMS platform was told, on a signed call, only of the purpose it uses.
    assert_eq!(change(&detail, "sms")["outcome"], "applied");
    let call = calls
        .lock()
        .expect("calls")
        .iter()
        .find(|c| c["action"] == "consent")
        .cloned()
        .expect("a consent call");
    assert_eq!(call["purposes"], json!(["marketing_sms"]));
    assert_eq!(call["change"], "withdraw");
    assert_eq!(call["identifiers"]["email"], "li.lei@example.com");
    // The events team's list is its owner's task.
    assert_eq!(change(&detail, "events")["status"], "waiting_owner");
    app.deliver().await;
    let task = app
        .outbox_messages()
        .into_iter()
        .find(|m| m.to == "events@example.com")
        .expect("the events owner is asked");
    assert!(task.text.contains("邮件营销与通知"), "{}", task.text);
    assert!(
        task.text.contains(&format!(
            "/api/v1/officer/requests/{id}/changes/events/confirm"
        )),
        "{}",
        task.text
    );

    // Not complete while the events list has no outcome; a bad confirmation changes
    // nothing; a good one records it.
    let r = app.act(&officer, &id, "start", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .act(&officer, &id, "complete", json!({"summary": "done"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "sources_unchanged");
    assert_eq!(r.body["details"]["sources"], json!(["events"]));
    let confirm = format!("/api/v1/officer/requests/{id}/changes/events/confirm");
    let r = app
        .post(&confirm, Some(&officer), &json!({"outcome": "deleted"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        change(&app.detail(&officer, &id).await, "events")["status"],
        "waiting_owner"
    );
    let r = app
        .post(
            &confirm,
            Some(&officer),
            &json!({"outcome": "applied", "note": "removed from the invitation list"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(&confirm, Some(&officer), &json!({"outcome": "applied"}))
        .await;
    assert_eq!(r.code(), "source_not_waiting");

    // Completed: the requester is told which purposes and since when.
    let r = app
        .act(
            &officer,
            &id,
            "complete",
            json!({"summary": "您的撤回已生效。"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.deliver().await;
    let done = app
        .outbox_messages()
        .into_iter()
        .rfind(|m| m.to == "li.lei@example.com")
        .expect("the completion notice");
    assert!(done.text.contains("短信营销与通知"), "{}", done.text);
    assert!(done.text.contains("邮件营销与通知"), "{}", done.text);
    assert!(done.text.contains("已撤回同意"), "{}", done.text);
    assert!(!done.text.contains("电话营销"), "{}", done.text);
    // The timeline proves each step.
    let events: Vec<String> = app.detail(&officer, &id).await["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .collect();
    for expected in ["change_waiting_owner", "source_changed", "completed"] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected}: {events:?}"
        );
    }
    sms.stop(true).await;
}

#[tokio::test]
async fn a_narrowing_by_a_logged_in_account_is_in_force_at_filing_and_only_a_service_applies_it() {
    let Setup {
        app,
        sms,
        calls,
        _dir,
        ..
    } = setup().await;
    let claims = json!({
        "iss": ACCOUNT_ISSUER,
        "aud": "rightsdesk",
        "sub": "u1",
        "iat": app.clock.now().timestamp(),
        "exp": (app.clock.now() + TimeDelta::minutes(10)).timestamp(),
        "email": "li.lei@example.com",
    });
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(ACCOUNT_SECRET.as_bytes()).expect("a key"),
    )
    .expect("a token");
    let res = app
        .client
        .post(format!("{}/api/v1/requests", app.base))
        .bearer_auth(token)
        .json(&filing(
            "consent_withdrawal",
            json!({"purposes": ["marketing_sms"], "change": "narrow", "note": "只接收产品更新通知"}),
        ))
        .send()
        .await
        .expect("the service answers");
    let filed = TestApp::reply(res).await;
    assert_eq!(filed.status, StatusCode::CREATED, "{:?}", filed.body);
    let id = filed.body["id"].as_str().expect("an id").to_owned();
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let r = app
        .post(
            "/api/v1/consents/query",
            Some(&officer),
            &json!({"account_id": "u1"}),
        )
        .await;
    let c = state(&r.body, "marketing_sms");
    assert_eq!(c["state"], "narrowed", "{c}");
    assert_eq!(c["scope"], "只接收产品更新通知");
    assert_eq!(c["active"], true, "still given, for less");
    app.services.run_due_jobs().await.expect("the worker runs");
    let detail = app.detail(&officer, &id).await;
    assert!(
        detail["timeline"]
            .as_array()
            .expect("a timeline")
            .iter()
            .any(|e| e["event"] == "consent_recorded")
    );
    // The SMS platform is sent the narrowing with its scope; the website's columns
    // cannot say "narrowed", so its owner is asked.
    assert_eq!(change(&detail, "sms")["outcome"], "applied");
    let call = calls
        .lock()
        .expect("calls")
        .iter()
        .find(|c| c["action"] == "consent")
        .cloned()
        .expect("a consent call");
    assert_eq!(call["change"], "narrow");
    assert_eq!(call["scope"], "只接收产品更新通知");
    assert_eq!(change(&detail, "website")["status"], "waiting_owner");
    // A move of the request later does not record it twice.
    let r = app.act(&officer, &id, "start", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/v1/consents/query",
            Some(&officer),
            &json!({"email": "li.lei@example.com"}),
        )
        .await;
    assert_eq!(r.body["history"].as_array().map(Vec::len), Some(1));
    sms.stop(true).await;
}

#[tokio::test]
async fn consent_calls_are_checked_and_held_to_roles_and_bad_input_stores_nothing() {
    let app = TestApp::spawn().await;
    let (_, system) = app.officer("crm", &["system"]).await;
    let (_, auditor) = app.officer("audit", &["auditor"]).await;
    let given = json!({
        "subject": {"email": "li.lei@example.com"},
        "purpose": "marketing_email",
        "state": "given",
        "method": "web_form",
    });
    // An auditor reads but does not record; a system does not see requests.
    let r = app.post("/api/v1/consents", Some(&auditor), &given).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.get("/api/v1/officer/requests", Some(&system)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            "/api/v1/consents/query",
            Some(&auditor),
            &json!({"email": "li.lei@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!({"subject_known": false, "consents": [], "history": []})
    );
    let r = app.post("/api/v1/consents", None, &given).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let future = (start_time() + TimeDelta::days(1)).to_rfc3339();
    for (bad, field, code) in [
        (
            json!({"purpose": "marketing_fax"}),
            "purpose",
            "unknown_purpose",
        ),
        (json!({"state": "maybe"}), "state", "invalid_value"),
        (json!({"state": "narrowed"}), "scope", "required"),
        (
            json!({"method": "rights_request"}),
            "method",
            "invalid_value",
        ),
        (json!({"at": future}), "at", "in_future"),
        (json!({"at": "yesterday"}), "at", "invalid_timestamp"),
        (
            json!({"subject": {"email": "not-an-email"}}),
            "subject.email",
            "invalid_email",
        ),
        (json!({"subject": {}}), "subject", "required"),
        (json!({"colour": "blue"}), "colour", "unknown_field"),
    ] {
        let mut body = given.clone();
        for (k, v) in bad.as_object().expect("an object") {
            body[k] = v.clone();
        }
        let r = app.post("/api/v1/consents", Some(&system), &body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {:?}",
            r.body
        );
        assert!(
            r.body["details"]["fields"]
                .as_array()
                .expect("fields")
                .iter()
                .any(|e| e["field"] == field && e["code"] == code),
            "{bad}: {:?}",
            r.body
        );
    }
    assert_eq!(app.count("consents").await, 0);
    assert_eq!(app.count("subjects").await, 0);
    let r = app
        .post("/api/v1/consents/query", Some(&system), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A purpose outside the catalogue cannot be withdrawn by a request either.
    let r = app
        .post(
            "/api/v1/requests",
            None,
            &filing("consent_withdrawal", json!({"purposes": ["marketing_fax"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.fields(), ["details.purposes[0]"]);
    assert_eq!(app.count("requests").await, 0);

    // A good one is recorded, with the subject it creates.
    let r = app.post("/api/v1/consents", Some(&system), &given).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(state(&r.body, "marketing_email")["active"], true);
    assert_eq!(app.count("subjects").await, 1);
}
