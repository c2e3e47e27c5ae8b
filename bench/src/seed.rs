//! Bulk seeding of the `requests` table straight into the database, with the same
//! encodings the service's sea-orm/sqlx layer writes (checked against a row filed
//! through the API: on SQLite ids are 16-byte BLOBs, booleans integers, timestamps
//! RFC 3339 text with `+00:00`, dates `YYYY-MM-DD` text; on PostgreSQL native types).
//!
//! The rows are generated in Rust from a fixed seed, so both backends hold the same
//! data, received in time order (so UUIDv7 ids grow as they would in production). Two
//! profiles ([`Profile`]): six years of history, mostly closed, the open ones
//! concentrated in the last weeks (the queue phase); or an open backlog received over the
//! last 15 days, none overdue, exactly a given number of them due on a reminder day (the
//! sweep phase).
//! References are numbered as the service numbers them (the per-year counter through the
//! keyed permutation, with the key the service stored), and the counters are left where
//! the service would have left them, so filings on the seeded table never collide.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use rightsdesk_domain::reference::Numbering;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous,
};
use sea_orm::sqlx::{self, Connection, QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::server::{Backend, Database};

/// SplitMix64: small, fast, and the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// A weighted choice; the weights need not sum to 1.
    pub fn pick<T: Copy>(&mut self, items: &[(T, f64)]) -> T {
        let total: f64 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.f64() * total;
        for (v, w) in items {
            if x < *w {
                return *v;
            }
            x -= w;
        }
        items[items.len() - 1].0
    }

    fn hex64(&mut self) -> String {
        format!(
            "{:016x}{:016x}{:016x}{:016x}",
            self.next_u64(),
            self.next_u64(),
            self.next_u64(),
            self.next_u64()
        )
    }
}

pub const KINDS: &[(&str, f64)] = &[
    ("access", 0.30),
    ("copy", 0.10),
    ("deletion", 0.20),
    ("correction", 0.10),
    ("consent_withdrawal", 0.10),
    ("account_closure", 0.08),
    ("portability", 0.04),
    ("explanation", 0.05),
    ("complaint", 0.02),
    ("next_of_kin", 0.01),
];

const CHANNELS: &[(&str, f64)] = &[
    ("api", 0.70),
    ("email", 0.15),
    ("phone", 0.08),
    ("post", 0.04),
    ("in_person", 0.03),
];

/// `verification.expire_after_days` at its default.
const EXPIRE_AFTER_DAYS: f64 = 30.0;

const OPEN_STATES: &[(&str, f64)] = &[
    ("received", 0.20),
    ("awaiting_verification", 0.15),
    ("verified", 0.15),
    ("in_progress", 0.35),
    ("awaiting_requester", 0.10),
    ("reopened", 0.05),
];

const CLOSED_STATES: &[(&str, f64)] = &[
    ("completed", 0.80),
    ("rejected", 0.08),
    ("withdrawn", 0.07),
    ("expired", 0.05),
];

const ZH_NAMES: &[&str] = &[
    "王芳", "李娜", "张伟", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周杰", "吴丽", "徐涛", "孙悦",
    "马超", "朱琳", "胡斌", "郭婷",
];
const EN_NAMES: &[&str] = &[
    "Alice Smith",
    "Bob Jones",
    "Carol White",
    "David Brown",
    "Emma Wilson",
    "Frank Miller",
    "Grace Lee",
    "Henry Clark",
];
const DOMAINS: &[&str] = &["example.com", "example.cn", "mail.example.org"];

/// [`OPEN_STATES`] whose deadline clock runs: all but `awaiting_requester` (paused,
/// which the deadline sweep leaves out).
const RUNNING_OPEN_STATES: &[(&str, f64)] = &[
    ("received", 0.20),
    ("awaiting_verification", 0.15),
    ("verified", 0.15),
    ("in_progress", 0.35),
    ("reopened", 0.05),
];

/// `reminders.offsets_days` at its default: the sweep reminds the assignee this many
/// days before the due date.
pub const REMINDER_OFFSETS: [i64; 3] = [7, 3, 1];

/// What the generated table looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Six years of requests, mostly closed; the open ones mostly from the last weeks,
    /// a few stuck and long overdue (the queue phase).
    History,
    /// Every request open, received over the 15 local days before today, so due between
    /// today and 14 days ahead and none overdue; exactly `due` of them are due on a
    /// reminder day ([`REMINDER_OFFSETS`] days from today, a third each) in a state whose
    /// clock runs, and no other request is due on those days (the sweep phase).
    OpenBacklog { due: u64 },
}

/// The receipt days of an [`Profile::OpenBacklog`], oldest first: (local date of
/// receipt, requests received that day, whether they are the ones due on a reminder day).
fn backlog_days(n: u64, due: u64, today: NaiveDate) -> Vec<(NaiveDate, u64, bool)> {
    let reminder_days: Vec<NaiveDate> = REMINDER_OFFSETS
        .iter()
        .map(|o| today + TimeDelta::days(*o - PERIOD_DAYS))
        .collect();
    let other_days: Vec<NaiveDate> = (1..=PERIOD_DAYS)
        .map(|k| today - TimeDelta::days(k))
        .filter(|d| !reminder_days.contains(d))
        .collect();
    let share = |total: u64, parts: usize, i: usize| {
        total / parts as u64 + u64::from((i as u64) < total % parts as u64)
    };
    let mut days: Vec<(NaiveDate, u64, bool)> = reminder_days
        .iter()
        .enumerate()
        .map(|(i, d)| (*d, share(due, reminder_days.len(), i), true))
        .chain(
            other_days
                .iter()
                .enumerate()
                .map(|(i, d)| (*d, share(n - due, other_days.len(), i), false)),
        )
        .collect();
    days.sort_by_key(|d| d.0);
    days
}

/// Where an [`Profile::OpenBacklog`] generator is: the day and the row within it.
struct Backlog {
    days: Vec<(NaiveDate, u64, bool)>,
    day: usize,
    within: u64,
}

impl Backlog {
    /// The next row's receipt time, and whether it is due on a reminder day.
    fn next(&mut self, rng: &mut Rng) -> Option<(DateTime<Utc>, bool)> {
        while self.days.get(self.day)?.1 <= self.within {
            self.day += 1;
            self.within = 0;
        }
        let (date, count, due) = self.days[self.day];
        let j = self.within;
        self.within += 1;
        // Local midnight of `date` (UTC+8, no DST), then an even spread over the day.
        let start = date.and_hms_opt(0, 0, 0)?.and_utc() - TimeDelta::hours(LOCAL_OFFSET_HOURS);
        let pos = (j as f64 + rng.f64()) / count as f64;
        let at = start.timestamp_micros() + (pos * 86_400e6) as i64;
        Some((micros(at), due))
    }
}

/// One row of `requests`, typed as the service's entity is.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub reference: String,
    pub kind: &'static str,
    pub state: &'static str,
    pub is_open: bool,
    pub channel: &'static str,
    pub language: &'static str,
    pub requester_name: &'static str,
    pub requester_email: Option<String>,
    pub requester_phone: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
    pub due_date: NaiveDate,
    pub token_hash: String,
    pub event_seq: i64,
    pub head_hash: String,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// Columns in insert order (the constant ones are filled in by the writers).
const COLUMNS: &str = "id, reference, kind, state, is_open, channel, language, requester_name, \
     requester_email, requester_phone, details, subject_id, assignee_id, related_request_id, \
     received_at, clock_started_at, due_date, time_zone, deadline_pack, deadline_pack_version, \
     token_hash, event_seq, head_hash, created_at, updated_at, closed_at";

/// The PIPL pack: 15 calendar days from the local (Asia/Shanghai, UTC+8 without DST)
/// date of receipt.
const LOCAL_OFFSET_HOURS: i64 = 8;
const PERIOD_DAYS: i64 = 15;

fn local_date(t: DateTime<Utc>) -> NaiveDate {
    (t + TimeDelta::hours(LOCAL_OFFSET_HOURS)).date_naive()
}

fn micros(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t).unwrap_or_default()
}

/// Generates `n` requests of a [`Profile`], in the order of receipt.
pub struct Generator {
    rng: Rng,
    n: u64,
    i: u64,
    start_us: i64,
    span_us: i64,
    now: DateTime<Utc>,
    officers: Vec<Uuid>,
    numbering: Numbering,
    per_year: HashMap<i32, u32>,
    /// `Some` for [`Profile::OpenBacklog`].
    backlog: Option<Backlog>,
}

impl Generator {
    pub fn new(
        n: u64,
        profile: Profile,
        now: DateTime<Utc>,
        officers: Vec<Uuid>,
        numbering: Numbering,
    ) -> Self {
        const YEARS: i64 = 6;
        let end = now - TimeDelta::minutes(10);
        let start = end - TimeDelta::days(365 * YEARS + YEARS / 4);
        let backlog = match profile {
            Profile::History => None,
            Profile::OpenBacklog { due } => Some(Backlog {
                days: backlog_days(n, due.min(n), local_date(now)),
                day: 0,
                within: 0,
            }),
        };
        Self {
            rng: Rng::new(0x5EED_2026),
            n,
            i: 0,
            start_us: start.timestamp_micros(),
            span_us: (end - start).num_microseconds().unwrap_or(i64::MAX),
            now,
            officers,
            numbering,
            per_year: HashMap::new(),
            backlog,
        }
    }

    fn officer(&mut self) -> Option<Uuid> {
        if self.officers.is_empty() {
            return None;
        }
        let i = self.rng.below(self.officers.len() as u64) as usize;
        Some(self.officers[i])
    }
}

impl Iterator for Generator {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        if self.i >= self.n {
            return None;
        }
        let i = self.i;
        self.i += 1;
        let r = &mut self.rng;
        let (received_at, age_days, is_open, running) = match self.backlog.as_mut() {
            None => {
                let pos = (i as f64 + r.f64()) / self.n as f64;
                let received_at = micros(self.start_us + (pos * self.span_us as f64) as i64);
                let age_days = (self.now - received_at).num_seconds() as f64 / 86_400.0;
                // Open requests are the recent ones; a few old ones are stuck (long overdue).
                let p_open = if age_days < PERIOD_DAYS as f64 {
                    0.85
                } else if age_days < 60.0 {
                    0.15
                } else {
                    0.003
                };
                (received_at, age_days, r.chance(p_open), false)
            }
            Some(backlog) => {
                let (received_at, due) = backlog.next(r)?;
                let age_days = (self.now - received_at).num_seconds() as f64 / 86_400.0;
                (received_at, age_days, true, due)
            }
        };
        let kind = r.pick(KINDS);
        let channel = r.pick(CHANNELS);
        let zh = r.chance(0.85);
        let language = if zh { "zh-CN" } else { "en" };
        let requester_name = if zh {
            ZH_NAMES[r.below(ZH_NAMES.len() as u64) as usize]
        } else {
            EN_NAMES[r.below(EN_NAMES.len() as u64) as usize]
        };
        let contact = r.f64();
        let email = (contact < 0.95).then(|| {
            let d = DOMAINS[r.below(DOMAINS.len() as u64) as usize];
            format!("user{}.{}@{d}", i, r.below(1000))
        });
        let phone = (contact >= 0.85)
            .then(|| format!("+86{}{:09}", 13 + r.below(7), r.below(1_000_000_000)));
        let (state, assignee, closed_at, event_seq) = if is_open {
            let mut state = r.pick(if running {
                RUNNING_OPEN_STATES
            } else {
                OPEN_STATES
            });
            if state == "awaiting_verification" && age_days >= EXPIRE_AFTER_DAYS {
                // The service expires requests left unverified this long; the ones still
                // open from then had been verified.
                state = "verified";
            }
            let seq = match state {
                "received" => 1,
                "awaiting_verification" => 2,
                "verified" => 3,
                "in_progress" => 4 + r.below(2) as i64,
                "awaiting_requester" => 5,
                _ => 7,
            };
            let assigned = !matches!(state, "received" | "awaiting_verification");
            (state, assigned, None, seq)
        } else {
            let state = r.pick(CLOSED_STATES);
            // Expired requests never got past verification; half of the withdrawn ones
            // were withdrawn before anyone took them.
            let assigned = match state {
                "expired" => false,
                "withdrawn" => r.chance(0.5),
                _ => true,
            };
            let took = TimeDelta::seconds((86_400.0 * (1.0 + 13.0 * r.f64())) as i64);
            let closed = (received_at + took).min(self.now - TimeDelta::minutes(1));
            (state, assigned, Some(closed), 4 + r.below(4) as i64)
        };
        let updated_at = closed_at.unwrap_or_else(|| {
            let since = (self.now - received_at).num_microseconds().unwrap_or(0);
            micros(received_at.timestamp_micros() + (since as f64 * self.rng.f64()) as i64)
        });
        let assignee_id = if assignee { self.officer() } else { None };
        let local = local_date(received_at);
        let counter = self.per_year.entry(local.year()).or_insert(0);
        let reference = self.numbering.reference(local.year(), *counter)?;
        *counter += 1;
        let r = &mut self.rng;
        let mut rand_a = [0u8; 10];
        rand_a
            .iter_mut()
            .for_each(|b| *b = (r.next_u64() & 0xFF) as u8);
        let id = uuid::Builder::from_unix_timestamp_millis(
            received_at.timestamp_millis().max(0) as u64,
            &rand_a,
        )
        .into_uuid();
        Some(Row {
            id,
            reference: reference.to_string(),
            kind,
            state,
            is_open,
            channel,
            language,
            requester_name,
            requester_email: email,
            requester_phone: phone,
            assignee_id,
            received_at,
            due_date: local + TimeDelta::days(PERIOD_DAYS),
            token_hash: r.hex64(),
            event_seq,
            head_hash: r.hex64(),
            updated_at,
            closed_at,
        })
    }
}

/// What seeding did.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub rows: u64,
    pub open: u64,
    pub in_progress: u64,
    pub overdue: u64,
    /// Open requests whose clock runs and that are due on a reminder day
    /// ([`REMINDER_OFFSETS`] days from today): the ones the sweep reminds of.
    pub reminder_due: u64,
    pub insert_time: Duration,
    pub analyze_time: Duration,
    /// Size of the database afterwards, in bytes.
    pub db_bytes: u64,
}

fn tally(report: &mut SeedReport, row: &Row, today: NaiveDate) {
    report.rows += 1;
    if row.is_open {
        report.open += 1;
        if row.due_date < today {
            report.overdue += 1;
        }
        if row.state != "awaiting_requester"
            && REMINDER_OFFSETS.contains(&(row.due_date - today).num_days())
        {
            report.reminder_due += 1;
        }
    }
    if row.state == "in_progress" {
        report.in_progress += 1;
    }
}

/// Writes `rows` requests of `profile` into `db` (whose schema the service has made).
pub async fn seed(
    db: &Database,
    rows: u64,
    profile: Profile,
    officers: Vec<Uuid>,
    now: DateTime<Utc>,
) -> anyhow::Result<SeedReport> {
    if let Profile::OpenBacklog { due } = profile
        && due > rows
    {
        anyhow::bail!("{due} requests due on a reminder day, but only {rows} requests");
    }
    let key = reference_key(db).await?;
    let generator = Generator::new(rows, profile, now, officers, Numbering::new(&key));
    let report = match db.backend {
        Backend::Sqlite => seed_sqlite(db, generator, now).await?,
        Backend::Postgres => seed_postgres(db, generator, now).await?,
    };
    if report.rows != rows {
        // The generator stops when a year runs out of references (a million a year).
        anyhow::bail!(
            "seeded {} of {rows} requests: a year holds at most {} references",
            report.rows,
            rightsdesk_domain::reference::NUMBERS_PER_YEAR
        );
    }
    Ok(report)
}

/// The key the service numbers references with (stored at its first start).
async fn reference_key(db: &Database) -> anyhow::Result<Vec<u8>> {
    const SQL: &str = "SELECT value FROM secrets WHERE name = 'reference_key'";
    let value: String = match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlite_connect(db).await?;
            let v = sqlx::query_scalar(SQL).fetch_one(&mut conn).await;
            conn.close().await?;
            v
        }
        Backend::Postgres => {
            let mut conn = PgConnection::connect(&db.url).await?;
            let v = sqlx::query_scalar(SQL).fetch_one(&mut conn).await;
            conn.close().await?;
            v
        }
    }
    .context("reading the service's reference key (start the service once first)")?;
    Ok(base64::engine::general_purpose::STANDARD.decode(value)?)
}

/// `INSERT INTO reference_counters`: each seeded year's counter, past its last row.
fn counters_sql(per_year: &HashMap<i32, u32>) -> String {
    let values: Vec<String> = per_year
        .iter()
        .map(|(year, next)| format!("({year}, {next})"))
        .collect();
    format!(
        "INSERT INTO reference_counters (year, next_counter) VALUES {}",
        values.join(", ")
    )
}

pub async fn sqlite_connect(db: &Database) -> anyhow::Result<SqliteConnection> {
    let opts = SqliteConnectOptions::from_str(&db.url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    Ok(SqliteConnection::connect_with(&opts).await?)
}

/// Multi-row INSERTs of 1,000 rows (26,000 bound values, under SQLite's 32,766) in
/// one transaction.
async fn seed_sqlite(
    db: &Database,
    generator: Generator,
    now: DateTime<Utc>,
) -> anyhow::Result<SeedReport> {
    let today = local_date(now);
    let mut report = SeedReport::default();
    let mut conn = sqlite_connect(db).await?;
    let t = Instant::now();
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut conn).await?;
    let mut batch = Vec::with_capacity(1000);
    let mut generator = generator;
    let mut rows = generator.by_ref().peekable();
    while rows.peek().is_some() {
        batch.clear();
        batch.extend(rows.by_ref().take(1000));
        let mut qb = QueryBuilder::<Sqlite>::new(format!("INSERT INTO requests ({COLUMNS}) "));
        qb.push_values(batch.iter(), |mut b, r| {
            b.push_bind(r.id)
                .push_bind(r.reference.clone())
                .push_bind(r.kind)
                .push_bind(r.state)
                .push_bind(r.is_open)
                .push_bind(r.channel)
                .push_bind(r.language)
                .push_bind(r.requester_name)
                .push_bind(r.requester_email.clone())
                .push_bind(r.requester_phone.clone())
                .push_bind("{}")
                .push_bind(None::<Uuid>)
                .push_bind(r.assignee_id)
                .push_bind(None::<Uuid>)
                .push_bind(r.received_at)
                .push_bind(Some(r.received_at))
                .push_bind(r.due_date)
                .push_bind("Asia/Shanghai")
                .push_bind("pipl")
                .push_bind(1i32)
                .push_bind(r.token_hash.clone())
                .push_bind(r.event_seq)
                .push_bind(r.head_hash.clone())
                .push_bind(r.received_at)
                .push_bind(r.updated_at)
                .push_bind(r.closed_at);
        });
        qb.build()
            .execute(&mut conn)
            .await
            .context("inserting a batch of requests")?;
        for r in &batch {
            tally(&mut report, r, today);
        }
    }
    drop(rows);
    sqlx::raw_sql(sqlx::AssertSqlSafe(counters_sql(&generator.per_year)))
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql("COMMIT").execute(&mut conn).await?;
    report.insert_time = t.elapsed();
    let t = Instant::now();
    sqlx::raw_sql("ANALYZE").execute(&mut conn).await?;
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    report.analyze_time = t.elapsed();
    conn.close().await?;
    report.db_bytes = db
        .sqlite_path
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.len());
    Ok(report)
}

fn copy_field(out: &mut String, v: Option<&str>) {
    match v {
        // COPY's text format: tab-separated, \N for NULL; none of the generated
        // values holds a tab, newline or backslash.
        None => out.push_str("\\N"),
        Some(s) => out.push_str(s),
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// `COPY … FROM STDIN` in one transaction, then `VACUUM (ANALYZE)` as autovacuum would
/// eventually do.
async fn seed_postgres(
    db: &Database,
    generator: Generator,
    now: DateTime<Utc>,
) -> anyhow::Result<SeedReport> {
    let today = local_date(now);
    let mut report = SeedReport::default();
    let mut conn = PgConnection::connect(&db.url).await?;
    let t = Instant::now();
    let mut copy = conn
        .copy_in_raw(&format!("COPY requests ({COLUMNS}) FROM STDIN"))
        .await?;
    let mut buf = String::with_capacity(2 << 20);
    let mut generator = generator;
    for r in generator.by_ref() {
        tally(&mut report, &r, today);
        let id = r.id.to_string();
        let assignee = r.assignee_id.map(|u| u.to_string());
        let received = ts(r.received_at);
        let due = r.due_date.to_string();
        let seq = r.event_seq.to_string();
        let updated = ts(r.updated_at);
        let closed = r.closed_at.map(ts);
        let fields: [Option<&str>; 26] = [
            Some(&id),
            Some(&r.reference),
            Some(r.kind),
            Some(r.state),
            Some(if r.is_open { "t" } else { "f" }),
            Some(r.channel),
            Some(r.language),
            Some(r.requester_name),
            r.requester_email.as_deref(),
            r.requester_phone.as_deref(),
            Some("{}"),
            None,
            assignee.as_deref(),
            None,
            Some(&received),
            Some(&received),
            Some(&due),
            Some("Asia/Shanghai"),
            Some("pipl"),
            Some("1"),
            Some(&r.token_hash),
            Some(&seq),
            Some(&r.head_hash),
            Some(&received),
            Some(&updated),
            closed.as_deref(),
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                buf.push('\t');
            }
            copy_field(&mut buf, *f);
        }
        buf.push('\n');
        if buf.len() > (1 << 20) {
            copy.send(std::mem::take(&mut buf).into_bytes()).await?;
            buf.reserve(2 << 20);
        }
    }
    if !buf.is_empty() {
        copy.send(buf.into_bytes()).await?;
    }
    copy.finish().await.context("COPY into requests")?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(counters_sql(&generator.per_year)))
        .execute(&mut conn)
        .await?;
    report.insert_time = t.elapsed();
    let t = Instant::now();
    sqlx::raw_sql("VACUUM (ANALYZE) requests")
        .execute(&mut conn)
        .await?;
    report.analyze_time = t.elapsed();
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut conn)
        .await?;
    report.db_bytes = size.max(0) as u64;
    conn.close().await?;
    Ok(report)
}
