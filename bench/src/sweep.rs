//! The sweep phase: `rightsdesk reminders sweep` over a table of open requests of which
//! a known number are due on a reminder day, to show that its cost follows the due ones
//! and not the total.
//!
//! For every cell of the matrix (open requests × due on a reminder day), a fresh
//! database: six officers made through the API (no email address, so every reminder
//! goes to the team address), the requests written directly ([`Profile::OpenBacklog`]).
//! Then rounds, alternating over the cells: the sweep as its own process with
//! `reminders.team_email` set, which writes one reminder row per due request into the
//! outbox, and the same sweep right after, which finds them written and writes nothing.
//! Between rounds the reminder rows are deleted again. A sweep that does not write
//! exactly what it should fails the phase.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{NaiveDate, Utc};
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::{self, Connection};
use uuid::Uuid;

use crate::seed::{self, Profile, SeedReport};
use crate::server::{Api, Backend, Database, Server, ServerSettings};
use crate::{BackendResult, Options};

/// The address reminders of requests without a reachable assignee go to.
pub const TEAM_EMAIL: &str = "team@example.com";

/// What one `rightsdesk reminders sweep` reported.
#[derive(Debug, Clone, Copy, Default)]
pub struct SweepRun {
    /// The command's own measurement around the sweep (`elapsed_ms`).
    pub elapsed_ms: f64,
    /// From spawning the process to its exit: start-up, connecting, the schema check,
    /// the sweep, shutting down.
    pub wall_ms: f64,
    pub reminders: u64,
    pub overdue: u64,
    pub digests: u64,
    pub examined: u64,
}

/// One cell of the matrix.
#[derive(Debug, Clone, Default)]
pub struct SweepCell {
    /// Open requests stored.
    pub total: u64,
    /// Of which due on a reminder day.
    pub due: u64,
    pub seed: SeedReport,
    /// The first sweep of each round, writing `due` reminders.
    pub first: Vec<SweepRun>,
    /// The sweep right after, writing nothing.
    pub again: Vec<SweepRun>,
}

/// Runs `rightsdesk reminders sweep` once on `db`.
pub async fn sweep_once(
    settings: &ServerSettings,
    workdir: &Path,
    db: &Database,
) -> anyhow::Result<SweepRun> {
    let mut cmd = tokio::process::Command::new(&settings.binary);
    cmd.args(["reminders", "sweep"])
        .current_dir(workdir)
        .env_remove("RIGHTSDESK_CONFIG")
        .env("RIGHTSDESK__DATABASE__URL", &db.url)
        .env("RIGHTSDESK__LOG__LEVEL", "warn")
        .env("RIGHTSDESK__REMINDERS__TEAM_EMAIL", TEAM_EMAIL);
    for (k, v) in &settings.extra_env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd
        .output()
        .await
        .context("running rightsdesk reminders sweep")?;
    let wall_ms = started.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        bail!(
            "rightsdesk reminders sweep failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "rightsdesk reminders sweep printed {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    let count = |k: &str| {
        report[k]
            .as_u64()
            .with_context(|| format!("no {k} in the sweep's report {report}"))
    };
    Ok(SweepRun {
        elapsed_ms: report["elapsed_ms"].as_f64().unwrap_or(f64::NAN),
        wall_ms,
        reminders: count("reminders")?,
        overdue: count("overdue")?,
        digests: count("digests")?,
        examined: count("examined")?,
    })
}

/// The service's local date (its default pack, PIPL: Asia/Shanghai, UTC+8 without DST).
fn local_today() -> NaiveDate {
    (Utc::now() + chrono::TimeDelta::hours(8)).date_naive()
}

/// Makes the schema (the service migrates at start) and six officers without an email
/// address; returns their ids, for the seeded requests' assignees.
pub async fn officers_for_seeding(
    settings: &ServerSettings,
    dir: &Path,
    db: &Database,
    password: &str,
) -> anyhow::Result<Vec<Uuid>> {
    let server = Server::start(settings, dir, db).await?;
    let api = Api::new(&server)?;
    let admin = api.token("admin", &settings.admin_password).await?;
    let mut officers = vec![
        api.create_officer(&admin, "bench.officer", password, &["officer", "dpo"])
            .await?,
    ];
    for i in 2..=6 {
        officers.push(
            api.create_officer(&admin, &format!("bench.officer{i}"), password, &["officer"])
                .await?,
        );
    }
    server.stop().await?;
    Ok(officers)
}

/// The outbox's reminder rows: how many (`delete`: deletes them and returns how many
/// it deleted), then tidies up as autovacuum and the checkpointer would.
async fn reminder_rows(db: &Database, delete: bool) -> anyhow::Result<u64> {
    const COUNT: &str = "SELECT count(*) FROM notifications WHERE dedupe_key LIKE 'reminder:%'";
    const DELETE: &str = "DELETE FROM notifications WHERE dedupe_key LIKE 'reminder:%'";
    match db.backend {
        Backend::Sqlite => {
            let mut c = seed::sqlite_connect(db).await?;
            let n = if delete {
                let n = sqlx::query(DELETE).execute(&mut c).await?.rows_affected();
                sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&mut c)
                    .await?;
                n
            } else {
                let n: i64 = sqlx::query_scalar(COUNT).fetch_one(&mut c).await?;
                n.max(0) as u64
            };
            c.close().await?;
            Ok(n)
        }
        Backend::Postgres => {
            let mut c = PgConnection::connect(&db.url).await?;
            let n = if delete {
                let n = sqlx::query(DELETE).execute(&mut c).await?.rows_affected();
                sqlx::raw_sql("VACUUM (ANALYZE) notifications")
                    .execute(&mut c)
                    .await?;
                n
            } else {
                let n: i64 = sqlx::query_scalar(COUNT).fetch_one(&mut c).await?;
                n.max(0) as u64
            };
            c.close().await?;
            Ok(n)
        }
    }
}

/// Whether the service's connections to the PostgreSQL at `url` use TLS: sqlx's
/// default `sslmode=prefer` does when the server offers it.
async fn tls(url: &str) -> anyhow::Result<String> {
    let mode = url
        .split_once('?')
        .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("sslmode=")))
        .unwrap_or("prefer")
        .to_owned();
    let mut c = PgConnection::connect(url).await?;
    let ssl: String = sqlx::query_scalar("SHOW ssl").fetch_one(&mut c).await?;
    c.close().await?;
    Ok(match (mode.as_str(), ssl.as_str()) {
        ("disable", _) => "without TLS (`sslmode=disable`)".to_owned(),
        (_, "on") => format!("over TLS (`sslmode={mode}`; the server has `ssl=on`)"),
        _ => format!("without TLS (`sslmode={mode}`; the server has `ssl={ssl}`)"),
    })
}

/// Seeds one cell's database.
async fn prepare(
    settings: &ServerSettings,
    dir: &Path,
    db: &Database,
    total: u64,
    due: u64,
) -> anyhow::Result<SeedReport> {
    let officers = officers_for_seeding(settings, dir, db, "bench-officer-password").await?;
    eprintln!(
        "bench: seeding {total} open requests, {due} due on a reminder day, into {}…",
        db.backend.name()
    );
    let report = seed::seed(
        db,
        total,
        Profile::OpenBacklog { due },
        officers,
        Utc::now(),
    )
    .await?;
    if report.open != total || report.reminder_due != due || report.overdue != 0 {
        bail!(
            "seeded {} open ({total} wanted), {} due on a reminder day ({due} wanted), {} overdue (0 wanted)",
            report.open,
            report.reminder_due,
            report.overdue
        );
    }
    if db.backend == Backend::Postgres {
        // Write the seeded pages out now rather than during a measured sweep.
        let mut c = PgConnection::connect(&db.url).await?;
        sqlx::raw_sql("CHECKPOINT").execute(&mut c).await?;
        c.close().await?;
    }
    eprintln!(
        "bench:   {} rows in {:.1} s, then {:.1} s to analyze; {:.0} MB",
        report.rows,
        report.insert_time.as_secs_f64(),
        report.analyze_time.as_secs_f64(),
        report.db_bytes as f64 / 1e6
    );
    Ok(report)
}

fn check(what: &str, cell: &SweepCell, run: &SweepRun, reminders: u64) -> anyhow::Result<()> {
    if run.reminders != reminders || run.overdue != 0 || run.examined != cell.due {
        bail!(
            "{what} with {} open, {} due: the sweep wrote {} reminders ({reminders} expected) and {} \
             overdue notices (0 expected), and read {} requests ({} expected); if the service's local \
             date (Asia/Shanghai) changed during the phase, run it again",
            cell.total,
            cell.due,
            run.reminders,
            run.overdue,
            run.examined,
            cell.due
        );
    }
    Ok(())
}

/// The phase on one backend: seeds a database per cell, then measures the rounds.
pub async fn sweep_phase(
    opts: &Options,
    settings: &ServerSettings,
    dir: &Path,
    backend: Backend,
    result: &mut BackendResult,
) -> anyhow::Result<()> {
    let mut dbs = Vec::new();
    let outcome: anyhow::Result<()> = async {
        let today = local_today();
        for &total in &opts.sweep_totals {
            for &due in &opts.sweep_due {
                let db = Database::create(
                    backend,
                    dir,
                    &opts.pg_admin_url,
                    &format!("sweep_{total}_{due}"),
                )
                .await?;
                dbs.push(db);
                let db = &dbs[dbs.len() - 1];
                let seed = prepare(settings, dir, db, total, due).await?;
                result.sweep.push(SweepCell {
                    total,
                    due,
                    seed,
                    ..SweepCell::default()
                });
            }
        }
        if backend == Backend::Postgres {
            result.sweep_tls = Some(tls(&opts.pg_admin_url).await?);
        }
        for round in 0..opts.sweep_rounds {
            // Seeding leaves work behind (PostgreSQL's checkpointer, the page cache), and
            // other work on the machine disturbs sweeps of a few milliseconds.
            result.sweep_idle.push(crate::wait_quiet(opts).await?);
            for (cell, db) in result.sweep.iter_mut().zip(&dbs) {
                if local_today() != today {
                    bail!(
                        "the service's local date (Asia/Shanghai) changed during the phase, so \
                         other requests are due now: run it again"
                    );
                }
                if round > 0 {
                    let deleted = reminder_rows(db, true).await?;
                    if deleted != cell.due {
                        bail!("deleted {deleted} reminder rows, {} expected", cell.due);
                    }
                }
                let first = sweep_once(settings, dir, db).await?;
                check("the first sweep", cell, &first, cell.due)?;
                let again = sweep_once(settings, dir, db).await?;
                check("the sweep again", cell, &again, 0)?;
                let stored = reminder_rows(db, false).await?;
                if stored != cell.due {
                    bail!(
                        "the outbox holds {stored} reminder rows after the sweeps, {} expected",
                        cell.due
                    );
                }
                eprintln!(
                    "bench:   sweep, {} open, {} due, round {}: first {:.1} ms (wall {:.0} ms), {} reminders written; again {:.1} ms (wall {:.0} ms), 0 written",
                    cell.total,
                    cell.due,
                    round + 1,
                    first.elapsed_ms,
                    first.wall_ms,
                    first.reminders,
                    again.elapsed_ms,
                    again.wall_ms
                );
                cell.first.push(first);
                cell.again.push(again);
            }
        }
        Ok(())
    }
    .await;
    for db in dbs {
        if opts.keep {
            eprintln!("bench: kept the database {}", db.url);
        } else {
            db.drop_now().await?;
        }
    }
    outcome
}
