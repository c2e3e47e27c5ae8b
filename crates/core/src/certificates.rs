//! Deletion certificates (SPEC §7): when a deletion or account-closure request
//! completes, the requester receives a document that says which systems were erased,
//! with which outcome (and, for data kept, on which legal basis and until when), and
//! when, signed with the service's Ed25519 key. Anyone can check it with `rightsdesk
//! certificate verify` and the public key (`GET /api/v1/certificates/public-key`).
//!
//! The file is JSON: `{"certificate": {…}, "signature": "<base64>", "public_key":
//! "<base64>"}`. The signature covers the bytes of `certificate` as serde_json writes
//! it (the order of keys as they come), so reformatting the file breaks it, and so
//! does any change. The certificate names the request and its systems; it carries no
//! personal data of the requester (the identifiers erased by appear as a SHA-256).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rightsdesk_connectors::Identifiers;
use rightsdesk_store::requests;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Error, Services};

/// What the certificate says it is.
pub const CERTIFICATE_TYPE: &str = "rightsdesk.deletion_certificate.v1";

/// The service's signing key, and the public half anyone verifies with.
pub(crate) struct CertificateKey(SigningKey);

impl CertificateKey {
    pub(crate) fn sign(&self, message: &[u8]) -> ed25519_dalek::Signature {
        self.0.sign(message)
    }

    /// From the 32-byte seed kept among the service's secrets.
    pub(crate) fn from_seed(seed: &[u8]) -> Option<Self> {
        let seed: [u8; 32] = seed.try_into().ok()?;
        Some(Self(SigningKey::from_bytes(&seed)))
    }

    pub(crate) fn public(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// The id certificates and exports name the key by.
    pub(crate) fn key_id(&self) -> String {
        key_id(&self.public())
    }
}

/// The public key, as `GET /api/v1/certificates/public-key` answers it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicKey {
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    /// The 32-byte public key, base64.
    pub public_key: String,
    /// The first 16 hex digits of its SHA-256: named in every certificate.
    pub key_id: String,
    /// The keys that signed before a rotation (`rightsdesk keys rotate`), newest first:
    /// certificates they signed still verify with them.
    pub previous: Vec<PreviousKey>,
}

/// A key that signed certificates before the current one.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviousKey {
    pub public_key: String,
    pub key_id: String,
}

pub(crate) fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// SHA-256 (hex) of the identifiers an erasure used, so that the subject can show the
/// certificate is theirs without the certificate naming them.
fn identifiers_digest(ids: &Identifiers) -> String {
    let mut h = Sha256::new();
    for (name, value) in [
        ("email", &ids.email),
        ("mobile", &ids.mobile),
        ("account_id", &ids.account_id),
    ] {
        h.update(name.as_bytes());
        h.update(b"=");
        h.update(value.as_deref().unwrap_or("").as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

impl Services {
    /// The key certificates are signed with.
    pub fn certificate_public_key(&self) -> PublicKey {
        let keys = self.keys();
        let current = keys.certificates.current(self.now());
        let key = current.key.public();
        PublicKey {
            algorithm: "Ed25519",
            public_key: B64.encode(key.as_bytes()),
            key_id: key_id(&key),
            previous: keys
                .certificates
                .newest_first()
                .filter(|v| v.number != current.number)
                .map(|v| PreviousKey {
                    public_key: B64.encode(v.key.public().as_bytes()),
                    key_id: v.key.key_id(),
                })
                .collect(),
        }
    }

    /// The signed deletion certificate of `row`, from its erasures as they stand now
    /// (each source has an outcome: `complete` checks that first).
    pub(crate) async fn deletion_certificate(
        &self,
        row: &requests::Model,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let ids = self.subject_identifiers(row).await?;
        let sources: Vec<Value> = self
            .erasures(row.id)
            .await?
            .into_iter()
            .map(|e| {
                json!({
                    "source": e.source,
                    "title_zh": e.title_zh,
                    "title_en": e.title_en,
                    "outcome": e.outcome,
                    "tables": e.tables,
                    "restricted": e.restricted,
                    "restricted_until": e.restricted_until,
                    "backup_until": e.backup_until,
                    "confirmed_by_officer": e.confirmed_by.is_some(),
                    "erased_at": e.finished_at,
                })
            })
            .collect();
        let keys = self.keys();
        let key = &keys.certificates.current(now).key;
        let certificate = json!({
            "type": CERTIFICATE_TYPE,
            "reference": row.reference,
            "kind": row.kind,
            "company": self.inner.company_context["company"]["name"],
            "subject_identifiers_sha256": identifiers_digest(&ids),
            // The categories the requester named (null: all of them).
            "categories": row.details.get("categories"),
            "received_at": row.received_at,
            "issued_at": now,
            "sources": sources,
            "key_id": key_id(&key.public()),
        });
        Ok(sign(&key.0, certificate))
    }
}

/// `certificate` signed with `key`, as the file holds it.
fn sign(key: &SigningKey, certificate: Value) -> Value {
    let bytes = serde_json::to_vec(&certificate).unwrap_or_default();
    let signature = key.sign(&bytes);
    json!({
        "certificate": certificate,
        "signature": B64.encode(signature.to_bytes()),
        "public_key": B64.encode(key.verifying_key().as_bytes()),
    })
}

/// What `rightsdesk certificate verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub reference: String,
    pub issued_at: String,
    pub key_id: String,
    /// `source: outcome` for each system.
    pub sources: Vec<String>,
}

/// Checks a certificate file: its signature by the public key it names, and, when
/// `expected_key` (base64) is given, that this is the key. `Err` says what is wrong.
pub fn verify(file: &[u8], expected_key: Option<&str>) -> Result<Verified, String> {
    let doc: Value =
        serde_json::from_slice(file).map_err(|e| format!("not a certificate file: {e}"))?;
    let certificate = doc
        .get("certificate")
        .ok_or("no `certificate` in the file")?;
    if certificate["type"] != CERTIFICATE_TYPE {
        return Err(format!("not a {CERTIFICATE_TYPE}"));
    }
    let public = doc["public_key"]
        .as_str()
        .and_then(|k| B64.decode(k).ok())
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok())
        .ok_or("`public_key` is not an Ed25519 public key in base64")?;
    if let Some(expected) = expected_key
        && expected.trim() != doc["public_key"].as_str().unwrap_or_default()
    {
        return Err("signed with another key than the one given".to_owned());
    }
    if certificate["key_id"] != json!(key_id(&public)) {
        return Err("`key_id` does not name the public key".to_owned());
    }
    let signature = doc["signature"]
        .as_str()
        .and_then(|s| B64.decode(s).ok())
        .and_then(|s| Signature::from_slice(&s).ok())
        .ok_or("`signature` is not an Ed25519 signature in base64")?;
    let bytes = serde_json::to_vec(certificate).map_err(|e| e.to_string())?;
    public
        .verify_strict(&bytes, &signature)
        .map_err(|_| "the signature does not match: the certificate was changed".to_owned())?;
    Ok(Verified {
        reference: certificate["reference"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        issued_at: certificate["issued_at"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        key_id: key_id(&public),
        sources: certificate["sources"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                format!(
                    "{}: {}",
                    s["source"].as_str().unwrap_or("?"),
                    s["outcome"].as_str().unwrap_or("?")
                )
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn signed() -> Value {
        sign(
            &key(),
            json!({
                "type": CERTIFICATE_TYPE,
                "reference": "PR-2026-000001",
                "issued_at": "2026-03-02T10:00:00Z",
                "sources": [{"source": "website", "outcome": "deleted"}],
                "key_id": key_id(&key().verifying_key()),
            }),
        )
    }

    #[test]
    fn a_signed_certificate_verifies_and_any_change_breaks_it() {
        let file = serde_json::to_vec_pretty(&signed()).unwrap();
        let ok = verify(&file, None).unwrap();
        assert_eq!(ok.reference, "PR-2026-000001");
        assert_eq!(ok.sources, ["website: deleted"]);
        let public = B64.encode(key().verifying_key().as_bytes());
        assert!(verify(&file, Some(&public)).is_ok());
        let other = B64.encode(
            SigningKey::from_bytes(&[8u8; 32])
                .verifying_key()
                .as_bytes(),
        );
        assert!(verify(&file, Some(&other)).is_err());

        let mut changed = signed();
        changed["certificate"]["sources"][0]["outcome"] = json!("restricted");
        let e = verify(&serde_json::to_vec(&changed).unwrap(), None).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        // Another key, with its own key id, over the changed text: not the service's.
        let mut forged = changed.clone();
        let evil = SigningKey::from_bytes(&[9u8; 32]);
        forged["certificate"]["key_id"] = json!(key_id(&evil.verifying_key()));
        let forged = sign(&evil, forged["certificate"].clone());
        assert!(verify(&serde_json::to_vec(&forged).unwrap(), None).is_ok());
        assert!(verify(&serde_json::to_vec(&forged).unwrap(), Some(&public)).is_err());
        // A flipped byte anywhere in the signed part.
        let text = String::from_utf8(file.clone()).unwrap();
        let flipped = text.replacen("PR-2026-000001", "PR-2026-000002", 1);
        assert!(verify(flipped.as_bytes(), None).is_err());
        assert!(verify(b"not json", None).is_err());
    }
}
