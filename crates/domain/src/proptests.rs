//! Property tests of the deadline maths ([`crate::deadlines`], [`crate::calendar`]).
//!
//! Every expectation is worked out here without the code under test: working days by
//! stepping a day at a time through the holiday table read straight from its CSV, months
//! by building the date from its year, month and day, local dates from the zones'
//! summer-time rules written out below. 256 cases a property (`PROPTEST_CASES` raises it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use proptest::prelude::*;

use crate::calendar::{self, DayType, WorkCalendar};
use crate::deadlines::{ExtensionRefused, Packs, Period, PeriodUnit, RulePack, pack, parse_pack};
use crate::kinds::RequestKind;

// ---- Oracles --------------------------------------------------------------------------

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a date")
}

/// The bundled packs, each also found by [`pack`] under its name.
static PACKS: LazyLock<Vec<RulePack>> = LazyLock::new(|| {
    let packs = Packs::bundled();
    let names = packs.names();
    let list: Vec<RulePack> = names
        .split(", ")
        .map(|name| {
            let p = packs.get(name).expect("a listed pack").clone();
            assert_eq!(pack(name), Some(&p), "pack({name}) is the bundled one");
            p
        })
        .collect();
    assert_eq!(names, "pipl, gdpr, ccpa");
    list
});

static CAL: LazyLock<WorkCalendar> = LazyLock::new(WorkCalendar::bundled);

/// The bundled holiday table as its CSV says it: date → holiday or make-up working day.
static TABLE: LazyLock<BTreeMap<NaiveDate, DayType>> = LazyLock::new(|| {
    calendar::parse_table(calendar::BUNDLED)
        .expect("the bundled table parses")
        .into_iter()
        .map(|s| (s.date, s.kind))
        .collect()
});

/// The years the bundled table covers: those it lists a day of.
static TABLE_YEARS: LazyLock<BTreeSet<i32>> =
    LazyLock::new(|| TABLE.keys().map(Datelike::year).collect());

/// Whether `table` makes `day` a working day: as listed, else Monday to Friday.
fn table_says_working(table: &BTreeMap<NaiveDate, DayType>, day: NaiveDate) -> bool {
    match table.get(&day) {
        Some(DayType::Holiday) => false,
        Some(DayType::Workday) => true,
        None => !matches!(day.weekday(), Weekday::Sat | Weekday::Sun),
    }
}

/// The days of (`from`, `to`]: the day after `from` up to `to` itself.
fn days_after(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days().skip(1).take_while(move |d| *d <= to)
}

/// How many of the days in (`from`, `to`] `table` makes working days.
fn working_days_in(table: &BTreeMap<NaiveDate, DayType>, from: NaiveDate, to: NaiveDate) -> u32 {
    let n = days_after(from, to)
        .filter(|d| table_says_working(table, *d))
        .count();
    u32::try_from(n).expect("a small count")
}

/// The years of the days in (`from`, `to`] that `covered` lacks.
fn uncovered_in(covered: &BTreeSet<i32>, from: NaiveDate, to: NaiveDate) -> BTreeSet<i32> {
    days_after(from, to)
        .map(|d| d.year())
        .filter(|y| !covered.contains(y))
        .collect()
}

/// `day` plus `n` calendar months: the same day of that month, or its last day when it
/// has none.
fn plus_months(day: NaiveDate, n: u32) -> NaiveDate {
    let months = day.year() * 12 + i32::try_from(day.month0()).expect("a month") + n as i32;
    let (y, m) = (months.div_euclid(12), months.rem_euclid(12) as u32 + 1);
    let last = (28..=31)
        .rev()
        .find(|&d| NaiveDate::from_ymd_opt(y, m, d).is_some())
        .expect("a month has 28 to 31 days");
    date(y, m, day.day().min(last))
}

/// `day` plus `period`, counting working days on the bundled table.
fn plus_period(day: NaiveDate, period: Period) -> NaiveDate {
    match period.unit {
        PeriodUnit::CalendarDays => day + Days::new(u64::from(period.amount)),
        PeriodUnit::Months => plus_months(day, period.amount),
        PeriodUnit::WorkingDays => {
            let mut left = period.amount;
            let mut d = day;
            while left > 0 {
                d = d.succ_opt().expect("a next day");
                if table_says_working(&TABLE, d) {
                    left -= 1;
                }
            }
            d
        }
    }
}

fn last_sunday(y: i32, m: u32) -> NaiveDate {
    let end = date(y, m, 31);
    end - Days::new(u64::from(end.weekday().num_days_from_sunday()))
}

fn at_utc(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    day.and_time(NaiveTime::from_hms_opt(hour, 0, 0).expect("a time"))
        .and_utc()
}

/// The offset of `zone` from UTC at `at`, in hours, by the rules in force since 2007 in the
/// zones of the bundled packs: China has no summer time; the EU's runs from 01:00 UTC on
/// the last Sunday of March to 01:00 UTC on the last Sunday of October; California's from
/// 02:00 PST on the second Sunday of March to 02:00 PDT on the first Sunday of November.
fn offset_hours(zone: Tz, at: DateTime<Utc>) -> i64 {
    let y = at.year();
    match zone.name() {
        "Asia/Shanghai" => 8,
        "Europe/Brussels" => {
            let summer = at_utc(last_sunday(y, 3), 1)..at_utc(last_sunday(y, 10), 1);
            if summer.contains(&at) { 2 } else { 1 }
        }
        "America/Los_Angeles" => {
            let sunday = |m, n| {
                NaiveDate::from_weekday_of_month_opt(y, m, Weekday::Sun, n).expect("a Sunday")
            };
            let summer = at_utc(sunday(3, 2), 10)..at_utc(sunday(11, 1), 9);
            if summer.contains(&at) { -7 } else { -8 }
        }
        other => panic!("no offset rules for {other}: write them here for the new pack"),
    }
}

/// The local date of `at` in `p`'s zone.
fn local(p: &RulePack, at: DateTime<Utc>) -> NaiveDate {
    (at + Duration::hours(offset_hours(p.time_zone, at))).date_naive()
}

/// The instant `day` ends in `p`'s zone (no zone of a bundled pack changes its offset
/// near midnight, so the offset at the UTC midnight of the next day is the one).
fn end_of(p: &RulePack, day: NaiveDate) -> DateTime<Utc> {
    let midnight = at_utc(day.succ_opt().expect("a next day"), 0);
    let end = midnight - Duration::hours(offset_hours(p.time_zone, midnight));
    assert_eq!(local(p, end), day.succ_opt().expect("a next day"));
    assert_eq!(local(p, end - Duration::seconds(1)), day);
    end
}

// ---- Strategies -----------------------------------------------------------------------

/// Any instant from `first` to `last` (UTC), to the second.
fn instant_between(first: NaiveDate, last: NaiveDate) -> impl Strategy<Value = DateTime<Utc>> {
    let first = at_utc(first, 0).timestamp();
    let last = at_utc(last.succ_opt().expect("a next day"), 0).timestamp() - 1;
    (first..=last).prop_map(|s| DateTime::from_timestamp(s, 0).expect("an instant"))
}

/// Any instant from 2020-01-01 to 2026-12-31, UTC.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    instant_between(date(2020, 1, 1), date(2026, 12, 31))
}

/// Like [`instant`], one time in four in December 2026: counts that run into 2027, a year
/// the bundled table does not cover.
fn instant_often_late_in_2026() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        3 => instant(),
        1 => instant_between(date(2026, 12, 1), date(2026, 12, 31)),
    ]
}

/// Any date from `first` to `last`.
fn date_between(first: NaiveDate, last: NaiveDate) -> impl Strategy<Value = NaiveDate> {
    let span = u64::try_from((last - first).num_days()).expect("first <= last");
    (0..=span).prop_map(move |i| first + Days::new(i))
}

/// A date from 2020 to 2026, one time in two among the last four days of a month.
fn a_day_often_at_a_month_end() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        date_between(date(2020, 1, 1), date(2026, 12, 31)),
        (2020..=2026i32, 1..=12u32, 0..4u64).prop_map(|(y, m, back)| {
            let first_of_next = if m == 12 {
                date(y + 1, 1, 1)
            } else {
                date(y, m + 1, 1)
            };
            first_of_next - Days::new(1 + back)
        }),
    ]
}

fn pack_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["pipl", "gdpr", "ccpa"])
}

fn kind() -> impl Strategy<Value = RequestKind> {
    prop::sample::select(RequestKind::ALL)
}

fn bundled(name: &str) -> &'static RulePack {
    PACKS
        .iter()
        .find(|p| p.name == name)
        .expect("a bundled pack")
}

/// A pack this build does not bundle, so that working-day extensions are tried too.
static WORKING_DAY_PACK: LazyLock<RulePack> = LazyLock::new(|| {
    parse_pack(
        "name = \"wd\"\nversion = 1\ntime_zone = \"Asia/Shanghai\"\nclock_start = \"receipt\"\n\
         default = { amount = 15, unit = \"working_days\" }\n\
         [extension]\nmax = { amount = 10, unit = \"working_days\" }\n\
         announce_within = { amount = 15, unit = \"working_days\" }\n",
    )
    .expect("a pack")
});

/// A bundled pack, or the working-day test pack.
fn any_pack() -> impl Strategy<Value = &'static RulePack> {
    prop_oneof![
        3 => pack_name().prop_map(bundled),
        1 => Just(&*WORKING_DAY_PACK),
    ]
}

/// A holiday table for 2030–2032 covering some of those years, with runs of up to three
/// weeks of holidays or make-up working days (a later run overwrites an earlier one).
fn any_table() -> impl Strategy<Value = (BTreeMap<NaiveDate, DayType>, BTreeSet<i32>)> {
    let base = date(2030, 1, 1);
    (
        prop::collection::btree_set(2030..=2032i32, 0..=3),
        prop::collection::vec((0..1096u64, 1..=21u64, any::<bool>()), 0..=40),
    )
        .prop_map(move |(years, runs)| {
            let mut table = BTreeMap::new();
            for (start, len, holiday) in runs {
                for i in 0..len {
                    let day = base + Days::new(start + i);
                    if years.contains(&day.year()) {
                        let kind = if holiday {
                            DayType::Holiday
                        } else {
                            DayType::Workday
                        };
                        table.insert(day, kind);
                    }
                }
            }
            (table, years)
        })
}

// ---- Properties -----------------------------------------------------------------------

proptest! {
    #[test]
    fn the_local_date_follows_the_packs_zone_and_its_summer_time(
        name in pack_name(),
        at in instant(),
    ) {
        let p = bundled(name);
        prop_assert_eq!(p.local_date(at), local(p, at));
    }

    #[test]
    fn a_due_date_is_never_before_its_clock_start_and_is_exactly_one_period_after_its_local_date(
        at in instant_often_late_in_2026(),
    ) {
        for p in PACKS.iter() {
            let start = local(p, at);
            for &kind in RequestKind::ALL {
                let period = p.period(kind);
                let due = p.due_date(kind, at, &CAL);
                let ctx = format!("{} {kind} {at} (local {start}): {}", p.name, due.date);
                prop_assert!(due.date >= start, "{}", ctx);
                if period.amount > 0 {
                    prop_assert!(due.date > start, "{}", ctx);
                }
                // Due by the end of the due date, which ends after the clock started.
                prop_assert!(end_of(p, due.date) > at, "{}", ctx);
                let s = p.status(due.date, at);
                prop_assert!(!s.overdue, "{}", ctx);
                prop_assert_eq!(s.days_left, (due.date - start).num_days(), "{}", ctx);
                match period.unit {
                    PeriodUnit::CalendarDays => {
                        prop_assert_eq!(
                            (due.date - start).num_days(),
                            i64::from(period.amount),
                            "{}",
                            ctx
                        );
                        prop_assert!(due.uncovered_years.is_empty(), "{}", ctx);
                    }
                    PeriodUnit::Months => {
                        prop_assert_eq!(due.date, plus_months(start, period.amount), "{}", ctx);
                        prop_assert!(due.uncovered_years.is_empty(), "{}", ctx);
                    }
                    PeriodUnit::WorkingDays => {
                        prop_assert_eq!(
                            working_days_in(&TABLE, start, due.date),
                            period.amount,
                            "{}",
                            ctx
                        );
                        prop_assert!(table_says_working(&TABLE, due.date), "{}", ctx);
                        let expected: Vec<i32> =
                            uncovered_in(&TABLE_YEARS, start, due.date).into_iter().collect();
                        prop_assert_eq!(&due.uncovered_years, &expected, "{}", ctx);
                    }
                }
            }
        }
    }

    /// `after_pause` moves the due date "by the paused time in the unit of `kind`'s period
    /// (whole local days, or the working days in between)": for calendar days and months,
    /// by the number of local days from the pause's date to the resume's; for working days,
    /// by the working days in (pause date, resume date], the new due date being the date
    /// that many working days after the old one. It reports the number it moved by.
    #[test]
    fn a_pause_moves_the_due_date_by_exactly_the_paused_days_or_working_days(
        at in instant_often_late_in_2026(),
        into_the_period in 0..=30 * 86_400i64,
        length in prop_oneof![0..=2 * 86_400i64, 0..=60 * 86_400i64],
    ) {
        let paused_at = at + Duration::seconds(into_the_period);
        let resumed_at = paused_at + Duration::seconds(length);
        for p in PACKS.iter() {
            let (from, to) = (local(p, paused_at), local(p, resumed_at));
            for &kind in RequestKind::ALL {
                let due = p.due_date(kind, at, &CAL).date;
                let (moved, paused) = p.after_pause(kind, due, paused_at, resumed_at, &CAL);
                let ctx = format!(
                    "{} {kind}: due {due}, paused {from} to {to}: {} ({paused})",
                    p.name, moved.date
                );
                match p.period(kind).unit {
                    PeriodUnit::CalendarDays | PeriodUnit::Months => {
                        prop_assert_eq!(i64::from(paused), (to - from).num_days(), "{}", ctx);
                        prop_assert_eq!((moved.date - due).num_days(), i64::from(paused), "{}", ctx);
                        prop_assert!(moved.uncovered_years.is_empty(), "{}", ctx);
                    }
                    PeriodUnit::WorkingDays => {
                        prop_assert_eq!(paused, working_days_in(&TABLE, from, to), "{}", ctx);
                        prop_assert_eq!(
                            working_days_in(&TABLE, due, moved.date),
                            paused,
                            "{}",
                            ctx
                        );
                        if paused == 0 {
                            prop_assert_eq!(moved.date, due, "{}", ctx);
                        } else {
                            prop_assert!(table_says_working(&TABLE, moved.date), "{}", ctx);
                        }
                        // The years guessed: those of the days looked at, in the pause and
                        // in the move, that the table does not cover.
                        let mut guessed = uncovered_in(&TABLE_YEARS, from, to);
                        guessed.extend(uncovered_in(&TABLE_YEARS, due, moved.date));
                        let guessed: Vec<i32> = guessed.into_iter().collect();
                        prop_assert_eq!(&moved.uncovered_years, &guessed, "{}", ctx);
                    }
                }
            }
        }
    }

    #[test]
    fn working_days_skip_every_holiday_and_count_every_make_up_day(
        from in date_between(date(2020, 1, 1), date(2026, 12, 31)),
        n in prop_oneof![0..=20u32, 0..=120u32],
    ) {
        let counted = CAL.add_working_days(from, n);
        let due = counted.date;
        prop_assert_eq!(working_days_in(&TABLE, from, due), n, "{} + {} = {}", from, n, due);
        if n == 0 {
            prop_assert_eq!(due, from);
        } else {
            prop_assert!(CAL.is_working_day(due), "{} + {} = {}", from, n, due);
            prop_assert!(table_says_working(&TABLE, due), "{} + {} = {}", from, n, due);
            prop_assert_ne!(TABLE.get(&due), Some(&DayType::Holiday), "{} + {} = {}", from, n, due);
        }
        prop_assert_eq!(counted.uncovered_years, uncovered_in(&TABLE_YEARS, from, due));
    }

    #[test]
    fn a_day_is_a_working_day_exactly_when_the_table_or_else_the_week_says_so(
        day in date_between(date(2019, 1, 1), date(2028, 12, 31)),
    ) {
        prop_assert_eq!(CAL.is_working_day(day), table_says_working(&TABLE, day), "{}", day);
    }

    #[test]
    fn on_any_holiday_table_working_days_skip_its_holidays_and_count_its_make_up_days(
        (table, years) in any_table(),
        from in date_between(date(2029, 12, 1), date(2032, 12, 31)),
        n in 0..=80u32,
    ) {
        let cal = WorkCalendar::new(table.iter().map(|(d, k)| (*d, *k)), years.clone());
        let counted = cal.add_working_days(from, n);
        let due = counted.date;
        prop_assert_eq!(working_days_in(&table, from, due), n, "{} + {} = {}", from, n, due);
        if n == 0 {
            prop_assert_eq!(due, from);
        } else {
            prop_assert!(table_says_working(&table, due), "{} + {} = {}", from, n, due);
            prop_assert_ne!(table.get(&due), Some(&DayType::Holiday));
        }
        prop_assert_eq!(counted.uncovered_years, uncovered_in(&years, from, due));
    }

    #[test]
    fn gdpr_gives_the_same_day_next_month_or_its_last_day_and_extends_by_months_likewise(
        start in a_day_often_at_a_month_end(),
        seconds_into_the_day in 0..86_400i64,
        extension in 1..=2u32,
    ) {
        let gdpr = bundled("gdpr");
        // The instant of that local time in Brussels (by the rules above, not chrono-tz).
        let naive = start.and_time(NaiveTime::MIN) + Duration::seconds(seconds_into_the_day);
        let guess = naive.and_utc() - Duration::hours(offset_hours(gdpr.time_zone, naive.and_utc()));
        let at = naive.and_utc() - Duration::hours(offset_hours(gdpr.time_zone, guess));
        // The hour skipped or repeated by a change of clocks is not a real local time.
        prop_assume!(local(gdpr, at) == start);

        let next = plus_months(start, 1);
        let due = gdpr.due_date(RequestKind::Access, at, &CAL).date;
        prop_assert_eq!(due, next, "{}", start);
        prop_assert_eq!(
            (due.year() * 12 + due.month0() as i32) - (start.year() * 12 + start.month0() as i32),
            1
        );
        let month_end = next.succ_opt().expect("a next day").month() != next.month();
        prop_assert!(next.day() == start.day() || (month_end && next.day() < start.day()));

        // Extended within the first month: by months from the due date, in one go or in parts.
        let extended = gdpr.extend(due, at, at, 0, Some(extension), &CAL);
        prop_assert_eq!(extended, Ok((plus_months(due, extension), extension)));
        let once = gdpr.extend(due, at, at, 0, Some(1), &CAL);
        prop_assert_eq!(once, Ok((plus_months(due, 1), 1)));
        let twice = gdpr.extend(plus_months(due, 1), at, at, 1, Some(1), &CAL);
        prop_assert_eq!(twice, Ok((plus_months(plus_months(due, 1), 1), 1)));
    }

    #[test]
    fn an_extension_is_refused_or_moves_the_due_date_later_but_never_past_the_packs_limit(
        (p, used, amount) in any_pack().prop_flat_map(|p| {
            let max = p.extension.map_or(0, |e| e.max.amount);
            (Just(p), 0..=max + 1, prop::option::of(0..=max + 1))
        }),
        kind in kind(),
        at in instant(),
        asked_after in 0..=60 * 86_400i64,
    ) {
        let now = at + Duration::seconds(asked_after);
        let due = p.due_date(kind, at, &CAL).date;
        let result = p.extend(due, at, now, used, amount, &CAL);
        let ctx = format!("{} {kind}: due {due}, used {used}, amount {amount:?}", p.name);
        let Some(rule) = p.extension else {
            prop_assert_eq!(result, Err(ExtensionRefused::NotAllowed), "{}", ctx);
            return Ok(());
        };
        let left = rule.max.amount.saturating_sub(used);
        let wanted = amount.unwrap_or(left);
        let last = rule.announce_within.map(|w| plus_period(local(p, at), w));
        if wanted == 0 || wanted > left {
            prop_assert_eq!(
                result,
                Err(ExtensionRefused::LimitExceeded { max: rule.max.amount, used }),
                "{}",
                ctx
            );
        } else if let Some(last) = last.filter(|last| local(p, now) > *last) {
            prop_assert_eq!(result, Err(ExtensionRefused::TooLate { deadline: last }), "{}", ctx);
        } else {
            let limit = plus_period(due, Period { amount: left, unit: rule.max.unit });
            let (date, granted) = result.map_err(|e| TestCaseError::fail(format!("{ctx}: {e}")))?;
            prop_assert_eq!(granted, wanted, "{}", ctx);
            prop_assert!(date > due, "{}: {}", ctx, date);
            prop_assert!(date <= limit, "{}: {} after {}", ctx, date, limit);
            prop_assert_eq!(
                date,
                plus_period(due, Period { amount: granted, unit: rule.max.unit }),
                "{}",
                ctx
            );
        }
    }

    #[test]
    fn extensions_in_parts_never_add_up_to_more_than_the_packs_limit(
        p in prop_oneof![
            prop::sample::select(vec!["gdpr", "ccpa"]).prop_map(bundled),
            Just(&*WORKING_DAY_PACK),
        ],
        kind in kind(),
        at in instant(),
        parts in prop::collection::vec(prop::option::of(1..=50u32), 1..=6),
    ) {
        let rule = p.extension.expect("a pack with extensions");
        let original = p.due_date(kind, at, &CAL).date;
        let (mut due, mut used) = (original, 0u32);
        for part in parts {
            match p.extend(due, at, at, used, part, &CAL) {
                Ok((later, granted)) => {
                    prop_assert!(later > due);
                    prop_assert!(granted >= 1);
                    due = later;
                    used += granted;
                }
                Err(ExtensionRefused::LimitExceeded { .. }) => {
                    // Asked for more than is left, or nothing is left.
                    let left = rule.max.amount - used;
                    prop_assert!(part.is_some_and(|n| n > left) || left == 0);
                }
                Err(e) => return Err(TestCaseError::fail(format!("{}: {e}", p.name))),
            }
        }
        prop_assert!(used <= rule.max.amount);
        let limit = plus_period(original, rule.max);
        prop_assert!(due <= limit, "{} {}: {} after {}", p.name, original, due, limit);
        if rule.max.unit != PeriodUnit::Months {
            // Days add up; months clamped at a month's end may fall short of the limit.
            prop_assert_eq!(due, plus_period(original, Period { amount: used, unit: rule.max.unit }));
        }
    }

    #[test]
    fn a_request_is_overdue_exactly_once_its_due_date_has_ended_in_the_packs_zone(
        name in pack_name(),
        due in date_between(date(2020, 1, 1), date(2027, 3, 31)),
        now in prop_oneof![
            instant().prop_map(Some),
            Just(None),
        ],
        near in -3 * 86_400..=3 * 86_400i64,
    ) {
        let p = bundled(name);
        let now = now.unwrap_or_else(|| end_of(p, due) + Duration::seconds(near));
        let s = p.status(due, now);
        prop_assert_eq!(s.due_date, due);
        prop_assert_eq!(s.days_left, (due - local(p, now)).num_days());
        prop_assert_eq!(s.overdue, now >= end_of(p, due), "{} at {}", due, now);
        prop_assert_eq!(s.overdue, s.days_left < 0);
    }
}
