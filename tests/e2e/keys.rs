//! Key rotation (issue 9, `rightsdesk keys rotate`): after every key the database keeps
//! is rotated, what the old versions signed and sealed still verifies and opens — an
//! officer's token, evidence, a bundle and its download link, a notification waiting in
//! the outbox, a certificate's key — and, once the new versions are active, new data
//! uses them: new tokens name the new key, new evidence is sealed under it, and the
//! certificate key published is the new one, with the old one listed as previous.

use base64::Engine;
use rightsdesk_core::keys::KeyName;
use rightsdesk_tests::TestApp;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use sea_orm::ConnectionTrait;

use crate::bundles::{Setup, collect_and_answer, download, download_link, setup};
use crate::evidence::{file, pdf, upload};

/// The `kid` of an officer token's header.
fn kid(token: &str) -> String {
    let header = token.split('.').next().expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url");
    let header: Value = rightsdesk_tests::serde_json::from_slice(&bytes).expect("JSON");
    header["kid"].as_str().expect("a kid").to_owned()
}

async fn works(app: &TestApp, token: &str) -> bool {
    app.get("/api/v1/officer/requests", Some(token))
        .await
        .status
        == StatusCode::OK
}

/// The key ids evidence is sealed under, one per file, in upload order.
async fn evidence_key_ids(app: &TestApp) -> Vec<String> {
    let conn = app.db.connect().await;
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT b.key_id FROM evidence_blobs b JOIN evidence e ON e.id = b.evidence_id \
             ORDER BY e.uploaded_at"
                .to_owned(),
        ))
        .await
        .expect("a query");
    rows.iter()
        .map(|r| r.try_get::<String>("", "key_id").expect("a key id"))
        .collect()
}

/// The evidence file's bytes as an officer opens them; none when refused.
async fn open_evidence(
    app: &TestApp,
    officer: &str,
    request: &str,
    evidence: &str,
) -> Option<Vec<u8>> {
    let r = app
        .client
        .get(format!(
            "{}/api/v1/officer/requests/{request}/evidence/{evidence}/content",
            app.base
        ))
        .bearer_auth(officer)
        .send()
        .await
        .expect("answers");
    if r.status() != StatusCode::OK {
        return None;
    }
    Some(r.bytes().await.expect("bytes").to_vec())
}

/// Files a copy request for `email`, verifies it, collects (nobody holds data on this
/// person) and completes it: the completion notice carries a download link.
async fn completed_copy(app: &TestApp, officer: &str, email: &str) -> String {
    let r = app
        .post(
            "/api/v1/requests",
            None,
            &json!({
                "kind": "copy",
                "requester": {"name": "路人", "email": email, "language": "zh-CN"},
                "details": {},
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("an id").to_owned();
    app.deliver().await;
    let path = app.verification_message(email).link_path();
    let verified = app
        .client
        .post(format!("{}{path}", app.base))
        .send()
        .await
        .expect("the link answers");
    assert!(verified.status().is_success());
    let r = app.act(officer, &id, "start", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    collect_and_answer(app, officer, &id, json!({"no_data": true})).await;
    let r = app
        .act(officer, &id, "complete", json!({"summary": "未找到"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.deliver().await;
    download_link(app, email)
}

#[tokio::test]
async fn after_a_rotation_old_keys_still_verify_and_decrypt_and_new_data_uses_the_new_keys() {
    let Setup {
        app,
        crm,
        _dir,
        _marketing,
    } = setup(5).await;
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let first_kid = kid(&officer);
    let old_certificate_key = app.get("/api/v1/certificates/public-key", None).await.body;
    assert_eq!(old_certificate_key["previous"], json!([]));

    // Made under the first versions: evidence, a bundle and its link, and a
    // notification still waiting in the outbox (its code sealed).
    let next_of_kin = file(&app, "access").await;
    let r = upload(&app, &next_of_kin, "death_certificate", pdf()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let evidence_id = r.body["id"].as_str().expect("an id").to_owned();
    let old_link = completed_copy(&app, &officer, "before@example.com").await;
    let waiting = app
        .file("access", rightsdesk_tests::valid_details("access"))
        .await;

    // Rotated, to activate in two minutes: nothing changes before then.
    let rotated = app
        .services
        .rotate_keys(&[], std::time::Duration::from_secs(120))
        .await
        .expect("rotated");
    assert_eq!(rotated.len(), KeyName::ALL.len());
    assert!(rotated.iter().all(|r| r.version == Some(2)), "{rotated:?}");
    let (_, still_old) = app.officer("li.na", &["officer"]).await;
    assert_eq!(kid(&still_old), first_kid, "not active yet");

    app.clock.advance(chrono::Duration::seconds(121));
    let keys = app.services.list_keys().await.expect("the keys");
    for key in &keys {
        let current: Vec<i32> = key
            .versions
            .iter()
            .filter(|v| v.current)
            .map(|v| v.version)
            .collect();
        assert_eq!(current, [2], "{}", key.name);
    }

    // Tokens: the new one names the new key; the old one still works.
    let (_, new_officer) = app.officer("zhao", &["officer"]).await;
    assert_ne!(kid(&new_officer), first_kid);
    assert!(works(&app, &new_officer).await);
    assert!(
        works(&app, &officer).await,
        "a token signed before still works"
    );
    // A token naming a key the service does not hold is refused.
    let mut parts: Vec<String> = new_officer.split('.').map(str::to_owned).collect();
    parts[0] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"typ":"JWT","alg":"HS256","kid":"ffffffffffffffff"}"#);
    assert!(!works(&app, &parts.join(".")).await);

    // Evidence: the old file opens; a new one is sealed under the new key.
    assert_eq!(
        open_evidence(&app, &new_officer, &next_of_kin.id, &evidence_id).await,
        Some(pdf())
    );
    let r = upload(&app, &next_of_kin, "relationship_proof", pdf()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let key_ids = evidence_key_ids(&app).await;
    assert_eq!(key_ids.len(), 2);
    assert_ne!(key_ids[0], key_ids[1], "new evidence uses the new key");

    // The bundle sealed and the link signed before: still downloads and verifies.
    let file = download(&app, &old_link, "before.zip").await;
    assert!(
        rightsdesk_export::verify(&file, None)
            .expect("a bundle")
            .is_ok()
    );
    // And a bundle made now, under the new keys.
    let new_link = completed_copy(&app, &new_officer, "after@example.com").await;
    let file = download(&app, &new_link, "after.zip").await;
    assert!(
        rightsdesk_export::verify(&file, None)
            .expect("a bundle")
            .is_ok()
    );

    // The notification sealed before is sent now, its code readable.
    app.deliver().await;
    let reference = waiting["reference"].as_str().expect("a reference");
    let message = app
        .outbox_messages()
        .into_iter()
        .find(|m| m.subject.contains(reference) && m.text.contains("/verify/"))
        .expect("the verification message sealed before the rotation");
    assert_eq!(message.code().len(), 6);

    // The certificate key: the new one published, the old one listed.
    let key = app.get("/api/v1/certificates/public-key", None).await.body;
    assert_ne!(key["key_id"], old_certificate_key["key_id"]);
    assert_eq!(key["previous"][0]["key_id"], old_certificate_key["key_id"]);
    assert_eq!(
        key["previous"][0]["public_key"],
        old_certificate_key["public_key"]
    );

    // Rotated again: three versions, and the first still opens the first evidence.
    app.services
        .rotate_keys(&[KeyName::AtRest], std::time::Duration::ZERO)
        .await
        .expect("rotated");
    assert_eq!(
        open_evidence(&app, &new_officer, &next_of_kin.id, &evidence_id).await,
        Some(pdf())
    );
    crm.stop(true).await;
}
