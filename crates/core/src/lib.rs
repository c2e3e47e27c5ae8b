//! rightsdesk's use-cases. `core` owns transactions (a state change, its event and,
//! later, its outbox rows commit together), the clock, and the error-code table.
//! `api` calls these functions and never touches the database.

// The release build's layout of `build_bundle`'s future nests deeper than the default
// query depth of 128 (rustc 1.95, `--release`; the debug build is under it).
#![recursion_limit = "256"]

pub mod account_login;
pub mod arrangements;
pub mod audit;
pub mod auth;
pub mod bundles;
pub mod certificates;
pub mod clock;
pub mod collections;
pub mod config;
pub mod consents;
pub mod corrections;
pub mod dashboard;
pub mod erasures;
pub mod error;
pub mod evidence;
pub mod evidence_export;
pub mod fees;
mod group_commit;
pub mod holidays;
pub mod intake;
pub mod jobs;
pub mod keys;
pub mod monitoring;
pub mod notifications;
pub mod officers;
pub mod packs;
pub mod portability;
mod references;
pub mod reminders;
pub mod requests;
mod sealing;
pub mod sources;
pub mod storage;
pub mod verification;

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use rightsdesk_store::Db;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::CoreConfig;
pub use error::{Error, ErrorCode};

/// Everything a use-case needs, cheap to clone and shared by every handler.
#[derive(Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    filings: Arc<group_commit::GroupCommit>,
    clock: Arc<dyn Clock>,
    config: CoreConfig,
    /// Read at start and every `keys::REFRESH` (a rotation by another process).
    keys: std::sync::RwLock<Arc<keys::Keys>>,
    references: references::References,
    templates: rightsdesk_mail::Templates,
    /// `{"company": …}` for every template, from `[company]`.
    company_context: serde_json::Value,
    mailer: rightsdesk_mail::Mailer,
    /// Text messages: the folder or the HTTP gateway of `[sms]`.
    sms: rightsdesk_mail::SmsProvider,
    /// The rule packs: bundled, and the operator's over them.
    packs: rightsdesk_domain::deadlines::Packs,
    /// The bundled email classification rules, or `intake.rules_file`'s.
    intake_rules: rightsdesk_domain::intake::IntakeRules,
    /// The IMAP mailboxes of `[intake.mailboxes]`, by name.
    mailboxes: std::collections::BTreeMap<String, rightsdesk_mail::imap::ImapClient>,
    /// The company's data sources, from `sources.file`.
    sources: Arc<rightsdesk_connectors::Sources>,
    /// Where bundles and owners' answers are kept (sealed): `bundles.dir`.
    storage: Arc<dyn storage::Storage>,
    /// The working-day calendar, read from the holiday table.
    calendar: holidays::CalendarCache,
    /// Verifies account-system tokens at filing.
    account_login: account_login::AccountLogin,
    /// Woken when notifications are written, so the sender need not wait for its poll.
    outbox_wake: tokio::sync::Notify,
    /// When `monitoring`'s gauges were last read.
    gauges_read: tokio::sync::Mutex<Option<std::time::Instant>>,
    /// This worker's name on the jobs and notifications it claims.
    worker_id: String,
}

impl Services {
    /// Loads (or, on first start, generates and stores) the service secrets.
    pub async fn new(db: Db, clock: Arc<dyn Clock>, config: CoreConfig) -> Result<Self, Error> {
        let now = clock.now();
        let keys = keys::Keys::load(&db, &config, now).await?;
        // Never rotated: a changed key would renumber the rest of the year onto
        // references already issued.
        let reference_key = keys::secret(&db, "reference_key", &None, now).await?;
        holidays::seed_bundled(&db, now).await?;
        let calendar = holidays::CalendarCache::new(holidays::load(db.conn()).await?);
        let packs = packs::load(&config.deadlines).map_err(|problems| {
            Error::new(
                ErrorCode::Internal,
                format!("rule packs: {}", problems.join("; ")),
            )
        })?;
        let intake_rules = intake::load_rules(&config.intake)
            .map_err(|e| Error::new(ErrorCode::Internal, format!("intake rules: {e}")))?;
        let mailboxes = intake::mailbox_clients(&config.intake)
            .map_err(|e| Error::new(ErrorCode::Internal, e))?;
        let sources = config.sources.load().map_err(|problems| {
            Error::new(
                ErrorCode::Internal,
                format!("sources.file: {}", problems.join("; ")),
            )
        })?;
        let templates = rightsdesk_mail::Templates::load(config.mail.templates_dir.as_deref())
            .map_err(|e| Error::new(ErrorCode::Internal, format!("mail templates: {e}")))?;
        let mailer = rightsdesk_mail::Mailer::new(&config.mail)
            .map_err(|e| Error::new(ErrorCode::Internal, e))?;
        let sms = rightsdesk_mail::SmsProvider::new(&config.sms, &config.mail.folder)
            .map_err(|e| Error::new(ErrorCode::Internal, e))?;
        let account_login = account_login::AccountLogin::new(&config.account_login)
            .map_err(|e| Error::new(ErrorCode::Internal, e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                keys: std::sync::RwLock::new(Arc::new(keys)),
                templates,
                account_login,
                packs,
                intake_rules,
                mailboxes,
                sources: Arc::new(sources),
                storage: Arc::new(storage::LocalDir::new(&config.bundles.dir)),
                calendar,
                company_context: serde_json::json!({ "company": config.company }),
                mailer,
                sms,
                outbox_wake: tokio::sync::Notify::new(),
                gauges_read: tokio::sync::Mutex::new(None),
                worker_id: jobs::worker_id(),
                references: references::References::new(&reference_key),
                filings: group_commit::GroupCommit::start(db.clone()),
                db,
                clock,
                config,
            }),
        })
    }

    /// The current time, truncated to microseconds: the precision both databases
    /// store, so a value reads back exactly as it was written on either backend.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now().trunc_subsecs(6)
    }

    pub fn config(&self) -> &CoreConfig {
        &self.inner.config
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn references(&self) -> &references::References {
        &self.inner.references
    }

    pub(crate) fn filings(&self) -> &group_commit::GroupCommit {
        &self.inner.filings
    }

    /// Readiness: the database answers.
    pub async fn ready(&self) -> bool {
        self.inner.db.ping().await.is_ok()
    }
}
