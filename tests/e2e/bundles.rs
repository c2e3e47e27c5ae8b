//! The bundle (SPEC §7): a copy request for a person held in a SQLite source, a
//! PostgreSQL source, an `http` source and a `manual` source ends with a zip whose manifest
//! verifies and whose files hold exactly that person's rows; the completion notice links
//! to it; each download is an event; a link that is altered, used up, expired, or whose
//! bundle was deleted is refused with its own code; a password-protected bundle sends its
//! password by SMS; a portability request transfers only the portable categories, once
//! its four conditions hold, by a link to the recipient or a push to its endpoint.

use std::io::Read;
use std::sync::Arc;

use rightsdesk_core::ManualClock;
use rightsdesk_tests::reqwest::{self, StatusCode};
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{TempDir, TestApp, TestDb, base_config, free_port, start_time};
use sea_orm::{ConnectionTrait, Database};
use sha2::Digest;

use crate::collections::{
    crm_service, source, sources_file, started_copy_request_with, started_request, website_db,
};

/// A marketing list on PostgreSQL: li.lei's two subscriptions, and others' — one whose
/// address is li.lei's with SQL in it.
async fn marketing_db() -> TestDb {
    let db = TestDb::postgres().await;
    let conn = Database::connect(&db.url)
        .await
        .expect("the marketing list");
    for sql in [
        "CREATE TABLE subscribers (email TEXT, mobile TEXT, channel TEXT, since TEXT)",
        "CREATE INDEX subscribers_email ON subscribers (email)",
        "INSERT INTO subscribers VALUES ('li.lei@example.com', '13812345678', 'email', '2025-01-02'), \
         ('li.lei@example.com', NULL, 'wechat', '2025-03-04'), \
         ('han@example.com', '13700000000', 'sms', '2025-05-06'), \
         ('li.lei@example.com'' OR ''1''=''1', NULL, 'email', '2025-07-08'), \
         ('LI.LEI@EXAMPLE.COM ', NULL, 'email', '2025-09-10')",
    ] {
        conn.execute_unprepared(sql).await.expect("fill the list");
    }
    conn.close().await.ok();
    db
}

const MARKETING: &str = r#"
[[source]]
name = "marketing"
title_zh = "营销名单"
title_en = "Marketing lists"
owner = "marketing@example.com"
[source.sql]
url = "{url}"
[[source.sql.table]]
name = "subscribers"
category = "marketing"
match = { email = "email" }
columns = ["email", "channel", "since"]
"#;

pub(crate) struct Setup {
    pub(crate) app: TestApp,
    pub(crate) _dir: TempDir,
    pub(crate) _marketing: TestDb,
    pub(crate) crm: actix_web::dev::ServerHandle,
}

/// The four sources (website on SQLite, marketing on PostgreSQL, the CRM over http, the
/// call centre by hand), downloads limited to `max_downloads`.
pub(crate) async fn setup(max_downloads: u32) -> Setup {
    let dir = TempDir::new();
    let website = website_db(&dir).await;
    let marketing = marketing_db().await;
    let crm_port = free_port();
    let crm = crm_service(crm_port).await;
    let mut file = sources_file(&website, crm_port, true);
    file.push_str(&MARKETING.replace("{url}", &marketing.url));
    let path = dir.0.join("sources.toml");
    std::fs::write(&path, file).expect("a sources file");
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.sources.file = Some(path);
    config.bundles.max_downloads = max_downloads;
    let app = TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await;
    Setup {
        app,
        _dir: dir,
        _marketing: marketing,
        crm,
    }
}

/// Collects every source, has the call centre's owner answer with `answer`, and runs the
/// worker (which writes the bundle).
pub(crate) async fn collect_and_answer(app: &TestApp, officer: &str, id: &str, answer: Value) {
    collect(app, officer, id).await;
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/sources/callcenter/answer"),
            Some(officer),
            &answer,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.services.run_due_jobs().await.expect("the worker runs");
}

/// Collects every source: all answer but the call centre, whose owner is asked.
async fn collect(app: &TestApp, officer: &str, id: &str) {
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/collect"),
            Some(officer),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    app.services.run_due_jobs().await.expect("the worker runs");
    let detail = app.detail(officer, id).await;
    assert_eq!(source(&detail, "callcenter")["status"], "waiting_owner");
    assert_eq!(
        detail["bundles"],
        json!([]),
        "not before every source answered"
    );
}

/// The download link in the newest completion email to `to`.
pub(crate) fn download_link(app: &TestApp, to: &str) -> String {
    let mail = app
        .outbox_messages()
        .into_iter()
        .rfind(|m| m.to == to && m.text.contains("/api/v1/downloads/"))
        .expect("a completion notice with a download link");
    // The notice names the service's public address (`verification.link_base_url`); the
    // test server listens on a port of its own.
    let public = &app.config.verification.link_base_url;
    let start = mail
        .text
        .find(public.as_str())
        .expect("a link to the public address");
    let path = mail.text[start + public.len()..]
        .split_whitespace()
        .next()
        .expect("a link");
    format!("{}{path}", app.base)
}

/// Downloads `link` into `name` in the test's folder (a 200 expected).
pub(crate) async fn download(app: &TestApp, link: &str, name: &str) -> std::path::PathBuf {
    let r = app.client.get(link).send().await.expect("downloads");
    assert_eq!(r.status(), StatusCode::OK);
    let file = app.dir.0.join(name);
    std::fs::write(&file, r.bytes().await.expect("the zip")).expect("saved");
    file
}

/// The JSON array of records in `path` of the zip at `file`.
fn records(file: &std::path::Path, path: &str) -> Vec<Value> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(file).expect("the zip")).expect("a zip");
    let mut text = String::new();
    zip.by_name(path)
        .unwrap_or_else(|_| panic!("{path} in the bundle"))
        .read_to_string(&mut text)
        .expect("readable");
    serde_json::from_str::<Vec<Value>>(&text).expect("a JSON array")
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
async fn a_copy_request_is_answered_with_a_bundle_of_exactly_that_persons_data() {
    let Setup {
        app,
        crm,
        _dir,
        _marketing,
    } = setup(2).await;
    let (filed, officer) = started_copy_request_with(&app, json!({})).await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    // An owner's answer that is not one is refused and changes nothing.
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{id}/sources/callcenter/answer"),
            Some(&officer),
            &json!({"records": {"feedback": [{"a": 1}]}}),
        )
        .await;
    assert_eq!(r.code(), "source_not_waiting", "not collected yet");
    // The owner answers with a record and the call's recording (a form with a file).
    collect(&app, &officer, &id).await;
    let recording: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let form = reqwest::multipart::Form::new()
        .text(
            "answer",
            json!({"records": {"feedback": [
                {"date": "2026-02-03", "summary": "来电咨询发票", "recording": "rec-001.mp3"}
            ]}})
            .to_string(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(recording.clone()).file_name("rec-001.mp3"),
        );
    let r = app
        .client
        .post(format!(
            "{}/api/v1/officer/requests/{id}/sources/callcenter/answer",
            app.base
        ))
        .bearer_auth(&officer)
        .multipart(form)
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::OK);
    app.services.run_due_jobs().await.expect("the worker runs");
    let detail = app.detail(&officer, &id).await;
    assert_eq!(
        source(&detail, "callcenter")["records"],
        json!({"feedback": 1})
    );
    assert_eq!(
        source(&detail, "marketing")["records"],
        json!({"marketing": 2}),
        "{}",
        detail["sources"]
    );
    let bundle = &detail["bundles"][0];
    assert_eq!(bundle["status"], "ready", "{bundle}");
    assert_eq!(
        bundle["records"], 7,
        "1 account, 2 downloads, 1 ticket, 2 marketing, 1 call"
    );
    assert_eq!(bundle["password_protected"], false);
    assert!(events(&detail).contains(&"bundle_built".to_owned()));
    // Stored encrypted (the owner's answer and file too), no plaintext left behind.
    let stored = walk(&app.config.bundles.dir);
    assert_eq!(
        stored.len(),
        3,
        "the answer, its file and the bundle: {stored:?}"
    );
    for file in &stored {
        let bytes = std::fs::read(file).expect("a stored object");
        assert!(bytes.starts_with(b"RDSEAL2\n"), "{file:?}");
        assert!(!bytes.windows(4).any(|w| w == b"PK\x03\x04"), "{file:?}");
        assert!(
            !bytes.windows(6).any(|w| w == "来电".as_bytes()),
            "{file:?}"
        );
    }

    let r = app
        .act(
            &officer,
            &id,
            "complete",
            json!({"summary": "您的数据见附件链接"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.deliver().await;
    let link = download_link(&app, "li.lei@example.com");

    // Downloaded: a zip that verifies, with li.lei's rows and nobody else's.
    let r = app.client.get(&link).send().await.expect("downloads");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap_or_default()
            .contains(".zip")
    );
    let bytes = r.bytes().await.expect("the zip");
    assert_eq!(bytes.len() as i64, bundle["size"].as_i64().expect("a size"));
    let file = app.dir.0.join("bundle.zip");
    std::fs::write(&file, &bytes).expect("saved");
    let report = rightsdesk_export::verify(&file, None).expect("a bundle");
    assert!(report.is_ok(), "{:?}", report.problems());
    let account = records(&file, "data/website/account.json");
    assert_eq!(account.len(), 1);
    assert_eq!(account[0]["email"], "li.lei@example.com");
    let downloads = records(&file, "data/website/downloads.json");
    assert_eq!(downloads.len(), 2);
    let marketing = records(&file, "data/marketing/marketing.json");
    assert_eq!(marketing.len(), 2, "{marketing:?}");
    assert!(marketing.iter().all(|r| r["email"] == "li.lei@example.com"));
    assert_eq!(
        records(&file, "data/crm/tickets.json")[0]["title"],
        "无法登录"
    );
    assert_eq!(
        records(&file, "data/callcenter/feedback.json")[0]["summary"],
        "来电咨询发票"
    );
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(&file).expect("the zip")).expect("a zip");
    let mut attached = Vec::new();
    zip.by_name("files/callcenter/rec-001.mp3")
        .expect("the recording in the bundle")
        .read_to_end(&mut attached)
        .expect("readable");
    assert!(attached == recording, "the recording, byte for byte");

    // The requester sees the summary without downloading.
    let token = filed["requester_token"].as_str().expect("a token");
    let view = app
        .client
        .get(format!("{}/api/v1/requests/{id}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("the view")
        .json::<Value>()
        .await
        .expect("JSON");
    let summary = view["data_summary"].as_array().expect("a summary");
    let website = summary
        .iter()
        .find(|s| s["source"] == "website")
        .expect("the website");
    assert_eq!(website["categories"].as_array().map(Vec::len), Some(2));
    assert!(website["categories"][0]["purpose_zh"].is_string());

    // Second use, then none left.
    let r = app.client.get(&link).send().await.expect("answers");
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.client.get(&link).send().await.expect("answers");
    assert_eq!(r.status(), StatusCode::GONE);
    let body: Value = r.json().await.expect("an error body");
    assert_eq!(body["code"], "download_limit_reached");
    let detail = app.detail(&officer, &id).await;
    assert_eq!(
        events(&detail)
            .iter()
            .filter(|e| *e == "bundle_downloaded")
            .count(),
        2
    );
    assert_eq!(detail["bundles"][0]["links"][0]["uses"], 2);

    // Altered or cut short: not found, as JSON or as a page for a browser.
    let mut altered = link.clone();
    let last = altered.pop().expect("a character");
    altered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [altered.as_str(), &link[..link.len() - 5]] {
        let r = app.client.get(bad).send().await.expect("answers");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let body: Value = r.json().await.expect("an error body");
        assert_eq!(body["code"], "download_link_invalid");
    }
    let r = app
        .client
        .get(&altered)
        .header("accept", "text/html")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let page = r.text().await.expect("a page");
    assert!(
        page.contains("下载链接无效") && page.contains("not valid"),
        "{page}"
    );
    crm.stop(true).await;
}

#[tokio::test]
async fn links_expire_bundles_are_purged_and_a_password_goes_by_sms() {
    let Setup {
        app,
        crm,
        _dir,
        _marketing,
    } = setup(5).await;
    let (filed, officer) = started_copy_request_with(
        &app,
        json!({"bundle_password": true, "categories": ["account", "marketing"]}),
    )
    .await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    collect_and_answer(&app, &officer, &id, json!({"no_data": true})).await;
    let detail = app.detail(&officer, &id).await;
    assert_eq!(source(&detail, "callcenter")["status"], "no_data");
    assert_eq!(detail["bundles"][0]["password_protected"], true);
    let r = app
        .act(&officer, &id, "complete", json!({"summary": "done"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.deliver().await;
    let link = download_link(&app, "li.lei@example.com");
    let texts = app.sms_folder_messages();
    let (_, sms) = texts
        .iter()
        .find(|(_, m)| m["text"].as_str().is_some_and(|t| t.contains("PR-")))
        .expect("the password by SMS");
    let text = sms["text"].as_str().unwrap_or_default();
    let password = text
        .rsplit(['：', ' '])
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert_eq!(password.len(), 29, "{text}");
    assert!(
        !app.outbox_messages()
            .iter()
            .any(|m| m.text.contains(&password)),
        "the password never travels with the link"
    );
    let file = download(&app, &link, "locked.zip").await;
    assert!(
        rightsdesk_export::verify(&file, Some(&password))
            .expect("opens")
            .is_ok()
    );
    assert!(rightsdesk_export::verify(&file, Some("wrong")).is_err());
    // Only the categories the requester named.
    let mut names: Vec<String> = zip::ZipArchive::new(std::fs::File::open(&file).expect("the zip"))
        .expect("a zip")
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| n.starts_with("data/"))
        .map(|n| n.into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "data/marketing/marketing.csv",
            "data/marketing/marketing.json",
            "data/website/account.csv",
            "data/website/account.json"
        ]
    );

    // After the link's 7 days: expired; once the worker purged it: deleted.
    app.clock
        .advance(chrono::Duration::days(7) + chrono::Duration::minutes(1));
    let r = app.client.get(&link).send().await.expect("answers");
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(
        r.json::<Value>().await.expect("a body")["code"],
        "download_link_expired"
    );
    assert_eq!(app.services.purge_bundles().await.expect("purges"), 1);
    assert_eq!(
        app.services.purge_bundles().await.expect("purges"),
        0,
        "once"
    );
    assert!(
        walk(&app.config.bundles.dir).is_empty(),
        "deleted from storage"
    );
    let r = app.client.get(&link).send().await.expect("answers");
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(
        r.json::<Value>().await.expect("a body")["code"],
        "bundle_purged"
    );
    let officer = app.login("wang", rightsdesk_tests::OFFICER_PASSWORD).await;
    let detail = app.detail(&officer, &id).await;
    assert_eq!(detail["bundles"][0]["status"], "purged");
    assert!(events(&detail).contains(&"bundle_purged".to_owned()));
    crm.stop(true).await;
}

#[tokio::test]
async fn a_portability_request_transfers_what_is_portable_once_its_four_conditions_hold() {
    let Setup {
        app,
        crm,
        _dir,
        _marketing,
    } = setup(5).await;
    let (filed, officer) = started_request(
        &app,
        "portability",
        json!({"recipient": {"name": "B 公司", "email": "dpo@b.example.com"}}),
    )
    .await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    collect_and_answer(&app, &officer, &id, json!({"no_data": true})).await;
    let detail = app.detail(&officer, &id).await;
    assert_eq!(detail["bundles"][0]["status"], "ready");
    assert_eq!(
        detail["bundles"][0]["records"], 1,
        "only the website's account is portable"
    );

    // The officer has not confirmed the fourth condition: refused, each condition shown.
    let r = app
        .act(&officer, &id, "complete", json!({"summary": "已转移"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "portability_conditions_unmet");
    let met: Vec<(String, bool)> = r.body["details"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .map(|c| {
            (
                c["condition"].as_str().unwrap_or_default().to_owned(),
                c["met"] == true,
            )
        })
        .collect();
    assert_eq!(
        met,
        [
            ("identity_verified".to_owned(), true),
            ("consent_or_contract".to_owned(), true),
            ("technically_feasible".to_owned(), true),
            ("no_harm_to_others".to_owned(), false),
        ]
    );
    assert_eq!(app.detail(&officer, &id).await["state"], "in_progress");

    let r = app
        .act(
            &officer,
            &id,
            "complete",
            json!({"summary": "已转移", "no_harm_confirmed": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let completed = r.body["timeline"]
        .as_array()
        .and_then(|t| t.iter().rfind(|e| e["event"] == "completed"))
        .expect("the completion in the timeline")
        .clone();
    let recorded = &completed["data"]["portability"];
    assert_eq!(recorded["recipient"], "B 公司", "{completed}");
    assert_eq!(
        recorded["conditions"][1]["categories"],
        json!({"account": 1}),
        "{completed}"
    );
    assert!(recorded["conditions"][3]["confirmed_by"].is_string());

    // The recipient gets a link of its own, to the portable data only.
    app.deliver().await;
    let link = download_link(&app, "dpo@b.example.com");
    let mine = download_link(&app, "li.lei@example.com");
    assert_ne!(link, mine, "one link each");
    let file = download(&app, &link, "transfer.zip").await;
    assert!(
        rightsdesk_export::verify(&file, None)
            .expect("a bundle")
            .is_ok()
    );
    let names: Vec<String> = zip::ZipArchive::new(std::fs::File::open(&file).expect("the zip"))
        .expect("a zip")
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| n.starts_with("data/"))
        .map(|n| n.into_owned())
        .collect();
    assert_eq!(
        names,
        ["data/website/account.json", "data/website/account.csv"],
        "nothing that is not portable"
    );
    let detail = app.detail(&officer, &id).await;
    let audiences: Vec<&str> = detail["bundles"][0]["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["audience"].as_str())
        .collect();
    assert_eq!(audiences, ["requester", "recipient"]);
    let downloaded = detail["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .rfind(|e| e["event"] == "bundle_downloaded")
        .expect("the download recorded")
        .clone();
    assert_eq!(downloaded["data"]["audience"], "recipient");
    crm.stop(true).await;
}

#[tokio::test]
async fn a_person_without_data_gets_a_valid_bundle_that_says_so() {
    let Setup {
        app,
        crm,
        _dir,
        _marketing,
    } = setup(5).await;
    let r = app
        .post(
            "/api/v1/requests",
            None,
            &json!({
                "kind": "copy",
                "requester": {"name": "路人", "email": "nobody@example.com", "language": "zh-CN"},
                "details": {},
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("an id").to_owned();
    app.deliver().await;
    let path = app.verification_message("nobody@example.com").link_path();
    let verified = app
        .client
        .post(format!("{}{path}", app.base))
        .send()
        .await
        .expect("the link answers");
    assert!(verified.status().is_success());
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let r = app.act(&officer, &id, "start", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    collect_and_answer(&app, &officer, &id, json!({"no_data": true})).await;
    let detail = app.detail(&officer, &id).await;
    for name in ["website", "marketing", "crm", "callcenter"] {
        assert_eq!(source(&detail, name)["status"], "no_data", "{name}");
    }
    assert_eq!(detail["bundles"][0]["status"], "ready");
    assert_eq!(detail["bundles"][0]["records"], 0);
    let r = app
        .act(
            &officer,
            &id,
            "complete",
            json!({"summary": "未找到您的个人信息"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.deliver().await;
    let link = download_link(&app, "nobody@example.com");
    let file = download(&app, &link, "empty.zip").await;
    assert!(
        rightsdesk_export::verify(&file, None)
            .expect("a bundle")
            .is_ok()
    );
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(&file).expect("the zip")).expect("a zip");
    assert!(
        !zip.file_names()
            .any(|n| n.is_ok_and(|n| n.starts_with("data/"))),
        "no data files"
    );
    let mut index = String::new();
    zip.by_name("index.html")
        .expect("an index")
        .read_to_string(&mut index)
        .expect("readable");
    assert!(
        index.contains("我们在这些系统中没有找到关于您的个人信息"),
        "{index}"
    );
    assert!(index.contains("We found no personal data about you in these systems"));
    assert!(
        index.contains("呼叫中心") && index.contains("营销名单"),
        "every system searched is named"
    );
    crm.stop(true).await;
}

/// What a recipient's endpoint received: the headers that matter and the body.
type Received = Arc<std::sync::Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A recipient's endpoint on `port`: the first push fails with 503, the next are taken.
async fn recipient_endpoint(port: u16, received: Received) -> actix_web::dev::ServerHandle {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = actix_web::HttpServer::new(move || {
        let received = received.clone();
        let calls = calls.clone();
        actix_web::App::new().route(
            "/inbox",
            actix_web::web::post().to(
                move |req: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                    let received = received.clone();
                    let calls = calls.clone();
                    async move {
                        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                            return actix_web::HttpResponse::ServiceUnavailable().finish();
                        }
                        let header = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        received.lock().expect("the list").push((
                            header("x-rightsdesk-reference"),
                            header("x-rightsdesk-sha256"),
                            body.to_vec(),
                        ));
                        actix_web::HttpResponse::Ok().finish()
                    }
                },
            ),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .expect("bind the endpoint's port");
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

#[tokio::test]
async fn a_portability_bundle_is_pushed_to_the_recipients_endpoint_and_retried() {
    let Setup {
        app,
        crm,
        _dir,
        _marketing,
    } = setup(5).await;
    let port = free_port();
    let received = Received::default();
    let endpoint = recipient_endpoint(port, received.clone()).await;
    let (filed, officer) = started_request(
        &app,
        "portability",
        json!({"recipient": {"name": "B 公司", "endpoint": format!("http://127.0.0.1:{port}/inbox")}}),
    )
    .await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    let reference = filed["reference"].as_str().expect("a reference").to_owned();
    collect_and_answer(&app, &officer, &id, json!({"no_data": true})).await;
    let r = app
        .act(
            &officer,
            &id,
            "complete",
            json!({"summary": "已转移", "no_harm_confirmed": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // The first push meets a 503: tried again after its back-off, then taken.
    app.services.run_due_jobs().await.expect("the worker runs");
    assert!(received.lock().expect("the list").is_empty());
    app.clock.advance(chrono::Duration::minutes(10));
    app.services.run_due_jobs().await.expect("the worker runs");
    let pushes = received.lock().expect("the list").clone();
    assert_eq!(pushes.len(), 1, "pushed once");
    let (got_reference, sha256, body) = &pushes[0];
    assert_eq!(got_reference, &reference);
    assert_eq!(sha256, &hex::encode(sha2::Sha256::digest(body)));
    let file = app.dir.0.join("pushed.zip");
    std::fs::write(&file, body).expect("saved");
    assert!(
        rightsdesk_export::verify(&file, None)
            .expect("a bundle")
            .is_ok()
    );
    let officer = app.login("wang", rightsdesk_tests::OFFICER_PASSWORD).await;
    let detail = app.detail(&officer, &id).await;
    assert_eq!(detail["bundles"][0]["sha256"], json!(sha256));
    let pushed = detail["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .rfind(|e| e["event"] == "bundle_pushed")
        .expect("the push recorded")
        .clone();
    assert_eq!(pushed["data"]["host"], "127.0.0.1");
    endpoint.stop(true).await;
    crm.stop(true).await;
}

/// Every file under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}
