//! Notifications through a transactional outbox (SPEC §9). A use-case that causes a
//! notice writes its row in the same transaction as the change; the sender claims due
//! rows, renders them in the requester's language, delivers them (SMTP or a folder;
//! SMS through the configured provider), and marks each one sent, retried later with
//! exponential back-off, or failed where officers see it. A row is claimed under a lease,
//! so a crashed sender's rows are taken over when the lease runs out; the Message-ID (and
//! an SMS's id) is stable across attempts.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt;
use rightsdesk_domain::deadlines::RulePack;
use rightsdesk_domain::lifecycle::Action;
use rightsdesk_mail::{AttachedFile, Email, SendError, Sms, Template, labels};
use rightsdesk_store::{ConnectionTrait, notifications, officers, requests};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Error, Services, sealing};

/// A notice to write into the outbox.
pub(crate) struct Notice {
    pub template: Template,
    /// Where the notice goes; `None` when the request has no usable contact.
    pub to: Option<Recipient>,
    pub language: String,
    pub request_id: Option<Uuid>,
    /// Template values (no secrets).
    pub params: Value,
    /// Values that must not rest in the database in clear (a code, a link).
    pub secret: Option<Value>,
    /// One notification per key, however often the cause is retried.
    pub dedupe_key: String,
}

pub(crate) enum Recipient {
    Email(String),
    Sms(String),
}

impl Recipient {
    /// The requester's email address, or else their mobile number.
    pub fn of_request(row: &requests::Model) -> Option<Recipient> {
        row.requester_email
            .clone()
            .map(Recipient::Email)
            .or_else(|| row.requester_phone.clone().map(Recipient::Sms))
    }
}

/// The values every requester notice about `row` uses.
pub(crate) fn request_params(row: &requests::Model, pack: &RulePack) -> Value {
    let received = row.received_at.with_timezone(&pack.time_zone);
    json!({
        "request": {
            "id": row.id,
            "reference": row.reference,
            "kind": row.kind,
            "kind_label": labels::kind(&row.kind, &row.language),
            "received_at": received.format("%Y-%m-%d %H:%M").to_string(),
            "due_date": row.due_date.to_string(),
        },
        "requester_name": row.requester_name,
    })
}

/// One notification, as officers see it on the request.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationView {
    pub id: Uuid,
    pub template: String,
    /// `email` or `sms`.
    pub channel: String,
    pub recipient: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<notifications::Model> for NotificationView {
    fn from(n: notifications::Model) -> Self {
        let pending = n.status == notifications::PENDING;
        Self {
            id: n.id,
            template: n.template,
            channel: n.channel,
            recipient: n.recipient,
            status: n.status,
            attempts: n.attempts,
            last_error: n.last_error,
            created_at: n.created_at,
            next_attempt_at: pending.then_some(n.next_attempt_at),
            sent_at: n.sent_at,
        }
    }
}

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

impl DeliveryReport {
    pub fn claimed(&self) -> usize {
        self.sent + self.retried + self.failed
    }
}

/// How long a woken sender waits for more notices before its pass.
const LINGER: Duration = Duration::from_millis(100);

/// The language of notices to officers (they have no language setting yet).
pub(crate) const OFFICER_LANGUAGE: &str = "zh-CN";

/// A notice to an officer about `row`: in the officers' language, with the request's
/// kind named in it, and `extra` (an object) beside the request's values.
pub(crate) fn officer_notice(
    row: &requests::Model,
    pack: &RulePack,
    template: Template,
    to: Option<Recipient>,
    extra: Value,
    dedupe_key: String,
) -> Notice {
    let mut params = request_params(row, pack);
    params["request"]["kind_label"] = json!(labels::kind(&row.kind, OFFICER_LANGUAGE));
    merge(&mut params, extra);
    Notice {
        template,
        to,
        language: OFFICER_LANGUAGE.to_owned(),
        request_id: Some(row.id),
        params,
        secret: None,
        dedupe_key,
    }
}

impl Services {
    /// The notices an action on `row` sends: to the requester when it answers them or
    /// asks them something, to an officer when a request is assigned to them. `data` is
    /// the action's event data; `seq` the event's number (one notice per event).
    pub(crate) async fn transition_notices(
        &self,
        conn: &impl ConnectionTrait,
        action: Action,
        row: &requests::Model,
        data: &serde_json::Map<String, Value>,
        seq: i64,
        actor: &rightsdesk_domain::Actor,
    ) -> Result<Vec<Notice>, Error> {
        let text = |key: &str| {
            data.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        if data.get("escalated_to_dpo") == Some(&Value::Bool(true)) {
            return self.complaint_escalation(conn, row, seq).await;
        }
        // On hold for the DPO: relatives disagree (found at verification), or an officer
        // held it.
        if let Some(held) = data.get("held_for_dpo") {
            let with: Vec<String> = held["with"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect();
            return self
                .hold_notices(conn, row, "relatives_disagree", &with, seq)
                .await;
        }
        if action == Action::Hold {
            return self
                .hold_notices(conn, row, &text("reason"), &[], seq)
                .await;
        }
        let mut params = request_params(row, self.pack_of(row));
        let mut secret = None;
        let mut extra = Vec::new();
        let template = match action {
            Action::RequestInfo => {
                params["message"] = json!(text("message"));
                Template::InformationRequested
            }
            Action::Complete => {
                params["summary"] = json!(text("summary"));
                // The bundle's download link, sealed in the outbox row, and the notices
                // that go with it (the password, the portability recipient's link).
                if let Some((values, sealed, others)) = self.deliver_bundle(conn, row, seq).await? {
                    merge(&mut params, values);
                    secret = Some(sealed);
                    extra = others;
                }
                // An explanation (PIPL 48): the processing rules of every category, as the
                // privacy policy states them (`[[category]]` in the sources file edits them).
                if row.kind == "explanation" {
                    params["rules"] = self.processing_rules(&row.language);
                }
                // A consent withdrawal: each purpose, and since when it is withdrawn.
                if let Some(consents) = self.consent_confirmation(conn, row).await? {
                    params["consents"] = consents;
                }
                // A next of kin: the rights the deceased's arrangement refused.
                if let Some(arrangement) = self.arrangement_outcome(conn, row).await? {
                    params["arrangement"] = arrangement;
                }
                // A correction: each field, corrected or not and why.
                if let Some(corrections) = self.correction_outcome(conn, row).await? {
                    params["corrections"] = corrections;
                }
                // A deletion's signed certificate goes with it, as a file.
                if let Some(certificate) = data.get("certificate") {
                    params["certificate"] = json!({
                        "key_id": certificate["certificate"]["key_id"],
                        "sources": certificate["certificate"]["sources"].as_array().map_or(0, Vec::len),
                    });
                    params["attachment"] = json!({
                        "name": format!("deletion-certificate-{}.json", row.reference),
                        "content_type": "application/json",
                        "content": serde_json::to_string_pretty(certificate).unwrap_or_default(),
                    });
                }
                Template::Completed
            }
            Action::Reject => {
                params["reason_label"] = json!(labels::reason(&text("reason_code"), &row.language));
                params["explanation"] = json!(text("explanation"));
                // The refusal letter goes with it, rendered from the same values.
                params["letter"] = self
                    .refusal_letter_values(conn, row, &text("reason_code"), actor, self.now())
                    .await?;
                Template::Rejected
            }
            Action::Withdraw => Template::Withdrawn,
            Action::QuoteFee => {
                params["fee"] = data.get("fee").cloned().unwrap_or_default();
                params["explanation"] = json!(text("explanation"));
                params["repeats"] = json!(
                    data.get("repeats")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                );
                Template::FeeQuoted
            }
            Action::Extend => {
                params["new_due_date"] = data["deadline"]["due_date"].clone();
                params["reason"] = json!(text("reason"));
                Template::Extended
            }
            Action::RejectEvidence => {
                params["review_note"] = json!(text("reason"));
                params["evidence_kind_label"] =
                    json!(labels::evidence_kind(&text("evidence_kind"), &row.language));
                Template::EvidenceRejected
            }
            Action::Expire => {
                params["expire_days"] = json!(self.config().verification.expire_after_days);
                Template::Expired
            }
            Action::Assign => {
                let assignee = data
                    .get("assignee_id")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<Uuid>().ok());
                let Some(officer) = (match assignee {
                    Some(id) => officers::find(conn, id).await?,
                    None => None,
                }) else {
                    return Ok(Vec::new());
                };
                return Ok(vec![officer_notice(
                    row,
                    self.pack_of(row),
                    Template::OfficerAssigned,
                    officer.email.map(Recipient::Email),
                    json!({ "officer_name": officer.display_name }),
                    format!("officer_assigned:{}:{seq}", row.id),
                )]);
            }
            _ => return Ok(Vec::new()),
        };
        let mut notices = vec![Notice {
            template,
            to: Recipient::of_request(row),
            language: row.language.clone(),
            request_id: Some(row.id),
            params,
            secret,
            dedupe_key: format!("{}:{}:{seq}", template.as_str(), row.id),
        }];
        notices.extend(extra);
        Ok(notices)
    }

    /// Where a matter for the DPO goes: every active DPO with an email address, or
    /// `company.dpo_email` when none has one.
    pub(crate) async fn dpo_recipients(
        &self,
        conn: &impl ConnectionTrait,
    ) -> Result<Vec<String>, Error> {
        let mut to: Vec<String> = officers::list(conn)
            .await?
            .into_iter()
            .filter(|o| {
                o.active
                    && crate::auth::parse_roles(&o.roles).contains(&rightsdesk_domain::Role::Dpo)
            })
            .filter_map(|o| o.email)
            .collect();
        if to.is_empty()
            && let Some(dpo) = self.inner.company_context["company"]["dpo_email"].as_str()
        {
            to.push(dpo.to_owned());
        }
        Ok(to)
    }

    /// A verified complaint's escalation (SPEC §8, PIPL 50): a notice to every active DPO
    /// with an email address, or to `company.dpo_email` when none has one.
    pub(crate) async fn complaint_escalation(
        &self,
        conn: &impl ConnectionTrait,
        row: &requests::Model,
        seq: i64,
    ) -> Result<Vec<Notice>, Error> {
        let about = match row.related_request_id {
            Some(id) => requests::find(conn, id).await?,
            None => None,
        };
        let to = self.dpo_recipients(conn).await?;
        let extra = json!({"complaint": {
            "about_reference": row.details["about_reference"],
            "about_kind_label": about.as_ref().map(|a| labels::kind(&a.kind, OFFICER_LANGUAGE)),
            "about_state": about.as_ref().map(|a| a.state.clone()),
            "description": row.details["description"],
        }});
        Ok(to
            .into_iter()
            .map(|email| {
                officer_notice(
                    row,
                    self.pack_of(row),
                    Template::ComplaintEscalated,
                    Some(Recipient::Email(email.clone())),
                    extra.clone(),
                    format!("complaint_escalated:{}:{seq}:{email}", row.id),
                )
            })
            .collect())
    }

    /// Every category of personal data the company holds, with the purpose of its
    /// processing, in `language`: `[{title, purpose, policy}]`.
    fn processing_rules(&self, language: &str) -> Value {
        let zh = language.starts_with("zh");
        Value::Array(
            self.sources()
                .catalogue
                .iter()
                .map(|c| {
                    json!({
                        "title": if zh { &c.title_zh } else { &c.title_en },
                        "purpose": if zh { &c.purpose_zh } else { &c.purpose_en },
                        "policy": c.policy,
                    })
                })
                .collect(),
        )
    }

    /// The outbox rows for `notices`; a notice with nowhere to go has none.
    pub(crate) fn outbox_rows(
        &self,
        notices: impl IntoIterator<Item = Notice>,
        now: DateTime<Utc>,
    ) -> Result<Vec<notifications::Model>, Error> {
        let mut rows = Vec::new();
        for notice in notices {
            rows.extend(self.outbox_row(notice, now)?);
        }
        Ok(rows)
    }

    fn outbox_row(
        &self,
        notice: Notice,
        now: DateTime<Utc>,
    ) -> Result<Option<notifications::Model>, Error> {
        let Some(to) = notice.to else {
            return Ok(None);
        };
        let (channel, recipient) = match to {
            Recipient::Email(a) => ("email", a),
            Recipient::Sms(p) => ("sms", p),
        };
        let id = Uuid::now_v7();
        let sealed = match &notice.secret {
            Some(secret) => Some(self.seal(id, secret)?),
            None => None,
        };
        Ok(Some(notifications::Model {
            id,
            request_id: notice.request_id,
            channel: channel.to_owned(),
            recipient,
            language: notice.language,
            template: notice.template.as_str().to_owned(),
            params: notice.params,
            sealed,
            dedupe_key: notice.dedupe_key,
            status: notifications::PENDING.to_owned(),
            attempts: 0,
            next_attempt_at: now,
            lease_until: None,
            leased_by: None,
            last_error: None,
            sent_at: None,
            created_at: now,
        }))
    }

    /// Wakes the sender: something was just written to the outbox.
    pub(crate) fn outbox_written(&self) {
        self.inner.outbox_wake.notify_one();
    }

    /// One delivery pass: claims the due notifications (up to `outbox.batch_size`) and
    /// delivers each. Tests call this to drive the sender step by step.
    /// Renews the leases on `ids` every third of `outbox.lease_secs` until dropped.
    fn renew_outbox_leases(&self, ids: Vec<Uuid>) -> Option<crate::jobs::AbortOnDrop> {
        if ids.is_empty() {
            return None;
        }
        let services = self.clone();
        let lease_secs = self.config().outbox.lease_secs;
        let ids = std::sync::Arc::new(ids);
        Some(crate::jobs::renew_every_third(lease_secs, move || {
            let (services, ids) = (services.clone(), ids.clone());
            async move {
                let until =
                    services.now() + TimeDelta::seconds(i64::try_from(lease_secs).unwrap_or(120));
                let renewed = async {
                    let tx = services.db().begin_write().await?;
                    tx.relax_durability().await?;
                    let held = notifications::renew_leases(&*tx, &ids, services.worker_id(), until)
                        .await?;
                    tx.commit().await?;
                    Ok::<_, Error>(held)
                }
                .await;
                match renewed {
                    Ok(held) if held < ids.len() as u64 => tracing::warn!(
                        held,
                        claimed = ids.len(),
                        "notification leases were lost; another sender may send them too"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "renewing notification leases failed"),
                }
            }
        }))
    }

    pub async fn deliver_notifications(&self) -> Result<DeliveryReport, Error> {
        let config = &self.config().outbox;
        let now = self.now();
        let lease = now + TimeDelta::seconds(i64::try_from(config.lease_secs).unwrap_or(120));
        let limit = u64::from(config.batch_size);
        // The sender's own bookkeeping need not wait for the disk: a claim or a mark lost
        // in a database crash only means a message is sent again (same Message-ID).
        let tx = self.db().begin_write().await?;
        tx.relax_durability().await?;
        let claimed = notifications::claim_due(&*tx, now, lease, self.worker_id(), limit).await?;
        tx.commit().await?;
        // The batch's leases are kept alive while it is rendered and sent (a slow server or
        // a busy machine can take longer than one lease), by a task of its own that ends
        // with the sending: another sender never takes a message this one is still sending.
        let renewer = self.renew_outbox_leases(claimed.iter().map(|r| r.id).collect());
        // Rendering is CPU work: the whole batch on one blocking thread, so that neither
        // the async threads nor a hundred blocking threads at once crowd out filings on
        // a small machine. Then as many messages are in flight as the mailer has
        // connections (`mail.smtp.pool_size`), and
        // every outcome is recorded in one transaction.
        let services = self.clone();
        let rendered = tokio::task::spawn_blocking(move || {
            claimed
                .into_iter()
                .map(|row| {
                    let rendered = services.render(&row);
                    (row, rendered)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|_| Error::internal())?;
        let outcomes: Vec<_> = futures_util::stream::iter(rendered)
            .map(|(row, rendered)| async move {
                let (id, template, attempts) = (row.id, row.template.clone(), row.attempts);
                let outcome = match rendered {
                    Ok(rendered) => self.deliver_one(row, rendered).await,
                    Err(e) => Err(e),
                };
                (id, template, attempts, outcome)
            })
            .buffer_unordered(self.inner.mailer.concurrency())
            .collect()
            .await;
        // Renewed at most a third of a lease ago: the outcomes are recorded well within it.
        drop(renewer);
        let now = self.now();
        let mut report = DeliveryReport::default();
        let mut sent = Vec::new();
        let tx = self.db().begin_write().await?;
        tx.relax_durability().await?;
        for (id, template, attempts, outcome) in outcomes {
            let status = match outcome {
                Ok(()) => {
                    sent.push(id);
                    report.sent += 1;
                    "sent"
                }
                Err(SendError::Transient(e)) if attempts < config.max_attempts as i32 => {
                    let wait = crate::jobs::backoff(
                        config.backoff_base_secs,
                        config.backoff_max_secs,
                        attempts,
                    );
                    notifications::mark_retry(&*tx, id, now + wait, &e).await?;
                    report.retried += 1;
                    tracing::warn!(notification_id = %id, template = %template, attempts, error = %e, "notification delivery failed; will retry");
                    "retried"
                }
                Err(SendError::Transient(e) | SendError::Permanent(e)) => {
                    notifications::mark_failed(&*tx, id, &e).await?;
                    report.failed += 1;
                    tracing::error!(notification_id = %id, template = %template, attempts, error = %e, "notification failed for good");
                    "failed"
                }
            };
            metrics::counter!("rightsdesk_notifications_total", "template" => template, "outcome" => status)
                .increment(1);
        }
        notifications::mark_sent(&*tx, &sent, now).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn deliver_one(
        &self,
        row: notifications::Model,
        (mut rendered, attachments): (rightsdesk_mail::Rendered, Vec<AttachedFile>),
    ) -> Result<(), SendError> {
        match row.channel.as_str() {
            "email" => {
                // The reference in every subject (in brackets at the end when the
                // template's subject lacks it): a reply whose client kept the subject
                // threads onto its request (`crate::intake`).
                if let Some(reference) = row.params["request"]["reference"].as_str()
                    && !rendered.subject.contains(reference)
                {
                    rendered.subject = format!("{} [{reference}]", rendered.subject);
                }
                let email = Email {
                    to: row.recipient.clone(),
                    rendered,
                    message_id: format!("{}@{}", row.id, self.inner.mailer.message_id_domain()),
                    attachments,
                };
                self.inner.mailer.send(email).await
            }
            // A text message carries the subject line, which every template keeps short.
            "sms" => {
                let sms = Sms {
                    id: row.id.to_string(),
                    to: row.recipient,
                    text: rendered.subject,
                };
                self.inner.sms.send(&sms).await
            }
            other => Err(SendError::Permanent(format!("unknown channel {other}"))),
        }
    }

    /// The message of `row`: its values, its sealed secrets and the company's details
    /// through its template, in its language.
    /// The message of `row` with the files attached to it: a file its values carry (a
    /// deletion certificate), and a refusal's letter.
    fn render(
        &self,
        row: &notifications::Model,
    ) -> Result<(rightsdesk_mail::Rendered, Vec<AttachedFile>), SendError> {
        let template = Template::parse(&row.template)
            .ok_or_else(|| SendError::Permanent(format!("unknown template {}", row.template)))?;
        let mut context = row.params.clone();
        if let Some(sealed) = &row.sealed {
            let secret = self
                .unseal(row.id, sealed)
                .map_err(|_| SendError::Permanent("cannot decrypt the sealed values".to_owned()))?;
            merge(&mut context, secret);
        }
        merge(&mut context, self.inner.company_context.clone());
        let rendered = self
            .inner
            .templates
            .render(template, &row.language, &context)
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let mut attachments: Vec<AttachedFile> = row
            .params
            .get("attachment")
            .and_then(|a| {
                Some(AttachedFile {
                    name: a["name"].as_str()?.to_owned(),
                    content_type: a["content_type"].as_str()?.to_owned(),
                    content: a["content"].as_str()?.as_bytes().to_vec(),
                })
            })
            .into_iter()
            .collect();
        if template == Template::Rejected && context["letter"].is_object() {
            let letter = self
                .inner
                .templates
                .render(Template::RefusalLetter, &row.language, &context)
                .map_err(|e| SendError::Permanent(e.to_string()))?;
            attachments.push(AttachedFile {
                name: format!(
                    "refusal-letter-{}.html",
                    context["request"]["reference"]
                        .as_str()
                        .unwrap_or("request")
                ),
                content_type: "text/html; charset=utf-8".to_owned(),
                content: letter.html.into_bytes(),
            });
        }
        Ok((rendered, attachments))
    }

    /// The letter's own values: who signs it (the DPO who refused), the date (the
    /// request's local date of `at`) and the rule the reason rests on.
    async fn refusal_letter_values(
        &self,
        conn: &impl ConnectionTrait,
        row: &requests::Model,
        reason_code: &str,
        actor: &rightsdesk_domain::Actor,
        at: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let signed_by = match actor {
            rightsdesk_domain::Actor::Officer { id } => {
                officers::find(conn, *id).await?.map(|o| o.display_name)
            }
            _ => None,
        };
        let pack = self.pack_of(row);
        Ok(json!({
            "signed_by": signed_by.unwrap_or_default(),
            "date": at.with_timezone(&pack.time_zone).date_naive().to_string(),
            "basis": labels::reason_basis(reason_code, &row.language),
        }))
    }

    /// `GET /api/v1/officer/requests/{id}/refusal-letter`: the refusal letter of a
    /// rejected request (HTML, in the requester's language), rendered from its `rejected`
    /// event: to print and post to a requester who wrote on paper, or to hand a regulator.
    pub async fn refusal_letter(
        &self,
        officer: &crate::auth::Officer,
        id: Uuid,
    ) -> Result<String, Error> {
        crate::officers::require(officer, rightsdesk_domain::Permission::ViewRequests)?;
        let conn = self.db().conn();
        let row = requests::find(conn, id)
            .await?
            .ok_or_else(Error::not_found)?;
        let rejected = rightsdesk_store::events::for_request(conn, id)
            .await?
            .into_iter()
            .rfind(|e| e.event_type == "rejected");
        let (Some(event), "rejected") = (rejected, row.state.as_str()) else {
            return Err(Error::new(
                crate::ErrorCode::NotRejected,
                format!("the request is {}, not rejected", row.state),
            ));
        };
        let text = |key: &str| event.data[key].as_str().unwrap_or_default().to_owned();
        let actor = rightsdesk_domain::Actor::from_stored(&event.actor)
            .unwrap_or(rightsdesk_domain::Actor::System);
        let mut context = request_params(&row, self.pack_of(&row));
        context["reason_label"] = json!(labels::reason(&text("reason_code"), &row.language));
        context["explanation"] = json!(text("explanation"));
        context["letter"] = self
            .refusal_letter_values(conn, &row, &text("reason_code"), &actor, event.at)
            .await?;
        merge(&mut context, self.inner.company_context.clone());
        Ok(self
            .inner
            .templates
            .render(Template::RefusalLetter, &row.language, &context)
            .map_err(|e| {
                tracing::error!(error = %e, "the refusal letter did not render");
                Error::internal()
            })?
            .html)
    }

    /// Runs delivery passes until `stop`. A full batch is followed at once by the next
    /// pass. Otherwise the sender waits to be woken by a writer of this process (then
    /// lingers `LINGER` so that one pass carries the notices of many filings rather than
    /// one transaction pair per filing), or `outbox.poll_interval_ms` for rows written
    /// elsewhere. Errors (the database is down) are logged and tried again later.
    pub async fn run_outbox(self, stop: CancellationToken) {
        let idle = Duration::from_millis(self.config().outbox.poll_interval_ms);
        let full = self.config().outbox.batch_size as usize;
        tracing::info!("outbox sender started");
        while !stop.is_cancelled() {
            let claimed = match self.deliver_notifications().await {
                Ok(report) => report.claimed(),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox pass failed");
                    0
                }
            };
            if claimed >= full {
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.inner.outbox_wake.notified() => {
                    tokio::time::sleep(LINGER.min(idle)).await;
                }
                _ = tokio::time::sleep(idle) => {}
            }
        }
        tracing::info!("outbox sender stopped");
    }

    /// `id` is bound into the ciphertext, so a sealed value cannot be moved to another row.
    pub(crate) fn seal(&self, id: Uuid, value: &Value) -> Result<String, Error> {
        let plain = serde_json::to_vec(value).map_err(|_| Error::internal())?;
        let (nonce, sealed) =
            sealing::seal(&self.keys().outbox.current(self.now()).key, id, &plain)?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    pub(crate) fn unseal(&self, id: Uuid, sealed: &str) -> Result<Value, Error> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| Error::internal())?;
        if bytes.len() < sealing::NONCE_LEN {
            return Err(Error::internal());
        }
        let (nonce, sealed) = bytes.split_at(sealing::NONCE_LEN);
        // Sealed under any version of the outbox key: tried newest first.
        let plain = self
            .keys()
            .outbox
            .ring(self.now())
            .open(None, id, nonce, sealed)?;
        serde_json::from_slice(&plain).map_err(|_| Error::internal())
    }
}

pub(crate) fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}
