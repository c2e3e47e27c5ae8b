use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::{TestApp, valid_details};

#[tokio::test]
async fn a_filed_request_is_readable_by_its_requester() {
    let app = TestApp::spawn().await;
    let filed = app.file("access", valid_details("access")).await;
    assert_eq!(filed["state"], "awaiting_verification");
    assert_eq!(filed["due_date"], "2026-03-16");
    assert_eq!(filed["time_zone"], "Asia/Shanghai");
    let id = filed["id"].as_str().unwrap();
    let token = filed["requester_token"].as_str().unwrap();
    let r = app
        .get(&format!("/api/v1/requests/{id}"), Some(token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["reference"], filed["reference"]);
    assert_eq!(r.body["days_left"], 15);
}
