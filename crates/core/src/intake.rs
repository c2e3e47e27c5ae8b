//! Email intake (SPEC §6): an inbound message (from a polled mailbox, or posted raw to
//! the signed endpoint) becomes exactly one `intake_messages` row, and one of:
//!
//! - **failed**: it cannot be read (too large, malformed); the reason is kept;
//! - **ignored**: a machine wrote it (auto-reply, out-of-office, bounce, list or bulk
//!   mail, the null sender, our own message): it is never answered, so no mail loop; a
//!   bounce of one of our notifications marks that notification failed;
//! - **reply**: it answers a request (In-Reply-To/References name one of our
//!   notifications, or the subject carries a request's reference) and comes from that
//!   request's requester: it is attached to the request, its attachments become
//!   evidence, and a clock paused for the requester runs again;
//! - **request**: it is classified confidently as a kind that an email alone can file: a
//!   request is filed (channel `email`, the sender's address as the contact to verify),
//!   and the acknowledgement with the reference, the due date and the verification code
//!   goes back to the sender through the outbox;
//! - **triage**: everything else waits for an officer, who converts it into a request of
//!   a chosen kind or dismisses it. Its raw MIME is kept sealed until then.
//!
//! A message is recognised again by its Message-ID (unique), and a request filed from it
//! by an idempotency key derived from it, so a message read twice (two mailboxes, a
//! re-post, a crash before the mailbox cursor moved) files one request.

pub mod mailboxes;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rightsdesk_domain::intake::{Classification, IntakeRules, Rule, classify};
use rightsdesk_domain::{
    Actor, Channel, Details, Email as EmailAddress, Language, Permission, Reference, RequestKind,
    Requester, State, ValidationErrors,
};
use rightsdesk_mail::imap::{ImapClient, ImapConfig};
use rightsdesk_mail::inbound::{self, AutoKind, Inbound, InboundLimits};
use rightsdesk_store::intake::{self as store, status};
use rightsdesk_store::{notifications, requests};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{Officer, sha256_hex};
use crate::officers::require;
use crate::requests::{Filing, Idempotency};
use crate::{Error, ErrorCode, Services};

/// `[intake]`: the email channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeConfig {
    /// The secret that signs posts to `POST /api/v1/intake/messages` (HMAC-SHA256); the
    /// endpoint is off (404) without it. At least 32 bytes.
    pub hook_secret: Option<String>,
    /// How far a post's `X-Rightsdesk-Timestamp` may be from now, in seconds.
    pub hook_tolerance_secs: u64,
    /// Size limits of an inbound message and its attachments.
    pub limits: InboundLimits,
    /// A TOML file that replaces the bundled classification rules
    /// (`crates/domain/intake/rules.toml` shows the format).
    pub rules_file: Option<std::path::PathBuf>,
    /// The IMAP mailboxes the worker polls, by name (`[intake.mailboxes.privacy]`).
    pub mailboxes: BTreeMap<String, ImapConfig>,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self {
            hook_secret: None,
            hook_tolerance_secs: 300,
            limits: InboundLimits::default(),
            rules_file: None,
            mailboxes: BTreeMap::new(),
        }
    }
}

impl IntakeConfig {
    pub fn validate(&self, problems: &mut Vec<String>) {
        if self.hook_secret.as_ref().is_some_and(|s| s.len() < 32) {
            problems.push("intake.hook_secret: must be at least 32 bytes".to_owned());
        }
        if !(10..=3600).contains(&self.hook_tolerance_secs) {
            problems.push("intake.hook_tolerance_secs: must be between 10 and 3600".to_owned());
        }
        for (name, mailbox) in &self.mailboxes {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !ok {
                problems.push(format!(
                    "intake.mailboxes.{name}: a mailbox name is 1-64 of a-z, 0-9, _ and -"
                ));
            }
            problems.extend(
                mailbox
                    .validate()
                    .into_iter()
                    .map(|m| format!("intake.mailboxes.{name}: {m}")),
            );
        }
    }
}

/// The bundled classification rules, or those of `intake.rules_file`.
pub(crate) fn load_rules(config: &IntakeConfig) -> Result<IntakeRules, String> {
    match &config.rules_file {
        None => Ok(rightsdesk_domain::intake::bundled_rules()),
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            IntakeRules::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
        }
    }
}

/// A client per configured mailbox (the configuration checked, TLS prepared).
pub(crate) fn mailbox_clients(
    config: &IntakeConfig,
) -> Result<BTreeMap<String, ImapClient>, String> {
    config
        .mailboxes
        .iter()
        .map(|(name, c)| {
            ImapClient::new(c.clone())
                .map(|client| (name.clone(), client))
                .map_err(|e| format!("intake.mailboxes.{name}: {e}"))
        })
        .collect()
}

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeSource {
    /// A polled mailbox (its configured name) and the message's UID there.
    Mailbox { name: String, uid: u32 },
    /// Posted to the signed endpoint.
    Hook,
}

impl IntakeSource {
    fn stored(&self) -> String {
        match self {
            Self::Mailbox { name, .. } => format!("imap:{name}"),
            Self::Hook => "hook".to_owned(),
        }
    }

    fn uid(&self) -> Option<i64> {
        match self {
            Self::Mailbox { uid, .. } => Some(i64::from(*uid)),
            Self::Hook => None,
        }
    }
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntakeOutcome {
    /// The intake message's id.
    pub id: Uuid,
    /// `request`, `reply`, `triage`, `ignored`, `failed` (or `converted`, `dismissed`
    /// once an officer settled it).
    pub status: String,
    /// Why it was ignored or failed, or why it waits in triage.
    pub reason: Option<String>,
    /// The kind it was classified as.
    pub kind: Option<String>,
    pub confidence: Option<f64>,
    /// The request it filed or was threaded onto.
    pub request_id: Option<Uuid>,
    /// That request's reference.
    pub reference: Option<String>,
    /// The message was seen before (same Message-ID): nothing was changed.
    pub duplicate: bool,
}

/// An intake message as officers see it in the triage lane.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntakeMessageView {
    pub id: Uuid,
    pub source: String,
    pub status: String,
    pub reason: Option<String>,
    pub received_at: DateTime<Utc>,
    pub from_address: Option<String>,
    pub subject: String,
    pub body: String,
    pub kind: Option<String>,
    pub confidence: Option<f64>,
    pub request_id: Option<Uuid>,
    /// The size of the raw message in bytes.
    pub raw_size: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub attachments: Value,
}

impl From<store::messages::Model> for IntakeMessageView {
    fn from(m: store::messages::Model) -> Self {
        Self {
            id: m.id,
            source: m.source,
            status: m.status,
            reason: m.reason,
            received_at: m.received_at,
            from_address: m.from_address,
            subject: m.subject,
            body: m.body,
            kind: m.kind,
            confidence: m.confidence,
            request_id: m.request_id,
            raw_size: m.raw_size,
            attachments: m.attachments,
        }
    }
}

/// A page of the triage lane.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntakePage {
    pub items: Vec<IntakeMessageView>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The longest subject kept.
const SUBJECT_CHARS: usize = 500;
/// The longest Message-ID kept (RFC 5322 lines are at most 998 bytes).
const MESSAGE_ID_BYTES: usize = 998;
/// The request texts taken from a message (an explanation's question, a complaint's
/// description) are cut here.
const FILED_TEXT_CHARS: usize = 4_000;

fn cut(s: &str, chars: usize) -> String {
    s.chars().take(chars).collect()
}

impl Services {
    /// Takes one inbound message (raw MIME) through intake. Never fails on the
    /// message's content: what cannot be read is recorded as failed. Errors are the
    /// service's own (the database), and then nothing is recorded, so the caller can
    /// try again (the mailbox cursor does not move).
    pub async fn ingest_message(
        &self,
        raw: &[u8],
        source: IntakeSource,
    ) -> Result<IntakeOutcome, Error> {
        self.ingest(raw, source, &mut None).await
    }

    /// [`Self::ingest_message`] with the classification rules read (from the database,
    /// on first need) into `rules`, so that a batch of messages reads them once.
    pub(crate) async fn ingest(
        &self,
        raw: &[u8],
        source: IntakeSource,
        rules: &mut Option<Arc<IntakeRules>>,
    ) -> Result<IntakeOutcome, Error> {
        let now = self.now();
        let limits = self.config().intake.limits.clone();
        let bytes = raw.to_vec();
        let parsed = tokio::task::spawn_blocking(move || inbound::parse(&bytes, &limits))
            .await
            .map_err(|_| Error::internal())?;
        let mut row = store::messages::Model {
            id: Uuid::now_v7(),
            source: source.stored(),
            source_uid: source.uid(),
            message_id: None,
            received_at: now,
            from_address: None,
            subject: String::new(),
            body: String::new(),
            status: status::FAILED.to_owned(),
            reason: None,
            kind: None,
            confidence: None,
            request_id: None,
            raw_size: i64::try_from(raw.len()).unwrap_or(i64::MAX),
            attachments: json!([]),
            handled_by: None,
            handled_at: None,
            created_at: now,
        };
        let mail = match parsed {
            Ok(mail) => mail,
            Err(e) => {
                row.reason = Some(e.code().to_owned());
                return self.record_intake(row, None, None).await;
            }
        };
        row.message_id = mail
            .message_id
            .as_deref()
            .filter(|id| !id.is_empty() && id.len() <= MESSAGE_ID_BYTES)
            .map(str::to_owned);
        if let Some(seen) = self.recorded_before(row.message_id.as_deref()).await? {
            return Ok(seen);
        }
        row.from_address = mail.from.as_ref().map(|m| m.address.clone());
        row.subject = cut(&mail.subject, SUBJECT_CHARS);
        row.body = mail.text.clone();
        row.attachments = attachment_list(&mail);

        if let Some(auto) = &mail.auto {
            row.status = status::IGNORED.to_owned();
            row.reason = Some(auto.code().to_owned());
            if let AutoKind::Bounce {
                notification_id,
                original_message_id,
            } = auto
            {
                self.notification_bounced(
                    notification_id.as_deref(),
                    original_message_id.as_deref(),
                )
                .await?;
            }
            return self.record_intake(row, None, None).await;
        }

        match self.thread_of(&mail).await? {
            Thread::Request(request) if sender_is_requester(&mail, &request) => {
                return self.attach_reply(row, mail, *request).await;
            }
            Thread::Request(_) => {
                // Someone else quotes a request: an officer decides.
                row.reason = Some("sender_is_not_the_requester".to_owned());
                return self.to_triage(row, raw, None).await;
            }
            Thread::Unknown => {
                // A reply to mail we did not send, or a reference we never gave: not a
                // new request on its own.
                row.reason = Some("unknown_thread".to_owned());
                return self.to_triage(row, raw, None).await;
            }
            Thread::None => {}
        }

        let rules = match rules {
            Some(rules) => rules.clone(),
            None => rules.insert(Arc::new(self.intake_rules().await?)).clone(),
        };
        let class = {
            let (subject, text) = (mail.subject.clone(), mail.text.clone());
            tokio::task::spawn_blocking(move || classify(&subject, &text, &rules))
                .await
                .map_err(|_| Error::internal())?
        };
        row.kind = class.kind.map(|k| k.as_str().to_owned());
        row.confidence = Some(class.confidence);
        match self.filing_from(&mail, &class).await? {
            Ok(filing) => self.file_from_mail(row, mail, filing).await,
            Err(reason) => {
                row.reason = Some(reason.to_owned());
                self.to_triage(row, raw, None).await
            }
        }
    }

    /// Records `row` as it is, with the sealed raw MIME for triage; a Message-ID
    /// recorded meanwhile by another worker makes this a duplicate.
    async fn record_intake(
        &self,
        row: store::messages::Model,
        raw: Option<&[u8]>,
        reference: Option<String>,
    ) -> Result<IntakeOutcome, Error> {
        let sealed = match raw {
            Some(raw) => Some(self.seal_raw(row.id, raw).await?),
            None => None,
        };
        let tx = self.db().begin_write().await?;
        match store::insert(&*tx, row.clone(), sealed).await {
            Ok(()) => {}
            Err(e) if e.is_unique_violation() => {
                drop(tx);
                return match self.recorded_before(row.message_id.as_deref()).await? {
                    Some(seen) => Ok(seen),
                    None => Err(e.into()),
                };
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        self.counted(&row);
        Ok(IntakeOutcome {
            id: row.id,
            status: row.status,
            reason: row.reason,
            kind: row.kind,
            confidence: row.confidence,
            request_id: row.request_id,
            reference,
            duplicate: false,
        })
    }

    /// The outcome of the message recorded before under `message_id`, as a duplicate.
    async fn recorded_before(
        &self,
        message_id: Option<&str>,
    ) -> Result<Option<IntakeOutcome>, Error> {
        let Some(id) = message_id else {
            return Ok(None);
        };
        match store::find_by_message_id(self.db().conn(), id).await? {
            Some(seen) => Ok(Some(self.outcome(seen, true).await?)),
            None => Ok(None),
        }
    }

    fn counted(&self, row: &store::messages::Model) {
        metrics::counter!("rightsdesk_intake_messages_total", "status" => row.status.clone())
            .increment(1);
        tracing::info!(
            intake_message_id = %row.id,
            status = %row.status,
            reason = row.reason.as_deref().unwrap_or(""),
            rights_request_id = ?row.request_id,
            "inbound message"
        );
    }

    async fn outcome(
        &self,
        row: store::messages::Model,
        duplicate: bool,
    ) -> Result<IntakeOutcome, Error> {
        let reference = match row.request_id {
            Some(id) => requests::find(self.db().conn(), id)
                .await?
                .map(|r| r.reference),
            None => None,
        };
        Ok(IntakeOutcome {
            id: row.id,
            status: row.status,
            reason: row.reason,
            kind: row.kind,
            confidence: row.confidence,
            request_id: row.request_id,
            reference,
            duplicate,
        })
    }

    async fn to_triage(
        &self,
        mut row: store::messages::Model,
        raw: &[u8],
        reference: Option<String>,
    ) -> Result<IntakeOutcome, Error> {
        row.status = status::TRIAGE.to_owned();
        self.record_intake(row, Some(raw), reference).await
    }

    /// A bounce of one of our notifications marks it failed, so officers see that the
    /// requester was not reached. The notification is named by our header in the
    /// returned message or by its Message-ID (`<notification id>@<domain>`).
    async fn notification_bounced(
        &self,
        notification_id: Option<&str>,
        original_message_id: Option<&str>,
    ) -> Result<(), Error> {
        let id = notification_id
            .or_else(|| original_message_id.and_then(|m| m.split('@').next()))
            .and_then(|s| s.trim().parse::<Uuid>().ok());
        if let Some(id) = id {
            notifications::mark_failed(
                self.db().conn(),
                id,
                "bounced: the recipient's server returned it",
            )
            .await?;
        }
        Ok(())
    }

    /// The request a message answers: one of our notifications in In-Reply-To or
    /// References, else a reference in the subject; or that it answers something we
    /// do not know (a Message-ID of our domain, a reference, that names nothing).
    async fn thread_of(&self, mail: &Inbound) -> Result<Thread, Error> {
        let domain = self.inner.mailer.message_id_domain();
        let mut ours = false;
        for id in mail.in_reply_to.iter().chain(mail.references.iter()) {
            let Some((local, host)) = id.rsplit_once('@') else {
                continue;
            };
            if !host.eq_ignore_ascii_case(&domain) {
                continue;
            }
            ours = true;
            let Ok(notification) = local.parse::<Uuid>() else {
                continue;
            };
            if let Some(n) = notifications::find(self.db().conn(), notification).await?
                && let Some(request) = n.request_id
                && let Some(row) = requests::find(self.db().conn(), request).await?
            {
                return Ok(Thread::Request(Box::new(row)));
            }
        }
        if let Some(reference) = mail.subject_reference() {
            return Ok(
                match requests::find_by_reference(self.db().conn(), &reference).await? {
                    Some(row) => Thread::Request(Box::new(row)),
                    None => Thread::Unknown,
                },
            );
        }
        Ok(if ours { Thread::Unknown } else { Thread::None })
    }

    /// Attaches a reply to its request (one event, in one transaction with the intake
    /// row), keeps its attachments as evidence, and runs a clock paused for the
    /// requester again.
    async fn attach_reply(
        &self,
        mut row: store::messages::Model,
        mail: Inbound,
        request: requests::Model,
    ) -> Result<IntakeOutcome, Error> {
        row.status = status::REPLY.to_owned();
        row.request_id = Some(request.id);
        let recorded = row.clone();
        let attachments = mail.attachments.len();
        let outcome = self
            .record_event(
                request.id,
                &Actor::Requester,
                "message_received",
                async move |tx, _, _| {
                    match store::insert(tx.conn(), recorded.clone(), None).await {
                        Ok(()) => {}
                        // Another worker recorded the same message meanwhile.
                        Err(e) if e.is_unique_violation() => {
                            return Err(rightsdesk_store::StoreError::Conflict.into());
                        }
                        Err(e) => return Err(e.into()),
                    }
                    Ok((
                        json!({
                            "intake_message_id": recorded.id,
                            "channel": "email",
                            "attachments": attachments,
                        }),
                        (),
                    ))
                },
            )
            .await;
        match outcome {
            Ok(()) => {}
            Err(e) if e.code == ErrorCode::ConcurrentModification => {
                // Another worker recorded the same message first.
                return match self.recorded_before(row.message_id.as_deref()).await? {
                    Some(seen) => Ok(seen),
                    None => Err(e),
                };
            }
            Err(e) => return Err(e),
        }
        self.counted(&row);
        self.keep_attachments(request.id, &mail).await;
        if request.state == State::AwaitingRequester.as_str() {
            // Their answer: the clock runs again (a closed or resumed request stays).
            // A reply does not accept a quoted fee: the officer reads it, and resumes.
            if let Err(e) = self.requester_replied(request.id, "email").await
                && !matches!(e.code, ErrorCode::IllegalTransition | ErrorCode::FeePending)
            {
                return Err(e);
            }
        }
        Ok(IntakeOutcome {
            id: row.id,
            status: row.status,
            reason: None,
            kind: None,
            confidence: None,
            request_id: Some(request.id),
            reference: Some(request.reference),
            duplicate: false,
        })
    }

    /// The attachments a request keeps as evidence (PDF, JPEG, PNG within the evidence
    /// limits); the others are listed on the intake message only. A file refused here
    /// never fails the message.
    async fn keep_attachments(&self, request_id: Uuid, mail: &Inbound) {
        for a in &mail.attachments {
            if let Err(e) = self
                .store_evidence(
                    request_id,
                    Actor::Requester,
                    rightsdesk_domain::evidence::EvidenceKind::Other,
                    a.filename.as_deref(),
                    a.bytes.clone(),
                )
                .await
            {
                tracing::info!(rights_request_id = %request_id, code = %e.code, "an email attachment was not kept as evidence");
            }
        }
    }

    /// The filing an email alone makes, or why it goes to triage.
    async fn filing_from(
        &self,
        mail: &Inbound,
        class: &Classification,
    ) -> Result<Result<Filing, &'static str>, Error> {
        let (Some(kind), true) = (class.kind, class.confident) else {
            return Ok(Err(if class.kind.is_some() {
                "not_confident"
            } else {
                "not_classified"
            }));
        };
        let Some(from) = &mail.from else {
            return Ok(Err("no_sender"));
        };
        let Ok(email) = EmailAddress::parse(&from.address) else {
            return Ok(Err("invalid_sender"));
        };
        let text = cut(
            rightsdesk_domain::intake::strip_quoted(&mail.text).trim(),
            FILED_TEXT_CHARS,
        );
        let details = match kind {
            RequestKind::Access => Details::Access {
                categories: vec![],
                bundle_password: false,
            },
            RequestKind::Copy => Details::Copy {
                categories: vec![],
                bundle_password: false,
            },
            RequestKind::Deletion => Details::Deletion {
                categories: vec![],
                reason: None,
            },
            RequestKind::AccountClosure => Details::AccountClosure {
                account_id: None,
                reason: None,
            },
            RequestKind::Explanation => Details::Explanation {
                question: (!text.is_empty()).then_some(text),
            },
            RequestKind::Complaint => {
                let about =
                    inbound::find_reference(&mail.text).and_then(|r| r.parse::<Reference>().ok());
                let Some(about) = about else {
                    return Ok(Err("complaint_names_no_request"));
                };
                if requests::find_by_reference(self.db().conn(), &about.to_string())
                    .await?
                    .is_none()
                {
                    return Ok(Err("complaint_names_no_request"));
                }
                Details::Complaint {
                    about_reference: about,
                    description: if text.is_empty() {
                        mail.subject.clone()
                    } else {
                        text
                    },
                }
            }
            // A recipient, the fields to change, the purposes, the deceased person:
            // what the officer has to read out of the message.
            RequestKind::Portability
            | RequestKind::Correction
            | RequestKind::ConsentWithdrawal
            | RequestKind::NextOfKin => return Ok(Err("needs_details")),
        };
        let name = from
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| from.address.clone());
        Ok(Ok(Filing {
            kind,
            requester: email_requester(&name, email, &mail.subject, &mail.text),
            details,
            pack: None,
        }))
    }

    /// Files the request a message makes, records the message, and keeps its
    /// attachments. A message filed before (same Message-ID, or the same bytes) gets
    /// the same request back.
    async fn file_from_mail(
        &self,
        mut row: store::messages::Model,
        mail: Inbound,
        filing: Filing,
    ) -> Result<IntakeOutcome, Error> {
        let identity = row
            .message_id
            .clone()
            .unwrap_or_else(|| format!("{}\n{}\n{}", row.subject, row.body, row.raw_size));
        let idempotency = Idempotency {
            key: format!("mail:{}", &sha256_hex(identity.as_bytes())[..48]),
            fingerprint: sha256_hex(identity.as_bytes()),
        };
        let filed = self
            .store_filing(
                filing,
                Channel::Email,
                Some(row.received_at),
                Actor::Requester,
                "email".to_owned(),
                Some(idempotency),
                crate::requests::AccountProof::None,
            )
            .await?;
        row.status = status::REQUEST.to_owned();
        row.request_id = Some(filed.id);
        let outcome = self
            .record_intake(row, None, Some(filed.reference.to_string()))
            .await?;
        if !outcome.duplicate {
            self.keep_attachments(filed.id, &mail).await;
        }
        Ok(outcome)
    }

    /// The classification rules: the bundled ones (or `intake.rules_file`) and those
    /// officers added.
    pub(crate) async fn intake_rules(&self) -> Result<IntakeRules, Error> {
        let mut rules = self.inner.intake_rules.clone();
        let added = store::rules(self.db().conn()).await?;
        let added: Vec<Rule> = added.into_iter().filter_map(|r| rule_of(&r)).collect();
        rules.extend(added).map_err(|_| Error::internal())?;
        Ok(rules)
    }

    async fn seal_raw(&self, id: Uuid, raw: &[u8]) -> Result<store::blobs::Model, Error> {
        let ring = self.at_rest();
        let raw = raw.to_vec();
        tokio::task::spawn_blocking(move || {
            let (key_id, nonce, ciphertext) = ring.seal(id, &raw)?;
            Ok(store::blobs::Model {
                message_id: id,
                key_id,
                nonce: nonce.to_vec(),
                ciphertext,
            })
        })
        .await
        .map_err(|_| Error::internal())?
    }

    async fn open_raw(&self, id: Uuid) -> Result<Option<Vec<u8>>, Error> {
        let Some(sealed) = store::sealed_raw(self.db().conn(), id).await? else {
            return Ok(None);
        };
        let ring = self.at_rest();
        tokio::task::spawn_blocking(move || {
            ring.open(Some(&sealed.key_id), id, &sealed.nonce, &sealed.ciphertext)
                .map(Some)
        })
        .await
        .map_err(|_| Error::internal())?
    }

    // --- the triage lane -----------------------------------------------------------

    /// `GET /api/v1/officer/intake?status=triage`: inbound messages in `status`
    /// (triage by default), oldest first.
    pub async fn intake_messages(
        &self,
        officer: &Officer,
        status_filter: Option<&str>,
        after: Option<&str>,
        limit: Option<u64>,
    ) -> Result<IntakePage, Error> {
        require(officer, Permission::ViewRequests)?;
        let wanted = status_filter.unwrap_or(status::TRIAGE);
        const STATUSES: [&str; 7] = [
            status::TRIAGE,
            status::REQUEST,
            status::REPLY,
            status::IGNORED,
            status::FAILED,
            status::CONVERTED,
            status::DISMISSED,
        ];
        let mut errors = ValidationErrors::default();
        if !STATUSES.contains(&wanted) {
            errors.push(
                "status",
                "invalid_value",
                format!("must be one of {}", STATUSES.join(", ")),
            );
        }
        let limit = limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            errors.push(
                "limit",
                "invalid_value",
                "must be a whole number from 1 to 200",
            );
        }
        if !errors.is_empty() {
            return Err(Error::fields(
                ErrorCode::InvalidQuery,
                "invalid query parameters",
                &errors.0,
            ));
        }
        let after = match after {
            None => None,
            Some(c) => Some(parse_cursor(c).ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidCursor,
                    "the cursor is not one this endpoint returned",
                )
            })?),
        };
        let rows = store::list(self.db().conn(), wanted, after, limit + 1).await?;
        let more = rows.len() as u64 > limit;
        let items: Vec<IntakeMessageView> = rows
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(Into::into)
            .collect();
        let next_cursor = more
            .then(|| {
                items
                    .last()
                    .map(|m| format!("{}_{}", m.received_at.timestamp_micros(), m.id))
            })
            .flatten();
        Ok(IntakePage { items, next_cursor })
    }

    /// `POST /api/v1/officer/intake/{id}/convert`: files the request a triage item
    /// makes, of the kind (and details) the officer chose; the sender is the requester
    /// and gets the acknowledgement. Its attachments become evidence.
    pub async fn convert_intake(
        &self,
        officer: &Officer,
        id: Uuid,
        body: &Value,
    ) -> Result<IntakeOutcome, Error> {
        require(officer, Permission::WorkRequests)?;
        let row = store::get(self.db().conn(), id)
            .await?
            .ok_or_else(Error::not_found)?;
        if row.status != status::TRIAGE {
            return Err(already_settled(&row.status));
        }
        let mut errors = ValidationErrors::default();
        let kind = match body.get("kind").and_then(Value::as_str) {
            Some(k) => match k.parse::<RequestKind>() {
                Ok(k) => Some(k),
                Err(m) => {
                    errors.push("kind", "invalid_value", m);
                    None
                }
            },
            None => {
                errors.push("kind", "required", "this field is required");
                None
            }
        };
        let details = kind.and_then(|k| Details::read(k, body.get("details"), &mut errors));
        let email = row
            .from_address
            .as_deref()
            .and_then(|a| EmailAddress::parse(a).ok());
        if email.is_none() {
            errors.push(
                "from_address",
                "no_sender",
                "the message has no sender address to answer",
            );
        }
        let name = body
            .get("requester_name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .or_else(|| row.from_address.clone());
        if !errors.is_empty() {
            return Err(errors.into());
        }
        let (Some(kind), Some(details), Some(email), Some(name)) = (kind, details, email, name)
        else {
            return Err(Error::internal());
        };
        let filing = Filing {
            kind,
            requester: email_requester(&name, email, &row.subject, &row.body),
            details,
            pack: None,
        };
        let raw = self.open_raw(id).await?;
        let filed = self
            .store_filing(
                filing,
                Channel::Email,
                Some(row.received_at),
                Actor::Officer { id: officer.id },
                format!("intake:{id}"),
                Some(Idempotency {
                    key: "convert".to_owned(),
                    fingerprint: "convert".to_owned(),
                }),
                crate::requests::AccountProof::None,
            )
            .await?;
        let now = self.now();
        self.settle(
            id,
            status::CONVERTED,
            Some(kind.as_str().to_owned()),
            Some(filed.id),
            None,
            officer.id,
            now,
        )
        .await?;
        if let Some(raw) = raw {
            let limits = self.config().intake.limits.clone();
            if let Ok(Ok(mail)) =
                tokio::task::spawn_blocking(move || inbound::parse(&raw, &limits)).await
            {
                self.keep_attachments(filed.id, &mail).await;
            }
        }
        tracing::info!(intake_message_id = %id, rights_request_id = %filed.id, "triage item converted");
        let row = store::get(self.db().conn(), id)
            .await?
            .ok_or_else(Error::not_found)?;
        self.outcome(row, false).await
    }

    /// `POST /api/v1/officer/intake/{id}/dismiss`: not a request (spam, a question
    /// answered elsewhere); the reason is kept and the raw message destroyed.
    pub async fn dismiss_intake(
        &self,
        officer: &Officer,
        id: Uuid,
        body: &Value,
    ) -> Result<IntakeOutcome, Error> {
        require(officer, Permission::WorkRequests)?;
        let reason = body
            .get("reason")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                Error::from(ValidationErrors::single(
                    "reason",
                    "required",
                    "say why this message is not a request",
                ))
            })?;
        let row = store::get(self.db().conn(), id)
            .await?
            .ok_or_else(Error::not_found)?;
        if row.status != status::TRIAGE {
            return Err(already_settled(&row.status));
        }
        self.settle(
            id,
            status::DISMISSED,
            row.kind.clone(),
            None,
            Some(cut(reason, 500)),
            officer.id,
            self.now(),
        )
        .await?;
        let row = store::get(self.db().conn(), id)
            .await?
            .ok_or_else(Error::not_found)?;
        self.outcome(row, false).await
    }

    /// Settles a triage item: its new status and the destruction of its sealed raw
    /// message commit together. A status moved on meanwhile (another officer) is
    /// `intake_already_settled`.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        id: Uuid,
        new_status: &str,
        kind: Option<String>,
        request_id: Option<Uuid>,
        reason: Option<String>,
        officer: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let tx = self.db().begin_write().await?;
        match store::settle(&*tx, id, new_status, kind, request_id, reason, officer, at).await {
            Ok(()) => {}
            Err(rightsdesk_store::StoreError::Conflict) => {
                return Err(Error::new(
                    ErrorCode::IntakeAlreadySettled,
                    "this message was settled meanwhile",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(())
    }

    // --- classification rules --------------------------------------------------------

    /// `GET /api/v1/officer/intake/rules`: the rules in force, bundled and added.
    pub async fn intake_rule_list(&self, officer: &Officer) -> Result<Value, Error> {
        require(officer, Permission::ViewRequests)?;
        let added = store::rules(self.db().conn()).await?;
        Ok(json!({
            "threshold": self.inner.intake_rules.threshold,
            "bundled": self.inner.intake_rules.rules,
            "added": added.iter().map(|r| json!({
                "id": r.id,
                "kind": r.kind,
                "terms": r.terms,
                "field": r.field,
                "weight": r.weight,
                "created_by": r.created_by,
                "created_at": r.created_at,
            })).collect::<Vec<_>>(),
        }))
    }

    /// `POST /api/v1/officer/intake/rules`: adds a rule (`{kind, terms, field?,
    /// weight?}`); it applies to the next message.
    pub async fn add_intake_rule(&self, officer: &Officer, body: &Value) -> Result<Value, Error> {
        require(officer, Permission::WorkRequests)?;
        let rule: Rule = serde_json::from_value(body.clone()).map_err(|e| {
            Error::from(ValidationErrors::single(
                "rule",
                "invalid_value",
                e.to_string(),
            ))
        })?;
        let mut check = IntakeRules::empty();
        check.extend([rule.clone()]).map_err(|e| {
            Error::from(ValidationErrors::single(
                "rule",
                "invalid_value",
                e.to_string(),
            ))
        })?;
        let row = store::rules::Model {
            id: Uuid::now_v7(),
            kind: rule.kind.as_str().to_owned(),
            terms: json!(rule.terms),
            field: serde_json::to_value(rule.field)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "any".to_owned()),
            weight: rule.weight,
            created_by: Some(officer.id),
            created_at: self.now(),
        };
        store::add_rule(self.db().conn(), row.clone()).await?;
        tracing::info!(intake_rule_id = %row.id, kind = %row.kind, "intake rule added");
        Ok(
            json!({"id": row.id, "kind": row.kind, "terms": row.terms, "field": row.field, "weight": row.weight}),
        )
    }

    /// `DELETE /api/v1/officer/intake/rules/{id}`.
    pub async fn delete_intake_rule(&self, officer: &Officer, id: Uuid) -> Result<(), Error> {
        require(officer, Permission::WorkRequests)?;
        match store::delete_rule(self.db().conn(), id).await {
            Ok(()) => Ok(()),
            Err(rightsdesk_store::StoreError::NotFound) => Err(Error::not_found()),
            Err(e) => Err(e.into()),
        }
    }

    // --- the signed raw-MIME endpoint ------------------------------------------------

    /// `POST /api/v1/intake/messages`: an MTA pipe or a provider's inbound hook posts
    /// the raw message, signed: `X-Rightsdesk-Signature: sha256=<hex HMAC-SHA256 of
    /// "<timestamp>.<body>">` with `intake.hook_secret`, and `X-Rightsdesk-Timestamp`
    /// (Unix seconds) within `intake.hook_tolerance_secs` of now. A signature is
    /// accepted once (a replay is refused).
    pub async fn ingest_signed(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<IntakeOutcome, Error> {
        let Some(secret) = self.config().intake.hook_secret.as_deref() else {
            return Err(Error::not_found());
        };
        let refused = |m: &str| Error::new(ErrorCode::InvalidSignature, m.to_owned());
        let timestamp = timestamp.ok_or_else(|| refused("X-Rightsdesk-Timestamp is missing"))?;
        let signature = signature
            .and_then(rightsdesk_domain::signature::parse)
            .ok_or_else(|| refused("X-Rightsdesk-Signature must be sha256=<hex>"))?;
        let at: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| refused("X-Rightsdesk-Timestamp must be Unix seconds"))?;
        let now = self.now();
        let tolerance = i64::try_from(self.config().intake.hook_tolerance_secs).unwrap_or(300);
        if (now.timestamp() - at).abs() > tolerance {
            return Err(refused("the timestamp is too far from now"));
        }
        if !rightsdesk_domain::signature::verify_bytes(
            secret.as_bytes(),
            timestamp.trim(),
            body,
            &signature,
        ) {
            return Err(refused("the signature does not match"));
        }
        let digest = hex::encode(&signature);
        if !store::remember_signature(self.db().conn(), &digest, now).await? {
            return Err(Error::new(
                ErrorCode::ReplayedMessage,
                "this signed message was accepted already",
            ));
        }
        self.ingest_message(body, IntakeSource::Hook).await
    }

    /// Forgets the signatures of hook posts that could not be replayed any more: a post
    /// is refused once its timestamp is `hook_tolerance_secs` from now, so a signature
    /// accepted more than twice that long ago cannot come back. Runs with `purge_jobs`.
    pub(crate) async fn forget_hook_signatures(&self) -> Result<u64, Error> {
        let tolerance = i64::try_from(self.config().intake.hook_tolerance_secs).unwrap_or(300);
        let before = self.now() - chrono::TimeDelta::seconds(tolerance.saturating_mul(2));
        let forgotten = store::forget_signatures_before(self.db().conn(), before).await?;
        if forgotten > 0 {
            tracing::debug!(forgotten, "hook signatures forgotten");
        }
        Ok(forgotten)
    }
}

/// What a message answers.
enum Thread {
    /// One of our requests.
    Request(Box<requests::Model>),
    /// Mail of ours, or a reference, that names no request here.
    Unknown,
    /// Nothing: a new message.
    None,
}

fn already_settled(status: &str) -> Error {
    Error::new(
        ErrorCode::IntakeAlreadySettled,
        format!("this message is {status} already"),
    )
}

/// Whether the sender of `mail` is the requester of `request` (same address).
fn sender_is_requester(mail: &Inbound, request: &requests::Model) -> bool {
    match (&mail.from, &request.requester_email) {
        (Some(from), Some(email)) => from.address.eq_ignore_ascii_case(email),
        _ => false,
    }
}

/// The sender of a message as the requester: the code to verify goes to the address
/// the message came from, in the language it was written in.
fn email_requester(name: &str, email: EmailAddress, subject: &str, text: &str) -> Requester {
    Requester {
        name: cut(name.trim(), 100),
        email: Some(email),
        phone: None,
        language: language_of(subject, text),
        acting_for: None,
    }
}

/// Chinese when the message has Chinese characters, else English.
fn language_of(subject: &str, text: &str) -> Language {
    let cjk = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c);
    if subject.chars().any(cjk) || text.chars().take(2_000).any(cjk) {
        Language::ZhCn
    } else {
        Language::En
    }
}

fn attachment_list(mail: &Inbound) -> Value {
    let kept = mail.attachments.iter().map(|a| {
        json!({
            "file_name": a.filename,
            "content_type": a.content_type,
            "size_bytes": a.bytes.len(),
        })
    });
    let dropped = mail.dropped_attachments.iter().map(|d| {
        json!({
            "file_name": d.filename,
            "content_type": d.content_type,
            "size_bytes": d.size,
            "dropped": d.reason.as_str(),
        })
    });
    Value::Array(kept.chain(dropped).collect())
}

fn rule_of(row: &store::rules::Model) -> Option<Rule> {
    serde_json::from_value(json!({
        "kind": row.kind,
        "terms": row.terms,
        "field": row.field,
        "weight": row.weight,
    }))
    .ok()
}

fn parse_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = c.split_once('_')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, id.parse().ok()?))
}
