//! The evidence export (SPEC §11): the whole history of one request as one archive for a
//! regulator or a court, which anyone can check without the service.
//!
//! The archive is a zip:
//! - `request.json`: the request as stored, with its chain head;
//! - `events.json`: its hash-chained event log, every event with its `prev_hash` and
//!   `hash`, ending with the `evidence_exported` event that records this export;
//! - `records/<table>.json`: every other row about it (notifications sent, verifications,
//!   evidence files' metadata, emails received, internal notes, each data source's
//!   collection, erasure and change, consent changes, bundles and download links, the
//!   subject). Secrets kept beside them are left out (see `rightsdesk_store::history`);
//!   evidence documents themselves are not included;
//! - `certificate.json`: the signed deletion certificate, when one was issued;
//! - `manifest.json`: each file's size and SHA-256, and what the export is.
//!
//! The whole archive is signed with the service's Ed25519 key, the one that signs
//! deletion certificates: the signature covers every byte of the zip as written with an
//! empty archive comment, and is then stored as the comment, as JSON in one canonical
//! form. Verifying checks the signature, that the comment is exactly that canonical form,
//! each file against the manifest (nothing missing, nothing added), and the event chain
//! recomputed from `events.json` up to the head in `request.json`. Any byte changed
//! anywhere in the file therefore fails one of these checks.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use rightsdesk_domain::Actor;
use rightsdesk_store::{events, history, requests};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::{Error, ErrorCode, Services};

/// `manifest.json`'s `type`.
pub const EXPORT_TYPE: &str = "rightsdesk.evidence_export.v1";

/// The end-of-central-directory record of a zip: its signature and fixed size.
const EOCD_SIGNATURE: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
const EOCD_LEN: usize = 22;

/// A written export.
#[derive(Debug)]
pub struct EvidenceExport {
    pub reference: String,
    pub bytes: Vec<u8>,
    pub events: usize,
    pub files: usize,
}

/// The archive comment: the signature over the unsigned archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Seal {
    #[serde(rename = "type")]
    kind: String,
    algorithm: String,
    key_id: String,
    public_key: String,
    signature: String,
}

/// What `rightsdesk export-evidence verify` found in a sound export.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedExport {
    pub reference: String,
    pub exported_at: String,
    pub key_id: String,
    pub events: usize,
    pub files_checked: usize,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Services {
    /// Writes the evidence export of the request `reference`. The export is itself
    /// recorded first, as `evidence_exported` on the request's chain (with `reason`),
    /// so the archive ends with its own making.
    pub async fn export_evidence(
        &self,
        reference: &str,
        reason: Option<&str>,
    ) -> Result<EvidenceExport, Error> {
        let conn = self.db().conn();
        let row = requests::find_by_reference(conn, reference)
            .await?
            .ok_or_else(Error::not_found)?;
        let data = json!({ "via": "rightsdesk export-evidence", "reason": reason });
        self.record_event(
            row.id,
            &Actor::System,
            "evidence_exported",
            async |_, _, _| Ok((data.clone(), ())),
        )
        .await?;
        let chain = events::for_request(conn, row.id).await?;
        let tables = history::related_rows(conn, row.id, row.subject_id).await?;
        let certificate = chain
            .iter()
            .rev()
            .find_map(|e| e.data.get("certificate").cloned());
        let request = history::request_row(conn, row.id)
            .await?
            .ok_or_else(Error::not_found)?;
        let events_json: Vec<Value> = chain
            .iter()
            .map(|e| {
                json!({
                    "id": e.id, "request_id": e.request_id, "seq": e.seq, "at": e.at,
                    "actor": e.actor, "event_type": e.event_type, "data": e.data,
                    "prev_hash": e.prev_hash, "hash": e.hash,
                })
            })
            .collect();
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("request.json".to_owned(), pretty(&request)),
            ("events.json".to_owned(), pretty(&Value::Array(events_json))),
        ];
        for (table, rows) in tables {
            files.push((format!("records/{table}.json"), pretty(&Value::Array(rows))));
        }
        if let Some(certificate) = certificate {
            files.push(("certificate.json".to_owned(), pretty(&certificate)));
        }
        let manifest = json!({
            "type": EXPORT_TYPE,
            "reference": row.reference,
            "exported_at": self.now(),
            "service_version": env!("CARGO_PKG_VERSION"),
            "events": chain.len(),
            // As read after the export's own event was appended.
            "head_hash": request["head_hash"],
            "files": files.iter().map(|(name, bytes)| json!({
                "path": name, "size": bytes.len(), "sha256": sha256_hex(bytes),
            })).collect::<Vec<_>>(),
        });
        let count = files.len();
        files.push(("manifest.json".to_owned(), pretty(&manifest)));
        // Zipped and signed off the async runtime.
        let (keys, now) = (self.keys(), self.now());
        let bytes = tokio::task::spawn_blocking(move || {
            let key = &keys.certificates.current(now).key;
            seal(write_zip(&files)?, |message| {
                let public = key.public();
                Seal {
                    kind: EXPORT_TYPE.to_owned(),
                    algorithm: "Ed25519".to_owned(),
                    key_id: key.key_id(),
                    public_key: B64.encode(public.as_bytes()),
                    signature: B64.encode(key.sign(message).to_bytes()),
                }
            })
        })
        .await
        .map_err(|_| Error::internal())??;
        tracing::info!(rights_request_id = %row.id, events = chain.len(), "evidence exported");
        Ok(EvidenceExport {
            reference: row.reference,
            bytes,
            events: chain.len(),
            files: count,
        })
    }
}

fn pretty(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

fn write_zip(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, Error> {
    let failed = |e: zip::result::ZipError| {
        Error::new(
            ErrorCode::Internal,
            format!("writing the evidence export: {e}"),
        )
    };
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        zip.start_file(name.as_str(), options).map_err(failed)?;
        zip.write_all(bytes).map_err(|e| failed(e.into()))?;
    }
    Ok(zip.finish().map_err(failed)?.into_inner())
}

/// The comment's one canonical form: compact JSON, keys in declaration order.
fn comment_bytes(seal: &Seal) -> Vec<u8> {
    serde_json::to_vec(seal).unwrap_or_default()
}

/// Signs `unsigned` (a zip whose comment is empty, so it ends with the zero comment
/// length) and stores the seal as its comment.
fn seal(mut unsigned: Vec<u8>, sign: impl FnOnce(&[u8]) -> Seal) -> Result<Vec<u8>, Error> {
    if !unsigned.ends_with(&[0, 0]) || unsigned.len() < EOCD_LEN {
        return Err(Error::internal());
    }
    let comment = comment_bytes(&sign(&unsigned));
    let len = u16::try_from(comment.len()).map_err(|_| Error::internal())?;
    let at = unsigned.len() - 2;
    unsigned[at..].copy_from_slice(&len.to_le_bytes());
    unsigned.extend_from_slice(&comment);
    Ok(unsigned)
}

/// Checks an export file; `expected_key` (base64) also requires that key to have signed
/// it. `Err` says what is wrong.
pub fn verify_export(file: &[u8], expected_key: Option<&str>) -> Result<VerifiedExport, String> {
    // The end-of-central-directory record whose comment runs exactly to the end.
    let eocd = (0..=file.len().saturating_sub(EOCD_LEN))
        .rev()
        .take(EOCD_LEN + usize::from(u16::MAX) + 1)
        .find(|&at| {
            file[at..at + 4] == EOCD_SIGNATURE
                && at + EOCD_LEN + usize::from(u16::from_le_bytes([file[at + 20], file[at + 21]]))
                    == file.len()
        })
        .ok_or("not an evidence export: no zip end record with a seal")?;
    let comment = &file[eocd + EOCD_LEN..];
    let seal: Seal = serde_json::from_slice(comment)
        .map_err(|_| "the seal (the archive comment) is not an evidence export's".to_owned())?;
    if comment_bytes(&seal) != comment {
        return Err("the seal is not in its canonical form: it was edited".to_owned());
    }
    if seal.kind != EXPORT_TYPE || seal.algorithm != "Ed25519" {
        return Err(format!("unknown seal {} / {}", seal.kind, seal.algorithm));
    }
    let public: [u8; 32] = B64
        .decode(&seal.public_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or("the seal's public key is not 32 bytes of base64")?;
    let public =
        VerifyingKey::from_bytes(&public).map_err(|_| "the seal's public key is invalid")?;
    if crate::certificates::key_id(&public) != seal.key_id {
        return Err("the seal's key id does not match its public key".to_owned());
    }
    if let Some(expected) = expected_key
        && expected.trim() != seal.public_key
    {
        return Err("signed by another key than the one given".to_owned());
    }
    let signature: [u8; 64] = B64
        .decode(&seal.signature)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or("the signature is not 64 bytes of base64")?;
    let mut unsigned = file[..eocd + EOCD_LEN].to_vec();
    let at = unsigned.len() - 2;
    unsigned[at..].copy_from_slice(&[0, 0]);
    public
        .verify_strict(&unsigned, &Signature::from_bytes(&signature))
        .map_err(|_| "the signature does not match: the archive was changed".to_owned())?;

    // The signature holds; now the contents, so that a reader can trust each file.
    let mut zip =
        zip::ZipArchive::new(Cursor::new(file)).map_err(|e| format!("not a readable zip: {e}"))?;
    let mut contents = BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| format!("entry {i}: {e}"))?;
        let name = entry
            .name()
            .map_err(|e| format!("entry {i}: {e}"))?
            .into_owned();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{name}: {e}"))?;
        if contents.insert(name.clone(), bytes).is_some() {
            return Err(format!("{name} is in the archive twice"));
        }
    }
    let manifest: Value = contents
        .remove("manifest.json")
        .and_then(|m| serde_json::from_slice::<Value>(&m).ok())
        .ok_or("no readable manifest.json")?;
    if manifest["type"] != EXPORT_TYPE {
        return Err("manifest.json is not an evidence export's".to_owned());
    }
    let listed = manifest["files"]
        .as_array()
        .ok_or("manifest.json lists no files")?;
    for file in listed {
        let path = file["path"]
            .as_str()
            .ok_or("a manifest entry without a path")?;
        let bytes = contents
            .remove(path)
            .ok_or_else(|| format!("{path} is listed but missing"))?;
        if file["size"].as_u64() != Some(bytes.len() as u64)
            || file["sha256"].as_str() != Some(sha256_hex(&bytes).as_str())
        {
            return Err(format!("{path} does not match the manifest"));
        }
        contents.insert(path.to_owned(), bytes);
    }
    if contents.len() != listed.len() {
        return Err("the archive holds files the manifest does not list".to_owned());
    }
    let request: Value = serde_json::from_slice(&contents["request.json"])
        .map_err(|_| "request.json is not JSON")?;
    let chain: Vec<ExportedEvent> = serde_json::from_slice(&contents["events.json"])
        .map_err(|e| format!("events.json: {e}"))?;
    let request_id = request["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .ok_or("request.json has no id")?;
    let head = events::Head {
        seq: request["event_seq"]
            .as_i64()
            .ok_or("request.json has no event_seq")?,
        hash: request["head_hash"]
            .as_str()
            .ok_or("request.json has no head_hash")?
            .to_owned(),
    };
    let models: Vec<events::Model> = chain.into_iter().map(Into::into).collect();
    events::verify_chain(request_id, &models, &head)
        .map_err(|e| format!("the event chain does not verify: {e}"))?;
    Ok(VerifiedExport {
        reference: manifest["reference"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        exported_at: manifest["exported_at"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        key_id: seal.key_id,
        events: models.len(),
        files_checked: listed.len(),
    })
}

/// An event as `events.json` holds it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportedEvent {
    id: uuid::Uuid,
    request_id: uuid::Uuid,
    seq: i64,
    at: DateTime<Utc>,
    actor: String,
    event_type: String,
    data: Value,
    prev_hash: String,
    hash: String,
}

impl From<ExportedEvent> for events::Model {
    fn from(e: ExportedEvent) -> Self {
        Self {
            id: e.id,
            request_id: e.request_id,
            seq: e.seq,
            at: e.at,
            actor: e.actor,
            event_type: e.event_type,
            data: e.data,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}
