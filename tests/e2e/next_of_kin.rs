//! Next of kin and the deceased's arrangement (SPEC §2, PIPL 49): a relative is verified
//! only by documents of the death and of the relationship; the deceased's arrangement —
//! recorded by them through their account, or by an officer from a letter — allows,
//! limits or denies what the relative asked; the answer holds only the deceased's data;
//! relatives who disagree put both requests on hold until the DPO releases them.

use std::io::Read;
use std::sync::Arc;

use chrono::Duration;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rightsdesk_core::{Clock, ManualClock};
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::reqwest::multipart::{Form, Part};
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{TempDir, TestApp, TestDb, base_config, filing, source_rows, start_time};
use sea_orm::{ConnectionTrait, Database};

const ISSUER: &str = "https://accounts.example.com";
const ACCOUNT_SECRET: &str = "the-account-system-shared-secret-0123456789";

/// The website's users: three deceased people, the relatives li.lei and han, and a
/// stranger.
async fn website_db(dir: &TempDir) -> String {
    let file = dir.0.join("website.db");
    let db = Database::connect(format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .expect("a source database");
    for sql in [
        "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT, mobile TEXT, name TEXT)",
        "INSERT INTO users VALUES \
         ('d1', NULL, '+8613900000001', '王芳'), ('d2', NULL, '+8613900000002', '赵强'), \
         ('d3', NULL, '+8613900000003', '孙丽'), ('d4', NULL, '+8613900000004', '周杰'), \
         ('u1', 'li.lei@example.com', '+8613812345678', '李雷'), \
         ('u2', 'han@example.com', '+8613700000000', '韩梅梅'), \
         ('u9', 'stranger@example.com', '+8613600000000', '路人')",
    ] {
        db.execute_unprepared(sql).await.expect("fill the source");
    }
    db.close().await.ok();
    format!("sqlite://{}", file.display())
}

fn sources_file(website: &str) -> String {
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
columns = ["id", "name", "mobile"]
erase = "delete"
[source.sql.correct.name]
table = "users"
column = "name"
"#
    )
}

async fn setup() -> (TestApp, String, TempDir) {
    let dir = TempDir::new();
    let website = website_db(&dir).await;
    let path = dir.0.join("sources.toml");
    std::fs::write(&path, sources_file(&website)).expect("sources");
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.sources.file = Some(path);
    let login = &mut config.account_login;
    login.issuer = Some(ISSUER.to_owned());
    login.algorithm = "HS256".to_owned();
    login.key = Some(ACCOUNT_SECRET.to_owned());
    let app = TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await;
    (app, website, dir)
}

fn account_token(app: &TestApp, account: &str, phone: &str) -> String {
    let claims = json!({
        "iss": ISSUER,
        "aud": "rightsdesk",
        "sub": account,
        "iat": app.clock.now().timestamp(),
        "exp": (app.clock.now() + Duration::minutes(10)).timestamp(),
        "phone_number": phone,
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(ACCOUNT_SECRET.as_bytes()).expect("a key"),
    )
    .expect("a token")
}

fn pdf(what: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% {what}\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n").into_bytes()
}

async fn upload(app: &TestApp, id: &str, token: &str, kind: &str) -> String {
    let form = Form::new().text("kind", kind.to_owned()).part(
        "file",
        Part::bytes(pdf(kind))
            .file_name(format!("{kind}.pdf"))
            .mime_str("application/pdf")
            .expect("a mime type"),
    );
    let res = app
        .client
        .post(format!("{}/api/v1/requests/{id}/evidence", app.base))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("the service answers");
    let r = TestApp::reply(res).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().expect("an id").to_owned()
}

struct Kin {
    id: String,
    reference: String,
    token: String,
}

/// A relative (`email`) files for the deceased with mobile `phone`, asking `rights`.
async fn file_kin(app: &TestApp, email: &str, phone: &str, rights: &[&str]) -> Kin {
    let mut details = json!({
        "relationship": "child",
        "deceased": {"name": "逝者", "phone": phone, "date_of_death": "2026-01-02"},
        "rights": rights,
        "lawful_interest": "整理遗物，处理后事"
    });
    if rights.contains(&"correction") {
        details["changes"] = json!([{"field": "name", "new_value": "王芳（已故）"}]);
    }
    let mut body = filing("next_of_kin", details);
    body["requester"]["email"] = json!(email);
    body["requester"]["phone"] = Value::Null;
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let s = |k: &str| r.body[k].as_str().expect(k).to_owned();
    Kin {
        id: s("id"),
        reference: s("reference"),
        token: s("requester_token"),
    }
}

/// Uploads both proofs and has `officer` accept them: verified, the arrangement checked.
async fn verify_kin(app: &TestApp, officer: &str, kin: &Kin) -> Value {
    let mut last = Value::Null;
    for kind in ["death_certificate", "relationship_proof"] {
        let evidence = upload(app, &kin.id, &kin.token, kind).await;
        let r = app
            .act(
                officer,
                &kin.id,
                "accept_evidence",
                json!({"evidence_id": evidence}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        last = r.body;
    }
    assert_eq!(last["state"], "verified", "{last}");
    last
}

async fn collect(app: &TestApp, officer: &str, id: &str) -> StatusCode {
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/collect"),
            Some(officer),
            &json!({}),
        )
        .await;
    app.services.run_due_jobs().await.expect("the worker runs");
    r.status
}

fn download_link(app: &TestApp, to: &str) -> String {
    let mail = app
        .outbox_messages()
        .into_iter()
        .rfind(|m| m.to == to && m.text.contains("/api/v1/downloads/"))
        .expect("a completion notice with a download link");
    let public = &app.config.verification.link_base_url;
    let start = mail.text.find(public.as_str()).expect("a public link");
    let path = mail.text[start + public.len()..]
        .split_whitespace()
        .next()
        .expect("a link");
    format!("{}{path}", app.base)
}

async fn bundle_users(app: &TestApp, link: &str) -> Vec<Value> {
    let r = app.client.get(link).send().await.expect("downloads");
    assert_eq!(r.status(), StatusCode::OK);
    let file = app.dir.0.join("kin.zip");
    std::fs::write(&file, r.bytes().await.expect("the zip")).expect("saved");
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(&file).expect("the zip")).expect("a zip");
    let mut text = String::new();
    zip.by_name("data/website/account.json")
        .expect("the users in the bundle")
        .read_to_string(&mut text)
        .expect("readable");
    serde_json::from_str(&text).expect("a JSON array")
}

async fn user_names(url: &str) -> Vec<(String, String)> {
    source_rows(url, "SELECT id, name FROM users ORDER BY id")
        .await
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().expect(k).to_owned();
            (s("id"), s("name"))
        })
        .collect()
}

async fn user_ids(url: &str) -> Vec<String> {
    user_names(url)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test]
async fn the_deceaseds_arrangement_allows_limits_or_denies_and_only_their_data_is_given() {
    let (app, website, _dir) = setup().await;
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let (_, dpo) = app.officer("dpo", &["dpo"]).await;

    // 王芳 recorded her own arrangement while alive, logged in with her account.
    let own = account_token(&app, "acc-d1", "13900000001");
    let arrangement = json!({
        "legacy_contact": {"name": "李雷", "email": "li.lei@example.com"},
        "rights": {"access": "allow", "copy": "legacy_contact", "deletion": "allow"}
    });
    let r = app.post("/api/v1/arrangements", None, &arrangement).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .post(
            "/api/v1/arrangements",
            Some(&own),
            &json!({"rights": {"copy": "legacy_contact"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = app
        .post("/api/v1/arrangements", Some(&own), &arrangement)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["recorded_via"], "account");
    let mine = app.get("/api/v1/arrangements", Some(&own)).await;
    assert_eq!(
        mine.body["current"]["arrangement"]["rights"]["copy"],
        "legacy_contact"
    );

    // An officer records two arrangements received in writing.
    for (phone, rights) in [
        ("13900000002", json!({"deletion": "deny"})),
        (
            "13900000003",
            json!({"access": "legacy_contact", "copy": "deny"}),
        ),
    ] {
        let r = app
            .post(
                "/api/v1/officer/arrangements",
                Some(&officer),
                &json!({
                    "subject": {"phone": phone},
                    "note": "公证遗嘱，2025-06-01，档案 A-17",
                    "legacy_contact": {"name": "韩梅梅", "email": "han@example.com"},
                    "rights": rights,
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["recorded_via"], "officer");
    }
    let r = app
        .post(
            "/api/v1/officer/arrangements",
            Some(&officer),
            &json!({"subject": {"phone": "13900000004"}, "rights": {"copy": "deny"}}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a note is required"
    );
    let r = app
        .post(
            "/api/v1/officer/arrangements/query",
            Some(&officer),
            &json!({"phone": "13900000002"}),
        )
        .await;
    assert_eq!(
        r.body["current"]["arrangement"]["rights"]["deletion"],
        "deny"
    );

    // A correction right names its changes.
    let mut body = filing(
        "next_of_kin",
        json!({"relationship": "child", "deceased": {"name": "王芳", "phone": "13900000001"},
               "rights": ["correction"], "lawful_interest": "更正"}),
    );
    body["requester"]["phone"] = Value::Null;
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.fields().contains(&"details.changes".to_owned()),
        "{:?}",
        r.body
    );

    // Allowed: li.lei, 王芳's legacy contact, may see, copy and correct; only her data is
    // given, and only her row corrected.
    let allowed = file_kin(
        &app,
        "li.lei@example.com",
        "13900000001",
        &["access", "copy", "correction"],
    )
    .await;
    let corrections = format!("/api/v1/officer/requests/{}/corrections", allowed.id);
    let r = app.get(&corrections, Some(&officer)).await;
    assert_eq!(r.code(), "correction_not_allowed", "not before the check");
    let v = verify_kin(&app, &officer, &allowed).await;
    assert_eq!(
        v["arrangement"]["verdict"]["outcome"], "allow",
        "{}",
        v["arrangement"]
    );
    assert!(v["arrangement"]["arrangement_id"].is_string());
    let r = app.act(&officer, &allowed.id, "start", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        collect(&app, &officer, &allowed.id).await,
        StatusCode::ACCEPTED
    );
    let detail = app.detail(&officer, &allowed.id).await;
    assert_eq!(
        detail["sources"][0]["records"],
        json!({"account": 1}),
        "{}",
        detail["sources"]
    );
    let r = app.get(&corrections, Some(&officer)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["changes"][0]["sources"][0]["current"],
        json!(["王芳"])
    );
    let r = app
        .act(&officer, &allowed.id, "complete", json!({"summary": "x"}))
        .await;
    assert_eq!(r.code(), "corrections_undecided");
    let r = app
        .post(
            &corrections,
            Some(&officer),
            &json!({"decisions": [{"change": 0, "decision": "approve"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.services.run_due_jobs().await.expect("the worker runs");
    let r = app
        .act(
            &officer,
            &allowed.id,
            "complete",
            json!({"summary": "已提供死者的个人信息"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.deliver().await;
    let users = bundle_users(&app, &download_link(&app, "li.lei@example.com")).await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["id"], "d1");
    assert_eq!(
        users[0]["name"], "王芳",
        "the bundle was written before the correction"
    );
    assert_eq!(
        user_names(&website).await,
        [
            ("d1", "王芳（已故）"),
            ("d2", "赵强"),
            ("d3", "孙丽"),
            ("d4", "周杰"),
            ("u1", "李雷"),
            ("u2", "韩梅梅"),
            ("u9", "路人")
        ]
        .map(|(i, n)| (i.to_owned(), n.to_owned()))
    );

    // Limited: 赵强's arrangement denies deletion; access goes ahead, deletion does not.
    let limited = file_kin(
        &app,
        "li.lei@example.com",
        "13900000002",
        &["access", "deletion"],
    )
    .await;
    let v = verify_kin(&app, &officer, &limited).await;
    let verdict = &v["arrangement"]["verdict"];
    assert_eq!(verdict["outcome"], "limit", "{verdict}");
    assert_eq!(verdict["granted"], json!(["access"]));
    assert_eq!(
        verdict["refused"],
        json!([{"right": "deletion", "why": "denied"}])
    );
    app.act(&officer, &limited.id, "start", json!({})).await;
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{}/erase", limited.id),
            Some(&officer),
            &json!({}),
        )
        .await;
    assert_eq!(r.code(), "erasure_not_allowed", "{:?}", r.body);
    assert_eq!(
        collect(&app, &officer, &limited.id).await,
        StatusCode::ACCEPTED
    );
    let r = app
        .act(
            &officer,
            &limited.id,
            "complete",
            json!({"summary": "已提供查阅结果"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.deliver().await;
    let notice = app
        .outbox_messages()
        .into_iter()
        .find(|m| m.to == "li.lei@example.com" && m.text.contains("已提供查阅结果"))
        .expect("the completion notice");
    assert!(notice.text.contains("生前"), "{}", notice.text);
    assert!(notice.text.contains("deletion"), "{}", notice.text);
    assert!(
        user_ids(&website).await.contains(&"d2".to_owned()),
        "nothing erased"
    );

    // Denied: 孙丽 left access to her legacy contact (han) and denied copies.
    let denied = file_kin(
        &app,
        "li.lei@example.com",
        "13900000003",
        &["access", "copy"],
    )
    .await;
    let v = verify_kin(&app, &officer, &denied).await;
    assert_eq!(v["arrangement"]["verdict"]["outcome"], "deny");
    assert_eq!(
        v["arrangement"]["verdict"]["refused"],
        json!([
            {"right": "access", "why": "legacy_contact_only"},
            {"right": "copy", "why": "denied"}
        ])
    );
    app.act(&officer, &denied.id, "start", json!({})).await;
    let r = app
        .act(&officer, &denied.id, "complete", json!({"summary": "x"}))
        .await;
    assert_eq!(r.code(), "arrangement_denies");
    assert_eq!(
        collect(&app, &officer, &denied.id).await,
        StatusCode::CONFLICT
    );
    let r = app
        .act(
            &dpo,
            &denied.id,
            "reject",
            json!({"reason_code": "deceased_arrangement", "explanation": "逝者生前安排仅允许其指定的联系人查阅"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.deliver().await;
    let refusal = app
        .outbox_messages()
        .into_iter()
        .find(|m| {
            m.to == "li.lei@example.com"
                && m.attachments
                    .iter()
                    .any(|a| a.0.contains(&denied.reference))
        })
        .expect("the refusal with its letter");
    assert!(refusal.text.contains("生前安排"), "{}", refusal.text);
}

#[tokio::test]
async fn relatives_who_disagree_wait_for_the_dpo() {
    let (app, website, _dir) = setup().await;
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let (_, dpo) = app
        .officer_with_email("dpo", &["dpo"], Some("dpo@example.com"))
        .await;

    // han asks to delete 周杰's data; li.lei to copy it.
    let deletes = file_kin(&app, "han@example.com", "13900000004", &["deletion"]).await;
    let v = verify_kin(&app, &officer, &deletes).await;
    assert_eq!(v["on_hold"], false, "nobody disagrees yet");
    let copies = file_kin(&app, "li.lei@example.com", "13900000004", &["copy"]).await;
    let v = verify_kin(&app, &officer, &copies).await;
    assert_eq!(v["on_hold"], true);
    let actions = v["allowed_actions"].as_array().expect("actions");
    assert!(
        !actions.contains(&json!("hold")),
        "held already: {actions:?}"
    );
    let as_dpo = app.detail(&dpo, &copies.id).await;
    assert!(
        as_dpo["allowed_actions"]
            .as_array()
            .expect("actions")
            .contains(&json!("release"))
    );
    let other = app.detail(&officer, &deletes.id).await;
    assert_eq!(other["on_hold"], true, "both wait");
    app.deliver().await;
    let told = app
        .outbox_messages()
        .into_iter()
        .filter(|m| m.to == "dpo@example.com")
        .count();
    assert_eq!(told, 2, "the DPO is told of each");

    // Nothing is searched, erased or completed while held; only the DPO releases.
    for kin in [&deletes, &copies] {
        app.act(&officer, &kin.id, "start", json!({})).await;
    }
    assert_eq!(
        collect(&app, &officer, &copies.id).await,
        StatusCode::CONFLICT
    );
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{}/erase", deletes.id),
            Some(&officer),
            &json!({}),
        )
        .await;
    assert_eq!(r.code(), "on_hold");
    let r = app
        .act(&officer, &copies.id, "complete", json!({"summary": "x"}))
        .await;
    assert_eq!(r.code(), "on_hold");
    let r = app
        .act(&officer, &copies.id, "release", json!({"decision": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .act(
            &dpo,
            &copies.id,
            "release",
            json!({"decision": "复制不影响删除请求；先提供副本，再处理删除"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["on_hold"], false);
    let r = app
        .act(&dpo, &copies.id, "release", json!({"decision": "again"}))
        .await;
    assert_eq!(r.code(), "not_on_hold");
    assert_eq!(
        collect(&app, &officer, &copies.id).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.detail(&officer, &deletes.id).await["on_hold"],
        true,
        "released one by one"
    );
    assert!(user_ids(&website).await.contains(&"d4".to_owned()));

    // An officer may hold a request too (a relative objected in writing).
    let r = app.act(&officer, &copies.id, "hold", json!({})).await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reason is required"
    );
    let r = app
        .act(
            &officer,
            &copies.id,
            "hold",
            json!({"reason": "另一位亲属来信反对"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["on_hold"], true);
    let r = app
        .act(&officer, &copies.id, "hold", json!({"reason": "again"}))
        .await;
    assert_eq!(r.code(), "on_hold");
}
