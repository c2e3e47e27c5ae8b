//! The worker's durable job table (SPEC §13): periodic work runs once per interval however
//! many workers share the database; a crashed worker's job is taken over when its lease
//! runs out; a running job keeps its lease; failures are retried with back-off and
//! one-off work fails after its attempts; a shutdown releases what it stopped.

use std::time::Duration as StdDuration;

use chrono::Duration;
use rightsdesk_core::jobs::{Job, JobHandler, JobView};
use rightsdesk_core::{Error, ErrorCode, Services};
use rightsdesk_tests::TestApp;
use tokio_util::sync::CancellationToken;

/// Another worker on the app's database and clock (its own `worker_id`), that runs only
/// what a test tells it to.
async fn other_worker(app: &TestApp, config: &rightsdesk::Config) -> Services {
    rightsdesk::Application::build_with_clock(config, app.clock.clone())
        .await
        .expect("a second instance starts")
        .services()
        .clone()
}

async fn job(services: &Services, key: &str) -> JobView {
    services
        .list_jobs()
        .await
        .expect("the jobs")
        .into_iter()
        .find(|j| j.key == key)
        .unwrap_or_else(|| panic!("no open job {key}"))
}

/// Runs every job for real except the deadline sweep, which never ends.
#[derive(Clone)]
struct SweepHangs(Services);

impl JobHandler for SweepHangs {
    async fn run(&self, job: Job) -> Result<(), Error> {
        if job == Job::SweepDeadlines {
            std::future::pending::<()>().await;
        }
        self.0.run(job).await
    }
}

/// Every job fails.
#[derive(Clone)]
struct Fails;

impl JobHandler for Fails {
    async fn run(&self, _job: Job) -> Result<(), Error> {
        Err(Error::new(
            ErrorCode::Internal,
            "the connected system is down",
        ))
    }
}

/// Waits until `key` is leased by `worker`.
async fn until_leased(services: &Services, key: &str, worker: &str) {
    for _ in 0..200 {
        let jobs = services.list_jobs().await.expect("the jobs");
        if jobs
            .iter()
            .any(|j| j.key == key && j.leased_by.as_deref() == Some(worker))
        {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
    panic!("{key} was not leased by {worker}");
}

/// Waits until every job but `key` has run and waits for its next run.
async fn until_the_others_ran(services: &Services, key: &str) {
    for _ in 0..200 {
        let jobs = services.list_jobs().await.expect("the jobs");
        if jobs
            .iter()
            .filter(|j| j.key != key)
            .all(|j| j.leased_by.is_none() && j.run_at > services.now())
        {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
    panic!("the jobs other than {key} did not run");
}

#[tokio::test]
async fn each_periodic_job_runs_once_per_interval_whatever_the_number_of_workers() {
    let app = TestApp::spawn().await;
    let a = app.services.clone();
    let b = other_worker(&app, &app.config).await;
    assert_ne!(a.worker_id(), b.worker_id());
    a.schedule_periodic_jobs().await.unwrap();
    b.schedule_periodic_jobs().await.unwrap();
    assert_eq!(app.count("jobs").await, 7, "one row per periodic job");

    let ran = |a: Services, b: Services| async move {
        let (x, y) = tokio::join!(a.run_due_jobs(), b.run_due_jobs());
        x.unwrap().ran + y.unwrap().ran
    };
    assert_eq!(ran(a.clone(), b.clone()).await, 7, "each, once, at start");
    assert_eq!(ran(a.clone(), b.clone()).await, 0, "nothing is due");
    // worker.every_secs: the sweep every minute, the expiry every 5 minutes, the rest hourly.
    app.clock.advance(Duration::seconds(59));
    assert_eq!(ran(a.clone(), b.clone()).await, 0);
    app.clock.advance(Duration::seconds(1));
    assert_eq!(ran(a.clone(), b.clone()).await, 1);
    assert_eq!(job(&a, "sweep_deadlines").await.attempts, 0);
    app.clock.advance(Duration::seconds(240));
    assert_eq!(
        ran(a.clone(), b.clone()).await,
        2,
        "the sweep and the expiry"
    );
    app.clock.advance(Duration::seconds(3_300));
    assert_eq!(ran(a.clone(), b.clone()).await, 7);
}

#[tokio::test]
async fn a_shorter_interval_in_the_configuration_applies_to_the_next_run() {
    let app = TestApp::spawn().await;
    app.services.schedule_periodic_jobs().await.unwrap();
    app.services.run_due_jobs().await.unwrap();
    let before = job(&app.services, "check_calendar").await;
    assert_eq!(before.every_secs, Some(3_600));
    assert_eq!(before.run_at, app.services.now() + Duration::hours(1));

    let mut config = app.config.clone();
    config.worker.every_secs.check_calendar = 120;
    let restarted = other_worker(&app, &config).await;
    restarted.schedule_periodic_jobs().await.unwrap();
    let after = job(&restarted, "check_calendar").await;
    assert_eq!(after.every_secs, Some(120));
    assert_eq!(after.run_at, app.services.now() + Duration::seconds(120));
}

#[tokio::test]
async fn unverified_requests_expire_on_the_worker() {
    let app = TestApp::spawn().await;
    let filed = app
        .file("access", rightsdesk_tests::valid_details("access"))
        .await;
    let id = filed["id"].as_str().unwrap().to_owned();
    app.services.schedule_periodic_jobs().await.unwrap();
    app.services.run_due_jobs().await.unwrap();
    // 30 days and a moment later, the next run of `expire_unverified` expires it.
    app.clock.advance(Duration::days(30) + Duration::seconds(1));
    let report = app.services.run_due_jobs().await.unwrap();
    assert_eq!(report.ran, 7);
    let (_, officer) = app.officer("officer1", &["officer"]).await;
    assert_eq!(app.detail(&officer, &id).await["state"], "expired");
}

#[tokio::test]
async fn a_crashed_workers_job_is_taken_over_when_its_lease_runs_out() {
    let app = TestApp::spawn().await;
    let crashing = other_worker(&app, &app.config).await;
    crashing.schedule_periodic_jobs().await.unwrap();
    let task = tokio::spawn({
        let crashing = crashing.clone();
        async move {
            crashing
                .run_due_jobs_with(&SweepHangs(crashing.clone()))
                .await
        }
    });
    until_leased(&app.services, "sweep_deadlines", crashing.worker_id()).await;
    // It finishes the others it claimed, then the process dies: nothing releases the sweep.
    for _ in 0..200 {
        let jobs = app.services.list_jobs().await.unwrap();
        if jobs.iter().filter(|j| j.leased_by.is_some()).count() == 1 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
    task.abort();
    let _ = task.await;
    let held = job(&app.services, "sweep_deadlines").await;
    assert_eq!(held.attempts, 1);

    // The survivor runs what the crashed worker had not claimed, not the sweep.
    let survivor = &app.services;
    survivor.run_due_jobs().await.unwrap();
    let held = job(survivor, "sweep_deadlines").await;
    assert_eq!(held.leased_by.as_deref(), Some(crashing.worker_id()));
    app.clock.advance(Duration::seconds(59));
    assert_eq!(
        survivor.run_due_jobs().await.unwrap().ran,
        0,
        "still leased"
    );
    app.clock.advance(Duration::seconds(1));
    assert_eq!(survivor.run_due_jobs().await.unwrap().ran, 1, "taken over");
    let done = job(survivor, "sweep_deadlines").await;
    assert_eq!(done.leased_by, None);
    assert_eq!(done.attempts, 0);
    assert_eq!(done.run_at, survivor.now() + Duration::seconds(60));
}

#[tokio::test]
async fn a_running_job_renews_its_lease() {
    let app = TestApp::spawn().await;
    let mut config = app.config.clone();
    config.worker.lease_secs = 3;
    let slow = other_worker(&app, &config).await;
    slow.schedule_periodic_jobs().await.unwrap();
    let task = tokio::spawn({
        let slow = slow.clone();
        async move { slow.run_due_jobs_with(&SweepHangs(slow.clone())).await }
    });
    until_leased(&app.services, "sweep_deadlines", slow.worker_id()).await;
    app.services.run_due_jobs().await.unwrap();
    // Long past the first lease: the worker renews it every second.
    app.clock.advance(Duration::seconds(30));
    tokio::time::sleep(StdDuration::from_millis(1_500)).await;
    let held = job(&app.services, "sweep_deadlines").await;
    assert_eq!(held.leased_by.as_deref(), Some(slow.worker_id()));
    assert!(held.lease_until.unwrap() > app.services.now(), "{held:?}");
    let report = app.services.run_due_jobs().await.unwrap();
    assert_eq!(report.ran, 0, "the other worker leaves it alone");
    task.abort();
}

#[tokio::test]
async fn failures_are_retried_with_back_off_and_one_off_work_fails_after_its_attempts() {
    let app = TestApp::spawn().await;
    let services = &app.services;
    let conn = app.db.connect().await;
    assert!(
        services
            .enqueue_job(&conn, &Job::PurgeJobs, "once:1")
            .await
            .unwrap()
    );
    assert!(
        !services
            .enqueue_job(&conn, &Job::PurgeJobs, "once:1")
            .await
            .unwrap(),
        "one row per key"
    );
    services.schedule_periodic_jobs().await.unwrap();

    let started = services.now();
    let report = services.run_due_jobs_with(&Fails).await.unwrap();
    assert_eq!((report.ran, report.retried, report.failed), (0, 8, 0));
    let once = job(services, "once:1").await;
    assert_eq!(once.attempts, 1);
    assert!(
        once.last_error
            .as_deref()
            .is_some_and(|e| e.contains("the connected system is down")),
        "{once:?}"
    );
    // worker.backoff_base_secs = 10, doubling.
    assert_eq!(once.run_at, started + Duration::seconds(10));
    for (wait, attempts) in [(10, 2), (20, 3), (40, 4)] {
        app.clock.advance(Duration::seconds(wait));
        services.run_due_jobs_with(&Fails).await.unwrap();
        let once = job(services, "once:1").await;
        assert_eq!(once.attempts, attempts);
        assert_eq!(once.status, "pending");
    }
    // A periodic job's wait never exceeds its interval (the sweep: a minute).
    let sweep = job(services, "sweep_deadlines").await;
    assert!(
        sweep.run_at <= services.now() + Duration::seconds(60),
        "{sweep:?}"
    );
    app.clock.advance(Duration::seconds(80));
    services.run_due_jobs_with(&Fails).await.unwrap();
    let once = job(services, "once:1").await;
    assert_eq!((once.status.as_str(), once.attempts), ("failed", 5));
    app.clock.advance(Duration::hours(2));
    services.run_due_jobs_with(&Fails).await.unwrap();
    assert_eq!(
        job(services, "once:1").await.attempts,
        5,
        "never tried again"
    );
    assert_eq!(job(services, "sweep_deadlines").await.status, "pending");

    // Working again: the periodic jobs recover on their next run.
    app.clock.advance(Duration::hours(2));
    let report = services.run_due_jobs().await.unwrap();
    assert_eq!(report.ran, 7);
    assert_eq!(job(services, "sweep_deadlines").await.last_error, None);
    // A finished one-off job is deleted after worker.keep_finished_days.
    app.clock.advance(Duration::days(8));
    services.run_due_jobs().await.unwrap();
    assert!(
        services
            .list_jobs()
            .await
            .unwrap()
            .iter()
            .all(|j| j.key != "once:1"),
        "purged"
    );
    conn.close().await.ok();
}

#[tokio::test]
async fn a_shutdown_releases_the_jobs_that_do_not_finish_in_time() {
    let app = TestApp::spawn().await;
    let mut config = app.config.clone();
    config.worker.shutdown_grace_secs = 1;
    let worker = other_worker(&app, &config).await;
    let stop = CancellationToken::new();
    let handler = SweepHangs(worker.clone());
    let runner = tokio::spawn(worker.clone().run_jobs_with(handler, stop.clone()));
    until_leased(&app.services, "sweep_deadlines", worker.worker_id()).await;
    // With five periodic jobs and four at a time, the fifth starts only
    // when one of the first four ends: stop once all but the hung one ran.
    until_the_others_ran(&app.services, "sweep_deadlines").await;
    stop.cancel();
    tokio::time::timeout(StdDuration::from_secs(10), runner)
        .await
        .expect("the runner stops after the grace period")
        .unwrap();
    let released = job(&app.services, "sweep_deadlines").await;
    assert_eq!(released.leased_by, None);
    assert_eq!(released.lease_until, None);
    assert_eq!(
        released.attempts, 0,
        "the interrupted attempt does not count"
    );
    assert!(released.run_at <= app.services.now());
    // The others finished before the stop and wait for their next run.
    let expiry = job(&app.services, "expire_unverified").await;
    assert!(expiry.run_at > app.services.now());
    // Another worker runs the released job at once.
    assert_eq!(app.services.run_due_jobs().await.unwrap().ran, 1);
}
