//! The mail phase: how fast the outbox sender delivers to a real SMTP server on loopback.
//!
//! 1. aiosmtpd with a sink handler on a free loopback port (`smtp.rs`).
//! 2. `rightsdesk serve` with `mail.transport = "smtp"` pointed at it and the sender off
//!    (`worker.in_process = false`); N filings through the API at 16 clients, each
//!    queuing its notifications (an acknowledgement and a verification code); stop.
//! 3. The same database, `serve` again with the sender on: timed from spawning the
//!    process until the `notifications` table has no `pending` row left.
//! 4. Exactly once: every email notification is `sent`, and the SMTP server received
//!    each of their Message-IDs once and nothing else. Anything else fails the phase.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::sqlite::SqliteConnection;
use sea_orm::sqlx::{self, Connection};
use uuid::Uuid;

use crate::load::{self, RunResult};
use crate::procstat::{self, CpuSample, Memory};
use crate::server::{Backend, Database, Server, ServerSettings};
use crate::smtp::{self, SmtpSink};
use crate::{BackendResult, Options};

/// Clients filing while the sender is off.
pub const FILING_CLIENTS: usize = 16;

/// How long delivery may make no progress at all before the phase fails.
const STALL_LIMIT: Duration = Duration::from_secs(60);

// The service's sources, read at compile time, for the settings the report states
// (the bench leaves them at the service's defaults unless `--env` overrides them).
const CORE_CONFIG_SRC: &str = include_str!("../../crates/core/src/config.rs");
const MAIL_CONFIG_SRC: &str = include_str!("../../crates/mail/src/config.rs");

/// The first `field: <number>` after the line `anchor` in `source`.
fn number_after(source: &str, anchor: &str, field: &str) -> Option<u64> {
    let start = source.find(anchor)?;
    source[start..].lines().find_map(|l| {
        let rest = l.trim().strip_prefix(field)?;
        let digits: String = rest
            .trim_start_matches([':', '=', ' '])
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '_')
            .filter(|c| *c != '_')
            .collect();
        digits.parse().ok()
    })
}

fn default_batch_size() -> Option<u64> {
    number_after(
        CORE_CONFIG_SRC,
        "impl Default for OutboxConfig",
        "batch_size",
    )
}

fn default_pool_size() -> Option<u64> {
    number_after(MAIL_CONFIG_SRC, "impl Default for SmtpConfig", "pool_size")
}

/// The value the server gets for `key`: the last `--env` for it, else the default.
fn effective(env: &[(String, String)], key: &str, default: Option<u64>) -> String {
    env.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .or_else(|| default.map(|d| d.to_string()))
        .unwrap_or_else(|| "?".to_owned())
}

/// What the mail phase measured on one backend.
#[derive(Debug, Clone, Default)]
pub struct MailResult {
    /// The filing run with the sender off (exactly `Options::mail_filings` requests).
    pub filing: Option<RunResult>,
    /// Email notifications those filings queued (all `pending` before delivery).
    pub notifications: u64,
    /// Messages the SMTP server accepted, each once (checked).
    pub received: u64,
    pub bytes: u64,
    /// Notifications delivered on a second or later attempt.
    pub retried: u64,
    /// From spawning the second server (sender on) to: its first 200, the first
    /// message the SMTP server accepted, the last one, and no `pending` row left.
    pub ready_after: Duration,
    pub first_after: Duration,
    pub last_after: Duration,
    pub drained_after: Duration,
    /// Over the delivery (spawn to drained): server, everything else, load generator.
    pub cpu: CpuSample,
    /// The SMTP server's share of `cpu.other_cores`.
    pub smtp_cores: f64,
    pub mem_after: Memory,
    /// `outbox.batch_size` and `mail.smtp.pool_size` (also the messages in flight) as run.
    pub batch_size: String,
    pub pool_size: String,
}

impl MailResult {
    /// Mails per second from spawning the server until no notification is pending.
    pub fn per_sec(&self) -> f64 {
        self.received as f64 / self.drained_after.as_secs_f64()
    }

    /// Mails per second between the first and the last message the SMTP server saw
    /// (without start-up and the final mark).
    pub fn steady_per_sec(&self) -> f64 {
        let window = self.last_after.saturating_sub(self.first_after);
        if self.received < 2 || window.is_zero() {
            f64::NAN
        } else {
            (self.received - 1) as f64 / window.as_secs_f64()
        }
    }
}

/// A direct connection to the scratch database, for counting and checking.
enum Db {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Db {
    async fn connect(db: &Database) -> anyhow::Result<Self> {
        Ok(match db.backend {
            Backend::Sqlite => Db::Sqlite(crate::seed::sqlite_connect(db).await?),
            Backend::Postgres => Db::Postgres(PgConnection::connect(&db.url).await?),
        })
    }

    async fn pending(&mut self) -> anyhow::Result<i64> {
        const SQL: &str = "SELECT count(*) FROM notifications WHERE status = 'pending'";
        Ok(match self {
            Db::Sqlite(c) => sqlx::query_scalar(SQL).fetch_one(c).await?,
            Db::Postgres(c) => sqlx::query_scalar(SQL).fetch_one(c).await?,
        })
    }

    /// Every notification: id, channel, status, attempts.
    async fn rows(&mut self) -> anyhow::Result<Vec<(Uuid, String, String, i32)>> {
        const SQL: &str = "SELECT id, channel, status, attempts FROM notifications";
        Ok(match self {
            Db::Sqlite(c) => sqlx::query_as(SQL).fetch_all(c).await?,
            Db::Postgres(c) => sqlx::query_as(SQL).fetch_all(c).await?,
        })
    }

    async fn close(self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(c) => c.close().await?,
            Db::Postgres(c) => c.close().await?,
        }
        Ok(())
    }
}

/// The server's settings for this phase: the bench's own, then mail over SMTP to the
/// sink with the sender `on` or off (these last ones win over `--env`).
fn settings_for(settings: &ServerSettings, smtp_port: u16, sender_on: bool) -> ServerSettings {
    let mut env = settings.extra_env.clone();
    for (k, v) in [
        ("RIGHTSDESK__MAIL__TRANSPORT", "smtp".to_owned()),
        ("RIGHTSDESK__MAIL__SMTP__HOST", "127.0.0.1".to_owned()),
        ("RIGHTSDESK__MAIL__SMTP__PORT", smtp_port.to_string()),
        ("RIGHTSDESK__MAIL__SMTP__TLS", "none".to_owned()),
        ("RIGHTSDESK__WORKER__IN_PROCESS", sender_on.to_string()),
    ] {
        env.push((k.to_owned(), v));
    }
    ServerSettings {
        extra_env: env,
        ..settings.clone()
    }
}

pub async fn mail_phase(
    opts: &Options,
    settings: &ServerSettings,
    dir: &Path,
    db: &Database,
    result: &mut BackendResult,
) -> anyhow::Result<()> {
    let mut mail = MailResult {
        batch_size: effective(
            &settings.extra_env,
            "RIGHTSDESK__OUTBOX__BATCH_SIZE",
            default_batch_size(),
        ),
        pool_size: effective(
            &settings.extra_env,
            "RIGHTSDESK__MAIL__SMTP__POOL_SIZE",
            default_pool_size(),
        ),
        ..MailResult::default()
    };
    let mut sink = SmtpSink::start(&dir.join("smtp")).await?;
    eprintln!(
        "bench: aiosmtpd (sink) on 127.0.0.1:{}; filing {} requests with the sender off…",
        sink.port, opts.mail_filings
    );

    // Filings pile up notifications; nothing is delivered.
    let server = Server::start(&settings_for(settings, sink.port, false), dir, db).await?;
    let filing = load::run_count(
        server.addr(),
        FILING_CLIENTS,
        opts.mail_filings,
        201,
        crate::filing_maker(server.port, false),
        server.pid,
    )
    .await?;
    crate::log_run("filing with the sender off", &filing);
    crate::merge_errors(&mut result.server_errors, server.errors());
    server.stop().await?;
    if filing.errors > 0 {
        bail!(
            "{} of {} filings failed; first error: {}",
            filing.errors,
            opts.mail_filings,
            filing.first_error.as_deref().unwrap_or("?")
        );
    }
    let mut conn = Db::connect(db).await?;
    let queued = conn.rows().await?;
    let email_rows = queued.iter().filter(|r| r.1 == "email").count() as u64;
    let pending = conn.pending().await?;
    let early = sink.count()?;
    if early != 0 {
        bail!("the SMTP server received {early} messages while the sender was off");
    }
    if email_rows == 0 || pending != queued.len() as i64 {
        bail!(
            "after {} filings: {} notifications ({email_rows} email), {pending} pending; expected all pending",
            filing.ok,
            queued.len()
        );
    }
    if email_rows != 2 * filing.ok {
        eprintln!(
            "bench: note: {email_rows} email notifications for {} filings (expected 2 each)",
            filing.ok
        );
    }
    mail.notifications = email_rows;
    mail.filing = Some(filing);

    // The sender on: time until the outbox is empty.
    eprintln!("bench: restarting with the sender on; delivering {email_rows} messages…");
    let cpu_before = procstat::snapshot_before_spawn()?;
    let smtp_cpu_before = procstat::process_cpu_secs(sink.pid)?;
    let measured_from = Instant::now();
    let server = Server::start(&settings_for(settings, sink.port, true), dir, db).await?;
    let t0 = server.spawned_at;
    mail.ready_after = server.ready_after;
    let mut first = None;
    let mut all = None;
    let mut last_progress = (Instant::now(), 0usize, i64::MAX);
    let mut tick = 0u64;
    let drained = loop {
        let got = sink.count()?;
        let now = Instant::now();
        if got > 0 && first.is_none() {
            first = Some(now - t0);
        }
        if got as u64 >= email_rows && all.is_none() {
            all = Some(now - t0);
        }
        // The database is asked every 100 ms, and every 10 ms once the SMTP server has
        // everything: the end is when the sender's last mark has committed.
        if all.is_some() || tick.is_multiple_of(10) {
            let pending = conn.pending().await?;
            if pending == 0 {
                break Instant::now();
            }
            if (got, pending) != (last_progress.1, last_progress.2) {
                last_progress = (Instant::now(), got, pending);
            }
        }
        if last_progress.0.elapsed() > STALL_LIMIT {
            bail!(
                "delivery made no progress for {} s: {got} of {email_rows} messages received, {} notifications pending\n{}",
                STALL_LIMIT.as_secs(),
                last_progress.2,
                server.stderr_tail()
            );
        }
        tick += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    mail.drained_after = drained - t0;
    mail.cpu = procstat::snapshot(server.pid)?.since(&cpu_before, measured_from.elapsed());
    mail.smtp_cores = (procstat::process_cpu_secs(sink.pid)? - smtp_cpu_before)
        / measured_from.elapsed().as_secs_f64();
    mail.cpu.other_cores = (mail.cpu.other_cores - mail.smtp_cores).max(0.0);
    mail.mem_after = server.memory()?;
    crate::merge_errors(&mut result.server_errors, server.errors());
    server.stop().await?;
    // A message still arriving after the end would be a second delivery: give it time
    // to show up in the check below.
    tokio::time::sleep(Duration::from_millis(200)).await;
    mail.first_after = first.unwrap_or(mail.drained_after);
    mail.last_after = all.unwrap_or(mail.drained_after);

    // Exactly once.
    let rows = conn.rows().await?;
    conn.close().await?;
    let received = sink.received()?;
    sink.stop();
    let mut problems = Vec::new();
    let by_status = rows
        .iter()
        .fold(BTreeMap::<&str, usize>::new(), |mut m, r| {
            *m.entry(r.2.as_str()).or_insert(0) += 1;
            m
        });
    if by_status.keys().any(|s| *s != "sent") {
        problems.push(format!(
            "notification states: {by_status:?} (all must be sent)"
        ));
    }
    let email_ids: BTreeSet<Uuid> = rows
        .iter()
        .filter(|r| r.1 == "email")
        .map(|r| r.0)
        .collect();
    if received.messages as u64 != email_ids.len() as u64 {
        problems.push(format!(
            "the SMTP server received {} messages for {} email notifications",
            received.messages,
            email_ids.len()
        ));
    }
    if received.recipients != received.messages {
        problems.push(format!(
            "{} recipients in {} messages (one each expected)",
            received.recipients, received.messages
        ));
    }
    let dupes: Vec<_> = received
        .by_message_id
        .iter()
        .filter(|(_, n)| **n > 1)
        .collect();
    if !dupes.is_empty() {
        problems.push(format!(
            "{} Message-IDs received more than once, e.g. {:?}",
            dupes.len(),
            &dupes[..dupes.len().min(3)]
        ));
    }
    let got_ids: BTreeSet<Option<Uuid>> = received
        .by_message_id
        .keys()
        .map(|m| smtp::notification_id(m))
        .collect();
    let unknown = got_ids
        .iter()
        .filter(|id| !id.is_some_and(|id| email_ids.contains(&id)))
        .count();
    let missing = email_ids
        .iter()
        .filter(|id| !got_ids.contains(&Some(**id)))
        .count();
    if unknown > 0 || missing > 0 {
        problems.push(format!(
            "{unknown} received Message-IDs match no notification; {missing} notifications never arrived"
        ));
    }
    if !problems.is_empty() {
        bail!(
            "the mail phase on {}: delivery was not exactly once:\n- {}",
            db.backend.name(),
            problems.join("\n- ")
        );
    }
    mail.received = received.messages as u64;
    mail.bytes = received.bytes;
    mail.retried = rows.iter().filter(|r| r.3 > 1).count() as u64;
    eprintln!(
        "bench:   {} mails in {:.2} s from spawn: {:.0} mails/s ({:.0}/s first to last received); first 200 after {:.0} ms, first mail {:.0} ms, last {:.0} ms; cpu server {:.2} aiosmtpd {:.2} other {:.2} idle {:.0}%; exactly once: yes ({} Message-IDs, {} retried)",
        mail.received,
        mail.drained_after.as_secs_f64(),
        mail.per_sec(),
        mail.steady_per_sec(),
        mail.ready_after.as_secs_f64() * 1e3,
        mail.first_after.as_secs_f64() * 1e3,
        mail.last_after.as_secs_f64() * 1e3,
        mail.cpu.server_cores,
        mail.smtp_cores,
        mail.cpu.other_cores,
        mail.cpu.idle * 100.0,
        received.by_message_id.len(),
        mail.retried,
    );
    result.mail = Some(mail);
    Ok(())
}

/// `aiosmtpd 1.4.3, Python 3.11.2`, from the interpreter the bench starts.
pub fn aiosmtpd_version() -> Option<String> {
    let out = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import aiosmtpd, platform; print('aiosmtpd', aiosmtpd.__version__ + ', Python', platform.python_version())",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_are_found_in_the_service_sources() {
        assert!(default_batch_size().is_some_and(|n| n > 0));
        assert!(default_pool_size().is_some_and(|n| n > 0));
    }

    #[test]
    fn message_ids_name_their_notification() {
        let id: Uuid = "01a22715-c75c-70f5-a1b0-2fbba79515c4".parse().unwrap();
        assert_eq!(
            smtp::notification_id(&format!("<{id}@example.com>")),
            Some(id)
        );
        assert_eq!(smtp::notification_id("-"), None);
    }
}
