//! The gauges operators alert on (`rightsdesk_core::monitoring`, docs/operations.md#monitor):
//! read from the database, they show mail and jobs waiting for a worker, and requests
//! open and overdue, as the dashboard counts them.

use chrono::Duration;
use rightsdesk_tests::{TestApp, valid_details};

#[tokio::test]
async fn the_gauges_show_work_waiting_for_a_worker_and_requests_overdue() {
    let app = TestApp::spawn().await;
    // The periodic jobs, as a worker schedules and first runs them.
    app.services
        .schedule_periodic_jobs()
        .await
        .expect("scheduled");
    app.services.run_due_jobs().await.expect("the jobs run");
    let g = app.services.gauges().await.expect("gauges");
    assert!(g.jobs_pending >= 1, "{g:?}");
    assert_eq!(g.jobs_waiting_seconds, 0, "{g:?}");
    assert_eq!((g.requests_open, g.requests_overdue), (0, 0));
    assert_eq!(g.notifications_pending, 0);
    assert_eq!(g.notifications_waiting_seconds, 0);
    assert_eq!(g.calendar_uncovered_years, Vec::<i32>::new());

    // A filing writes its notices; nobody sends them for ten minutes.
    app.file("access", valid_details("access")).await;
    app.clock.advance(Duration::minutes(10));
    let g = app.services.gauges().await.expect("gauges");
    assert_eq!(g.requests_open, 1);
    assert!(g.notifications_pending >= 1, "{g:?}");
    assert!(
        (600..=601).contains(&g.notifications_waiting_seconds),
        "{g:?}"
    );
    // The periodic jobs are due again (the deadline sweep every minute), and no worker
    // runs them here: the sweep has waited nine minutes.
    assert_eq!(g.jobs_waiting_seconds, 540, "{g:?}");

    // Sent and run: nothing waits.
    app.deliver().await;
    app.services.run_due_jobs().await.expect("the jobs run");
    let g = app.services.gauges().await.expect("gauges");
    assert_eq!(g.notifications_pending, 0, "{g:?}");
    assert_eq!(g.notifications_waiting_seconds, 0);
    assert_eq!(g.jobs_waiting_seconds, 0, "{g:?}");
    assert_eq!(g.notifications_failed, 0);

    // A verified request whose fifteen days pass is overdue, as the dashboard says.
    app.file_verified("copy").await;
    app.clock.advance(Duration::days(20));
    let g = app.services.gauges().await.expect("gauges");
    let (_, officer) = app.officer("wang", &["officer"]).await;
    let dashboard = app
        .get("/api/v1/officer/dashboard", Some(&officer))
        .await
        .body;
    assert_eq!(
        g.requests_overdue,
        dashboard["overdue"].as_u64().expect("a count")
    );
    assert!(g.requests_overdue >= 1, "{g:?}");
    assert_eq!(
        g.requests_open,
        dashboard["open"].as_u64().expect("a count")
    );
}
