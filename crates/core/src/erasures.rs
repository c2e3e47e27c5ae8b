//! Erasing a request's subject from every data source (SPEC §7, PIPL 47): an officer
//! starts the erasure of a deletion or account-closure request in progress; each source
//! is a job of its own on the worker (`erase_source`), tried again with back-off when
//! the source is unreachable, and can be run again alone. A source rightsdesk cannot
//! erase itself (`manual`, or a table without `erase`) is its owner's task, confirmed by
//! an officer. Each source ends with an outcome:
//! - `no_data`: it held nothing about the subject;
//! - `deleted`: deleted or anonymised;
//! - `restricted`: categories a law requires keeping (`[[retention]]`) stay, for storage
//!   and security only, until the end of their period; the worker's `end_restrictions`
//!   erases them then;
//! - `backup_pending`: deleted live; the source's backups still hold it until they rotate
//!   (`backup_rotation_days`), and `rightsdesk tombstones export` lists it for a restore.
//!
//! The request cannot complete while a source has no outcome. Only names and row counts
//! are recorded, never the data.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rightsdesk_connectors::config::Source;
use rightsdesk_connectors::{EraseOrder, TableErasure, TableOutcome};
use rightsdesk_domain::validation::ObjectReader;
use rightsdesk_domain::{Actor, Permission, RequestKind, ValidationErrors};
use rightsdesk_store::erasures::{self as store, outcome, status};
use rightsdesk_store::{notifications, requests};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Officer;
use crate::collections::{OwnerTask, SourceWork};
use crate::officers::require;
use crate::{Error, ErrorCode, Services};

/// Where one source's erasure stands for a request.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErasureView {
    pub source: String,
    pub title_zh: Option<String>,
    pub title_en: Option<String>,
    /// `sql`, `http` or `manual` (none when the source left the sources file).
    pub connector: Option<String>,
    /// `pending`, `running`, `done`, `waiting_owner` or `failed`.
    pub status: String,
    /// Once `done`: `no_data`, `deleted`, `restricted` or `backup_pending`.
    pub outcome: Option<String>,
    /// What was done per table: `[{table, category, outcome, rows}]`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub tables: Value,
    /// The categories kept, with the end of their retention and its legal basis:
    /// `{category: {until, basis_zh, basis_en}}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub restricted: Value,
    /// The last day of the longest retention (local date).
    pub restricted_until: Option<String>,
    /// When the kept categories were erased, their retention over.
    pub restriction_ended_at: Option<DateTime<Utc>>,
    /// The day the source's backups rotate (local date).
    pub backup_until: Option<String>,
    pub attempts: i32,
    pub error_code: Option<String>,
    pub error: Option<String>,
    /// The officer who confirmed the owner's erasure.
    pub confirmed_by: Option<Uuid>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The kinds answered by erasing the subject's data.
pub(crate) fn erases(kind: RequestKind) -> bool {
    matches!(kind, RequestKind::Deletion | RequestKind::AccountClosure)
}

impl Services {
    fn erasure_view(&self, row: store::Model) -> ErasureView {
        let source = self.sources().get(&row.source);
        ErasureView {
            title_zh: source.map(|s| s.title_zh.clone()),
            title_en: source.map(|s| s.title_en.clone()),
            connector: source.map(|s| s.connector.kind().to_owned()),
            source: row.source,
            status: row.status,
            outcome: row.outcome,
            tables: row.tables,
            restricted: row.restricted,
            restricted_until: row.restricted_until,
            restriction_ended_at: row.restriction_ended_at,
            backup_until: row.backup_until,
            attempts: row.attempts,
            error_code: row.error_code,
            error: row.error,
            confirmed_by: row.confirmed_by,
            started_at: row.started_at,
            finished_at: row.finished_at,
        }
    }

    /// The erasures of a request, by source.
    pub async fn erasures(&self, request_id: Uuid) -> Result<Vec<ErasureView>, Error> {
        Ok(store::for_request(self.db().conn(), request_id)
            .await?
            .into_iter()
            .map(|r| self.erasure_view(r))
            .collect())
    }

    /// `POST /api/v1/officer/requests/{id}/erase`: erases the subject from every source
    /// (one job each). Starting again re-runs the sources that failed.
    pub async fn start_erasure(
        &self,
        officer: &Officer,
        id: Uuid,
    ) -> Result<Vec<ErasureView>, Error> {
        require(officer, Permission::WorkRequests)?;
        let names: Vec<String> = self
            .sources()
            .sources
            .iter()
            .map(|s| s.name.clone())
            .collect();
        self.open_source_work(officer, id, names, false, SourceWork::Erase)
            .await?;
        self.erasures(id).await
    }

    /// `POST /api/v1/officer/requests/{id}/erasures/{source}/rerun`: erases one source
    /// again, whatever it answered before.
    pub async fn rerun_erasure(
        &self,
        officer: &Officer,
        id: Uuid,
        source: &str,
    ) -> Result<Vec<ErasureView>, Error> {
        require(officer, Permission::WorkRequests)?;
        if self.sources().get(source).is_none() {
            return Err(Error::not_found());
        }
        self.open_source_work(
            officer,
            id,
            vec![source.to_owned()],
            true,
            SourceWork::Erase,
        )
        .await?;
        self.erasures(id).await
    }

    /// The categories of `source` kept under a retention rule if erased on `today`, with
    /// the last day of each's period.
    fn retention_plan(&self, source: &Source, today: NaiveDate) -> BTreeMap<String, String> {
        let rules = &self.sources().retention;
        source
            .categories
            .iter()
            .filter_map(|c| {
                let rule = rules.get(c)?;
                let until = today + TimeDelta::days(i64::from(rule.days));
                Some((c.clone(), until.to_string()))
            })
            .collect()
    }

    /// `{category: {until, basis_zh, basis_en}}` for the categories kept.
    fn restricted_json(&self, kept: &BTreeMap<String, String>) -> Value {
        let rules = &self.sources().retention;
        Value::Object(
            kept.iter()
                .map(|(c, until)| {
                    let rule = rules.get(c);
                    (
                        c.clone(),
                        json!({
                            "until": until,
                            "basis_zh": rule.map(|r| r.basis_zh.clone()),
                            "basis_en": rule.map(|r| r.basis_en.clone()),
                        }),
                    )
                })
                .collect(),
        )
    }

    /// The job `erase_source`: one source's erasure for one request. A transient failure
    /// returns an error, so the job is tried again with back-off.
    pub(crate) async fn erase_source(&self, request_id: Uuid, source: &str) -> Result<(), Error> {
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
        let now = self.now();
        row.attempts += 1;
        row.updated_at = now;
        row.started_at.get_or_insert(now);
        let Some(config) = self.sources().get(source) else {
            return self
                .erasure_failed(
                    row,
                    &request,
                    "unknown_source",
                    "the source is no longer in the sources file",
                )
                .await;
        };
        if !request.is_open {
            return self
                .erasure_failed(
                    row,
                    &request,
                    "request_closed",
                    "the request was closed before the source was erased",
                )
                .await;
        }
        let ids = self.subject_identifiers(&request).await?;
        if ids.is_empty() {
            return self
                .erasure_failed(
                    row,
                    &request,
                    "no_identifiers",
                    "the subject has no verified identifier to erase by",
                )
                .await;
        }
        if !config.connector.erasable() {
            // The owner is asked, in the transaction that records the wait.
            row.status = status::WAITING_OWNER.to_owned();
            let data = json!({"source": source, "owner": config.owner});
            let services = self.clone();
            let asked = request.clone();
            self.record_event(
                request.id,
                &Actor::System,
                "erasure_waiting_owner",
                async move |tx, _, now| {
                    store::save(tx.conn(), row.clone()).await?;
                    let notice =
                        services.owner_notice(&asked, &row.source, OwnerTask::Erase, None, now);
                    let rows = services.outbox_rows(notice, now)?;
                    notifications::insert_new(tx.conn(), rows).await?;
                    Ok((data.clone(), ()))
                },
            )
            .await?;
            self.outbox_written();
            return Ok(());
        }
        row.status = status::RUNNING.to_owned();
        store::save(conn, row.clone()).await?;
        let today = self.default_pack().local_date(now);
        let plan = self.retention_plan(config, today);
        let deactivate = closes_account(&request)?;
        match self
            .erase_in(config, &request, &ids, &plan, deactivate)
            .await
        {
            Ok(tables) => {
                self.erasure_done(row, &request, config, tables, &plan, today, None)
                    .await
            }
            Err(e) if e.is_transient() => {
                row.status = status::FAILED.to_owned();
                row.error_code = Some(e.code().to_owned());
                row.error = Some(e.to_string());
                row.updated_at = self.now();
                store::save(conn, row).await?;
                metrics::counter!("rightsdesk_erasures_total", "outcome" => "retried").increment(1);
                tracing::warn!(rights_request_id = %request_id, source, code = e.code(), "a source was not erased; tried again later");
                Err(Error::new(
                    ErrorCode::Unavailable,
                    format!("source {source}: {e}"),
                ))
            }
            Err(e) => {
                self.erasure_failed(row, &request, e.code(), &e.to_string())
                    .await
            }
        }
    }

    /// Records a source's outcome from what its tables went through.
    #[allow(clippy::too_many_arguments)]
    async fn erasure_done(
        &self,
        mut row: store::Model,
        request: &requests::Model,
        config: &Source,
        tables: Vec<TableErasure>,
        plan: &BTreeMap<String, String>,
        today: NaiveDate,
        confirmed_by: Option<(Uuid, Option<String>)>,
    ) -> Result<(), Error> {
        let kept: BTreeMap<String, String> = tables
            .iter()
            .filter(|t| t.outcome == TableOutcome::Restricted && t.rows > 0)
            .filter_map(|t| Some((t.category.clone(), plan.get(&t.category)?.clone())))
            .collect();
        let touched = tables.iter().any(|t| t.rows > 0);
        let backup_until = config
            .backup_rotation_days
            .filter(|_| touched)
            .map(|d| (today + TimeDelta::days(i64::from(d))).to_string());
        let result = if !kept.is_empty() {
            outcome::RESTRICTED
        } else if !touched {
            outcome::NO_DATA
        } else if backup_until.is_some() {
            outcome::BACKUP_PENDING
        } else {
            outcome::DELETED
        };
        row.status = status::DONE.to_owned();
        row.outcome = Some(result.to_owned());
        row.tables = json!(tables);
        row.restricted = self.restricted_json(&kept);
        row.restricted_until = kept.values().max().cloned();
        row.backup_until = backup_until;
        row.error_code = None;
        row.error = None;
        row.finished_at = Some(self.now());
        row.updated_at = self.now();
        let mut data = json!({
            "source": row.source,
            "outcome": result,
            "tables": row.tables,
            "restricted": row.restricted,
            "backup_until": row.backup_until,
        });
        let actor = match &confirmed_by {
            Some((officer, note)) => {
                row.confirmed_by = Some(*officer);
                data["note"] = json!(note);
                Actor::Officer { id: *officer }
            }
            None => Actor::System,
        };
        metrics::counter!("rightsdesk_erasures_total", "outcome" => result).increment(1);
        self.record_event(
            request.id,
            &actor,
            "source_erased",
            async move |tx, _, _| {
                store::save(tx.conn(), row.clone()).await?;
                Ok((data.clone(), ()))
            },
        )
        .await
    }

    /// `POST /api/v1/officer/requests/{id}/erasures/{source}/confirm`: an officer records
    /// that the owner of a source waiting for them erased the subject's data, and how:
    /// `{"outcome": "deleted", "restricted_categories": [...], "note": "..."}` (`outcome`
    /// one of `no_data`, `deleted`, `restricted`, `backup_pending`; with `restricted`, the
    /// categories kept, each under a `[[retention]]` rule whose period starts today).
    pub async fn confirm_erasure(
        &self,
        officer: &Officer,
        id: Uuid,
        source: &str,
        body: &Value,
    ) -> Result<Vec<ErasureView>, Error> {
        require(officer, Permission::WorkRequests)?;
        let Some(config) = self.sources().get(source) else {
            return Err(Error::not_found());
        };
        let conn = self.db().conn();
        let (Some(request), Some(row)) = (
            requests::find(conn, id).await?,
            store::get(conn, id, source).await?,
        ) else {
            return Err(Error::not_found());
        };
        if row.status != status::WAITING_OWNER || !request.is_open {
            return Err(Error::new(
                ErrorCode::SourceNotWaiting,
                format!(
                    "the erasure of {source} is {}, not waiting for its owner",
                    row.status
                ),
            ));
        }
        let mut problems = ValidationErrors::default();
        let (result, kept, note) = {
            let Some(mut r) = ObjectReader::new(Some(body), "", false, &mut problems) else {
                return Err(problems.into());
            };
            let result = r.string("outcome", true, 40);
            let mut kept = Vec::new();
            for (i, v) in r
                .array("restricted_categories", false)
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                let path = format!("restricted_categories[{i}]");
                match v {
                    Value::String(c)
                        if config.categories.contains(&c)
                            && self.sources().retention.contains_key(&c) =>
                    {
                        kept.push(c);
                    }
                    Value::String(_) => r.errors().push(
                        path,
                        "invalid_value",
                        "must be a category the source holds and a [[retention]] rule keeps",
                    ),
                    _ => r.errors().push(path, "invalid_type", "must be a string"),
                }
            }
            let note = r.string("note", false, 2_000);
            r.deny_unknown();
            (result, kept, note)
        };
        if let Some(result) = &result {
            if !outcome::ALL.contains(&result.as_str()) {
                problems.push(
                    "outcome",
                    "invalid_value",
                    format!("must be one of {}", outcome::ALL.join(", ")),
                );
            }
            let restricting = result == outcome::RESTRICTED;
            if restricting && kept.is_empty() {
                problems.push(
                    "restricted_categories",
                    "required",
                    "name the categories kept under their retention rules",
                );
            }
            if !restricting && !kept.is_empty() {
                problems.push(
                    "restricted_categories",
                    "not_allowed",
                    "only a restricted outcome keeps categories",
                );
            }
            if result == outcome::BACKUP_PENDING && config.backup_rotation_days.is_none() {
                problems.push(
                    "outcome",
                    "invalid_value",
                    "the source has no backup_rotation_days in the sources file",
                );
            }
        }
        let Some(result) = result.filter(|_| problems.is_empty()) else {
            return Err(problems.into());
        };
        let today = self.default_pack().local_date(self.now());
        let plan = self.retention_plan(config, today);
        // The owner's word, per category: the certificate names what was kept.
        let tables: Vec<TableErasure> = config
            .categories
            .iter()
            .map(|c| TableErasure {
                table: c.clone(),
                category: c.clone(),
                outcome: if kept.contains(c) {
                    TableOutcome::Restricted
                } else {
                    TableOutcome::Deleted
                },
                rows: u64::from(result != outcome::NO_DATA),
            })
            .collect();
        let mut row = row;
        row.attempts += 1;
        self.erasure_done(
            row,
            &request,
            config,
            tables,
            &plan,
            today,
            Some((officer.id, note)),
        )
        .await?;
        self.erasures(id).await
    }

    /// Records a failure that trying again cannot mend (an officer re-runs the source
    /// once it is fixed).
    async fn erasure_failed(
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
        metrics::counter!("rightsdesk_erasures_total", "outcome" => "failed").increment(1);
        tracing::warn!(rights_request_id = %request.id, source = %source, code, "an erasure failed");
        if !request.is_open {
            return Ok(());
        }
        let data = json!({"source": source, "code": code});
        self.record_event(
            request.id,
            &Actor::System,
            "erasure_failed",
            async move |_, _, _| Ok((data.clone(), ())),
        )
        .await
    }

    /// The sources without an erasure outcome, for a request answered by erasing (none
    /// for other kinds, or without sources): it cannot complete before they have one.
    pub(crate) async fn sources_unerased(
        &self,
        request: &requests::Model,
    ) -> Result<Vec<String>, Error> {
        if !self.erases_data(self.db().conn(), request).await? || self.sources().is_empty() {
            return Ok(Vec::new());
        }
        let rows = store::for_request(self.db().conn(), request.id).await?;
        Ok(self
            .sources()
            .sources
            .iter()
            .filter(|s| {
                rows.iter()
                    .find(|r| r.source == s.name)
                    .is_none_or(|r| r.status != status::DONE)
            })
            .map(|s| s.name.clone())
            .collect())
    }

    /// The periodic job `end_restrictions`: erases the categories whose retention ended
    /// by today (a local date), source by source, and records it. Returns how many
    /// sources were erased.
    pub async fn end_restrictions(&self) -> Result<u64, Error> {
        let today = self.default_pack().local_date(self.now());
        let due = store::restrictions_ended(self.db().conn(), &today.to_string()).await?;
        let mut ended = 0;
        for mut row in due {
            let Some(request) = requests::find(self.db().conn(), row.request_id).await? else {
                continue;
            };
            let ids = self.subject_identifiers(&request).await?;
            let Some(config) = self.sources().get(&row.source) else {
                tracing::warn!(rights_request_id = %row.request_id, source = %row.source, "a restriction ended in a source no longer configured");
                continue;
            };
            let tables = if config.connector.erasable() && !ids.is_empty() {
                // What is still kept for a longer period stays.
                let still = still_kept(&row, &today.to_string());
                match self.erase_in(config, &request, &ids, &still, false).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(rights_request_id = %row.request_id, source = %row.source, code = e.code(), "a restriction could not be ended; tried again later");
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            row.restriction_ended_at = Some(self.now());
            row.updated_at = self.now();
            let by_owner = !config.connector.erasable();
            let data = json!({
                "source": row.source,
                "tables": tables,
                "by_owner": by_owner,
            });
            let services = self.clone();
            let asked = request.clone();
            self.record_event(
                request.id,
                &Actor::System,
                "restriction_ended",
                async move |tx, _, now| {
                    store::save(tx.conn(), row.clone()).await?;
                    if by_owner {
                        // The owner kept it by hand: they erase it by hand.
                        let notice =
                            services.owner_notice(&asked, &row.source, OwnerTask::Erase, None, now);
                        let rows = services.outbox_rows(notice, now)?;
                        notifications::insert_new(tx.conn(), rows).await?;
                    }
                    Ok((data.clone(), ()))
                },
            )
            .await?;
            if by_owner {
                self.outbox_written();
            }
            ended += 1;
        }
        Ok(ended)
    }
}

/// An erasure that a restore of its source's backups must apply again
/// (`rightsdesk tombstones export`). It names the person: handle the list as
/// personal data.
#[derive(Debug, Clone, Serialize)]
pub struct Tombstone {
    pub reference: String,
    pub source: String,
    pub erased_at: Option<DateTime<Utc>>,
    /// The day the source's backups no longer hold it.
    pub backup_until: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub account_id: Option<String>,
}

/// What `rightsdesk tombstones apply` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reapplied {
    pub erasures: u64,
    /// Rows the erasures touched again (those the restore brought back).
    pub rows: u64,
    /// Erasures the source's owner must apply by hand (it is not erasable by rightsdesk).
    pub by_owner: Vec<String>,
    pub failed: Vec<String>,
}

impl Services {
    /// The erasures the backups of `source` (or every source) still hold today.
    pub async fn tombstones(&self, source: Option<&str>) -> Result<Vec<Tombstone>, Error> {
        let today = self.default_pack().local_date(self.now()).to_string();
        let mut out = Vec::new();
        for row in store::in_backups(self.db().conn(), &today, source).await? {
            let Some(request) = requests::find(self.db().conn(), row.request_id).await? else {
                continue;
            };
            let ids = self.subject_identifiers(&request).await?;
            out.push(Tombstone {
                reference: request.reference,
                source: row.source,
                erased_at: row.finished_at,
                backup_until: row.backup_until,
                email: ids.email,
                mobile: ids.mobile,
                account_id: ids.account_id,
            });
        }
        Ok(out)
    }

    /// After `source` was restored from a backup: applies again every erasure its
    /// backups still held, keeping what retention rules still keep, and records it in
    /// each request's chain (`erasure_reapplied`).
    pub async fn reapply_tombstones(&self, source: &str) -> Result<Reapplied, Error> {
        let Some(config) = self.sources().get(source) else {
            return Err(Error::not_found());
        };
        let today = self.default_pack().local_date(self.now());
        let mut report = Reapplied::default();
        for row in store::in_backups(self.db().conn(), &today.to_string(), Some(source)).await? {
            let Some(request) = requests::find(self.db().conn(), row.request_id).await? else {
                continue;
            };
            if !config.connector.erasable() {
                report.by_owner.push(request.reference);
                continue;
            }
            let ids = self.subject_identifiers(&request).await?;
            let still = still_kept(&row, &today.to_string());
            let deactivate = closes_account(&request)?;
            match self
                .erase_in(config, &request, &ids, &still, deactivate)
                .await
            {
                Ok(tables) => {
                    let rows: u64 = tables
                        .iter()
                        .filter(|t| t.outcome != TableOutcome::Restricted)
                        .map(|t| t.rows)
                        .sum();
                    report.erasures += 1;
                    report.rows += rows;
                    let data = json!({"source": source, "tables": tables});
                    self.record_event(
                        request.id,
                        &Actor::System,
                        "erasure_reapplied",
                        async move |_, _, _| Ok((data.clone(), ())),
                    )
                    .await?;
                }
                Err(e) => {
                    tracing::warn!(rights_request_id = %request.id, source, code = e.code(), "a tombstone could not be applied");
                    report.failed.push(request.reference);
                }
            }
        }
        Ok(report)
    }

    /// Asks `config`'s connector to erase `request`'s subject (`ids`) within the
    /// categories the request named, keeping `restricted` until its dates, and, when
    /// `deactivate`, closing the account first.
    async fn erase_in(
        &self,
        config: &Source,
        request: &requests::Model,
        ids: &rightsdesk_connectors::Identifiers,
        restricted: &BTreeMap<String, String>,
        deactivate: bool,
    ) -> Result<Vec<TableErasure>, rightsdesk_connectors::ConnectorError> {
        let only = crate::bundles::answered_categories(request, config);
        let keys = self.keys();
        let order = EraseOrder {
            ids,
            restricted,
            anonymise_key: &keys.anonymise_key,
            deactivate,
            only: only.as_ref(),
        };
        config.connector.erase(&request.reference, &order).await
    }
}

/// Whether `request` closes an account (注销): its account is deactivated before its
/// data is erased.
fn closes_account(request: &requests::Model) -> Result<bool, Error> {
    let kind: RequestKind = crate::requests::parse_stored(&request.kind)?;
    Ok(kind == RequestKind::AccountClosure)
}

/// The categories `row` keeps after `today` (a local date), with the last day of each:
/// none once its restriction has ended.
fn still_kept(row: &store::Model, today: &str) -> BTreeMap<String, String> {
    if row.restriction_ended_at.is_some() {
        return BTreeMap::new();
    }
    row.restricted
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(c, v)| {
            let until = v["until"].as_str()?;
            (until > today).then(|| (c.clone(), until.to_owned()))
        })
        .collect()
}
