//! The hash-chained event log (SPEC §11): it verifies after real work, the database
//! refuses to change it, and a change made behind the database's back is found.

use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{Backend, TestApp, backend, valid_details};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A service with an officer and a DPO, and one request of each ending.
struct Worked {
    app: TestApp,
    officer: String,
    /// Went all the way: completed, reopened, worked again, completed.
    full: Filed,
    /// Refused by the DPO.
    rejected: Filed,
    /// Withdrawn by the requester.
    withdrawn: Filed,
}

struct Filed {
    id: String,
    reference: String,
}

async fn file(app: &TestApp, kind: &str) -> (Filed, String) {
    let filed = app.file(kind, valid_details(kind)).await;
    let id = filed["id"].as_str().expect("an id").to_owned();
    let reference = filed["reference"].as_str().expect("a reference").to_owned();
    // References are embedded in the SQL below: make sure they are what they claim.
    assert!(
        reference.len() == 14
            && reference.starts_with("PR-")
            && reference[3..]
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'-'),
        "{reference}"
    );
    let token = filed["requester_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    (Filed { id, reference }, token)
}

async fn must(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Value {
    let r = app.act(token, id, action, body).await;
    assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
    r.body
}

async fn work() -> Worked {
    let app = TestApp::spawn().await;
    let (officer_id, officer) = app.officer("officer1", &["officer"]).await;
    let (_, dpo) = app.officer("dpo1", &["dpo"]).await;

    let (full, _) = file(&app, "access").await;
    let steps = [
        ("assign", json!({"assignee_id": officer_id})),
        ("verify", json!({"method": "call_back", "note": "回拨确认"})),
        ("start", json!({})),
        ("request_info", json!({"message": "请提供注册手机号"})),
        ("resume", json!({"note": "已收到"})),
        ("complete", json!({"summary": "已发送"})),
        ("reopen", json!({"reason": "投诉：缺少数据"})),
        ("start", json!({})),
        ("complete", json!({"summary": "已补充发送"})),
    ];
    for (action, body) in steps {
        must(&app, &officer, &full.id, action, body).await;
    }
    let r = app
        .post(
            &format!("/api/v1/officer/requests/{}/comments", full.id),
            Some(&officer),
            &json!({"body": "内部备注"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    let (rejected, _) = file(&app, "deletion").await;
    must(
        &app,
        &dpo,
        &rejected.id,
        "reject",
        json!({"reason_code": "identity_not_verified", "explanation": "无法核实身份"}),
    )
    .await;

    let (withdrawn, token) = file(&app, "explanation").await;
    let r = app
        .post(
            &format!("/api/v1/requests/{}/withdraw", withdrawn.id),
            Some(&token),
            &json!({"note": "不需要了"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    Worked {
        app,
        officer,
        full,
        rejected,
        withdrawn,
    }
}

async fn timeline(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/officer/requests/{id}"), Some(token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["timeline"].as_array().expect("a timeline").clone()
}

/// One stored event: (seq, prev_hash, hash).
async fn stored_chain(conn: &DatabaseConnection, reference: &str) -> Vec<(i64, String, String)> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            format!(
                "SELECT e.seq AS seq, e.prev_hash AS prev_hash, e.hash AS hash \
                 FROM events e JOIN requests r ON r.id = e.request_id \
                 WHERE r.reference = '{reference}' ORDER BY e.seq"
            ),
        ))
        .await
        .expect("read the chain");
    rows.iter()
        .map(|row| {
            (
                row.try_get("", "seq").expect("seq"),
                row.try_get("", "prev_hash").expect("prev_hash"),
                row.try_get("", "hash").expect("hash"),
            )
        })
        .collect()
}

/// The head stored on the request: (event_seq, head_hash).
async fn stored_head(conn: &DatabaseConnection, reference: &str) -> (i64, String) {
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT event_seq, head_hash FROM requests WHERE reference = '{reference}'"),
        ))
        .await
        .expect("read the head")
        .expect("the request");
    (
        row.try_get("", "event_seq").expect("event_seq"),
        row.try_get("", "head_hash").expect("head_hash"),
    )
}

/// `UPDATE` that rewrites the data of event `seq` of the request `reference`.
fn tamper_sql(reference: &str, seq: i64) -> String {
    format!(
        "UPDATE events SET data = '{{\"action\":\"verify\",\"from\":\"received\",\"to\":\"verified\",\"method\":\"in_person\"}}' \
         WHERE seq = {seq} AND request_id = (SELECT id FROM requests WHERE reference = '{reference}')"
    )
}

fn delete_sql(reference: &str, seq: i64) -> String {
    format!(
        "DELETE FROM events \
         WHERE seq = {seq} AND request_id = (SELECT id FROM requests WHERE reference = '{reference}')"
    )
}

/// Switches off the append-only triggers, as someone with direct database access could.
async fn bypass_append_only(conn: &DatabaseConnection) {
    let statements: &[&str] = match backend() {
        Backend::Sqlite => &[
            "DROP TRIGGER events_no_update",
            "DROP TRIGGER events_no_delete",
        ],
        Backend::Postgres => &["ALTER TABLE events DISABLE TRIGGER events_append_only"],
    };
    for sql in statements {
        conn.execute_unprepared(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

async fn verify(app: &TestApp) -> rightsdesk_core::audit::AuditReport {
    rightsdesk::audit_verify(&app.config)
        .await
        .expect("audit verify runs")
}

#[tokio::test]
async fn the_chain_verifies_after_a_full_lifecycle() {
    let w = work().await;
    let report = verify(&w.app).await;
    assert!(report.ok(), "{:?}", report.failures);
    assert_eq!(report.requests, 3);
    let stored = w.app.count("events").await;
    assert_eq!(report.events as i64, stored);
    // Filing records `filed` and `verification_requested`: 2 + 9 actions + a comment;
    // 2 + reject; 2 + withdraw.
    assert_eq!(stored, 12 + 3 + 3);
}

#[tokio::test]
async fn consecutive_events_link_by_hash() {
    let w = work().await;
    let conn = w.app.db.connect().await;
    for req in [&w.full, &w.rejected, &w.withdrawn] {
        let api = timeline(&w.app, &w.officer, &req.id).await;
        let chain = stored_chain(&conn, &req.reference).await;
        assert_eq!(chain.len(), api.len(), "{}", req.reference);
        assert_eq!(
            chain[0].1, GENESIS,
            "the first event follows the genesis hash"
        );
        for (i, (seq, prev_hash, hash)) in chain.iter().enumerate() {
            assert_eq!(*seq, i as i64 + 1, "seqs run 1, 2, 3, …");
            assert_eq!(api[i]["seq"], *seq);
            assert_eq!(
                api[i]["hash"],
                hash.as_str(),
                "the API shows the stored hash"
            );
            assert_eq!(hash.len(), 64, "a SHA-256 in hex");
            assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
            if i > 0 {
                assert_eq!(
                    prev_hash,
                    &chain[i - 1].2,
                    "event {seq} links to {}",
                    seq - 1
                );
                assert_ne!(hash, &chain[i - 1].2);
            }
        }
        let last = chain.last().expect("events");
        assert_eq!(
            stored_head(&conn, &req.reference).await,
            (last.0, last.2.clone()),
            "the request stores its chain's head"
        );
    }
}

#[tokio::test]
async fn the_database_refuses_to_change_or_delete_an_event() {
    let w = work().await;
    let conn = w.app.db.connect().await;
    let before = stored_chain(&conn, &w.full.reference).await;

    let err = conn
        .execute_unprepared(&tamper_sql(&w.full.reference, 2))
        .await
        .expect_err("an UPDATE of events is refused");
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = conn
        .execute_unprepared(&delete_sql(&w.full.reference, 1))
        .await
        .expect_err("a DELETE of events is refused");
    assert!(err.to_string().contains("append-only"), "{err}");

    assert_eq!(stored_chain(&conn, &w.full.reference).await, before);
    let report = verify(&w.app).await;
    assert!(report.ok(), "{:?}", report.failures);
}

#[tokio::test]
async fn an_altered_event_fails_verification() {
    let w = work().await;
    let conn = w.app.db.connect().await;
    bypass_append_only(&conn).await;
    let done = conn
        .execute_unprepared(&tamper_sql(&w.full.reference, 2))
        .await
        .expect("the UPDATE runs once the trigger is gone");
    assert_eq!(done.rows_affected(), 1);

    let report = verify(&w.app).await;
    assert!(!report.ok());
    assert_eq!(report.requests, 3);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    let failure = &report.failures[0];
    assert_eq!(failure.reference, w.full.reference);
    assert_eq!(failure.request_id.to_string(), w.full.id);
    assert!(failure.problem.contains("altered"), "{}", failure.problem);
    assert!(failure.problem.contains("event 2"), "{}", failure.problem);
}

#[tokio::test]
async fn deleting_the_last_event_fails_verification_with_a_head_mismatch() {
    let w = work().await;
    let conn = w.app.db.connect().await;
    let (seq, _) = stored_head(&conn, &w.rejected.reference).await;
    bypass_append_only(&conn).await;
    let done = conn
        .execute_unprepared(&delete_sql(&w.rejected.reference, seq))
        .await
        .expect("the DELETE runs once the trigger is gone");
    assert_eq!(done.rows_affected(), 1);

    let report = verify(&w.app).await;
    assert_eq!(report.events as i64, w.app.count("events").await);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    let failure = &report.failures[0];
    assert_eq!(failure.reference, w.rejected.reference);
    assert!(
        failure.problem.contains("head does not match"),
        "{}",
        failure.problem
    );
}

/// `audit verify` is a check: on a database the service never migrated it refuses,
/// rather than creating the schema.
#[tokio::test]
async fn audit_verify_does_not_migrate() {
    let db = rightsdesk_tests::TestDb::fresh().await;
    let mut config = rightsdesk::Config::default();
    config.database.url = db.url.clone();
    let err = rightsdesk::audit_verify(&config)
        .await
        .expect_err("an unmigrated database is refused");
    assert!(err.to_string().contains("rightsdesk migrate"), "{err}");
    let conn = db.connect().await;
    let tables = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            match rightsdesk_tests::backend() {
                rightsdesk_tests::Backend::Sqlite => {
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'requests'"
                }
                rightsdesk_tests::Backend::Postgres => {
                    "SELECT tablename AS name FROM pg_tables WHERE tablename = 'requests'"
                }
            },
        ))
        .await
        .expect("list tables");
    assert!(tables.is_empty(), "audit verify created the schema");
}
