//! Request references: unique under concurrent filing, robust to numbers already taken,
//! and a clear error when a year's million are used up.

use std::collections::HashSet;

use futures_util::future::join_all;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::{TestApp, filing, valid_details};
use sea_orm::ConnectionTrait;

async fn set_counter(app: &TestApp, year: i32, next: i64) {
    let conn = app.db.connect().await;
    conn.execute_unprepared(&format!(
        "UPDATE reference_counters SET next_counter = {next} WHERE year = {year}"
    ))
    .await
    .expect("move the counter");
    conn.close().await.ok();
}

fn is_reference_of(reference: &str, year: i32) -> bool {
    reference.len() == 14
        && reference.starts_with(&format!("PR-{year}-"))
        && reference[8..].bytes().all(|b| b.is_ascii_digit())
}

#[tokio::test]
async fn concurrent_filings_get_distinct_references() {
    let app = TestApp::spawn().await;
    let filings = (0..64).map(|i| {
        let app = &app;
        async move {
            let kind = ["access", "copy", "deletion", "explanation"][i % 4];
            app.file(kind, valid_details(kind)).await["reference"]
                .as_str()
                .expect("a reference")
                .to_owned()
        }
    });
    let references: Vec<String> = join_all(filings).await;
    let distinct: HashSet<&String> = references.iter().collect();
    assert_eq!(distinct.len(), 64, "{references:?}");
    assert!(references.iter().all(|r| is_reference_of(r, 2026)));
    // Consecutive filings do not get consecutive numbers.
    let mut numbers: Vec<u32> = references.iter().map(|r| r[8..].parse().unwrap()).collect();
    numbers.sort_unstable();
    let adjacent = numbers.windows(2).filter(|w| w[1] - w[0] == 1).count();
    assert!(adjacent < 4, "{numbers:?}");
}

#[tokio::test]
async fn numbers_already_taken_are_skipped() {
    // As after restoring a backup over newer data: the counter points at references
    // that are already in use.
    let app = TestApp::spawn().await;
    let mut first = HashSet::new();
    for _ in 0..5 {
        first.insert(app.file("access", valid_details("access")).await["reference"].clone());
    }
    set_counter(&app, 2026, 0).await;
    let app = app.restart().await;
    let filed = app.file("copy", valid_details("copy")).await;
    assert!(
        !first.contains(&filed["reference"]),
        "{} reused",
        filed["reference"]
    );
    assert_eq!(app.count("requests").await, 6);
}

#[tokio::test]
async fn a_year_without_free_references_is_refused_clearly() {
    let app = TestApp::spawn().await;
    app.file("access", valid_details("access")).await;
    set_counter(&app, 2026, 999_999).await;
    let app = app.restart().await;
    // The last reference of the year is still handed out...
    let last = app.file("access", valid_details("access")).await;
    assert!(is_reference_of(last["reference"].as_str().unwrap(), 2026));
    // ...and then filing for 2026 stops with a stable code and stores nothing.
    let r = app
        .post(
            "/api/v1/requests",
            None,
            &filing("access", valid_details("access")),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert_eq!(r.code(), "references_exhausted");
    assert_eq!(app.count("requests").await, 2);
}
