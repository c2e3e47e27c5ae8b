//! Working days on the mainland China calendar (SPEC §4): Monday to Friday, except the
//! public holidays, plus the weekend days worked in their place (调休). The special days
//! come from a table operators can extend (`rightsdesk holidays import`), seeded from
//! [`BUNDLED`] for 2020–2026. For a year the table does not cover, only weekends count
//! as days off, and the answer says which years were guessed so that the caller can
//! warn an operator; nothing here panics.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, NaiveDate, Weekday};

use crate::kinds::string_enum;

/// The bundled table: `date,kind,name`, one line per special day, `#` comments.
pub const BUNDLED: &str = include_str!("../data/holidays-cn.csv");

string_enum! {
    /// How a special day differs from the usual week.
    DayType {
        Holiday = "holiday",
        Workday = "workday",
    }
}

/// One line of a holiday table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialDay {
    pub date: NaiveDate,
    pub kind: DayType,
    /// The holiday's name as the notice gives it (`春节`).
    pub name: String,
}

/// Reads a holiday table: a `date,kind,name` header, then one day per line
/// (`2026-02-15,holiday,春节`); blank lines and lines starting with `#` are skipped.
/// Every problem is reported, with its line number.
pub fn parse_table(text: &str) -> Result<Vec<SpecialDay>, Vec<String>> {
    let mut days = Vec::new();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut header = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !header {
            header = true;
            if line.replace(' ', "") != "date,kind,name" {
                problems.push(format!("line {n}: the header must be date,kind,name"));
            }
            continue;
        }
        let mut fields = line.splitn(3, ',').map(str::trim);
        let (date, kind, name) = (fields.next(), fields.next(), fields.next());
        let date = match date.map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d")) {
            Some(Ok(d)) => d,
            _ => {
                problems.push(format!("line {n}: the date must be YYYY-MM-DD"));
                continue;
            }
        };
        let kind = match kind.map(str::parse::<DayType>) {
            Some(Ok(k)) => k,
            _ => {
                problems.push(format!("line {n}: the kind must be holiday or workday"));
                continue;
            }
        };
        let name = name.unwrap_or_default().to_owned();
        if name.is_empty() || name.chars().count() > 50 {
            problems.push(format!("line {n}: the name must be 1 to 50 characters"));
            continue;
        }
        if !seen.insert(date) {
            problems.push(format!("line {n}: {date} is listed twice"));
            continue;
        }
        days.push(SpecialDay { date, kind, name });
    }
    if !header {
        problems.push("the table is empty".to_owned());
    }
    if problems.is_empty() {
        Ok(days)
    } else {
        Err(problems)
    }
}

/// The working-day calendar: the special days of the years it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    special: BTreeMap<NaiveDate, DayType>,
    covered: BTreeSet<i32>,
}

/// A date reached by counting working days, and the years on the way that the calendar
/// does not cover (counted with weekends only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub date: NaiveDate,
    pub uncovered_years: BTreeSet<i32>,
}

impl WorkCalendar {
    /// A calendar of `days`, covering `years` (a covered year without a special day in
    /// `days` is one with the usual week only).
    pub fn new(days: impl IntoIterator<Item = (NaiveDate, DayType)>, years: BTreeSet<i32>) -> Self {
        Self {
            special: days.into_iter().collect(),
            covered: years,
        }
    }

    /// The bundled calendar (2020–2026).
    pub fn bundled() -> Self {
        let days = parse_table(BUNDLED).unwrap_or_default();
        let years = days.iter().map(|d| d.date.year()).collect();
        Self::new(days.into_iter().map(|d| (d.date, d.kind)), years)
    }

    pub fn covers(&self, year: i32) -> bool {
        self.covered.contains(&year)
    }

    pub fn covered_years(&self) -> &BTreeSet<i32> {
        &self.covered
    }

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.special.get(&date) {
            Some(DayType::Holiday) => false,
            Some(DayType::Workday) => true,
            None => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// The `n`th working day after `from` (`from` itself not counted: a period starts
    /// on the day after, Civil Code art. 201). `n = 0` is `from`.
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> Counted {
        let mut date = from;
        let mut left = n;
        let mut uncovered = BTreeSet::new();
        while left > 0 {
            let Some(next) = date.checked_add_days(Days::new(1)) else {
                break;
            };
            date = next;
            if !self.covers(date.year()) {
                uncovered.insert(date.year());
            }
            if self.is_working_day(date) {
                left -= 1;
            }
        }
        Counted {
            date,
            uncovered_years: uncovered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("a date")
    }

    #[test]
    fn the_bundled_table_matches_the_official_notices_as_the_crate_records_them() {
        let days = parse_table(BUNDLED).expect("the bundled table parses");
        let listed: BTreeMap<NaiveDate, DayType> = days.iter().map(|s| (s.date, s.kind)).collect();
        // The crate knows dates up to 2026-12-25; nothing is special after that in 2026.
        let mut date = d(2020, 1, 1);
        while date <= d(2026, 12, 25) {
            let kind = chinese_holiday::chinese_holiday(chinese_holiday::Ymd::new(
                date.year() as u16,
                date.month() as u8,
                date.day() as u8,
            ));
            let expected = match kind {
                chinese_holiday::DayKind::NormalWorkday
                | chinese_holiday::DayKind::NormalHoliday => None,
                k if k.is_workday() => Some(DayType::Workday),
                _ => Some(DayType::Holiday),
            };
            assert_eq!(listed.get(&date).copied(), expected, "{date}");
            date = date.succ_opt().expect("a next day");
        }
        assert_eq!(
            WorkCalendar::bundled()
                .covered_years()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            (2020..=2026).collect::<Vec<_>>()
        );
    }

    #[test]
    fn spring_festival_2025_and_2026() {
        let c = WorkCalendar::bundled();
        // 2025: off 28 Jan – 4 Feb; Sunday 26 Jan and Saturday 8 Feb worked.
        assert!(c.is_working_day(d(2025, 1, 26)));
        for day in 28..=31 {
            assert!(!c.is_working_day(d(2025, 1, day)));
        }
        for day in 1..=4 {
            assert!(!c.is_working_day(d(2025, 2, day)));
        }
        assert!(c.is_working_day(d(2025, 2, 8)));
        // Friday 24 Jan 2025 + 3 working days: Sun 26 (make-up), Mon 27, Wed 5 Feb.
        assert_eq!(c.add_working_days(d(2025, 1, 24), 3).date, d(2025, 2, 5));
        // 2026: off 15–23 Feb; Saturdays 14 and 28 Feb worked.
        assert!(c.is_working_day(d(2026, 2, 14)));
        assert!(!c.is_working_day(d(2026, 2, 23)));
        assert!(c.is_working_day(d(2026, 2, 28)));
        // Friday 13 Feb 2026 + 1: Saturday 14; + 2: Tuesday 24.
        assert_eq!(c.add_working_days(d(2026, 2, 13), 1).date, d(2026, 2, 14));
        assert_eq!(c.add_working_days(d(2026, 2, 13), 2).date, d(2026, 2, 24));
    }

    #[test]
    fn national_day_2025_and_2026() {
        let c = WorkCalendar::bundled();
        // 2025: off 1–8 Oct; Sunday 28 Sep and Saturday 11 Oct worked.
        assert!(c.is_working_day(d(2025, 9, 28)));
        assert!(!c.is_working_day(d(2025, 10, 8)));
        assert!(c.is_working_day(d(2025, 10, 11)));
        // 15 working days from Friday 26 Sep 2025: Sun 28, Mon 29, Tue 30 Sep, then
        // Thu 9, Fri 10, Sat 11 (make-up), 13–17 and 20–23 Oct.
        let counted = c.add_working_days(d(2025, 9, 26), 15);
        assert_eq!(counted.date, d(2025, 10, 23));
        assert!(counted.uncovered_years.is_empty());
        // 2026: off 1–7 Oct; Sunday 20 Sep and Saturday 10 Oct worked.
        assert!(c.is_working_day(d(2026, 9, 20)));
        assert!(!c.is_working_day(d(2026, 10, 7)));
        assert!(c.is_working_day(d(2026, 10, 10)));
        assert_eq!(c.add_working_days(d(2026, 9, 30), 1).date, d(2026, 10, 8));
    }

    #[test]
    fn every_working_day_count_skips_every_holiday_and_counts_every_make_up_day() {
        let c = WorkCalendar::bundled();
        let mut from = d(2020, 1, 1);
        while from < d(2026, 11, 1) {
            for n in [1u32, 5, 15, 30] {
                let due = c.add_working_days(from, n).date;
                assert!(due > from, "{from} + {n}");
                assert!(c.is_working_day(due), "{from} + {n} = {due}");
                let mut count = 0;
                let mut day = from;
                while day < due {
                    day = day.succ_opt().expect("a next day");
                    if c.is_working_day(day) {
                        count += 1;
                    }
                }
                assert_eq!(count, n, "{from} + {n}");
            }
            from = from.succ_opt().expect("a next day");
        }
    }

    #[test]
    fn an_uncovered_year_counts_weekends_only_and_says_so() {
        let c = WorkCalendar::bundled();
        // Thursday 24 Dec 2026 + 10 working days runs into 2027, which is not covered.
        let counted = c.add_working_days(d(2026, 12, 24), 10);
        assert_eq!(counted.date, d(2027, 1, 7));
        assert_eq!(
            counted.uncovered_years.into_iter().collect::<Vec<_>>(),
            [2027]
        );
        assert!(!c.covers(2027));
        // At the end of time: no panic.
        let end = c.add_working_days(NaiveDate::MAX, 3);
        assert_eq!(end.date, NaiveDate::MAX);
    }

    #[test]
    fn tables_are_checked_line_by_line() {
        let good =
            "# comment\ndate,kind,name\n2027-02-06,holiday,春节\n\n2027-02-14,workday,春节\n";
        assert_eq!(parse_table(good).map(|d| d.len()), Ok(2));
        let bad = "date,kind,name\n2027-13-01,holiday,x\n2027-02-06,day off,春节\n2027-02-07,holiday,\n2027-02-08,holiday,a\n2027-02-08,workday,b\n";
        let problems = parse_table(bad).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("line 2"));
        assert!(problems[3].contains("listed twice"));
        assert!(parse_table("").is_err());
        assert!(parse_table("day,type\n").is_err());
    }
}
