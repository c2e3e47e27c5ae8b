//! Complaints (SPEC §8, PIPL 50): a complaint is a request of its own, linked to the
//! request it is about; once the complainant is verified it is escalated to the DPO, who
//! may reopen the original request because of it — both timelines say so.

use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{TestApp, valid_details};

/// Verifies request `reference` with the link sent for it.
async fn verify_by_link(app: &TestApp, reference: &str) {
    app.deliver().await;
    let path = app
        .outbox_messages()
        .into_iter()
        .rfind(|m| {
            m.to == "li.lei@example.com"
                && m.text.contains("/verify/")
                && (m.subject.contains(reference) || m.text.contains(reference))
        })
        .unwrap_or_else(|| panic!("no verification message for {reference}"))
        .link_path();
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .send()
        .await
        .expect("the link answers");
    assert!(r.status().is_success());
}

fn events(detail: &Value) -> Vec<Value> {
    detail["timeline"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_verified_complaint_goes_to_the_dpo_and_can_reopen_the_request_it_is_about() {
    let app = TestApp::spawn().await;
    let (_, dpo) = app
        .officer_with_email("li.dpo", &["dpo", "officer"], Some("li.dpo@example.com"))
        .await;
    // The original request, refused.
    let original = app.file("access", valid_details("access")).await;
    let original_id = original["id"].as_str().expect("an id").to_owned();
    let original_ref = original["reference"]
        .as_str()
        .expect("a reference")
        .to_owned();
    let r = app
        .act(
            &dpo,
            &original_id,
            "reject",
            json!({"reason_code": "harms_others", "explanation": "涉及他人信息"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // The complaint: linked at once, escalated only once its complainant is verified.
    let description = "我认为拒绝理由不成立，数据只涉及我本人。";
    let complaint = app
        .file(
            "complaint",
            json!({"about_reference": original_ref, "description": description}),
        )
        .await;
    let complaint_id = complaint["id"].as_str().expect("an id").to_owned();
    let complaint_ref = complaint["reference"]
        .as_str()
        .expect("a reference")
        .to_owned();
    let detail = app.detail(&dpo, &complaint_id).await;
    assert_eq!(detail["related_request_id"], json!(original_id));
    app.deliver().await;
    let escalations = |app: &TestApp| {
        app.outbox_messages()
            .into_iter()
            .filter(|m| m.to == "li.dpo@example.com" && m.subject.contains("投诉升级"))
            .collect::<Vec<_>>()
    };
    assert!(escalations(&app).is_empty(), "not before verification");
    verify_by_link(&app, &complaint_ref).await;
    app.deliver().await;
    let escalated = escalations(&app);
    assert_eq!(escalated.len(), 1, "exactly once");
    for expected in [&complaint_ref, &original_ref, description, "rejected"] {
        assert!(
            escalated[0].text.contains(expected),
            "{expected}: {}",
            escalated[0].text
        );
    }
    let detail = app.detail(&dpo, &complaint_id).await;
    assert!(
        events(&detail)
            .iter()
            .any(|e| e["event"] == "verified" && e["data"]["escalated_to_dpo"] == true),
        "{detail}"
    );

    // Reopening names the complaint, which must be one about this request.
    for (bad, code) in [
        (json!("PR-2026-999999"), "invalid_value"),
        (json!(original_ref), "invalid_value"),
        (json!("not a reference"), "invalid_reference"),
    ] {
        let r = app
            .act(
                &dpo,
                &original_id,
                "reopen",
                json!({"reason": "complaint upheld", "complaint": bad}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(
            r.body["details"]["fields"]
                .as_array()
                .expect("fields")
                .iter()
                .any(|f| f["field"] == "complaint" && f["code"] == code),
            "{bad}: {:?}",
            r.body
        );
    }
    assert_eq!(app.detail(&dpo, &original_id).await["state"], "rejected");
    let r = app
        .act(
            &dpo,
            &original_id,
            "reopen",
            json!({"reason": "投诉成立，重新处理", "complaint": complaint_ref}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "reopened");
    let reopened = events(&app.detail(&dpo, &original_id).await);
    assert!(
        reopened
            .iter()
            .any(|e| e["event"] == "reopened" && e["data"]["complaint"] == json!(complaint_ref)),
        "{reopened:?}"
    );
    let complaint_events = events(&app.detail(&dpo, &complaint_id).await);
    assert!(
        complaint_events
            .iter()
            .any(|e| e["event"] == "original_reopened"
                && e["data"]["reopened"] == json!(original_ref)),
        "{complaint_events:?}"
    );
    let r = app.act(&dpo, &original_id, "start", json!({})).await;
    assert_eq!(r.body["state"], "in_progress");
}

#[tokio::test]
async fn without_a_dpo_account_with_an_address_the_complaint_goes_to_the_companys_dpo_mailbox() {
    let app = TestApp::spawn().await;
    let original = app.file("access", valid_details("access")).await;
    let about = original["reference"].as_str().expect("a reference");
    let complaint = app
        .file(
            "complaint",
            json!({"about_reference": about, "description": "没有在 15 天内答复"}),
        )
        .await;
    verify_by_link(&app, complaint["reference"].as_str().expect("a reference")).await;
    app.deliver().await;
    let to_dpo: Vec<_> = app
        .outbox_messages()
        .into_iter()
        .filter(|m| m.to == "dpo@example.com")
        .collect();
    assert_eq!(
        to_dpo.len(),
        1,
        "{:?}",
        to_dpo.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(to_dpo[0].text.contains(about));
}
