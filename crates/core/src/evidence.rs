//! Evidence (SPEC §2, §5): documents a next of kin, a guardian or an agent uploads to
//! show they may act. Files are PDF, JPEG or PNG (recognised from their bytes), at most
//! `evidence.max_bytes`, encrypted at rest with AES-256-GCM under the configured key
//! (the evidence id is the associated data, so a file cannot be moved to another
//! record), readable only by officers who work requests (every opening is an event in
//! the request's chain), and destroyed `evidence.retention_days` after the request
//! closes. Officers accept or reject each file with the `accept_evidence` and
//! `reject_evidence` actions; acceptance verifies a request that awaits verification.

use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use rightsdesk_domain::evidence::{EvidenceKind, FileType};
use rightsdesk_domain::{Action, Actor, Permission, ValidationErrors};
use rightsdesk_store::{StoreError, evidence, requests};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{Officer, sha256_hex};
use crate::officers::require;

use crate::{Error, ErrorCode, Services};

/// The longest file name kept (longer ones are cut).
const FILE_NAME_CHARS: usize = 200;
/// Files destroyed per transaction by the retention job.
const PURGE_BATCH: u64 = 100;

/// `evidence.encryption_key` as bytes, when it is 32 bytes of base64.
pub(crate) fn decode_key(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .filter(|k| k.len() == 32)
}

/// A file as received, before any check.
#[derive(Debug)]
pub struct Upload {
    /// The `kind` form field, unparsed.
    pub kind: Option<String>,
    /// The name the client gave the file, if any.
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

/// An evidence file as officers see it (never its bytes).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvidenceView {
    pub id: Uuid,
    /// `id_document`, `death_certificate`, `relationship_proof`, `power_of_attorney`,
    /// `guardian_proof` or `other`.
    pub kind: String,
    pub content_type: String,
    pub file_name: Option<String>,
    pub size_bytes: i64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
    /// `pending`, `accepted` or `rejected`.
    pub status: String,
    pub reviewed_by: Option<Uuid>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub review_note: Option<String>,
    /// When the file was destroyed after the retention period.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<evidence::Model> for EvidenceView {
    fn from(e: evidence::Model) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            content_type: e.content_type,
            file_name: e.file_name,
            size_bytes: e.size_bytes,
            sha256: e.sha256,
            uploaded_by: e.uploaded_by,
            uploaded_at: e.uploaded_at,
            status: e.status,
            reviewed_by: e.reviewed_by,
            reviewed_at: e.reviewed_at,
            review_note: e.review_note,
            deleted_at: e.deleted_at,
        }
    }
}

/// An evidence file as its requester sees it: what was received and how it was judged.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequesterEvidence {
    pub id: Uuid,
    pub kind: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub uploaded_at: DateTime<Utc>,
    /// `pending`, `accepted` or `rejected`.
    pub status: String,
    /// Why it was rejected, as the officer wrote it.
    pub review_note: Option<String>,
}

impl From<evidence::Model> for RequesterEvidence {
    fn from(e: evidence::Model) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            content_type: e.content_type,
            size_bytes: e.size_bytes,
            sha256: e.sha256,
            uploaded_at: e.uploaded_at,
            status: e.status,
            review_note: e.review_note,
        }
    }
}

/// A decrypted file, for an officer.
#[derive(Debug)]
pub struct EvidenceFile {
    pub content_type: String,
    /// A file name safe for `Content-Disposition`.
    pub download_name: String,
    pub bytes: Vec<u8>,
}

impl Services {
    /// The largest file accepted, for the HTTP layer to stop reading early.
    pub fn evidence_max_bytes(&self) -> u64 {
        self.config().evidence.max_bytes
    }

    /// `POST /api/v1/requests/{id}/evidence`: the requester uploads a file. Nothing is
    /// stored unless every check passes.
    pub async fn upload_evidence(
        &self,
        id: Uuid,
        token: Option<&str>,
        upload: Upload,
    ) -> Result<RequesterEvidence, Error> {
        let row = self.requester_request(id, token).await?;
        if !row.is_open {
            return Err(closed());
        }
        let kind = read_kind(upload.kind.as_deref())?;
        let file = self
            .store_evidence(
                row.id,
                Actor::Requester,
                kind,
                upload.file_name.as_deref(),
                upload.bytes,
            )
            .await?;
        Ok(file.into())
    }

    /// Checks and stores one file for request `request_id` (the requester's upload, or
    /// an email attachment), with its event. Nothing is stored unless every check
    /// passes.
    pub(crate) async fn store_evidence(
        &self,
        request_id: Uuid,
        actor: Actor,
        kind: EvidenceKind,
        file_name: Option<&str>,
        bytes: Vec<u8>,
    ) -> Result<evidence::Model, Error> {
        let max_bytes = self.config().evidence.max_bytes;
        let max_files = self.config().evidence.max_files_per_request;
        if bytes.len() as u64 > max_bytes {
            return Err(too_large(max_bytes));
        }
        let file_type = FileType::sniff(&bytes).ok_or_else(|| {
            Error::new(
                ErrorCode::EvidenceTypeNotAllowed,
                "evidence must be a PDF, JPEG or PNG file",
            )
        })?;
        let evidence_id = Uuid::now_v7();
        let size = i64::try_from(bytes.len()).map_err(|_| Error::internal())?;
        let file_name = file_name.and_then(clean_file_name);
        let (sha256, sealed) = self.seal_evidence(evidence_id, bytes).await?;
        let uploaded_by = actor.to_stored();
        let file = self
            .record_event(
                request_id,
                &actor,
                "evidence_uploaded",
                async move |tx, row, now| {
                    if !row.is_open {
                        return Err(closed());
                    }
                    let live = evidence::count_live(tx.conn(), row.id).await?;
                    if live >= u64::from(max_files) {
                        return Err(Error::new(
                            ErrorCode::EvidenceLimitReached,
                            format!("the request already holds {max_files} files"),
                        ));
                    }
                    let file = evidence::Model {
                        id: evidence_id,
                        request_id: row.id,
                        kind: kind.as_str().to_owned(),
                        content_type: file_type.as_str().to_owned(),
                        file_name: file_name.clone(),
                        size_bytes: size,
                        sha256: sha256.clone(),
                        uploaded_by: uploaded_by.clone(),
                        uploaded_at: now,
                        status: evidence::PENDING.to_owned(),
                        reviewed_by: None,
                        reviewed_at: None,
                        review_note: None,
                        deleted_at: None,
                    };
                    evidence::insert(tx.conn(), file.clone(), sealed.clone()).await?;
                    let data = json!({
                        "evidence_id": evidence_id,
                        "kind": kind,
                        "content_type": file_type.as_str(),
                        "size_bytes": size,
                        "sha256": sha256,
                    });
                    Ok((data, file))
                },
            )
            .await?;
        metrics::counter!("rightsdesk_evidence_uploaded_total", "kind" => kind.as_str())
            .increment(1);
        tracing::info!(rights_request_id = %request_id, evidence_id = %evidence_id, size_bytes = size, "evidence uploaded");
        Ok(file)
    }

    /// The requester's own files, without their bytes.
    pub(crate) async fn requester_evidence(
        &self,
        request_id: Uuid,
    ) -> Result<Vec<RequesterEvidence>, Error> {
        Ok(evidence::for_request(self.db().conn(), request_id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// The request's files as officers see them (any role that reads requests).
    pub(crate) async fn officer_evidence(
        &self,
        request_id: Uuid,
    ) -> Result<Vec<EvidenceView>, Error> {
        Ok(evidence::for_request(self.db().conn(), request_id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// `GET /api/v1/officer/requests/{id}/evidence/{evidence_id}/content`: an officer
    /// who works requests opens a file. The opening is recorded in the request's chain
    /// before a byte is returned; auditors and administrators are refused.
    pub async fn open_evidence(
        &self,
        officer: &Officer,
        request_id: Uuid,
        evidence_id: Uuid,
    ) -> Result<EvidenceFile, Error> {
        require(officer, Permission::WorkRequests)?;
        let conn = self.db().conn();
        let file = evidence::find(conn, request_id, evidence_id)
            .await?
            .ok_or_else(Error::not_found)?;
        if file.deleted_at.is_some() {
            return Err(deleted());
        }
        let actor = Actor::Officer { id: officer.id };
        let sealed = self
            .record_event(request_id, &actor, "evidence_viewed", async |tx, _, _| {
                // Read inside the transaction: a file destroyed meanwhile is not returned.
                let sealed = evidence::sealed(tx.conn(), evidence_id)
                    .await?
                    .ok_or_else(deleted)?;
                let data = json!({ "evidence_id": evidence_id, "sha256": file.sha256 });
                Ok((data, sealed))
            })
            .await?;
        tracing::info!(rights_request_id = %request_id, evidence_id = %evidence_id, officer_id = %officer.id, "evidence opened");
        let bytes = self.unseal_evidence(sealed).await?;
        let extension = file
            .content_type
            .parse::<FileType>()
            .map_or("bin", FileType::extension);
        Ok(EvidenceFile {
            content_type: file.content_type,
            download_name: format!("evidence-{evidence_id}.{extension}"),
            bytes,
        })
    }

    /// Whether a next of kin has shown both the death and the relationship (PIPL 49)
    /// once `accepting` is accepted too: an accepted death certificate and an accepted
    /// proof of relationship.
    pub(crate) async fn kin_proofs_complete(
        &self,
        conn: &impl rightsdesk_store::ConnectionTrait,
        row: &requests::Model,
        accepting: Option<Uuid>,
    ) -> Result<bool, Error> {
        let kinds: Vec<String> = evidence::for_request(conn, row.id)
            .await?
            .into_iter()
            .filter(|f| {
                f.deleted_at.is_none()
                    && (f.status == evidence::ACCEPTED || Some(f.id) == accepting)
            })
            .map(|f| f.kind)
            .collect();
        Ok([
            EvidenceKind::DeathCertificate,
            EvidenceKind::RelationshipProof,
        ]
        .iter()
        .all(|k| kinds.iter().any(|have| have == k.as_str())))
    }

    /// Records an officer's decision on a pending file of `row`, inside the caller's
    /// transaction; returns the file's kind for the event and the notice.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn review_evidence(
        &self,
        conn: &impl rightsdesk_store::ConnectionTrait,
        row: &requests::Model,
        evidence_id: Uuid,
        action: Action,
        officer_id: Uuid,
        data: &serde_json::Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<String, Error> {
        let file = evidence::find(conn, row.id, evidence_id)
            .await?
            .filter(|f| f.deleted_at.is_none())
            .ok_or_else(|| {
                Error::from(ValidationErrors::single(
                    "evidence_id",
                    "unknown_evidence",
                    "this request holds no evidence file with this id",
                ))
            })?;
        if file.status != evidence::PENDING {
            return Err(Error::new(
                ErrorCode::EvidenceAlreadyReviewed,
                format!("this file was already {}", file.status),
            ));
        }
        let (status, note_key) = if action == Action::AcceptEvidence {
            (evidence::ACCEPTED, "note")
        } else {
            (evidence::REJECTED, "reason")
        };
        let note = data
            .get(note_key)
            .and_then(Value::as_str)
            .map(str::to_owned);
        evidence::review(conn, evidence_id, status, officer_id, note, now).await?;
        Ok(file.kind)
    }

    /// Destroys the files of requests closed more than `evidence.retention_days` ago;
    /// each destruction is an `evidence_deleted` event. Returns how many it destroyed.
    /// Safe to run from several instances: a file destroyed by another is skipped.
    pub async fn purge_evidence(&self) -> Result<usize, Error> {
        let days = i64::from(self.config().evidence.retention_days);
        let cutoff = self.now() - TimeDelta::days(days);
        let mut purged = 0;
        loop {
            let due = evidence::due_for_deletion(self.db().conn(), cutoff, PURGE_BATCH).await?;
            let batch = due.len();
            for file in due {
                if self.destroy_evidence(&file).await? {
                    purged += 1;
                }
            }
            if (batch as u64) < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }

    /// Destroys one file and records it; false when another instance did it first.
    async fn destroy_evidence(&self, file: &evidence::Model) -> Result<bool, Error> {
        let (event, id) = ("evidence_deleted", file.id);
        let destroyed = self
            .record_event(
                file.request_id,
                &Actor::System,
                event,
                async move |tx, _, now| {
                    match evidence::destroy(tx.conn(), id, now).await {
                        Ok(()) => {}
                        Err(StoreError::Conflict) => return Err(deleted()),
                        Err(e) => return Err(e.into()),
                    }
                    let data = json!({ "evidence_id": id, "reason": "retention_period_ended" });
                    Ok((data, ()))
                },
            )
            .await;
        match destroyed {
            Ok(()) => {
                tracing::info!(rights_request_id = %file.request_id, evidence_id = %file.id, "evidence destroyed after the retention period");
                Ok(true)
            }
            // Another instance destroyed it first.
            Err(e) if e.code == ErrorCode::EvidenceDeleted => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// SHA-256 of `bytes` and the encrypted row, computed off the async runtime.
    async fn seal_evidence(
        &self,
        id: Uuid,
        bytes: Vec<u8>,
    ) -> Result<(String, evidence::blob::Model), Error> {
        let ring = self.at_rest();
        tokio::task::spawn_blocking(move || {
            let sha256 = sha256_hex(&bytes);
            let (key_id, nonce, ciphertext) = ring.seal(id, &bytes)?;
            Ok((
                sha256,
                evidence::blob::Model {
                    evidence_id: id,
                    key_id,
                    nonce: nonce.to_vec(),
                    ciphertext,
                },
            ))
        })
        .await
        .map_err(|_| Error::internal())?
    }

    async fn unseal_evidence(&self, sealed: evidence::blob::Model) -> Result<Vec<u8>, Error> {
        let ring = self.at_rest();
        tokio::task::spawn_blocking(move || {
            ring.open(Some(&sealed.key_id), sealed.evidence_id, &sealed.nonce, &sealed.ciphertext).inspect_err(
                |_| {
                    tracing::error!(evidence_id = %sealed.evidence_id, "evidence failed authentication");
                },
            )
        })
        .await
        .map_err(|_| Error::internal())?
    }
}

fn read_kind(kind: Option<&str>) -> Result<EvidenceKind, Error> {
    let Some(kind) = kind else {
        return Err(Error::from(ValidationErrors::single(
            "kind",
            "required",
            "say what the file is: id_document, death_certificate, relationship_proof, power_of_attorney, guardian_proof or other",
        )));
    };
    kind.trim()
        .parse()
        .map_err(|m: String| Error::from(ValidationErrors::single("kind", "invalid_value", m)))
}

/// The last path component of a client's file name, without control characters, cut
/// to a sane length; `None` when nothing is left.
fn clean_file_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(FILE_NAME_CHARS)
        .collect();
    let clean = clean.trim().to_owned();
    (!clean.is_empty()).then_some(clean)
}

pub fn too_large(max: u64) -> Error {
    Error::new(
        ErrorCode::EvidenceTooLarge,
        format!("the file is larger than {max} bytes"),
    )
    .with_details(json!({ "max_bytes": max }))
}

fn closed() -> Error {
    Error::new(
        ErrorCode::RequestClosed,
        "the request is closed; no more evidence can be added",
    )
}

fn deleted() -> Error {
    Error::new(
        ErrorCode::EvidenceDeleted,
        "the file was destroyed after the retention period",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(
            clean_file_name("C:\\Users\\x\\死亡证明.pdf").as_deref(),
            Some("死亡证明.pdf")
        );
        assert_eq!(
            clean_file_name("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(clean_file_name("a\r\nb.png").as_deref(), Some("ab.png"));
        assert_eq!(clean_file_name("  /  "), None);
        assert_eq!(
            clean_file_name(&"x".repeat(500)).map(|n| n.len()),
            Some(200)
        );
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        let good = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(decode_key(&good).map(|k| k.len()), Some(32));
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        assert!(decode_key(&short).is_none());
        assert!(decode_key("not base64!").is_none());
    }
}
