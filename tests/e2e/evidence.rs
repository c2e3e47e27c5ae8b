//! Evidence (SPEC §2, §5): a next of kin uploads documents, officers open them (each
//! opening audited) and accept or reject them, strangers and auditors cannot read
//! them, bad uploads store nothing, and files are destroyed after the retention period.

use std::sync::Arc;

use chrono::Duration;
use rightsdesk_core::ManualClock;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::reqwest::multipart::{Form, Part};
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{
    OFFICER_PASSWORD, Reply, TestApp, TestDb, base_config, start_time, valid_details,
};
use sea_orm::ConnectionTrait;

const EMAIL: &str = "li.lei@example.com";
/// Text in the test PDF that must never be readable in the database.
const MARKER: &[u8] = b"RIGHTSDESK-SECRET-DEATH-CERTIFICATE";

pub(crate) fn pdf() -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n% ".to_vec();
    bytes.extend_from_slice(MARKER);
    bytes.extend_from_slice(b"\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n");
    bytes
}

fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend_from_slice(&[0u8; 64]);
    bytes
}

pub(crate) struct Filed {
    pub(crate) id: String,
    pub(crate) token: String,
}

pub(crate) async fn file(app: &TestApp, kind: &str) -> Filed {
    let body = app.file(kind, valid_details(kind)).await;
    Filed {
        id: body["id"].as_str().expect("an id").to_owned(),
        token: body["requester_token"]
            .as_str()
            .expect("a token")
            .to_owned(),
    }
}

async fn upload_form(app: &TestApp, id: &str, token: Option<&str>, form: Form) -> Reply {
    let mut req = app
        .client
        .post(format!("{}/api/v1/requests/{id}/evidence", app.base))
        .multipart(form);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    TestApp::reply(req.send().await.expect("the service answers")).await
}

fn form(kind: Option<&str>, name: &str, mime: &str, bytes: Vec<u8>) -> Form {
    let mut form = Form::new();
    if let Some(k) = kind {
        form = form.text("kind", k.to_owned());
    }
    form.part(
        "file",
        Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str(mime)
            .expect("a mime type"),
    )
}

pub(crate) async fn upload(app: &TestApp, f: &Filed, kind: &str, bytes: Vec<u8>) -> Reply {
    upload_form(
        app,
        &f.id,
        Some(&f.token),
        form(Some(kind), "证明.pdf", "application/pdf", bytes),
    )
    .await
}

async fn requester_view(app: &TestApp, f: &Filed) -> Value {
    app.get(&format!("/api/v1/requests/{}", f.id), Some(&f.token))
        .await
        .body
}

fn events(detail: &Value, name: &str) -> Vec<Value> {
    detail["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter(|e| e["event"] == name)
        .cloned()
        .collect()
}

async fn open(
    app: &TestApp,
    token: &str,
    id: &str,
    evidence: &str,
) -> rightsdesk_tests::reqwest::Response {
    app.client
        .get(format!(
            "{}/api/v1/officer/requests/{id}/evidence/{evidence}/content",
            app.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("the service answers")
}

/// Enters the emailed code for `f`.
async fn enter_code(app: &TestApp, f: &Filed) -> Reply {
    app.deliver().await;
    let code = app.verification_message(EMAIL).code();
    app.post(
        &format!("/api/v1/requests/{}/verification", f.id),
        Some(&f.token),
        &json!({ "code": code }),
    )
    .await
}

async fn ciphertexts(app: &TestApp) -> Vec<Vec<u8>> {
    let conn = app.db.connect().await;
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT ciphertext FROM evidence_blobs".to_owned(),
        ))
        .await
        .expect("a query");
    rows.iter()
        .map(|r| r.try_get::<Vec<u8>>("", "ciphertext").expect("bytes"))
        .collect()
}

#[tokio::test]
async fn a_next_of_kin_is_verified_when_an_officer_accepts_the_documents() {
    let app = TestApp::spawn().await;
    let f = file(&app, "next_of_kin").await;

    // The code proves the mailbox, not the right to act for the deceased.
    let r = enter_code(&app, &f).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "awaiting_verification");
    assert_eq!(r.body["documents_required"], true);
    assert!(
        r.body["history"]
            .as_array()
            .expect("a history")
            .iter()
            .any(|e| e["event"] == "contact_verified")
    );

    let r = upload(&app, &f, "death_certificate", pdf()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["content_type"], "application/pdf");
    assert_eq!(r.body["size_bytes"], pdf().len());
    let evidence_id = r.body["id"].as_str().expect("an id").to_owned();
    let view = requester_view(&app, &f).await;
    assert_eq!(view["evidence"][0]["id"], evidence_id.as_str());

    // At rest the file is ciphertext.
    let stored = ciphertexts(&app).await;
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].windows(MARKER.len()).any(|w| w == MARKER),
        "the file is stored in clear"
    );

    let (officer_id, officer) = app.officer("reviewer", &["officer"]).await;
    let d = app.detail(&officer, &f.id).await;
    assert_eq!(d["evidence"][0]["kind"], "death_certificate");
    assert_eq!(d["evidence"][0]["file_name"], "证明.pdf");
    let actions: Vec<&str> = d["allowed_actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(actions.contains(&"accept_evidence"), "{actions:?}");

    let res = open(&app, &officer, &f.id, &evidence_id).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("attachment")
    );
    assert_eq!(res.bytes().await.expect("bytes").to_vec(), pdf());
    let d = app.detail(&officer, &f.id).await;
    let viewed = events(&d, "evidence_viewed");
    assert_eq!(viewed.len(), 1, "every opening is recorded");
    assert_eq!(viewed[0]["actor"], format!("officer:{officer_id}"));
    assert_eq!(viewed[0]["data"]["evidence_id"], evidence_id.as_str());

    // An officer cannot vouch for a next of kin by other means, and one document is not
    // both proofs (PIPL 49: the death and the relationship).
    let r = app
        .act(&officer, &f.id, "verify", json!({"method": "call_back"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "documents_required");
    let proof = upload(&app, &f, "relationship_proof", png()).await;
    let r = app
        .act(
            &officer,
            &f.id,
            "accept_evidence",
            json!({ "evidence_id": proof.body["id"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "awaiting_verification");
    assert!(r.body["subject_id"].is_null());

    let r = app
        .act(
            &officer,
            &f.id,
            "accept_evidence",
            json!({ "evidence_id": evidence_id, "note": "death certificate matches" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "verified");
    assert!(r.body["subject_id"].is_string());
    assert_eq!(r.body["evidence"][0]["status"], "accepted");
    let accepted = events(&r.body, "evidence_accepted");
    let last = accepted.last().expect("an acceptance");
    assert_eq!(last["data"]["method"], "document_review");
    assert_eq!(last["data"]["to"], "verified");

    let view = requester_view(&app, &f).await;
    assert_eq!(view["state"], "verified");
    assert_eq!(view["documents_required"], false);
    assert_eq!(view["evidence"][0]["status"], "accepted");

    // A file is judged once.
    let again = app
        .act(
            &officer,
            &f.id,
            "reject_evidence",
            json!({ "evidence_id": evidence_id, "reason": "changed my mind" }),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
    assert_eq!(again.code(), "evidence_already_reviewed");
}

#[tokio::test]
async fn a_rejected_document_tells_the_requester_why_and_another_can_be_sent() {
    let app = TestApp::spawn().await;
    let f = file(&app, "next_of_kin").await;
    let first = upload(&app, &f, "relationship_proof", png()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["content_type"], "image/png");
    let (_, officer) = app.officer("reviewer", &["officer"]).await;

    let r = app
        .act(
            &officer,
            &f.id,
            "reject_evidence",
            json!({ "evidence_id": first.body["id"], "reason": "照片模糊，无法辨认姓名" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "awaiting_verification");
    assert_eq!(r.body["evidence"][0]["status"], "rejected");

    app.deliver().await;
    let notice = app
        .outbox_messages()
        .into_iter()
        .find(|m| m.to == EMAIL && m.subject.contains("证明材料"))
        .expect("a rejection notice");
    assert!(
        notice.text.contains("照片模糊，无法辨认姓名"),
        "{}",
        notice.text
    );
    assert!(notice.text.contains("亲属关系证明"), "{}", notice.text);
    let view = requester_view(&app, &f).await;
    assert_eq!(view["evidence"][0]["review_note"], "照片模糊，无法辨认姓名");

    // A reason is required, and the id must be one of this request's files.
    let r = app
        .act(
            &officer,
            &f.id,
            "reject_evidence",
            json!({ "evidence_id": first.body["id"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = app
        .act(
            &officer,
            &f.id,
            "accept_evidence",
            json!({ "evidence_id": "0195e7a0-0000-7000-8000-000000000000" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.fields(), vec!["evidence_id"]);

    let second = upload(&app, &f, "relationship_proof", pdf()).await;
    assert_eq!(second.status, StatusCode::CREATED, "{:?}", second.body);
    let death = upload(&app, &f, "death_certificate", pdf()).await;
    for (file, state) in [(&second, "awaiting_verification"), (&death, "verified")] {
        let r = app
            .act(
                &officer,
                &f.id,
                "accept_evidence",
                json!({ "evidence_id": file.body["id"] }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["state"], state);
    }
}

#[tokio::test]
async fn wrong_types_oversized_files_and_malformed_forms_are_refused_and_store_nothing() {
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.evidence.max_bytes = 4096;
    config.evidence.max_files_per_request = 2;
    let app = TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await;
    let f = file(&app, "next_of_kin").await;
    let events_before = app.count("events").await;

    let cases: Vec<(Form, StatusCode, &str)> = vec![
        (
            form(
                Some("id_document"),
                "a.gif",
                "image/gif",
                b"GIF89a....".to_vec(),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "evidence_type_not_allowed",
        ),
        // The declared type and the name do not make a program a PDF.
        (
            form(
                Some("id_document"),
                "certificate.pdf",
                "application/pdf",
                b"MZ\x90\0program".to_vec(),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "evidence_type_not_allowed",
        ),
        (
            form(Some("id_document"), "big.pdf", "application/pdf", {
                let mut b = pdf();
                b.resize(4097, b' ');
                b
            }),
            StatusCode::PAYLOAD_TOO_LARGE,
            "evidence_too_large",
        ),
        (
            form(None, "a.pdf", "application/pdf", pdf()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            form(Some("selfie"), "a.pdf", "application/pdf", pdf()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            form(Some("id_document"), "a.pdf", "application/pdf", Vec::new()),
            StatusCode::BAD_REQUEST,
            "invalid_upload",
        ),
        (
            Form::new().text("kind", "id_document"),
            StatusCode::BAD_REQUEST,
            "invalid_upload",
        ),
        (
            form(Some("id_document"), "a.pdf", "application/pdf", pdf()).text("comment", "extra"),
            StatusCode::BAD_REQUEST,
            "invalid_upload",
        ),
    ];
    for (i, (body, status, code)) in cases.into_iter().enumerate() {
        let r = upload_form(&app, &f.id, Some(&f.token), body).await;
        assert_eq!(r.status, status, "case {i}: {:?}", r.body);
        assert_eq!(r.code(), code, "case {i}: {:?}", r.body);
    }
    let too_large = upload(&app, &f, "id_document", vec![b'%'; 5000]).await;
    assert_eq!(too_large.body["details"]["max_bytes"], 4096);
    // Not multipart at all.
    let r = app
        .post(
            &format!("/api/v1/requests/{}/evidence", f.id),
            Some(&f.token),
            &json!({"kind": "id_document", "file": "JVBERi0="}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.code(), "invalid_upload");

    assert_eq!(app.count("evidence").await, 0);
    assert_eq!(app.count("evidence_blobs").await, 0);
    assert_eq!(app.count("events").await, events_before);

    // At most `max_files_per_request` files.
    for _ in 0..2 {
        let r = upload(&app, &f, "id_document", pdf()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let r = upload(&app, &f, "id_document", pdf()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "evidence_limit_reached");
    assert_eq!(app.count("evidence").await, 2);
}

#[tokio::test]
async fn strangers_auditors_and_administrators_cannot_read_evidence() {
    let app = TestApp::spawn().await;
    let f = file(&app, "next_of_kin").await;
    let other = file(&app, "access").await;
    let stored = upload(&app, &f, "death_certificate", pdf()).await;
    let evidence_id = stored.body["id"].as_str().expect("an id").to_owned();

    // Another requester's token neither uploads nor sees.
    let r = upload_form(
        &app,
        &f.id,
        Some(&other.token),
        form(Some("other"), "x.pdf", "application/pdf", pdf()),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = upload_form(
        &app,
        &f.id,
        None,
        form(Some("other"), "x.pdf", "application/pdf", pdf()),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    let r = app
        .get(
            &format!("/api/v1/requests/{}", other.id),
            Some(&other.token),
        )
        .await;
    assert_eq!(r.body["evidence"], json!([]));
    // A requester token is not an officer's.
    let res = open(&app, &f.token, &f.id, &evidence_id).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let (_, auditor) = app.officer("auditor", &["auditor"]).await;
    let d = app.detail(&auditor, &f.id).await;
    assert_eq!(d["evidence"][0]["id"], evidence_id.as_str());
    assert!(!events(&d, "evidence_uploaded").is_empty());
    let res = open(&app, &auditor, &f.id, &evidence_id).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let admin = app.admin_token().await;
    let res = open(&app, &admin, &f.id, &evidence_id).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let r = app
        .act(
            &auditor,
            &f.id,
            "accept_evidence",
            json!({ "evidence_id": evidence_id }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);

    // The file is not reachable through another request's path.
    let (_, officer) = app.officer("officer", &["officer"]).await;
    let res = open(&app, &officer, &other.id, &evidence_id).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let d = app.detail(&officer, &f.id).await;
    assert!(
        events(&d, "evidence_viewed").is_empty(),
        "refused openings read nothing"
    );
}

#[tokio::test]
async fn evidence_is_destroyed_after_the_retention_period_and_closed_requests_take_no_more() {
    let app = TestApp::spawn().await;
    let closed = file(&app, "access").await;
    let r = enter_code(&app, &closed).await;
    assert_eq!(r.body["state"], "verified", "{:?}", r.body);
    let open_one = file(&app, "next_of_kin").await;
    let r = upload(&app, &closed, "id_document", pdf()).await;
    let evidence_id = r.body["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        upload(&app, &open_one, "death_certificate", pdf())
            .await
            .status,
        StatusCode::CREATED
    );
    let (_, officer) = app.officer("officer", &["officer"]).await;
    assert_eq!(
        app.act(&officer, &closed.id, "start", json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .act(
            &officer,
            &closed.id,
            "complete",
            json!({"summary": "sent the data"}),
        )
        .await;
    assert_eq!(r.body["state"], "completed", "{:?}", r.body);

    let r = upload(&app, &closed, "id_document", pdf()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "request_closed");

    app.clock.advance(Duration::days(30) - Duration::seconds(1));
    assert_eq!(app.services.purge_evidence().await.unwrap(), 0);
    app.clock.advance(Duration::seconds(2));
    assert_eq!(app.services.purge_evidence().await.unwrap(), 1);
    assert_eq!(app.services.purge_evidence().await.unwrap(), 0, "once");

    // Officer tokens are short-lived: a month later, log in again.
    let officer = app.login("officer", OFFICER_PASSWORD).await;
    let res = open(&app, &officer, &closed.id, &evidence_id).await;
    assert_eq!(res.status(), StatusCode::GONE);
    assert_eq!(
        app.count("evidence_blobs").await,
        1,
        "the open request's file stays"
    );
    let d = app.detail(&officer, &closed.id).await;
    assert!(
        d["evidence"][0]["deleted_at"].is_string(),
        "{:?}",
        d["evidence"]
    );
    let deleted = events(&d, "evidence_deleted");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["actor"], "system");
}

#[tokio::test]
async fn the_website_can_redeem_the_link_through_the_api_once() {
    let app = TestApp::spawn().await;
    let f = file(&app, "access").await;
    app.deliver().await;
    let path = app.verification_message(EMAIL).link_path();
    let other = file(&app, "copy").await;
    let token = path.trim_start_matches("/verify/").to_owned();
    let url = |id: &str| format!("/api/v1/requests/{id}/verify?token={token}");

    // Not this request's link.
    let r = app.get(&url(&other.id), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.code(), "verification_link_invalid");

    let r = app.get(&url(&f.id), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "verified");
    assert_eq!(r.body["documents_required"], false);
    let r = app.get(&url(&f.id), None).await;
    assert_eq!(r.status, StatusCode::GONE, "{:?}", r.body);
    assert_eq!(r.code(), "verification_link_expired");
}

#[tokio::test]
async fn a_guardian_is_verified_by_documents_and_the_child_becomes_the_subject() {
    let app = TestApp::spawn().await;
    let mut body = rightsdesk_tests::filing("deletion", valid_details("deletion"));
    body["requester"]["acting_for"] =
        json!({"capacity": "guardian", "name": "李小明", "phone": "13900001111"});
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let f = Filed {
        id: r.body["id"].as_str().expect("an id").to_owned(),
        token: r.body["requester_token"]
            .as_str()
            .expect("a token")
            .to_owned(),
    };
    let r = enter_code(&app, &f).await;
    assert_eq!(r.body["state"], "awaiting_verification", "{:?}", r.body);
    assert_eq!(r.body["documents_required"], true);
    assert_eq!(r.body["acting_for"]["capacity"], "guardian");
    assert_eq!(r.body["acting_for"]["phone"], "+8613900001111");

    let proof = upload(&app, &f, "guardian_proof", pdf()).await;
    let (_, officer) = app.officer("officer", &["officer"]).await;
    let d = app
        .act(
            &officer,
            &f.id,
            "accept_evidence",
            json!({ "evidence_id": proof.body["id"] }),
        )
        .await;
    assert_eq!(d.body["state"], "verified", "{:?}", d.body);
    assert_eq!(d.body["requester"]["acting_for"]["name"], "李小明");

    // The parent's own request links the parent, not the child.
    let own = file(&app, "access").await;
    assert_eq!(enter_code(&app, &own).await.body["state"], "verified");
    let own_detail = app.detail(&officer, &own.id).await;
    assert!(own_detail["subject_id"].is_string());
    assert_ne!(own_detail["subject_id"], d.body["subject_id"]);
}

#[tokio::test]
async fn acting_for_is_validated() {
    let app = TestApp::spawn().await;
    let mut body = rightsdesk_tests::filing("access", valid_details("access"));
    body["requester"]["acting_for"] = json!({"capacity": "friend", "phone": "12"});
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(
        r.fields(),
        vec![
            "requester.acting_for.capacity",
            "requester.acting_for.name",
            "requester.acting_for.phone"
        ]
    );
    let mut body = rightsdesk_tests::filing("next_of_kin", valid_details("next_of_kin"));
    body["requester"]["acting_for"] = json!({"capacity": "agent", "name": "王律师"});
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.fields(), vec!["requester.acting_for"]);
    assert_eq!(app.count("requests").await, 0);
}
