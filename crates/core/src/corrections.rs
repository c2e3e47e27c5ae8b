//! Correction and supplement (PIPL 46): the officer compares each requested change with
//! the values the sources hold now, approves it (applied to a field the sources file
//! declares correctable) or rejects it with a reason; once every change is decided, the
//! approved ones are applied through the connectors, one `source_changes` row and one
//! `change_source` job per source that holds an approved field (an owner's task where
//! rightsdesk cannot write). The event log records digests of the old and new values
//! (keyed HMAC-SHA256), never the values.
//!
//! The decisions are the `correction_decided` events: never kept twice.

use std::collections::{BTreeMap, BTreeSet};

use hmac::{Hmac, Mac};
use rightsdesk_connectors::{CorrectionOrder, FieldValue};
use rightsdesk_domain::kinds::FieldChange;
use rightsdesk_domain::validation::{ObjectReader, limits};
use rightsdesk_domain::{Actor, Details, Permission, RequestKind, State, ValidationErrors};
use rightsdesk_store::source_changes::{self as store, outcome, status};
use rightsdesk_store::{ConnectionTrait, events, requests};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::auth::Officer;
use crate::collections::OwnerTask;
use crate::officers::require;
use crate::{Error, ErrorCode, Services};

/// The event that records decisions.
const DECIDED: &str = "correction_decided";

/// An officer's decision on one requested change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    /// `approved` or `rejected`.
    pub decision: String,
    /// The correctable field it is applied to (approved).
    pub field: Option<String>,
    /// Why not (rejected); shown to the requester.
    pub reason: Option<String>,
    pub decided_by: Option<String>,
}

/// One source's view of a requested change.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldSource {
    pub source: String,
    pub title_zh: String,
    pub title_en: String,
    /// Whether rightsdesk applies it (`sql`, `http` with `correct = true`); otherwise
    /// the source's owner is asked.
    pub applied_by_rightsdesk: bool,
    /// The distinct values the person's rows hold now (`null`: not read, see `error`, or
    /// its owner holds them).
    pub current: Option<Vec<String>>,
    pub error: Option<String>,
}

/// One requested change, beside the values held now.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeView {
    /// Its index in the request's `details.changes`.
    pub change: usize,
    /// The field as the requester named it.
    pub field: String,
    pub new_value: String,
    pub reason: Option<String>,
    /// The sources that hold the field (the requested name, or the one it was approved
    /// as).
    pub sources: Vec<FieldSource>,
    pub decision: Option<Decision>,
}

/// A correction request's changes, for the officer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CorrectionView {
    pub changes: Vec<ChangeView>,
    /// Every correctable field of the sources file, with the sources that hold it: what
    /// a change may be approved as.
    pub correctable: BTreeMap<String, Vec<String>>,
    /// Whether every change is decided (the approved ones are then being applied: see
    /// the request's `changes`).
    pub decided: bool,
}

/// The changes a correction request asks for (`None` for other kinds; see
/// [`Services::requested_changes`] for a next of kin's).
fn requested(request: &requests::Model) -> Result<Option<Vec<FieldChange>>, Error> {
    if request.kind != RequestKind::Correction.as_str() {
        return Ok(None);
    }
    match Details::from_stored(RequestKind::Correction, &request.details) {
        Some(Details::Correction { changes }) => Ok(Some(changes)),
        _ => {
            tracing::error!(rights_request_id = %request.id, "unreadable stored details");
            Err(Error::internal())
        }
    }
}

/// The decisions recorded in `events`, by change index.
fn decisions(events: &[events::Model]) -> BTreeMap<usize, Decision> {
    let mut out = BTreeMap::new();
    for e in events.iter().filter(|e| e.event_type == DECIDED) {
        for d in e.data["decisions"].as_array().into_iter().flatten() {
            let Some(change) = d["change"].as_u64().and_then(|c| usize::try_from(c).ok()) else {
                continue;
            };
            let text = |k: &str| d[k].as_str().map(str::to_owned);
            out.entry(change).or_insert(Decision {
                decision: text("decision").unwrap_or_default(),
                field: text("field"),
                reason: text("reason"),
                decided_by: Some(e.actor.clone()),
            });
        }
    }
    out
}

/// The approved changes: (correctable field, new value).
fn approved(changes: &[FieldChange], decided: &BTreeMap<usize, Decision>) -> Vec<FieldValue> {
    decided
        .iter()
        .filter(|(_, d)| d.decision == "approved")
        .filter_map(|(i, d)| {
            Some(FieldValue {
                field: d.field.clone()?,
                value: changes.get(*i)?.new_value.clone(),
            })
        })
        .collect()
}

impl Services {
    /// The changes a request asks the sources to make: a correction's, or a next of
    /// kin's once the deceased's arrangement granted them the correction right.
    pub(crate) async fn requested_changes(
        &self,
        conn: &impl ConnectionTrait,
        request: &requests::Model,
    ) -> Result<Option<Vec<FieldChange>>, Error> {
        if let Some(changes) = requested(request)? {
            return Ok(Some(changes));
        }
        let Some(Details::NextOfKin { changes, .. }) =
            Details::from_stored(RequestKind::NextOfKin, &request.details)
                .filter(|_| request.kind == RequestKind::NextOfKin.as_str())
        else {
            return Ok(None);
        };
        if changes.is_empty() {
            return Ok(None);
        }
        let granted = self
            .granted_rights(conn, request)
            .await?
            .unwrap_or_default();
        Ok(granted
            .contains(&rightsdesk_domain::kinds::NextOfKinRight::Correction)
            .then_some(changes))
    }

    /// A keyed digest of a value of `field`, for the event log: the same value gives the
    /// same digest (an auditor can check a value they are shown), and without the key it
    /// cannot be guessed from a list of likely values.
    pub(crate) fn value_digest(&self, field: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.keys().anonymise_key)
            .expect("HMAC takes any key length");
        for part in ["correction", field, value] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// The sources that hold `field`.
    fn sources_of(&self, field: &str) -> Vec<&rightsdesk_connectors::config::Source> {
        self.sources()
            .sources
            .iter()
            .filter(|s| s.correctable.iter().any(|f| f == field))
            .collect()
    }

    /// `GET /api/v1/officer/requests/{id}/corrections`: each requested change beside the
    /// values the sources hold now (read from them at this moment; the reading is
    /// recorded as `current_values_read`).
    pub async fn correction_view(
        &self,
        officer: &Officer,
        id: Uuid,
    ) -> Result<CorrectionView, Error> {
        require(officer, Permission::WorkRequests)?;
        let conn = self.db().conn();
        let request = requests::find(conn, id)
            .await?
            .ok_or_else(Error::not_found)?;
        let Some(changes) = self.requested_changes(conn, &request).await? else {
            return Err(Error::new(
                ErrorCode::CorrectionNotAllowed,
                "the request is not a correction (nor a next of kin granted the correction right)",
            ));
        };
        let decided = decisions(&events::for_request(conn, id).await?);
        let ids = self.subject_identifiers(&request).await?;
        let mut read = BTreeSet::new();
        let mut views = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            let field = decided
                .get(&i)
                .and_then(|d| d.field.clone())
                .unwrap_or_else(|| change.field.clone());
            let mut sources = Vec::new();
            for s in self.sources_of(&field) {
                let applied = s.connector.applies_correction();
                let (current, error) = if !applied {
                    (None, None)
                } else if ids.is_empty() {
                    (None, Some("the subject is not verified yet".to_owned()))
                } else {
                    read.insert(s.name.clone());
                    match s
                        .connector
                        .current_values(&request.reference, &ids, std::slice::from_ref(&field))
                        .await
                    {
                        Ok(mut values) => (Some(values.remove(&field).unwrap_or_default()), None),
                        Err(e) => (None, Some(e.to_string())),
                    }
                };
                sources.push(FieldSource {
                    source: s.name.clone(),
                    title_zh: s.title_zh.clone(),
                    title_en: s.title_en.clone(),
                    applied_by_rightsdesk: applied,
                    current,
                    error,
                });
            }
            views.push(ChangeView {
                change: i,
                field: change.field.clone(),
                new_value: change.new_value.clone(),
                reason: change.reason.clone(),
                sources,
                decision: decided.get(&i).cloned(),
            });
        }
        if !read.is_empty() {
            let data = json!({"sources": read});
            self.record_event(
                id,
                &Actor::Officer { id: officer.id },
                "current_values_read",
                async move |_, _, _| Ok((data.clone(), ())),
            )
            .await?;
        }
        let mut correctable: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &self.sources().sources {
            for f in &s.correctable {
                correctable
                    .entry(f.clone())
                    .or_default()
                    .push(s.name.clone());
            }
        }
        Ok(CorrectionView {
            decided: decided.len() == changes.len(),
            changes: views,
            correctable,
        })
    }

    /// `POST /api/v1/officer/requests/{id}/corrections`: decides requested changes, each
    /// once: `{"decisions": [{"change": 0, "decision": "approve", "field"?}, {"change": 1,
    /// "decision": "reject", "reason"}]}`. Once every change is decided, the approved
    /// ones are applied in the sources that hold their fields.
    pub async fn decide_corrections(
        &self,
        officer: &Officer,
        id: Uuid,
        body: &Value,
    ) -> Result<CorrectionView, Error> {
        require(officer, Permission::WorkRequests)?;
        let request = requests::find(self.db().conn(), id)
            .await?
            .ok_or_else(Error::not_found)?;
        let Some(changes) = self.requested_changes(self.db().conn(), &request).await? else {
            return Err(Error::new(
                ErrorCode::CorrectionNotAllowed,
                "the request is not a correction (nor a next of kin granted the correction right)",
            ));
        };
        let asked = self.read_decisions(body, &changes)?;
        let services = self.clone();
        self.record_event(
            id,
            &Actor::Officer { id: officer.id },
            DECIDED,
            async move |tx, row, now| {
                if row.state != State::InProgress.as_str() {
                    return Err(Error::new(
                        ErrorCode::CorrectionNotAllowed,
                        format!(
                            "decide on a correction in progress; this one is {}",
                            row.state
                        ),
                    ));
                }
                let mut decided = decisions(&events::for_request(tx.conn(), id).await?);
                let mut recorded = Vec::new();
                for (i, d) in &asked {
                    if decided.contains_key(i) {
                        return Err(Error::new(
                            ErrorCode::AlreadyDecided,
                            format!("change {i} was decided already"),
                        )
                        .with_details(json!({"change": i})));
                    }
                    let change = &changes[*i];
                    let mut entry = json!({
                        "change": i,
                        "requested_field": change.field,
                        "decision": d.decision,
                        "new_value_digest": services.value_digest(
                            d.field.as_deref().unwrap_or(&change.field),
                            &change.new_value,
                        ),
                    });
                    if let Some(f) = &d.field {
                        entry["field"] = json!(f);
                    }
                    if let Some(r) = &d.reason {
                        entry["reason"] = json!(r);
                    }
                    recorded.push(entry);
                    decided.insert(*i, d.clone());
                }
                let mut data = json!({ "decisions": recorded });
                if decided.len() == changes.len() {
                    let fields: BTreeSet<String> = approved(&changes, &decided)
                        .into_iter()
                        .map(|a| a.field)
                        .collect();
                    let sources: Vec<String> = services
                        .sources()
                        .sources
                        .iter()
                        .filter(|s| s.correctable.iter().any(|f| fields.contains(f)))
                        .map(|s| s.name.clone())
                        .collect();
                    services.open_changes(tx.conn(), id, &sources, now).await?;
                    data["sources"] = json!(sources);
                }
                Ok((data, ()))
            },
        )
        .await?;
        self.correction_view(officer, id).await
    }

    /// Reads and checks a decisions body against the requested `changes`.
    fn read_decisions(
        &self,
        body: &Value,
        changes: &[FieldChange],
    ) -> Result<Vec<(usize, Decision)>, Error> {
        let mut errors = ValidationErrors::default();
        let mut out = Vec::new();
        {
            let mut r = crate::requests::object_reader(body, &mut errors)?;
            let path = r.field_path("decisions");
            if let Some(items) = r.array("decisions", true) {
                if items.is_empty() || items.len() > changes.len() {
                    r.errors().push(
                        path.clone(),
                        "invalid_length",
                        format!("must hold 1 to {} decisions", changes.len()),
                    );
                }
                let mut seen = BTreeSet::new();
                for (n, item) in items.iter().enumerate() {
                    let at = format!("{path}[{n}]");
                    let Some(mut d) = ObjectReader::new(Some(item), &at, false, r.errors()) else {
                        continue;
                    };
                    let change_path = d.field_path("change");
                    let change = match d.take("change") {
                        Some(Value::Number(c)) => c
                            .as_u64()
                            .and_then(|c| usize::try_from(c).ok())
                            .filter(|c| *c < changes.len()),
                        None => {
                            d.errors().push(
                                change_path.clone(),
                                "required",
                                "this field is required",
                            );
                            None
                        }
                        Some(_) => None,
                    };
                    let Some(change) = change.filter(|c| seen.insert(*c)) else {
                        d.errors().push(
                            change_path,
                            "invalid_value",
                            format!(
                                "must be the index of a requested change (0 to {}), once",
                                changes.len() - 1
                            ),
                        );
                        continue;
                    };
                    let decision_path = d.field_path("decision");
                    let decision = d.string("decision", true, 20);
                    let field_path = d.field_path("field");
                    let field = d.string("field", false, 100);
                    let reason = d.string("reason", false, limits::LONG_TEXT);
                    let decided = match decision.as_deref() {
                        Some("approve") => {
                            let field = field.unwrap_or_else(|| changes[change].field.clone());
                            if self.sources_of(&field).is_empty() {
                                d.errors().push(
                                    field_path,
                                    "field_not_correctable",
                                    format!(
                                        "no source declares {field:?} correctable: give `field`, one of the sources file's correctable fields, or reject the change"
                                    ),
                                );
                                None
                            } else {
                                Some(Decision {
                                    decision: "approved".to_owned(),
                                    field: Some(field),
                                    reason: None,
                                    decided_by: None,
                                })
                            }
                        }
                        Some("reject") => match reason {
                            Some(reason) => Some(Decision {
                                decision: "rejected".to_owned(),
                                field: None,
                                reason: Some(reason),
                                decided_by: None,
                            }),
                            None => {
                                let reason_path = d.field_path("reason");
                                d.errors().push(
                                    reason_path,
                                    "required",
                                    "a rejected change needs the reason the requester is told",
                                );
                                None
                            }
                        },
                        Some(_) => {
                            d.errors().push(
                                decision_path,
                                "invalid_value",
                                "must be approve or reject",
                            );
                            None
                        }
                        None => None,
                    };
                    d.deny_unknown();
                    if let Some(decided) = decided {
                        out.push((change, decided));
                    }
                }
            }
            r.deny_unknown();
        }
        errors.finish(out).map_err(Error::from)
    }

    /// The job `change_source` for a correction: the source applies the approved changes
    /// of the fields it holds, or its owner is asked.
    pub(crate) async fn correct_source(
        &self,
        mut row: store::Model,
        request: requests::Model,
        config: &rightsdesk_connectors::config::Source,
        changes: Vec<FieldChange>,
    ) -> Result<(), Error> {
        let conn = self.db().conn();
        let decided = decisions(&events::for_request(conn, request.id).await?);
        let wanted: Vec<FieldValue> = approved(&changes, &decided)
            .into_iter()
            .filter(|a| config.correctable.contains(&a.field))
            .collect();
        if !config.connector.applies_correction() {
            // The fields approved that the source holds (their values are in the
            // request, which the owner sees in the console).
            let fields: Vec<&str> = wanted.iter().map(|w| w.field.as_str()).collect();
            let task = json!({"correction": { "fields": fields.join(", ") }});
            return self
                .change_to_owner(row, &request, config, OwnerTask::Correction, Some(task))
                .await;
        }
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
        row.status = status::RUNNING.to_owned();
        store::save(conn, row.clone()).await?;
        let order = CorrectionOrder {
            ids: &ids,
            changes: &wanted,
        };
        match config.connector.correct(&request.reference, &order).await {
            Ok(done) => {
                let result = if done.iter().any(|c| c.rows > 0) {
                    outcome::APPLIED
                } else {
                    outcome::NO_DATA
                };
                row.changes = Value::Array(
                    done.iter()
                        .map(|c| {
                            let new = wanted
                                .iter()
                                .find(|w| w.field == c.field)
                                .map(|w| self.value_digest(&w.field, &w.value));
                            json!({
                                "field": c.field,
                                "table": c.table,
                                "rows": c.rows,
                                "old_value_digests": c.old_values.iter()
                                    .map(|v| self.value_digest(&c.field, v))
                                    .collect::<Vec<_>>(),
                                "new_value_digest": new,
                            })
                        })
                        .collect(),
                );
                self.change_done(row, &request, result, None).await
            }
            Err(e) => self.change_errored(row, &request, &e).await,
        }
    }

    /// A correction completes only once every change is decided (409
    /// `corrections_undecided`).
    pub(crate) async fn corrections_undecided(
        &self,
        request: &requests::Model,
    ) -> Result<Vec<usize>, Error> {
        let Some(changes) = self.requested_changes(self.db().conn(), request).await? else {
            return Ok(Vec::new());
        };
        let decided = decisions(&events::for_request(self.db().conn(), request.id).await?);
        Ok((0..changes.len())
            .filter(|i| !decided.contains_key(i))
            .collect())
    }

    /// For the completion notice of a correction: each requested field, corrected or
    /// not and why: `[{field, approved, reason}]`.
    pub(crate) async fn correction_outcome(
        &self,
        conn: &impl ConnectionTrait,
        request: &requests::Model,
    ) -> Result<Option<Value>, Error> {
        let Some(changes) = self.requested_changes(conn, request).await? else {
            return Ok(None);
        };
        let decided = decisions(&events::for_request(conn, request.id).await?);
        Ok(Some(Value::Array(
            changes
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let d = decided.get(&i);
                    json!({
                        "field": c.field,
                        "approved": d.is_some_and(|d| d.decision == "approved"),
                        "reason": d.and_then(|d| d.reason.clone()),
                    })
                })
                .collect(),
        )))
    }
}
