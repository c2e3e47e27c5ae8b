//! `Idempotency-Key` (SPEC §6, §13, §15): a retried filing returns the first answer and
//! stores nothing new, even when the retries race each other; a key reused with another
//! body and a malformed key are refused without storing anything. The same holds for
//! requests an officer registers.

use chrono::Duration;
use rightsdesk_tests::reqwest::header::{self, HeaderValue};
use rightsdesk_tests::reqwest::{RequestBuilder, StatusCode};
use rightsdesk_tests::serde_json::{self, Value, json};
use rightsdesk_tests::{Reply, TestApp, filing, start_time, valid_details};
use sea_orm::ConnectionTrait;

const FILE: &str = "/api/v1/requests";
const REGISTER: &str = "/api/v1/officer/requests";

/// Rows of `requests`, `events` and `idempotency_keys`.
/// Requests, idempotency records, and events per request (filing records two).
async fn counts(app: &TestApp) -> [i64; 3] {
    let requests = app.count("requests").await;
    let events = app.count("events").await;
    assert_eq!(
        events,
        2 * requests,
        "filing records `filed` and `verification_requested`"
    );
    [requests, events / 2, app.count("idempotency_keys").await]
}

fn bytes(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).expect("serialises")
}

/// POST `body` (exactly these bytes) to `path` with `key`, as `token` if any.
fn keyed(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    key: HeaderValue,
    body: Vec<u8>,
) -> RequestBuilder {
    let mut req = app
        .client
        .post(format!("{}{path}", app.base))
        .header("Idempotency-Key", key)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req
}

async fn send(req: RequestBuilder) -> Reply {
    TestApp::reply(req.send().await.expect("the service answers")).await
}

async fn file_with_key(app: &TestApp, key: &str, body: &[u8]) -> Reply {
    send(keyed(
        app,
        FILE,
        None,
        HeaderValue::from_str(key).expect("a header value"),
        body.to_vec(),
    ))
    .await
}

async fn register_with_key(app: &TestApp, token: &str, key: &str, body: &[u8]) -> Reply {
    send(keyed(
        app,
        REGISTER,
        Some(token),
        HeaderValue::from_str(key).expect("a header value"),
        body.to_vec(),
    ))
    .await
}

/// A request received by phone three days before the tests' start.
fn registration(kind: &str) -> Value {
    let mut body = filing(kind, valid_details(kind));
    body["channel"] = json!("phone");
    body["received_at"] = json!((start_time() - Duration::days(3)).to_rfc3339());
    body
}

fn assert_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.code(), code, "{:?}", r.body);
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(r.body["request_id"].as_str().is_some_and(|m| !m.is_empty()));
}

/// The stored first answers, as text.
async fn stored_responses(app: &TestApp) -> Vec<String> {
    let conn = app.db.connect().await;
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT CAST(response AS TEXT) AS r FROM idempotency_keys".to_owned(),
        ))
        .await
        .expect("the query runs");
    let out = rows
        .iter()
        .map(|row| row.try_get::<String>("", "r").expect("a response"))
        .collect();
    conn.close().await.ok();
    out
}

#[tokio::test]
async fn a_retry_with_the_same_key_and_body_returns_the_first_answer() {
    let app = TestApp::spawn().await;
    let body = bytes(&filing("correction", valid_details("correction")));
    let first = file_with_key(&app, "3f1c2a9e-retry-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(counts(&app).await, [1, 1, 1]);

    // A day later, the retry still gets the first answer, not a new deadline.
    app.clock.advance(Duration::days(1));
    let retry = file_with_key(&app, "3f1c2a9e-retry-1", &body).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{:?}", retry.body);
    for member in [
        "id",
        "reference",
        "requester_token",
        "received_at",
        "due_date",
    ] {
        assert_eq!(retry.body[member], first.body[member], "{member}");
    }
    assert_eq!(retry.body, first.body);
    assert_eq!(
        retry.headers.get(header::LOCATION),
        first.headers.get(header::LOCATION)
    );
    assert_eq!(counts(&app).await, [1, 1, 1]);

    // The replayed token is the request's token.
    let id = retry.body["id"].as_str().expect("an id");
    let token = retry.body["requester_token"].as_str().expect("a token");
    let r = app.get(&format!("{FILE}/{id}"), Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // The stored first answer does not hold the token.
    let responses = stored_responses(&app).await;
    assert_eq!(responses.len(), 1);
    let reference = first.body["reference"].as_str().expect("a reference");
    assert!(responses[0].contains(reference), "{}", responses[0]);
    assert!(!responses[0].contains(token), "{}", responses[0]);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let body = filing("access", valid_details("access"));
    let first = file_with_key(&app, "key-reused", &bytes(&body)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let before = counts(&app).await;

    let other = bytes(&filing("deletion", valid_details("deletion")));
    let r = file_with_key(&app, "key-reused", &other).await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    assert!(r.body.get("id").is_none());
    assert!(!r.body.to_string().contains("rdt_"), "{:?}", r.body);

    // The body is compared byte for byte: the same JSON laid out differently is another body.
    let pretty = serde_json::to_vec_pretty(&body).expect("serialises");
    let r = file_with_key(&app, "key-reused", &pretty).await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    assert_eq!(counts(&app).await, before);

    let again = file_with_key(&app, "key-reused", &bytes(&body)).await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn an_invalid_key_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let body = bytes(&filing("access", valid_details("access")));
    let bad = [
        HeaderValue::from_str(&"k".repeat(256)).expect("a header value"),
        HeaderValue::from_static("two words"),
        HeaderValue::from_static("tab\there"),
        HeaderValue::from_static(""),
        HeaderValue::from_bytes("clé-1".as_bytes()).expect("a header value"),
    ];
    for key in bad {
        let r = send(keyed(&app, FILE, None, key.clone(), body.clone())).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_idempotency_key");
        assert_eq!(counts(&app).await, [0, 0, 0], "{key:?}");
    }

    for key in ["k".repeat(255), "!#$%&'*+-.^_`|~0Az".to_owned()] {
        let r = file_with_key(&app, &key, &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{key}: {:?}", r.body);
    }
    assert_eq!(counts(&app).await, [2, 2, 2]);
}

#[tokio::test]
async fn different_keys_file_different_requests() {
    let app = TestApp::spawn().await;
    let body = bytes(&filing("access", valid_details("access")));
    let a = file_with_key(&app, "key-a", &body).await;
    let b = file_with_key(&app, "key-b", &body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(b.status, StatusCode::CREATED, "{:?}", b.body);
    for member in ["id", "reference", "requester_token"] {
        assert_ne!(a.body[member], b.body[member], "{member}");
    }
    // Without a key, every filing is a new request.
    let c = app
        .post(FILE, None, &filing("access", valid_details("access")))
        .await;
    let d = app
        .post(FILE, None, &filing("access", valid_details("access")))
        .await;
    assert_ne!(c.body["id"], d.body["id"]);
    assert_eq!(counts(&app).await, [4, 4, 2]);
}

#[tokio::test]
async fn a_refused_filing_does_not_use_up_its_key() {
    let app = TestApp::spawn().await;
    let invalid = bytes(&filing("correction", json!({})));
    let r = file_with_key(&app, "key-after-422", &invalid).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(counts(&app).await, [0, 0, 0]);

    let valid = bytes(&filing("correction", valid_details("correction")));
    let r = file_with_key(&app, "key-after-422", &valid).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(counts(&app).await, [1, 1, 1]);
}

/// Sends `n` copies of one keyed request at once and returns the answers.
async fn race(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    key: &str,
    body: &[u8],
    n: usize,
) -> Vec<Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let req = keyed(
                app,
                path,
                token,
                HeaderValue::from_str(key).expect("a header value"),
                body.to_vec(),
            );
            tokio::spawn(async move { send(req).await })
        })
        .collect();
    let mut replies = Vec::with_capacity(n);
    for t in tasks {
        replies.push(t.await.expect("the task finishes"));
    }
    replies
}

#[tokio::test]
async fn concurrent_retries_with_one_key_file_one_request() {
    let app = TestApp::spawn().await;
    let body = bytes(&filing("deletion", valid_details("deletion")));
    let replies = race(&app, FILE, None, "raced-key", &body, 8).await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body, replies[0].body);
    }
    assert!(replies[0].body["id"].is_string());
    assert_eq!(counts(&app).await, [1, 1, 1]);
    let id = replies[0].body["id"].as_str().expect("an id");
    let token = replies[0].body["requester_token"]
        .as_str()
        .expect("a token");
    let r = app.get(&format!("{FILE}/{id}"), Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["history"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn an_officer_registration_is_idempotent_too() {
    let app = TestApp::spawn().await;
    let (_, officer) = app.officer("zhou.min", &["officer"]).await;
    let body = bytes(&registration("deletion"));
    let first = register_with_key(&app, &officer, "phone-call-0815", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["due_date"], "2026-03-13");
    assert_eq!(counts(&app).await, [1, 1, 1]);

    app.clock.advance(Duration::minutes(10));
    let retry = register_with_key(&app, &officer, "phone-call-0815", &body).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{:?}", retry.body);
    assert_eq!(retry.body, first.body);
    assert_eq!(counts(&app).await, [1, 1, 1]);

    let other = bytes(&registration("access"));
    let r = register_with_key(&app, &officer, "phone-call-0815", &other).await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    let r = send(keyed(
        &app,
        REGISTER,
        Some(&officer),
        HeaderValue::from_static("no spaces allowed"),
        body.clone(),
    ))
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_idempotency_key");
    assert_eq!(counts(&app).await, [1, 1, 1]);

    let replies = race(&app, REGISTER, Some(&officer), "phone-call-0816", &other, 8).await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["id"], replies[0].body["id"]);
    }
    assert_ne!(replies[0].body["id"], first.body["id"]);
    assert_eq!(counts(&app).await, [2, 2, 2]);
}
