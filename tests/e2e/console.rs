//! The officer console (SPEC §10) in a real headless Chromium: an officer logs in, finds
//! a request by its reference in the queue, and logs out; forms without their CSRF token
//! are refused; repeated wrong passwords lock the account, as on the API.

use rightsdesk_tests::browser::Browser;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::{OFFICER_PASSWORD, TestApp, valid_details};

/// The value of the hidden `csrf` field in `html`.
pub(crate) fn csrf_field(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[start..].split('"').next().expect("a value").to_owned()
}

async fn references_shown(b: &Browser) -> Vec<String> {
    let mut out = Vec::new();
    for row in b.find_all("tbody tr[data-reference]").await {
        out.push(
            b.attribute(&row, "data-reference")
                .await
                .expect("a reference"),
        );
    }
    out
}

#[tokio::test]
async fn an_officer_logs_in_finds_a_request_by_reference_and_logs_out() {
    let app = TestApp::spawn().await;
    app.officer("wang", &["officer"]).await;
    let first = app.file("access", valid_details("access")).await;
    let second = app.file("deletion", valid_details("deletion")).await;
    let reference = first["reference"].as_str().expect("a reference").to_owned();
    let other = second["reference"]
        .as_str()
        .expect("a reference")
        .to_owned();

    let b = Browser::start().await;
    b.goto(&format!("{}/console", app.base)).await;
    assert_eq!(
        b.path().await,
        "/console/login",
        "a visitor without a session is sent to the login"
    );
    b.type_text(&b.find("#username").await, "wang").await;
    b.type_text(&b.find("#password").await, OFFICER_PASSWORD)
        .await;
    b.click_and_wait(&b.find("#login").await).await;
    assert_eq!(b.path().await, "/console", "{}", b.source().await);
    let shown = references_shown(&b).await;
    assert!(
        shown.contains(&reference) && shown.contains(&other),
        "{shown:?}"
    );
    // The session cookie is out of the page's reach, and goes to no other site.
    let cookie = b.cookie("rightsdesk_session").await;
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");

    // Search by reference: the rows narrow as the officer types (htmx swaps the
    // results and keeps the address), and the form's submit does the same without it.
    b.type_text(&b.find("#q").await, &reference).await;
    let url = b
        .wait_for_url(|u| u.contains(&format!("q={reference}")))
        .await;
    assert!(url.contains(&format!("q={reference}")), "{url}");
    for _ in 0..100 {
        if references_shown(&b).await == std::slice::from_ref(&reference) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(references_shown(&b).await, std::slice::from_ref(&reference));
    b.click_and_wait(&b.find("#filter").await).await;
    let shown = references_shown(&b).await;
    assert_eq!(shown, std::slice::from_ref(&reference));

    // English, then out: the session is gone.
    b.goto(&format!("{}/console?lang=en", app.base)).await;
    let page = b.source().await;
    assert!(page.contains("Days left"), "{page}");
    b.click_and_wait(&b.find("#logout").await).await;
    assert_eq!(b.path().await, "/console/login");
    b.goto(&format!("{}/console", app.base)).await;
    assert_eq!(b.path().await, "/console/login", "the session is gone");
    b.stop().await;
}

/// Logs `username` in through the form.
pub(crate) async fn log_in(b: &Browser, app: &TestApp, username: &str) {
    b.goto(&format!("{}/console/login", app.base)).await;
    b.type_text(&b.find("#username").await, username).await;
    b.type_text(&b.find("#password").await, OFFICER_PASSWORD)
        .await;
    b.click_and_wait(&b.find("#login").await).await;
    assert_eq!(b.path().await, "/console");
}

/// Submits the form of `action` on the request page, filling `fields` (text areas and
/// inputs by name), and waits for the page to come back.
async fn act(b: &Browser, action: &str, fields: &[(&str, &str)]) {
    for (name, value) in fields {
        let field = b.find(&format!("#action-{action} [name={name}]")).await;
        b.type_text(&field, value).await;
    }
    // The page comes back (a redirect to the request page) with the new event.
    b.click_and_wait(&b.find(&format!("#action-{action} button")).await)
        .await;
}

/// The request's state as the page holds it (the text is in the officer's language).
async fn state_shown(b: &Browser) -> String {
    b.attribute(&b.find("#state").await, "data-state")
        .await
        .expect("a state")
}

async fn events_shown(b: &Browser) -> Vec<String> {
    let mut out = Vec::new();
    for row in b.find_all("#timeline tbody tr").await {
        out.push(b.attribute(&row, "data-event").await.unwrap_or_default());
    }
    out
}

#[tokio::test]
async fn a_request_is_worked_from_its_page_and_each_change_is_in_the_timeline() {
    let app = TestApp::spawn().await;
    let (_, api_officer) = app.officer("wang", &["officer"]).await;
    app.officer("zhou", &["dpo"]).await;
    app.officer("audit", &["auditor"]).await;
    let filed = app.file("access", valid_details("access")).await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    let reference = filed["reference"].as_str().expect("a reference").to_owned();
    let r = app
        .act(
            &api_officer,
            &id,
            "verify",
            serde_json::json!({"method": "call_back"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let b = Browser::start().await;
    log_in(&b, &app, "wang").await;
    // Found by its reference, opened from the queue.
    b.goto(&format!("{}/console?q={reference}", app.base)).await;
    b.click_and_wait(&b.find(&format!("tr[data-reference='{reference}'] a")).await)
        .await;
    assert_eq!(
        b.wait_for_path(&format!("/console/requests/{id}")).await,
        format!("/console/requests/{id}")
    );
    assert!(
        b.find_all("#action-reject").await.is_empty(),
        "an officer cannot reject"
    );
    act(&b, "assign", &[]).await;
    assert_eq!(b.text(&b.find("#assignee").await).await, "wang");
    act(&b, "start", &[]).await;
    act(
        &b,
        "request_info",
        &[("message", "请提供您注册时使用的手机号")],
    )
    .await;
    let events = events_shown(&b).await;
    for e in ["assigned", "started", "info_requested"] {
        assert!(events.iter().any(|x| x == e), "{e}: {events:?}");
    }
    assert_eq!(state_shown(&b).await, "awaiting_requester");
    // The DPO rejects, with a reason.
    b.click_and_wait(&b.find("#logout").await).await;
    log_in(&b, &app, "zhou").await;
    b.goto(&format!("{}/console/requests/{id}", app.base)).await;
    // A refused action says why, and changes nothing (pipl allows no extension).
    act(&b, "extend", &[("reason", "复杂的请求")]).await;
    assert!(
        b.text(&b.find("#error").await).await.contains("extension"),
        "{}",
        b.source().await
    );
    assert!(!events_shown(&b).await.iter().any(|e| e == "extended"));
    act(&b, "reject", &[("explanation", "无法核实您的身份")]).await;
    assert_eq!(state_shown(&b).await, "rejected");
    assert!(events_shown(&b).await.iter().any(|e| e == "rejected"));

    // An auditor reads, and has no action to take.
    b.click_and_wait(&b.find("#logout").await).await;
    log_in(&b, &app, "audit").await;
    b.goto(&format!("{}/console/requests/{id}", app.base)).await;
    assert!(b.find_all("form.action").await.is_empty());
    assert!(events_shown(&b).await.iter().any(|e| e == "rejected"));
    b.stop().await;
}

#[tokio::test]
async fn selected_requests_are_assigned_and_started_at_once() {
    let app = TestApp::spawn().await;
    let (wang_id, api_officer) = app.officer("wang", &["officer"]).await;
    let mut ids = Vec::new();
    for kind in ["access", "deletion", "copy"] {
        let filed = app.file(kind, valid_details(kind)).await;
        let id = filed["id"].as_str().expect("an id").to_owned();
        let r = app
            .act(
                &api_officer,
                &id,
                "verify",
                serde_json::json!({"method": "call_back"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        ids.push(id);
    }
    let b = Browser::start().await;
    log_in(&b, &app, "wang").await;
    // The first two rows of the queue (oldest due first), by their checkboxes.
    let boxes = b.find_all("input[name=ids]").await;
    assert_eq!(boxes.len(), 3);
    let mut chosen = Vec::new();
    for checkbox in &boxes[..2] {
        b.click(checkbox).await;
        chosen.push(b.attribute(checkbox, "value").await.expect("an id"));
    }
    b.click_and_wait(&b.find("#bulk-assign").await).await;
    assert_eq!(b.path().await, "/console", "{}", b.source().await);
    for checkbox in &b.find_all("input[name=ids]").await[..2] {
        b.click(checkbox).await;
    }
    b.click_and_wait(&b.find("#bulk-start").await).await;
    for id in &ids {
        let d = app.detail(&api_officer, id).await;
        let picked = chosen.contains(id);
        assert_eq!(
            d["assignee_id"] == serde_json::json!(wang_id),
            picked,
            "{id}"
        );
        assert_eq!(d["state"] == "in_progress", picked, "{id}: {}", d["state"]);
    }
    // Starting them again is refused, and the page says which and why.
    for checkbox in &b.find_all("input[name=ids]").await[..1] {
        b.click(checkbox).await;
    }
    b.click_and_wait(&b.find("#bulk-start").await).await;
    assert!(
        b.text(&b.find("#error").await)
            .await
            .contains("in_progress"),
        "{}",
        b.source().await
    );
    b.stop().await;
}

#[tokio::test]
async fn forms_without_their_token_are_refused_and_failed_logins_lock_the_account() {
    let app = TestApp::spawn().await;
    app.officer("wang", &["officer"]).await;
    let client = &app.client;
    let session = app.login("wang", OFFICER_PASSWORD).await;

    // A forged logout (another site's form cannot know the token).
    let r = client
        .post(format!("{}/console/logout", app.base))
        .header("Cookie", format!("rightsdesk_session={session}"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // An action posted without the token, or by a role that may not take it (an
    // auditor, with a valid token): refused, nothing changes.
    let filed = app.file("access", valid_details("access")).await;
    let id = filed["id"].as_str().expect("an id");
    let events_before = app.count("events").await;
    let r = client
        .post(format!("{}/console/requests/{id}/actions/assign", app.base))
        .header("Cookie", format!("rightsdesk_session={session}"))
        .form(&[("assignee_id", "")])
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, auditor) = app.officer("audit", &["auditor"]).await;
    let r = client
        .post(format!(
            "{}/console/requests/{id}/actions/withdraw",
            app.base
        ))
        .header("Cookie", format!("rightsdesk_session={auditor}"))
        .form(&[("csrf", rightsdesk_core::auth::csrf_token(&auditor).as_str())])
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("events").await, events_before);

    // A login post without the login form's cookie.
    let r = client
        .post(format!("{}/console/login", app.base))
        .form(&[
            ("csrf", "x"),
            ("username", "wang"),
            ("password", OFFICER_PASSWORD),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("set-cookie").is_none_or(|c| {
        !c.to_str()
            .unwrap_or_default()
            .contains("rightsdesk_session=ey")
    }));

    // Wrong passwords, through the form, until the account locks.
    let mut last = StatusCode::OK;
    // The failure that reaches the limit locks the account; the next try is told.
    for _ in 0..=app.config.core().security.max_failed_logins {
        let page = client
            .get(format!("{}/console/login", app.base))
            .send()
            .await
            .expect("answers");
        let cookie = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|c| c.to_str().ok())
            .find(|c| c.starts_with("rightsdesk_login_csrf="))
            .and_then(|c| c.split(';').next())
            .expect("the login cookie")
            .to_owned();
        let html = page.text().await.expect("html");
        let r = client
            .post(format!("{}/console/login", app.base))
            .header("Cookie", cookie)
            .form(&[
                ("csrf", csrf_field(&html).as_str()),
                ("username", "wang"),
                ("password", "wrong password"),
            ])
            .send()
            .await
            .expect("answers");
        last = r.status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}
