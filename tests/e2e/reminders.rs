//! Reminders and escalation (SPEC §4): the assignee hears 7, 3 and 1 days before the due
//! date, and every day once it is overdue, together with the DPO; each notice once,
//! however often the sweep runs; unassigned requests go to the team address; a paused
//! clock reminds nobody.

use std::sync::Arc;

use chrono::Duration;
use rightsdesk_core::ManualClock;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::json;
use rightsdesk_tests::{TestApp, TestDb, base_config, start_time, valid_details};

fn to(app: &TestApp, who: &str) -> Vec<String> {
    app.outbox_messages()
        .into_iter()
        .filter(|m| m.to == who)
        .map(|m| m.subject)
        .collect()
}

#[tokio::test]
async fn reminders_at_each_offset_then_daily_overdue_notices_each_once() {
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.reminders.team_email = Some("team@corp.example.com".to_owned());
    let app = TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await;
    let (wang, officer) = app
        .officer_with_email("wang", &["officer"], Some("wang@corp.example.com"))
        .await;
    app.officer_with_email("chief", &["dpo"], Some("chief@corp.example.com"))
        .await;

    // Due 16 March; assigned to wang. Another request stays unassigned.
    let assigned = app.file("access", valid_details("access")).await;
    let id = assigned["id"].as_str().unwrap().to_owned();
    let r = app
        .act(&officer, &id, "assign", json!({"assignee_id": wang}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.file("copy", valid_details("copy")).await;

    let sweep = || async { app.services.sweep_deadlines().await.unwrap() };
    // 8 March: 8 days left, nothing yet.
    app.clock.advance(Duration::days(7));
    let report = sweep().await;
    assert_eq!((report.reminders, report.digests), (0, 0));
    // 9 March: 7 days left, one reminder per request, and wang's digest, once.
    app.clock.advance(Duration::days(1));
    let report = sweep().await;
    assert_eq!((report.reminders, report.digests), (2, 1));
    assert_eq!(
        report.examined, 2,
        "only the requests due on an offset day are read"
    );
    let report = sweep().await;
    assert_eq!((report.reminders, report.digests), (0, 0), "once");
    app.deliver().await;
    let wangs = to(&app, "wang@corp.example.com");
    assert!(wangs.iter().any(|s| s.contains("还剩 7 天")), "{wangs:?}");
    let digest = app
        .outbox_messages()
        .into_iter()
        .find(|m| m.to == "wang@corp.example.com" && m.subject.contains("待办"))
        .expect("a digest");
    assert!(
        digest
            .text
            .contains(assigned["reference"].as_str().unwrap()),
        "{}",
        digest.text
    );
    assert!(digest.text.contains("还剩 7 天"), "{}", digest.text);
    assert_eq!(
        to(&app, "team@corp.example.com").len(),
        1,
        "the unassigned one"
    );
    // 13 and 15 March: 3 and 1 days left.
    app.clock.advance(Duration::days(4));
    assert_eq!(sweep().await.reminders, 2);
    app.clock.advance(Duration::days(2));
    assert_eq!(sweep().await.reminders, 2);
    // 17 March: overdue; the assignee (or the team) and the DPO, every day, once a day.
    app.clock.advance(Duration::days(2));
    let report = sweep().await;
    assert_eq!((report.reminders, report.overdue), (0, 4));
    assert_eq!(sweep().await.overdue, 0, "once a day");
    app.clock.advance(Duration::days(1));
    assert_eq!(sweep().await.overdue, 4);
    app.deliver().await;
    let chiefs = to(&app, "chief@corp.example.com");
    assert_eq!(chiefs.len(), 4, "{chiefs:?}");
    assert!(chiefs.iter().any(|s| s.contains("逾期 2 天")), "{chiefs:?}");
}

#[tokio::test]
async fn a_paused_clock_reminds_nobody_and_a_moved_due_date_reminds_again() {
    let app = TestApp::spawn().await;
    let (wang, officer) = app
        .officer_with_email("wang", &["officer"], Some("wang@corp.example.com"))
        .await;
    let filed = app.file("access", valid_details("access")).await;
    let id = filed["id"].as_str().unwrap().to_owned();
    for (action, body) in [
        ("assign", json!({"assignee_id": wang})),
        ("verify", json!({"method": "call_back"})),
        ("start", json!({})),
        ("request_info", json!({"message": "?"})),
    ] {
        assert_eq!(
            app.act(&officer, &id, action, body).await.status,
            StatusCode::OK
        );
    }
    // 9 March, 7 days before the old due date: the clock stands, no reminder.
    app.clock.advance(Duration::days(8));
    assert_eq!(app.services.sweep_deadlines().await.unwrap().reminders, 0);
    // Resumed on 9 March: due 24 March; 17 March is 7 days before it.
    let officer = app.login("wang", rightsdesk_tests::OFFICER_PASSWORD).await;
    let d = app.act(&officer, &id, "resume", json!({})).await.body;
    assert_eq!(d["deadline"]["due_date"], "2026-03-24");
    app.clock.advance(Duration::days(8));
    assert_eq!(app.services.sweep_deadlines().await.unwrap().reminders, 1);
}

/// Files a request of `pack` at `at` and returns its id.
async fn file_at(app: &TestApp, pack: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    app.clock.set(at);
    let mut body = rightsdesk_tests::filing("access", valid_details("access"));
    body["pack"] = json!(pack);
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["due_date"], "2026-04-01");
    r.body["id"].as_str().expect("an id").to_owned()
}

#[tokio::test]
async fn each_request_is_reminded_and_overdue_on_its_own_packs_date() {
    use chrono::{TimeZone, Utc};
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.reminders.team_email = Some("team@corp.example.com".to_owned());
    config.reminders.digest = false;
    let app = TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await;
    // Both due 1 April: the gdpr one by the end of that day in Brussels, the pipl one in
    // Shanghai, six hours earlier.
    let gdpr = file_at(&app, "gdpr", start_time()).await;
    let pipl = file_at(
        &app,
        "pipl",
        Utc.with_ymd_and_hms(2026, 3, 17, 2, 0, 0).unwrap(),
    )
    .await;
    // 25 March, 20:00 UTC: 26 March in Shanghai, still 25 March in Brussels: the gdpr
    // request is 7 days from its due date, the pipl one 6.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 25, 20, 0, 0).unwrap());
    let report = app.services.sweep_deadlines().await.unwrap();
    assert_eq!(report.reminders, 1);
    assert_eq!(
        report.examined, 1,
        "each pack's date is read for that pack's requests only"
    );
    app.deliver().await;
    let (_, officer) = app.officer("officer", &["officer"]).await;
    let gdpr_ref = app.detail(&officer, &gdpr).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let subjects = to(&app, "team@corp.example.com");
    assert_eq!(subjects.len(), 1);
    assert!(subjects[0].contains(&gdpr_ref), "{subjects:?}");

    // 1 April, 20:00 UTC: 2 April in Shanghai (pipl overdue), 1 April in Brussels (gdpr
    // due today, not overdue).
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 4, 1, 20, 0, 0).unwrap());
    let report = app.services.sweep_deadlines().await.unwrap();
    assert_eq!(report.overdue, 1, "only the pipl request is overdue");
    assert_eq!(report.examined, 1);
    let officer = app
        .login("officer", rightsdesk_tests::OFFICER_PASSWORD)
        .await;
    let ids = |overdue: bool| {
        let (app, officer) = (&app, officer.clone());
        async move {
            app.get(
                &format!("/api/v1/officer/requests?overdue={overdue}"),
                Some(&officer),
            )
            .await
            .body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids(true).await, vec![pipl.clone()]);
    assert_eq!(ids(false).await, vec![gdpr.clone()]);
    assert_eq!(
        app.detail(&officer, &gdpr).await["deadline"]["overdue"],
        false
    );
    assert_eq!(
        app.detail(&officer, &pipl).await["deadline"]["overdue"],
        true
    );
}

#[tokio::test]
async fn instances_sweeping_at_once_write_each_reminder_once() {
    let db = TestDb::fresh().await;
    let mut config = base_config(&db);
    config.reminders.team_email = Some("team@corp.example.com".to_owned());
    config.reminders.digest = false;
    let app =
        TestApp::spawn_with(db, Arc::new(ManualClock::new(start_time())), config.clone()).await;
    for _ in 0..40 {
        app.file("access", valid_details("access")).await;
    }
    let mut instances = vec![app.services.clone()];
    for _ in 0..3 {
        instances.push(
            rightsdesk::Application::build_with_clock(&config, app.clock.clone())
                .await
                .expect("another instance")
                .services()
                .clone(),
        );
    }
    assert_eq!(app.count("requests").await, 40);
    let before = app.count("notifications").await;
    // 9 March: 7 days left for all 40. Each instance sweeps twice, all at once.
    app.clock.advance(Duration::days(8));
    let sweeps = instances
        .iter()
        .flat_map(|s| [s.clone(), s.clone()])
        .map(|s| tokio::spawn(async move { s.sweep_deadlines().await.expect("a sweep") }));
    let mut written = 0;
    for sweep in sweeps.collect::<Vec<_>>() {
        written += sweep.await.expect("the sweep task").reminders;
    }
    assert_eq!(
        written, 40,
        "the sweeps report each reminder once between them"
    );
    assert_eq!(
        app.count("notifications").await - before,
        40,
        "one row each"
    );
}
