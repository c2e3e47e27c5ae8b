//! What operators alert on (docs/operations.md#monitoring): gauges read from the
//! database, so every instance reports the same figures for the whole installation.
//!
//! - `rightsdesk_requests_open`, `rightsdesk_requests_due_this_week`,
//!   `rightsdesk_requests_overdue`: the promise to answer in time;
//! - `rightsdesk_jobs_pending`, `rightsdesk_jobs_failed`,
//!   `rightsdesk_jobs_waiting_seconds` (how long the oldest due job that no worker holds
//!   has waited: workers down or too few);
//! - `rightsdesk_notifications_pending`, `rightsdesk_notifications_failed` (given up after
//!   `outbox.max_attempts`), `rightsdesk_notifications_waiting_seconds`;
//! - `rightsdesk_mailbox_failures{mailbox}`: failed polls in a row of each IMAP mailbox;
//! - `rightsdesk_calendar_uncovered_years`: the years deadlines need (this one, and from
//!   November the next) that the holiday table lacks (also set by the `check_calendar`
//!   job in the worker that runs it).
//!
//! They are read when `/metrics` is scraped, at most once per [`REFRESH`]: several
//! scrapers or instances never turn into a stream of counting queries.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rightsdesk_store::leases::Backlog;
use rightsdesk_store::{intake, jobs, notifications};
use serde::Serialize;

use crate::{Error, Services};

/// Gauges older than this are read again at the next scrape.
pub const REFRESH: Duration = Duration::from_secs(10);

/// The figures behind the gauges.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Gauges {
    pub at: DateTime<Utc>,
    pub requests_open: u64,
    pub requests_due_this_week: u64,
    pub requests_overdue: u64,
    pub jobs_pending: u64,
    pub jobs_failed: u64,
    /// Seconds the oldest due, unheld job has waited (0 when none waits).
    pub jobs_waiting_seconds: i64,
    pub notifications_pending: u64,
    pub notifications_failed: u64,
    pub notifications_waiting_seconds: i64,
    /// Each configured mailbox that has been polled, with its failed polls in a row.
    pub mailbox_failures: Vec<(String, i32)>,
    /// The years deadlines need that the holiday table lacks.
    pub calendar_uncovered_years: Vec<i32>,
}

fn waiting_seconds(backlog: &Backlog, now: DateTime<Utc>) -> i64 {
    backlog
        .oldest_waiting
        .map_or(0, |due| (now - due).num_seconds().max(0))
}

impl Services {
    /// Reads the gauges' figures now.
    pub async fn gauges(&self) -> Result<Gauges, Error> {
        let conn = self.db().conn();
        let now = self.now();
        let open = self.open_counts(now).await?;
        let jobs = jobs::backlog(conn, now).await?;
        let mail = notifications::backlog(conn, now).await?;
        let mailbox_failures = intake::cursors(conn)
            .await?
            .into_iter()
            .map(|c| (c.mailbox, c.failures))
            .collect();
        let calendar_uncovered_years = self.uncovered_years().await?;
        Ok(Gauges {
            at: now,
            requests_open: open.open,
            requests_due_this_week: open.due_this_week,
            requests_overdue: open.overdue,
            jobs_pending: jobs.pending,
            jobs_failed: jobs.failed,
            jobs_waiting_seconds: waiting_seconds(&jobs, now),
            notifications_pending: mail.pending,
            notifications_failed: mail.failed,
            notifications_waiting_seconds: waiting_seconds(&mail, now),
            mailbox_failures,
            calendar_uncovered_years,
        })
    }

    /// Sets the gauges for the metrics recorder, reading them again when the last read
    /// is older than [`REFRESH`]. A failed read leaves the previous values and says so
    /// in the log (the database being down shows on `/readyz`).
    pub async fn publish_gauges(&self) {
        let mut last = self.inner.gauges_read.lock().await;
        if last.is_some_and(|at| at.elapsed() < REFRESH) {
            return;
        }
        match self.gauges().await {
            Ok(g) => {
                *last = Some(Instant::now());
                #[allow(clippy::cast_precision_loss)]
                let f = |v: u64| v as f64;
                metrics::gauge!("rightsdesk_requests_open").set(f(g.requests_open));
                metrics::gauge!("rightsdesk_requests_due_this_week")
                    .set(f(g.requests_due_this_week));
                metrics::gauge!("rightsdesk_requests_overdue").set(f(g.requests_overdue));
                metrics::gauge!("rightsdesk_jobs_pending").set(f(g.jobs_pending));
                metrics::gauge!("rightsdesk_jobs_failed").set(f(g.jobs_failed));
                #[allow(clippy::cast_precision_loss)]
                metrics::gauge!("rightsdesk_jobs_waiting_seconds")
                    .set(g.jobs_waiting_seconds as f64);
                metrics::gauge!("rightsdesk_notifications_pending").set(f(g.notifications_pending));
                metrics::gauge!("rightsdesk_notifications_failed").set(f(g.notifications_failed));
                #[allow(clippy::cast_precision_loss)]
                metrics::gauge!("rightsdesk_notifications_waiting_seconds")
                    .set(g.notifications_waiting_seconds as f64);
                for (mailbox, failures) in g.mailbox_failures {
                    metrics::gauge!("rightsdesk_mailbox_failures", "mailbox" => mailbox)
                        .set(f64::from(failures));
                }
                metrics::gauge!("rightsdesk_calendar_uncovered_years")
                    .set(f(g.calendar_uncovered_years.len() as u64));
            }
            Err(e) => tracing::warn!(error = %e, "monitoring gauges could not be read"),
        }
    }
}
