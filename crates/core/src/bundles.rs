//! The bundle of an access, copy or portability request (SPEC §7) and its delivery.
//!
//! When every data source has answered, the worker writes the bundle (`build_bundle`):
//! each source is looked up again and its records stream through a channel into
//! `rightsdesk_export::BundleWriter` on a blocking thread (spooled to disk, never held
//! whole in memory); the finished zip is sealed (`sealing::SealingReader`, under the
//! at-rest key) into [`Storage`](crate::storage::Storage) as it is read, and its plaintext
//! copy removed. Completing the request makes a signed download link (`bundles.link_days`,
//! `bundles.max_downloads`) for the completion notice, and the zip's password, when it has
//! one, goes by another channel. Each download is an event in the request's chain; a
//! bundle is deleted from storage once its links have expired (`purge_bundles`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use rightsdesk_connectors::{Connector, Record, RecordSink, SinkClosed};
use rightsdesk_domain::{Actor, RequestKind};
use rightsdesk_export::{
    BundleMeta, BundleWriter, CategoryInfo, Identifier, IdentifierKind, Lang, Manifest, Password,
    SourceInfo, SourceStatus,
};
use rightsdesk_store::bundles::{self as store, links, status};
use rightsdesk_store::collections::{self, status as collected};
use rightsdesk_store::requests;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::config::BundlePassword;
use crate::notifications::{Notice, Recipient};
use crate::sealing::{OpeningReader, SealingReader};
use crate::storage::Storage;
use crate::{Error, ErrorCode, Services};

/// Records in flight between the look-ups and the writer.
const FEED_DEPTH: usize = 1024;
/// Bundles deleted per run of `purge_bundles`.
const PURGE_BATCH: u64 = 100;
/// Bytes of a download token: link id, expiry, truncated HMAC-SHA256.
const TOKEN_LEN: usize = 16 + 8 + 16;

/// A bundle as officers see it, with its links.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BundleView {
    pub id: Uuid,
    /// `building`, `ready`, `failed`, `superseded` or `purged`.
    pub status: String,
    /// Bytes of the zip.
    pub size: Option<i64>,
    /// SHA-256 of the zip, hex.
    pub sha256: Option<String>,
    /// Entries in the zip (`manifest.json` included).
    pub files: Option<i32>,
    pub records: Option<i64>,
    /// Whether the zip is encrypted with a password sent separately.
    pub password_protected: bool,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    /// When it is deleted from storage.
    pub expires_at: Option<DateTime<Utc>>,
    pub purged_at: Option<DateTime<Utc>>,
    pub links: Vec<LinkView>,
}

/// A download link (never the token itself, which only its recipient holds).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkView {
    pub id: Uuid,
    /// `requester`, or `recipient` (portability).
    pub audience: String,
    pub uses: i32,
    pub max_uses: i32,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A bundle opened for download.
pub struct Download {
    /// e.g. `PR-2026-000123.zip`.
    pub file_name: String,
    /// Bytes of the zip.
    pub size: u64,
    /// The zip's bytes (opened from storage as they are read: this blocks).
    pub body: Box<dyn Read + Send>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("file_name", &self.file_name)
            .field("size", &self.size)
            .finish()
    }
}

/// Bytes per chunk of a streamed bundle.
const CHUNK: usize = 64 * 1024;

/// The bytes `body` yields (a bundle opened from storage), read in 64 KiB chunks on a
/// blocking thread: what a download streams to its client and a push to its endpoint.
/// The reading stops when the receiver is dropped; a read error ends the stream.
pub fn chunks(mut body: Box<dyn Read + Send>) -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buf = vec![0u8; CHUNK];
            match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(buf)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "a stored bundle stopped opening mid-stream");
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    rx
}

/// What the look-ups hand the writer thread.
enum Feed {
    Record {
        source: String,
        category: String,
        data: Map<String, Value>,
    },
    /// An owner's attachment, stored sealed under `key`.
    File {
        source: String,
        name: String,
        key: String,
    },
    /// Everything was fed: write the zip.
    Finish,
}

/// A look-up's records, fed to the writer under their source's name (only those of
/// `allowed` categories, when given: a portability bundle holds the portable ones).
struct FeedSink {
    source: String,
    tx: mpsc::Sender<Feed>,
    allowed: Option<BTreeSet<String>>,
}

impl RecordSink for FeedSink {
    async fn accept(&mut self, record: Record) -> Result<(), SinkClosed> {
        if self
            .allowed
            .as_ref()
            .is_some_and(|a| !a.contains(&record.category))
        {
            return Ok(());
        }
        self.tx
            .send(Feed::Record {
                source: self.source.clone(),
                category: record.category,
                data: record.data,
            })
            .await
            .map_err(|_| SinkClosed)
    }
}

/// What the writer thread made.
struct Written {
    manifest: Manifest,
    size: u64,
    sha256: String,
}

impl Services {
    pub(crate) fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// The bundles of a request, newest first, with their links.
    pub async fn bundles(&self, request_id: Uuid) -> Result<Vec<BundleView>, Error> {
        let conn = self.db().conn();
        let all_links = links::for_request(conn, request_id).await?;
        Ok(store::for_request(conn, request_id)
            .await?
            .into_iter()
            .map(|b| BundleView {
                links: all_links
                    .iter()
                    .filter(|l| l.bundle_id == b.id)
                    .map(|l| LinkView {
                        id: l.id,
                        audience: l.audience.clone(),
                        uses: l.uses,
                        max_uses: l.max_uses,
                        expires_at: l.expires_at,
                        created_at: l.created_at,
                    })
                    .collect(),
                id: b.id,
                status: b.status,
                size: b.size,
                sha256: b.sha256,
                files: b.files,
                records: b.records,
                password_protected: b.password_sealed.is_some(),
                error: b.error,
                created_at: b.created_at,
                ready_at: b.ready_at,
                expires_at: b.expires_at,
                purged_at: b.purged_at,
            })
            .collect())
    }

    /// Queues the bundle once every source of the request has answered. The job's key
    /// names the latest answer, so workers that see the same answers queue it once, and a
    /// source answering again (a re-run) queues a new bundle.
    pub(crate) async fn queue_bundle_when_answered(&self, request_id: Uuid) -> Result<(), Error> {
        let rows = collections::for_request(self.db().conn(), request_id).await?;
        let all_answered = self.sources().sources.iter().all(|s| {
            rows.iter()
                .any(|r| r.source == s.name && collected::is_answered(&r.status))
        });
        if !all_answered {
            return Ok(());
        }
        let latest = rows
            .iter()
            .filter_map(|r| r.finished_at)
            .max()
            .map_or(0, |t| t.timestamp_micros());
        let job = crate::jobs::Job::BuildBundle { request_id };
        self.enqueue_job(
            self.db().conn(),
            &job,
            &format!("{}{latest}", answers_prefix(request_id)),
        )
        .await?;
        Ok(())
    }

    /// Where bundle `id` is spooled and zipped in plaintext while it is written:
    /// `bundles.dir/tmp/<id>/`, one folder per bundle, so that an interrupted build's
    /// leftovers are found by its id.
    fn work_folder(&self, id: Uuid) -> std::path::PathBuf {
        self.config().bundles.dir.join("tmp").join(id.to_string())
    }

    /// Builds of `request` that a worker began and never ended (it died, or lost its
    /// lease): when no other worker holds a build job of this request now, every bundle
    /// of it still `building` is one. Each is marked failed, and its work folder (its
    /// plaintext spool) deleted.
    async fn clear_interrupted_builds(
        &self,
        request: &requests::Model,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let conn = self.db().conn();
        let prefix = answers_prefix(request.id);
        if rightsdesk_store::jobs::held_by_others(conn, &prefix, self.worker_id(), now).await? {
            return Ok(());
        }
        for mut orphan in store::for_request(conn, request.id)
            .await?
            .into_iter()
            .filter(|b| b.status == status::BUILDING)
        {
            let folder = self.work_folder(orphan.id);
            tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&folder) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            })
            .await
            .map_err(|_| Error::internal())?
            .map_err(|e| {
                tracing::error!(rights_request_id = %request.id, error = %e, "an interrupted bundle's work folder could not be deleted");
                Error::new(ErrorCode::Unavailable, "an interrupted bundle's work folder could not be deleted")
            })?;
            tracing::warn!(rights_request_id = %request.id, bundle_id = %orphan.id, "a bundle build was interrupted; building it again");
            orphan.status = status::FAILED.to_owned();
            orphan.error = Some("interrupted: the worker building it stopped".to_owned());
            store::save(conn, orphan).await?;
        }
        Ok(())
    }

    /// The job `build_bundle`: writes the bundle of a request whose sources have all
    /// answered. A source that cannot be reached now fails the job, which is tried again.
    pub(crate) async fn build_bundle(&self, request_id: Uuid) -> Result<(), Error> {
        let conn = self.db().conn();
        let Some(request) = requests::find(conn, request_id).await? else {
            return Ok(());
        };
        if !request.is_open || !self.gives_data(conn, &request).await? || self.sources().is_empty()
        {
            return Ok(());
        }
        let answers = collections::for_request(conn, request_id).await?;
        let answer = |name: &str| answers.iter().find(|r| r.source == name);
        if self
            .sources()
            .sources
            .iter()
            .any(|s| !answer(&s.name).is_some_and(|r| collected::is_answered(&r.status)))
        {
            // A source was re-run since the job was queued: its answer queues another.
            return Ok(());
        }
        let now = self.now();
        self.clear_interrupted_builds(&request, now).await?;
        let id = Uuid::now_v7();
        let password = self.bundle_password(&request);
        let password_sealed = match &password {
            Some(p) => Some(self.seal(id, &json!(p.expose()))?),
            None => None,
        };
        let mut row = store::Model {
            id,
            request_id,
            status: status::BUILDING.to_owned(),
            storage_key: format!("bundles/{request_id}/{id}"),
            size: None,
            sha256: None,
            files: None,
            records: None,
            password_sealed,
            error: None,
            created_at: now,
            ready_at: None,
            expires_at: None,
            purged_at: None,
        };
        store::insert(conn, row.clone()).await?;

        let ids = self.subject_identifiers(&request).await?;
        let meta = BundleMeta {
            reference: request.reference.clone(),
            request_kind: request.kind.clone(),
            subject_identifiers: [
                ids.email.clone().map(|v| (IdentifierKind::Email, v)),
                ids.mobile.clone().map(|v| (IdentifierKind::Mobile, v)),
                ids.account_id
                    .clone()
                    .map(|v| (IdentifierKind::AccountId, v)),
            ]
            .into_iter()
            .flatten()
            .map(|(k, v)| Identifier::new(k, v))
            .collect(),
            created_at: now,
            language: if request.language.to_ascii_lowercase().starts_with("zh") {
                Lang::ZhCn
            } else {
                Lang::En
            },
        };
        let catalogue = &self.sources().catalogue;
        let infos: Vec<SourceInfo> = self
            .sources()
            .sources
            .iter()
            .filter(|s| answered_categories(&request, s).is_none_or(|a| !a.is_empty()))
            .map(|s| SourceInfo {
                name: s.name.clone(),
                display_name_zh: s.title_zh.clone(),
                display_name_en: s.title_en.clone(),
                owner: s.owner.clone(),
                status: if answer(&s.name).is_some_and(|r| r.status == collected::NO_DATA) {
                    SourceStatus::NoData
                } else {
                    SourceStatus::Answered
                },
                categories: s
                    .categories
                    .iter()
                    .filter(|key| answered_categories(&request, s).is_none_or(|a| a.contains(*key)))
                    .map(|key| {
                        let c = catalogue.get(key);
                        CategoryInfo {
                            key: key.clone(),
                            title_zh: c.map_or_else(|| key.clone(), |c| c.title_zh.clone()),
                            title_en: c.map_or_else(|| key.clone(), |c| c.title_en.clone()),
                            purpose_zh: c.map(|c| c.purpose_zh.clone()).unwrap_or_default(),
                            purpose_en: c.map(|c| c.purpose_en.clone()).unwrap_or_default(),
                            columns: Vec::new(),
                        }
                    })
                    .collect(),
            })
            .collect();

        let work_dir = self.work_folder(id);
        let work_folder = work_dir.clone();
        let (tx, rx) = mpsc::channel(FEED_DEPTH);
        let storage = self.storage().clone();
        let ring = self.at_rest();
        let storage_key = row.storage_key.clone();
        let writer = tokio::task::spawn_blocking(move || {
            write_bundle(
                work_dir,
                meta,
                infos,
                password,
                rx,
                &*storage,
                &storage_key,
                &ring,
                id,
            )
        });

        let fed = self.feed_sources(&request, &ids, &answers, &tx).await;
        if fed.is_ok() {
            // The writer stops at the end of the channel; it writes only after Finish.
            let _ = tx.send(Feed::Finish).await;
        }
        drop(tx);
        let written = writer.await.map_err(|_| Error::internal())?;
        // The spool and the unsealed zip are gone with the writer; the folder goes too.
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(work_folder)).await;
        let outcome = match (fed, written) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => {
                tracing::error!(rights_request_id = %request_id, error = %e, "writing a bundle failed");
                Err(Error::new(
                    ErrorCode::Unavailable,
                    "the bundle could not be written",
                ))
            }
            (Ok(()), Ok(w)) => Ok(w),
        };
        let written = match outcome {
            Ok(w) => w,
            Err(e) => {
                row.status = status::FAILED.to_owned();
                row.error = Some(e.message.clone());
                store::save(conn, row).await?;
                metrics::counter!("rightsdesk_bundles_total", "outcome" => "failed").increment(1);
                return Err(e);
            }
        };
        let ready_at = self.now();
        let records: u64 = written
            .manifest
            .sources
            .iter()
            .flat_map(|s| s.categories.iter())
            .map(|c| c.rows)
            .sum();
        row.status = status::READY.to_owned();
        row.size = Some(i64::try_from(written.size).unwrap_or(i64::MAX));
        row.sha256 = Some(written.sha256.clone());
        row.files = Some(i32::try_from(written.manifest.files.len() + 1).unwrap_or(i32::MAX));
        row.records = Some(i64::try_from(records).unwrap_or(i64::MAX));
        row.ready_at = Some(ready_at);
        row.expires_at = Some(ready_at + self.link_lifetime());
        let data = json!({
            "bundle_id": id,
            "size": row.size,
            "sha256": row.sha256,
            "files": row.files,
            "records": row.records,
            "password_protected": row.password_sealed.is_some(),
        });
        let saved = row.clone();
        let superseded = self
            .record_event(
                request_id,
                &Actor::System,
                "bundle_built",
                async move |tx, _, _| {
                    store::save(tx.conn(), saved.clone()).await?;
                    // An earlier bundle nobody was sent is replaced by this one.
                    let mut replaced = Vec::new();
                    for old in store::for_request(tx.conn(), request_id).await? {
                        if old.id != id
                            && old.status == status::READY
                            && links::for_request(tx.conn(), request_id)
                                .await?
                                .iter()
                                .all(|l| l.bundle_id != old.id)
                        {
                            let key = old.storage_key.clone();
                            store::save(
                                tx.conn(),
                                store::Model {
                                    status: status::SUPERSEDED.to_owned(),
                                    purged_at: Some(ready_at),
                                    ..old
                                },
                            )
                            .await?;
                            replaced.push(key);
                        }
                    }
                    Ok((data.clone(), replaced))
                },
            )
            .await?;
        for key in superseded {
            self.delete_stored(key).await;
        }
        metrics::counter!("rightsdesk_bundles_total", "outcome" => "ready").increment(1);
        tracing::info!(rights_request_id = %request_id, bundle_id = %id, size = written.size, records, "bundle written");
        Ok(())
    }

    /// Looks every source up again, feeding what it holds to the writer.
    async fn feed_sources(
        &self,
        request: &requests::Model,
        ids: &rightsdesk_connectors::Identifiers,
        answers: &[collections::Model],
        tx: &mpsc::Sender<Feed>,
    ) -> Result<(), Error> {
        for source in &self.sources().sources {
            let Some(answer) = answers.iter().find(|r| r.source == source.name) else {
                continue;
            };
            let allowed = answered_categories(request, source);
            if answer.status == collected::NO_DATA
                || allowed.as_ref().is_some_and(BTreeSet::is_empty)
            {
                continue;
            }
            let mut sink = FeedSink {
                source: source.name.clone(),
                tx: tx.clone(),
                allowed,
            };
            let found = match &source.connector {
                Connector::Manual => {
                    self.feed_owner_answer(answer, &mut sink).await?;
                    continue;
                }
                connector => connector.lookup(&request.reference, ids, &mut sink).await,
            };
            if let Err(e) = found {
                tracing::warn!(rights_request_id = %request.id, source = %source.name, code = e.code(), "a source failed while the bundle was written");
                return Err(Error::new(
                    ErrorCode::Unavailable,
                    format!("source {}: {e}", source.name),
                ));
            }
        }
        Ok(())
    }

    /// A `manual` source's stored answer, record by record.
    async fn feed_owner_answer(
        &self,
        answer: &collections::Model,
        sink: &mut FeedSink,
    ) -> Result<(), Error> {
        let Some(key) = answer.answer_key.clone() else {
            return Ok(());
        };
        let answer_id = object_id(&key).ok_or_else(Error::internal)?;
        let storage = self.storage().clone();
        let ring = self.at_rest();
        let (tx, source, allowed) = (sink.tx.clone(), sink.source.clone(), sink.allowed.clone());
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            let sealed = storage.get(&key)?;
            let reader = io::BufReader::new(OpeningReader::new(&ring, answer_id, sealed)?);
            for line in io::BufRead::lines(reader) {
                let mut record: Map<String, Value> = serde_json::from_str(&line?)?;
                if let Some(file) = record.remove("file") {
                    let (Some(name), Some(key)) = (file["name"].as_str(), file["key"].as_str())
                    else {
                        return Err(io::Error::other("an answer line names no file"));
                    };
                    if allowed.is_none() {
                        tx.blocking_send(Feed::File {
                            source: source.clone(),
                            name: name.to_owned(),
                            key: key.to_owned(),
                        })
                        .map_err(|_| io::Error::other("the writer stopped"))?;
                    }
                    continue;
                }
                let category = record
                    .remove("category")
                    .and_then(|c| c.as_str().map(str::to_owned))
                    .ok_or_else(|| io::Error::other("an answer line without a category"))?;
                let Some(Value::Object(data)) = record.remove("data") else {
                    return Err(io::Error::other("an answer line without data"));
                };
                if allowed.as_ref().is_some_and(|a| !a.contains(&category)) {
                    continue;
                }
                tx.blocking_send(Feed::Record {
                    source: source.clone(),
                    category,
                    data,
                })
                .map_err(|_| io::Error::other("the writer stopped"))?;
            }
            Ok(())
        })
        .await
        .map_err(|_| Error::internal())?
        .map_err(|e| {
            tracing::error!(error = %e, "an owner's stored answer could not be read");
            Error::new(
                ErrorCode::Unavailable,
                "an owner's answer could not be read",
            )
        })
    }

    /// The password a bundle of `request` gets, if any.
    fn bundle_password(&self, request: &requests::Model) -> Option<Password> {
        let asked = request.details["bundle_password"].as_bool() == Some(true);
        match self.config().bundles.password {
            BundlePassword::Never => None,
            BundlePassword::OnRequest if !asked => None,
            _ => Some(rightsdesk_export::generate_password()),
        }
    }

    fn link_lifetime(&self) -> TimeDelta {
        TimeDelta::days(i64::from(self.config().bundles.link_days))
    }

    /// Deletes a stored object, logging (not failing on) an error: the purge job finds
    /// nothing left to do for it, and an operator sees the warning.
    async fn delete_stored(&self, key: String) {
        let storage = self.storage().clone();
        let result = tokio::task::spawn_blocking(move || storage.delete(&key)).await;
        if !matches!(result, Ok(Ok(()))) {
            tracing::warn!("a stored bundle could not be deleted");
        }
    }

    /// Deletes an owner's stored answer and the files it names.
    pub(crate) async fn delete_answer(&self, key: String) {
        let storage = self.storage().clone();
        let ring = self.at_rest();
        let files = tokio::task::spawn_blocking(move || -> io::Result<Vec<String>> {
            let id = object_id(&key).ok_or_else(|| io::Error::other("not an answer key"))?;
            let reader = io::BufReader::new(OpeningReader::new(&ring, id, storage.get(&key)?)?);
            let mut keys = vec![key];
            for line in io::BufRead::lines(reader) {
                let line: Value = serde_json::from_str(&line?)?;
                if let Some(file) = line["file"]["key"].as_str() {
                    keys.push(file.to_owned());
                }
            }
            Ok(keys)
        })
        .await;
        match files {
            Ok(Ok(keys)) => {
                for key in keys {
                    self.delete_stored(key).await;
                }
            }
            _ => tracing::warn!("an owner's stored answer could not be read to delete it"),
        }
    }

    /// The ready bundle a completion delivers, when the request is answered with one.
    /// `Err(BundleNotReady)` while it is being written.
    pub(crate) async fn bundle_to_deliver(
        &self,
        request: &requests::Model,
    ) -> Result<Option<store::Model>, Error> {
        if !self.gives_data(self.db().conn(), request).await? || self.sources().is_empty() {
            return Ok(None);
        }
        ready_bundle(self.db().conn(), request.id)
            .await?
            .map(Some)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::BundleNotReady,
                    "the bundle is not written yet; complete the request once it is ready",
                )
            })
    }

    /// The completion notice's download link (and the notices with the zip's password and,
    /// for portability, the recipient's link): written in the completion's transaction.
    /// Returns the template values, the sealed values (the link) and the other notices.
    pub(crate) async fn deliver_bundle(
        &self,
        conn: &impl rightsdesk_store::ConnectionTrait,
        request: &requests::Model,
        seq: i64,
    ) -> Result<Option<(Value, Value, Vec<Notice>)>, Error> {
        let kind: RequestKind = crate::requests::parse_stored(&request.kind)?;
        if !self.gives_data(conn, request).await? || self.sources().is_empty() {
            return Ok(None);
        }
        let Some(bundle) = ready_bundle(conn, request.id).await? else {
            return Ok(None);
        };
        let now = self.now();
        let expires_at = now + self.link_lifetime();
        let link = links::Model {
            id: Uuid::now_v7(),
            bundle_id: bundle.id,
            request_id: request.id,
            audience: links::audience::REQUESTER.to_owned(),
            max_uses: i32::try_from(self.config().bundles.max_downloads).unwrap_or(i32::MAX),
            uses: 0,
            expires_at,
            created_at: now,
        };
        links::insert(conn, link.clone()).await?;
        if bundle.expires_at.is_none_or(|e| e < expires_at) {
            store::save(
                conn,
                store::Model {
                    expires_at: Some(expires_at),
                    ..bundle.clone()
                },
            )
            .await?;
        }
        let url = self.download_url(link.id, expires_at);
        let pack = self.pack_of(request);
        let expires_local = expires_at
            .with_timezone(&pack.time_zone)
            .format("%Y-%m-%d %H:%M")
            .to_string();
        let password_notice = match &bundle.password_sealed {
            Some(sealed) => {
                let password = self.unseal(bundle.id, sealed)?;
                // Another channel than the link's: SMS when there is a number, else a
                // second email.
                let to = request
                    .requester_phone
                    .clone()
                    .map(Recipient::Sms)
                    .or_else(|| Recipient::of_request(request));
                let mut params = crate::notifications::request_params(request, pack);
                params["download"] = json!({ "expires_at": expires_local });
                Some(Notice {
                    template: rightsdesk_mail::Template::BundlePassword,
                    to,
                    language: request.language.clone(),
                    request_id: Some(request.id),
                    params,
                    secret: Some(json!({ "password": password })),
                    dedupe_key: format!("bundle_password:{}:{seq}", request.id),
                })
            }
            None => None,
        };
        let download = json!({
            "expires_at": expires_local,
            "max_uses": link.max_uses,
            "password_protected": bundle.password_sealed.is_some(),
            "size": human_size(bundle.size.unwrap_or(0)),
        });
        let mut values = json!({ "download": download });
        let mut notices: Vec<Notice> = password_notice.into_iter().collect();
        if kind == RequestKind::Portability {
            let (notice, transfer) = self
                .deliver_to_recipient(conn, request, &bundle, &link, &download, seq)
                .await?;
            notices.extend(notice);
            values["transfer"] = transfer;
        }
        Ok(Some((values, json!({ "download_url": url }), notices)))
    }

    /// The public address of download link `id`.
    pub(crate) fn download_url(&self, id: Uuid, expires_at: DateTime<Utc>) -> String {
        format!(
            "{}/api/v1/downloads/{}",
            self.config()
                .verification
                .link_base_url
                .trim_end_matches('/'),
            self.download_token(id, expires_at)
        )
    }

    /// A download token for link `id`: the link, its expiry and an HMAC over both.
    fn download_token(&self, id: Uuid, expires_at: DateTime<Utc>) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_LEN);
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend_from_slice(&expires_at.timestamp().to_be_bytes());
        let keys = self.keys();
        let tag = token_tag(&keys.downloads.current(self.now()).key, &bytes);
        bytes.extend_from_slice(&tag[..16]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// `GET /api/v1/downloads/{token}`: checks the link, counts the use, records the
    /// download in the request's chain and opens the bundle.
    pub async fn download(&self, token: &str) -> Result<Download, Error> {
        let invalid = || {
            Error::new(
                ErrorCode::DownloadLinkInvalid,
                "the download link is not valid",
            )
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.as_bytes())
            .map_err(|_| invalid())?;
        if bytes.len() != TOKEN_LEN {
            return Err(invalid());
        }
        // Signed by any version of the download key: links outlive a rotation.
        let keys = self.keys();
        if !keys
            .downloads
            .newest_first()
            .any(|v| constant_time_eq(&token_tag(&v.key, &bytes[..24])[..16], &bytes[24..]))
        {
            return Err(invalid());
        }
        let link_id = Uuid::from_slice(&bytes[..16]).map_err(|_| invalid())?;
        let expires = i64::from_be_bytes(bytes[16..24].try_into().map_err(|_| invalid())?);
        let conn = self.db().conn();
        let link = links::get(conn, link_id).await?.ok_or_else(invalid)?;
        let bundle = store::get(conn, link.bundle_id)
            .await?
            .ok_or_else(invalid)?;
        if bundle.status != status::READY {
            return Err(Error::new(
                ErrorCode::BundlePurged,
                "the bundle was deleted",
            ));
        }
        if self.now().timestamp() >= expires {
            return Err(Error::new(
                ErrorCode::DownloadLinkExpired,
                "the download link has expired",
            ));
        }
        let data = json!({
            "bundle_id": bundle.id,
            "link_id": link.id,
            "audience": link.audience,
        });
        let (link_id, uses, max_uses) = (link.id, link.uses, link.max_uses);
        self.record_event(
            link.request_id,
            &Actor::Requester,
            "bundle_downloaded",
            async move |tx, _, _| {
                if !links::take_use(tx.conn(), link_id).await? {
                    return Err(Error::new(
                        ErrorCode::DownloadLimitReached,
                        "the download link was used as often as it allows",
                    ));
                }
                let mut data = data.clone();
                data["use"] = json!(uses + 1);
                data["max_uses"] = json!(max_uses);
                Ok((data, ()))
            },
        )
        .await?;
        metrics::counter!("rightsdesk_bundle_downloads_total").increment(1);
        let body = self.open_bundle(&bundle).await?;
        let reference = requests::find(conn, link.request_id)
            .await?
            .map_or_else(|| "bundle".to_owned(), |r| r.reference);
        Ok(Download {
            file_name: format!("{reference}.zip"),
            size: u64::try_from(bundle.size.unwrap_or(0)).unwrap_or(0),
            body,
        })
    }

    /// The zip of a stored bundle, opened as it is read (the reads block).
    pub(crate) async fn open_bundle(
        &self,
        bundle: &store::Model,
    ) -> Result<Box<dyn Read + Send>, Error> {
        let storage = self.storage().clone();
        let ring = self.at_rest();
        let (key, id) = (bundle.storage_key.clone(), bundle.id);
        tokio::task::spawn_blocking(move || -> io::Result<Box<dyn Read + Send>> {
            let sealed = storage.get(&key)?;
            Ok(Box::new(OpeningReader::new(&ring, id, sealed)?))
        })
        .await
        .map_err(|_| Error::internal())?
        .map_err(|e| {
            tracing::error!(bundle_id = %id, error = %e, "a stored bundle could not be opened");
            Error::internal()
        })
    }

    /// The job `purge_bundles`: deletes the bundles whose links have expired. Returns how
    /// many.
    pub async fn purge_bundles(&self) -> Result<usize, Error> {
        let mut purged = 0;
        loop {
            let now = self.now();
            let due = store::expired(self.db().conn(), now, PURGE_BATCH).await?;
            if due.is_empty() {
                return Ok(purged);
            }
            for bundle in due {
                self.delete_stored(bundle.storage_key.clone()).await;
                // The owners' answers it was written from go with it once the request
                // is closed (an open one may need its bundle written again).
                let closed = requests::find(self.db().conn(), bundle.request_id)
                    .await?
                    .is_none_or(|r| !r.is_open);
                if closed {
                    for mut answer in collections::for_request(self.db().conn(), bundle.request_id)
                        .await?
                        .into_iter()
                        .filter(|a| a.answer_key.is_some())
                    {
                        if let Some(key) = answer.answer_key.take() {
                            self.delete_answer(key).await;
                        }
                        collections::save(self.db().conn(), answer).await?;
                    }
                }
                let (id, request_id) = (bundle.id, bundle.request_id);
                self.record_event(
                    request_id,
                    &Actor::System,
                    "bundle_purged",
                    async move |tx, _, now| {
                        store::save(
                            tx.conn(),
                            store::Model {
                                status: status::PURGED.to_owned(),
                                purged_at: Some(now),
                                ..bundle.clone()
                            },
                        )
                        .await?;
                        Ok((json!({ "bundle_id": id }), ()))
                    },
                )
                .await?;
                purged += 1;
            }
        }
    }

    /// What the request's sources hold, per source and category (counts): the access
    /// summary the requester sees once the request is complete.
    pub(crate) async fn data_summary(
        &self,
        request: &requests::Model,
    ) -> Result<Option<Vec<SourceSummary>>, Error> {
        let state: rightsdesk_domain::State = crate::requests::parse_stored(&request.state)?;
        if !self.gives_data(self.db().conn(), request).await?
            || state != rightsdesk_domain::State::Completed
            || self.sources().is_empty()
        {
            return Ok(None);
        }
        let rows = collections::for_request(self.db().conn(), request.id).await?;
        let catalogue = &self.sources().catalogue;
        Ok(Some(
            rows.into_iter()
                .filter_map(|row| {
                    let source = self.sources().get(&row.source)?;
                    let counts: BTreeMap<String, u64> =
                        serde_json::from_value(row.records).unwrap_or_default();
                    Some(SourceSummary {
                        source: source.name.clone(),
                        title_zh: source.title_zh.clone(),
                        title_en: source.title_en.clone(),
                        categories: counts
                            .into_iter()
                            .filter(|(key, n)| {
                                *n > 0
                                    && answered_categories(request, source)
                                        .is_none_or(|a| a.contains(key))
                            })
                            .map(|(key, records)| {
                                let c = catalogue.get(&key);
                                CategorySummary {
                                    title_zh: c.map(|c| c.title_zh.clone()),
                                    title_en: c.map(|c| c.title_en.clone()),
                                    purpose_zh: c.map(|c| c.purpose_zh.clone()),
                                    purpose_en: c.map(|c| c.purpose_en.clone()),
                                    category: key,
                                    records,
                                }
                            })
                            .collect(),
                    })
                })
                .collect(),
        ))
    }
}

/// One source in the requester's access summary.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceSummary {
    pub source: String,
    pub title_zh: String,
    pub title_en: String,
    /// The categories it holds data of (none: it holds nothing about the subject).
    pub categories: Vec<CategorySummary>,
}

/// One category of a source in the access summary.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CategorySummary {
    pub category: String,
    pub title_zh: Option<String>,
    pub title_en: Option<String>,
    /// Why it is processed, as the privacy policy says.
    pub purpose_zh: Option<String>,
    pub purpose_en: Option<String>,
    pub records: u64,
}

/// The writer thread: takes records until `Finish`, writes the zip beside the spool,
/// seals it into storage while hashing it, and removes the plaintext.
#[allow(clippy::too_many_arguments)]
fn write_bundle(
    work_dir: PathBuf,
    meta: BundleMeta,
    sources: Vec<SourceInfo>,
    password: Option<Password>,
    mut rx: mpsc::Receiver<Feed>,
    storage: &dyn Storage,
    key: &str,
    ring: &crate::sealing::CipherRing,
    id: Uuid,
) -> Result<Written, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    std::fs::create_dir_all(&work_dir).map_err(|e| fail("creating the work directory", &e))?;
    let mut writer = BundleWriter::create(&work_dir, meta).map_err(|e| fail("spool", &e))?;
    for info in sources {
        writer.add_source(info).map_err(|e| fail("source", &e))?;
    }
    loop {
        match rx.blocking_recv() {
            Some(Feed::Record {
                source,
                category,
                data,
            }) => writer
                .add_record(&source, &category, &data)
                .map_err(|e| fail("record", &e))?,
            Some(Feed::File { source, name, key }) => {
                let file_id = object_id(&key).ok_or_else(|| "a file key".to_owned())?;
                let sealed = storage.get(&key).map_err(|e| fail("attachment", &e))?;
                let mut opened = OpeningReader::new(ring, file_id, sealed)
                    .map_err(|e| fail("attachment", &e))?;
                writer
                    .add_file(&source, &name, &mut opened)
                    .map_err(|e| fail("attachment", &e))?;
            }
            Some(Feed::Finish) => break,
            // The look-ups gave up: nothing is written (the spool goes with the writer).
            None => return Err("the look-ups stopped".to_owned()),
        }
    }
    let zip = work_dir.join(format!("{id}.zip"));
    let manifest = writer
        .finish(&zip, password.as_ref())
        .map_err(|e| fail("zip", &e))?;
    let sealed = (|| -> io::Result<(u64, String)> {
        let file = std::fs::File::open(&zip)?;
        let mut hashing = HashingReader {
            inner: io::BufReader::with_capacity(256 * 1024, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        storage.put(key, &mut SealingReader::new(ring, id, &mut hashing)?)?;
        Ok((hashing.bytes, hex::encode(hashing.hasher.finalize())))
    })();
    let _ = std::fs::remove_file(&zip);
    let (size, sha256) = sealed.map_err(|e| fail("storing", &e))?;
    Ok(Written {
        manifest,
        size,
        sha256,
    })
}

/// The categories of `source` a request is answered with, when not all of them: a
/// portability request transfers only what was given with consent or under contract (the
/// source's `portable` categories), and a requester who named `categories` gets those.
/// Attachments, which have no category, come only with all of them.
pub(crate) fn answered_categories(
    request: &requests::Model,
    source: &rightsdesk_connectors::config::Source,
) -> Option<BTreeSet<String>> {
    let mut allowed = (request.kind == "portability").then(|| source.portable.clone());
    let named: BTreeSet<String> = request.details["categories"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if !named.is_empty() {
        let base = allowed.unwrap_or_else(|| source.categories.iter().cloned().collect());
        allowed = Some(base.intersection(&named).cloned().collect());
    }
    allowed
}

/// The newest ready bundle of a request, the one a completion delivers.
pub(crate) async fn ready_bundle(
    conn: &impl rightsdesk_store::ConnectionTrait,
    request_id: Uuid,
) -> Result<Option<store::Model>, Error> {
    Ok(store::for_request(conn, request_id)
        .await?
        .into_iter()
        .find(|b| b.status == status::READY))
}

/// The id a stored object was sealed for: the last part of its key.
pub(crate) fn object_id(key: &str) -> Option<Uuid> {
    key.rsplit('/').next().and_then(|s| s.parse().ok())
}

/// Hashes and counts what passes through.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// The start of the keys of a request's build jobs (`bundle:<request>:<latest answer>`).
fn answers_prefix(request_id: Uuid) -> String {
    format!("bundle:{request_id}:")
}

/// The HMAC a download token carries, under one version of the download key.
fn token_tag(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(b"rightsdesk-download-v1");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `1.2 MB`, `850 KB`, `312 B`.
fn human_size(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} KB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(312), "312 B");
        assert_eq!(human_size(850_000), "850 KB");
        assert_eq!(human_size(1_234_567), "1.2 MB");
        assert_eq!(human_size(2_500_000_000), "2.5 GB");
    }

    #[test]
    fn tags_compare_in_full() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
