//! Periodic work that keeps promises made elsewhere: unverified requests expire
//! (SPEC §5), evidence is destroyed after its retention period (SPEC §2), and the
//! holiday table is checked for the years deadlines will need (SPEC §4). Every piece
//! is safe to run from several instances at once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Services;

/// How often housekeeping runs.
const INTERVAL: Duration = Duration::from_secs(60);

impl Services {
    /// One housekeeping pass: each piece runs even when another fails.
    pub async fn housekeep(&self) {
        if let Err(e) = self.expire_unverified().await {
            tracing::warn!(error = %e, "expiring unverified requests failed");
        }
        if let Err(e) = self.purge_evidence().await {
            tracing::warn!(error = %e, "destroying evidence past its retention failed");
        }
        if let Err(e) = self.sweep_deadlines().await {
            tracing::warn!(error = %e, "the deadline sweep failed");
        }
        if let Err(e) = self.check_calendar_coverage().await {
            tracing::warn!(error = %e, "checking the holiday table failed");
        }
    }

    /// Runs [`Services::housekeep`] every minute until `stop`.
    pub async fn run_housekeeping(self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            self.housekeep().await;
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(INTERVAL) => {}
            }
        }
    }
}
