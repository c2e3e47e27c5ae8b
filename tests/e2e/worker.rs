//! `rightsdesk worker` (SPEC §13): the background work runs apart from the API, and two
//! workers on one database deliver every notification exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use rightsdesk::Worker;
use rightsdesk_tests::mail::{SmtpMode, SmtpServer};
use rightsdesk_tests::serde_json::json;
use rightsdesk_tests::{TestApp, filing, valid_details};

#[tokio::test]
async fn two_workers_beside_an_api_without_background_work_deliver_each_mail_once() {
    let smtp = SmtpServer::start(SmtpMode::Accept).await;
    // The API instance runs no background work (`worker.in_process = false`).
    let app = TestApp::spawn_with_smtp(smtp.port).await;
    let filings = 30;
    for i in 0..filings {
        let mut body = filing("access", valid_details("access"));
        body["requester"]["email"] = json!(format!("person{i}@example.com"));
        let r = app.post("/api/v1/requests", None, &body).await;
        assert_eq!(r.status.as_u16(), 201, "{:?}", r.body);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.messages().is_empty(), "the API instance sends nothing");

    let clock = app.clock.clone();
    let first = Worker::start_with_clock(&app.config, clock.clone())
        .await
        .expect("a worker starts");
    let second = Worker::start_with_clock(&app.config, clock)
        .await
        .expect("another worker starts");
    let expected = filings * 2;
    for _ in 0..200 {
        if smtp.messages().len() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A moment more, so that a duplicate would have arrived too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = smtp.messages();
    first.stop().await;
    second.stop().await;

    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for m in &received {
        *by_id.entry(m.message_id.clone()).or_default() += 1;
    }
    assert_eq!(received.len(), expected, "every notification, once");
    assert!(by_id.values().all(|n| *n == 1), "{by_id:?}");
    assert_eq!(app.count("notifications").await, expected as i64);
}

#[tokio::test]
async fn a_worker_refuses_a_database_that_is_not_migrated() {
    let db = rightsdesk_tests::TestDb::fresh().await;
    let config = rightsdesk_tests::base_config(&db);
    let e = match Worker::start(&config).await {
        Ok(_) => panic!("a worker started on an empty database"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("rightsdesk migrate"), "{e}");
}
