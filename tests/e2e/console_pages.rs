//! The console's other pages in a real headless Chromium (SPEC §10): the dashboard's
//! figures and charts, administration (officers, roles, the sources' last check), the
//! triage tab of email intake, and the request page's evidence, data sources, internal
//! notes and correction decisions. Also: a session ends when its token does. The test
//! run saves screenshots of the queue, a request, the dashboard, triage and
//! administration in `docs/screenshots/`.

use rightsdesk_tests::browser::Browser;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::json;
use rightsdesk_tests::{
    OFFICER_PASSWORD, TempDir, TestApp, filing, free_port, start_time, valid_details,
};

use crate::console::log_in;

/// The text of the first element `selector` finds.
async fn text_of(b: &Browser, selector: &str) -> String {
    b.text(&b.find(selector).await).await.trim().to_owned()
}

/// The bars of chart `id`: `(label, value)`.
async fn bars(b: &Browser, id: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for g in b.find_all(&format!("#{id} g[data-label]")).await {
        let label = b.attribute(&g, "data-label").await.unwrap_or_default();
        let value = b.attribute(&g, "data-value").await.unwrap_or_default();
        out.push((label, value.parse().expect("a count")));
    }
    out.sort();
    out
}

#[tokio::test]
async fn the_dashboard_shows_what_is_open_due_and_answered_with_charts() {
    let app = TestApp::spawn().await;
    app.officer("wang", &["officer"]).await;
    let (_, dpo) = app.officer("zhou", &["dpo"]).await;
    app.file("access", valid_details("access")).await;
    app.file("deletion", valid_details("deletion")).await;
    // One received by phone, registered by an officer.
    let mut phoned = filing("access", valid_details("access"));
    phoned["channel"] = json!("phone");
    phoned["received_at"] = json!(start_time().to_rfc3339());
    let r = app
        .post("/api/v1/officer/requests", Some(&dpo), &phoned)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let refused = r.body["id"].as_str().expect("an id").to_owned();
    let r = app
        .act(
            &dpo,
            &refused,
            "reject",
            json!({"reason_code": "identity_not_verified", "explanation": "无法核实身份"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let b = Browser::start().await;
    log_in(&b, &app, "wang").await;
    b.screenshot("queue").await;
    b.goto(&format!("{}/console/dashboard?lang=en", app.base))
        .await;
    assert_eq!(text_of(&b, "#open").await, "2");
    assert_eq!(text_of(&b, "#overdue").await, "0");
    assert_eq!(text_of(&b, "#window-30 .received").await, "3");
    assert_eq!(text_of(&b, "#window-30 .answered").await, "1");
    assert!(
        text_of(&b, "#window-30 .on-time-rate")
            .await
            .starts_with("100.0 %")
    );
    assert_eq!(
        bars(&b, "by-kind-30").await,
        [("access".to_owned(), 2), ("deletion".to_owned(), 1)]
    );
    assert_eq!(
        bars(&b, "by-channel-30").await,
        [("api".to_owned(), 2), ("phone".to_owned(), 1)]
    );
    assert_eq!(
        bars(&b, "refusals-30").await,
        [("identity_not_verified".to_owned(), 1)]
    );
    b.screenshot("dashboard").await;

    // The API's dashboard says the same.
    let token = app.login("wang", OFFICER_PASSWORD).await;
    let api = app.get("/api/v1/officer/dashboard", Some(&token)).await;
    assert_eq!(api.status, StatusCode::OK, "{:?}", api.body);
    assert_eq!(api.body["open"], 2);
    assert_eq!(api.body["windows"][0]["days"], 30);
    assert_eq!(
        api.body["windows"][0]["refusals"]["identity_not_verified"],
        1
    );

    // Forty days on: nothing was received in the last 30 days, the 90 still count it,
    // and what is overdue is what the queue's overdue filter lists.
    app.clock.advance(chrono::Duration::days(40));
    let token = app.login("wang", OFFICER_PASSWORD).await;
    let api = app.get("/api/v1/officer/dashboard", Some(&token)).await;
    assert_eq!(api.body["windows"][0]["received"], 0, "{}", api.body);
    assert_eq!(api.body["windows"][1]["received"], 3, "{}", api.body);
    let overdue = app
        .get("/api/v1/officer/requests?overdue=true", Some(&token))
        .await;
    let listed = overdue.body["items"].as_array().expect("items").len();
    assert!(listed > 0, "{}", overdue.body);
    assert_eq!(api.body["overdue"], listed as u64, "{}", api.body);

    // The session's token ran out meanwhile: the console asks for a login again.
    b.goto(&format!("{}/console/dashboard", app.base)).await;
    assert_eq!(b.path().await, "/console/login", "the session expired");
    b.stop().await;
}

/// A sources file with a `manual` source (its check always passes) and an `http` one
/// that nobody answers (its check fails).
fn sources(http_port: u16) -> String {
    format!(
        r#"
[[source]]
name = "callcenter"
title_zh = "呼叫中心"
title_en = "Call centre"
owner = "calls@example.com"
categories = ["feedback"]
[source.manual]
instructions_en = "Export the person's call recordings."

[[source]]
name = "crm"
title_zh = "客服系统"
title_en = "CRM"
owner = "crm@example.com"
categories = ["tickets"]
timeout_secs = 2
[source.http]
url = "http://127.0.0.1:{http_port}/lookup"
secret = "{}"
"#,
        crate::collections::SECRET
    )
}

#[tokio::test]
async fn an_admin_adds_an_officer_and_checks_the_sources() {
    let dir = TempDir::new();
    let app = crate::collections::app_with(sources(free_port()), &dir).await;
    app.officer("root", &["admin"]).await;
    app.officer("wang", &["officer"]).await;

    let b = Browser::start().await;
    b.goto(&format!("{}/console/login?lang=en", app.base)).await;
    log_in_as(&b, &app, "root").await;
    b.goto(&format!("{}/console/admin", app.base)).await;
    assert_eq!(text_of(&b, "h1").await, "Administration");
    // The sources, never checked yet; then checked now, and recorded.
    for source in ["callcenter", "crm"] {
        let row = b.find(&format!("tr[data-source={source}]")).await;
        assert_eq!(
            b.attribute(&row, "data-check").await.as_deref(),
            Some("never")
        );
    }
    b.click_and_wait(&b.find("#check-sources").await).await;
    let ok = b.find("tr[data-source=callcenter]").await;
    assert_eq!(b.attribute(&ok, "data-check").await.as_deref(), Some("ok"));
    let failed = b.find("tr[data-source=crm]").await;
    assert_eq!(
        b.attribute(&failed, "data-check").await.as_deref(),
        Some("failed")
    );
    assert!(b.text(&failed).await.contains("Failed"));
    assert_eq!(app.count("source_checks").await, 2);

    // A new officer with two roles.
    b.type_text(&b.find("#new-username").await, "li.na").await;
    b.type_text(&b.find("#new-display-name").await, "李娜")
        .await;
    b.type_text(&b.find("#new-password").await, OFFICER_PASSWORD)
        .await;
    b.click(&b.find("#role-officer").await).await;
    b.click(&b.find("#role-dpo").await).await;
    b.click_and_wait(&b.find("#create-officer").await).await;
    assert!(text_of(&b, "#done").await.contains("li.na"));
    let row = b.find("tr[data-username='li.na']").await;
    assert_eq!(
        text_of(&b, "tr[data-username='li.na'] .roles").await,
        "dpo, officer"
    );
    assert!(b.text(&row).await.contains("李娜"));
    b.screenshot("administration").await;
    let token = app.login("li.na", OFFICER_PASSWORD).await;
    assert!(!token.is_empty());

    // A short password is refused and nobody is created.
    let officers = app.count("officers").await;
    b.type_text(&b.find("#new-username").await, "short").await;
    b.type_text(&b.find("#new-display-name").await, "Short")
        .await;
    b.type_text(&b.find("#new-password").await, "abc").await;
    b.click(&b.find("#role-auditor").await).await;
    b.click_and_wait(&b.find("#create-officer").await).await;
    assert!(
        text_of(&b, "#error").await.contains("password"),
        "{}",
        b.source().await
    );
    assert_eq!(app.count("officers").await, officers);

    // Li Na is made an auditor only, then deactivated: her token stops working.
    let edit = "tr[data-username='li.na'] form.edit-officer";
    b.click(&b.find("tr[data-username='li.na'] summary").await)
        .await;
    b.click(&b.find(&format!("{edit} input[value=officer]")).await)
        .await;
    b.click(&b.find(&format!("{edit} input[value=dpo]")).await)
        .await;
    b.click(&b.find(&format!("{edit} input[value=auditor]")).await)
        .await;
    b.click_and_wait(&b.find(&format!("{edit} button")).await)
        .await;
    assert_eq!(
        text_of(&b, "tr[data-username='li.na'] .roles").await,
        "auditor"
    );
    b.script(&format!(
        "document.querySelector(\"{edit} select[name=active]\").value = 'false';"
    ))
    .await;
    b.click(&b.find("tr[data-username='li.na'] summary").await)
        .await;
    b.click_and_wait(&b.find(&format!("{edit} button")).await)
        .await;
    assert!(text_of(&b, "#done").await.contains("li.na"));
    let r = app.get("/api/v1/officer/requests", Some(&token)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    // An admin cannot take their own admin role away.
    let root = "tr[data-username=root] form.edit-officer";
    b.click(&b.find("tr[data-username=root] summary").await)
        .await;
    b.click(&b.find(&format!("{root} input[value=admin]")).await)
        .await;
    b.click(&b.find(&format!("{root} input[value=officer]")).await)
        .await;
    b.click_and_wait(&b.find(&format!("{root} button")).await)
        .await;
    assert!(
        text_of(&b, "#error").await.contains("admin role"),
        "{}",
        b.source().await
    );
    assert_eq!(text_of(&b, "tr[data-username=root] .roles").await, "admin");

    // An officer has no administration: no link, and the page refuses.
    b.click_and_wait(&b.find("#logout").await).await;
    log_in_as(&b, &app, "wang").await;
    assert!(b.find_all("a[href='/console/admin']").await.is_empty());
    b.goto(&format!("{}/console/admin", app.base)).await;
    assert!(b.find_all("#officer-list").await.is_empty());
    assert!(!b.find_all("#error").await.is_empty());
    let status = app
        .client
        .get(format!("{}/console/admin", app.base))
        .header(
            "Cookie",
            format!(
                "rightsdesk_session={}",
                b.cookie("rightsdesk_session").await["value"]
                    .as_str()
                    .expect("a session")
            ),
        )
        .send()
        .await
        .expect("the console answers")
        .status();
    assert_eq!(status, StatusCode::FORBIDDEN);
    b.stop().await;
}

/// Logs `username` in through the form, wherever it lands (an admin has no queue).
async fn log_in_as(b: &Browser, app: &TestApp, username: &str) {
    b.goto(&format!("{}/console/login", app.base)).await;
    b.type_text(&b.find("#username").await, username).await;
    b.type_text(&b.find("#password").await, OFFICER_PASSWORD)
        .await;
    b.click_and_wait(&b.find("#login").await).await;
}

#[tokio::test]
async fn a_triage_email_is_filed_as_a_request_or_dismissed_from_the_triage_tab() {
    let app = crate::intake::app().await;
    app.officer("wang", &["officer"]).await;
    app.officer("audit", &["auditor"]).await;
    for (n, subject) in [(1, "关于我的账户"), (2, "咨询")] {
        let outcome = crate::intake::ingest(
            &app,
            &crate::intake::mail(
                "Zhang Wei <zhang@example.com>",
                &format!("triage-{n}@mail.example.com"),
                subject,
                "你好，我想问一下我的账户的事情。",
                "",
            ),
        )
        .await;
        assert_eq!(outcome["status"], "triage", "{outcome}");
    }

    let b = Browser::start().await;
    // An auditor reads the lane and can do nothing with it.
    log_in(&b, &app, "audit").await;
    b.goto(&format!("{}/console/triage", app.base)).await;
    assert_eq!(b.find_all("article[data-message]").await.len(), 2);
    assert!(b.find_all("form.convert").await.is_empty());
    b.click_and_wait(&b.find("#logout").await).await;

    log_in(&b, &app, "wang").await;
    b.click_and_wait(&b.find("a[href='/console/triage']").await)
        .await;
    let articles = b.find_all("article[data-message]").await;
    assert_eq!(articles.len(), 2);
    b.screenshot("triage").await;
    // The first becomes an access request of Zhang Wei's.
    let first = b
        .attribute(&articles[0], "data-message")
        .await
        .expect("an id");
    let form = format!("article[data-message='{first}'] form.convert");
    b.script(&format!(
        "document.querySelector(\"{form} select[name=kind]\").value = 'access';"
    ))
    .await;
    b.click_and_wait(&b.find(&format!("{form} button")).await)
        .await;
    let path = b.path().await;
    assert!(path.starts_with("/console/requests/"), "{path}");
    assert_eq!(
        b.attribute(&b.find("#kind").await, "data-kind")
            .await
            .as_deref(),
        Some("access")
    );
    // The second is dismissed with a reason.
    b.goto(&format!("{}/console/triage", app.base)).await;
    let form = "article[data-message] form.dismiss";
    b.type_text(&b.find(&format!("{form} textarea")).await, "咨询，不是请求")
        .await;
    b.click_and_wait(&b.find(&format!("{form} button")).await)
        .await;
    assert_eq!(b.path().await, "/console/triage");
    assert!(
        !b.find_all("#empty").await.is_empty(),
        "{}",
        b.source().await
    );
    b.goto(&format!("{}/console/triage?status=dismissed", app.base))
        .await;
    assert_eq!(b.find_all("article[data-message]").await.len(), 1);
    b.stop().await;
}

/// A request of `kind`, filed, verified, assigned to officer `officer_id` and started
/// with its `token`.
async fn started(app: &TestApp, officer_id: &str, token: &str, kind: &str) -> String {
    let filed = app.file_verified(kind).await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    for (action, body) in [
        ("assign", json!({ "assignee_id": officer_id })),
        ("start", json!({})),
    ] {
        let r = app.act(token, &id, action, body).await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
    }
    id
}

async fn events_shown(b: &Browser) -> Vec<String> {
    let mut out = Vec::new();
    for row in b.find_all("#timeline tbody tr").await {
        out.push(b.attribute(&row, "data-event").await.unwrap_or_default());
    }
    out
}

#[tokio::test]
async fn sources_evidence_notes_and_corrections_are_worked_from_the_request_page() {
    let dir = TempDir::new();
    let app = crate::collections::app_with(sources(free_port()), &dir).await;
    let (officer_id, officer) = app.officer("wang", &["officer"]).await;
    let copy = started(&app, &officer_id, &officer, "copy").await;

    let b = Browser::start().await;
    log_in(&b, &app, "wang").await;
    b.goto(&format!("{}/console/requests/{copy}", app.base))
        .await;
    // A copy is answered from the sources: search them all, not erase.
    assert!(b.find_all("#source-erase").await.is_empty());
    b.click_and_wait(&b.find("#source-collect button").await)
        .await;
    let rows = b
        .find_all("#source-outcomes tr[data-work=collection]")
        .await;
    assert_eq!(rows.len(), 2, "{}", b.source().await);
    assert!(
        events_shown(&b)
            .await
            .iter()
            .any(|e| e == "collection_started")
    );
    assert!(
        b.find_all("#source-collect").await.is_empty(),
        "each source is searched once"
    );
    // An internal note.
    b.type_text(&b.find("#comment-body").await, "已电话联系请求人")
        .await;
    b.click_and_wait(&b.find("#add-comment button").await).await;
    assert!(
        text_of(&b, "#comments ul")
            .await
            .contains("已电话联系请求人")
    );
    assert!(events_shown(&b).await.iter().any(|e| e == "comment_added"));
    b.screenshot("request").await;

    // Evidence: opened (recorded first), then accepted.
    let kin = crate::evidence::file(&app, "next_of_kin").await;
    let r = crate::evidence::upload(&app, &kin, "death_certificate", crate::evidence::pdf()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let evidence_id = r.body["id"].as_str().expect("an id").to_owned();
    b.goto(&format!("{}/console/requests/{}", app.base, kin.id))
        .await;
    let view = b
        .find(&format!(
            "tr[data-evidence='{evidence_id}'] a.view-evidence"
        ))
        .await;
    let href = b.attribute(&view, "href").await.expect("a link");
    let session = b.cookie("rightsdesk_session").await["value"]
        .as_str()
        .expect("a session")
        .to_owned();
    let file = app
        .client
        .get(format!("{}{href}", app.base))
        .header("Cookie", format!("rightsdesk_session={session}"))
        .send()
        .await
        .expect("the console answers");
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()["content-type"], "application/pdf");
    assert!(
        file.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(file.bytes().await.unwrap().as_ref(), crate::evidence::pdf());
    b.goto(&format!("{}/console/requests/{}", app.base, kin.id))
        .await;
    assert!(
        events_shown(&b)
            .await
            .iter()
            .any(|e| e == "evidence_viewed")
    );
    let accept = format!("tr[data-evidence='{evidence_id}'] form.accept-evidence");
    b.type_text(
        &b.find(&format!("{accept} input[name=note]")).await,
        "与户籍信息一致",
    )
    .await;
    b.click_and_wait(&b.find(&format!("{accept} button")).await)
        .await;
    let row = b.find(&format!("tr[data-evidence='{evidence_id}']")).await;
    assert_eq!(
        b.attribute(&row, "data-status").await.as_deref(),
        Some("accepted")
    );
    assert!(b.find_all(&accept).await.is_empty());

    // A correction's change, rejected with a reason.
    let correction = started(&app, &officer_id, &officer, "correction").await;
    b.goto(&format!("{}/console/requests/{correction}", app.base))
        .await;
    assert_eq!(b.find_all("#corrections tr[data-change]").await.len(), 1);
    b.script("document.querySelector('select[name=decision_0]').value = 'reject';")
        .await;
    b.type_text(&b.find("input[name=reason_0]").await, "我们不保存该信息")
        .await;
    b.click_and_wait(&b.find("#decide").await).await;
    assert_eq!(
        text_of(&b, "#corrections tr[data-change='0'] td:last-child").await,
        "rejected"
    );
    assert!(b.find_all("#decide").await.is_empty());
    b.stop().await;
}
