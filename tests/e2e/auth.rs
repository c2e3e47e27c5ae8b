//! Who may call what (SPEC §12, §15): officer logins with lockout, officer tokens
//! (signature, algorithm, issuer, audience, expiry by the service clock), role checks,
//! and requester tokens that see only their own request and reveal nothing else.

use std::sync::Arc;

use chrono::Duration;
use rightsdesk::{Application, Config};
use rightsdesk_core::ManualClock;
use rightsdesk_tests::reqwest::{StatusCode, header};
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{
    ADMIN_PASSWORD, OFFICER_PASSWORD, Reply, TestApp, filing, start_time, valid_details,
};
use sea_orm::ConnectionTrait;

const QUEUE: &str = "/api/v1/officer/requests";
const LOGIN: &str = "/api/v1/auth/token";

fn assert_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.code(), code, "{:?}", r.body);
    assert!(
        r.body["request_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{:?}",
        r.body
    );
}

fn assert_unauthorized(r: &Reply, code: &str) {
    assert_error(r, StatusCode::UNAUTHORIZED, code);
    assert_eq!(
        r.headers
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok()),
        Some("Bearer"),
        "{:?}",
        r.headers
    );
}

async fn try_login(app: &TestApp, username: &str, password: &str) -> Reply {
    app.post(
        LOGIN,
        None,
        &json!({"username": username, "password": password}),
    )
    .await
}

/// GET `path` with a raw `Authorization` header value.
async fn get_with_authorization(app: &TestApp, path: &str, authorization: &str) -> Reply {
    let res = app
        .client
        .get(format!("{}{path}", app.base))
        .header(header::AUTHORIZATION, authorization)
        .send()
        .await
        .expect("the service answers");
    TestApp::reply(res).await
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding, as JWTs use it.
fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(B64URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn b64url_decode(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for c in text.bytes() {
        let v = B64URL
            .iter()
            .position(|&a| a == c)
            .expect("a base64url character") as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    out
}

/// The three parts of a JWT: header and claims decoded, signature as sent.
fn jwt_parts(token: &str) -> (Value, Value, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let decode = |p: &str| {
        rightsdesk_tests::serde_json::from_slice::<Value>(&b64url_decode(p)).expect("JSON")
    };
    (decode(parts[0]), decode(parts[1]), parts[2].to_owned())
}

fn jwt(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64url_encode(header.to_string().as_bytes()),
        b64url_encode(claims.to_string().as_bytes())
    )
}

/// Another instance of the service on the same database, with `change` applied to the
/// test app's configuration, and its own `clock`. Returns its base URL and handle.
async fn sibling(
    app: &TestApp,
    clock: Arc<ManualClock>,
    change: impl FnOnce(&mut Config),
) -> (String, actix_web::dev::ServerHandle) {
    let mut config = app.config.clone();
    change(&mut config);
    let other = Application::build_with_clock(&config, clock)
        .await
        .expect("the sibling starts");
    let base = format!("http://127.0.0.1:{}", other.port());
    let handle = other.handle();
    tokio::spawn(other.run_until_stopped());
    (base, handle)
}

async fn login_at(app: &TestApp, base: &str, username: &str, password: &str) -> String {
    let res = app
        .client
        .post(format!("{base}{LOGIN}"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("the sibling answers");
    let r = TestApp::reply(res).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["access_token"].as_str().expect("a token").to_owned()
}

// ---------------------------------------------------------------------------------
// Officer login

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let wrong = try_login(&app, "admin", "not-the-admin-password").await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let unknown = try_login(&app, "nobody.here", ADMIN_PASSWORD).await;
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(wrong.body["message"], unknown.body["message"]);
    assert_eq!(wrong.body["details"], unknown.body["details"]);
    assert!(wrong.body.get("access_token").is_none());

    let ok = try_login(&app, "admin", ADMIN_PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["token_type"], "Bearer");
    assert_eq!(ok.body["expires_in"], 900);
    assert_eq!(
        ok.body["access_token"]
            .as_str()
            .unwrap_or("")
            .split('.')
            .count(),
        3
    );
}

#[tokio::test]
async fn a_login_body_is_validated() {
    let app = TestApp::spawn().await;
    let r = app.post(LOGIN, None, &json!({"username": "admin"})).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.fields(), vec!["password"]);
    let r = app
        .post(LOGIN, None, &json!(["admin", ADMIN_PASSWORD]))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
}

#[tokio::test]
async fn five_failed_logins_lock_the_account_until_the_lockout_ends() {
    let app = TestApp::spawn().await;
    app.officer("li.na", &["officer"]).await;
    for attempt in 1..=5 {
        let r = try_login(&app, "li.na", "wrong-password-123").await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
        assert!(
            r.headers.get(header::RETRY_AFTER).is_none(),
            "attempt {attempt}"
        );
    }

    // Locked: even the right password is refused, and a wrong one is answered the same.
    for password in [OFFICER_PASSWORD, "wrong-password-123"] {
        let r = try_login(&app, "li.na", password).await;
        assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
        assert_eq!(
            r.headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("900")
        );
        assert_eq!(r.body["details"]["retry_after"], 900);
    }
    // Other accounts are not affected.
    app.admin_token().await;

    app.clock.advance(Duration::seconds(600));
    let r = try_login(&app, "li.na", OFFICER_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
    assert_eq!(
        r.headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("300")
    );

    app.clock.advance(Duration::seconds(301));
    let token = app.login("li.na", OFFICER_PASSWORD).await;
    assert_eq!(app.get(QUEUE, Some(&token)).await.status, StatusCode::OK);

    // A success starts the count again: four more failures do not lock.
    for _ in 0..4 {
        let r = try_login(&app, "li.na", "wrong-password-123").await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    app.login("li.na", OFFICER_PASSWORD).await;
}

#[tokio::test]

async fn concurrent_failed_logins_still_lock_the_account() {
    let app = TestApp::spawn().await;
    app.officer("ma.li", &["officer"]).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let req = app
                .client
                .post(format!("{}{LOGIN}", app.base))
                .json(&json!({"username": "ma.li", "password": "wrong-password-123"}));
            tokio::spawn(async move { TestApp::reply(req.send().await.expect("an answer")).await })
        })
        .collect();
    for t in tasks {
        let r = t.await.expect("the task finishes");
        assert!(
            r.code() == "invalid_credentials" || r.code() == "account_locked",
            "{:?}",
            r.body
        );
    }
    // Ten wrong passwords were tried: however they overlapped, the account is locked.
    let r = try_login(&app, "ma.li", OFFICER_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
}

#[tokio::test]

async fn an_officer_logs_in_with_exactly_the_password_they_were_given() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let password = "  spaces around my passphrase  ";
    let r = app
        .post(
            "/api/v1/admin/officers",
            Some(&admin),
            &json!({
                "username": "xu.bo",
                "display_name": "徐波",
                "password": password,
                "roles": ["officer"],
            }),
        )
        .await;
    if r.status == StatusCode::CREATED {
        let r = try_login(&app, "xu.bo", password).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    } else {
        // Refusing such a password at creation would be a fix too.
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.fields(), vec!["password"]);
    }
}

// ---------------------------------------------------------------------------------
// Officer tokens

#[tokio::test]
async fn an_officer_route_needs_a_bearer_token() {
    let app = TestApp::spawn().await;
    let r = app.get(QUEUE, None).await;
    assert_unauthorized(&r, "unauthenticated");

    for authorization in [
        "Basic YWRtaW46YWRtaW4tcGFzc3dvcmQtZm9yLXRlc3Rz",
        "Bearer",
        "Bearer    ",
        "Token abc.def.ghi",
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.",
    ] {
        let r = get_with_authorization(&app, QUEUE, authorization).await;
        assert_unauthorized(&r, "invalid_token");
    }
}

#[tokio::test]
async fn an_unsigned_or_tampered_token_is_refused() {
    let app = TestApp::spawn().await;
    let (_, token) = app.officer("zhao.lei", &["officer"]).await;
    assert_eq!(app.get(QUEUE, Some(&token)).await.status, StatusCode::OK);
    let (header, claims, signature) = jwt_parts(&token);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(claims["iss"], "rightsdesk");
    assert_eq!(claims["aud"], "rightsdesk-officers");
    // The helpers read and write base64url exactly as the service does.
    for part in token.split('.') {
        assert_eq!(b64url_encode(&b64url_decode(part)), part);
    }

    // alg: none, with valid-looking claims and no signature.
    let none = json!({"alg": "none", "typ": "JWT"});
    for forged in [
        jwt(&none, &claims, ""),
        jwt(&none, &claims, "").trim_end_matches('.').to_owned(),
        jwt(&json!({"alg": "None", "typ": "JWT"}), &claims, ""),
        jwt(&header, &claims, ""),
        jwt(&json!({"alg": "HS512", "typ": "JWT"}), &claims, &signature),
    ] {
        let r = app.get(QUEUE, Some(&forged)).await;
        assert_unauthorized(&r, "invalid_token");
    }

    // One character of the signature changed.
    let mut chars: Vec<char> = token.chars().collect();
    let first_of_signature = token.rfind('.').expect("three parts") + 1;
    chars[first_of_signature] = if chars[first_of_signature] == 'A' {
        'B'
    } else {
        'A'
    };
    let flipped: String = chars.into_iter().collect();
    let r = app.get(QUEUE, Some(&flipped)).await;
    assert_unauthorized(&r, "invalid_token");

    // Claims rewritten (a longer life, another officer) under the original signature.
    let mut longer = claims.clone();
    longer["exp"] = json!(claims["exp"].as_i64().unwrap_or(0) + 86_400);
    let mut other = claims.clone();
    other["sub"] = json!(uuid::Uuid::now_v7().to_string());
    for claims in [longer, other] {
        let r = app
            .get(QUEUE, Some(&jwt(&header, &claims, &signature)))
            .await;
        assert_unauthorized(&r, "invalid_token");
    }

    // The original still works.
    assert_eq!(app.get(QUEUE, Some(&token)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_officer_token_expires_by_the_service_clock() {
    let app = TestApp::spawn().await;
    let (_, token) = app.officer("sun.li", &["officer"]).await;
    app.clock.advance(Duration::minutes(14));
    assert_eq!(app.get(QUEUE, Some(&token)).await.status, StatusCode::OK);
    app.clock.advance(Duration::minutes(1));
    let r = app.get(QUEUE, Some(&token)).await;
    assert_unauthorized(&r, "invalid_token");
    app.clock.advance(Duration::minutes(1));
    let r = app.get(QUEUE, Some(&token)).await;
    assert_unauthorized(&r, "invalid_token");
    // Logging in again gives a fresh token.
    let fresh = app.login("sun.li", OFFICER_PASSWORD).await;
    assert_eq!(app.get(QUEUE, Some(&fresh)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_from_another_instance_with_the_same_settings_is_accepted() {
    let app = TestApp::spawn().await;
    app.officer("qian.yu", &["officer"]).await;
    let (base, handle) = sibling(&app, app.clock.clone(), |_| {}).await;
    let token = login_at(&app, &base, "qian.yu", OFFICER_PASSWORD).await;
    let r = app.get(QUEUE, Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    handle.stop(false).await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused() {
    let app = TestApp::spawn().await;
    app.officer("qian.yu", &["officer"]).await;
    let (base, handle) = sibling(&app, app.clock.clone(), |c| {
        c.security.token_secret = Some("another-secret-that-is-at-least-32-bytes".to_owned());
    })
    .await;
    let token = login_at(&app, &base, "qian.yu", OFFICER_PASSWORD).await;
    let (header, claims, _) = jwt_parts(&token);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(claims["iss"], "rightsdesk");
    assert_eq!(claims["aud"], "rightsdesk-officers");
    let r = app.get(QUEUE, Some(&token)).await;
    assert_unauthorized(&r, "invalid_token");
    handle.stop(false).await;
}

#[tokio::test]
async fn a_token_for_another_issuer_or_audience_is_refused() {
    let app = TestApp::spawn().await;
    app.officer("qian.yu", &["officer"]).await;
    let (issuer_base, issuer_handle) = sibling(&app, app.clock.clone(), |c| {
        c.security.token_issuer = "someone-else".to_owned();
    })
    .await;
    let (audience_base, audience_handle) = sibling(&app, app.clock.clone(), |c| {
        c.security.token_audience = "rightsdesk-auditors".to_owned();
    })
    .await;
    for base in [&issuer_base, &audience_base] {
        let token = login_at(&app, base, "qian.yu", OFFICER_PASSWORD).await;
        let r = app.get(QUEUE, Some(&token)).await;
        assert_unauthorized(&r, "invalid_token");
    }
    issuer_handle.stop(false).await;
    audience_handle.stop(false).await;
}

#[tokio::test]
async fn a_token_issued_ahead_of_the_service_clock_is_refused() {
    let app = TestApp::spawn().await;
    app.officer("qian.yu", &["officer"]).await;
    let ahead = Arc::new(ManualClock::new(start_time() + Duration::hours(1)));
    let (base, handle) = sibling(&app, ahead, |_| {}).await;
    let token = login_at(&app, &base, "qian.yu", OFFICER_PASSWORD).await;
    let r = app.get(QUEUE, Some(&token)).await;
    assert_unauthorized(&r, "invalid_token");
    handle.stop(false).await;
}

// ---------------------------------------------------------------------------------
// Roles

#[tokio::test]
async fn only_administrators_manage_officer_accounts() {
    let app = TestApp::spawn().await;
    let (_, officer) = app.officer("zhou.jie", &["officer"]).await;
    let (_, dpo) = app.officer("wu.min", &["dpo", "officer"]).await;
    let before = app.count("officers").await;
    let body = json!({
        "username": "intruder",
        "display_name": "Intruder",
        "password": "a-long-enough-password",
        "roles": ["admin"],
    });
    for token in [&officer, &dpo] {
        let r = app.post("/api/v1/admin/officers", Some(token), &body).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
        let r = app.get("/api/v1/admin/officers", Some(token)).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    }
    let r = app.post("/api/v1/admin/officers", None, &body).await;
    assert_unauthorized(&r, "unauthenticated");
    assert_eq!(app.count("officers").await, before);

    // The administrator manages accounts but does not read requests.
    let admin = app.admin_token().await;
    let r = app.get("/api/v1/admin/officers", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body.as_array().map(Vec::len), Some(3));
    let r = app.get(QUEUE, Some(&admin)).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn an_auditor_reads_the_queue_but_registers_nothing() {
    let app = TestApp::spawn().await;
    let (_, auditor) = app.officer("he.ping", &["auditor"]).await;
    let r = app.get(QUEUE, Some(&auditor)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut body = filing("access", valid_details("access"));
    body["channel"] = json!("phone");
    body["received_at"] = json!(start_time().to_rfc3339());
    let r = app.post(QUEUE, Some(&auditor), &body).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(app.count("requests").await, 0);
}

#[tokio::test]
async fn an_administrator_creates_officers_with_checked_input() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let created = app
        .post(
            "/api/v1/admin/officers",
            Some(&admin),
            &json!({
                "username": "chen.jing",
                "display_name": "陈静",
                "email": "Chen.Jing@Example.com",
                "password": "twelve-chars",
                "roles": ["officer", "dpo"],
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["username"], "chen.jing");
    assert_eq!(created.body["email"], "chen.jing@example.com");
    assert_eq!(created.body["active"], true);
    let mut roles: Vec<&str> = created.body["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    roles.sort_unstable();
    assert_eq!(roles, vec!["dpo", "officer"]);
    let printed = created.body.to_string();
    assert!(!printed.contains("password"), "{printed}");
    assert!(!printed.contains("twelve-chars"), "{printed}");
    app.login("chen.jing", "twelve-chars").await;

    let before = app.count("officers").await;
    let r = app
        .post(
            "/api/v1/admin/officers",
            Some(&admin),
            &json!({
                "username": "chen.jing",
                "display_name": "Another",
                "password": "another-good-password",
                "roles": ["officer"],
            }),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "username_taken");

    let r = app
        .post(
            "/api/v1/admin/officers",
            Some(&admin),
            &json!({
                "username": "lin.tao",
                "display_name": "林涛",
                "password": "eleven-char",
                "roles": ["officer"],
            }),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields = r.body["details"]["fields"].as_array().expect("fields");
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0]["field"], "password");
    assert_eq!(fields[0]["code"], "weak_password");

    let r = app
        .post(
            "/api/v1/admin/officers",
            Some(&admin),
            &json!({
                "username": "lin.tao",
                "display_name": "林涛",
                "password": "a-good-long-password",
                "roles": ["officer", "superuser"],
            }),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.fields(), vec!["roles[1]"]);
    assert_eq!(r.body["details"]["fields"][0]["code"], "invalid_value");

    let r = app
        .post(
            "/api/v1/admin/officers",
            Some(&admin),
            &json!({
                "username": "Lin Tao",
                "display_name": "林涛",
                "password": "a-good-long-password",
                "roles": [],
            }),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.fields(), vec!["username", "roles"]);
    assert_eq!(app.count("officers").await, before);
}

// ---------------------------------------------------------------------------------
// Requester tokens

/// Files an access request by a requester of one's own; returns the 201 body.
async fn file_as(app: &TestApp, name: &str, email: &str) -> Value {
    let body = json!({
        "kind": "access",
        "requester": {"name": name, "email": email},
        "details": valid_details("access"),
    });
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

fn id_and_token(filed: &Value) -> (String, String) {
    (
        filed["id"].as_str().expect("an id").to_owned(),
        filed["requester_token"]
            .as_str()
            .expect("a token")
            .to_owned(),
    )
}

#[tokio::test]
async fn a_requester_reads_only_their_own_request() {
    let app = TestApp::spawn().await;
    let hers = file_as(&app, "韩梅梅", "Han.MeiMei@Example.com").await;
    let his = file_as(&app, "李雷", "li.lei@example.com").await;
    let (her_id, her_token) = id_and_token(&hers);
    let (_, his_token) = id_and_token(&his);
    let path = format!("/api/v1/requests/{her_id}");

    let r = app.get(&path, Some(&her_token)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["reference"], hers["reference"]);

    let r = app.get(&path, None).await;
    assert_unauthorized(&r, "unauthenticated");

    let wrong = app.get(&path, Some(&his_token)).await;
    assert_error(&wrong, StatusCode::NOT_FOUND, "not_found");
    let printed = wrong.body.to_string().to_lowercase();
    for secret in [
        hers["reference"].as_str().unwrap_or("?").to_lowercase(),
        "韩梅梅".to_owned(),
        "han.meimei".to_owned(),
        "example.com".to_owned(),
        her_token.to_lowercase(),
    ] {
        assert!(!printed.contains(&secret), "{printed} reveals {secret}");
    }

    let random = app
        .get(
            &path,
            Some("rdt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        )
        .await;
    assert_error(&random, StatusCode::NOT_FOUND, "not_found");

    // A request that does not exist answers exactly like one that is not yours.
    let missing_path = format!("/api/v1/requests/{}", uuid::Uuid::now_v7());
    let missing = app.get(&missing_path, Some(&his_token)).await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found");
    for r in [&random, &missing] {
        assert_eq!(r.body["message"], wrong.body["message"]);
        assert_eq!(r.body["details"], wrong.body["details"]);
    }
    let missing = app.get(&missing_path, None).await;
    assert_unauthorized(&missing, "unauthenticated");

    // The requester token is not an officer token, nor the other way round.
    let r = app.get(QUEUE, Some(&her_token)).await;
    assert_unauthorized(&r, "invalid_token");
    let (_, officer) = app.officer("zhang.wei", &["officer"]).await;
    let r = app.get(&path, Some(&officer)).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_requester_cannot_withdraw_another_request() {
    let app = TestApp::spawn().await;
    let hers = file_as(&app, "韩梅梅", "han.meimei@example.com").await;
    let his = file_as(&app, "李雷", "li.lei@example.com").await;
    let (her_id, her_token) = id_and_token(&hers);
    let (_, his_token) = id_and_token(&his);
    let events = app.count("events").await;
    let withdraw = format!("/api/v1/requests/{her_id}/withdraw");

    let r = app.post(&withdraw, Some(&his_token), &json!({})).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app.post(&withdraw, None, &json!({})).await;
    assert_unauthorized(&r, "unauthenticated");
    let r = app
        .post(
            &format!("/api/v1/requests/{}/withdraw", uuid::Uuid::now_v7()),
            Some(&his_token),
            &json!({}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");

    assert_eq!(app.count("events").await, events);
    let r = app
        .get(&format!("/api/v1/requests/{her_id}"), Some(&her_token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "awaiting_verification");
    assert!(r.body["closed_at"].is_null());

    // Her own token withdraws it.
    let r = app.post(&withdraw, Some(&her_token), &json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "withdrawn");
}

/// Without `[account_login]`, a filing with a bearer token is refused, not filed as
/// if the token were absent (tests/e2e/account_login.rs covers a configured service).
#[tokio::test]
async fn filing_with_an_account_system_token_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let body = filing("access", valid_details("access"));
    for (authorization, status, code) in [
        (
            "Bearer x",
            StatusCode::BAD_REQUEST,
            "account_login_disabled",
        ),
        (
            "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
            StatusCode::BAD_REQUEST,
            "account_login_disabled",
        ),
        ("Basic eDp5", StatusCode::UNAUTHORIZED, "invalid_token"),
    ] {
        let res = app
            .client
            .post(format!("{}/api/v1/requests", app.base))
            .header(header::AUTHORIZATION, authorization)
            .json(&body)
            .send()
            .await
            .expect("the service answers");
        let r = TestApp::reply(res).await;
        assert_eq!(r.status, status, "{authorization}: {:?}", r.body);
        assert_eq!(r.code(), code, "{authorization}");
    }
    assert_eq!(app.count("requests").await, 0);
    assert_eq!(app.count("events").await, 0);
}

#[tokio::test]
async fn requester_tokens_are_stored_hashed() {
    let app = TestApp::spawn().await;
    let filed = app.file("access", valid_details("access")).await;
    let (_, token) = id_and_token(&filed);
    let reference = filed["reference"].as_str().expect("a reference");
    assert!(token.len() >= 32, "{token}");

    let conn = app.db.connect().await;
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT token_hash FROM requests WHERE reference = '{reference}'"),
        ))
        .await
        .expect("the query runs")
        .expect("the request's row");
    let hash: String = row.try_get("", "token_hash").expect("a token_hash");
    assert_ne!(hash, token);
    assert!(!hash.contains(&token));
    assert_eq!(hash.len(), 64, "{hash}");
    assert!(
        hash.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{hash}"
    );
    conn.close().await.ok();
}

#[tokio::test]
async fn an_administrator_changes_resets_and_deactivates_accounts() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, _) = app.officer("li.na", &["officer"]).await;
    let path = format!("/api/v1/admin/officers/{id}");
    let patch = |body: Value| {
        let app = &app;
        let path = path.clone();
        let admin = admin.clone();
        async move {
            app.request(
                rightsdesk_tests::reqwest::Method::PATCH,
                &path,
                Some(&admin),
                Some(&body),
            )
            .await
        }
    };
    // Locked out, then reset by the administrator with new roles: the lockout is lifted.
    for _ in 0..5 {
        try_login(&app, "li.na", "wrong-password-123").await;
    }
    let r = patch(
        json!({"password": "a-brand-new-password", "roles": ["dpo", "officer"],
                         "email": "li.na@example.com"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["roles"], json!(["dpo", "officer"]));
    assert_eq!(r.body["locked_until"], Value::Null);
    assert_eq!(r.body["email"], "li.na@example.com");
    let token = app.login("li.na", "a-brand-new-password").await;
    assert_error(
        &try_login(&app, "li.na", OFFICER_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );

    // Bad input changes nothing.
    for body in [
        json!({"active": "no"}),
        json!({"roles": ["pope"]}),
        json!({"roles": []}),
        json!({"password": "short"}),
        json!({"email": "not an address"}),
        json!({"nickname": "x"}),
    ] {
        let r = patch(body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            r.body
        );
    }
    let listed = app.get("/api/v1/admin/officers", Some(&admin)).await.body;
    let li = listed
        .as_array()
        .and_then(|a| a.iter().find(|o| o["username"] == "li.na"))
        .cloned()
        .expect("li.na");
    assert_eq!(li["roles"], json!(["dpo", "officer"]));
    assert_eq!(li["active"], true);
    let r = app
        .request(
            rightsdesk_tests::reqwest::Method::PATCH,
            &format!("/api/v1/admin/officers/{}", uuid::Uuid::now_v7()),
            Some(&admin),
            Some(&json!({"active": false})),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    // Only an administrator changes accounts.
    let r = app
        .request(
            rightsdesk_tests::reqwest::Method::PATCH,
            &path,
            Some(&token),
            Some(&json!({"roles": ["admin"]})),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");

    // Deactivated: the account's token stops working, and it cannot log in.
    let r = patch(json!({"active": false})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        app.get(QUEUE, Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        try_login(&app, "li.na", "a-brand-new-password")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}
