//! Looking a request's subject up in every data source (SPEC §7): an officer starts the
//! collection of an access, copy or portability request in progress; each source is a
//! job of its own on the worker (`collect_source`), tried again with back-off when the
//! source is unreachable, and can be run again alone. A `manual` source waits for its
//! owner. What each source holds is recorded as counts per category (the data itself
//! goes only into the bundle), each answer is an event in the request's chain, and the
//! request cannot complete while a source has not answered.

use chrono::{DateTime, Utc};
use rightsdesk_connectors::{Connector, Counter, Identifiers};
use rightsdesk_domain::{Actor, Permission, RequestKind, State};
use rightsdesk_store::collections::{self as store, status};
use rightsdesk_store::{notifications, requests, subjects};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Officer;
use crate::jobs::Job;
use crate::officers::require;
use crate::{Error, ErrorCode, Services};

/// Where one source stands for a request.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CollectionView {
    pub source: String,
    pub title_zh: Option<String>,
    pub title_en: Option<String>,
    /// `sql`, `http` or `manual` (none when the source left the sources file).
    pub connector: Option<String>,
    /// `pending`, `running`, `answered`, `no_data`, `waiting_owner` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// Records found per category.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub records: Value,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What an officer has every source do for a request: look its subject up (access, copy,
/// portability) or erase it (deletion, account closure). One job per source, one row
/// per source (`collections` or `erasures`), one event for the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceWork {
    Collect,
    Erase,
}

impl SourceWork {
    /// Which of `names` this work opens for request `id`: those not opened yet, or that
    /// failed (all of them `again`).
    pub(crate) async fn to_open(
        self,
        conn: &impl rightsdesk_store::ConnectionTrait,
        id: Uuid,
        names: &[String],
        again: bool,
    ) -> Result<Vec<String>, Error> {
        // Each opened source, and whether it failed.
        let existing: Vec<(String, bool)> = match self {
            SourceWork::Collect => store::for_request(conn, id)
                .await?
                .into_iter()
                .map(|c| (c.source, c.status == status::FAILED))
                .collect(),
            SourceWork::Erase => rightsdesk_store::erasures::for_request(conn, id)
                .await?
                .into_iter()
                .map(|e| {
                    let failed = e.status == rightsdesk_store::erasures::status::FAILED;
                    (e.source, failed)
                })
                .collect(),
        };
        Ok(names
            .iter()
            .filter(|name| {
                again
                    || existing
                        .iter()
                        .find(|(source, _)| source == *name)
                        .is_none_or(|(_, failed)| *failed)
            })
            .cloned()
            .collect())
    }

    /// `collect` or `erase`, as the request detail's `source_work` names it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Collect => "collect",
            Self::Erase => "erase",
        }
    }

    fn event(self, again: bool) -> &'static str {
        match (self, again) {
            (Self::Collect, false) => "collection_started",
            (Self::Collect, true) => "collection_rerun",
            (Self::Erase, false) => "erasure_started",
            (Self::Erase, true) => "erasure_rerun",
        }
    }

    fn refused(self, message: String) -> Error {
        let code = match self {
            Self::Collect => ErrorCode::CollectionNotAllowed,
            Self::Erase => ErrorCode::ErasureNotAllowed,
        };
        Error::new(code, message)
    }

    /// Checks that `row` may have its sources worked: answered by this work (`answers`),
    /// in progress, its subject verified.
    pub(crate) fn check(self, row: &requests::Model, answers: bool) -> Result<(), Error> {
        let kind: RequestKind = crate::requests::parse_stored(&row.kind)?;
        let state: State = crate::requests::parse_stored(&row.state)?;
        if !answers {
            return Err(self.refused(format!("the sources are not worked for a {kind} request")));
        }
        if state != State::InProgress {
            return Err(self.refused(format!("the request is {state}: start it first")));
        }
        if row.subject_id.is_none() {
            return Err(self.refused("the requester's identity is not verified".to_owned()));
        }
        Ok(())
    }

    fn job(self, request_id: Uuid, source: String) -> (Job, String) {
        let key = |what: &str| format!("{what}:{request_id}:{source}:{}", Uuid::now_v7());
        match self {
            Self::Collect => (
                Job::CollectSource {
                    request_id,
                    source: source.clone(),
                },
                key("collect"),
            ),
            Self::Erase => (
                Job::EraseSource {
                    request_id,
                    source: source.clone(),
                },
                key("erase"),
            ),
        }
    }
}

/// What a source's owner is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnerTask {
    /// Send the subject's data (a `manual` source of an access, copy or portability
    /// request).
    Data,
    /// Erase the subject's data and say how (a source rightsdesk cannot erase itself).
    Erase,
    /// Stop processing the subject's data for the purposes withdrawn (or narrowed), and
    /// confirm (a source rightsdesk cannot change itself).
    Consent,
    /// Apply the approved corrections of the fields it holds, and confirm.
    Correction,
}

/// The kinds whose answer is the subject's data from every source (and a bundle).
pub(crate) fn collects(kind: RequestKind) -> bool {
    matches!(
        kind,
        RequestKind::Access | RequestKind::Copy | RequestKind::Portability
    )
}

impl Services {
    fn collection_view(&self, row: store::Model) -> CollectionView {
        let source = self.sources().get(&row.source);
        CollectionView {
            title_zh: source.map(|s| s.title_zh.clone()),
            title_en: source.map(|s| s.title_en.clone()),
            connector: source.map(|s| s.connector.kind().to_owned()),
            source: row.source,
            status: row.status,
            attempts: row.attempts,
            records: row.records,
            error_code: row.error_code,
            error: row.error,
            started_at: row.started_at,
            finished_at: row.finished_at,
        }
    }

    /// The look-ups of a request, by source.
    pub async fn collections(&self, request_id: Uuid) -> Result<Vec<CollectionView>, Error> {
        Ok(store::for_request(self.db().conn(), request_id)
            .await?
            .into_iter()
            .map(|r| self.collection_view(r))
            .collect())
    }

    /// `POST /api/v1/officer/requests/{id}/collect`: looks the subject up in every
    /// source (one job each). Starting again re-runs the sources that have not answered.
    pub async fn start_collection(
        &self,
        officer: &Officer,
        id: Uuid,
    ) -> Result<Vec<CollectionView>, Error> {
        require(officer, Permission::WorkRequests)?;
        let names: Vec<String> = self
            .sources()
            .sources
            .iter()
            .map(|s| s.name.clone())
            .collect();
        self.open_source_work(officer, id, names, false, SourceWork::Collect)
            .await?;
        self.collections(id).await
    }

    /// `POST /api/v1/officer/requests/{id}/sources/{source}/rerun`: looks one source up
    /// again, whatever it answered before.
    pub async fn rerun_collection(
        &self,
        officer: &Officer,
        id: Uuid,
        source: &str,
    ) -> Result<Vec<CollectionView>, Error> {
        require(officer, Permission::WorkRequests)?;
        if self.sources().get(source).is_none() {
            return Err(Error::not_found());
        }
        self.open_source_work(
            officer,
            id,
            vec![source.to_owned()],
            true,
            SourceWork::Collect,
        )
        .await?;
        self.collections(id).await
    }

    /// Opens `work` for the sources `names` of request `id` (one job each): all of them
    /// `again`, else those not yet opened or failed, leaving the ones that answered and
    /// those at work alone.
    pub(crate) async fn open_source_work(
        &self,
        officer: &Officer,
        id: Uuid,
        names: Vec<String>,
        again: bool,
        work: SourceWork,
    ) -> Result<(), Error> {
        if self.sources().is_empty() {
            return Err(Error::new(
                ErrorCode::NoSources,
                "no data source is configured (sources.file)",
            ));
        }
        let actor = Actor::Officer { id: officer.id };
        let services = self.clone();
        self.record_event(id, &actor, work.event(again), async move |tx, row, now| {
            let answers = match work {
                SourceWork::Collect => services.gives_data(tx.conn(), row).await?,
                SourceWork::Erase => services.erases_data(tx.conn(), row).await?,
            };
            work.check(row, answers)?;
            services.check_not_held(tx.conn(), row.id).await?;
            let open = work.to_open(tx.conn(), row.id, &names, again).await?;
            match work {
                SourceWork::Collect => store::open(tx.conn(), row.id, &open, now).await?,
                SourceWork::Erase => {
                    rightsdesk_store::erasures::open(tx.conn(), row.id, &open, now).await?
                }
            }
            for source in &open {
                let (job, key) = work.job(row.id, source.clone());
                services.enqueue_job(tx.conn(), &job, &key).await?;
            }
            Ok((json!({ "sources": open }), ()))
        })
        .await
    }

    /// The job `collect_source`: one source's look-up for one request. A transient
    /// failure (the source unreachable or slow) returns an error, so the job is tried
    /// again with back-off; the row says so meanwhile.
    pub(crate) async fn collect_source(&self, request_id: Uuid, source: &str) -> Result<(), Error> {
        let conn = self.db().conn();
        let Some(mut row) = store::get(conn, request_id, source).await? else {
            return Ok(());
        };
        if status::is_answered(&row.status) {
            // Done already (a job run again after its worker died or lost its lease):
            // the bundle may not be queued yet; it is queued by its key at most once.
            return self.queue_bundle_when_answered(request_id).await;
        }
        if row.status == status::WAITING_OWNER {
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
                .collection_failed(
                    row,
                    &request,
                    "unknown_source",
                    "the source is no longer in the sources file",
                )
                .await;
        };
        if !request.is_open {
            return self
                .collection_failed(
                    row,
                    &request,
                    "request_closed",
                    "the request was closed before the source answered",
                )
                .await;
        }
        let ids = self.subject_identifiers(&request).await?;
        if ids.is_empty() {
            return self
                .collection_failed(
                    row,
                    &request,
                    "no_identifiers",
                    "the subject has no verified identifier to look up",
                )
                .await;
        }
        row.status = status::RUNNING.to_owned();
        store::save(conn, row.clone()).await?;
        let found = match &config.connector {
            Connector::Manual => {
                // The owner is asked, in the transaction that records the wait.
                row.status = status::WAITING_OWNER.to_owned();
                row.updated_at = self.now();
                let data = json!({"source": source, "owner": config.owner});
                let services = self.clone();
                let asked = request.clone();
                self.record_event(
                    request.id,
                    &Actor::System,
                    "source_waiting_owner",
                    async move |tx, _, now| {
                        store::save(tx.conn(), row.clone()).await?;
                        let notice =
                            services.owner_notice(&asked, &row.source, OwnerTask::Data, None, now);
                        let rows = services.outbox_rows(notice, now)?;
                        notifications::insert_new(tx.conn(), rows).await?;
                        Ok((data.clone(), ()))
                    },
                )
                .await?;
                self.outbox_written();
                return Ok(());
            }
            Connector::Sql(sql) => sql.count(&ids).await,
            Connector::Http(http) => {
                let mut counter = Counter::default();
                http.lookup(&request.reference, &ids, &mut counter).await
            }
        };
        match found {
            Ok(stats) => {
                row.status = if stats.total() == 0 {
                    status::NO_DATA
                } else {
                    status::ANSWERED
                }
                .to_owned();
                row.records = json!(stats.per_category);
                row.error_code = None;
                row.error = None;
                row.finished_at = Some(self.now());
                row.updated_at = self.now();
                let data = json!({"status": row.status, "records": row.records});
                // The answer and its event commit together: a worker that dies between
                // them cannot leave an answer without its event.
                self.collection_event(&request, row, "source_answered", data)
                    .await?;
                metrics::counter!("rightsdesk_collections_total", "outcome" => "answered")
                    .increment(1);
                self.queue_bundle_when_answered(request_id).await
            }
            Err(e) if e.is_transient() => {
                row.status = status::FAILED.to_owned();
                row.error_code = Some(e.code().to_owned());
                row.error = Some(e.to_string());
                row.updated_at = self.now();
                store::save(conn, row).await?;
                metrics::counter!("rightsdesk_collections_total", "outcome" => "retried")
                    .increment(1);
                tracing::warn!(rights_request_id = %request_id, source, code = e.code(), "a source did not answer; tried again later");
                Err(Error::new(
                    ErrorCode::Unavailable,
                    format!("source {source}: {e}"),
                ))
            }
            Err(e) => {
                self.collection_failed(row, &request, e.code(), &e.to_string())
                    .await
            }
        }
    }

    /// `POST /api/v1/officer/requests/{id}/sources/{source}/answer`: the owner's answer for
    /// a `manual` source that waits for it: `{"no_data": true}`, `{"records": {category:
    /// [object, …]}}` (`application/json`), or one category's rows as CSV with a header
    /// row (`text/csv`, `category` given). The records are stored sealed until the bundle
    /// is written; the counts go into the collection.
    pub async fn answer_source(
        &self,
        officer: &Officer,
        id: Uuid,
        source: &str,
        answer: Option<OwnerAnswer<'_>>,
        files: Vec<OwnerFile>,
    ) -> Result<Vec<CollectionView>, Error> {
        require(officer, Permission::WorkRequests)?;
        let config = self.sources().get(source).ok_or_else(Error::not_found)?;
        if !matches!(config.connector, Connector::Manual) {
            return Err(Error::new(
                ErrorCode::SourceNotManual,
                format!("source {source} is looked up, not answered by its owner"),
            ));
        }
        let bad = |problem: &str| {
            Error::new(ErrorCode::InvalidAnswer, "the answer cannot be read")
                .with_details(json!({ "problem": problem }))
        };
        if files.len() > MAX_ANSWER_FILES {
            return Err(bad("at most 20 files per answer"));
        }
        if files.iter().any(|f| f.bytes.is_empty()) {
            return Err(bad("a file is empty"));
        }
        let records = match answer {
            Some(answer) => {
                let records = parse_answer(answer, &config.categories)?;
                if records.is_empty() && !files.is_empty() {
                    return Err(bad("files with \"no_data\": true"));
                }
                records
            }
            None if files.is_empty() => return Err(bad("neither records nor files")),
            None => Vec::new(),
        };
        let file_count = files.len();
        let mut counts = std::collections::BTreeMap::<String, u64>::new();
        for (category, _) in &records {
            *counts.entry(category.clone()).or_default() += 1;
        }
        // Stored before the answer is recorded; removed again if recording fails.
        let key = if records.is_empty() && files.is_empty() {
            None
        } else {
            Some(self.store_answer(id, records, files).await?)
        };
        let actor = Actor::Officer { id: officer.id };
        let stored_key = key.clone();
        let source_name = source.to_owned();
        let recorded = self
            .record_event(id, &actor, "source_answered", async |tx, row, now| {
                if !row.is_open {
                    return Err(Error::new(
                        ErrorCode::RequestClosed,
                        "the request is closed",
                    ));
                }
                let Some(mut c) = store::get(tx.conn(), row.id, &source_name).await? else {
                    return Err(waiting_not(&source_name));
                };
                if c.status != status::WAITING_OWNER {
                    return Err(waiting_not(&source_name));
                }
                c.status = if counts.is_empty() && file_count == 0 {
                    status::NO_DATA
                } else {
                    status::ANSWERED
                }
                .to_owned();
                c.records = json!(counts);
                c.answer_key = stored_key.clone();
                c.error_code = None;
                c.error = None;
                c.finished_at = Some(now);
                c.updated_at = now;
                let data = json!({
                    "source": source_name,
                    "status": c.status,
                    "records": c.records,
                    "files": file_count,
                    "answered_by": "owner",
                });
                store::save(tx.conn(), c).await?;
                Ok((data, ()))
            })
            .await;
        if let Err(e) = recorded {
            if let Some(key) = key {
                self.delete_answer(key).await;
            }
            return Err(e);
        }
        metrics::counter!("rightsdesk_collections_total", "outcome" => "answered").increment(1);
        self.queue_bundle_when_answered(id).await?;
        self.collections(id).await
    }

    /// Seals an owner's answer into storage: each file an object of its own, and the
    /// records and the files' names and keys as JSON lines; returns the lines' key.
    async fn store_answer(
        &self,
        request_id: Uuid,
        records: Vec<OwnerRecord>,
        files: Vec<OwnerFile>,
    ) -> Result<String, Error> {
        let answer_id = Uuid::now_v7();
        let key = format!("answers/{request_id}/{answer_id}");
        let mut lines = Vec::new();
        let mut line = |value: Value| -> Result<(), Error> {
            serde_json::to_writer(&mut lines, &value).map_err(|_| Error::internal())?;
            lines.push(b'\n');
            Ok(())
        };
        for (category, data) in records {
            line(json!({ "category": category, "data": data }))?;
        }
        let mut objects = Vec::new();
        for file in files {
            let file_id = Uuid::now_v7();
            let file_key = format!("answers/{request_id}/{file_id}");
            line(json!({ "file": { "name": file.name, "key": file_key } }))?;
            objects.push((file_id, file_key, file.bytes));
        }
        objects.push((answer_id, key.clone(), lines));
        let storage = self.storage().clone();
        let ring = self.at_rest();
        let stored = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            for (id, key, bytes) in objects {
                let mut sealed = crate::sealing::SealingReader::new(&ring, id, &bytes[..])?;
                storage.put(&key, &mut sealed)?;
            }
            Ok(())
        })
        .await
        .map_err(|_| Error::internal())?;
        if let Err(e) = stored {
            tracing::error!(error = %e, "an owner's answer could not be stored");
            return Err(Error::new(
                ErrorCode::Unavailable,
                "the answer could not be stored",
            ));
        }
        Ok(key)
    }

    /// The notice that asks a source's owner for a request's data, or to erase it
    /// (`task`; `reminder`: the day and how many days it has waited), when the owner is an
    /// email address.
    pub(crate) fn owner_notice(
        &self,
        request: &requests::Model,
        source: &str,
        task: OwnerTask,
        reminder: Option<(chrono::NaiveDate, i64)>,
        now: DateTime<Utc>,
    ) -> Option<crate::notifications::Notice> {
        let config = self.sources().get(source)?;
        let to = rightsdesk_domain::contact::Email::parse(&config.owner).ok()?;
        let catalogue = &self.sources().catalogue;
        let categories = config
            .categories
            .iter()
            .map(|key| {
                catalogue
                    .get(key)
                    .map_or(key.as_str(), |c| c.title_zh.as_str())
            })
            .collect::<Vec<_>>()
            .join("、");
        let instructions = config.manual.as_ref().and_then(|m| {
            m.instructions_zh
                .clone()
                .or_else(|| m.instructions_en.clone())
        });
        let extra = json!({
            "source": {
                "name": config.name,
                "title_zh": config.title_zh,
                "title_en": config.title_en,
                "instructions": instructions,
            },
            "categories": categories,
            "erase": task == OwnerTask::Erase,
            "consent": (task == OwnerTask::Consent).then(|| self.consent_task(request, &config.purposes)),
            "correction": (task == OwnerTask::Correction).then(|| json!({"fields": null})),
            "answer_path": match task {
                OwnerTask::Data => format!("/api/v1/officer/requests/{}/sources/{source}/answer", request.id),
                OwnerTask::Erase => format!("/api/v1/officer/requests/{}/erasures/{source}/confirm", request.id),
                OwnerTask::Consent | OwnerTask::Correction => format!("/api/v1/officer/requests/{}/changes/{source}/confirm", request.id),
            },
            "reminder": reminder.is_some(),
            "days_waiting": reminder.map_or(0, |(_, days)| days),
        });
        let task_name = match task {
            OwnerTask::Data => "data",
            OwnerTask::Erase => "erase",
            OwnerTask::Consent => "consent",
            OwnerTask::Correction => "correction",
        };
        let key = match reminder {
            Some((day, _)) => format!(
                "source_owner_reminder:{task_name}:{}:{source}:{day}",
                request.id
            ),
            None => format!(
                "source_owner_task:{task_name}:{}:{source}:{}",
                request.id,
                now.timestamp_micros()
            ),
        };
        Some(crate::notifications::officer_notice(
            request,
            self.pack_of(request),
            rightsdesk_mail::Template::SourceOwnerTask,
            Some(crate::notifications::Recipient::Email(
                to.as_str().to_owned(),
            )),
            extra,
            key,
        ))
    }

    /// Reminds the owners asked for data or for an erasure who have kept a request
    /// waiting since before `today` (the default pack's date), once a day each. Returns how many reminders were new.
    pub(crate) async fn remind_owners(&self, today: chrono::NaiveDate) -> Result<u64, Error> {
        let now = self.now();
        let pack = self.default_pack();
        let mut notices = Vec::new();
        let conn = self.db().conn();
        let waiting = store::waiting_owner(conn)
            .await?
            .into_iter()
            .map(|r| (r.request_id, r.source, r.updated_at, OwnerTask::Data))
            .chain(
                rightsdesk_store::erasures::waiting_owner(conn)
                    .await?
                    .into_iter()
                    .map(|r| (r.request_id, r.source, r.updated_at, OwnerTask::Erase)),
            )
            .chain(
                rightsdesk_store::source_changes::waiting_owner(conn)
                    .await?
                    .into_iter()
                    .map(|r| (r.request_id, r.source, r.updated_at, OwnerTask::Consent)),
            );
        // A source change is a consent withdrawal's, or a correction's (a next of kin's too).
        let kind_of_change = |request: &requests::Model, task: OwnerTask| {
            if task == OwnerTask::Consent && request.kind != RequestKind::ConsentWithdrawal.as_str()
            {
                OwnerTask::Correction
            } else {
                task
            }
        };
        for (request_id, source, since, task) in waiting {
            let waited = (today - pack.local_date(since)).num_days();
            if waited < 1 {
                continue;
            }
            let Some(request) = requests::find(conn, request_id).await? else {
                continue;
            };
            if !request.is_open {
                continue;
            }
            let task = kind_of_change(&request, task);
            notices.extend(self.owner_notice(&request, &source, task, Some((today, waited)), now));
        }
        if notices.is_empty() {
            return Ok(0);
        }
        let rows = self.outbox_rows(notices, now)?;
        let tx = self.db().begin_write().await?;
        let written = notifications::insert_new(&*tx, rows).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Records a failure that trying again cannot mend (an officer re-runs the source
    /// once it is fixed).
    async fn collection_failed(
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
        if request.is_open {
            self.collection_event(request, row, "source_failed", json!({"code": code}))
                .await?;
        } else {
            store::save(self.db().conn(), row).await?;
        }
        metrics::counter!("rightsdesk_collections_total", "outcome" => "failed").increment(1);
        tracing::warn!(rights_request_id = %request.id, source = %source, code, "a source failed");
        Ok(())
    }

    /// Saves `row` and records `event` about its source on the request's chain, in one
    /// transaction.
    async fn collection_event(
        &self,
        request: &requests::Model,
        row: store::Model,
        event: &str,
        mut data: Value,
    ) -> Result<(), Error> {
        data["source"] = json!(row.source);
        self.record_event(request.id, &Actor::System, event, async move |tx, _, _| {
            store::save(tx.conn(), row.clone()).await?;
            Ok((data.clone(), ()))
        })
        .await
    }

    /// The identifiers of the request's subject that its verification proved: a code or
    /// link sent by email proves the address, not the mobile number the requester also
    /// typed (which may be someone else's), and the other way round for SMS. A login
    /// with the company's account, or an officer's check (a call back, a document), vouches
    /// for every identifier of the subject.
    pub(crate) async fn subject_identifiers(
        &self,
        request: &requests::Model,
    ) -> Result<Identifiers, Error> {
        let Some(subject) = request.subject_id else {
            return Ok(Identifiers::default());
        };
        let Some(s) = subjects::get(self.db().conn(), subject).await? else {
            return Ok(Identifiers::default());
        };
        let method = rightsdesk_store::events::for_request(self.db().conn(), request.id)
            .await?
            .into_iter()
            .rev()
            .find(|e| e.event_type == "verified")
            .and_then(|e| e.data["method"].as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(proven_identifiers(&method, s))
    }

    /// The sources that have not answered a request whose answer is the subject's data
    /// (none for other kinds, or without sources): it cannot complete before they do.
    pub(crate) async fn sources_unanswered(
        &self,
        request: &requests::Model,
    ) -> Result<Vec<String>, Error> {
        if !self.gives_data(self.db().conn(), request).await? || self.sources().is_empty() {
            return Ok(Vec::new());
        }
        let rows = store::for_request(self.db().conn(), request.id).await?;
        Ok(self
            .sources()
            .sources
            .iter()
            .filter(|s| {
                !rows
                    .iter()
                    .any(|r| r.source == s.name && status::is_answered(&r.status))
            })
            .map(|s| s.name.clone())
            .collect())
    }
}

/// What a verification `method` proves of `subject`'s identifiers.
fn proven_identifiers(method: &str, subject: subjects::Model) -> Identifiers {
    let (email, mobile) = match method {
        "email_code" | "email_link" => (subject.email, None),
        "sms_code" | "sms_link" => (None, subject.phone),
        _ => (subject.email, subject.phone),
    };
    Identifiers {
        email,
        mobile,
        account_id: subject.account_id,
    }
}

/// The most files one owner's answer may carry.
const MAX_ANSWER_FILES: usize = 20;

/// A file an owner attaches to their answer (a recording, a scanned form, …): it goes into
/// the bundle under `files/<source>/`.
#[derive(Clone)]
pub struct OwnerFile {
    /// As the owner named it (made safe in the bundle).
    pub name: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for OwnerFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerFile")
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// An owner's answer for a `manual` source, as received.
#[derive(Debug, Clone, Copy)]
pub enum OwnerAnswer<'a> {
    /// `application/json`: `{"no_data": true}` or `{"records": {category: [object, …]}}`.
    Json(&'a [u8]),
    /// `text/csv`: one category's rows, with a header row.
    Csv { category: &'a str, body: &'a [u8] },
}

/// One record of an owner's answer: its category and its fields.
type OwnerRecord = (String, serde_json::Map<String, Value>);

/// The records of an owner's answer, checked against the categories the source holds.
fn parse_answer(answer: OwnerAnswer<'_>, categories: &[String]) -> Result<Vec<OwnerRecord>, Error> {
    let bad = |problem: String| {
        Error::new(ErrorCode::InvalidAnswer, "the answer cannot be read")
            .with_details(json!({ "problem": problem }))
    };
    let known = |category: &str| {
        if categories.iter().any(|c| c == category) {
            Ok(())
        } else {
            Err(bad(format!(
                "the source holds no category {category:?} (it holds: {})",
                categories.join(", ")
            )))
        }
    };
    let mut out = Vec::new();
    match answer {
        OwnerAnswer::Json(body) => {
            let value: Value =
                serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
            let Value::Object(mut object) = value else {
                return Err(bad("the body must be a JSON object".to_owned()));
            };
            let no_data = object.remove("no_data");
            let records = object.remove("records");
            if let Some(extra) = object.keys().next() {
                return Err(bad(format!("unknown field {extra:?}")));
            }
            match (no_data, records) {
                (Some(Value::Bool(true)), None) => {}
                (None, Some(Value::Object(by_category))) => {
                    for (category, rows) in by_category {
                        known(&category)?;
                        let Value::Array(rows) = rows else {
                            return Err(bad(format!("records.{category} must be an array")));
                        };
                        for row in rows {
                            let Value::Object(row) = row else {
                                return Err(bad(format!("records.{category} must hold objects")));
                            };
                            out.push((category.clone(), row));
                        }
                    }
                    if out.is_empty() {
                        return Err(bad(
                            "no records: answer {\"no_data\": true} instead".to_owned()
                        ));
                    }
                }
                _ => {
                    return Err(bad(
                        "give either \"no_data\": true or \"records\": {category: [...]}"
                            .to_owned(),
                    ));
                }
            }
        }
        OwnerAnswer::Csv { category, body } => {
            known(category)?;
            let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
            let mut reader = csv::Reader::from_reader(body);
            let headers = reader
                .headers()
                .map_err(|e| bad(format!("the header row: {e}")))?
                .clone();
            if headers.iter().any(str::is_empty) {
                return Err(bad("a column of the header row has no name".to_owned()));
            }
            for (n, row) in reader.records().enumerate() {
                let row = row.map_err(|e| bad(format!("row {}: {e}", n + 2)))?;
                let data = headers
                    .iter()
                    .zip(row.iter())
                    .map(|(h, v)| (h.to_owned(), Value::String(v.to_owned())))
                    .collect();
                out.push((category.to_owned(), data));
            }
            if out.is_empty() {
                return Err(bad(
                    "the CSV has no rows: answer {\"no_data\": true} instead".to_owned(),
                ));
            }
        }
    }
    Ok(out)
}

fn waiting_not(source: &str) -> Error {
    Error::new(
        ErrorCode::SourceNotWaiting,
        format!("source {source} is not waiting for its owner's answer"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> subjects::Model {
        subjects::Model {
            id: Uuid::nil(),
            account_id: Some("u1".to_owned()),
            email: Some("li.lei@example.com".to_owned()),
            phone: Some("+8613812345678".to_owned()),
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn owner_answers_are_read_or_refused_with_a_reason() {
        let cats = vec!["account".to_owned(), "tickets".to_owned()];
        let json = |s: &str| parse_answer(OwnerAnswer::Json(s.as_bytes()), &cats);
        assert!(json(r#"{"no_data": true}"#).unwrap().is_empty());
        let rows = json(r#"{"records": {"tickets": [{"id": 1}, {"id": 2}]}}"#).unwrap();
        assert_eq!(rows.len(), 2);
        for bad in [
            "nope",
            "[]",
            r#"{"no_data": false}"#,
            r#"{"records": {"forum": [{"a": 1}]}}"#,
            r#"{"records": {"tickets": [1]}}"#,
            r#"{"records": {"tickets": []}}"#,
            r#"{"no_data": true, "x": 1}"#,
        ] {
            let e = json(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidAnswer, "{bad}");
        }
        let csv = "\u{feff}id,title\n1,\"a, b\"\n2,c\n";
        let rows = parse_answer(
            OwnerAnswer::Csv {
                category: "tickets",
                body: csv.as_bytes(),
            },
            &cats,
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1["title"], "a, b");
        assert!(
            parse_answer(
                OwnerAnswer::Csv {
                    category: "forum",
                    body: csv.as_bytes()
                },
                &cats
            )
            .is_err()
        );
    }

    #[test]
    fn a_code_proves_only_where_it_was_sent() {
        let by_email = proven_identifiers("email_link", subject());
        assert!(by_email.email.is_some() && by_email.mobile.is_none());
        let by_sms = proven_identifiers("sms_code", subject());
        assert!(by_sms.email.is_none() && by_sms.mobile.is_some());
        let by_officer = proven_identifiers("call_back", subject());
        assert!(by_officer.email.is_some() && by_officer.mobile.is_some());
        assert!(
            proven_identifiers("account_login", subject())
                .account_id
                .is_some()
        );
    }
}
