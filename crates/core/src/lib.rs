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

use base64::Engine;
use chrono::{DateTime, SubsecRound, Utc};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore;
use rightsdesk_store::{Db, secrets};

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
    keys: Keys,
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

struct Keys {
    token_encoding: EncodingKey,
    token_decoding: DecodingKey,
    requester_token_key: Vec<u8>,
    /// Seals the secrets an outbox row carries until it is sent (AES-256-GCM).
    outbox_cipher: aes_gcm::Aes256Gcm,
    /// HMAC key for verification codes and links.
    verification_key: Vec<u8>,
    /// Signs download links (HMAC-SHA256).
    download_key: Vec<u8>,
    /// The key of `anonymise`'s keyed hash in the sources (HMAC-SHA256). Never
    /// configured: a new key would give the same values new replacements.
    anonymise_key: Vec<u8>,
    /// Signs deletion certificates (Ed25519, from a 32-byte seed kept in the database).
    certificate: certificates::CertificateKey,
    /// Encrypts files at rest: evidence, bundles, owners' answers.
    evidence: evidence::EvidenceKey,
}

impl Services {
    /// Loads (or, on first start, generates and stores) the service secrets.
    pub async fn new(db: Db, clock: Arc<dyn Clock>, config: CoreConfig) -> Result<Self, Error> {
        let now = clock.now();
        let token_secret = secret(
            &db,
            "officer_token_secret",
            &config.security.token_secret,
            now,
        )
        .await?;
        let requester_key = secret(
            &db,
            "requester_token_key",
            &config.security.requester_token_key,
            now,
        )
        .await?;
        // Never configured: a changed key would renumber the rest of the year onto
        // references already issued.
        let reference_key = secret(&db, "reference_key", &None, now).await?;
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
        let outbox_key = secret(&db, "outbox_key", &None, now).await?;
        let verification_key = secret(&db, "verification_key", &None, now).await?;
        let download_key = secret(&db, "download_key", &None, now).await?;
        let anonymise_key = secret(&db, "anonymise_key", &None, now).await?;
        let certificate_seed = secret(&db, "certificate_key", &None, now).await?;
        let evidence_key = match &config.evidence.encryption_key {
            Some(key) => evidence::decode_key(key).ok_or_else(|| {
                Error::new(
                    ErrorCode::Internal,
                    "evidence.encryption_key must be 32 bytes, base64",
                )
            })?,
            None => {
                tracing::warn!(
                    "evidence.encryption_key is not set: evidence is encrypted with a key kept in the database"
                );
                secret(&db, "evidence_key", &None, now).await?
            }
        };
        let templates = rightsdesk_mail::Templates::load(config.mail.templates_dir.as_deref())
            .map_err(|e| Error::new(ErrorCode::Internal, format!("mail templates: {e}")))?;
        let mailer = rightsdesk_mail::Mailer::new(&config.mail)
            .map_err(|e| Error::new(ErrorCode::Internal, e))?;
        let sms = rightsdesk_mail::SmsProvider::new(&config.sms, &config.mail.folder)
            .map_err(|e| Error::new(ErrorCode::Internal, e))?;
        let account_login = account_login::AccountLogin::new(&config.account_login)
            .map_err(|e| Error::new(ErrorCode::Internal, e))?;
        let key_error = |_| Error::internal();
        Ok(Self {
            inner: Arc::new(Inner {
                keys: Keys {
                    token_encoding: EncodingKey::from_secret(&token_secret).map_err(key_error)?,
                    token_decoding: DecodingKey::from_secret(&token_secret).map_err(key_error)?,
                    requester_token_key: requester_key,
                    outbox_cipher: aes_gcm::KeyInit::new_from_slice(&outbox_key)
                        .map_err(|_| Error::internal())?,
                    verification_key,
                    download_key,
                    anonymise_key,
                    certificate: certificates::CertificateKey::from_seed(&certificate_seed)
                        .ok_or_else(Error::internal)?,
                    evidence: evidence::EvidenceKey::new(&evidence_key)
                        .ok_or_else(Error::internal)?,
                },
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

/// A configured secret, or the one stored in the database (generated on first use).
async fn secret(
    db: &Db,
    name: &str,
    configured: &Option<String>,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, Error> {
    if let Some(value) = configured {
        return Ok(value.as_bytes().to_vec());
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let candidate = base64::engine::general_purpose::STANDARD.encode(bytes);
    let tx = db.begin_write().await?;
    let stored = secrets::get_or_insert(&*tx, name, candidate, now).await?;
    tx.commit().await?;
    base64::engine::general_purpose::STANDARD
        .decode(stored)
        .map_err(|_| Error::internal())
}
