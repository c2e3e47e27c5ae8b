//! Account-system login (SPEC §5): a filing with a JWT from the company's account
//! system is verified at once for that account; a bad, expired or foreign token is
//! refused with its own code and stores nothing.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Duration;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rightsdesk_core::{Clock, ManualClock};
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{Reply, TestApp, TestDb, base_config, filing, start_time, valid_details};

const ISSUER: &str = "https://accounts.example.com";
const SECRET: &str = "the-account-system-shared-secret-0123456789";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/account-system")
        .join(name)
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("a test key")
}

/// A service that accepts account tokens signed with `algorithm`.
async fn spawn(algorithm: &str) -> TestApp {
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    let login = &mut config.account_login;
    login.issuer = Some(ISSUER.to_owned());
    login.algorithm = algorithm.to_owned();
    match algorithm {
        "HS256" => login.key = Some(SECRET.to_owned()),
        "ES256" => login.key_file = Some(fixture("es256.pub.pem")),
        "RS256" => {
            login.key = Some(String::from_utf8(pem("rs256.pub.pem")).expect("a PEM"));
        }
        other => panic!("no test key for {other}"),
    }
    TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await
}

fn claims(app: &TestApp, account: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": "rightsdesk",
        "sub": account,
        "iat": app.clock.now().timestamp(),
        "exp": (app.clock.now() + Duration::minutes(10)).timestamp(),
        "email": "li.lei@example.com",
    })
}

fn sign(algorithm: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).expect("a token")
}

fn es256(claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(&pem("es256.key.pem")).expect("an EC key");
    sign(Algorithm::ES256, &key, claims)
}

async fn file_with(app: &TestApp, token: &str) -> Reply {
    let res = app
        .client
        .post(format!("{}/api/v1/requests", app.base))
        .bearer_auth(token)
        .json(&filing("deletion", valid_details("deletion")))
        .send()
        .await
        .expect("the service answers");
    TestApp::reply(res).await
}

#[tokio::test]
async fn an_account_token_verifies_the_request_at_filing() {
    let app = spawn("ES256").await;
    let r = file_with(&app, &es256(&claims(&app, "u-1001"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "verified");
    let id = r.body["id"].as_str().expect("an id").to_owned();

    // Only the acknowledgement: no code is sent to someone already known.
    assert_eq!(app.deliver().await.sent, 1);
    let messages = app.outbox_messages();
    assert_eq!(messages.len(), 1);
    assert!(
        !messages[0].text.contains("/verify/"),
        "{}",
        messages[0].text
    );

    let (_, officer) = app.officer("officer", &["officer"]).await;
    let d = app
        .get(&format!("/api/v1/officer/requests/{id}"), Some(&officer))
        .await;
    let events: Vec<&str> = d.body["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(events, ["filed", "verified"]);
    assert_eq!(d.body["timeline"][1]["data"]["method"], "account_login");
    let subject = d.body["subject_id"].clone();
    assert!(subject.is_string(), "{:?}", d.body);

    // The same account is the same subject; another account is another.
    let again = file_with(&app, &es256(&claims(&app, "u-1001"))).await;
    let d = app
        .get(
            &format!(
                "/api/v1/officer/requests/{}",
                again.body["id"].as_str().unwrap()
            ),
            Some(&officer),
        )
        .await;
    assert_eq!(d.body["subject_id"], subject);
    let mut other = claims(&app, "u-2002");
    other["email"] = json!("han.meimei@example.com");
    let third = file_with(&app, &es256(&other)).await;
    let d = app
        .get(
            &format!(
                "/api/v1/officer/requests/{}",
                third.body["id"].as_str().unwrap()
            ),
            Some(&officer),
        )
        .await;
    assert_ne!(d.body["subject_id"], subject);
}

#[tokio::test]
async fn bad_expired_and_foreign_tokens_are_refused_and_store_nothing() {
    let app = spawn("ES256").await;
    let now = app.clock.now().timestamp();
    let with = |key: &str, value: Value| {
        let mut c = claims(&app, "u-1001");
        c[key] = value;
        c
    };
    let mut no_sub = claims(&app, "u-1001");
    no_sub.as_object_mut().expect("an object").remove("sub");
    let other_key = EncodingKey::from_ec_pem(&pem("es256-other.key.pem")).expect("an EC key");
    let hmac = EncodingKey::from_secret(SECRET.as_bytes()).expect("an HMAC key");
    let cases = [
        (
            es256(&with("exp", json!(now - 120))),
            "account_token_expired",
        ),
        (
            es256(&with("iss", json!("https://evil.example.com"))),
            "account_token_foreign",
        ),
        (
            es256(&with("aud", json!("another-service"))),
            "account_token_foreign",
        ),
        (
            sign(Algorithm::ES256, &other_key, &claims(&app, "u-1001")),
            "account_token_invalid",
        ),
        // The right claims under another algorithm are not accepted either.
        (
            sign(Algorithm::HS256, &hmac, &claims(&app, "u-1001")),
            "account_token_invalid",
        ),
        (es256(&no_sub), "account_token_invalid"),
        (
            es256(&with("nbf", json!(now + 3600))),
            "account_token_invalid",
        ),
        ("not-a-jwt".to_owned(), "account_token_invalid"),
    ];
    for (token, code) in cases {
        let r = file_with(&app, &token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{code}: {:?}", r.body);
        assert_eq!(r.code(), code, "{:?}", r.body);
    }
    // Leeway: a token that expired moments ago still counts.
    let r = file_with(&app, &es256(&with("exp", json!(now - 30)))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(app.count("requests").await, 1);
    assert_eq!(app.count("subjects").await, 1);
}

#[tokio::test]
async fn shared_secrets_and_rsa_keys_verify_too() {
    for (algorithm, key) in [
        (
            "HS256",
            EncodingKey::from_secret(SECRET.as_bytes()).expect("an HMAC key"),
        ),
        (
            "RS256",
            EncodingKey::from_rsa_pem(&pem("rs256.key.pem")).expect("an RSA key"),
        ),
    ] {
        let app = spawn(algorithm).await;
        let alg: Algorithm = algorithm.parse().expect("an algorithm");
        let r = file_with(&app, &sign(alg, &key, &claims(&app, "u-7"))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{algorithm}: {:?}", r.body);
        assert_eq!(r.body["state"], "verified", "{algorithm}");
        let forged = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(b"a-forger-guessing-the-secret-0123456789")
                .expect("an HMAC key"),
            &claims(&app, "u-7"),
        );
        let r = file_with(&app, &forged).await;
        assert_eq!(
            r.code(),
            "account_token_invalid",
            "{algorithm}: {:?}",
            r.body
        );
    }
}

#[tokio::test]
async fn a_service_without_account_login_refuses_tokens() {
    let app = TestApp::spawn().await;
    let r = file_with(&app, "eyJhbGciOiJIUzI1NiJ9.e30.sig").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.code(), "account_login_disabled");
    assert_eq!(app.count("requests").await, 0);
}

#[tokio::test]
async fn an_account_cannot_vouch_for_a_deceased_person_documents_are_still_needed() {
    let app = spawn("ES256").await;
    let res = app
        .client
        .post(format!("{}/api/v1/requests", app.base))
        .bearer_auth(es256(&claims(&app, "u-1001")))
        .json(&filing("next_of_kin", valid_details("next_of_kin")))
        .send()
        .await
        .expect("the service answers");
    let r = TestApp::reply(res).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "awaiting_verification");
    let id = r.body["id"].as_str().expect("an id").to_owned();
    let token = r.body["requester_token"]
        .as_str()
        .expect("a token")
        .to_owned();

    // No code (the account proved the contact), and the acknowledgement asks for documents.
    assert_eq!(app.deliver().await.sent, 1);
    let ack = &app.outbox_messages()[0];
    assert!(!ack.text.contains("/verify/"), "{}", ack.text);
    assert!(ack.text.contains("证明材料"), "{}", ack.text);
    let view = app
        .get(&format!("/api/v1/requests/{id}"), Some(&token))
        .await;
    assert_eq!(view.body["documents_required"], true);
    let events: Vec<&str> = view.body["history"]
        .as_array()
        .expect("a history")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(
        events,
        ["filed", "verification_requested", "contact_verified"]
    );
    assert_eq!(
        app.count("subjects").await,
        0,
        "the account is not the subject"
    );
}
