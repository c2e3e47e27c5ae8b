//! Repeats (SPEC §8): once a request's subject is verified, its detail lists the same
//! subject's earlier requests of the same kind within `repeats.window_days`, for the
//! officer to judge a repetition; other kinds, later requests and older ones are not
//! listed.

use chrono::TimeDelta;
use rightsdesk_tests::TestApp;
use rightsdesk_tests::serde_json::Value;

fn repeats(detail: &Value) -> Vec<String> {
    detail["repeats"]
        .as_array()
        .expect("repeats")
        .iter()
        .filter_map(|r| r["reference"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn earlier_requests_of_the_same_subject_and_kind_are_listed() {
    let app = TestApp::spawn().await;
    let first = app.file_verified("deletion").await;
    app.clock.advance(TimeDelta::days(10));
    let copy = app.file_verified("copy").await;
    app.clock.advance(TimeDelta::days(10));
    let second = app.file_verified("deletion").await;
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let id = |v: &Value| v["id"].as_str().expect("an id").to_owned();
    let reference = |v: &Value| v["reference"].as_str().expect("a reference").to_owned();

    let detail = app.detail(&officer, &id(&second)).await;
    assert_eq!(repeats(&detail), [reference(&first)]);
    assert_eq!(detail["repeats"][0]["state"], "verified");
    // Nothing earlier for the first, and a copy is another kind.
    assert!(repeats(&app.detail(&officer, &id(&first)).await).is_empty());
    assert!(repeats(&app.detail(&officer, &id(&copy)).await).is_empty());
    // A year and more later, the window has passed.
    app.clock.advance(TimeDelta::days(400));
    let third = app.file_verified("deletion").await;
    let (_, officer) = app.officer("zhao", &["officer"]).await;
    assert!(repeats(&app.detail(&officer, &id(&third)).await).is_empty());
}
