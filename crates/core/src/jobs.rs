//! The worker's jobs (SPEC §13): one serde enum of job kinds with stable names, run from
//! the durable `jobs` table by every worker process (`rightsdesk worker`, or `serve`
//! with `worker.in_process`).
//!
//! Periodic work (the expiry of unverified requests, evidence purges, the deadline sweep,
//! the holiday-table check) is one row per kind, rescheduled `worker.every_secs` after
//! each run, so it runs once per interval however many workers there are. One-off work
//! is a row per key. A worker claims due rows under a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL; inside the one write lock on SQLite), renews the lease while the job runs,
//! and records the outcome: rescheduled or done, retried with exponential back-off, or,
//! for one-off work out of attempts, failed. A worker that crashes leaves its rows
//! leased; they are due again when the lease runs out. On shutdown a worker lets running
//! jobs finish for `worker.shutdown_grace_secs`, then stops them and releases their rows.
//! Handlers are idempotent: a job run twice (after a lost lease) changes nothing twice.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::FutureExt;
use rightsdesk_store::jobs;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::{Error, Services};

/// A unit of background work, as stored in a job's `payload`. The tag (`kind`) is the
/// job's stable name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Requests unverified for `verification.expire_after_days` expire.
    ExpireUnverified,
    /// Evidence past `evidence.retention_days` is destroyed.
    PurgeEvidence,
    /// Deadline reminders, overdue notices and digests are written.
    SweepDeadlines,
    /// The holiday table is checked for the years deadlines need.
    CheckCalendar,
    /// Finished one-off jobs older than `worker.keep_finished_days` are deleted.
    PurgeJobs,
    /// The IMAP mailboxes of `[intake.mailboxes]` are read (scheduled only when some
    /// are configured).
    PollMailboxes,
    /// One data source is searched for one request's subject (one-off).
    CollectSource { request_id: Uuid, source: String },
    /// The bundle of a request whose sources have all answered is written (one-off).
    BuildBundle { request_id: Uuid },
    /// Bundles whose download links have expired are deleted from storage.
    PurgeBundles,
    /// A portability bundle is pushed to the recipient's endpoint (one-off).
    PushBundle { request_id: Uuid, bundle_id: Uuid },
    /// One data source erases one request's subject (one-off).
    EraseSource { request_id: Uuid, source: String },
    /// Data kept under a retention rule whose period has ended is erased.
    EndRestrictions,
    /// One data source applies one request's consent withdrawal (one-off).
    ChangeSource { request_id: Uuid, source: String },
}

impl Job {
    /// The stable name (the `kind` column, metrics and logs).
    pub fn kind(&self) -> &'static str {
        match self {
            Job::ExpireUnverified => "expire_unverified",
            Job::PurgeEvidence => "purge_evidence",
            Job::SweepDeadlines => "sweep_deadlines",
            Job::CheckCalendar => "check_calendar",
            Job::PurgeJobs => "purge_jobs",
            Job::PollMailboxes => "poll_mailboxes",
            Job::CollectSource { .. } => "collect_source",
            Job::BuildBundle { .. } => "build_bundle",
            Job::PurgeBundles => "purge_bundles",
            Job::PushBundle { .. } => "push_bundle",
            Job::EraseSource { .. } => "erase_source",
            Job::EndRestrictions => "end_restrictions",
            Job::ChangeSource { .. } => "change_source",
        }
    }
}

/// Runs jobs. [`Services`] runs the real ones; tests of the runner bring their own.
pub trait JobHandler: Clone + Send + Sync + 'static {
    fn run(&self, job: Job) -> impl Future<Output = Result<(), Error>> + Send;
}

impl JobHandler for Services {
    async fn run(&self, job: Job) -> Result<(), Error> {
        match job {
            Job::ExpireUnverified => {
                let expired = self.expire_unverified().await?;
                if expired > 0 {
                    tracing::info!(expired, "unverified requests expired");
                }
            }
            Job::PurgeEvidence => {
                let destroyed = self.purge_evidence().await?;
                if destroyed > 0 {
                    tracing::info!(destroyed, "evidence past its retention destroyed");
                }
            }
            Job::SweepDeadlines => {
                self.sweep_deadlines().await?;
            }
            Job::CheckCalendar => {
                self.check_calendar_coverage().await?;
            }
            Job::PollMailboxes => {
                let report = self.poll_mailboxes().await?;
                if report.messages > 0 || report.failed > 0 {
                    tracing::info!(
                        polled = report.polled,
                        messages = report.messages,
                        failed = report.failed,
                        "mailboxes polled"
                    );
                }
            }
            Job::CollectSource { request_id, source } => {
                self.collect_source(request_id, &source).await?;
            }
            Job::BuildBundle { request_id } => {
                self.build_bundle(request_id).await?;
            }
            Job::PushBundle {
                request_id,
                bundle_id,
            } => {
                self.push_bundle(request_id, bundle_id).await?;
            }
            Job::EraseSource { request_id, source } => {
                self.erase_source(request_id, &source).await?;
            }
            Job::ChangeSource { request_id, source } => {
                self.change_source(request_id, &source).await?;
            }
            Job::EndRestrictions => {
                let ended = self.end_restrictions().await?;
                if ended > 0 {
                    tracing::info!(ended, "restrictions past their retention erased");
                }
            }
            Job::PurgeBundles => {
                let purged = self.purge_bundles().await?;
                if purged > 0 {
                    tracing::info!(purged, "expired bundles deleted");
                }
            }
            Job::PurgeJobs => {
                let days = i64::from(self.config().worker.keep_finished_days);
                let before = self.now() - TimeDelta::days(days);
                let tx = self.db().begin_write().await?;
                let deleted = jobs::delete_finished_before(&*tx, before).await?;
                tx.commit().await?;
                if deleted > 0 {
                    tracing::info!(deleted, "finished jobs deleted");
                }
                self.forget_hook_signatures().await?;
            }
        }
        Ok(())
    }
}

/// How one claimed job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Done (one-off) or rescheduled (periodic).
    Ran,
    Retried,
    Failed,
    /// Given back without counting the attempt (a kind this version does not know).
    Released,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ran => "ran",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
            Outcome::Released => "released",
        }
    }
}

/// What [`Services::run_due_jobs`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JobsReport {
    pub ran: usize,
    pub retried: usize,
    pub failed: usize,
    pub released: usize,
}

impl JobsReport {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ran => self.ran += 1,
            Outcome::Retried => self.retried += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Released => self.released += 1,
        }
    }
}

/// A job as an operator sees it (`rightsdesk jobs list`).
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: Uuid,
    pub kind: String,
    pub key: String,
    pub status: String,
    pub run_at: DateTime<Utc>,
    pub every_secs: Option<i64>,
    pub attempts: i32,
    pub leased_by: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl From<jobs::Model> for JobView {
    fn from(j: jobs::Model) -> Self {
        Self {
            id: j.id,
            kind: j.kind,
            key: j.key,
            status: j.status,
            run_at: j.run_at,
            every_secs: j.every_secs,
            attempts: j.attempts,
            leased_by: j.leased_by,
            lease_until: j.lease_until,
            last_error: j.last_error,
        }
    }
}

/// A kind this version cannot read is left for a worker that can (a newer version
/// during a rolling upgrade), and looked at again after this long.
const UNKNOWN_KIND_DELAY: TimeDelta = TimeDelta::minutes(5);

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `renew` every third of `lease_secs` (the first time a third in) on a task of its
/// own, until the returned guard is dropped: what keeps a lease alive while its holder
/// works (a job, a batch of notifications).
pub(crate) fn renew_every_third<F, Fut>(lease_secs: u64, renew: F) -> AbortOnDrop
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    AbortOnDrop(tokio::spawn(
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(lease_secs.div_ceil(3)));
            every.tick().await;
            loop {
                every.tick().await;
                renew().await;
            }
        }
        .in_current_span(),
    ))
}

/// This process's name in `leased_by`: host, process id and a random suffix (two
/// workers in one process, as in tests, differ too).
pub(crate) fn worker_id() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!(
        "{host}:{}:{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

/// Waits `base × 2^(attempts − 1)`, at most `max`.
pub(crate) fn backoff(base_secs: u64, max_secs: u64, attempts: i32) -> TimeDelta {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let secs = base_secs.saturating_mul(1u64 << exp).min(max_secs);
    TimeDelta::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

fn secs(n: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(n).unwrap_or(i64::MAX))
}

impl Services {
    /// This worker's name in the `leased_by` of the jobs and notifications it claims.
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// The periodic jobs and their intervals, from `worker.every_secs`; mailboxes are
    /// polled when some are configured.
    fn periodic_jobs(&self) -> Vec<(Job, u64)> {
        let every = &self.config().worker.every_secs;
        let mut jobs = vec![
            (Job::ExpireUnverified, every.expire_unverified),
            (Job::PurgeEvidence, every.purge_evidence),
            (Job::SweepDeadlines, every.sweep_deadlines),
            (Job::CheckCalendar, every.check_calendar),
            (Job::PurgeJobs, every.purge_jobs),
            (Job::PurgeBundles, every.purge_bundles),
            (Job::EndRestrictions, every.end_restrictions),
        ];
        if !self.inner.mailboxes.is_empty() {
            jobs.push((Job::PollMailboxes, every.poll_mailboxes));
        }
        jobs
    }

    fn job_row(
        &self,
        job: &Job,
        key: String,
        every_secs: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<jobs::Model, Error> {
        Ok(jobs::Model {
            id: Uuid::now_v7(),
            kind: job.kind().to_owned(),
            key,
            payload: serde_json::to_value(job).map_err(|_| Error::internal())?,
            status: jobs::PENDING.to_owned(),
            run_at: now,
            attempts: 0,
            max_attempts: i32::try_from(self.config().worker.max_attempts).unwrap_or(i32::MAX),
            every_secs,
            lease_until: None,
            leased_by: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
        })
    }

    /// Gives each periodic job its row (due at once when new), with the interval of this
    /// configuration. Idempotent; every worker does it at start.
    pub async fn schedule_periodic_jobs(&self) -> Result<(), Error> {
        let now = self.now();
        let periodic = self.periodic_jobs();
        let rows = periodic
            .iter()
            .map(|(job, every)| {
                let every = i64::try_from(*every).unwrap_or(i64::MAX);
                self.job_row(job, job.kind().to_owned(), Some(every), now)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tx = self.db().begin_write().await?;
        jobs::insert_new(&*tx, rows).await?;
        for (job, every) in periodic {
            let every_secs = i64::try_from(every).unwrap_or(i64::MAX);
            jobs::set_interval(&*tx, job.kind(), every_secs, now + secs(every)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Queues one-off work under `key` (nothing when a job with that key exists),
    /// inside the caller's transaction so that it commits with the change that causes
    /// it. Returns whether it was new.
    pub async fn enqueue_job(
        &self,
        conn: &impl rightsdesk_store::ConnectionTrait,
        job: &Job,
        key: &str,
    ) -> Result<bool, Error> {
        let row = self.job_row(job, key.to_owned(), None, self.now())?;
        Ok(jobs::insert_new(conn, vec![row]).await? == 1)
    }

    /// The pending and failed jobs, soonest first.
    pub async fn list_jobs(&self) -> Result<Vec<JobView>, Error> {
        Ok(jobs::list_open(self.db().conn(), 1_000)
            .await?
            .into_iter()
            .map(JobView::from)
            .collect())
    }

    async fn claim_jobs(&self, limit: usize) -> Result<Vec<jobs::Model>, Error> {
        let now = self.now();
        let lease_until = now + secs(self.config().worker.lease_secs);
        let tx = self.db().begin_write().await?;
        let claimed =
            jobs::claim_due(&*tx, now, lease_until, self.worker_id(), limit as u64).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Runs every due job with [`Services`]'s handlers, `worker.concurrency` at a time,
    /// until none is due; tests and one-shot commands drive the worker with this.
    pub async fn run_due_jobs(&self) -> Result<JobsReport, Error> {
        self.run_due_jobs_with(self).await
    }

    /// [`Services::run_due_jobs`] with another handler (for tests of the runner).
    pub async fn run_due_jobs_with<H: JobHandler>(&self, handler: &H) -> Result<JobsReport, Error> {
        let mut report = JobsReport::default();
        loop {
            let claimed = self
                .claim_jobs(self.config().worker.concurrency as usize)
                .await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            let outcomes = futures_util::future::join_all(
                claimed.into_iter().map(|row| self.execute(handler, row)),
            )
            .await;
            for outcome in outcomes {
                report.add(outcome?);
            }
        }
    }

    /// Runs one claimed job (renewing its lease meanwhile) and records how it ended.
    async fn execute<H: JobHandler>(
        &self,
        handler: &H,
        row: jobs::Model,
    ) -> Result<Outcome, Error> {
        let span = tracing::info_span!("job", job_id = %row.id, kind = %row.kind);
        async {
            let started = Instant::now();
            let Ok(job) = serde_json::from_value::<Job>(row.payload.clone()) else {
                tracing::warn!("a job of a kind this version does not know; left for another worker");
                let now = self.now();
                let tx = self.db().begin_write().await?;
                jobs::release(&*tx, row.id, self.worker_id(), now + UNKNOWN_KIND_DELAY, now).await?;
                tx.commit().await?;
                return Ok(Outcome::Released);
            };
            let result = self.with_lease(row.id, handler.run(job)).await;
            let outcome = self.record(&row, result).await?;
            metrics::counter!("rightsdesk_jobs_total", "kind" => row.kind.clone(), "outcome" => outcome.as_str())
                .increment(1);
            metrics::histogram!("rightsdesk_job_duration_seconds", "kind" => row.kind.clone())
                .record(started.elapsed().as_secs_f64());
            Ok(outcome)
        }
        .instrument(span)
        .await
    }

    /// Runs `work`, renewing the lease of job `id` every third of `worker.lease_secs`.
    /// A panic is an error like any other.
    ///
    /// The renewal runs as a task of its own: renewing inside this task (a `select!`
    /// branch) would stop polling `work` meanwhile, and a `work` suspended while it holds
    /// the database's write lock (SQLite's is one per process) would never let the
    /// renewal's own write through — a deadlock that struck any job running longer
    /// than a third of the lease.
    async fn with_lease(
        &self,
        id: Uuid,
        work: impl Future<Output = Result<(), Error>>,
    ) -> Result<(), String> {
        let lease_secs = self.config().worker.lease_secs;
        let services = self.clone();
        // Stopped when `work` ends, and when this future is dropped (a job stopped at
        // shutdown), so no lease outlives its job.
        let _renewer = renew_every_third(lease_secs, move || {
            let services = services.clone();
            async move {
                let until = services.now() + secs(lease_secs);
                match services.renew_lease(id, until).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("the job's lease was lost; another worker may run it too")
                    }
                    Err(e) => tracing::warn!(error = %e, "renewing a job's lease failed"),
                }
            }
        });
        match AssertUnwindSafe(work).catch_unwind().await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the job panicked".to_owned()),
        }
    }

    async fn renew_lease(&self, id: Uuid, until: DateTime<Utc>) -> Result<bool, Error> {
        let tx = self.db().begin_write().await?;
        let held = jobs::renew_lease(&*tx, id, self.worker_id(), until).await?;
        tx.commit().await?;
        Ok(held)
    }

    async fn record(
        &self,
        row: &jobs::Model,
        result: Result<(), String>,
    ) -> Result<Outcome, Error> {
        let config = &self.config().worker;
        let now = self.now();
        let worker = self.worker_id();
        let tx = self.db().begin_write().await?;
        let outcome = match (result, row.every_secs) {
            (Ok(()), Some(every)) => {
                jobs::reschedule(&*tx, row.id, worker, now + TimeDelta::seconds(every), now)
                    .await?;
                Outcome::Ran
            }
            (Ok(()), None) => {
                jobs::mark_done(&*tx, row.id, worker, now).await?;
                Outcome::Ran
            }
            (Err(e), every) if every.is_some() || row.attempts < row.max_attempts => {
                let mut wait = backoff(
                    config.backoff_base_secs,
                    config.backoff_max_secs,
                    row.attempts,
                );
                if let Some(every) = every {
                    wait = wait.min(TimeDelta::seconds(every));
                }
                jobs::mark_retry(&*tx, row.id, worker, now + wait, &e, now).await?;
                tracing::warn!(attempts = row.attempts, error = %e, "job failed; will retry");
                Outcome::Retried
            }
            (Err(e), _) => {
                jobs::mark_failed(&*tx, row.id, worker, &e, now).await?;
                tracing::error!(attempts = row.attempts, error = %e, "job failed for good");
                Outcome::Failed
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Releases job `id` after its task was stopped at shutdown.
    async fn release_job(&self, id: Uuid) -> Result<(), Error> {
        let now = self.now();
        let tx = self.db().begin_write().await?;
        jobs::release(&*tx, id, self.worker_id(), now, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The job runner: schedules the periodic jobs, then claims and runs due jobs
    /// (`worker.concurrency` at once) until `stop`, looking every
    /// `worker.poll_interval_ms` when idle. On `stop` it claims nothing more, lets
    /// running jobs finish for `worker.shutdown_grace_secs`, and releases the rest.
    pub async fn run_jobs(self, stop: CancellationToken) {
        let handler = self.clone();
        self.run_jobs_with(handler, stop).await;
    }

    /// [`Services::run_jobs`] with another handler (for tests of the runner).
    pub async fn run_jobs_with<H: JobHandler>(self, handler: H, stop: CancellationToken) {
        let config = self.config().worker.clone();
        let poll = Duration::from_millis(config.poll_interval_ms);
        let slots = config.concurrency as usize;
        let mut scheduled = false;
        let mut running: JoinSet<()> = JoinSet::new();
        let mut held: HashMap<tokio::task::Id, Uuid> = HashMap::new();
        tracing::info!(worker = %self.worker_id(), "job runner started");
        while !stop.is_cancelled() {
            if !scheduled {
                match self.schedule_periodic_jobs().await {
                    Ok(()) => scheduled = true,
                    Err(e) => tracing::warn!(error = %e, "scheduling the periodic jobs failed"),
                }
            }
            let free = slots.saturating_sub(running.len());
            if free > 0 {
                match self.claim_jobs(free).await {
                    Ok(claimed) => {
                        for row in claimed {
                            let (services, handler) = (self.clone(), handler.clone());
                            let id = row.id;
                            let task = running.spawn(async move {
                                if let Err(e) = services.execute(&handler, row).await {
                                    tracing::warn!(error = %e, "recording a job's outcome failed; its lease will run out");
                                }
                            });
                            held.insert(task.id(), id);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming jobs failed"),
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    held.remove(&task_id(&done));
                }
                _ = tokio::time::sleep(poll) => {}
            }
        }
        let grace = tokio::time::sleep(Duration::from_secs(config.shutdown_grace_secs));
        tokio::pin!(grace);
        loop {
            tokio::select! {
                done = running.join_next_with_id() => match done {
                    Some(done) => {
                        if done.is_ok() {
                            held.remove(&task_id(&done));
                        }
                    }
                    None => break,
                },
                _ = &mut grace => {
                    running.abort_all();
                    while let Some(done) = running.join_next_with_id().await {
                        if done.is_ok() {
                            held.remove(&task_id(&done));
                        }
                    }
                    break;
                }
            }
        }
        for id in held.into_values() {
            match self.release_job(id).await {
                Ok(()) => tracing::info!(job_id = %id, "job stopped at shutdown and released"),
                Err(e) => {
                    tracing::warn!(job_id = %id, error = %e, "releasing a job failed; its lease will run out")
                }
            }
        }
        tracing::info!("job runner stopped");
    }
}

fn task_id(done: &Result<(tokio::task::Id, ()), tokio::task::JoinError>) -> tokio::task::Id {
    match done {
        Ok((id, ())) => *id,
        Err(e) => e.id(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_limit() {
        assert_eq!(backoff(30, 3600, 1), TimeDelta::seconds(30));
        assert_eq!(backoff(30, 3600, 2), TimeDelta::seconds(60));
        assert_eq!(backoff(30, 3600, 4), TimeDelta::seconds(240));
        assert_eq!(backoff(30, 3600, 9), TimeDelta::seconds(3600));
        assert_eq!(backoff(30, 3600, 1000), TimeDelta::seconds(3600));
    }

    #[test]
    fn job_kinds_have_stable_names() {
        for job in [
            Job::ExpireUnverified,
            Job::PurgeEvidence,
            Job::SweepDeadlines,
            Job::CheckCalendar,
            Job::PurgeJobs,
            Job::PollMailboxes,
            Job::PurgeBundles,
            Job::EndRestrictions,
        ] {
            let payload = serde_json::to_value(&job).unwrap();
            assert_eq!(payload, serde_json::json!({ "kind": job.kind() }));
            assert_eq!(serde_json::from_value::<Job>(payload).unwrap(), job);
        }
        let job = Job::CollectSource {
            request_id: Uuid::nil(),
            source: "website".to_owned(),
        };
        let payload = serde_json::to_value(&job).unwrap();
        assert_eq!(payload["kind"], "collect_source");
        assert_eq!(serde_json::from_value::<Job>(payload).unwrap(), job);
    }
}
