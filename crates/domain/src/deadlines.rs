//! Deadline maths (SPEC §4). Everything takes the current time as an argument; a due
//! date is a local date in the pack's time zone, and a request is due by the end of it.
//!
//! A [`RulePack`] is data: a period per request kind, a clock start, a time zone. This
//! first cut ships the `pipl` pack with calendar days; working days, other packs,
//! pauses and extensions extend [`PeriodUnit`], [`RulePack`] and [`DeadlineEffect`].

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::kinds::{RequestKind, string_enum};

string_enum! {
    /// How a period is counted.
    PeriodUnit {
        CalendarDays = "calendar_days",
    }
}

string_enum! {
    /// When the deadline clock starts.
    ClockStart {
        Receipt = "receipt",
        Verification = "verification",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub amount: u32,
    pub unit: PeriodUnit,
}

/// A named, versioned set of deadline rules. Each request records the pack name and
/// version it was filed under, so a later change of the pack never moves its deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct RulePack {
    pub name: &'static str,
    pub version: u32,
    pub time_zone: Tz,
    pub clock_start: ClockStart,
    pub default_period: Period,
    pub periods: &'static [(RequestKind, Period)],
}

/// The company promises an answer within 15 days (policy §六.8), counted from receipt,
/// the reading that can never make the company late.
pub const PIPL: RulePack = RulePack {
    name: "pipl",
    version: 1,
    time_zone: chrono_tz::Asia::Shanghai,
    clock_start: ClockStart::Receipt,
    default_period: Period {
        amount: 15,
        unit: PeriodUnit::CalendarDays,
    },
    periods: &[],
};

/// The packs this build knows, by name.
pub const PACKS: &[&RulePack] = &[&PIPL];

pub fn pack(name: &str) -> Option<&'static RulePack> {
    PACKS.iter().copied().find(|p| p.name == name)
}

impl RulePack {
    pub fn period(&self, kind: RequestKind) -> Period {
        self.periods
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| *p)
            .unwrap_or(self.default_period)
    }

    /// The local date of an instant in this pack's time zone.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.time_zone).date_naive()
    }

    /// The due date for a request of `kind` whose clock started at `clock_start`.
    /// The period starts on the day after (Civil Code art. 201) and ends at the end of
    /// its last day: received on 1 March with 15 calendar days, due by the end of 16 March.
    pub fn due_date(&self, kind: RequestKind, clock_start: DateTime<Utc>) -> NaiveDate {
        let start = self.local_date(clock_start);
        let period = self.period(kind);
        match period.unit {
            PeriodUnit::CalendarDays => start
                .checked_add_days(Days::new(u64::from(period.amount)))
                .unwrap_or(NaiveDate::MAX),
        }
    }

    /// Where a deadline stands at `now`.
    pub fn status(&self, due_date: NaiveDate, now: DateTime<Utc>) -> DeadlineStatus {
        let today = self.local_date(now);
        let days_left = (due_date - today).num_days();
        DeadlineStatus {
            due_date,
            days_left,
            overdue: today > due_date,
        }
    }
}

/// A deadline seen from one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeadlineStatus {
    pub due_date: NaiveDate,
    /// Whole local days until the due date; 0 on the due date, negative once overdue.
    pub days_left: i64,
    pub overdue: bool,
}

/// How an event changed a deadline, recorded with the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum DeadlineEffect {
    /// The clock started and the due date was set.
    Set { due_date: NaiveDate },
    /// The request left the open states; its deadline no longer runs.
    Stopped { due_date: NaiveDate },
    /// The clock runs again after a reopen, to the same due date.
    Resumed { due_date: NaiveDate },
    /// Nothing changed.
    None,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn received_on_1_march_is_due_by_the_end_of_16_march() {
        let due = PIPL.due_date(RequestKind::Access, utc(2026, 3, 1, 2, 0));
        assert_eq!(due, NaiveDate::from_ymd_opt(2026, 3, 16).unwrap());
    }

    #[test]
    fn the_local_date_decides_not_utc() {
        // 2026-02-28 17:00 UTC is 1 March 01:00 in Shanghai.
        let due = PIPL.due_date(RequestKind::Deletion, utc(2026, 2, 28, 17, 0));
        assert_eq!(due, NaiveDate::from_ymd_opt(2026, 3, 16).unwrap());
        // 15:59 UTC is still 28 February 23:59 in Shanghai.
        let due = PIPL.due_date(RequestKind::Deletion, utc(2026, 2, 28, 15, 59));
        assert_eq!(due, NaiveDate::from_ymd_opt(2026, 3, 15).unwrap());
    }

    #[test]
    fn days_left_and_overdue() {
        let due = NaiveDate::from_ymd_opt(2026, 3, 16).unwrap();
        let s = PIPL.status(due, utc(2026, 3, 1, 2, 0));
        assert_eq!((s.days_left, s.overdue), (15, false));
        // The last minute of 16 March in Shanghai is not yet late.
        let s = PIPL.status(due, utc(2026, 3, 16, 15, 59));
        assert_eq!((s.days_left, s.overdue), (0, false));
        let s = PIPL.status(due, utc(2026, 3, 16, 16, 0));
        assert_eq!((s.days_left, s.overdue), (-1, true));
    }

    #[test]
    fn packs_are_found_by_name() {
        assert_eq!(pack("pipl").map(|p| p.version), Some(1));
        assert!(pack("nope").is_none());
    }
}
