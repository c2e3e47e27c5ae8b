//! The dashboard (SPEC §10): how the promise to answer in time is being kept — the open
//! requests, those due this week and those overdue now; and over the last 30 and 90
//! days, the requests received by kind and channel, the share answered by their due
//! date, the refusals by reason, and the median time to close.
//!
//! Counts come from the database through indexes (`requests_open_due`,
//! `requests_received`, `requests_closed`); only the requests closed in the window are
//! read, for their dates.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use rightsdesk_domain::{Permission, State};
use rightsdesk_store::events;
use rightsdesk_store::requests::{self, ClosedRow, QueueFilter};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Officer;
use crate::officers::require;
use crate::{Error, Services};

/// The windows the dashboard looks back over, in days.
pub const WINDOWS: [u32; 2] = [30, 90];

/// The dashboard's figures, as of `at`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dashboard {
    pub at: DateTime<Utc>,
    /// Open requests.
    pub open: u64,
    /// Open requests whose clock runs, due today or in the six days after (each in its
    /// rule pack's time zone).
    pub due_this_week: u64,
    /// Open requests whose clock runs, past their due date.
    pub overdue: u64,
    /// The last 30 and the last 90 days.
    pub windows: Vec<Window>,
}

/// Open requests now (see `Dashboard`'s fields of the same names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OpenCounts {
    pub open: u64,
    pub due_this_week: u64,
    pub overdue: u64,
}

/// What happened in the last `days` days.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Window {
    pub days: u32,
    /// Requests received, by kind and by channel.
    pub received: u64,
    pub by_kind: BTreeMap<String, u64>,
    pub by_channel: BTreeMap<String, u64>,
    /// Requests answered (completed or refused) in the window.
    pub answered: u64,
    /// Of those, answered on or before their due date (in their time zone).
    pub on_time: u64,
    /// `on_time / answered`; none when nothing was answered.
    pub on_time_rate: Option<f64>,
    /// The median time from receipt to answer, in days; none when nothing was answered.
    pub median_days_to_close: Option<f64>,
    /// Refusals by reason code.
    pub refusals: BTreeMap<String, u64>,
    /// Requests withdrawn by their requester, or closed unverified.
    pub withdrawn_or_expired: u64,
}

impl Window {
    /// The answers' share of on-time, median time to close and the closed count, from
    /// the requests closed in the window.
    fn measure_closed(&mut self, closed: &[ClosedRow]) {
        let mut durations = Vec::new();
        for row in closed {
            let answered =
                row.state == State::Completed.as_str() || row.state == State::Rejected.as_str();
            let Some(closed_at) = row.closed_at else {
                continue;
            };
            if !answered {
                self.withdrawn_or_expired += 1;
                continue;
            }
            self.answered += 1;
            let tz: chrono_tz::Tz = row.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
            if closed_at.with_timezone(&tz).date_naive() <= row.due_date {
                self.on_time += 1;
            }
            durations.push((closed_at - row.received_at).num_seconds() as f64 / 86_400.0);
        }
        self.on_time_rate = (self.answered > 0).then(|| self.on_time as f64 / self.answered as f64);
        self.median_days_to_close = median(&mut durations);
    }
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

impl Services {
    /// The open requests, those due this week and those overdue, as of `now`: the
    /// dashboard's first line, and the gauges operators alert on.
    pub(crate) async fn open_counts(&self, now: DateTime<Utc>) -> Result<OpenCounts, Error> {
        let conn = self.db().conn();
        let today = self.pack_dates(now);
        let paused = Some(State::AwaitingRequester.as_str().to_owned());
        let open = requests::count(
            conn,
            &QueueFilter {
                open: Some(true),
                ..QueueFilter::default()
            },
        )
        .await?;
        let overdue = requests::count(
            conn,
            &QueueFilter {
                open: Some(true),
                due_before: Some(today.clone()),
                paused_state: paused.clone(),
                ..QueueFilter::default()
            },
        )
        .await?;
        let due_this_week = requests::count(
            conn,
            &QueueFilter {
                open: Some(true),
                due_on_or_after: Some(today.clone()),
                due_before: Some(today.plus_days(7)),
                paused_state: paused,
                ..QueueFilter::default()
            },
        )
        .await?;
        Ok(OpenCounts {
            open,
            due_this_week,
            overdue,
        })
    }

    /// The dashboard, for whoever reads the queue.
    pub async fn dashboard(&self, officer: &Officer) -> Result<Dashboard, Error> {
        require(officer, Permission::ViewRequests)?;
        let conn = self.db().conn();
        let now = self.now();
        let OpenCounts {
            open,
            due_this_week,
            overdue,
        } = self.open_counts(now).await?;

        let longest = WINDOWS.iter().copied().max().unwrap_or(90);
        let closed = requests::closed_since(conn, now - TimeDelta::days(longest.into())).await?;
        let refused: Vec<Uuid> = closed
            .iter()
            .filter(|r| r.state == State::Rejected.as_str())
            .map(|r| r.id)
            .collect();
        // A request refused, reopened and refused again counts its last refusal.
        let mut reasons: BTreeMap<Uuid, (DateTime<Utc>, String)> = BTreeMap::new();
        for chunk in refused.chunks(500) {
            for e in events::of_type_for(conn, chunk, "rejected").await? {
                let code = e.data["reason_code"]
                    .as_str()
                    .unwrap_or("unspecified")
                    .to_owned();
                let entry = reasons.entry(e.request_id).or_insert((e.at, code.clone()));
                if e.at >= entry.0 {
                    *entry = (e.at, code);
                }
            }
        }

        let mut windows = Vec::new();
        for days in WINDOWS {
            let since = now - TimeDelta::days(days.into());
            let mut w = Window {
                days,
                ..Window::default()
            };
            for (kind, channel, n) in
                requests::received_since_by_kind_and_channel(conn, since).await?
            {
                let n = n.max(0) as u64;
                w.received += n;
                *w.by_kind.entry(kind).or_default() += n;
                *w.by_channel.entry(channel).or_default() += n;
            }
            let in_window: Vec<ClosedRow> = closed
                .iter()
                .filter(|r| r.closed_at.is_some_and(|c| c >= since))
                .cloned()
                .collect();
            w.measure_closed(&in_window);
            for r in in_window
                .iter()
                .filter(|r| r.state == State::Rejected.as_str())
            {
                let code = reasons
                    .get(&r.id)
                    .map_or("unspecified", |(_, c)| c.as_str());
                *w.refusals.entry(code.to_owned()).or_default() += 1;
            }
            windows.push(w);
        }
        Ok(Dashboard {
            at: now,
            open,
            due_this_week,
            overdue,
            windows,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn closed(state: State, received: &str, closed: &str, due: &str) -> ClosedRow {
        ClosedRow {
            id: Uuid::now_v7(),
            state: state.as_str().to_owned(),
            received_at: received.parse().unwrap(),
            closed_at: Some(closed.parse().unwrap()),
            due_date: due.parse::<NaiveDate>().unwrap(),
            time_zone: "Asia/Shanghai".to_owned(),
        }
    }

    #[test]
    fn answers_are_on_time_by_their_local_due_date_and_their_median_is_the_middle() {
        let mut w = Window::default();
        w.measure_closed(&[
            // Answered 10 days after receipt, before the due date.
            closed(
                State::Completed,
                "2026-03-01T02:00:00Z",
                "2026-03-11T02:00:00Z",
                "2026-03-16",
            ),
            // 23:30 on the 16th in Shanghai is 15:30 UTC: still on time.
            closed(
                State::Rejected,
                "2026-03-01T02:00:00Z",
                "2026-03-16T15:30:00Z",
                "2026-03-16",
            ),
            // 00:30 on the 17th in Shanghai (16:30 UTC on the 16th): late.
            closed(
                State::Completed,
                "2026-03-01T02:00:00Z",
                "2026-03-16T16:30:00Z",
                "2026-03-16",
            ),
            // Withdrawn: not an answer.
            closed(
                State::Withdrawn,
                "2026-03-01T02:00:00Z",
                "2026-03-02T02:00:00Z",
                "2026-03-16",
            ),
        ]);
        assert_eq!((w.answered, w.on_time, w.withdrawn_or_expired), (3, 2, 1));
        assert_eq!(w.on_time_rate, Some(2.0 / 3.0));
        let median = w.median_days_to_close.unwrap();
        assert!((median - (15.0 + 13.5 / 24.0)).abs() < 1e-9, "{median}");
    }

    #[test]
    fn nothing_answered_has_no_rate_and_no_median() {
        let mut w = Window::default();
        w.measure_closed(&[]);
        assert_eq!(w.on_time_rate, None);
        assert_eq!(w.median_days_to_close, None);
        assert_eq!(median(&mut [4.0, 1.0]), Some(2.5));
    }
}
