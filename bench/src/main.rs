//! `rightsdesk-bench`: measures the release binary `target/release/rightsdesk` over
//! loopback and writes `docs/performance.md`.
//!
//! ```text
//! cargo build --release -p rightsdesk -p rightsdesk-bench
//! cargo run --release -p rightsdesk-bench -- [--quick] [--backend sqlite|postgres|all] [--phases filing,queue,mail,sweep,intake,bundle] [--out docs/performance.md]
//! ```
//!
//! Per backend: (1) filing throughput and latency at 1 and 16 clients on an empty
//! database, rounds alternating; (2) a second database seeded directly with N requests
//! (1,000,000 by default), then queue pages for several filters, through the API and
//! as the officer console's HTML page, and filing again on the full table; (3) the
//! server's resident memory at each point; (4) the outbox:
//! notifications of N filings delivered to a local SMTP server (aiosmtpd), mails/s;
//! (5) the deadline sweep over 100k and 1M open requests of which 1,000 or 10,000 are
//! due on a reminder day, writing a reminder for each; (6) intake: parsing and
//! classifying the inbound corpus on one core (once, not per backend), and
//! `rightsdesk worker` reading 10,000 messages from a local Dovecot over IMAP; (7) a
//! bundle of one person's 1,000,000 rows from a source table of 10,000,000: time, peak
//! memory, the download, and the look-up of a person with a few rows (`bundle.rs`).

mod bundle;
mod intake;
mod load;
mod outbox;
mod procstat;
mod queue;
mod report;
mod seed;
mod server;
mod smtp;
mod sweep;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{TimeDelta, Utc};
use serde_json::json;

use crate::load::{RequestMaker, RunResult};
use crate::outbox::MailResult;
use crate::procstat::Memory;
use crate::queue::{Explained, Variant};
use crate::seed::SeedReport;
use crate::server::{Api, Backend, Database, Server, ServerSettings};

const USAGE: &str = "\
usage: rightsdesk-bench [options]

  --quick               tiny sizes for a smoke run (10,000 rows, 1 s runs, 1 round,
                        300 filings for the mail phase)
  --backend B           sqlite, postgres or all (default all)
  --out PATH            the report (default docs/performance.md; with --quick
                        target/rightsdesk-bench/quick.md)
  --rows N              requests seeded for the queue (default 1000000)
  --rounds N            rounds of every measurement (default 3)
  --secs S              seconds per filing run (default 5)
  --queue-secs S        seconds per queue run (default 2)
  --pg URL              PostgreSQL to create scratch databases on
                        (default postgres://postgres@127.0.0.1:5432/test)
  --server-bin PATH     the binary (default: rightsdesk next to this executable)
  --wait-quiet S        before each phase, wait up to S seconds for the machine to
                        be at least 90 % idle (default 60; 0: do not wait)
  --phases P            filing, queue, mail, sweep, intake, bundle, or several
                        separated by commas, or all (default all). A run without
                        filing rewrites only the sections of the phases it runs (and
                        their rows of the targets table) in an existing report.
  --mail-filings N      filings whose notifications the mail phase delivers
                        (default 2000; with --quick 300; 2 mails each)
  --sweep-totals N,N    open requests stored for the sweep phase, one database each
                        (default 100000,1000000; with --quick 10000)
  --sweep-due N,N       of which due on a reminder day (default 1000,10000; with
                        --quick 100,1000)
  --sweep-rounds N      rounds of the sweep phase (default 5; with --quick 1)
  --intake-messages N   messages the worker reads over IMAP in the intake phase
                        (default 10000; with --quick 500)
  --intake-batch N,N    IMAP batch sizes of the intake phase, one worker run each
                        (default: the service's default, 50, and 1000)
  --keep                keep the sweep phase's databases and the work directory
                        (for a closer look; drop them by hand afterwards)
  --bundle-rows N       rows of the bundle phase's source table (default 10000000;
                        with --quick 100000); a tenth belong to the measured person
  --bundle-rounds N     bundles of that person measured (default 2; with --quick 1)
  --keep-source         keep the bundle phase's source table (a SQLite file under
                        target/rightsdesk-bench, a PostgreSQL database
                        rightsdesk_bench_source_N) and reuse it next time
  --env KEY=VALUE       extra environment for the server, e.g.
                        RIGHTSDESK__DATABASE__MAX_CONNECTIONS=4 (repeatable)

Build first: cargo build --release -p rightsdesk -p rightsdesk-bench";

#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    pub backends: Vec<Backend>,
    pub out: PathBuf,
    pub rows: u64,
    pub rounds: usize,
    pub filing_secs: f64,
    pub queue_secs: f64,
    pub warmup_secs: f64,
    pub pg_admin_url: String,
    pub server_bin: PathBuf,
    pub extra_env: Vec<(String, String)>,
    pub filing: bool,
    pub queue: bool,
    pub mail: bool,
    pub mail_filings: u64,
    pub sweep: bool,
    pub sweep_totals: Vec<u64>,
    pub sweep_due: Vec<u64>,
    pub sweep_rounds: usize,
    pub intake: bool,
    pub intake_messages: u64,
    pub intake_batch_sizes: Vec<u32>,
    /// Keep the sweep phase's databases and the work directory.
    pub keep: bool,
    pub bundle: bool,
    /// Rows of the bundle phase's source table.
    pub bundle_rows: u64,
    /// Bundles of the big owner measured (after one of the mid owner).
    pub bundle_rounds: usize,
    /// Keep the bundle phase's source table for the next run.
    pub keep_source: bool,
    pub wait_quiet_secs: f64,
}

fn numbers(list: &str, what: &str) -> anyhow::Result<Vec<u64>> {
    list.split(',')
        .map(|n| n.trim().replace('_', "").parse::<u64>())
        .collect::<Result<Vec<u64>, _>>()
        .with_context(|| format!("{what} takes numbers separated by commas, not {list:?}"))
}

fn default_server_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("rightsdesk")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/rightsdesk")
        })
}

fn parse_args() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut quick = false;
    let mut backend = "all".to_owned();
    let mut out = None;
    let mut rows = None;
    let mut rounds = None;
    let mut secs = None;
    let mut queue_secs = None;
    let mut pg = std::env::var("RIGHTSDESK_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let mut server_bin = None;
    let mut extra_env = Vec::new();
    let mut phases = "all".to_owned();
    let mut mail_filings = None;
    let mut sweep_totals = None;
    let mut sweep_due = None;
    let mut sweep_rounds = None;
    let mut intake_messages = None;
    let mut intake_batch = None;
    let mut keep = false;
    let mut keep_source = false;
    let mut bundle_rows = None;
    let mut bundle_rounds = None;
    let mut wait_quiet = 60.0;
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--quick" => quick = true,
            "--keep" => keep = true,
            "--keep-source" => keep_source = true,
            "--bundle-rows" => {
                bundle_rows = Some(
                    value("--bundle-rows")?
                        .replace('_', "")
                        .parse()
                        .context("--bundle-rows")?,
                )
            }
            "--bundle-rounds" => {
                bundle_rounds = Some(
                    value("--bundle-rounds")?
                        .parse()
                        .context("--bundle-rounds")?,
                )
            }
            "--backend" => backend = value("--backend")?,
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--rows" => rows = Some(value("--rows")?.parse().context("--rows")?),
            "--rounds" => rounds = Some(value("--rounds")?.parse().context("--rounds")?),
            "--secs" => secs = Some(value("--secs")?.parse().context("--secs")?),
            "--queue-secs" => {
                queue_secs = Some(value("--queue-secs")?.parse().context("--queue-secs")?)
            }
            "--pg" => pg = value("--pg")?,
            "--phases" => phases = value("--phases")?,
            "--mail-filings" => {
                mail_filings = Some(value("--mail-filings")?.parse().context("--mail-filings")?)
            }
            "--sweep-totals" => {
                sweep_totals = Some(numbers(&value("--sweep-totals")?, "--sweep-totals")?)
            }
            "--sweep-due" => sweep_due = Some(numbers(&value("--sweep-due")?, "--sweep-due")?),
            "--sweep-rounds" => {
                sweep_rounds = Some(value("--sweep-rounds")?.parse().context("--sweep-rounds")?)
            }
            "--intake-messages" => {
                intake_messages = Some(
                    value("--intake-messages")?
                        .replace('_', "")
                        .parse()
                        .context("--intake-messages")?,
                )
            }
            "--intake-batch" => {
                intake_batch = Some(
                    numbers(&value("--intake-batch")?, "--intake-batch")?
                        .into_iter()
                        .map(u32::try_from)
                        .collect::<Result<Vec<u32>, _>>()
                        .context("--intake-batch")?,
                )
            }
            "--wait-quiet" => {
                wait_quiet = value("--wait-quiet")?.parse().context("--wait-quiet")?
            }
            "--server-bin" => server_bin = Some(PathBuf::from(value("--server-bin")?)),
            "--env" => {
                let kv = value("--env")?;
                let (k, v) = kv.split_once('=').context("--env takes KEY=VALUE")?;
                extra_env.push((k.to_owned(), v.to_owned()));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    let backends = match backend.as_str() {
        "sqlite" => vec![Backend::Sqlite],
        "postgres" | "postgresql" | "pg" => vec![Backend::Postgres],
        "all" => vec![Backend::Sqlite, Backend::Postgres],
        other => bail!("--backend must be sqlite, postgres or all, not {other:?}"),
    };
    let (mut filing, mut queue, mut mail, mut sweep, mut intake, mut bundle) =
        (false, false, false, false, false, false);
    for phase in phases.split(',').map(str::trim) {
        match phase {
            "filing" => filing = true,
            "queue" => queue = true,
            "mail" => mail = true,
            "sweep" => sweep = true,
            "intake" => intake = true,
            "bundle" => bundle = true,
            "all" => {
                (filing, queue, mail, sweep, intake, bundle) = (true, true, true, true, true, true)
            }
            other => bail!(
                "--phases takes filing, queue, mail, sweep, intake, bundle or all, not {other:?}"
            ),
        }
    }
    let intake_messages = intake_messages.unwrap_or(if quick { 500 } else { 10_000 });
    if intake_messages == 0 {
        bail!("--intake-messages must be above 0");
    }
    let intake_batch_sizes =
        intake_batch.unwrap_or_else(|| vec![rightsdesk_mail::imap::DEFAULT_BATCH_SIZE, 1_000]);
    if intake_batch_sizes.is_empty() || intake_batch_sizes.iter().any(|b| !(1..=1_000).contains(b))
    {
        bail!("--intake-batch takes sizes from 1 to 1000");
    }
    let sweep_totals = sweep_totals.unwrap_or(if quick {
        vec![10_000]
    } else {
        vec![100_000, 1_000_000]
    });
    let sweep_due = sweep_due.unwrap_or(if quick {
        vec![100, 1_000]
    } else {
        vec![1_000, 10_000]
    });
    if sweep
        && let (Some(t), Some(d)) = (sweep_totals.iter().min(), sweep_due.iter().max())
        && d > t
    {
        bail!("--sweep-due {d} is more than --sweep-totals {t}");
    }
    let sweep_rounds = sweep_rounds.unwrap_or(if quick { 1 } else { 5 });
    if sweep_rounds == 0 {
        bail!("--sweep-rounds must be above 0");
    }
    let mail_filings = mail_filings.unwrap_or(if quick { 300 } else { 2_000 });
    if mail_filings == 0 {
        bail!("--mail-filings must be above 0");
    }
    let bundle_rows = bundle_rows.unwrap_or(if quick { 100_000 } else { 10_000_000 });
    if bundle_rows < 1_000 {
        bail!("--bundle-rows must be at least 1000");
    }
    let bundle_rounds = bundle_rounds.unwrap_or(if quick { 1 } else { 2 });
    if bundle_rounds == 0 {
        bail!("--bundle-rounds must be above 0");
    }
    Ok(Options {
        wait_quiet_secs: wait_quiet,
        bundle,
        bundle_rows,
        bundle_rounds,
        keep_source,
        filing,
        queue,
        mail,
        mail_filings,
        sweep,
        sweep_totals,
        sweep_due,
        sweep_rounds,
        intake,
        intake_messages,
        intake_batch_sizes,
        keep,
        quick,
        backends,
        out: out.unwrap_or_else(|| {
            if quick {
                PathBuf::from("target/rightsdesk-bench/quick.md")
            } else {
                PathBuf::from("docs/performance.md")
            }
        }),
        rows: rows.unwrap_or(if quick { 10_000 } else { 1_000_000 }),
        rounds: rounds.unwrap_or(if quick { 1 } else { 3 }),
        filing_secs: secs.unwrap_or(if quick { 1.0 } else { 5.0 }),
        queue_secs: queue_secs.unwrap_or(if quick { 0.5 } else { 2.0 }),
        warmup_secs: if quick { 0.3 } else { 1.0 },
        pg_admin_url: pg,
        server_bin: server_bin.unwrap_or_else(default_server_bin),
        extra_env,
    })
}

/// Everything measured on one backend.
#[derive(Debug, Clone)]
pub struct BackendResult {
    pub backend: Backend,
    pub ready_empty: Duration,
    pub mem_idle_empty: Memory,
    /// Filing runs on the empty database, by concurrency and whether each filing sent
    /// an `Idempotency-Key`, one per round.
    pub filing: Vec<(usize, bool, Vec<RunResult>)>,
    /// `GET /healthz` (no database) at 1 and 16 clients: the HTTP stack's ceiling.
    pub plain: Vec<RunResult>,
    /// PostgreSQL: whether the service's connections negotiated TLS.
    pub pg_tls: Option<String>,
    /// The machine's idle share in the second before each phase.
    pub idle_before: Vec<f64>,
    pub mem_after_filing: Memory,
    pub seed: SeedReport,
    pub ready_seeded: Duration,
    pub mem_idle_seeded: Memory,
    pub queue: Vec<(Variant, Vec<RunResult>, Option<Explained>)>,
    /// The console's queue page (`GET /console`), measured in the same rounds.
    pub console: Vec<(Variant, Vec<RunResult>)>,
    /// The dashboard and the metrics scrape, measured in the same rounds.
    pub ops: Vec<(Variant, Vec<RunResult>)>,
    /// The open requests the dashboard and the metrics both counted.
    pub ops_open: Option<u64>,
    /// Filing at 16 clients with the seeded rows in place.
    pub filing_seeded: Vec<RunResult>,
    pub mem_after_queue: Memory,
    /// The outbox delivering to a local SMTP server.
    pub mail: Option<MailResult>,
    /// The sweep phase, by cell (open requests × due on a reminder day).
    pub sweep: Vec<sweep::SweepCell>,
    /// The sweep phase: the machine's idle share in the second before each round; and
    /// on PostgreSQL whether the connections use TLS.
    pub sweep_idle: Vec<f64>,
    pub sweep_tls: Option<String>,
    /// The intake phase's IMAP ingest.
    pub intake: Option<intake::IntakeResult>,
    /// The bundle phase.
    pub bundle: Option<bundle::BundleResult>,
    /// ERROR log lines of the server, by message.
    pub server_errors: BTreeMap<String, usize>,
}

static RUN_TAG: AtomicU64 = AtomicU64::new(0);

const FILING_KINDS: &[&str] = &[
    "access",
    "copy",
    "deletion",
    "account_closure",
    "explanation",
];
const FILING_NAMES: &[(&str, &str)] = &[
    ("李雷", "zh-CN"),
    ("韩梅梅", "zh-CN"),
    ("王芳", "zh-CN"),
    ("张伟", "zh-CN"),
    ("Alice Smith", "en"),
    ("陈静", "zh-CN"),
];

/// `POST /api/v1/requests` bodies with a different email every time, and with a fresh
/// `Idempotency-Key` each when `keyed` (as a careful client sends).
fn filing_maker(port: u16, keyed: bool) -> RequestMaker {
    let tag = RUN_TAG.fetch_add(1, Ordering::Relaxed);
    Arc::new(move |client, seq| {
        let i = client + seq as usize;
        let (name, language) = FILING_NAMES[i % FILING_NAMES.len()];
        let body = json!({
            "kind": FILING_KINDS[i % FILING_KINDS.len()],
            "requester": {
                "name": name,
                "email": format!("bench.{tag}.{client}.{seq}@example.com"),
                "language": language,
            }
        })
        .to_string();
        let key = keyed.then(|| format!("bench-{tag}-{client}-{seq}"));
        load::post_json(port, "/api/v1/requests", &body, None, key.as_deref())
    })
}

fn queue_maker(port: u16, token: &str, variant: &Variant) -> RequestMaker {
    let requests: Vec<Vec<u8>> = variant
        .queries
        .iter()
        .map(|q| variant.request(port, token, q))
        .collect();
    Arc::new(move |client, seq| requests[(client + seq as usize) % requests.len()].clone())
}

fn merge_errors(into: &mut BTreeMap<String, usize>, from: BTreeMap<String, usize>) {
    for (k, n) in from {
        *into.entry(k).or_insert(0) += n;
    }
}

/// Waits (bounded) until nothing else is using the CPU; returns the last idle share.
async fn wait_quiet(opts: &Options) -> anyhow::Result<f64> {
    let started = std::time::Instant::now();
    loop {
        let idle = procstat::machine_idle(Duration::from_secs(1)).await?;
        if idle >= 0.9 || started.elapsed().as_secs_f64() >= opts.wait_quiet_secs {
            if idle < 0.9 {
                eprintln!(
                    "bench: warning: the machine is only {:.0} % idle; other work will disturb the numbers",
                    idle * 100.0
                );
            }
            return Ok(idle);
        }
        eprintln!(
            "bench: the machine is {:.0} % idle; waiting for other work to finish…",
            idle * 100.0
        );
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn log_run(what: &str, r: &RunResult) {
    eprintln!(
        "bench:   {what:<44} c={:<2} {:>8.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}  cpu server {:.2} other {:.2} bench {:.2} idle {:.0}%",
        r.concurrency,
        r.throughput(),
        r.quantile_ms(0.50),
        r.quantile_ms(0.99),
        r.errors,
        r.cpu.server_cores,
        r.cpu.other_cores,
        r.cpu.bench_cores,
        r.cpu.idle * 100.0
    );
    if r.share_slower_than(5.0 * r.quantile_ms(0.5).max(1.0)) > 0.05 {
        eprintln!(
            "bench:     mean {:.2} ms; {:.0} % of the time in requests slower than 5 × p50",
            r.mean_ms(),
            100.0 * r.share_slower_than(5.0 * r.quantile_ms(0.5).max(1.0))
        );
    }
    if let Some(e) = &r.first_error {
        eprintln!(
            "bench:     first error: {}",
            e.chars().take(300).collect::<String>()
        );
    }
}

async fn filing_phase(
    opts: &Options,
    settings: &ServerSettings,
    dir: &Path,
    db: &Database,
    result: &mut BackendResult,
) -> anyhow::Result<()> {
    let server = Server::start(settings, dir, db).await?;
    result.ready_empty = server.ready_after;
    tokio::time::sleep(Duration::from_secs(1)).await;
    result.mem_idle_empty = server.memory()?;
    eprintln!(
        "bench: {} ready after {:.0} ms, idle RSS {:.1} MiB",
        db.backend.name(),
        server.ready_after.as_secs_f64() * 1e3,
        result.mem_idle_empty.rss_mib()
    );
    let health = load::get(server.port, "/healthz", None);
    for c in [1, 16] {
        let health = health.clone();
        let r = load::run(
            server.addr(),
            c,
            secs(opts.warmup_secs * 2.0),
            200,
            Arc::new(move |_, _| health.clone()),
            server.pid,
        )
        .await?;
        log_run("GET /healthz (no database)", &r);
        result.plain.push(r);
    }
    let make = filing_maker(server.port, false);
    let warm = load::run(
        server.addr(),
        16,
        secs(opts.warmup_secs),
        201,
        make.clone(),
        server.pid,
    )
    .await?;
    log_run("warm-up (not counted)", &warm);
    let keyed = filing_maker(server.port, true);
    let mut by_c: Vec<(usize, bool, Vec<RunResult>)> = vec![
        (1, false, Vec::new()),
        (16, false, Vec::new()),
        (16, true, Vec::new()),
    ];
    for round in 0..opts.rounds {
        for (c, with_key, runs) in by_c.iter_mut() {
            let r = load::run(
                server.addr(),
                *c,
                secs(opts.filing_secs),
                201,
                if *with_key {
                    keyed.clone()
                } else {
                    make.clone()
                },
                server.pid,
            )
            .await?;
            let what = if *with_key { ", Idempotency-Key" } else { "" };
            log_run(&format!("filing, round {}{what}", round + 1), &r);
            runs.push(r);
            if db.backend == Backend::Postgres && result.pg_tls.is_none() {
                result.pg_tls = db.tls_in_use().await.ok();
            }
        }
    }
    result.filing = by_c;
    result.mem_after_filing = server.memory()?;
    merge_errors(&mut result.server_errors, server.errors());
    server.stop().await
}

async fn queue_phase(
    opts: &Options,
    settings: &ServerSettings,
    dir: &Path,
    db: &Database,
    result: &mut BackendResult,
) -> anyhow::Result<()> {
    // Officers are made through the API (their passwords are hashed by the service);
    // seeded requests are assigned to them.
    let password = "bench-officer-password";
    let officers = sweep::officers_for_seeding(settings, dir, db, password).await?;

    let now = Utc::now();
    eprintln!(
        "bench: seeding {} requests into {}…",
        opts.rows,
        db.backend.name()
    );
    result.seed = seed::seed(db, opts.rows, seed::Profile::History, officers, now).await?;
    eprintln!(
        "bench:   {} rows ({} open, {} in progress, {} overdue) in {:.1} s, analyze {:.1} s, {:.0} MiB",
        result.seed.rows,
        result.seed.open,
        result.seed.in_progress,
        result.seed.overdue,
        result.seed.insert_time.as_secs_f64(),
        result.seed.analyze_time.as_secs_f64(),
        result.seed.db_bytes as f64 / 1048576.0
    );

    let server = Server::start(settings, dir, db).await?;
    result.ready_seeded = server.ready_after;
    tokio::time::sleep(Duration::from_secs(1)).await;
    result.mem_idle_seeded = server.memory()?;
    let api = Api::new(&server)?;
    let token = api.token("bench.officer", password).await?;
    let today = (Utc::now() + TimeDelta::hours(8)).date_naive();
    let mut variants = queue::base_variants(today);
    // The console's page for each filter, checked against the API's page.
    let mut console = Vec::new();
    for v in variants.iter_mut() {
        let page = queue::check_page(&api, &token, &v.queries[0]).await?;
        v.items_checked = page["items"].as_array().map_or(0, Vec::len);
        let mut c = queue::console_variant(v);
        c.items_checked = queue::check_console_page(&server, &token, &c, &page).await?;
        console.push(c);
    }
    if let Some(v) = queue::cursor_variant(
        &api,
        &token,
        "open",
        "limit=50",
        vec![queue::Cond::Open(true)],
        20,
    )
    .await?
    {
        variants.push(v);
    }
    if let Some(v) = queue::cursor_variant(
        &api,
        &token,
        "kind=deletion",
        "kind=deletion&limit=50",
        vec![
            queue::Cond::Open(true),
            queue::Cond::Kind("deletion".to_owned()),
        ],
        10,
    )
    .await?
    {
        variants.push(v);
    }
    for (name, base, conds) in [
        ("open", "", vec![queue::Cond::Open(true)]),
        (
            "kind=deletion",
            "kind=deletion",
            vec![
                queue::Cond::Open(true),
                queue::Cond::Kind("deletion".to_owned()),
            ],
        ),
    ] {
        if let Some(v) =
            queue::console_cursor_variant(&server, &token, name, base, conds, 10).await?
        {
            console.push(v);
        }
    }
    let mut busy = variants[0].clone();
    busy.name = format!("{}, 16 clients", busy.name);
    busy.concurrency = 16;
    variants.extend(console);
    result.ops_open = Some(queue::check_ops(&api, &token, server.port).await?);
    variants.extend(queue::ops_variants());
    variants.push(busy);

    // Warm-up: every statement prepared, every plan cached, pages in memory.
    for v in &variants {
        let r = load::run(
            server.addr(),
            v.concurrency,
            secs(opts.warmup_secs / 2.0),
            200,
            queue_maker(server.port, &token, v),
            server.pid,
        )
        .await?;
        log_run(&format!("warm-up {}", v.name), &r);
    }
    let mut runs: Vec<Vec<RunResult>> = vec![Vec::new(); variants.len()];
    let mut filing_seeded = Vec::new();
    for round in 0..opts.rounds {
        for (v, runs) in variants.iter().zip(runs.iter_mut()) {
            let r = load::run(
                server.addr(),
                v.concurrency,
                secs(opts.queue_secs),
                200,
                queue_maker(server.port, &token, v),
                server.pid,
            )
            .await?;
            log_run(&format!("{}, round {}", v.name, round + 1), &r);
            runs.push(r);
        }
        let r = load::run(
            server.addr(),
            16,
            secs(opts.filing_secs),
            201,
            filing_maker(server.port, false),
            server.pid,
        )
        .await?;
        log_run(
            &format!("filing with {} rows, round {}", opts.rows, round + 1),
            &r,
        );
        filing_seeded.push(r);
    }
    result.filing_seeded = filing_seeded;
    result.mem_after_queue = server.memory()?;
    merge_errors(&mut result.server_errors, server.errors());
    server.stop().await?;

    // The database side of each API variant, with the server stopped (the console's
    // pages issue the same SELECTs).
    let mut queue = Vec::new();
    for (v, r) in variants.into_iter().zip(runs) {
        if v.page == queue::Page::Console {
            result.console.push((v, r));
            continue;
        }
        if matches!(v.page, queue::Page::Dashboard | queue::Page::Metrics) {
            result.ops.push((v, r));
            continue;
        }
        let explained = if v.concurrency == 1 {
            match queue::explain(db, &v.conds).await {
                Ok(e) => Some(e),
                Err(e) => {
                    eprintln!("bench: explaining {}: {e:#}", v.name);
                    None
                }
            }
        } else {
            None
        };
        queue.push((v, r, explained));
    }
    result.queue = queue;
    Ok(())
}

async fn bench_backend(
    opts: &Options,
    settings: &ServerSettings,
    root: &Path,
    backend: Backend,
) -> anyhow::Result<BackendResult> {
    let dir = root.join(backend.slug());
    std::fs::create_dir_all(&dir)?;
    let mut result = BackendResult {
        backend,
        ready_empty: Duration::ZERO,
        mem_idle_empty: Memory::default(),
        filing: Vec::new(),
        plain: Vec::new(),
        pg_tls: None,
        idle_before: Vec::new(),
        mem_after_filing: Memory::default(),
        seed: SeedReport::default(),
        ready_seeded: Duration::ZERO,
        mem_idle_seeded: Memory::default(),
        queue: Vec::new(),
        console: Vec::new(),
        ops: Vec::new(),
        ops_open: None,
        filing_seeded: Vec::new(),
        mem_after_queue: Memory::default(),
        mail: None,
        sweep: Vec::new(),
        sweep_idle: Vec::new(),
        sweep_tls: None,
        intake: None,
        bundle: None,
        server_errors: BTreeMap::new(),
    };
    eprintln!("bench: == {} ==", backend.name());
    if opts.filing {
        result.idle_before.push(wait_quiet(opts).await?);
        let db = Database::create(backend, &dir, &opts.pg_admin_url, "filing").await?;
        let outcome = filing_phase(opts, settings, &dir, &db, &mut result).await;
        db.drop_now().await?;
        outcome?;
    }
    if opts.queue {
        result.idle_before.push(wait_quiet(opts).await?);
        let db = Database::create(backend, &dir, &opts.pg_admin_url, "queue").await?;
        let outcome = queue_phase(opts, settings, &dir, &db, &mut result).await;
        db.drop_now().await?;
        outcome?;
    }
    if opts.mail {
        result.idle_before.push(wait_quiet(opts).await?);
        let db = Database::create(backend, &dir, &opts.pg_admin_url, "mail").await?;
        let outcome = outbox::mail_phase(opts, settings, &dir, &db, &mut result).await;
        db.drop_now().await?;
        outcome?;
    }
    if opts.sweep {
        result.idle_before.push(wait_quiet(opts).await?);
        sweep::sweep_phase(opts, settings, &dir, backend, &mut result).await?;
    }
    if opts.intake {
        result.idle_before.push(wait_quiet(opts).await?);
        intake::intake_phase(opts, settings, &dir, backend, &mut result).await?;
    }
    if opts.bundle {
        result.idle_before.push(wait_quiet(opts).await?);
        bundle::bundle_phase(opts, settings, &dir, backend, &mut result).await?;
    }
    Ok(result)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let opts = parse_args()?;
    if !opts.server_bin.exists() {
        bail!(
            "{} not found: build it first with\n  cargo build --release -p rightsdesk -p rightsdesk-bench",
            opts.server_bin.display()
        );
    }
    let settings = ServerSettings {
        binary: opts.server_bin.clone(),
        admin_password: "bench-admin-password".to_owned(),
        extra_env: opts.extra_env.clone(),
    };
    let root = std::env::temp_dir().join(format!("rightsdesk-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let machine = report::Machine::collect(&opts).await;
    // Parsing needs no backend: measured once, first, while nothing else runs.
    let parsed = if opts.intake {
        wait_quiet(&opts).await?;
        Some(intake::parse_phase(&opts)?)
    } else {
        None
    };
    let mut results = Vec::new();
    let mut failure = None;
    for backend in &opts.backends {
        match bench_backend(&opts, &settings, &root, *backend).await {
            Ok(r) => results.push(r),
            Err(e) => {
                failure = Some(e.context(format!("benchmarking {}", backend.name())));
                break;
            }
        }
    }
    if let Some(e) = failure {
        eprintln!("bench: failed; server logs are kept in {}", root.display());
        return Err(e);
    }
    if opts.keep {
        eprintln!("bench: kept {}", root.display());
    } else {
        let _ = std::fs::remove_dir_all(&root);
    }
    let text = report::render(&opts, &machine, &results, parsed.as_ref());
    if opts.filing {
        report::write(&opts.out, &text)?;
    } else {
        // Without the filing phase: only the sections of the phases that ran (and their
        // rows of the targets table), the rest as it was.
        let mut sections = Vec::new();
        if opts.mail {
            sections.push(report::Section::Mail(report::render_mail(
                &opts, &machine, &results,
            )));
        }
        if opts.queue {
            sections.push(report::Section::Queue(report::render_queue(
                &opts, &machine, &results,
            )));
            sections.push(report::Section::Plans(report::render_plans(&results)));
        }
        if opts.sweep {
            sections.push(report::Section::Sweep(report::render_sweep(
                &opts, &machine, &results,
            )));
        }
        if opts.bundle {
            sections.push(report::Section::Bundle(report::render_bundle(
                &opts, &machine, &results,
            )));
        }
        if opts.intake {
            sections.push(report::Section::Intake(report::render_intake(
                &opts,
                &machine,
                &results,
                parsed.as_ref(),
            )));
        }
        report::write_sections(&opts.out, &sections, &text)?;
        if opts.queue {
            report::write_target_rows(
                &opts.out,
                report::QUEUE_ROWS,
                &report::queue_target_rows(&opts, &results),
            )?;
        }
        if opts.intake {
            report::write_target_rows(
                &opts.out,
                report::INTAKE_ROWS,
                &report::intake_target_rows(&results, parsed.as_ref()),
            )?;
        }
    }
    eprintln!("bench: wrote {}", opts.out.display());
    println!("{}", report::summary(&results, parsed.as_ref()));
    Ok(())
}
