//! Refusals (SPEC §8): every reason code ends in a refusal letter — the reason, its
//! explanation and legal basis, the complaint channel and the right to sue (PIPL 50),
//! signed by the DPO — attached to the refusal notice in the requester's language, and
//! printable by officers from the request.

use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{TestApp, filing, valid_details};

const REASONS: &[(&str, &str, &str)] = &[
    ("identity_not_verified", "无法核验您的身份", "第8.7条"),
    (
        "manifestly_unfounded",
        "请求明显缺乏依据或因重复而过度",
        "无端重复",
    ),
    (
        "disproportionate_effort",
        "需要付出不成比例的技术手段",
        "过多技术手段",
    ),
    ("harms_others", "将损害他人的合法权益", "他人合法权益"),
    ("impractical", "客观上无法实现", "不切实际"),
    (
        "legal_exemption",
        "法律、行政法规规定的例外情形",
        "第四十四条",
    ),
    ("deceased_arrangement", "已故用户生前另有安排", "第四十九条"),
    ("outside_jurisdiction", "不属于本服务的处理范围", "第三条"),
];

/// Files a request in `language`, and returns its id and reference.
async fn filed(app: &TestApp, language: &str) -> (String, String) {
    let mut body = filing("access", valid_details("access"));
    body["requester"]["language"] = json!(language);
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (
        r.body["id"].as_str().expect("an id").to_owned(),
        r.body["reference"]
            .as_str()
            .expect("a reference")
            .to_owned(),
    )
}

/// The refusal letter attached to the last refusal notice of `reference`.
fn attached_letter(app: &TestApp, reference: &str) -> String {
    let notice = app
        .outbox_messages()
        .into_iter()
        .rfind(|m| {
            m.to == "li.lei@example.com"
                && m.subject.contains(reference)
                && !m.attachments.is_empty()
        })
        .unwrap_or_else(|| panic!("no refusal notice of {reference} with a letter"));
    let (name, bytes) = &notice.attachments[0];
    assert_eq!(name, &format!("refusal-letter-{reference}.html"));
    String::from_utf8(bytes.clone()).expect("UTF-8")
}

#[tokio::test]
async fn every_refusal_reason_gives_a_letter_with_its_basis_the_complaint_channel_and_the_right_to_sue()
 {
    let app = TestApp::spawn().await;
    let (_, dpo) = app.officer("li.dpo", &["dpo"]).await;
    let (_, auditor) = app.officer("audit", &["auditor"]).await;
    for (code, label, basis) in REASONS {
        let (id, reference) = filed(&app, "zh-CN").await;
        let explanation = format!("说明：{code} 的具体情况 <b>不是标记</b>");
        let r = app
            .act(
                &dpo,
                &id,
                "reject",
                json!({"reason_code": code, "explanation": explanation}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{code}: {:?}", r.body);
        app.deliver().await;
        let letter = attached_letter(&app, &reference);
        for expected in [
            "不予办理告知书",
            &reference,
            *label,
            *basis,
            "说明：",
            "&lt;b&gt;不是标记",
            "dpo@example.com",
            "履行个人信息保护职责的部门",
            "第五十条",
            "人民法院",
            "个人信息保护负责人：li.dpo",
        ] {
            assert!(
                letter.contains(expected),
                "{code}: {expected} missing in {letter}"
            );
        }
        assert!(!letter.contains("<b>不是标记"), "values are escaped");
        // The officers' copy is the same letter.
        let r = app
            .client
            .get(format!(
                "{}/api/v1/officer/requests/{id}/refusal-letter",
                app.base
            ))
            .bearer_auth(&auditor)
            .send()
            .await
            .expect("the service answers");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .expect("a type")
                .starts_with("text/html")
        );
        assert_eq!(r.text().await.expect("a body"), letter, "{code}");
    }

    // In English for a requester who wrote in English.
    let (id, reference) = filed(&app, "en").await;
    let r = app
        .act(
            &dpo,
            &id,
            "reject",
            json!({"reason_code": "impractical", "explanation": "The data exists only on backup tapes."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    app.deliver().await;
    let letter = attached_letter(&app, &reference);
    for expected in [
        "Notice of refusal",
        "it is impractical",
        "35273-2020 (Personal information security specification) §8.7",
        "The data exists only on backup tapes.",
        "Article 50",
        "people's court",
        "Personal information protection officer: li.dpo",
    ] {
        assert!(letter.contains(expected), "{expected} missing in {letter}");
    }

    // A request that is not rejected has no letter; a system account sees none.
    let (open, _) = filed(&app, "zh-CN").await;
    let r = app
        .get(
            &format!("/api/v1/officer/requests/{open}/refusal-letter"),
            Some(&auditor),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "not_rejected");
    let (_, system) = app.officer("crm", &["system"]).await;
    let r = app
        .get(
            &format!("/api/v1/officer/requests/{id}/refusal-letter"),
            Some(&system),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r: Value = app
        .get(
            "/api/v1/officer/requests/01a2262a-5456-7710-85a3-f01ba273e5c9/refusal-letter",
            Some(&auditor),
        )
        .await
        .body;
    assert_eq!(r["code"], "not_found");
}
