//! The service's keys: loaded at start (generated and stored in the database on first
//! use, unless configured), versioned, and rotated by `rightsdesk keys rotate`.
//!
//! Five keys sign or seal what outlives a moment, and can be rotated ([`KeyName`]): the
//! officer-token key (HS256), the download-link key (HMAC), the certificate key (Ed25519:
//! deletion certificates and evidence exports), the outbox key and the at-rest key
//! (AES-256-GCM: evidence, bundles, owners' answers, email kept for triage). Each
//! rotation adds a version. The newest version whose `active_from` has come signs and
//! seals new data; every version still verifies and opens what it made (each signed or
//! sealed value names its key, or is tried against each). A rotation activates
//! [`ACTIVATION_DELAY`] later by default, longer than [`REFRESH`], so that every running
//! instance has read the new version before any instance uses it.
//!
//! The other keys are never rotated: the requester-token key (each requester keeps the
//! token given at filing), the verification key (codes and links live minutes and are
//! resent on request), the reference key (it numbers the year's references) and the
//! anonymise key (a new key would give the same values new replacements).

use std::sync::Arc;
use std::time::Duration;

use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore;
use rightsdesk_store::{Db, secrets};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::certificates::CertificateKey;
use crate::config::CoreConfig;
use crate::sealing::CipherRing;
use crate::{Error, ErrorCode, Services};

/// How often running instances read the key versions again.
pub const REFRESH: Duration = Duration::from_secs(30);
/// How long after `rightsdesk keys rotate` the new versions start signing and sealing.
pub const ACTIVATION_DELAY: Duration = Duration::from_secs(120);

/// A key that can be rotated, by its stored name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyName {
    OfficerTokens,
    Downloads,
    Certificates,
    Outbox,
    AtRest,
}

impl KeyName {
    pub const ALL: [KeyName; 5] = [
        Self::OfficerTokens,
        Self::Downloads,
        Self::Certificates,
        Self::Outbox,
        Self::AtRest,
    ];

    /// The name in the database (`secrets`, `key_versions`) and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OfficerTokens => "officer_token_secret",
            Self::Downloads => "download_key",
            Self::Certificates => "certificate_key",
            Self::Outbox => "outbox_key",
            Self::AtRest => "evidence_key",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn purpose(self) -> &'static str {
        match self {
            Self::OfficerTokens => "signs officer tokens (HS256)",
            Self::Downloads => "signs download links (HMAC-SHA256)",
            Self::Certificates => "signs deletion certificates and evidence exports (Ed25519)",
            Self::Outbox => {
                "seals the secrets a notification carries until it is sent (AES-256-GCM)"
            }
            Self::AtRest => {
                "encrypts evidence, bundles, owners' answers and email kept for triage (AES-256-GCM)"
            }
        }
    }

    /// The configuration key that, when set, replaces the stored versions.
    fn configured_by(self) -> Option<&'static str> {
        match self {
            Self::OfficerTokens => Some("security.token_secret"),
            Self::AtRest => Some("evidence.encryption_key"),
            _ => None,
        }
    }
}

/// The id of a key: the first 16 hex digits of the SHA-256 of its material (for the
/// certificate key, of its public key, as certificates name it).
pub(crate) fn key_id(material: &[u8]) -> String {
    hex::encode(&Sha256::digest(material)[..8])
}

/// The id a key is known by: for the certificate key, its public key's (as certificates
/// and exports name it); for the others, its material's.
fn public_id(name: KeyName, material: &[u8]) -> String {
    match name {
        KeyName::Certificates => CertificateKey::from_seed(material)
            .map(|k| k.key_id())
            .unwrap_or_default(),
        _ => key_id(material),
    }
}

/// One version of a key.
pub(crate) struct Version<T> {
    pub number: i32,
    pub id: String,
    pub active_from: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub key: T,
}

/// Every version of a key, oldest first; never empty.
pub(crate) struct Versions<T>(Vec<Version<T>>);

impl<T> Versions<T> {
    /// The version that signs and seals at `now`: the newest active one.
    pub fn current(&self, now: DateTime<Utc>) -> &Version<T> {
        self.0
            .iter()
            .rev()
            .find(|v| v.active_from <= now)
            .unwrap_or(&self.0[0])
    }

    /// Every version, newest first: the order to try them in.
    pub fn newest_first(&self) -> impl Iterator<Item = &Version<T>> {
        self.0.iter().rev()
    }

    pub fn by_id(&self, id: &str) -> Option<&Version<T>> {
        self.0.iter().find(|v| v.id == id)
    }

    fn try_map<U>(
        raw: Vec<Version<Vec<u8>>>,
        mut f: impl FnMut(&[u8]) -> Option<(String, U)>,
    ) -> Result<Versions<U>, Error> {
        let versions = raw
            .into_iter()
            .map(|v| {
                let (id, key) = f(&v.key).ok_or_else(Error::internal)?;
                Ok(Version {
                    number: v.number,
                    id,
                    active_from: v.active_from,
                    created_at: v.created_at,
                    key,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        if versions.is_empty() {
            return Err(Error::internal());
        }
        Ok(Versions(versions))
    }
}

impl Versions<Aes256Gcm> {
    /// The keys as a ring for sealing and opening at `now`.
    pub fn ring(&self, now: DateTime<Utc>) -> CipherRing {
        let current = self.current(now);
        CipherRing::new(
            (current.id.clone(), current.key.clone()),
            self.newest_first()
                .map(|v| (v.id.clone(), v.key.clone()))
                .collect(),
        )
    }
}

/// An officer-token key, both halves.
pub(crate) struct TokenKey {
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
}

/// Every key the service holds.
pub(crate) struct Keys {
    pub officer_tokens: Versions<TokenKey>,
    pub requester_token_key: Vec<u8>,
    /// HMAC key for verification codes and links.
    pub verification_key: Vec<u8>,
    pub downloads: Versions<Vec<u8>>,
    /// The key of `anonymise`'s keyed hash in the sources (HMAC-SHA256).
    pub anonymise_key: Vec<u8>,
    pub certificates: Versions<CertificateKey>,
    pub outbox: Versions<Aes256Gcm>,
    pub at_rest: Versions<Aes256Gcm>,
}

/// Where a key's versions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    Database,
    Configuration,
}

/// A key as `rightsdesk keys list` shows it: never its material.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    pub name: &'static str,
    pub purpose: &'static str,
    pub source: KeySource,
    /// The configuration key to change instead, when configured.
    pub configured_by: Option<&'static str>,
    pub versions: Vec<VersionView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    pub version: i32,
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub active_from: DateTime<Utc>,
    /// Whether it signs and seals new data now.
    pub current: bool,
}

/// What `rightsdesk keys rotate` did to one key.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    pub name: &'static str,
    /// The new version; none when the key was not rotated (`skipped` says why).
    pub version: Option<i32>,
    pub key_id: Option<String>,
    pub active_from: Option<DateTime<Utc>>,
    pub skipped: Option<String>,
}

fn random_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    B64.encode(bytes)
}

fn decode(value: &str) -> Result<Vec<u8>, Error> {
    B64.decode(value).map_err(|_| Error::internal())
}

/// A secret that is never rotated: configured, or stored in `secrets` (generated on
/// first use; when several instances start together, the first insert wins).
pub(crate) async fn secret(
    db: &Db,
    name: &str,
    configured: &Option<String>,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, Error> {
    if let Some(value) = configured {
        return Ok(value.as_bytes().to_vec());
    }
    let tx = db.begin_write().await?;
    let stored = secrets::get_or_insert(&*tx, name, random_key(), now).await?;
    tx.commit().await?;
    decode(&stored)
}

/// The configured versions of `name` (previous ones first), when configured.
fn configured(name: KeyName, config: &CoreConfig) -> Result<Option<Vec<Vec<u8>>>, Error> {
    match name {
        KeyName::OfficerTokens => Ok(config
            .security
            .token_secret
            .as_ref()
            .map(|s| vec![s.as_bytes().to_vec()])),
        KeyName::AtRest => {
            let Some(current) = &config.evidence.encryption_key else {
                return Ok(None);
            };
            let bad = || {
                Error::new(
                    ErrorCode::Internal,
                    "evidence.encryption_key and evidence.previous_encryption_keys must be 32 bytes, base64",
                )
            };
            let mut keys = Vec::new();
            for key in config
                .evidence
                .previous_encryption_keys
                .iter()
                .chain([current])
            {
                keys.push(crate::evidence::decode_key(key).ok_or_else(bad)?);
            }
            Ok(Some(keys))
        }
        _ => Ok(None),
    }
}

/// Every version of `name`: configured, or stored. A database without versions yet gets
/// version 1, the value `secrets` holds (generated now when it holds none).
async fn versions(
    db: &Db,
    name: KeyName,
    config: &CoreConfig,
    now: DateTime<Utc>,
) -> Result<(KeySource, Vec<Version<Vec<u8>>>), Error> {
    if let Some(keys) = configured(name, config)? {
        let versions = keys
            .into_iter()
            .zip(1..)
            .map(|(key, number)| Version {
                number,
                id: key_id(&key),
                active_from: DateTime::<Utc>::UNIX_EPOCH,
                created_at: DateTime::<Utc>::UNIX_EPOCH,
                key,
            })
            .collect();
        return Ok((KeySource::Configuration, versions));
    }
    let mut rows = secrets::versions_of(db.conn(), name.as_str()).await?;
    if rows.is_empty() {
        let first = secret(db, name.as_str(), &None, now).await?;
        let tx = db.begin_write().await?;
        secrets::insert_version(
            &*tx,
            secrets::versions::Model {
                name: name.as_str().to_owned(),
                version: 1,
                value: B64.encode(&first),
                created_at: now,
                active_from: DateTime::<Utc>::UNIX_EPOCH,
            },
        )
        .await?;
        tx.commit().await?;
        rows = secrets::versions_of(db.conn(), name.as_str()).await?;
    }
    let versions = rows
        .into_iter()
        .map(|row| {
            let key = decode(&row.value)?;
            Ok(Version {
                number: row.version,
                id: key_id(&key),
                active_from: row.active_from,
                created_at: row.created_at,
                key,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok((KeySource::Database, versions))
}

/// The keys that never rotate: read once, at start.
struct Fixed {
    requester_token_key: Vec<u8>,
    verification_key: Vec<u8>,
    anonymise_key: Vec<u8>,
}

impl Keys {
    /// Reads (or, on first start, generates and stores) every key.
    pub(crate) async fn load(
        db: &Db,
        config: &CoreConfig,
        now: DateTime<Utc>,
    ) -> Result<Self, Error> {
        if config.evidence.encryption_key.is_none() {
            tracing::warn!(
                "evidence.encryption_key is not set: evidence is encrypted with a key kept in the database"
            );
        }
        let fixed = Fixed {
            requester_token_key: secret(
                db,
                "requester_token_key",
                &config.security.requester_token_key,
                now,
            )
            .await?,
            verification_key: secret(db, "verification_key", &None, now).await?,
            anonymise_key: secret(db, "anonymise_key", &None, now).await?,
        };
        Self::with_versions(db, config, now, fixed).await
    }

    /// The same keys with the versions of the rotatable ones read again (reads only:
    /// the keys that never rotate are kept as they are).
    async fn reread(
        &self,
        db: &Db,
        config: &CoreConfig,
        now: DateTime<Utc>,
    ) -> Result<Self, Error> {
        let fixed = Fixed {
            requester_token_key: self.requester_token_key.clone(),
            verification_key: self.verification_key.clone(),
            anonymise_key: self.anonymise_key.clone(),
        };
        Self::with_versions(db, config, now, fixed).await
    }

    async fn with_versions(
        db: &Db,
        config: &CoreConfig,
        now: DateTime<Utc>,
        fixed: Fixed,
    ) -> Result<Self, Error> {
        let (_, tokens) = versions(db, KeyName::OfficerTokens, config, now).await?;
        let (_, downloads) = versions(db, KeyName::Downloads, config, now).await?;
        let (_, certificates) = versions(db, KeyName::Certificates, config, now).await?;
        let (_, outbox) = versions(db, KeyName::Outbox, config, now).await?;
        let (_, at_rest) = versions(db, KeyName::AtRest, config, now).await?;
        let aes = |key: &[u8]| Some((key_id(key), Aes256Gcm::new_from_slice(key).ok()?));
        Ok(Self {
            officer_tokens: Versions::<TokenKey>::try_map(tokens, |key| {
                Some((
                    key_id(key),
                    TokenKey {
                        encoding: EncodingKey::from_secret(key).ok()?,
                        decoding: DecodingKey::from_secret(key).ok()?,
                    },
                ))
            })?,
            requester_token_key: fixed.requester_token_key,
            verification_key: fixed.verification_key,
            downloads: Versions::<Vec<u8>>::try_map(downloads, |key| {
                Some((key_id(key), key.to_vec()))
            })?,
            anonymise_key: fixed.anonymise_key,
            certificates: Versions::<CertificateKey>::try_map(certificates, |seed| {
                let key = CertificateKey::from_seed(seed)?;
                Some((key.key_id(), key))
            })?,
            outbox: Versions::<Aes256Gcm>::try_map(outbox, aes)?,
            at_rest: Versions::<Aes256Gcm>::try_map(at_rest, aes)?,
        })
    }
}

impl Services {
    /// The keys as last read.
    pub(crate) fn keys(&self) -> Arc<Keys> {
        self.inner
            .keys
            .read()
            .map(|k| Arc::clone(&k))
            .unwrap_or_else(|poisoned| Arc::clone(&poisoned.into_inner()))
    }

    /// The at-rest keys as a ring, now.
    pub(crate) fn at_rest(&self) -> CipherRing {
        self.keys().at_rest.ring(self.now())
    }

    /// Reads the key versions again (a rotation by another process).
    pub async fn reload_keys(&self) -> Result<(), Error> {
        let keys = self
            .keys()
            .reread(self.db(), self.config(), self.now())
            .await?;
        match self.inner.keys.write() {
            Ok(mut k) => *k = Arc::new(keys),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
        }
        Ok(())
    }

    /// Reads the key versions every [`REFRESH`] until `stop`, so that a rotation reaches
    /// this process before the new versions activate.
    pub async fn run_key_refresh(self, stop: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(REFRESH) => {}
            }
            if let Err(e) = self.reload_keys().await {
                tracing::warn!(error = %e, "the keys could not be read again");
            }
        }
    }

    /// Every rotatable key and its versions (never the material).
    pub async fn list_keys(&self) -> Result<Vec<KeyView>, Error> {
        let now = self.now();
        let mut out = Vec::new();
        for name in KeyName::ALL {
            let (source, versions) = versions(self.db(), name, self.config(), now).await?;
            let versions = Versions(versions);
            let current = versions.current(now).number;
            out.push(KeyView {
                name: name.as_str(),
                purpose: name.purpose(),
                source,
                configured_by: (source == KeySource::Configuration)
                    .then(|| name.configured_by())
                    .flatten(),
                versions: versions
                    .0
                    .iter()
                    .map(|v| VersionView {
                        version: v.number,
                        key_id: public_id(name, &v.key),
                        created_at: v.created_at,
                        active_from: v.active_from,
                        current: v.number == current,
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Adds a new version of each of `names` (all when empty) that the database keeps,
    /// active `activate_in` from now. Configured keys are skipped: they change in the
    /// configuration.
    pub async fn rotate_keys(
        &self,
        names: &[KeyName],
        activate_in: Duration,
    ) -> Result<Vec<Rotation>, Error> {
        let now = self.now();
        let active_from = now
            + TimeDelta::from_std(activate_in)
                .map_err(|_| Error::new(ErrorCode::Internal, "activation delay out of range"))?;
        let names = if names.is_empty() {
            KeyName::ALL.to_vec()
        } else {
            names.to_vec()
        };
        let mut out = Vec::new();
        for name in names {
            let (source, existing) = versions(self.db(), name, self.config(), now).await?;
            if source == KeySource::Configuration {
                out.push(Rotation {
                    name: name.as_str(),
                    version: None,
                    key_id: None,
                    active_from: None,
                    skipped: Some(format!(
                        "configured by {}: change it there{}",
                        name.configured_by().unwrap_or("the configuration"),
                        if name == KeyName::AtRest {
                            " and list the old key in evidence.previous_encryption_keys"
                        } else {
                            " (officers then log in again)"
                        }
                    )),
                });
                continue;
            }
            let number = existing.last().map_or(1, |v| v.number + 1);
            let value = random_key();
            let material = decode(&value)?;
            let tx = self.db().begin_write().await?;
            let stored = secrets::insert_version(
                &*tx,
                secrets::versions::Model {
                    name: name.as_str().to_owned(),
                    version: number,
                    value,
                    created_at: now,
                    active_from,
                },
            )
            .await?;
            tx.commit().await?;
            if !stored {
                return Err(Error::new(
                    ErrorCode::ConcurrentModification,
                    format!(
                        "{} was rotated at the same time elsewhere: run again",
                        name.as_str()
                    ),
                ));
            }
            let id = public_id(name, &material);
            tracing::info!(key = name.as_str(), version = number, key_id = %id, %active_from, "key rotated");
            out.push(Rotation {
                name: name.as_str(),
                version: Some(number),
                key_id: Some(id),
                active_from: Some(active_from),
                skipped: None,
            });
        }
        self.reload_keys().await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(secs)
    }

    fn version(number: i32, active_from: i64) -> Version<()> {
        Version {
            number,
            id: number.to_string(),
            active_from: at(active_from),
            created_at: at(0),
            key: (),
        }
    }

    #[test]
    fn the_newest_active_version_signs_and_every_version_is_known() {
        let versions = Versions(vec![version(1, 0), version(2, 100), version(3, 200)]);
        assert_eq!(versions.current(at(50)).number, 1);
        assert_eq!(versions.current(at(100)).number, 2);
        assert_eq!(versions.current(at(1_000)).number, 3);
        let order: Vec<i32> = versions.newest_first().map(|v| v.number).collect();
        assert_eq!(order, [3, 2, 1]);
        assert_eq!(versions.by_id("1").map(|v| v.number), Some(1));
        assert!(versions.by_id("4").is_none());
    }

    #[test]
    fn every_rotatable_key_has_a_stable_name() {
        for name in KeyName::ALL {
            assert_eq!(KeyName::parse(name.as_str()), Some(name));
        }
        assert_eq!(KeyName::parse("reference_key"), None);
    }
}
