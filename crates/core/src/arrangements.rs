//! Next of kin and the deceased's arrangement (SPEC §2, PIPL 49).
//!
//! - **Arrangements** are recorded by the subject, logged in with the company's account
//!   (`POST /api/v1/arrangements`), or by an officer from a document received in writing
//!   (`POST /api/v1/officer/arrangements`); rows are appended, the latest stands.
//! - **The check**: when a `next_of_kin` request is verified (its documents accepted),
//!   the deceased's arrangement is checked in the verification's own transaction, and the
//!   verdict — the rights granted, those refused and why — is recorded with the event
//!   (`arrangement`). The request is then answered for the granted rights only: a
//!   bundle of the deceased's data for access or copy, an erasure for deletion; a
//!   request whose every right is refused can only be refused (`deceased_arrangement`).
//! - **Disagreement**: relatives who disagree put the request on hold for the DPO —
//!   automatically when another relative's open request about the same deceased asks
//!   for deletion while this one asks to see the data (or the other way round), or by an
//!   officer's `hold` — and nothing is answered until the DPO `release`s it.

use chrono::{DateTime, Utc};
use rightsdesk_domain::arrangements::{self as rules, Arrangement, Outcome, Verdict};
use rightsdesk_domain::kinds::NextOfKinRight;
use rightsdesk_domain::{Details, Permission, RequestKind, ValidationErrors};
use rightsdesk_mail::Template;
use rightsdesk_store::arrangements::{self as store, via};
use rightsdesk_store::{ConnectionTrait, events, requests};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Officer;
use crate::notifications::{Notice, Recipient, officer_notice};
use crate::officers::require;
use crate::{Error, ErrorCode, Services};

/// An arrangement as recorded.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArrangementView {
    pub id: Uuid,
    /// `{legacy_contact?, rights, delete_everything}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub arrangement: Value,
    /// `account` (the subject) or `officer` (from a document).
    pub recorded_via: String,
    pub recorded_by: Option<Uuid>,
    pub note: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

impl From<store::Model> for ArrangementView {
    fn from(m: store::Model) -> Self {
        Self {
            id: m.id,
            arrangement: m.arrangement,
            recorded_via: m.recorded_via,
            recorded_by: m.recorded_by,
            note: m.note,
            recorded_at: m.recorded_at,
        }
    }
}

/// A subject's arrangement as it stands, and the earlier ones.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubjectArrangements {
    pub subject_known: bool,
    pub current: Option<ArrangementView>,
    /// Newest first, the current one included.
    pub history: Vec<ArrangementView>,
}

/// The rights a `next_of_kin` request asks for (`None` for other kinds).
fn rights_asked(request: &requests::Model) -> Option<Vec<NextOfKinRight>> {
    match Details::from_stored(RequestKind::NextOfKin, &request.details) {
        Some(Details::NextOfKin { rights, .. })
            if request.kind == RequestKind::NextOfKin.as_str() =>
        {
            Some(rights)
        }
        _ => None,
    }
}

/// The arrangement check recorded at verification, from a request's events (the latest):
/// `{arrangement_id, recorded_via, verdict}`.
pub(crate) fn recorded_arrangement(events: &[events::Model]) -> Option<&Value> {
    events.iter().rev().find_map(|e| e.data.get("arrangement"))
}

/// The verdict of [`recorded_arrangement`].
fn recorded_verdict(events: &[events::Model]) -> Option<Verdict> {
    recorded_arrangement(events).and_then(|v| serde_json::from_value(v["verdict"].clone()).ok())
}

/// Whether the request is on hold for the DPO: its latest hold not released since.
pub(crate) fn on_hold(events: &[events::Model]) -> bool {
    let mut held = false;
    for e in events {
        if e.event_type == "held" || e.data.get("held_for_dpo").is_some() {
            held = true;
        }
        if e.event_type == "released" {
            held = false;
        }
    }
    held
}

/// Whether asking `a` and asking `b` pull the deceased's data two ways: one relative
/// wants it deleted, the other wants to see or correct it.
fn disagree(a: &[NextOfKinRight], b: &[NextOfKinRight]) -> bool {
    let deletes = |r: &[NextOfKinRight]| r.contains(&NextOfKinRight::Deletion);
    let keeps = |r: &[NextOfKinRight]| r.iter().any(|x| *x != NextOfKinRight::Deletion);
    (deletes(a) && keeps(b)) || (keeps(a) && deletes(b))
}

impl Services {
    /// `POST /api/v1/arrangements` with `Authorization: Bearer <account JWT>`: the
    /// logged-in subject records their arrangement; it replaces the one before.
    pub async fn record_own_arrangement(
        &self,
        token: Option<&str>,
        body: &Value,
    ) -> Result<ArrangementView, Error> {
        let subject = self.account_subject(token).await?;
        let arrangement = read_arrangement(body, false)?.0;
        let row = store::Model {
            id: Uuid::now_v7(),
            subject_id: subject,
            arrangement: json!(arrangement),
            recorded_via: via::ACCOUNT.to_owned(),
            recorded_by: None,
            note: None,
            recorded_at: self.now(),
        };
        let tx = self.db().begin_write().await?;
        store::insert(&*tx, row.clone()).await?;
        tx.commit().await?;
        metrics::counter!("rightsdesk_arrangements_recorded_total", "via" => via::ACCOUNT)
            .increment(1);
        tracing::info!(arrangement_id = %row.id, "arrangement recorded by its subject");
        Ok(row.into())
    }

    /// `GET /api/v1/arrangements` with the account JWT: the subject's own arrangements.
    pub async fn own_arrangements(
        &self,
        token: Option<&str>,
    ) -> Result<SubjectArrangements, Error> {
        let subject = self.account_subject(token).await?;
        self.arrangements_of(subject).await
    }

    /// The subject of an account-system token (found or created by its identifiers).
    async fn account_subject(&self, token: Option<&str>) -> Result<Uuid, Error> {
        let token = token.ok_or_else(|| {
            Error::new(
                ErrorCode::Unauthenticated,
                "log in with the company's account: Authorization: Bearer <account token>",
            )
        })?;
        let account = self
            .inner
            .account_login
            .verify(token, self.now().timestamp())?;
        self.subject_for_account(&account).await
    }

    async fn arrangements_of(&self, subject: Uuid) -> Result<SubjectArrangements, Error> {
        let history: Vec<ArrangementView> = store::for_subject(self.db().conn(), subject)
            .await?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(SubjectArrangements {
            subject_known: true,
            current: history.first().cloned(),
            history,
        })
    }

    /// `POST /api/v1/officer/arrangements`: an officer records an arrangement received in
    /// writing: `{subject: {email?, phone?, account_id?}, note, legacy_contact?, rights?,
    /// delete_everything?}`; `note` says which document (its date, where it is kept).
    pub async fn record_arrangement(
        &self,
        officer: &Officer,
        body: &Value,
    ) -> Result<ArrangementView, Error> {
        require(officer, Permission::WorkRequests)?;
        let (arrangement, subject, note) = read_arrangement(body, true)?;
        let (email, phone, account_id) = subject.unwrap_or_default();
        let now = self.now();
        let tx = self.db().begin_write().await?;
        let subject =
            crate::requests::find_or_create_subject(&*tx, account_id, email, phone, now).await?;
        let row = store::Model {
            id: Uuid::now_v7(),
            subject_id: subject,
            arrangement: json!(arrangement),
            recorded_via: via::OFFICER.to_owned(),
            recorded_by: Some(officer.id),
            note,
            recorded_at: now,
        };
        store::insert(&*tx, row.clone()).await?;
        tx.commit().await?;
        metrics::counter!("rightsdesk_arrangements_recorded_total", "via" => via::OFFICER)
            .increment(1);
        tracing::info!(arrangement_id = %row.id, recorded_by = %officer.id, "arrangement recorded from a document");
        Ok(row.into())
    }

    /// `POST /api/v1/officer/arrangements/query` `{email?, phone?, account_id?}`: a
    /// subject's arrangements.
    pub async fn query_arrangements(
        &self,
        officer: &Officer,
        body: &Value,
    ) -> Result<SubjectArrangements, Error> {
        require(officer, Permission::ViewRequests)?;
        let subject = crate::consents::find_subject(self.db().conn(), body).await?;
        match subject {
            Some(s) => self.arrangements_of(s.id).await,
            None => Ok(SubjectArrangements {
                subject_known: false,
                current: None,
                history: Vec::new(),
            }),
        }
    }

    /// At the verification of a `next_of_kin` request (in its transaction): the
    /// deceased's arrangement checked against the rights asked, and whether another
    /// relative's open request disagrees. Returns what to add to the verification's
    /// event, and the other requests to put on hold with it (`None` for other kinds).
    pub(crate) async fn check_arrangement(
        &self,
        conn: &impl ConnectionTrait,
        row: &requests::Model,
        deceased: Uuid,
    ) -> Result<Option<(serde_json::Map<String, Value>, Vec<requests::Model>)>, Error> {
        let Some(asked) = rights_asked(row) else {
            return Ok(None);
        };
        let current = store::current(conn, deceased).await?;
        let arrangement = current
            .as_ref()
            .and_then(|c| Arrangement::from_stored(&c.arrangement));
        let verdict = rules::check(
            arrangement.as_ref(),
            &asked,
            row.requester_email.as_deref(),
            row.requester_phone.as_deref(),
        );
        let mut data = serde_json::Map::new();
        data.insert(
            "arrangement".to_owned(),
            json!({
                "arrangement_id": current.as_ref().map(|c| c.id),
                "recorded_via": current.as_ref().map(|c| c.recorded_via.clone()),
                "verdict": verdict,
            }),
        );
        // Another relative's open request about the same deceased that pulls the other
        // way: both wait for the DPO.
        let others: Vec<requests::Model> =
            requests::open_of_subject(conn, deceased, &row.kind, row.id)
                .await?
                .into_iter()
                .filter(|o| {
                    o.requester_email != row.requester_email
                        && rights_asked(o).is_some_and(|theirs| disagree(&asked, &theirs))
                })
                .collect();
        if !others.is_empty() {
            data.insert(
                "held_for_dpo".to_owned(),
                json!({
                    "reason": "relatives_disagree",
                    "with": others.iter().map(|o| o.reference.clone()).collect::<Vec<_>>(),
                }),
            );
        }
        metrics::counter!("rightsdesk_arrangement_checks_total", "outcome" => verdict.outcome.as_str())
            .increment(1);
        Ok(Some((data, others)))
    }

    /// The notices a hold sends: to every DPO (or `company.dpo_email`).
    pub(crate) async fn hold_notices(
        &self,
        conn: &impl ConnectionTrait,
        row: &requests::Model,
        reason: &str,
        with: &[String],
        seq: i64,
    ) -> Result<Vec<Notice>, Error> {
        let extra = json!({"hold": {"reason": reason, "with": with.join(", ")}});
        Ok(self
            .dpo_recipients(conn)
            .await?
            .into_iter()
            .map(|email| {
                officer_notice(
                    row,
                    self.pack_of(row),
                    Template::HeldForDpo,
                    Some(Recipient::Email(email.clone())),
                    extra.clone(),
                    format!("held_for_dpo:{}:{seq}:{email}", row.id),
                )
            })
            .collect())
    }

    /// A next of kin's verdict, as recorded at verification (`None` for other kinds, or
    /// before verification).
    async fn verdict(
        &self,
        conn: &impl ConnectionTrait,
        request: &requests::Model,
    ) -> Result<Option<Verdict>, Error> {
        if request.kind != RequestKind::NextOfKin.as_str() {
            return Ok(None);
        }
        Ok(recorded_verdict(
            &events::for_request(conn, request.id).await?,
        ))
    }

    /// The rights a next of kin's request is answered for, as recorded at verification
    /// (`None` for other kinds, or before verification).
    pub(crate) async fn granted_rights(
        &self,
        conn: &impl ConnectionTrait,
        request: &requests::Model,
    ) -> Result<Option<Vec<NextOfKinRight>>, Error> {
        Ok(self.verdict(conn, request).await?.map(|v| v.granted))
    }

    /// Whether the request is answered with its subject's data (a bundle): access, copy,
    /// portability, and a next of kin granted access or copy.
    pub(crate) async fn gives_data(
        &self,
        conn: &impl ConnectionTrait,
        request: &requests::Model,
    ) -> Result<bool, Error> {
        let kind: RequestKind = crate::requests::parse_stored(&request.kind)?;
        if crate::collections::collects(kind) {
            return Ok(true);
        }
        Ok(self.granted_rights(conn, request).await?.is_some_and(|g| {
            g.contains(&NextOfKinRight::Access) || g.contains(&NextOfKinRight::Copy)
        }))
    }

    /// Whether the request is answered by erasing its subject: deletion, account
    /// closure, and a next of kin granted deletion.
    pub(crate) async fn erases_data(
        &self,
        conn: &impl ConnectionTrait,
        request: &requests::Model,
    ) -> Result<bool, Error> {
        let kind: RequestKind = crate::requests::parse_stored(&request.kind)?;
        if crate::erasures::erases(kind) {
            return Ok(true);
        }
        Ok(self
            .granted_rights(conn, request)
            .await?
            .is_some_and(|g| g.contains(&NextOfKinRight::Deletion)))
    }

    /// Refuses work on a request on hold for the DPO (409 `on_hold`).
    pub(crate) async fn check_not_held(
        &self,
        conn: &impl ConnectionTrait,
        request_id: Uuid,
    ) -> Result<(), Error> {
        if on_hold(&events::for_request(conn, request_id).await?) {
            return Err(Error::new(
                ErrorCode::OnHold,
                "the request is on hold for the DPO (relatives disagree): the DPO releases it first",
            ));
        }
        Ok(())
    }

    /// A next of kin's request whose every right the arrangement refuses cannot be
    /// completed, only refused (409 `arrangement_denies`).
    pub(crate) async fn check_not_denied(
        &self,
        conn: &impl ConnectionTrait,
        request: &requests::Model,
    ) -> Result<(), Error> {
        if self
            .verdict(conn, request)
            .await?
            .is_some_and(|v| v.outcome == Outcome::Deny)
        {
            return Err(Error::new(
                ErrorCode::ArrangementDenies,
                "the deceased's arrangement refuses every right asked: reject the request with reason_code deceased_arrangement",
            ));
        }
        Ok(())
    }

    /// For the completion notice of a next of kin's request: the rights refused by the
    /// arrangement, `[{right, why}]` (`None` for other kinds).
    pub(crate) async fn arrangement_outcome(
        &self,
        conn: &impl ConnectionTrait,
        request: &requests::Model,
    ) -> Result<Option<Value>, Error> {
        Ok(self
            .verdict(conn, request)
            .await?
            .map(|v| json!({"granted": v.granted, "refused": v.refused})))
    }
}

/// Reads an arrangement body; with `by_officer`, also `subject` (the identifiers) and
/// `note` (required).
#[allow(clippy::type_complexity)]
fn read_arrangement(
    body: &Value,
    by_officer: bool,
) -> Result<
    (
        Arrangement,
        Option<(Option<String>, Option<String>, Option<String>)>,
        Option<String>,
    ),
    Error,
> {
    let mut errors = ValidationErrors::default();
    let read = {
        let mut r = crate::requests::object_reader(body, &mut errors)?;
        let mut subject = None;
        let mut note = None;
        if by_officer {
            let value = r.take("subject");
            let path = r.field_path("subject");
            if let Some(mut s) = rightsdesk_domain::validation::ObjectReader::new(
                value.as_ref(),
                &path,
                false,
                r.errors(),
            ) {
                let ids = crate::consents::read_identifiers(&mut s);
                if ids.0.is_none() && ids.1.is_none() && ids.2.is_none() {
                    let at = s.field_path("email");
                    s.errors().push(
                        at,
                        "identifier_required",
                        "give at least one of email, phone, account_id",
                    );
                }
                s.deny_unknown();
                subject = Some(ids);
            }
            note = r.string(
                "note",
                true,
                rightsdesk_domain::validation::limits::LONG_TEXT,
            );
        }
        let arrangement = Arrangement::read(&mut r);
        r.deny_unknown();
        (arrangement, subject, note)
    };
    let (arrangement, subject, note) = errors.finish(read).map_err(Error::from)?;
    Ok((arrangement.ok_or_else(Error::internal)?, subject, note))
}
