//! Deadline maths (SPEC §4). Everything takes the current time as an argument; a due
//! date is a local date in the pack's time zone, and a request is due by the end of it.
//!
//! A [`RulePack`] is data: a period per request kind, a clock start, a time zone.
//! Periods count calendar days or working days (on a [`WorkCalendar`]). Other packs,
//! pauses and extensions extend [`PeriodUnit`], [`RulePack`] and [`DeadlineEffect`].

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::WorkCalendar;
use crate::kinds::{RequestKind, string_enum};

string_enum! {
    /// How a period is counted: calendar days, working days (on the holiday table's
    /// calendar), or calendar months (to the same day of the month, or the month's last
    /// day when it has none: 31 January + 1 month = the end of February).
    PeriodUnit {
        CalendarDays = "calendar_days",
        WorkingDays = "working_days",
        Months = "months",
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
#[serde(deny_unknown_fields)]
pub struct Period {
    pub amount: u32,
    pub unit: PeriodUnit,
}

/// How far a pack lets the DPO extend a deadline, and until when it must be announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionRule {
    pub max: Period,
    /// Counted from the clock start: after this, no extension may be announced.
    pub announce_within: Option<Period>,
}

/// A named, versioned set of deadline rules, read from a TOML file (`packs/<name>.toml`
/// in this crate). Each request records the pack name and version it was filed under,
/// so a later change of the pack never moves its deadline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulePack {
    pub name: String,
    pub version: u32,
    pub time_zone: Tz,
    pub clock_start: ClockStart,
    #[serde(rename = "default")]
    pub default_period: Period,
    /// Periods of kinds that differ from the default.
    #[serde(default)]
    pub periods: HashMap<RequestKind, Period>,
    pub extension: Option<ExtensionRule>,
}

/// The packs bundled with this build, by file.
const BUNDLED: &[(&str, &str)] = &[
    ("pipl.toml", include_str!("../packs/pipl.toml")),
    ("gdpr.toml", include_str!("../packs/gdpr.toml")),
    ("ccpa.toml", include_str!("../packs/ccpa.toml")),
];

/// Reads a pack file.
pub fn parse_pack(text: &str) -> Result<RulePack, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

static PACKS: LazyLock<Vec<RulePack>> = LazyLock::new(|| {
    BUNDLED
        .iter()
        .map(|(file, text)| {
            parse_pack(text).unwrap_or_else(|e| panic!("bundled pack {file} is invalid: {e}"))
        })
        .collect()
});

/// The packs a service uses: the bundled ones, replaced or joined by the operator's.
#[derive(Debug, Clone, PartialEq)]
pub struct Packs(Vec<RulePack>);

impl Packs {
    pub fn bundled() -> Self {
        Self(PACKS.clone())
    }

    /// The bundled packs with `files` (name, TOML text) over them: a pack of the same
    /// name replaces the bundled one, others are added. Every problem is reported.
    pub fn with_overrides(files: &[(String, String)]) -> Result<Self, Vec<String>> {
        let mut packs = PACKS.clone();
        let mut problems = Vec::new();
        for (file, text) in files {
            match parse_pack(text) {
                Ok(p) => match packs.iter_mut().find(|q| q.name == p.name) {
                    Some(q) => *q = p,
                    None => packs.push(p),
                },
                Err(e) => problems.push(format!("{file}: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(Self(packs))
        } else {
            Err(problems)
        }
    }

    pub fn get(&self, name: &str) -> Option<&RulePack> {
        self.0.iter().find(|p| p.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &RulePack> {
        self.0.iter()
    }

    /// `pipl, gdpr, ccpa`, for messages.
    pub fn names(&self) -> String {
        self.0
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The bundled pack called `name` (a service looks packs up in its [`Packs`]).
pub fn pack(name: &str) -> Option<&'static RulePack> {
    PACKS.iter().find(|p| p.name == name)
}

/// The `pipl` pack: the default, and the fallback for a name this build no longer knows.
pub fn pipl() -> &'static RulePack {
    pack("pipl").unwrap_or_else(|| &PACKS[0])
}

impl RulePack {
    pub fn period(&self, kind: RequestKind) -> Period {
        self.periods
            .get(&kind)
            .copied()
            .unwrap_or(self.default_period)
    }

    /// The local date of an instant in this pack's time zone.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.time_zone).date_naive()
    }

    /// The due date for a request of `kind` whose clock started at `clock_start`.
    /// The period starts on the day after (Civil Code art. 201) and ends at the end of
    /// its last day: received on 1 March with 15 calendar days, due by the end of 16 March.
    /// Working days are counted on `calendar`; the answer names the years it does not
    /// cover, counted with weekends only, for the caller to warn about.
    pub fn due_date(
        &self,
        kind: RequestKind,
        clock_start: DateTime<Utc>,
        calendar: &WorkCalendar,
    ) -> Due {
        let start = self.local_date(clock_start);
        let period = self.period(kind);
        match period.unit {
            PeriodUnit::CalendarDays => Due {
                date: start
                    .checked_add_days(Days::new(u64::from(period.amount)))
                    .unwrap_or(NaiveDate::MAX),
                uncovered_years: Vec::new(),
            },
            PeriodUnit::WorkingDays => {
                let counted = calendar.add_working_days(start, period.amount);
                Due {
                    date: counted.date,
                    uncovered_years: counted.uncovered_years.into_iter().collect(),
                }
            }
            PeriodUnit::Months => Due {
                date: start
                    .checked_add_months(Months::new(period.amount))
                    .unwrap_or(NaiveDate::MAX),
                uncovered_years: Vec::new(),
            },
        }
    }

    /// The unit in which a pause moves `kind`'s due date ([`RulePack::after_pause`]):
    /// working days for a period of working days, calendar days otherwise (a period of
    /// months moves by the days the clock stood still).
    pub fn pause_unit(&self, kind: RequestKind) -> PeriodUnit {
        match self.period(kind).unit {
            PeriodUnit::WorkingDays => PeriodUnit::WorkingDays,
            PeriodUnit::CalendarDays | PeriodUnit::Months => PeriodUnit::CalendarDays,
        }
    }

    /// The due date after a pause of the clock from `paused_at` to `resumed_at`: moved by
    /// the paused time in the unit of `kind`'s period (whole local days, or the working
    /// days in between), with how much it moved.
    pub fn after_pause(
        &self,
        kind: RequestKind,
        due_date: NaiveDate,
        paused_at: DateTime<Utc>,
        resumed_at: DateTime<Utc>,
        calendar: &WorkCalendar,
    ) -> (Due, u32) {
        let from = self.local_date(paused_at);
        let to = self.local_date(resumed_at);
        let period = self.period(kind);
        match period.unit {
            // A pause in a period of months moves it by the days it stood still.
            PeriodUnit::CalendarDays | PeriodUnit::Months => {
                let days = u32::try_from((to - from).num_days().max(0)).unwrap_or(u32::MAX);
                let date = due_date
                    .checked_add_days(Days::new(u64::from(days)))
                    .unwrap_or(NaiveDate::MAX);
                (
                    Due {
                        date,
                        uncovered_years: Vec::new(),
                    },
                    days,
                )
            }
            PeriodUnit::WorkingDays => {
                // The days counted are those after `from` up to `to`: only their years
                // can have been guessed (not `from`'s, nor any of a pause within a day).
                let mut paused = 0u32;
                let mut guessed = BTreeSet::new();
                let mut day = from;
                while day < to {
                    let Some(next) = day.succ_opt() else { break };
                    day = next;
                    if !calendar.covers(day.year()) {
                        guessed.insert(day.year());
                    }
                    if calendar.is_working_day(day) {
                        paused += 1;
                    }
                }
                let counted = calendar.add_working_days(due_date, paused);
                guessed.extend(counted.uncovered_years);
                (
                    Due {
                        date: counted.date,
                        uncovered_years: guessed.into_iter().collect(),
                    },
                    paused,
                )
            }
        }
    }

    /// The due date after an extension by `amount` (the rest of the pack's limit when
    /// `None`) in the extension's unit, asked for at `now`, when `used` units were granted
    /// before; with the amount granted. Refused when the pack allows none, when the
    /// limit would be passed, or when the time to announce one is over.
    pub fn extend(
        &self,
        due_date: NaiveDate,
        clock_start: DateTime<Utc>,
        now: DateTime<Utc>,
        used: u32,
        amount: Option<u32>,
        calendar: &WorkCalendar,
    ) -> Result<(NaiveDate, u32), ExtensionRefused> {
        let rule = self.extension.ok_or(ExtensionRefused::NotAllowed)?;
        let left = rule.max.amount.saturating_sub(used);
        let amount = amount.unwrap_or(left);
        if amount == 0 || amount > left {
            return Err(ExtensionRefused::LimitExceeded {
                max: rule.max.amount,
                used,
            });
        }
        if let Some(within) = rule.announce_within {
            let last = self.add(self.local_date(clock_start), within, calendar);
            if self.local_date(now) > last {
                return Err(ExtensionRefused::TooLate { deadline: last });
            }
        }
        let unit = Period {
            amount,
            unit: rule.max.unit,
        };
        Ok((self.add(due_date, unit, calendar), amount))
    }

    /// `date` plus `period`.
    fn add(&self, date: NaiveDate, period: Period, calendar: &WorkCalendar) -> NaiveDate {
        match period.unit {
            PeriodUnit::CalendarDays => date.checked_add_days(Days::new(u64::from(period.amount))),
            PeriodUnit::WorkingDays => Some(calendar.add_working_days(date, period.amount).date),
            PeriodUnit::Months => date.checked_add_months(Months::new(period.amount)),
        }
        .unwrap_or(NaiveDate::MAX)
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

/// Why a deadline cannot be extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionRefused {
    #[error("this rule pack allows no extension")]
    NotAllowed,
    #[error("the extension would pass the pack's limit of {max} ({used} already granted)")]
    LimitExceeded { max: u32, used: u32 },
    #[error("an extension had to be announced by {deadline}")]
    TooLate { deadline: NaiveDate },
}

/// A computed due date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub date: NaiveDate,
    /// Years the working-day calendar does not cover that the count ran through.
    pub uncovered_years: Vec<i32>,
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
    /// The clock stopped: the request waits for its requester.
    Paused { due_date: NaiveDate },
    /// The DPO extended the deadline by `amount` units.
    Extended {
        due_date: NaiveDate,
        amount: u32,
        unit: PeriodUnit,
    },
    /// The clock runs again after a pause; the due date moved by `paused` units.
    PauseEnded {
        due_date: NaiveDate,
        paused: u32,
        unit: PeriodUnit,
    },
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

    fn due(kind: RequestKind, at: DateTime<Utc>) -> NaiveDate {
        pipl().due_date(kind, at, &WorkCalendar::bundled()).date
    }

    #[test]
    fn received_on_1_march_is_due_by_the_end_of_16_march() {
        let due = due(RequestKind::Access, utc(2026, 3, 1, 2, 0));
        assert_eq!(due, NaiveDate::from_ymd_opt(2026, 3, 16).unwrap());
    }

    #[test]
    fn the_local_date_decides_not_utc() {
        // 2026-02-28 17:00 UTC is 1 March 01:00 in Shanghai.
        let due1 = due(RequestKind::Deletion, utc(2026, 2, 28, 17, 0));
        assert_eq!(due1, NaiveDate::from_ymd_opt(2026, 3, 16).unwrap());
        // 15:59 UTC is still 28 February 23:59 in Shanghai.
        let due2 = due(RequestKind::Deletion, utc(2026, 2, 28, 15, 59));
        assert_eq!(due2, NaiveDate::from_ymd_opt(2026, 3, 15).unwrap());
    }

    #[test]
    fn closures_enquiries_and_complaints_get_fifteen_working_days() {
        // Received Friday 13 February 2026: the Spring Festival break (15–23 Feb) does
        // not count, the make-up Saturdays (14 and 28 Feb) do: 14, 24–28 Feb, 2–6 and
        // 9–12 Mar.
        let at = utc(2026, 2, 13, 2, 0);
        for kind in [
            RequestKind::AccountClosure,
            RequestKind::Explanation,
            RequestKind::Complaint,
        ] {
            assert_eq!(
                due(kind, at),
                NaiveDate::from_ymd_opt(2026, 3, 12).unwrap(),
                "{kind}"
            );
        }
        assert_eq!(
            due(RequestKind::Access, at),
            NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
        );
    }

    #[test]
    fn a_working_day_count_into_an_uncovered_year_says_so() {
        let d = pipl().due_date(
            RequestKind::Complaint,
            utc(2026, 12, 20, 2, 0),
            &WorkCalendar::bundled(),
        );
        assert_eq!(d.uncovered_years, [2027]);
        assert_eq!(d.date, NaiveDate::from_ymd_opt(2027, 1, 8).unwrap());
        let d = pipl().due_date(
            RequestKind::Access,
            utc(2026, 12, 20, 2, 0),
            &WorkCalendar::bundled(),
        );
        assert!(d.uncovered_years.is_empty());
    }

    #[test]
    fn days_left_and_overdue() {
        let due = NaiveDate::from_ymd_opt(2026, 3, 16).unwrap();
        let s = pipl().status(due, utc(2026, 3, 1, 2, 0));
        assert_eq!((s.days_left, s.overdue), (15, false));
        // The last minute of 16 March in Shanghai is not yet late.
        let s = pipl().status(due, utc(2026, 3, 16, 15, 59));
        assert_eq!((s.days_left, s.overdue), (0, false));
        let s = pipl().status(due, utc(2026, 3, 16, 16, 0));
        assert_eq!((s.days_left, s.overdue), (-1, true));
    }

    #[test]
    fn a_pause_moves_the_due_date_by_exactly_the_paused_time() {
        let cal = WorkCalendar::bundled();
        let due = NaiveDate::from_ymd_opt(2026, 3, 16).unwrap();
        // Calendar days: paused on 5 March, resumed on 9 March (local): 4 days.
        let (d, n) = pipl().after_pause(
            RequestKind::Access,
            due,
            utc(2026, 3, 5, 2, 0),
            utc(2026, 3, 9, 9, 0),
            &cal,
        );
        assert_eq!(
            (d.date, n),
            (NaiveDate::from_ymd_opt(2026, 3, 20).unwrap(), 4)
        );
        // Resumed the same day: nothing moves.
        let (d, n) = pipl().after_pause(
            RequestKind::Access,
            due,
            utc(2026, 3, 5, 2, 0),
            utc(2026, 3, 5, 9, 0),
            &cal,
        );
        assert_eq!((d.date, n), (due, 0));
        // Working days: paused Friday 13 Feb 2026, resumed Wednesday 25 Feb: the
        // make-up Saturday 14, Tuesday 24 and Wednesday 25 are 3 working days.
        let due = NaiveDate::from_ymd_opt(2026, 3, 12).unwrap();
        let (d, n) = pipl().after_pause(
            RequestKind::Complaint,
            due,
            utc(2026, 2, 13, 2, 0),
            utc(2026, 2, 25, 2, 0),
            &cal,
        );
        assert_eq!(n, 3);
        assert_eq!(d.date, NaiveDate::from_ymd_opt(2026, 3, 17).unwrap());
        assert!(d.uncovered_years.is_empty());
    }

    #[test]
    fn a_pause_warns_only_of_the_uncovered_years_of_the_days_it_counted() {
        let cal = WorkCalendar::bundled();
        let due = NaiveDate::from_ymd_opt(2026, 12, 25).unwrap();
        // Paused and resumed on 1 January 2027, a year the table does not cover: no day
        // was counted, so nothing was guessed.
        let (d, n) = pipl().after_pause(
            RequestKind::Complaint,
            due,
            utc(2026, 12, 31, 17, 0),
            utc(2027, 1, 1, 9, 0),
            &cal,
        );
        assert_eq!((d.date, n, d.uncovered_years), (due, 0, vec![]));
        // Paused on Thursday 31 December, resumed Tuesday 5 January 2027: Friday 1, Monday
        // 4 and Tuesday 5 January counted with weekends only.
        let (d, n) = pipl().after_pause(
            RequestKind::Complaint,
            due,
            utc(2026, 12, 31, 2, 0),
            utc(2027, 1, 5, 2, 0),
            &cal,
        );
        assert_eq!(n, 3);
        assert_eq!(d.date, NaiveDate::from_ymd_opt(2026, 12, 30).unwrap());
        assert_eq!(d.uncovered_years, [2027]);
    }

    #[test]
    fn pauses_of_any_length_move_calendar_days_by_exactly_their_length() {
        let cal = WorkCalendar::bundled();
        let due = NaiveDate::from_ymd_opt(2026, 3, 16).unwrap();
        for days in 0..60 {
            let paused = utc(2026, 3, 2, 2, 0);
            let resumed = paused + chrono::Duration::days(days);
            let (d, n) = pipl().after_pause(RequestKind::Deletion, due, paused, resumed, &cal);
            assert_eq!(i64::from(n), days);
            assert_eq!((d.date - due).num_days(), days);
        }
    }

    #[test]
    fn a_pause_moves_months_by_calendar_days_and_working_days_by_working_days() {
        let gdpr = pack("gdpr").expect("the gdpr pack");
        assert_eq!(gdpr.period(RequestKind::Access).unit, PeriodUnit::Months);
        assert_eq!(
            gdpr.pause_unit(RequestKind::Access),
            PeriodUnit::CalendarDays
        );
        assert_eq!(
            pipl().pause_unit(RequestKind::Access),
            PeriodUnit::CalendarDays
        );
        assert_eq!(
            pipl().pause_unit(RequestKind::Complaint),
            PeriodUnit::WorkingDays
        );
    }

    #[test]
    fn packs_are_found_by_name() {
        assert_eq!(pack("pipl").map(|p| p.version), Some(2));
        assert!(pack("nope").is_none());
        assert_eq!(Packs::bundled().names(), "pipl, gdpr, ccpa");
    }

    #[test]
    fn gdpr_counts_calendar_months_and_ccpa_45_days() {
        let cal = WorkCalendar::bundled();
        let gdpr = pack("gdpr").unwrap();
        let at = |y, m, d| utc(y, m, d, 10, 0);
        let due = |p: &RulePack, t| p.due_date(RequestKind::Access, t, &cal).date;
        assert_eq!(
            due(gdpr, at(2026, 3, 10)),
            NaiveDate::from_ymd_opt(2026, 4, 10).unwrap()
        );
        // 31 January + 1 month is the last day of February.
        assert_eq!(
            due(gdpr, at(2026, 1, 31)),
            NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
        );
        assert_eq!(
            due(gdpr, at(2028, 1, 31)),
            NaiveDate::from_ymd_opt(2028, 2, 29).unwrap()
        );
        assert_eq!(gdpr.extension.map(|e| e.max.amount), Some(2));
        let ccpa = pack("ccpa").unwrap();
        assert_eq!(
            due(ccpa, at(2026, 3, 10)),
            NaiveDate::from_ymd_opt(2026, 4, 24).unwrap()
        );
        assert_eq!(pipl().extension, None);
    }

    #[test]
    fn extensions_follow_the_pack() {
        let cal = WorkCalendar::bundled();
        let received = utc(2026, 3, 10, 10, 0);
        let due = NaiveDate::from_ymd_opt(2026, 4, 10).unwrap();
        let gdpr = pack("gdpr").unwrap();
        // Within the first month, up to two more months, in one go or in parts.
        assert_eq!(
            gdpr.extend(due, received, utc(2026, 4, 1, 10, 0), 0, None, &cal),
            Ok((NaiveDate::from_ymd_opt(2026, 6, 10).unwrap(), 2))
        );
        assert_eq!(
            gdpr.extend(due, received, utc(2026, 4, 1, 10, 0), 0, Some(1), &cal),
            Ok((NaiveDate::from_ymd_opt(2026, 5, 10).unwrap(), 1))
        );
        assert_eq!(
            gdpr.extend(due, received, utc(2026, 4, 1, 10, 0), 1, Some(2), &cal),
            Err(ExtensionRefused::LimitExceeded { max: 2, used: 1 })
        );
        assert_eq!(
            gdpr.extend(due, received, utc(2026, 4, 11, 10, 0), 0, None, &cal),
            Err(ExtensionRefused::TooLate {
                deadline: NaiveDate::from_ymd_opt(2026, 4, 10).unwrap()
            })
        );
        assert_eq!(
            pipl().extend(due, received, received, 0, None, &cal),
            Err(ExtensionRefused::NotAllowed)
        );
        let ccpa = pack("ccpa").unwrap();
        assert_eq!(
            ccpa.extend(due, received, received, 0, None, &cal),
            Ok((NaiveDate::from_ymd_opt(2026, 5, 25).unwrap(), 45))
        );
    }

    #[test]
    fn a_pack_file_is_checked() {
        assert!(parse_pack("name = \"x\"").is_err());
        let bad_unit = "name = \"x\"\nversion = 1\ntime_zone = \"Asia/Shanghai\"\nclock_start = \"receipt\"\ndefault = { amount = 1, unit = \"fortnights\" }";
        assert!(parse_pack(bad_unit).is_err());
        let bad_zone = bad_unit
            .replace("fortnights", "calendar_days")
            .replace("Asia/Shanghai", "Mars/Olympus");
        assert!(parse_pack(&bad_zone).is_err());
        let good = bad_unit.replace("fortnights", "calendar_days");
        assert_eq!(parse_pack(&good).map(|p| p.default_period.amount), Ok(1));
    }
}
