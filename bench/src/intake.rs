//! The intake phase (issue 5): reading the privacy mailbox.
//!
//! 1. **Parsing and classifying on one core**, in this process: every `.eml` of
//!    `tests/fixtures/mail/` through `rightsdesk_mail::inbound::parse` with the default
//!    limits and, for what parsed and no machine wrote, `rightsdesk_domain::intake::classify`
//!    with the bundled rules, over and over on this one thread. Messages/s over the whole
//!    corpus and over the corpus without its big messages, rounds alternating; and µs per
//!    call for every message alone.
//! 2. **IMAP ingest end to end**: the test harness's Dovecot (`tests/src/imap.rs`) on a free
//!    loopback port, N messages written into its Maildir (made from a dozen messages of
//!    the corpus and one with a small PDF attached, each with its own Message-ID and
//!    sender address), then `rightsdesk worker` on a fresh, migrated database with the
//!    mailbox configured through the environment and polled every second. Timed from
//!    spawning the worker until `intake_messages` holds all N, and until no notification
//!    is `pending` (the acknowledgements go to the folder transport, the default: `.eml`
//!    files in the work directory). Once with the service's default IMAP `batch_size` and
//!    once per larger one asked for. The same mailbox serves every run: a fresh database
//!    has no cursor, so it reads the mailbox again from its first message.
//!
//!    Beside it, the IMAP traffic alone: the bench's own client doing what the poller
//!    does (fetch a batch, mark each message processed) over the same mailbox, without a
//!    database, to tell the mailbox's share of the time from the service's.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use rightsdesk_domain::RequestKind;
use rightsdesk_domain::intake::{IntakeRules, bundled_rules, classify};
use rightsdesk_mail::imap::{Cursor, DEFAULT_BATCH_SIZE, ImapClient};
use rightsdesk_mail::inbound::{InboundLimits, parse};
use rightsdesk_tests::imap::ImapServer;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::sqlite::SqliteConnection;
use sea_orm::sqlx::{self, Connection};

use crate::procstat::{self, CpuSample, Memory};
use crate::server::{Backend, Database, Server, ServerSettings};
use crate::{BackendResult, Options};

/// The inbound corpus (59 messages with `expected.toml` beside them).
const CORPUS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/mail");

/// Messages larger than this are left out of the second throughput figure.
pub const BIG_BYTES: usize = 16 * 1024;

/// Target of issue 5: messages parsed and classified per second on one core.
pub const PARSE_TARGET: f64 = 2_000.0;

/// How long ingest may make no progress at all before the phase fails.
const STALL_LIMIT: Duration = Duration::from_secs(90);

/// How often the bench counts `intake_messages` while the worker runs, in ms.
pub const SAMPLE_EVERY_MS: u64 = 200;
const SAMPLE_EVERY: Duration = Duration::from_millis(SAMPLE_EVERY_MS);

// ---------------------------------------------------------------------------------------
// 1. Parsing and classifying

/// One corpus message timed alone.
#[derive(Debug, Clone)]
pub struct MessageTiming {
    pub name: String,
    pub bytes: usize,
    /// What it becomes in-process: `request (access)`, `ignored (bounce)`, `triage
    /// (not_confident)`, `failed (malformed)`, …
    pub outcome: String,
    pub calls: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
    /// Medians of the two halves timed apart: `parse` alone, and `classify` alone (none
    /// when the message is not classified).
    pub parse_p50_us: f64,
    pub classify_p50_us: Option<f64>,
}

/// What the parse part measured.
#[derive(Debug, Clone, Default)]
pub struct ParseResult {
    pub messages: usize,
    pub bytes: usize,
    /// Messages/s over whole passes of the corpus, one per round.
    pub all: Vec<f64>,
    /// The same without the messages over [`BIG_BYTES`].
    pub small: Vec<f64>,
    /// Those messages: name and size.
    pub excluded: Vec<(String, usize)>,
    pub round_secs: f64,
    /// Every message alone, in corpus order.
    pub timings: Vec<MessageTiming>,
    /// Over the rounds: this process's CPU time / wall time (1.0 = one core busy), and
    /// the machine's idle share.
    pub cpu_cores: f64,
    pub idle: f64,
    /// Outcome category (`request`, `triage`, `ignored`, `failed`) → messages.
    pub outcomes: BTreeMap<String, usize>,
}

/// The corpus, by file name.
fn load_corpus() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(CORPUS_DIR).with_context(|| format!("reading {CORPUS_DIR}"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "eml") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((name, std::fs::read(&path)?));
        }
    }
    out.sort();
    if out.is_empty() {
        bail!("no .eml files in {CORPUS_DIR}");
    }
    Ok(out)
}

/// What the service does with a message before touching the database: parse it and,
/// unless a machine wrote it, classify it. Returns a number so nothing is optimised away.
fn parse_and_classify(raw: &[u8], limits: &InboundLimits, rules: &IntakeRules) -> usize {
    match parse(raw, limits) {
        Ok(m) if m.auto.is_none() => {
            let c = classify(&m.subject, &m.text, rules);
            m.text.len() + c.matched.len()
        }
        Ok(m) => m.text.len(),
        Err(e) => e.code().len(),
    }
}

/// The kinds an email alone files (the others need an officer: `needs_details`, or a
/// complaint's request reference); see `core::intake::filing_from`.
fn files_alone(kind: RequestKind) -> bool {
    matches!(
        kind,
        RequestKind::Access
            | RequestKind::Copy
            | RequestKind::Deletion
            | RequestKind::AccountClosure
            | RequestKind::Explanation
    )
}

/// What a message becomes by its content alone, as `(category, detail)`: `request`
/// (kind), `triage` (why), `ignored` (machine kind) or `failed` (error code). Replies to
/// existing requests need the database and are not told apart here.
pub fn outcome(raw: &[u8], limits: &InboundLimits, rules: &IntakeRules) -> (String, String) {
    match parse(raw, limits) {
        Err(e) => ("failed".to_owned(), e.code().to_owned()),
        Ok(m) => match &m.auto {
            Some(auto) => ("ignored".to_owned(), auto.code().to_owned()),
            None => {
                let c = classify(&m.subject, &m.text, rules);
                match (c.kind, c.confident) {
                    (Some(kind), true) if files_alone(kind) && m.from.is_some() => {
                        ("request".to_owned(), kind.as_str().to_owned())
                    }
                    (Some(kind), true) => (
                        "triage".to_owned(),
                        format!("{} needs an officer", kind.as_str()),
                    ),
                    (Some(_), false) => ("triage".to_owned(), "not_confident".to_owned()),
                    (None, _) => ("triage".to_owned(), "not_classified".to_owned()),
                }
            }
        },
    }
}

/// Messages per second over whole passes of `corpus` for at least `secs`.
fn passes(corpus: &[&[u8]], secs: f64, limits: &InboundLimits, rules: &IntakeRules) -> f64 {
    let started = Instant::now();
    let mut done = 0usize;
    loop {
        for raw in corpus {
            black_box(parse_and_classify(black_box(raw), limits, rules));
        }
        done += corpus.len();
        let elapsed = started.elapsed().as_secs_f64();
        if elapsed >= secs {
            return done as f64 / elapsed;
        }
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Part 1, on the calling thread (the bench's runtime is single-threaded and idle).
pub fn parse_phase(opts: &Options) -> anyhow::Result<ParseResult> {
    let corpus = load_corpus()?;
    let limits = InboundLimits::default();
    let rules = bundled_rules();
    let mut result = ParseResult {
        messages: corpus.len(),
        bytes: corpus.iter().map(|(_, raw)| raw.len()).sum(),
        round_secs: if opts.quick { 0.3 } else { 1.0 },
        ..ParseResult::default()
    };
    eprintln!(
        "bench: intake: parsing and classifying {} messages ({:.0} kB) of {CORPUS_DIR} on one thread…",
        corpus.len(),
        result.bytes as f64 / 1e3
    );

    // Every message alone: about 40 ms of calls each, every call timed.
    for (name, raw) in &corpus {
        let (category, detail) = outcome(raw, &limits, &rules);
        *result.outcomes.entry(category.clone()).or_insert(0) += 1;
        let t = Instant::now();
        black_box(parse_and_classify(raw, &limits, &rules));
        let once = t.elapsed().as_secs_f64().max(1e-7);
        let calls = ((0.04 / once) as usize).clamp(20, 5_000);
        let mut us = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            black_box(parse_and_classify(black_box(raw), &limits, &rules));
            us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let mean = us.iter().sum::<f64>() / us.len() as f64;
        us.sort_by(f64::total_cmp);
        let median_of = |f: &dyn Fn()| {
            let mut v: Vec<f64> = (0..calls)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64() * 1e6
                })
                .collect();
            v.sort_by(f64::total_cmp);
            quantile(&v, 0.5)
        };
        let parse_p50_us = median_of(&|| {
            black_box(parse(black_box(raw), &limits).is_ok());
        });
        let classify_p50_us = match parse(raw, &limits) {
            Ok(m) if m.auto.is_none() => Some(median_of(&|| {
                black_box(classify(black_box(&m.subject), black_box(&m.text), &rules));
            })),
            _ => None,
        };
        result.timings.push(MessageTiming {
            name: name.clone(),
            bytes: raw.len(),
            outcome: format!("{category} ({detail})"),
            calls,
            p50_us: quantile(&us, 0.5),
            p99_us: quantile(&us, 0.99),
            mean_us: mean,
            parse_p50_us,
            classify_p50_us,
        });
    }

    // Throughput: whole passes, the two corpora alternating within each round.
    let all: Vec<&[u8]> = corpus.iter().map(|(_, raw)| raw.as_slice()).collect();
    let small: Vec<&[u8]> = corpus
        .iter()
        .filter(|(_, raw)| raw.len() <= BIG_BYTES)
        .map(|(_, raw)| raw.as_slice())
        .collect();
    result.excluded = corpus
        .iter()
        .filter(|(_, raw)| raw.len() > BIG_BYTES)
        .map(|(name, raw)| (name.clone(), raw.len()))
        .collect();
    let rounds = if opts.quick { 2 } else { opts.rounds.max(7) };
    // Warm-up: caches, the allocator, the rules' lazily built parts.
    passes(&all, result.round_secs / 2.0, &limits, &rules);
    let cpu_before = procstat::process_cpu_secs(std::process::id())?;
    let machine_before = procstat::snapshot(std::process::id())?;
    let started = Instant::now();
    for round in 0..rounds {
        let a = passes(&all, result.round_secs, &limits, &rules);
        let s = passes(&small, result.round_secs, &limits, &rules);
        eprintln!(
            "bench:   round {}: {a:>8.0} messages/s (all {}), {s:>8.0} messages/s (without {} over {} kB)",
            round + 1,
            all.len(),
            result.excluded.len(),
            BIG_BYTES / 1024
        );
        result.all.push(a);
        result.small.push(s);
    }
    let wall = started.elapsed();
    result.cpu_cores =
        (procstat::process_cpu_secs(std::process::id())? - cpu_before) / wall.as_secs_f64();
    result.idle = procstat::snapshot(std::process::id())?
        .since(&machine_before, wall)
        .idle;
    Ok(result)
}

// ---------------------------------------------------------------------------------------
// 2. IMAP ingest

/// Corpus messages the mailbox is filled with, and how many of every 21 messages each
/// makes (with [`ATTACHMENT_TEMPLATE`] twice): mostly requests, in Chinese and English,
/// plain, HTML-only and Outlook/QQ/Foxmail multipart in GB2312, GB18030 and UTF-8; some
/// machine mail (an Exchange out-of-office, a ticket auto-reply, a qmail bounce of one of
/// our notifications) and a vague message and a next-of-kin request with a PDF, which
/// wait for an officer.
pub const TEMPLATES: &[(&str, usize)] = &[
    ("access_en_gmail.eml", 3),
    ("access_zh_outlook.eml", 3),
    ("account_closure_zh_qq.eml", 2),
    ("deletion_en_html_only.eml", 2),
    ("deletion_zh_gb2312_qp.eml", 2),
    ("copy_zh_foxmail.eml", 2),
    ("ooo_en_exchange.eml", 1),
    ("auto_reply_precedence.eml", 1),
    ("bounce_qmail_plain.eml", 1),
    ("vague_en.eml", 1),
    ("next_of_kin_zh_pdf.eml", 1),
];

/// A request written for this bench: Chinese and English text (UTF-8, base64) and a
/// copy of an ID card as a small PDF, which the request keeps as evidence.
pub const ATTACHMENT_TEMPLATE: (&str, usize) = ("(bench) access_zh_en_with_pdf", 2);

fn attachment_message() -> Vec<u8> {
    let b64 = |bytes: &[u8]| {
        let s = base64::engine::general_purpose::STANDARD.encode(bytes);
        s.as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let text = "您好：\r\n\r\n根据《个人信息保护法》第四十五条，我申请查阅贵公司持有的我的个人信息，\
                包括收集了哪些个人信息、处理目的和保存期限。附件是我的身份证扫描件，供核验身份。\r\n\r\n\
                Hello, this is a subject access request: please tell me what personal data you hold \
                about me. A scan of my ID card is attached for verification.\r\n\r\n李伟\r\n";
    let mut pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
        2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
        3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj\n"
        .to_vec();
    // An image stream's worth of bytes: the attachment is about 3 kB.
    pdf.extend_from_slice(b"4 0 obj << /Length 2400 >> stream\n");
    pdf.extend((0..2400u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    pdf.extend_from_slice(b"\nendstream endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
    format!(
        "Return-Path: <li.wei@example.org>\r\n\
         From: =?UTF-8?B?{name}?= <li.wei@example.org>\r\n\
         To: privacy@example.com\r\n\
         Subject: =?UTF-8?B?{subject}?=\r\n\
         Date: Tue, 06 Jan 2026 09:30:00 +0800\r\n\
         Message-ID: <template@mail.example.org>\r\n\
         X-Mailer: NetEase Mail 2.x\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"=_bench_boundary_1\"\r\n\
         \r\n\
         --=_bench_boundary_1\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {text}\r\n\
         --=_bench_boundary_1\r\n\
         Content-Type: application/pdf; name=\"id-card.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"id-card.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {pdf}\r\n\
         --=_bench_boundary_1--\r\n",
        name = base64::engine::general_purpose::STANDARD.encode("李伟"),
        subject = base64::engine::general_purpose::STANDARD
            .encode("个人信息查阅申请 / Subject access request"),
        text = b64(text.as_bytes()),
        pdf = b64(&pdf),
    )
    .into_bytes()
}

/// One kind of message in the mailbox.
pub struct Template {
    pub name: String,
    pub raw: Vec<u8>,
    pub weight: usize,
    /// What it becomes by its content (`request`, `ignored`, `triage`, `failed`) and why.
    pub expected: (String, String),
}

fn templates() -> anyhow::Result<Vec<Template>> {
    let limits = InboundLimits::default();
    let rules = bundled_rules();
    let mut out = Vec::new();
    for (name, weight) in TEMPLATES {
        let raw = std::fs::read(Path::new(CORPUS_DIR).join(name))
            .with_context(|| format!("reading {CORPUS_DIR}/{name}"))?;
        out.push((name.to_string(), raw, *weight));
    }
    out.push((
        ATTACHMENT_TEMPLATE.0.to_owned(),
        attachment_message(),
        ATTACHMENT_TEMPLATE.1,
    ));
    out.into_iter()
        .map(|(name, raw, weight)| {
            // What the messages made from it become (checked on the first one).
            let expected = outcome(&personalise(&raw, 0, "check"), &limits, &rules);
            Ok(Template {
                name,
                raw,
                weight,
                expected,
            })
        })
        .collect()
}

/// Template indices in mailbox order: every template `weight` times in each cycle,
/// interleaved.
fn cycle(templates: &[Template]) -> Vec<usize> {
    let most = templates.iter().map(|t| t.weight).max().unwrap_or(0);
    let mut out = Vec::new();
    for round in 0..most {
        for (i, t) in templates.iter().enumerate() {
            if t.weight > round {
                out.push(i);
            }
        }
    }
    out
}

/// `address` with `n` in a subdomain: `a@example.com` → `a@m7.example.com`.
fn unique_address(address: &str, n: u64) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@m{n}.{domain}"),
        None => format!("{address}.m{n}@example.net"),
    }
}

/// `raw` with its own Message-ID (`<bench-<tag>-<n>@mail.example.net>`) and a sender
/// address of its own (in `From`, and in `Return-Path` unless that is the null sender);
/// everything else as it was, line endings included.
pub fn personalise(raw: &[u8], n: u64, tag: &str) -> Vec<u8> {
    let crlf = raw.windows(2).any(|w| w == b"\r\n");
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let blank: Vec<u8> = [eol, eol].concat();
    let head_end = raw
        .windows(blank.len())
        .position(|w| w == blank.as_slice())
        .map_or(raw.len(), |p| p + eol.len());
    let (head, body) = raw.split_at(head_end);
    // Header fields with their continuation lines.
    let mut fields: Vec<Vec<u8>> = Vec::new();
    for line in head.split_inclusive(|&b| b == b'\n') {
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        match fields.last_mut() {
            Some(last) if folded => last.extend_from_slice(line),
            _ => fields.push(line.to_vec()),
        }
    }
    let name_of = |f: &[u8]| -> String {
        let colon = f.iter().position(|&b| b == b':').unwrap_or(0);
        String::from_utf8_lossy(&f[..colon]).to_ascii_lowercase()
    };
    let value_of = |f: &[u8]| -> String {
        let colon = f.iter().position(|&b| b == b':').map_or(0, |c| c + 1);
        String::from_utf8_lossy(&f[colon..])
            .replace(['\r', '\n'], "")
            .trim()
            .to_owned()
    };
    let mut out = Vec::with_capacity(raw.len() + 100);
    let mut had_id = false;
    for f in &fields {
        let line = match name_of(f).as_str() {
            "message-id" => {
                had_id = true;
                format!("Message-ID: <bench-{tag}-{n}@mail.example.net>")
            }
            "from" => {
                let v = value_of(f);
                match (v.rfind('<'), v.rfind('>')) {
                    (Some(lt), Some(gt)) if lt < gt => format!(
                        "From: {}<{}>{}",
                        &v[..lt],
                        unique_address(&v[lt + 1..gt], n),
                        &v[gt + 1..]
                    ),
                    _ => format!("From: {}", unique_address(&v, n)),
                }
            }
            "return-path" => {
                let v = value_of(f);
                let inner = v.trim_start_matches('<').trim_end_matches('>').trim();
                if inner.is_empty() {
                    "Return-Path: <>".to_owned()
                } else {
                    format!("Return-Path: <{}>", unique_address(inner, n))
                }
            }
            _ => {
                out.extend_from_slice(f);
                continue;
            }
        };
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(eol);
    }
    if !had_id {
        out.extend_from_slice(format!("Message-ID: <bench-{tag}-{n}@mail.example.net>").as_bytes());
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(body);
    out
}

/// The IMAP traffic of one ingest alone: the bench's own client fetching every message
/// in batches and marking each processed, as the poller does, without a database.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImapOnly {
    pub batch_size: u32,
    pub messages: u64,
    pub elapsed: Duration,
    /// Of which in `fetch_new` (the sizes of everything after the cursor, then the batch).
    pub fetching: Duration,
}

impl ImapOnly {
    pub fn per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

/// One ingest by the worker.
#[derive(Debug, Clone, Default)]
pub struct IngestRun {
    pub batch_size: u32,
    /// Whether `batch_size` is the service's default (not set in the environment).
    pub default_batch: bool,
    pub messages: u64,
    /// From spawning the worker to: the first message recorded, all recorded, no
    /// notification `pending`.
    pub first_after: Duration,
    pub recorded_after: Duration,
    pub acked_after: Duration,
    /// Between the first and the last message recorded: time in which the count did not
    /// move (the poll job waiting for its next run).
    pub waiting: Duration,
    /// Stretches of samples in which the count stood still, between the first and the
    /// last message recorded.
    pub stills: usize,
    /// `intake_messages` by status, and the reasons of triage and failed ones.
    pub by_status: BTreeMap<String, u64>,
    pub reasons: BTreeMap<String, u64>,
    /// What the templates' content predicts, by status.
    pub expected: BTreeMap<String, u64>,
    pub rows: u64,
    pub distinct_message_ids: u64,
    pub distinct_uids: u64,
    pub requests: u64,
    /// Notifications by channel and status (`email sent` → n), and `.eml` files the folder
    /// transport wrote.
    pub notifications: BTreeMap<String, u64>,
    pub ack_files: u64,
    pub evidence: u64,
    /// Spawn to all recorded: worker, everything else (Dovecot, PostgreSQL), machine idle.
    pub cpu: CpuSample,
    /// Of `cpu.other_cores`: Dovecot's processes and PostgreSQL's (every live process of
    /// their binaries, so also those of other work on the machine).
    pub dovecot_cores: f64,
    pub postgres_cores: f64,
    pub peak: Memory,
    /// PostgreSQL, from spawn to all recorded (`pg_stat_database`): transactions
    /// committed (a statement outside a transaction counts as one) less the bench's own
    /// counting queries, and rows inserted and updated.
    pub commits: Option<i64>,
    pub rows_inserted: Option<i64>,
    pub rows_updated: Option<i64>,
    pub errors: BTreeMap<String, usize>,
}

impl IngestRun {
    pub fn per_sec(&self) -> f64 {
        self.messages as f64 / self.recorded_after.as_secs_f64()
    }

    /// Messages per second while the count was moving.
    pub fn active_per_sec(&self) -> f64 {
        let active = self
            .recorded_after
            .saturating_sub(self.first_after)
            .saturating_sub(self.waiting);
        self.messages as f64 / active.as_secs_f64()
    }

    pub fn duplicates(&self) -> u64 {
        self.rows.saturating_sub(self.distinct_message_ids)
            + self.rows.saturating_sub(self.distinct_uids)
    }
}

/// Everything the intake phase measured on one backend.
#[derive(Debug, Clone, Default)]
pub struct IntakeResult {
    pub imap_fill: Duration,
    pub imap_index: Duration,
    pub mailbox_bytes: u64,
    pub template_names: Vec<(String, usize, String)>,
    pub imap_only: Vec<ImapOnly>,
    pub runs: Vec<IngestRun>,
    /// The machine's idle share in the second before each worker run.
    pub idle_before: Vec<f64>,
}

/// A direct connection to the scratch database, for counting.
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

    async fn count(&mut self, sql: &str) -> anyhow::Result<i64> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        Ok(match self {
            Db::Sqlite(c) => sqlx::query_scalar(sql).fetch_one(c).await?,
            Db::Postgres(c) => sqlx::query_scalar(sql).fetch_one(c).await?,
        })
    }

    /// `SELECT <text>, count(*) … GROUP BY 1`.
    async fn grouped(&mut self, sql: &str) -> anyhow::Result<BTreeMap<String, u64>> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        let rows: Vec<(Option<String>, i64)> = match self {
            Db::Sqlite(c) => sqlx::query_as(sql).fetch_all(c).await?,
            Db::Postgres(c) => sqlx::query_as(sql).fetch_all(c).await?,
        };
        Ok(rows
            .into_iter()
            .map(|(k, n)| (k.unwrap_or_else(|| "–".to_owned()), n.max(0) as u64))
            .collect())
    }

    /// PostgreSQL: transactions committed, rows inserted and rows updated in the current
    /// database so far (the statistics lag by up to a second; read after a pause).
    async fn commits(&mut self) -> anyhow::Result<Option<(i64, i64, i64)>> {
        match self {
            Db::Sqlite(_) => Ok(None),
            Db::Postgres(c) => {
                sqlx::raw_sql("SELECT pg_stat_clear_snapshot()")
                    .execute(&mut *c)
                    .await?;
                Ok(Some(
                    sqlx::query_as(
                        "SELECT xact_commit, tup_inserted, tup_updated FROM pg_stat_database \
                         WHERE datname = current_database()",
                    )
                    .fetch_one(c)
                    .await?,
                ))
            }
        }
    }

    async fn close(self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(c) => c.close().await?,
            Db::Postgres(c) => c.close().await?,
        }
        Ok(())
    }
}

/// The worker's environment: the mailbox `privacy` on the Dovecot, polled every second;
/// mail to the folder transport in `outbox`.
fn worker_env(imap: &ImapServer, batch_size: Option<u32>, outbox: &Path) -> Vec<(String, String)> {
    let config = imap.client_config();
    let p = "RIGHTSDESK__INTAKE__MAILBOXES__PRIVACY__";
    let mut env: Vec<(String, String)> = vec![
        (format!("{p}HOST"), config.host.clone()),
        (format!("{p}PORT"), config.effective_port().to_string()),
        (format!("{p}SECURITY"), "plain".to_owned()),
        (format!("{p}ALLOW_PLAIN"), "true".to_owned()),
        (format!("{p}USERNAME"), config.username.clone()),
        (format!("{p}PASSWORD"), config.password.expose().to_owned()),
        (format!("{p}MAILBOX"), "INBOX".to_owned()),
        (
            "RIGHTSDESK__WORKER__EVERY_SECS__POLL_MAILBOXES".to_owned(),
            "1".to_owned(),
        ),
        (
            "RIGHTSDESK__MAIL__TRANSPORT".to_owned(),
            "folder".to_owned(),
        ),
        (
            "RIGHTSDESK__MAIL__FOLDER".to_owned(),
            outbox.display().to_string(),
        ),
    ];
    if let Some(n) = batch_size {
        env.push((format!("{p}BATCH_SIZE"), n.to_string()));
    }
    env
}

/// The bench's own client over the mailbox: every message fetched and marked processed.
async fn imap_only(imap: &ImapServer, batch_size: u32) -> anyhow::Result<ImapOnly> {
    let mut config = imap.client_config();
    config.batch_size = batch_size;
    let client = ImapClient::new(config)?;
    let started = Instant::now();
    let mut session = client.connect().await?;
    let mut cursor: Option<Cursor> = None;
    let mut out = ImapOnly {
        batch_size,
        ..ImapOnly::default()
    };
    loop {
        let t = Instant::now();
        let batch = session.fetch_new(cursor).await?;
        out.fetching += t.elapsed();
        for m in &batch.messages {
            session.mark_processed(m.uid).await?;
            out.messages += 1;
            cursor = Some(batch.cursor_after(m.uid));
        }
        if !batch.more || batch.messages.is_empty() {
            break;
        }
    }
    session.logout().await?;
    out.elapsed = started.elapsed();
    Ok(out)
}

/// CPU seconds used so far by the live processes whose executable starts with one of
/// `prefixes` (e.g. Dovecot's, PostgreSQL's), with their exited children's (the `imap`
/// process of each closed IMAP session is in its master's).
fn cpu_of(prefixes: &[&str]) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read_link(e.path().join("exe")).is_ok_and(|exe| {
                let exe = exe.to_string_lossy();
                prefixes.iter().any(|p| exe.starts_with(p))
            })
        })
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_string_lossy().parse().ok()?;
            procstat::process_tree_cpu_secs(pid).ok()
        })
        .sum()
}

const DOVECOT_EXES: &[&str] = &["/usr/sbin/dovecot", "/usr/lib/dovecot/"];
const POSTGRES_EXES: &[&str] = &["/usr/lib/postgresql/"];

fn count_files(dir: &Path) -> u64 {
    walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .count() as u64
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// `rightsdesk migrate` on `db`.
async fn migrate(settings: &ServerSettings, dir: &Path, db: &Database) -> anyhow::Result<()> {
    let mut cmd = tokio::process::Command::new(&settings.binary);
    cmd.arg("migrate")
        .current_dir(dir)
        .env_remove("RIGHTSDESK_CONFIG")
        .env("RIGHTSDESK__DATABASE__URL", &db.url)
        .env("RIGHTSDESK__LOG__LEVEL", "warn");
    for (k, v) in &settings.extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.context("running rightsdesk migrate")?;
    if !out.status.success() {
        bail!(
            "rightsdesk migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// One ingest: a fresh database, the worker, the count until all are recorded and
/// acknowledged.
async fn ingest(
    opts: &Options,
    settings: &ServerSettings,
    dir: &Path,
    backend: Backend,
    imap: &ImapServer,
    batch_size: u32,
    expected: &BTreeMap<String, u64>,
) -> anyhow::Result<IngestRun> {
    let default_batch = batch_size == DEFAULT_BATCH_SIZE;
    let label = format!("intake{batch_size}");
    let db = Database::create(backend, dir, &opts.pg_admin_url, &label).await?;
    let outcome = ingest_on(
        opts,
        settings,
        dir,
        &db,
        imap,
        batch_size,
        default_batch,
        expected,
    )
    .await;
    if opts.keep {
        eprintln!("bench:   kept the database {}", db.url);
    } else {
        db.drop_now().await?;
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn ingest_on(
    opts: &Options,
    settings: &ServerSettings,
    dir: &Path,
    db: &Database,
    imap: &ImapServer,
    batch_size: u32,
    default_batch: bool,
    expected: &BTreeMap<String, u64>,
) -> anyhow::Result<IngestRun> {
    let n = opts.intake_messages;
    let workdir = dir.join(format!("intake-{batch_size}"));
    let _ = std::fs::remove_dir_all(&workdir);
    std::fs::create_dir_all(&workdir)?;
    let outbox = workdir.join("outbox");
    migrate(settings, &workdir, db).await?;
    let mut conn = Db::connect(db).await?;
    let commits_before = conn.commits().await?;
    let env = worker_env(imap, (!default_batch).then_some(batch_size), &outbox);
    eprintln!(
        "bench:   {}: rightsdesk worker, IMAP batch_size {batch_size}{}; {} messages to record…",
        db.backend.name(),
        if default_batch { " (default)" } else { "" },
        n
    );
    let cpu_before = procstat::snapshot_before_spawn()?;
    let dovecot_before = cpu_of(DOVECOT_EXES);
    let postgres_before = cpu_of(POSTGRES_EXES);
    let mut worker = Server::spawn(settings, &workdir, db, &["worker"], &env)?;
    let t0 = worker.spawned_at;
    let mut run = IngestRun {
        batch_size,
        default_batch,
        messages: n,
        expected: expected.clone(),
        ..IngestRun::default()
    };
    let mut first = None;
    let mut recorded_at = None;
    let mut last = (0i64, i64::MAX);
    let mut last_change = Instant::now();
    let mut previous_sample: Option<(Instant, i64)> = None;
    let mut queries = 0i64;
    let mut moving = true;
    loop {
        worker.check_running()?;
        let recorded = conn.count("SELECT count(*) FROM intake_messages").await?;
        queries += 1;
        let now = Instant::now();
        if recorded > 0 && first.is_none() {
            first = Some(now - t0);
        }
        if let Some((at, before)) = previous_sample
            && first.is_some()
            && recorded_at.is_none()
        {
            if recorded == before {
                run.waiting += now - at;
                if moving {
                    run.stills += 1;
                }
            }
            moving = recorded != before;
        }
        previous_sample = Some((now, recorded));
        if recorded >= n as i64 && recorded_at.is_none() {
            recorded_at = Some(now - t0);
            run.cpu = procstat::snapshot(worker.pid)?.since(&cpu_before, now - t0);
            let secs = (now - t0).as_secs_f64();
            run.dovecot_cores = (cpu_of(DOVECOT_EXES) - dovecot_before).max(0.0) / secs;
            run.postgres_cores = (cpu_of(POSTGRES_EXES) - postgres_before).max(0.0) / secs;
            eprintln!(
                "bench:     all {recorded} recorded after {:.2} s ({:.0}/s)",
                (now - t0).as_secs_f64(),
                n as f64 / (now - t0).as_secs_f64()
            );
        }
        let pending = if recorded_at.is_some() {
            queries += 1;
            conn.count("SELECT count(*) FROM notifications WHERE status = 'pending'")
                .await?
        } else {
            i64::MAX
        };
        if recorded_at.is_some() && pending == 0 {
            run.acked_after = now - t0;
            break;
        }
        if (recorded, pending) != last {
            last = (recorded, pending);
            last_change = now;
        } else if last_change.elapsed() > STALL_LIMIT {
            bail!(
                "ingest made no progress for {} s: {recorded} of {n} messages recorded, {} notifications pending\n{}",
                STALL_LIMIT.as_secs(),
                if pending == i64::MAX {
                    "?".to_owned()
                } else {
                    pending.to_string()
                },
                worker.stderr_tail()
            );
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    run.first_after = first.unwrap_or_default();
    run.recorded_after = recorded_at.unwrap_or(run.acked_after);
    run.peak = worker.memory()?;
    run.errors = worker.errors();
    worker.stop().await?;

    // The statistics collector reports commits within about a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    if let (Some(before), Some(after)) = (commits_before, conn.commits().await?) {
        // The bench's own statements each commit too (autocommit).
        run.commits = Some(after.0 - before.0 - queries - 1);
        run.rows_inserted = Some(after.1 - before.1);
        run.rows_updated = Some(after.2 - before.2);
    }
    run.by_status = conn
        .grouped("SELECT status, count(*) FROM intake_messages GROUP BY 1")
        .await?;
    run.reasons = conn
        .grouped(
            "SELECT status || ': ' || coalesce(reason, '–'), count(*) FROM intake_messages \
             WHERE status <> 'request' GROUP BY 1",
        )
        .await?;
    run.rows = conn.count("SELECT count(*) FROM intake_messages").await? as u64;
    run.distinct_message_ids = conn
        .count("SELECT count(DISTINCT message_id) FROM intake_messages")
        .await? as u64;
    run.distinct_uids = conn
        .count("SELECT count(DISTINCT source_uid) FROM intake_messages")
        .await? as u64;
    run.requests = conn.count("SELECT count(*) FROM requests").await? as u64;
    run.evidence = conn.count("SELECT count(*) FROM evidence").await? as u64;
    run.notifications = conn
        .grouped("SELECT channel || ' ' || status, count(*) FROM notifications GROUP BY 1")
        .await?;
    conn.close().await?;
    run.ack_files = count_files(&outbox);
    eprintln!(
        "bench:     acknowledgements all sent after {:.2} s; {:?}; {} requests; notifications {:?}; {} .eml files; recorded twice: {}; peak RSS {:.1} MiB; cpu worker {:.2} other {:.2} (dovecot {:.2}, postgres {:.2}) idle {:.0}%{}",
        run.acked_after.as_secs_f64(),
        run.by_status,
        run.requests,
        run.notifications,
        run.ack_files,
        run.duplicates(),
        run.peak.hwm_mib(),
        run.cpu.server_cores,
        run.cpu.other_cores,
        run.dovecot_cores,
        run.postgres_cores,
        run.cpu.idle * 100.0,
        run.commits.map_or(String::new(), |c| format!(
            "; {:.1} commits per message",
            c as f64 / n as f64
        )),
    );
    Ok(run)
}

/// Part 2 on one backend.
pub async fn intake_phase(
    opts: &Options,
    settings: &ServerSettings,
    dir: &Path,
    backend: Backend,
    result: &mut BackendResult,
) -> anyhow::Result<()> {
    let n = opts.intake_messages;
    let templates = templates()?;
    let order = cycle(&templates);
    let mut intake = IntakeResult {
        template_names: templates
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.weight,
                    format!("{} ({})", t.expected.0, t.expected.1),
                )
            })
            .collect(),
        ..IntakeResult::default()
    };
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..n {
        let t = &templates[order[(i as usize) % order.len()]];
        *expected.entry(t.expected.0.clone()).or_insert(0) += 1;
    }

    let imap = ImapServer::start().await;
    let t = Instant::now();
    let tag = format!("{}-{}", std::process::id(), backend.slug());
    for i in 0..n {
        let t = &templates[order[(i as usize) % order.len()]];
        let raw = personalise(&t.raw, i, &tag);
        intake.mailbox_bytes += raw.len() as u64;
        imap.deliver_raw(&raw);
    }
    intake.imap_fill = t.elapsed();
    // Dovecot indexes the new Maildir on the first SELECT; the first pass of the bench's
    // own client takes that, so that no worker run pays it.
    let t = Instant::now();
    let warm = imap_only(&imap, 1000).await?;
    intake.imap_index = t.elapsed();
    if warm.messages != n {
        bail!(
            "the mailbox shows {} messages over IMAP, not the {n} delivered",
            warm.messages
        );
    }
    eprintln!(
        "bench: intake on {}: {n} messages ({:.1} MB) in Dovecot's Maildir in {:.1} s, first pass (indexing) {:.1} s; expected {:?}",
        backend.name(),
        intake.mailbox_bytes as f64 / 1e6,
        intake.imap_fill.as_secs_f64(),
        intake.imap_index.as_secs_f64(),
        expected
    );
    for &batch in &opts.intake_batch_sizes {
        let only = imap_only(&imap, batch).await?;
        eprintln!(
            "bench:   IMAP alone, batch_size {batch}: {} messages fetched and marked in {:.2} s ({:.0}/s; fetching {:.2} s)",
            only.messages,
            only.elapsed.as_secs_f64(),
            only.per_sec(),
            only.fetching.as_secs_f64()
        );
        intake.imap_only.push(only);
    }
    for &batch in &opts.intake_batch_sizes {
        intake.idle_before.push(crate::wait_quiet(opts).await?);
        let run = ingest(opts, settings, dir, backend, &imap, batch, &expected).await?;
        crate::merge_errors(&mut result.server_errors, run.errors.clone());
        intake.runs.push(run);
    }
    drop(imap);
    result.intake = Some(intake);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personalised_messages_have_their_own_id_and_sender() {
        let limits = InboundLimits::default();
        for (name, _) in TEMPLATES {
            let raw = std::fs::read(Path::new(CORPUS_DIR).join(name)).unwrap_or_default();
            let a = parse(&personalise(&raw, 1, "t"), &limits).expect("parses");
            let b = parse(&personalise(&raw, 2, "t"), &limits).expect("parses");
            assert_eq!(a.message_id.as_deref(), Some("bench-t-1@mail.example.net"));
            assert_ne!(a.message_id, b.message_id, "{name}");
            assert_ne!(
                a.from.as_ref().map(|m| &m.address),
                b.from.as_ref().map(|m| &m.address),
                "{name}"
            );
            assert_eq!(a.subject, b.subject, "{name}");
            assert_eq!(a.text, b.text, "{name}");
        }
    }

    #[test]
    fn the_templates_make_mostly_requests() {
        let templates = templates().expect("templates");
        let order = cycle(&templates);
        let requests = order
            .iter()
            .filter(|&&i| templates[i].expected.0 == "request")
            .count();
        assert!(
            requests * 4 >= order.len() * 3,
            "{requests} of {}",
            order.len()
        );
        let attachment = templates
            .iter()
            .find(|t| t.name == ATTACHMENT_TEMPLATE.0)
            .expect("the attachment template");
        assert_eq!(attachment.expected.0, "request");
    }
}
