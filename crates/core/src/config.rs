//! Settings owned by the use-cases; the server composes them into its configuration.

use serde::{Deserialize, Serialize};

/// `[security]`: officer tokens and logins.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// HMAC key (at least 32 bytes) that signs officer tokens. When unset, a random key
    /// is generated on first start and kept in the database, shared by every instance.
    pub token_secret: Option<String>,
    /// Key (at least 32 bytes) from which requester tokens are derived; generated and
    /// kept in the database when unset.
    pub requester_token_key: Option<String>,
    /// `iss` of officer tokens.
    pub token_issuer: String,
    /// `aud` of officer tokens.
    pub token_audience: String,
    /// Lifetime of an officer token, in seconds.
    pub token_ttl_secs: u64,
    /// Failed logins in a row before an account is locked.
    pub max_failed_logins: u32,
    /// How long a locked account stays locked, in seconds.
    pub lockout_secs: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            token_secret: None,
            requester_token_key: None,
            token_issuer: "rightsdesk".to_owned(),
            token_audience: "rightsdesk-officers".to_owned(),
            token_ttl_secs: 900,
            max_failed_logins: 5,
            lockout_secs: 900,
        }
    }
}

/// `[deadlines]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadlinesConfig {
    /// The rule pack applied to new requests.
    pub default_pack: String,
    /// A directory of rule-pack files (`*.toml`, the format of the bundled
    /// `crates/domain/packs/`) that replace bundled packs of the same name or add packs.
    pub packs_dir: Option<std::path::PathBuf>,
}

impl Default for DeadlinesConfig {
    fn default() -> Self {
        Self {
            default_pack: "pipl".to_owned(),
            packs_dir: None,
        }
    }
}

/// `[bootstrap]`: the first administrator, created when no officer exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    pub admin_username: String,
    /// When unset, a one-time password is generated and printed once on standard output.
    pub admin_password: Option<String>,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            admin_username: "admin".to_owned(),
            admin_password: None,
        }
    }
}

/// `[verification]`: one-time codes and links (SPEC §5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerificationConfig {
    /// How long a code (and the link sent with it) is valid, in seconds.
    pub code_ttl_secs: u64,
    /// Wrong codes before a code is burned and a new one must be requested.
    pub max_attempts: u32,
    /// Seconds before another code can be requested for the same request.
    pub resend_cooldown_secs: u64,
    /// The public address of this service, for the link in the verification email
    /// (`<link_base_url>/verify/<token>`).
    pub link_base_url: String,
    /// Days after which a request whose requester never verified expires (with a
    /// notice).
    pub expire_after_days: u32,
}

impl Default for VerificationConfig {
    fn default() -> Self {
        Self {
            code_ttl_secs: 900,
            max_attempts: 5,
            resend_cooldown_secs: 60,
            link_base_url: "http://127.0.0.1:8080".to_owned(),
            expire_after_days: 30,
        }
    }
}

/// `[outbox]`: delivering notifications.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Attempts before a notification is marked failed.
    pub max_attempts: u32,
    /// The first retry waits this long; each next one twice as long.
    pub backoff_base_secs: u64,
    /// The longest wait between two attempts.
    pub backoff_max_secs: u64,
    /// How often the sender looks for due notifications when idle, in milliseconds.
    pub poll_interval_ms: u64,
    /// Notifications claimed at a time.
    pub batch_size: u32,
    /// How long a claimed notification stays reserved for its sender, in seconds;
    /// after a crash another sender takes it over when this runs out.
    pub lease_secs: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            backoff_base_secs: 30,
            backoff_max_secs: 3_600,
            poll_interval_ms: 1_000,
            batch_size: 100,
            lease_secs: 120,
        }
    }
}

/// `[evidence]`: documents requesters upload (SPEC §2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceConfig {
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
    /// The most files one request may hold.
    pub max_files_per_request: u32,
    /// Days after a request closes at which its evidence files are destroyed (their
    /// record stays in the timeline).
    pub retention_days: u32,
    /// The AES-256-GCM key that encrypts evidence at rest: 32 bytes, base64. When unset,
    /// a key is generated on first start and kept in the database, next to the data it
    /// protects; set one (from a secret store) in production.
    pub encryption_key: Option<String>,
    /// Keys that `encryption_key` replaced, oldest first, still used to open what they
    /// sealed (rotating a configured key); never to seal.
    pub previous_encryption_keys: Vec<String>,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            max_files_per_request: 10,
            retention_days: 30,
            encryption_key: None,
            previous_encryption_keys: Vec::new(),
        }
    }
}

/// `[bundles]`: the data bundles of access, copy and portability requests (SPEC §7).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BundlesConfig {
    /// The directory bundles are stored in, encrypted with `evidence.encryption_key`
    /// (created when missing). Several instances share one directory (a network volume).
    pub dir: std::path::PathBuf,
    /// Days a download link stays valid; the bundle is deleted once its links have
    /// expired.
    pub link_days: u32,
    /// Downloads one link allows.
    pub max_downloads: u32,
    /// When the zip is encrypted with a password sent separately (by SMS to a verified
    /// mobile number, else in a second email): `never`, `on_request` (the requester asks
    /// with `details.bundle_password = true`) or `always`.
    pub password: BundlePassword,
}

/// When a bundle gets a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BundlePassword {
    Never,
    OnRequest,
    Always,
}

impl Default for BundlesConfig {
    fn default() -> Self {
        Self {
            dir: "bundles".into(),
            link_days: 7,
            max_downloads: 5,
            password: BundlePassword::OnRequest,
        }
    }
}

/// `[reminders]`: deadline reminders and overdue notices to officers (SPEC §4).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemindersConfig {
    /// Days before the due date at which the assignee is reminded.
    pub offsets_days: Vec<u32>,
    /// A daily notice to the assignee and every DPO while a request is overdue.
    pub overdue: bool,
    /// Where notices about unassigned requests go (none when unset).
    pub team_email: Option<String>,
    /// A daily digest to each officer of their requests due within a week.
    pub digest: bool,
}

impl Default for RemindersConfig {
    fn default() -> Self {
        Self {
            offsets_days: vec![7, 3, 1],
            overdue: true,
            team_email: None,
            digest: true,
        }
    }
}

/// `[repeats]`: requests repeated by the same subject (SPEC §8).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepeatsConfig {
    /// Earlier requests of the same subject and kind received within this many days
    /// are shown with a request (`repeats`), for the officer to judge; 0 turns it off.
    pub window_days: u32,
}

impl Default for RepeatsConfig {
    fn default() -> Self {
        Self { window_days: 365 }
    }
}

/// `[worker]`: background work (SPEC §13).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Run the background work inside `rightsdesk serve`: the job runner and the outbox
    /// sender. Several instances on one PostgreSQL may all run it; each job and each
    /// notification is claimed by one of them at a time.
    pub in_process: bool,
    /// Jobs one worker runs at once.
    pub concurrency: u32,
    /// How often an idle worker looks for due jobs, in milliseconds.
    pub poll_interval_ms: u64,
    /// How long a claimed job stays reserved for its worker, in seconds. A running job's
    /// lease is renewed every third of this; a crashed worker's jobs are taken over
    /// when it runs out.
    pub lease_secs: u64,
    /// Attempts of a one-off job before it is marked failed (periodic jobs are tried
    /// again at their next run however often they fail).
    pub max_attempts: u32,
    /// The first retry of a failed job waits this long; each next one twice as long.
    pub backoff_base_secs: u64,
    /// The longest wait between two attempts.
    pub backoff_max_secs: u64,
    /// On shutdown, how long running jobs may take to finish, in seconds; those still
    /// running are then stopped and released to other workers.
    pub shutdown_grace_secs: u64,
    /// Days a finished one-off job stays in the table.
    pub keep_finished_days: u32,
    /// How often each periodic job runs, in seconds.
    pub every_secs: ScheduleConfig,
    /// Where `rightsdesk worker` serves `/healthz`, `/readyz` and `/metrics` (an IP
    /// address and port); unset: it listens nowhere. `serve` ignores it.
    pub bind: Option<String>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            in_process: true,
            concurrency: 4,
            poll_interval_ms: 1_000,
            lease_secs: 60,
            max_attempts: 5,
            backoff_base_secs: 10,
            backoff_max_secs: 3_600,
            shutdown_grace_secs: 20,
            keep_finished_days: 7,
            every_secs: ScheduleConfig::default(),
            bind: None,
        }
    }
}

/// `[worker.every_secs]`: the interval of each periodic job, in seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Requests unverified for `verification.expire_after_days` expire.
    pub expire_unverified: u64,
    /// Evidence past `evidence.retention_days` is destroyed.
    pub purge_evidence: u64,
    /// Deadline reminders, overdue notices and digests are written.
    pub sweep_deadlines: u64,
    /// The holiday table is checked for the years deadlines need.
    pub check_calendar: u64,
    /// Finished one-off jobs older than `worker.keep_finished_days` are deleted.
    pub purge_jobs: u64,
    /// The IMAP mailboxes of `[intake.mailboxes]` are read.
    pub poll_mailboxes: u64,
    /// Bundles whose links have expired are deleted from storage.
    pub purge_bundles: u64,
    /// Data kept under a retention rule is erased once its period has ended.
    pub end_restrictions: u64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            expire_unverified: 300,
            purge_evidence: 3_600,
            sweep_deadlines: 60,
            check_calendar: 3_600,
            purge_jobs: 3_600,
            poll_mailboxes: 60,
            purge_bundles: 3_600,
            end_restrictions: 3_600,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CoreConfig {
    pub security: SecurityConfig,
    pub deadlines: DeadlinesConfig,
    pub bootstrap: BootstrapConfig,
    pub verification: VerificationConfig,
    pub outbox: OutboxConfig,
    pub evidence: EvidenceConfig,
    pub bundles: BundlesConfig,
    pub account_login: crate::account_login::AccountLoginConfig,
    pub reminders: RemindersConfig,
    pub repeats: RepeatsConfig,
    pub worker: WorkerConfig,
    pub intake: crate::intake::IntakeConfig,
    pub sources: crate::sources::SourcesSettings,
    pub mail: rightsdesk_mail::MailConfig,
    pub sms: rightsdesk_mail::SmsConfig,
    pub company: rightsdesk_mail::CompanyConfig,
}

impl CoreConfig {
    /// Every problem, as `section.key: message`.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let s = &self.security;
        for (name, value) in [
            ("security.token_secret", &s.token_secret),
            ("security.requester_token_key", &s.requester_token_key),
        ] {
            if value.as_ref().is_some_and(|v| v.len() < 32) {
                problems.push(format!("{name}: must be at least 32 bytes"));
            }
        }
        if s.token_issuer.trim().is_empty() {
            problems.push("security.token_issuer: must not be empty".to_owned());
        }
        if s.token_audience.trim().is_empty() {
            problems.push("security.token_audience: must not be empty".to_owned());
        }
        if !(60..=86_400).contains(&s.token_ttl_secs) {
            problems.push("security.token_ttl_secs: must be between 60 and 86400".to_owned());
        }
        if s.lockout_secs == 0 {
            problems.push("security.lockout_secs: must be at least 1".to_owned());
        }
        if s.max_failed_logins == 0 {
            problems.push("security.max_failed_logins: must be at least 1".to_owned());
        }
        match crate::packs::load(&self.deadlines) {
            Ok(packs) if packs.get(&self.deadlines.default_pack).is_none() => {
                problems.push(format!(
                    "deadlines.default_pack: unknown pack {:?} (known: {})",
                    self.deadlines.default_pack,
                    packs.names()
                ));
            }
            Ok(_) => {}
            Err(files) => problems.extend(
                files
                    .into_iter()
                    .map(|f| format!("deadlines.packs_dir: {f}")),
            ),
        }
        let v = &self.verification;
        if !(60..=86_400).contains(&v.code_ttl_secs) {
            problems.push("verification.code_ttl_secs: must be between 60 and 86400".to_owned());
        }
        if !(1..=20).contains(&v.max_attempts) {
            problems.push("verification.max_attempts: must be between 1 and 20".to_owned());
        }
        if !(v.link_base_url.starts_with("http://") || v.link_base_url.starts_with("https://")) {
            problems
                .push("verification.link_base_url: must start with http:// or https://".to_owned());
        }
        if v.expire_after_days == 0 {
            problems.push("verification.expire_after_days: must be at least 1".to_owned());
        }
        let o = &self.outbox;
        if o.max_attempts == 0 || o.batch_size == 0 || o.poll_interval_ms == 0 || o.lease_secs < 3 {
            problems.push(
                "outbox: max_attempts, batch_size and poll_interval_ms must be above 0, lease_secs at least 3"
                    .to_owned(),
            );
        }
        if o.backoff_base_secs == 0 || o.backoff_max_secs < o.backoff_base_secs {
            problems.push(
                "outbox.backoff_base_secs: must be above 0 and at most outbox.backoff_max_secs"
                    .to_owned(),
            );
        }
        let w = &self.worker;
        if !(1..=64).contains(&w.concurrency) {
            problems.push("worker.concurrency: must be between 1 and 64".to_owned());
        }
        if w.poll_interval_ms == 0 || w.lease_secs < 3 || w.max_attempts == 0 {
            problems.push(
                "worker: poll_interval_ms and max_attempts must be above 0, lease_secs at least 3"
                    .to_owned(),
            );
        }
        if w.backoff_base_secs == 0 || w.backoff_max_secs < w.backoff_base_secs {
            problems.push(
                "worker.backoff_base_secs: must be above 0 and at most worker.backoff_max_secs"
                    .to_owned(),
            );
        }
        if w.keep_finished_days == 0 {
            problems.push("worker.keep_finished_days: must be at least 1".to_owned());
        }
        if let Some(bind) = &w.bind
            && bind.parse::<std::net::SocketAddr>().is_err()
        {
            problems.push(format!(
                "worker.bind: {bind:?} is not an address such as 0.0.0.0:9090"
            ));
        }
        let every = &w.every_secs;
        if [
            every.expire_unverified,
            every.purge_evidence,
            every.sweep_deadlines,
            every.check_calendar,
            every.purge_jobs,
            every.poll_mailboxes,
            every.purge_bundles,
            every.end_restrictions,
        ]
        .iter()
        .any(|s| !(1..=86_400 * 7).contains(s))
        {
            problems.push("worker.every_secs: each must be between 1 and 604800".to_owned());
        }
        let b = &self.bundles;
        if !(1..=365).contains(&b.link_days) {
            problems.push("bundles.link_days: must be between 1 and 365".to_owned());
        }
        if !(1..=1000).contains(&b.max_downloads) {
            problems.push("bundles.max_downloads: must be between 1 and 1000".to_owned());
        }
        if b.dir.as_os_str().is_empty() {
            problems.push("bundles.dir: must not be empty".to_owned());
        }
        let e = &self.evidence;
        if !(1024..=100 * 1024 * 1024).contains(&e.max_bytes) {
            problems.push("evidence.max_bytes: must be between 1024 and 104857600".to_owned());
        }
        if e.max_files_per_request == 0 || e.retention_days == 0 {
            problems.push(
                "evidence: max_files_per_request and retention_days must be at least 1".to_owned(),
            );
        }
        if let Some(key) = &e.encryption_key
            && crate::evidence::decode_key(key).is_none()
        {
            problems.push(
                "evidence.encryption_key: must be 32 bytes, base64-encoded (openssl rand -base64 32)"
                    .to_owned(),
            );
        }
        if e.previous_encryption_keys
            .iter()
            .any(|k| crate::evidence::decode_key(k).is_none())
        {
            problems.push(
                "evidence.previous_encryption_keys: each must be 32 bytes, base64-encoded"
                    .to_owned(),
            );
        }
        if !e.previous_encryption_keys.is_empty() && e.encryption_key.is_none() {
            problems.push(
                "evidence.previous_encryption_keys: needs evidence.encryption_key (the key that replaced them)"
                    .to_owned(),
            );
        }
        problems.extend(self.account_login.validate());
        if self
            .reminders
            .offsets_days
            .iter()
            .any(|d| *d == 0 || *d > 365)
        {
            problems.push("reminders.offsets_days: each must be between 1 and 365".to_owned());
        }
        if self.repeats.window_days > 3_650 {
            problems.push("repeats.window_days: must be between 0 and 3650".to_owned());
        }
        if let Some(e) = &self.reminders.team_email
            && rightsdesk_domain::Email::parse(e).is_err()
        {
            problems.push(format!(
                "reminders.team_email: {e:?} is not an email address"
            ));
        }
        if let Err(m) = self.mail.validate() {
            problems.push(m);
        }
        problems.extend(self.sms.validate());
        self.intake.validate(&mut problems);
        self.sources.validate(&mut problems);
        if let Err(m) = crate::officers::check_username(&self.bootstrap.admin_username) {
            problems.push(format!("bootstrap.admin_username: {m}"));
        }
        if let Some(p) = &self.bootstrap.admin_password
            && let Err(m) = crate::officers::check_password(p)
        {
            problems.push(format!("bootstrap.admin_password: {m}"));
        }
        problems
    }
}
