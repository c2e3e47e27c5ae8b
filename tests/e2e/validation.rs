//! Input validation at the requester API (SPEC §1, §12, §15): every request kind files
//! with valid details and is refused, field by field, with invalid ones; every bad input
//! gets a clear 4xx error body (`code`, `message`, `request_id`, `details`) and never
//! changes stored data.

use std::sync::Arc;

use rightsdesk_core::ManualClock;
use rightsdesk_tests::reqwest::{Method, StatusCode, header};
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{KINDS, Reply, TestApp, TestDb, filing, start_time, valid_details};

const FILE: &str = "/api/v1/requests";

/// Sends `body` as it is to `POST /api/v1/requests`, with `content_type` if any.
async fn send_raw(app: &TestApp, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Reply {
    let mut req = app.client.post(format!("{}{FILE}", app.base));
    if let Some(t) = content_type {
        req = req.header(header::CONTENT_TYPE, t);
    }
    let res = req
        .body(body.into())
        .send()
        .await
        .expect("the service answers");
    TestApp::reply(res).await
}

/// Files `body` as JSON.
async fn send(app: &TestApp, body: &Value) -> Reply {
    app.post(FILE, None, body).await
}

/// Rows that a filing would add.
async fn stored(app: &TestApp) -> (i64, i64) {
    (app.count("requests").await, app.count("events").await)
}

/// `r` is an error with `status` and `code`, in the documented shape: `code`,
/// `message`, `request_id` (the `X-Request-Id` header) and `details`.
fn assert_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.code(), code, "{:?}", r.body);
    let body = r.body.as_object().expect("an error body is a JSON object");
    assert!(
        body.get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty()),
        "a message: {body:?}"
    );
    let request_id = body
        .get("request_id")
        .and_then(Value::as_str)
        .expect("a request_id");
    assert!(!request_id.is_empty());
    assert_eq!(
        r.headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some(request_id),
        "the request_id is the X-Request-Id header"
    );
    assert!(body.contains_key("details"), "a details member: {body:?}");
    let content_type = r
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        content_type.starts_with("application/problem+json"),
        "{content_type}"
    );
}

/// The `(field, code)` pairs of `details.fields`, in order.
fn field_codes(r: &Reply) -> Vec<(String, String)> {
    r.body["details"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| {
                    (
                        f["field"].as_str().unwrap_or("").to_owned(),
                        f["code"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
        .collect()
}

/// A filing of `kind` whose requester is `requester`.
fn filing_by(kind: &str, requester: Value) -> Value {
    json!({"kind": kind, "requester": requester, "details": valid_details(kind)})
}

/// Valid next-of-kin details with `key` replaced by `value` (`null` removes it).
fn next_of_kin_with(key: &str, value: Value) -> Value {
    let mut d = valid_details("next_of_kin");
    let map = d.as_object_mut().expect("an object");
    if value.is_null() {
        map.remove(key);
    } else {
        map.insert(key.to_owned(), value);
    }
    d
}

/// A kind, its details, and the `(field, code)` pairs they must be refused with.
type DetailsCase = (&'static str, Value, Vec<(&'static str, &'static str)>);

fn is_reference(s: &str) -> bool {
    s.len() == 14 && s.starts_with("PR-2026-") && s.as_bytes()[8..].iter().all(u8::is_ascii_digit)
}

#[tokio::test]
async fn every_kind_files_with_valid_details() {
    let app = TestApp::spawn().await;
    for kind in KINDS {
        let r = send(&app, &filing(kind, valid_details(kind))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{kind}: {:?}", r.body);
        assert_eq!(r.body["kind"], *kind);
        assert_eq!(r.body["state"], "awaiting_verification", "{kind}");
        // 15 days from Sunday 1 March; closures, enquiries and complaints get 15
        // working days (pipl pack, version 2).
        let due = match *kind {
            "account_closure" | "explanation" | "complaint" => "2026-03-20",
            _ => "2026-03-16",
        };
        assert_eq!(r.body["due_date"], due, "{kind}");
        assert_eq!(r.body["time_zone"], "Asia/Shanghai", "{kind}");
        let reference = r.body["reference"].as_str().expect("a reference");
        assert!(is_reference(reference), "{kind}: {reference}");
        assert!(
            r.body["requester_token"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{kind}"
        );
        let id = r.body["id"].as_str().expect("an id");
        assert!(id.parse::<uuid::Uuid>().is_ok(), "{id}");
        assert_eq!(
            r.headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok()),
            Some(format!("/api/v1/requests/{id}").as_str())
        );
    }
    assert_eq!(app.count("requests").await, KINDS.len() as i64);
    assert_eq!(app.count("events").await, 2 * KINDS.len() as i64);
}

#[tokio::test]
async fn kinds_without_required_details_file_without_details() {
    let app = TestApp::spawn().await;
    for kind in [
        "access",
        "copy",
        "deletion",
        "account_closure",
        "explanation",
    ] {
        let r = send(&app, &filing(kind, Value::Null)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{kind}: {:?}", r.body);
        let mut body = filing(kind, Value::Null);
        body.as_object_mut().expect("an object").remove("details");
        let r = send(&app, &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{kind}: {:?}", r.body);
    }
}

#[tokio::test]
async fn kinds_with_required_details_refuse_a_filing_without_them() {
    let app = TestApp::spawn().await;
    let before = stored(&app).await;
    for kind in [
        "portability",
        "correction",
        "consent_withdrawal",
        "next_of_kin",
        "complaint",
    ] {
        let r = send(&app, &filing(kind, Value::Null)).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(field_codes(&r), pairs(&[("details", "required")]), "{kind}");
    }
    assert_eq!(stored(&app).await, before);
}

#[tokio::test]
async fn details_that_are_not_an_object_are_refused_for_every_kind() {
    let app = TestApp::spawn().await;
    let before = stored(&app).await;
    for kind in KINDS {
        for details in [json!("x"), json!(["access"]), json!(7)] {
            let r = send(&app, &filing(kind, details.clone())).await;
            assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
            assert_eq!(
                field_codes(&r),
                pairs(&[("details", "invalid_type")]),
                "{kind} {details}"
            );
        }
    }
    assert_eq!(stored(&app).await, before);
}

#[tokio::test]
async fn each_kind_names_the_invalid_detail_with_its_path_and_code() {
    let app = TestApp::spawn().await;
    app.file("access", valid_details("access")).await;
    let before = stored(&app).await;
    let cases: Vec<DetailsCase> = vec![
        (
            "access",
            json!({"categories": ["Account"]}),
            vec![("details.categories[0]", "invalid_identifier")],
        ),
        (
            "access",
            json!({"categories": ["account"], "sql": "drop table requests"}),
            vec![("details.sql", "unknown_field")],
        ),
        (
            "copy",
            json!({"categories": "account"}),
            vec![("details.categories", "invalid_type")],
        ),
        (
            "copy",
            json!({"categories": ["account", 3]}),
            vec![("details.categories[1]", "invalid_type")],
        ),
        (
            "portability",
            json!({"recipient": {"name": "B 公司"}}),
            vec![("details.recipient.email", "contact_required")],
        ),
        (
            "portability",
            json!({"recipient": {"name": "B 公司", "endpoint": "ftp://b.example.com/inbox"}}),
            vec![("details.recipient.endpoint", "invalid_url")],
        ),
        (
            "portability",
            json!({"recipient": {"name": "B 公司", "endpoint": "https://"}}),
            vec![("details.recipient.endpoint", "invalid_url")],
        ),
        (
            "portability",
            json!({"recipient": {"name": "B 公司", "email": "dpo-at-b.example.com"}}),
            vec![("details.recipient.email", "invalid_email")],
        ),
        (
            "portability",
            json!({"recipient": {"email": "dpo@b.example.com"}}),
            vec![("details.recipient.name", "required")],
        ),
        (
            "portability",
            json!({}),
            vec![("details.recipient", "required")],
        ),
        (
            "correction",
            json!({}),
            vec![("details.changes", "required")],
        ),
        (
            "correction",
            json!({"changes": []}),
            vec![("details.changes", "required")],
        ),
        (
            "correction",
            json!({"changes": [{"field": "company"}]}),
            vec![("details.changes[0].new_value", "required")],
        ),
        (
            "correction",
            json!({"changes": [{"field": "company", "new_value": "新公司", "old": "x"}]}),
            vec![("details.changes[0].old", "unknown_field")],
        ),
        (
            "consent_withdrawal",
            json!({"purposes": ["Marketing SMS"]}),
            vec![("details.purposes[0]", "invalid_identifier")],
        ),
        (
            "consent_withdrawal",
            json!({"purposes": []}),
            vec![("details.purposes", "required")],
        ),
        (
            "consent_withdrawal",
            json!({"purposes": ["marketing_sms"], "change": "pause"}),
            vec![("details.change", "invalid_value")],
        ),
        (
            "deletion",
            json!({"reason": 42}),
            vec![("details.reason", "invalid_type")],
        ),
        (
            "deletion",
            json!({"categories": ["marketing"], "reason": "bell\u{7}"}),
            vec![("details.reason", "invalid_characters")],
        ),
        (
            "account_closure",
            json!({"account_id": "a".repeat(201)}),
            vec![("details.account_id", "too_long")],
        ),
        (
            "next_of_kin",
            next_of_kin_with("relationship", json!("friend")),
            vec![("details.relationship", "invalid_value")],
        ),
        (
            "next_of_kin",
            next_of_kin_with("deceased", json!({"name": "王芳"})),
            vec![("details.deceased.email", "identifier_required")],
        ),
        (
            "next_of_kin",
            next_of_kin_with(
                "deceased",
                json!({"name": "王芳", "phone": "13900000000", "date_of_death": "02/01/2026"}),
            ),
            vec![("details.deceased.date_of_death", "invalid_date")],
        ),
        (
            "next_of_kin",
            next_of_kin_with(
                "deceased",
                json!({"name": "王芳", "phone": "13900000000", "date_of_death": "2026-02-30"}),
            ),
            vec![("details.deceased.date_of_death", "invalid_date")],
        ),
        (
            "next_of_kin",
            next_of_kin_with("rights", json!(["sell"])),
            vec![("details.rights[0]", "invalid_value")],
        ),
        (
            "next_of_kin",
            next_of_kin_with("lawful_interest", Value::Null),
            vec![("details.lawful_interest", "required")],
        ),
        (
            "explanation",
            json!({"question": ["why"]}),
            vec![("details.question", "invalid_type")],
        ),
        (
            "complaint",
            json!({"about_reference": "12", "description": "没有答复"}),
            vec![("details.about_reference", "invalid_reference")],
        ),
        (
            "complaint",
            json!({"about_reference": "PR-2026-000001"}),
            vec![("details.description", "required")],
        ),
    ];
    for (kind, details, expected) in cases {
        let r = send(&app, &filing(kind, details.clone())).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(field_codes(&r), pairs(&expected), "{kind} {details}");
        assert_eq!(stored(&app).await, before, "{kind} {details} stored");
    }
    // Every kind is covered above.
    for kind in KINDS {
        let r = send(&app, &filing(kind, json!({"unexpected": true}))).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(
            field_codes(&r)
                .contains(&("details.unexpected".to_owned(), "unknown_field".to_owned())),
            "{kind}: {:?}",
            r.body
        );
    }
    assert_eq!(stored(&app).await, before);
}

#[tokio::test]
async fn bodies_that_are_not_json_objects_are_refused_and_store_nothing() {
    let app = TestApp::spawn().await;
    app.file("access", valid_details("access")).await;
    let before = stored(&app).await;

    let r = send_raw(&app, Some("application/json"), r#"{"kind": "access","#).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "malformed_json");
    assert!(r.body["details"]["line"].is_number(), "{:?}", r.body);
    assert!(r.body["details"]["column"].is_number(), "{:?}", r.body);

    let r = send_raw(&app, Some("application/json"), "{'kind': 'access'}").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "malformed_json");

    for body in [
        r#"[{"kind": "access"}]"#,
        "5",
        r#""access""#,
        "null",
        "true",
    ] {
        let r = send_raw(&app, Some("application/json"), body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
    }
    let r = send_raw(&app, Some("application/json"), "").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");

    assert_eq!(stored(&app).await, before);
}

#[tokio::test]
async fn wrong_types_and_unknown_or_missing_kinds_are_named() {
    let app = TestApp::spawn().await;
    app.file("access", valid_details("access")).await;
    let before = stored(&app).await;

    let mut body = filing("access", valid_details("access"));
    body["kind"] = json!(5);
    let r = send(&app, &body).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_codes(&r), pairs(&[("kind", "invalid_type")]));

    let mut body = filing("access", valid_details("access"));
    body["requester"] = json!("x");
    let r = send(&app, &body).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_codes(&r), pairs(&[("requester", "invalid_type")]));

    let mut body = filing("access", valid_details("access"));
    body["requester"]["name"] = json!(["李", "雷"]);
    let r = send(&app, &body).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_codes(&r),
        pairs(&[("requester.name", "invalid_type")])
    );

    let mut body = filing("access", valid_details("access"));
    body["requester"]["phone"] = json!(13812345678_u64);
    let r = send(&app, &body).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_codes(&r),
        pairs(&[("requester.phone", "invalid_type")])
    );

    let r = send(&app, &filing("telepathy", json!({}))).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "unknown_kind");
    assert_eq!(field_codes(&r), pairs(&[("kind", "unknown_kind")]));
    let message = r.body["details"]["fields"][0]["message"]
        .as_str()
        .unwrap_or("");
    for kind in KINDS {
        assert!(message.contains(kind), "{message} lists {kind}");
    }

    let mut body = filing("access", valid_details("access"));
    body.as_object_mut().expect("an object").remove("kind");
    let r = send(&app, &body).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_codes(&r), pairs(&[("kind", "required")]));

    let mut body = filing("access", valid_details("access"));
    body.as_object_mut().expect("an object").remove("requester");
    let r = send(&app, &body).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_codes(&r), pairs(&[("requester", "required")]));

    assert_eq!(stored(&app).await, before);
}

#[tokio::test]
async fn the_requester_needs_a_valid_contact_language_and_name() {
    let app = TestApp::spawn().await;
    app.file("access", valid_details("access")).await;
    let before = stored(&app).await;
    let cases: Vec<(Value, (&str, &str))> = vec![
        (
            json!({"name": "李雷"}),
            ("requester.email", "contact_required"),
        ),
        (
            json!({"name": "李雷", "email": "  ", "phone": ""}),
            ("requester.email", "contact_required"),
        ),
        (
            json!({"name": "李雷", "email": "li.lei@"}),
            ("requester.email", "invalid_email"),
        ),
        (
            json!({"name": "李雷", "email": "li.lei@localhost"}),
            ("requester.email", "invalid_email"),
        ),
        (
            json!({"name": "李雷", "email": "Li Lei <li.lei@example.com>"}),
            ("requester.email", "invalid_email"),
        ),
        (
            json!({"name": "李雷", "email": format!("{}@example.com", "a".repeat(250))}),
            ("requester.email", "too_long"),
        ),
        (
            json!({"name": "李雷", "phone": "12345"}),
            ("requester.phone", "invalid_phone"),
        ),
        (
            json!({"name": "李雷", "phone": "23812345678"}),
            ("requester.phone", "invalid_phone"),
        ),
        (
            json!({"name": "李雷", "phone": "+86 021 1234 5678"}),
            ("requester.phone", "invalid_phone"),
        ),
        (
            json!({"name": "李雷", "phone": "call me"}),
            ("requester.phone", "invalid_phone"),
        ),
        (
            json!({"name": "李雷", "email": "li.lei@example.com", "language": "fr"}),
            ("requester.language", "unsupported_language"),
        ),
        (
            json!({"email": "li.lei@example.com"}),
            ("requester.name", "required"),
        ),
        (
            json!({"name": "   ", "email": "li.lei@example.com"}),
            ("requester.name", "required"),
        ),
        (
            json!({"name": "李".repeat(201), "email": "li.lei@example.com"}),
            ("requester.name", "too_long"),
        ),
        (
            json!({"name": "李雷", "email": "li.lei@example.com", "wechat": "lilei"}),
            ("requester.wechat", "unknown_field"),
        ),
    ];
    for (requester, expected) in cases {
        let r = send(&app, &filing_by("access", requester.clone())).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(field_codes(&r), pairs(&[expected]), "{requester}");
        assert_eq!(stored(&app).await, before, "{requester}");
    }

    // The limits are in characters, not bytes; either contact is enough.
    for requester in [
        json!({"name": "李".repeat(200), "email": "li.lei@example.com"}),
        json!({"name": "李雷", "phone": "+86 138-1234-5678"}),
        json!({"name": "Li Lei", "email": "Li.Lei@Example.COM", "language": "en"}),
    ] {
        let r = send(&app, &filing_by("access", requester.clone())).await;
        assert_eq!(r.status, StatusCode::CREATED, "{requester}: {:?}", r.body);
    }
}

#[tokio::test]
async fn free_text_and_lists_have_limits() {
    let app = TestApp::spawn().await;
    app.file("access", valid_details("access")).await;
    let before = stored(&app).await;

    let long = json!({"categories": ["marketing"], "reason": "字".repeat(5_001)});
    let r = send(&app, &filing("deletion", long)).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_codes(&r), pairs(&[("details.reason", "too_long")]));

    let long = json!({"question": "为".repeat(5_001)});
    let r = send(&app, &filing("explanation", long)).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_codes(&r), pairs(&[("details.question", "too_long")]));

    let categories: Vec<String> = (0..51).map(|i| format!("category_{i}")).collect();
    let r = send(&app, &filing("access", json!({ "categories": categories }))).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_codes(&r),
        pairs(&[("details.categories", "too_many_items")])
    );

    let purposes: Vec<String> = (0..51).map(|i| format!("purpose_{i}")).collect();
    let r = send(
        &app,
        &filing("consent_withdrawal", json!({ "purposes": purposes })),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_codes(&r),
        pairs(&[("details.purposes", "too_many_items")])
    );

    assert_eq!(stored(&app).await, before);

    // At the limits, accepted.
    let at_limit = json!({"categories": ["marketing"], "reason": "字".repeat(5_000)});
    let r = send(&app, &filing("deletion", at_limit)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let categories: Vec<String> = (0..50).map(|i| format!("category_{i}")).collect();
    let r = send(&app, &filing("access", json!({ "categories": categories }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

#[tokio::test]
async fn a_body_over_the_default_size_limit_is_refused_with_413() {
    let app = TestApp::spawn().await;
    app.file("access", valid_details("access")).await;
    let before = stored(&app).await;
    let body = filing(
        "deletion",
        json!({"categories": ["marketing"], "reason": "x".repeat(70 * 1024)}),
    );
    let r = send(&app, &body).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(
        r.body["message"].as_str().unwrap_or("").contains("65536"),
        "{:?}",
        r.body
    );
    assert_eq!(stored(&app).await, before);

    // A body under 64 KiB but over a small limit is fine by default.
    let body = filing(
        "deletion",
        json!({"categories": ["marketing"], "reason": "字".repeat(4_000)}),
    );
    let r = send(&app, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// The harness's configuration with `http.max_body_bytes` set to `limit`.
async fn spawn_with_body_limit(limit: usize) -> TestApp {
    let db = TestDb::fresh().await;
    let mut config = rightsdesk_tests::base_config(&db);
    config.http.max_body_bytes = limit;
    TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await
}

/// A deletion filing whose JSON encoding is exactly `len` bytes long.
fn filing_of_length(len: usize) -> Vec<u8> {
    let with = |n: usize| {
        rightsdesk_tests::serde_json::to_vec(&filing(
            "deletion",
            json!({"categories": ["marketing"], "reason": "x".repeat(n)}),
        ))
        .expect("serialises")
    };
    let base = with(1).len();
    assert!(base <= len, "a filing needs at least {base} bytes");
    let body = with(1 + len - base);
    assert_eq!(body.len(), len);
    body
}

#[tokio::test]
async fn the_body_size_limit_is_configurable() {
    let app = spawn_with_body_limit(2048).await;
    let before = stored(&app).await;

    let r = send_raw(&app, Some("application/json"), filing_of_length(2049)).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(
        r.body["message"].as_str().unwrap_or("").contains("2048"),
        "{:?}",
        r.body
    );
    let r = send_raw(&app, Some("application/json"), filing_of_length(3000)).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(stored(&app).await, before);

    let r = send_raw(&app, Some("application/json"), filing_of_length(2048)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(stored(&app).await, (before.0 + 1, before.1 + 2));
}

#[tokio::test]
async fn a_body_that_is_not_declared_as_json_is_refused_with_415() {
    let app = TestApp::spawn().await;
    app.file("access", valid_details("access")).await;
    let before = stored(&app).await;
    let json_body =
        rightsdesk_tests::serde_json::to_vec(&filing("access", valid_details("access")))
            .expect("serialises");
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/xml"),
        None,
    ] {
        let r = send_raw(&app, content_type, json_body.clone()).await;
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    assert_eq!(stored(&app).await, before);

    let r = send_raw(&app, Some("application/json; charset=utf-8"), json_body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

#[tokio::test]
async fn an_unknown_top_level_field_is_refused() {
    let app = TestApp::spawn().await;
    let before = stored(&app).await;
    let mut body = filing("access", valid_details("access"));
    body["priority"] = json!("high");
    let r = send(&app, &body).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_codes(&r), pairs(&[("priority", "unknown_field")]));

    // The requester may not choose the fields the service sets.
    let mut body = filing("access", valid_details("access"));
    body["state"] = json!("completed");
    body["due_date"] = json!("2027-01-01");
    let r = send(&app, &body).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_codes(&r),
        pairs(&[("due_date", "unknown_field"), ("state", "unknown_field")])
    );
    assert_eq!(stored(&app).await, before);
}

#[tokio::test]
async fn every_problem_is_reported_at_once() {
    let app = TestApp::spawn().await;
    let before = stored(&app).await;
    let body = json!({
        "kind": "correction",
        "requester": {"name": "李雷", "email": "not-an-email", "language": "fr"},
        "details": {},
    });
    let r = send(&app, &body).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_codes(&r),
        pairs(&[
            ("requester.email", "invalid_email"),
            ("requester.language", "unsupported_language"),
            ("details.changes", "required"),
        ])
    );
    for f in r.body["details"]["fields"].as_array().expect("fields") {
        assert!(f["message"].as_str().is_some_and(|m| !m.is_empty()), "{f}");
    }

    let body = json!({
        "kind": "next_of_kin",
        "requester": {"name": "", "phone": "12"},
        "details": {"relationship": "friend", "deceased": {"name": "王芳"}, "rights": ["sell"]},
        "extra": 1,
    });
    let r = send(&app, &body).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_codes(&r),
        pairs(&[
            ("extra", "unknown_field"),
            ("requester.name", "required"),
            ("requester.phone", "invalid_phone"),
            ("details.relationship", "invalid_value"),
            ("details.deceased.email", "identifier_required"),
            ("details.rights[0]", "invalid_value"),
            ("details.lawful_interest", "required"),
        ])
    );
    assert_eq!(stored(&app).await, before);
}

#[tokio::test]
async fn a_request_id_sent_by_the_client_is_echoed_in_the_error_body() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(format!("{}{FILE}", app.base))
        .header("x-request-id", "client-trace-0042")
        .json(&json!({"kind": 5}))
        .send()
        .await
        .expect("the service answers");
    let r = TestApp::reply(res).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["request_id"], "client-trace-0042");

    // An id that could inject into logs is replaced by one of the service's own.
    let res = app
        .client
        .post(format!("{}{FILE}", app.base))
        .header("x-request-id", "a b\"c")
        .json(&json!({"kind": 5}))
        .send()
        .await
        .expect("the service answers");
    let r = TestApp::reply(res).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_ne!(r.body["request_id"], "a b\"c");
}

#[tokio::test]
async fn unknown_routes_are_route_not_found() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/nothing-here", "/api/v2/requests", "/nope"] {
        let r = app.get(path, None).await;
        assert_error(&r, StatusCode::NOT_FOUND, "route_not_found");
    }
    let r = app
        .request(Method::DELETE, "/api/v1/requests", None, None)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "route_not_found");
}

#[tokio::test]
async fn an_id_that_is_not_a_uuid_is_not_found() {
    let app = TestApp::spawn().await;
    let filed = app.file("access", valid_details("access")).await;
    let token = filed["requester_token"].as_str().expect("a token");
    let reference = filed["reference"].as_str().expect("a reference");
    for id in ["123", "not-a-uuid", reference] {
        let r = app
            .get(&format!("/api/v1/requests/{id}"), Some(token))
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
        let r = app
            .post(
                &format!("/api/v1/requests/{id}/withdraw"),
                Some(token),
                &json!({}),
            )
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
    let (_, officer) = app.officer("wang.fang", &["officer"]).await;
    let r = app
        .get("/api/v1/officer/requests/not-a-uuid", Some(&officer))
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app.act(&officer, "not-a-uuid", "start", json!({})).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
}

/// Files `body` in HTTP/1.1 chunks over a raw connection (reqwest here
/// cannot stream a body of unknown length) and returns the status code and the text of
/// the answer.
async fn send_chunked(app: &TestApp, body: Vec<u8>) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = app.base.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("a timeout");
        let mut request = format!(
            "POST {FILE} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        for chunk in body.chunks(4096) {
            request.extend_from_slice(format!("{:X}\r\n", chunk.len()).as_bytes());
            request.extend_from_slice(chunk);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
        // The service may answer and close before reading everything.
        let _ = stream.write_all(&request);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    })
    .await
    .expect("the exchange finishes")
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_with_413() {
    let app = TestApp::spawn().await;
    let before = stored(&app).await;
    let big = rightsdesk_tests::serde_json::to_vec(&filing(
        "deletion",
        json!({"categories": ["marketing"], "reason": "x".repeat(70 * 1024)}),
    ))
    .expect("serialises");
    let (status, text) = send_chunked(&app, big).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
    assert_eq!(stored(&app).await, before);

    // The same framing under the limit files a request.
    let small = rightsdesk_tests::serde_json::to_vec(&filing("access", valid_details("access")))
        .expect("serialises");
    let (status, text) = send_chunked(&app, small).await;
    assert_eq!(status, 201, "{text}");
}

#[tokio::test]
async fn deeply_nested_json_is_refused_with_a_4xx() {
    let app = TestApp::spawn().await;
    let before = stored(&app).await;
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let r = send_raw(&app, Some("application/json"), deep).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "malformed_json");

    let nested = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let body = format!(
        r#"{{"kind": "access", "requester": {{"name": "李雷", "email": "li.lei@example.com"}}, "details": {{"categories": {nested}}}}}"#
    );
    let r = send_raw(&app, Some("application/json"), body).await;
    assert!(r.status.is_client_error(), "{:?}", r.body);
    assert!(
        ["malformed_json", "validation_failed"].contains(&r.code()),
        "{:?}",
        r.body
    );

    // Nesting inside the limit of the parser is refused by validation instead.
    let nested = format!("{}\"account\"{}", "[".repeat(50), "]".repeat(50));
    let body = format!(
        r#"{{"kind": "access", "requester": {{"name": "李雷", "email": "li.lei@example.com"}}, "details": {{"categories": {nested}}}}}"#
    );
    let r = send_raw(&app, Some("application/json"), body).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_codes(&r),
        pairs(&[("details.categories[0]", "invalid_type")])
    );
    assert_eq!(stored(&app).await, before);
}

#[tokio::test]
async fn control_characters_are_refused_in_every_free_text_field() {
    let app = TestApp::spawn().await;
    let before = stored(&app).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "access",
            json!({
                "kind": "access",
                "requester": {"name": "李\u{0}雷", "email": "li.lei@example.com"},
            }),
            "requester.name",
        ),
        (
            "correction",
            filing(
                "correction",
                json!({"changes": [{"field": "company", "new_value": "新\u{0}公司"}]}),
            ),
            "details.changes[0].new_value",
        ),
        (
            "explanation",
            filing("explanation", json!({"question": "why\u{1b}[31m"})),
            "details.question",
        ),
        (
            "next_of_kin",
            filing(
                "next_of_kin",
                next_of_kin_with("lawful_interest", json!("整理\u{0}遗物")),
            ),
            "details.lawful_interest",
        ),
    ];
    for (kind, body, field) in cases {
        let r = send(&app, &body).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(
            field_codes(&r),
            pairs(&[(field, "invalid_characters")]),
            "{kind}"
        );
    }
    // Contacts with control characters are invalid addresses and numbers.
    for (requester, field) in [
        (
            json!({"name": "李雷", "email": "li.lei\u{0}@example.com"}),
            "requester.email",
        ),
        (
            json!({"name": "李雷", "phone": "138\u{0}12345678"}),
            "requester.phone",
        ),
    ] {
        let r = send(&app, &filing_by("access", requester)).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.fields(), vec![field]);
    }
    assert_eq!(stored(&app).await, before);
    // Line breaks and tabs are text, not control characters.
    let r = send(
        &app,
        &filing("explanation", json!({"question": "第一行\n第二行\t完"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}
