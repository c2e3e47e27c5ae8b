//! Consent (SPEC §7, PIPL 15 and 44): the ledger of each subject's consent per purpose,
//! and the withdrawal of consent.
//!
//! - **The ledger** (`consents`): one row per change — given, withdrawn, narrowed — with
//!   when it took effect, how it was expressed, and the request or the account that
//!   recorded it; rows are appended, never changed. A subject's consent to a purpose is
//!   its latest row. The company's systems read it (`POST /api/v1/consents/query`) and
//!   record consents given (`POST /api/v1/consents`) with a `system` account.
//! - **A withdrawal** (a `consent_withdrawal` request) takes effect the moment the
//!   requester's identity is verified, in the transaction that records the verification:
//!   the ledger says so at once, for new processing. The same transaction opens one
//!   change per source that uses a withdrawn purpose (`source_changes`) and a job each
//!   (`change_source`): an `sql` source sets the columns its `[source.sql.consent]`
//!   names, an `http` source is sent the signed `consent` action, and any other source
//!   (a `manual` one, or a narrowing an `sql` source cannot express) becomes its owner's
//!   task, confirmed by an officer. The request completes once every source has an
//!   outcome, and the completion notice confirms the withdrawal to the requester.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use rightsdesk_connectors::ConsentOrder;
use rightsdesk_domain::kinds::ConsentChange;
use rightsdesk_domain::validation::{ObjectReader, limits};
use rightsdesk_domain::{Actor, Details, Email, Permission, Phone, RequestKind, ValidationErrors};
use rightsdesk_store::consents::{self as ledger, state};
use rightsdesk_store::source_changes::{self as store, outcome, status};
use rightsdesk_store::{ConnectionTrait, notifications, requests, subjects};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Officer;
use crate::collections::OwnerTask;
use crate::jobs::Job;
use crate::officers::require;
use crate::{Error, ErrorCode, Services};

/// How far in the future a recorded consent's `at` may be (clocks differ a little).
const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

/// A subject's consent to one purpose, as it stands.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentState {
    pub purpose: String,
    pub title_zh: Option<String>,
    pub title_en: Option<String>,
    /// `given`, `withdrawn` or `narrowed`.
    pub state: String,
    /// What it covers (given) or still covers (narrowed).
    pub scope: Option<String>,
    /// Since when.
    pub since: DateTime<Utc>,
    /// Whether new processing for this purpose may go ahead: `given` or `narrowed` (within
    /// `scope`).
    pub active: bool,
}

/// One change in the ledger.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentEntry {
    pub id: Uuid,
    pub purpose: String,
    pub state: String,
    pub scope: Option<String>,
    pub method: String,
    pub policy_version: Option<String>,
    /// The request that withdrew or narrowed it.
    pub request_id: Option<Uuid>,
    /// The account (officer or system) that recorded it.
    pub recorded_by: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// A subject's consents: each purpose as it stands, and the whole history.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubjectConsents {
    /// Whether the identifiers name a subject rightsdesk knows; when not, nothing was
    /// ever recorded for them.
    pub subject_known: bool,
    pub consents: Vec<ConsentState>,
    pub history: Vec<ConsentEntry>,
}

/// Where one source's change stands for a request.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceChangeView {
    pub source: String,
    pub title_zh: Option<String>,
    pub title_en: Option<String>,
    /// `sql`, `http` or `manual` (none when the source left the sources file).
    pub connector: Option<String>,
    /// `pending`, `running`, `done`, `waiting_owner` or `failed`.
    pub status: String,
    /// Once `done`: `applied` or `no_data`.
    pub outcome: Option<String>,
    /// What was changed: `[{purpose, table, rows}]`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub changes: Value,
    pub attempts: i32,
    pub error_code: Option<String>,
    pub error: Option<String>,
    /// The officer who confirmed the owner's change, and their note.
    pub confirmed_by: Option<Uuid>,
    pub note: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A withdrawal's purposes, change and scope, read from the request's details.
struct Withdrawal {
    purposes: Vec<String>,
    change: ConsentChange,
    scope: Option<String>,
}

fn withdrawal(request: &requests::Model) -> Result<Option<Withdrawal>, Error> {
    let kind: RequestKind = crate::requests::parse_stored(&request.kind)?;
    if kind != RequestKind::ConsentWithdrawal {
        return Ok(None);
    }
    let Some(Details::ConsentWithdrawal {
        purposes,
        change,
        note,
    }) = Details::from_stored(kind, &request.details)
    else {
        tracing::error!(rights_request_id = %request.id, "unreadable stored details");
        return Err(Error::internal());
    };
    Ok(Some(Withdrawal {
        purposes,
        change,
        scope: note,
    }))
}

/// The subject's identifiers in a consent call: `{email, phone, account_id}`, at least
/// one, normalised as requests store them.
pub(crate) fn read_identifiers(
    r: &mut ObjectReader<'_>,
) -> (Option<String>, Option<String>, Option<String>) {
    let path = r.field_path("email");
    let email = r
        .string("email", false, Email::MAX_LEN)
        .and_then(|raw| match Email::parse(&raw) {
            Ok(e) => Some(e.as_str().to_owned()),
            Err((code, message)) => {
                r.errors().push(path, code, message);
                None
            }
        });
    let path = r.field_path("phone");
    let phone = r
        .string("phone", false, limits::SHORT_TEXT)
        .and_then(|raw| match Phone::parse(&raw) {
            Ok(p) => Some(p.as_str().to_owned()),
            Err((code, message)) => {
                r.errors().push(path, code, message);
                None
            }
        });
    let account_id = r.string("account_id", false, limits::SHORT_TEXT);
    (email, phone, account_id)
}

/// The subject a query body `{email?, phone?, account_id?}` names (at least one), if
/// rightsdesk knows them.
pub(crate) async fn find_subject(
    conn: &impl ConnectionTrait,
    body: &Value,
) -> Result<Option<subjects::Model>, Error> {
    let mut errors = ValidationErrors::default();
    let ids = {
        let mut r = crate::requests::object_reader(body, &mut errors)?;
        let ids = read_identifiers(&mut r);
        r.deny_unknown();
        ids
    };
    let (email, phone, account_id) = errors.finish(ids).map_err(Error::from)?;
    if email.is_none() && phone.is_none() && account_id.is_none() {
        return Err(ValidationErrors::single(
            "",
            "required",
            "give at least one of email, phone, account_id",
        )
        .into());
    }
    Ok(subjects::find_matching(
        conn,
        account_id.as_deref(),
        email.as_deref(),
        phone.as_deref(),
    )
    .await?)
}

impl Services {
    /// `POST /api/v1/consents/query` `{email, phone, account_id}`: a subject's consents,
    /// as they stand and with their history. The identifiers travel in the body, never
    /// in a URL (which access logs keep).
    pub async fn query_consents(
        &self,
        officer: &Officer,
        body: &Value,
    ) -> Result<SubjectConsents, Error> {
        require(officer, Permission::ReadConsents)?;
        let conn = self.db().conn();
        let subject = find_subject(conn, body).await?;
        match subject {
            Some(s) => self.consents_of(conn, s.id).await,
            None => Ok(SubjectConsents {
                subject_known: false,
                consents: Vec::new(),
                history: Vec::new(),
            }),
        }
    }

    /// A known subject's consents.
    pub(crate) async fn consents_of(
        &self,
        conn: &impl ConnectionTrait,
        subject: Uuid,
    ) -> Result<SubjectConsents, Error> {
        let rows = ledger::history(conn, subject).await?;
        let purposes = &self.sources().purposes;
        // The latest row per purpose (the history is oldest first).
        let mut latest: std::collections::BTreeMap<&str, &ledger::Model> =
            std::collections::BTreeMap::new();
        for row in &rows {
            latest.insert(&row.purpose, row);
        }
        let consents = latest
            .values()
            .map(|row| {
                let p = purposes.get(&row.purpose);
                ConsentState {
                    purpose: row.purpose.clone(),
                    title_zh: p.map(|p| p.title_zh.clone()),
                    title_en: p.map(|p| p.title_en.clone()),
                    state: row.state.clone(),
                    scope: row.scope.clone(),
                    since: row.at,
                    active: row.state != state::WITHDRAWN,
                }
            })
            .collect();
        let history = rows
            .into_iter()
            .map(|row| ConsentEntry {
                id: row.id,
                purpose: row.purpose,
                state: row.state,
                scope: row.scope,
                method: row.method,
                policy_version: row.policy_version,
                request_id: row.request_id,
                recorded_by: row.recorded_by,
                at: row.at,
                recorded_at: row.recorded_at,
            })
            .collect();
        Ok(SubjectConsents {
            subject_known: true,
            consents,
            history,
        })
    }

    /// `POST /api/v1/consents`: a system (or an officer, for one received on paper)
    /// records a change of a subject's consent: `{"subject": {email, phone, account_id},
    /// "purpose", "state": "given" | "withdrawn" | "narrowed", "scope", "method",
    /// "policy_version", "at"}`. A subject not known yet is created with the
    /// identifiers. Answers the subject's consents.
    pub async fn record_consent(
        &self,
        officer: &Officer,
        body: &Value,
    ) -> Result<SubjectConsents, Error> {
        require(officer, Permission::RecordConsents)?;
        let now = self.now();
        let mut errors = ValidationErrors::default();
        let read = {
            let mut r = crate::requests::object_reader(body, &mut errors)?;
            let subject = r.take("subject");
            let ids = match ObjectReader::new(subject.as_ref(), "subject", false, r.errors()) {
                Some(mut s) => {
                    let ids = read_identifiers(&mut s);
                    s.deny_unknown();
                    Some(ids)
                }
                None => None,
            };
            let purpose_path = r.field_path("purpose");
            let purpose = r.string("purpose", true, 64);
            if let Some(p) = &purpose
                && !self.sources().purposes.contains(p)
            {
                r.errors().push(
                    purpose_path,
                    "unknown_purpose",
                    "is not a purpose of the catalogue (the bundled ones, or [[purpose]] in the sources file)",
                );
            }
            let state_path = r.field_path("state");
            let new_state = r.string("state", true, 20);
            if let Some(s) = &new_state
                && !state::ALL.contains(&s.as_str())
            {
                r.errors().push(
                    state_path,
                    "invalid_value",
                    format!("must be one of {}", state::ALL.join(", ")),
                );
            }
            let scope_path = r.field_path("scope");
            let scope = r.string("scope", false, limits::LONG_TEXT);
            if new_state.as_deref() == Some(state::NARROWED) && scope.is_none() {
                r.errors().push(
                    scope_path,
                    "required",
                    "a narrowed consent says what it still covers",
                );
            }
            let method_path = r.field_path("method");
            let method = r.string("method", true, 40);
            if let Some(m) = &method
                && (!rightsdesk_domain::categories::is_key(m) || m == "rights_request")
            {
                r.errors().push(
                    method_path,
                    "invalid_value",
                    "must be a lower-case identifier such as web_form or sms_reply (rights_request is the service's own)",
                );
            }
            let policy_version = r.string("policy_version", false, limits::SHORT_TEXT);
            let at_path = r.field_path("at");
            let at = match r.string("at", false, 40) {
                None => Some(now),
                Some(raw) => match DateTime::parse_from_rfc3339(&raw) {
                    Ok(t) if t.with_timezone(&Utc) <= now + CLOCK_SKEW => {
                        Some(t.with_timezone(&Utc))
                    }
                    Ok(_) => {
                        r.errors()
                            .push(at_path, "in_future", "must not be in the future");
                        None
                    }
                    Err(_) => {
                        r.errors().push(
                            at_path,
                            "invalid_timestamp",
                            "must be an RFC 3339 timestamp such as 2026-12-01T09:30:00+08:00",
                        );
                        None
                    }
                },
            };
            r.deny_unknown();
            (ids, purpose, new_state, scope, method, policy_version, at)
        };
        let (ids, purpose, new_state, scope, method, policy_version, at) =
            errors.finish(read).map_err(Error::from)?;
        let (
            Some((email, phone, account_id)),
            Some(purpose),
            Some(new_state),
            Some(method),
            Some(at),
        ) = (ids, purpose, new_state, method, at)
        else {
            return Err(Error::internal());
        };
        if email.is_none() && phone.is_none() && account_id.is_none() {
            return Err(ValidationErrors::single(
                "subject",
                "required",
                "give at least one of email, phone, account_id",
            )
            .into());
        }
        let tx = self.db().begin_write().await?;
        let subject =
            crate::requests::find_or_create_subject(&*tx, account_id, email, phone, now).await?;
        ledger::insert(
            &*tx,
            vec![ledger::Model {
                id: Uuid::now_v7(),
                subject_id: subject,
                purpose: purpose.clone(),
                state: new_state.clone(),
                scope,
                method,
                policy_version,
                request_id: None,
                recorded_by: Some(officer.id),
                at,
                recorded_at: now,
            }],
        )
        .await?;
        let answer = self.consents_of(&*tx, subject).await?;
        tx.commit().await?;
        metrics::counter!("rightsdesk_consents_recorded_total", "state" => new_state.clone())
            .increment(1);
        tracing::info!(purpose = %purpose, state = %new_state, recorded_by = %officer.id, "consent recorded");
        Ok(answer)
    }

    /// A `consent_withdrawal` request whose subject is known takes effect, once: the
    /// ledger records the withdrawal (or narrowing) of each purpose now, and each source
    /// that uses one of them gets a change and a job. Runs in the caller's transaction;
    /// returns what to add to its event (`None` for other requests, or when done before).
    pub(crate) async fn take_consent_effect(
        &self,
        conn: &impl ConnectionTrait,
        request: &requests::Model,
        subject: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<Value>, Error> {
        let Some(w) = withdrawal(request)? else {
            return Ok(None);
        };
        if ledger::recorded_by_request(conn, request.id).await? {
            return Ok(None);
        }
        let new_state = match w.change {
            ConsentChange::Withdraw => state::WITHDRAWN,
            ConsentChange::Narrow => state::NARROWED,
        };
        let rows = w
            .purposes
            .iter()
            .map(|purpose| ledger::Model {
                id: Uuid::now_v7(),
                subject_id: subject,
                purpose: purpose.clone(),
                state: new_state.to_owned(),
                scope: w.scope.clone(),
                method: "rights_request".to_owned(),
                policy_version: None,
                request_id: Some(request.id),
                recorded_by: None,
                at: now,
                recorded_at: now,
            })
            .collect();
        ledger::insert(conn, rows).await?;
        let wanted: BTreeSet<&String> = w.purposes.iter().collect();
        let sources: Vec<String> = self
            .sources()
            .sources
            .iter()
            .filter(|s| s.purposes.iter().any(|p| wanted.contains(p)))
            .map(|s| s.name.clone())
            .collect();
        self.open_changes(conn, request.id, &sources, now).await?;
        metrics::counter!("rightsdesk_consents_recorded_total", "state" => new_state)
            .increment(w.purposes.len() as u64);
        Ok(Some(json!({
            "purposes": w.purposes,
            "state": new_state,
            "effective_at": now,
            "sources": sources,
        })))
    }

    /// A request verified at filing (the company's account vouched for the requester):
    /// its consent withdrawal takes effect now, recorded as an event of its own.
    pub(crate) async fn consent_effect_after_filing(
        &self,
        request_id: Uuid,
        subject: Uuid,
    ) -> Result<(), Error> {
        let Some(request) = requests::find(self.db().conn(), request_id).await? else {
            return Ok(());
        };
        if withdrawal(&request)?.is_none() {
            return Ok(());
        }
        let services = self.clone();
        self.record_event(
            request_id,
            &Actor::System,
            "consent_recorded",
            async move |tx, row, now| {
                let data = services
                    .take_consent_effect(tx.conn(), row, subject, now)
                    .await?
                    .unwrap_or_else(|| json!({"already": true}));
                Ok((data, ()))
            },
        )
        .await
    }

    /// What a source's owner is asked to do for a consent withdrawal: the purposes it
    /// uses that were withdrawn or narrowed (`purposes_zh`, `purposes_en`), whether
    /// narrowed, with the requester's `scope`.
    pub(crate) fn consent_task(&self, request: &requests::Model, used: &[String]) -> Value {
        let Ok(Some(w)) = withdrawal(request) else {
            return Value::Null;
        };
        let catalogue = &self.sources().purposes;
        let titles = |zh: bool| {
            w.purposes
                .iter()
                .filter(|p| used.contains(p))
                .map(|p| {
                    catalogue.get(p).map_or(p.clone(), |p| {
                        if zh {
                            p.title_zh.clone()
                        } else {
                            p.title_en.clone()
                        }
                    })
                })
                .collect::<Vec<_>>()
        };
        json!({
            "purposes_zh": titles(true).join("、"),
            "purposes_en": titles(false).join(", "),
            "narrowed": w.change == ConsentChange::Narrow,
            "scope": w.scope,
        })
    }

    fn source_change_view(&self, row: store::Model) -> SourceChangeView {
        let source = self.sources().get(&row.source);
        SourceChangeView {
            title_zh: source.map(|s| s.title_zh.clone()),
            title_en: source.map(|s| s.title_en.clone()),
            connector: source.map(|s| s.connector.kind().to_owned()),
            source: row.source,
            status: row.status,
            outcome: row.outcome,
            changes: row.changes,
            attempts: row.attempts,
            error_code: row.error_code,
            error: row.error,
            confirmed_by: row.confirmed_by,
            note: row.note,
            started_at: row.started_at,
            finished_at: row.finished_at,
        }
    }

    /// The changes a request makes in the sources, by source.
    pub(crate) async fn changes_of(
        &self,
        request_id: Uuid,
    ) -> Result<Vec<SourceChangeView>, Error> {
        Ok(store::for_request(self.db().conn(), request_id)
            .await?
            .into_iter()
            .map(|r| self.source_change_view(r))
            .collect())
    }

    /// `POST /api/v1/officer/requests/{id}/changes/{source}/rerun`: applies one source's
    /// change again, whatever it answered before.
    pub async fn rerun_change(
        &self,
        officer: &Officer,
        id: Uuid,
        source: &str,
    ) -> Result<Vec<SourceChangeView>, Error> {
        require(officer, Permission::WorkRequests)?;
        let actor = Actor::Officer { id: officer.id };
        let services = self.clone();
        let source = source.to_owned();
        self.record_event(id, &actor, "change_rerun", async move |tx, row, now| {
            let existing = store::get(tx.conn(), row.id, &source).await?;
            if existing.is_none() || !row.is_open {
                return Err(Error::new(
                    ErrorCode::ChangeNotAllowed,
                    format!("the request has no open change in {source}"),
                ));
            }
            services
                .open_changes(tx.conn(), row.id, std::slice::from_ref(&source), now)
                .await?;
            Ok((json!({ "source": source }), ()))
        })
        .await?;
        self.changes_of(id).await
    }

    /// The job `change_source`: one source applies one request's consent withdrawal. A
    /// transient failure returns an error, so the job is tried again with back-off. The
    /// withdrawal is in force whether or not the request is still open: it is applied
    /// even after the request closed.
    pub(crate) async fn change_source(&self, request_id: Uuid, source: &str) -> Result<(), Error> {
        let conn = self.db().conn();
        let Some(mut row) = store::get(conn, request_id, source).await? else {
            return Ok(());
        };
        if row.status == status::DONE || row.status == status::WAITING_OWNER {
            return Ok(());
        }
        let Some(request) = requests::find(conn, request_id).await? else {
            return Ok(());
        };
        let corrections = self.requested_changes(conn, &request).await?;
        let withdrawal = withdrawal(&request)?;
        if corrections.is_none() && withdrawal.is_none() {
            return Ok(());
        }
        let now = self.now();
        row.attempts += 1;
        row.updated_at = now;
        row.started_at.get_or_insert(now);
        let Some(config) = self.sources().get(source) else {
            return self
                .change_failed(
                    row,
                    &request,
                    "unknown_source",
                    "the source is no longer in the sources file",
                )
                .await;
        };
        let Some(w) = withdrawal else {
            let changes = corrections.unwrap_or_default();
            return self.correct_source(row, request, config, changes).await;
        };
        let ids = self.subject_identifiers(&request).await?;
        if ids.is_empty() {
            return self
                .change_failed(
                    row,
                    &request,
                    "no_identifiers",
                    "the subject has no verified identifier to find them by",
                )
                .await;
        }
        let purposes: Vec<String> = w
            .purposes
            .iter()
            .filter(|p| config.purposes.contains(p))
            .cloned()
            .collect();
        if !config.connector.applies_consent(w.change, &purposes) {
            return self
                .change_to_owner(row, &request, config, OwnerTask::Consent, None)
                .await;
        }
        row.status = status::RUNNING.to_owned();
        store::save(conn, row.clone()).await?;
        let order = ConsentOrder {
            ids: &ids,
            purposes: &purposes,
            change: w.change,
            scope: w.scope.as_deref(),
        };
        match config
            .connector
            .change_consent(&request.reference, &order)
            .await
        {
            Ok(changes) => {
                let result = if changes.iter().any(|c| c.rows > 0) {
                    outcome::APPLIED
                } else {
                    outcome::NO_DATA
                };
                row.changes = json!(changes);
                self.change_done(row, &request, result, None).await
            }
            Err(e) => self.change_errored(row, &request, &e).await,
        }
    }

    /// Opens (or re-opens) a change and queues a `change_source` job for each of
    /// `sources`: a consent withdrawal's, a correction's, a re-run.
    pub(crate) async fn open_changes(
        &self,
        conn: &impl ConnectionTrait,
        request_id: Uuid,
        sources: &[String],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Error> {
        store::open(conn, request_id, sources, now).await?;
        for source in sources {
            let key = format!("change:{request_id}:{source}:{}", Uuid::now_v7());
            self.enqueue_job(
                conn,
                &Job::ChangeSource {
                    request_id,
                    source: source.clone(),
                },
                &key,
            )
            .await?;
        }
        Ok(())
    }

    /// Hands a source's change to its owner: the change waits for them (until an officer
    /// confirms it), and they are sent the task, with `extra` template values.
    pub(crate) async fn change_to_owner(
        &self,
        mut row: store::Model,
        request: &requests::Model,
        config: &rightsdesk_connectors::config::Source,
        task: OwnerTask,
        extra: Option<Value>,
    ) -> Result<(), Error> {
        row.status = status::WAITING_OWNER.to_owned();
        let data = json!({"source": row.source, "owner": config.owner});
        let services = self.clone();
        let asked = request.clone();
        self.record_event(
            request.id,
            &Actor::System,
            "change_waiting_owner",
            async move |tx, _, now| {
                store::save(tx.conn(), row.clone()).await?;
                let mut notice = services.owner_notice(&asked, &row.source, task, None, now);
                if let (Some(n), Some(extra)) = (notice.as_mut(), &extra) {
                    crate::notifications::merge(&mut n.params, extra.clone());
                }
                let rows = services.outbox_rows(notice, now)?;
                notifications::insert_new(tx.conn(), rows).await?;
                Ok((data.clone(), ()))
            },
        )
        .await?;
        self.outbox_written();
        Ok(())
    }

    /// Records a connector's failure: a transient one is tried again with back-off (the
    /// job fails), any other waits for an officer to re-run the source.
    pub(crate) async fn change_errored(
        &self,
        row: store::Model,
        request: &requests::Model,
        e: &rightsdesk_connectors::ConnectorError,
    ) -> Result<(), Error> {
        if e.is_transient() {
            self.change_retried(row, request, e).await
        } else {
            self.change_failed(row, request, e.code(), &e.to_string())
                .await
        }
    }

    /// Records a transient failure and returns an error, so that the job is tried again
    /// with back-off.
    async fn change_retried(
        &self,
        mut row: store::Model,
        request: &requests::Model,
        e: &rightsdesk_connectors::ConnectorError,
    ) -> Result<(), Error> {
        row.status = status::FAILED.to_owned();
        row.error_code = Some(e.code().to_owned());
        row.error = Some(e.to_string());
        row.updated_at = self.now();
        let source = row.source.clone();
        store::save(self.db().conn(), row).await?;
        metrics::counter!("rightsdesk_source_changes_total", "outcome" => "retried").increment(1);
        tracing::warn!(rights_request_id = %request.id, source = %source, code = e.code(), "a source was not changed; tried again later");
        Err(Error::new(
            ErrorCode::Unavailable,
            format!("source {source}: {e}"),
        ))
    }

    /// Records a source's outcome.
    pub(crate) async fn change_done(
        &self,
        mut row: store::Model,
        request: &requests::Model,
        result: &str,
        confirmed_by: Option<(Uuid, Option<String>)>,
    ) -> Result<(), Error> {
        row.status = status::DONE.to_owned();
        row.outcome = Some(result.to_owned());
        row.error_code = None;
        row.error = None;
        row.finished_at = Some(self.now());
        row.updated_at = self.now();
        let mut data = json!({
            "source": row.source,
            "outcome": result,
            "changes": row.changes,
        });
        let actor = match confirmed_by {
            Some((officer, note)) => {
                row.confirmed_by = Some(officer);
                data["note"] = json!(note);
                row.note = note;
                Actor::Officer { id: officer }
            }
            None => Actor::System,
        };
        metrics::counter!("rightsdesk_source_changes_total", "outcome" => result.to_owned())
            .increment(1);
        self.record_event(
            request.id,
            &actor,
            "source_changed",
            async move |tx, _, _| {
                store::save(tx.conn(), row.clone()).await?;
                Ok((data.clone(), ()))
            },
        )
        .await
    }

    /// Records a failure that trying again cannot mend (an officer re-runs the source
    /// once it is fixed).
    pub(crate) async fn change_failed(
        &self,
        mut row: store::Model,
        request: &requests::Model,
        code: &str,
        message: &str,
    ) -> Result<(), Error> {
        row.status = status::FAILED.to_owned();
        row.error_code = Some(code.to_owned());
        row.error = Some(message.to_owned());
        row.updated_at = self.now();
        let source = row.source.clone();
        store::save(self.db().conn(), row).await?;
        metrics::counter!("rightsdesk_source_changes_total", "outcome" => "failed").increment(1);
        tracing::warn!(rights_request_id = %request.id, source = %source, code, "a source change failed");
        if !request.is_open {
            return Ok(());
        }
        let data = json!({"source": source, "code": code});
        self.record_event(
            request.id,
            &Actor::System,
            "change_failed",
            async move |_, _, _| Ok((data.clone(), ())),
        )
        .await
    }

    /// `POST /api/v1/officer/requests/{id}/changes/{source}/confirm`: an officer records
    /// that the owner of a source waiting for them made the change: `{"outcome":
    /// "applied" | "no_data", "note": "..."}`.
    pub async fn confirm_change(
        &self,
        officer: &Officer,
        id: Uuid,
        source: &str,
        body: &Value,
    ) -> Result<Vec<SourceChangeView>, Error> {
        require(officer, Permission::WorkRequests)?;
        let conn = self.db().conn();
        let (Some(request), Some(row)) = (
            requests::find(conn, id).await?,
            store::get(conn, id, source).await?,
        ) else {
            return Err(Error::not_found());
        };
        if row.status != status::WAITING_OWNER {
            return Err(Error::new(
                ErrorCode::SourceNotWaiting,
                format!(
                    "the change of {source} is {}, not waiting for its owner",
                    row.status
                ),
            ));
        }
        let mut errors = ValidationErrors::default();
        let read = {
            let mut r = crate::requests::object_reader(body, &mut errors)?;
            let path = r.field_path("outcome");
            let result = r.string("outcome", true, 20);
            if let Some(o) = &result
                && !outcome::ALL.contains(&o.as_str())
            {
                r.errors().push(
                    path,
                    "invalid_value",
                    format!("must be one of {}", outcome::ALL.join(", ")),
                );
            }
            let note = r.string("note", false, 2_000);
            r.deny_unknown();
            (result, note)
        };
        let (result, note) = errors.finish(read).map_err(Error::from)?;
        let result = result.ok_or_else(Error::internal)?;
        let result = outcome::ALL
            .iter()
            .find(|o| **o == result)
            .ok_or_else(Error::internal)?;
        self.change_done(row, &request, result, Some((officer.id, note)))
            .await?;
        self.changes_of(id).await
    }

    /// The sources that use a withdrawn purpose and have no outcome yet: a consent
    /// withdrawal cannot complete before they have one.
    pub(crate) async fn sources_unchanged(
        &self,
        request: &requests::Model,
    ) -> Result<Vec<String>, Error> {
        if withdrawal(request)?.is_none()
            && self
                .requested_changes(self.db().conn(), request)
                .await?
                .is_none()
        {
            return Ok(Vec::new());
        }
        Ok(store::for_request(self.db().conn(), request.id)
            .await?
            .into_iter()
            .filter(|r| r.status != status::DONE)
            .map(|r| r.source)
            .collect())
    }

    /// For the completion notice of a consent withdrawal: each purpose withdrawn or
    /// narrowed, in `language`, with when it took effect: `[{title, state, scope, at}]`.
    pub(crate) async fn consent_confirmation(
        &self,
        conn: &impl ConnectionTrait,
        request: &requests::Model,
    ) -> Result<Option<Value>, Error> {
        if withdrawal(request)?.is_none() {
            return Ok(None);
        }
        let zh = request.language.starts_with("zh");
        let purposes = &self.sources().purposes;
        let rows = ledger::for_request(conn, request.id).await?;
        Ok(Some(Value::Array(
            rows.into_iter()
                .map(|row| {
                    let p = purposes.get(&row.purpose);
                    let title = p.map_or(row.purpose.clone(), |p| {
                        if zh {
                            p.title_zh.clone()
                        } else {
                            p.title_en.clone()
                        }
                    });
                    json!({
                        "title": title,
                        "narrowed": row.state == state::NARROWED,
                        "scope": row.scope,
                        "at": request_local_time(request, row.at),
                    })
                })
                .collect(),
        )))
    }
}

/// `at` as the request's local time, to the minute.
fn request_local_time(request: &requests::Model, at: DateTime<Utc>) -> String {
    let tz: chrono_tz::Tz = request
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::Asia::Shanghai);
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}
