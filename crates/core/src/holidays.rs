//! The working-day calendar's table (SPEC §4): seeded at start with the bundled years
//! (2020–2026) that it does not hold yet, extended by `rightsdesk holidays import`, and
//! watched by the worker's `check_calendar` job, which warns (log and metric) when this year or, in its
//! last two months, next year is not covered: working days would then be counted with
//! weekends only.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Utc};
use rightsdesk_domain::calendar::{self, SpecialDay, WorkCalendar};
use rightsdesk_store::{Db, StoreError, holidays};
use serde::Serialize;
use serde_json::json;

use crate::{Error, ErrorCode, Services};

/// How long a process uses the calendar it read before it reads the table again, so
/// that an import on one instance reaches every instance within a minute.
const CALENDAR_TTL: Duration = Duration::from_secs(60);

/// The calendar this process counts working days on, read from the table.
pub(crate) struct CalendarCache {
    current: RwLock<(Arc<WorkCalendar>, Option<Instant>)>,
    refresh: tokio::sync::Mutex<()>,
}

impl CalendarCache {
    pub(crate) fn new(calendar: WorkCalendar) -> Self {
        Self {
            current: RwLock::new((Arc::new(calendar), Some(Instant::now()))),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self) -> Option<Arc<WorkCalendar>> {
        let guard = self.current.read().ok()?;
        guard
            .1
            .is_some_and(|at| at.elapsed() < CALENDAR_TTL)
            .then(|| guard.0.clone())
    }

    fn set(&self, calendar: Option<WorkCalendar>) {
        if let Ok(mut guard) = self.current.write() {
            match calendar {
                Some(c) => *guard = (Arc::new(c), Some(Instant::now())),
                None => guard.1 = None,
            }
        }
    }
}

/// The calendar as the table holds it.
pub(crate) async fn load(
    conn: &impl rightsdesk_store::ConnectionTrait,
) -> Result<WorkCalendar, Error> {
    let years = holidays::years(conn)
        .await?
        .into_iter()
        .map(|y| y.year)
        .collect();
    let mut days = Vec::new();
    for d in holidays::all(conn).await? {
        let kind = d.kind.parse::<calendar::DayType>().map_err(|_| {
            tracing::error!(date = %d.date, "unreadable holiday kind");
            Error::internal()
        })?;
        days.push((d.date, kind));
    }
    Ok(WorkCalendar::new(days, years))
}

/// What an import changed.
#[derive(Debug, Clone, Serialize)]
pub struct HolidayImport {
    /// The years replaced (each now holds exactly the file's days of that year).
    pub years: Vec<i32>,
    pub days: usize,
}

/// A covered year.
#[derive(Debug, Clone, Serialize)]
pub struct CalendarYear {
    pub year: i32,
    pub source: String,
    pub imported_at: DateTime<Utc>,
    pub holidays: usize,
    pub workdays: usize,
}

/// Writes `days` as the whole table of each year they fall in.
async fn write_years(
    conn: &impl rightsdesk_store::ConnectionTrait,
    days: Vec<SpecialDay>,
    only: impl Fn(i32) -> bool,
    source: &str,
    now: DateTime<Utc>,
) -> Result<Vec<i32>, StoreError> {
    let mut by_year: BTreeMap<i32, Vec<holidays::Model>> = BTreeMap::new();
    for d in days {
        by_year
            .entry(d.date.year())
            .or_default()
            .push(holidays::Model {
                date: d.date,
                kind: d.kind.as_str().to_owned(),
                name: d.name,
            });
    }
    let mut written = Vec::new();
    for (year, rows) in by_year.into_iter().filter(|(y, _)| only(*y)) {
        holidays::replace_year(conn, year, rows, source, now).await?;
        written.push(year);
    }
    Ok(written)
}

/// Fills in the bundled years the table does not hold; years an operator imported are
/// left alone. Several instances starting at once may race: the loser finds the rows.
pub(crate) async fn seed_bundled(db: &Db, now: DateTime<Utc>) -> Result<(), Error> {
    let days = calendar::parse_table(calendar::BUNDLED).map_err(|problems| {
        Error::new(
            ErrorCode::Internal,
            format!("the bundled holiday table: {}", problems.join("; ")),
        )
    })?;
    let tx = db.begin_write().await?;
    let covered: BTreeSet<i32> = holidays::years(&*tx)
        .await?
        .into_iter()
        .map(|y| y.year)
        .collect();
    let written = write_years(&*tx, days, |y| !covered.contains(&y), "bundled", now).await;
    match written {
        Ok(years) => {
            tx.commit().await?;
            if !years.is_empty() {
                tracing::info!(?years, "holiday table seeded with the bundled years");
            }
            Ok(())
        }
        Err(e) if e.is_unique_violation() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Services {
    /// `rightsdesk holidays import FILE`: each year in `text` (a `date,kind,name` table)
    /// is replaced by the file's days of that year. A table with any problem changes
    /// nothing.
    pub async fn import_holidays(&self, text: &str, source: &str) -> Result<HolidayImport, Error> {
        let days = calendar::parse_table(text).map_err(|problems| {
            Error::new(
                ErrorCode::ValidationFailed,
                "the holiday table has problems",
            )
            .with_details(json!({ "problems": problems }))
        })?;
        let count = days.len();
        let tx = self.db().begin_write().await?;
        let years = write_years(&*tx, days, |_| true, source, self.now()).await?;
        tx.commit().await?;
        self.inner.calendar.set(None);
        tracing::info!(?years, days = count, "holiday table imported");
        Ok(HolidayImport { years, days: count })
    }

    /// The covered years with their number of special days.
    pub async fn holiday_years(&self) -> Result<Vec<CalendarYear>, Error> {
        let conn = self.db().conn();
        let mut counts: BTreeMap<i32, (usize, usize)> = BTreeMap::new();
        for d in holidays::all(conn).await? {
            let c = counts.entry(d.date.year()).or_default();
            if d.kind == calendar::DayType::Holiday.as_str() {
                c.0 += 1;
            } else {
                c.1 += 1;
            }
        }
        Ok(holidays::years(conn)
            .await?
            .into_iter()
            .map(|y| {
                let (holidays, workdays) = counts.get(&y.year).copied().unwrap_or_default();
                CalendarYear {
                    year: y.year,
                    source: y.source,
                    imported_at: y.imported_at,
                    holidays,
                    workdays,
                }
            })
            .collect())
    }

    /// The calendar as the table holds it now.
    pub async fn work_calendar(&self) -> Result<WorkCalendar, Error> {
        load(self.db().conn()).await
    }

    /// The calendar deadlines are counted on: read again at most once a minute.
    pub(crate) async fn calendar(&self) -> Result<Arc<WorkCalendar>, Error> {
        let cache = &self.inner.calendar;
        if let Some(c) = cache.fresh() {
            return Ok(c);
        }
        let _one_reader = cache.refresh.lock().await;
        if let Some(c) = cache.fresh() {
            return Ok(c);
        }
        cache.set(Some(self.work_calendar().await?));
        cache.fresh().ok_or_else(Error::internal)
    }

    /// The due date for `kind` from `clock_start` under `pack`, with a warning (log and
    /// `rightsdesk_calendar_fallbacks_total`) when working days ran into a year the
    /// table does not cover.
    pub(crate) async fn due_date(
        &self,
        pack: &rightsdesk_domain::RulePack,
        kind: rightsdesk_domain::RequestKind,
        clock_start: DateTime<Utc>,
    ) -> Result<chrono::NaiveDate, Error> {
        let due = pack.due_date(kind, clock_start, &*self.calendar().await?);
        self.warn_uncovered(&due.uncovered_years);
        Ok(due.date)
    }

    /// Logs and counts a due date counted with weekends only in `years`.
    pub(crate) fn warn_uncovered(&self, years: &[i32]) {
        if !years.is_empty() {
            metrics::counter!("rightsdesk_calendar_fallbacks_total").increment(1);
            tracing::warn!(
                ?years,
                "a due date was counted with weekends only: the holiday table does not cover these years; import them with `rightsdesk holidays import`"
            );
        }
    }

    /// This year, and from November next year, when the table lacks them: the years
    /// deadlines need that would be counted with weekends only.
    pub(crate) async fn uncovered_years(&self) -> Result<Vec<i32>, Error> {
        let today = self.default_pack().local_date(self.now());
        let mut needed = vec![today.year()];
        if today.month() >= 11 {
            needed.push(today.year() + 1);
        }
        let covered: BTreeSet<i32> = holidays::years(self.db().conn())
            .await?
            .into_iter()
            .map(|y| y.year)
            .collect();
        Ok(needed
            .into_iter()
            .filter(|y| !covered.contains(y))
            .collect())
    }

    /// Warns (log and the `rightsdesk_calendar_uncovered_years` gauge) when this year,
    /// or from November next year, is missing from the table. Returns those years.
    pub async fn check_calendar_coverage(&self) -> Result<Vec<i32>, Error> {
        let missing = self.uncovered_years().await?;
        metrics::gauge!("rightsdesk_calendar_uncovered_years").set(missing.len() as f64);
        if !missing.is_empty() {
            tracing::warn!(
                years = ?missing,
                "the holiday table does not cover these years: working days are counted with weekends only; import the State Council's schedule with `rightsdesk holidays import`"
            );
        }
        Ok(missing)
    }
}
