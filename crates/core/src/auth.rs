//! Who is calling: officers by password and short-lived JWT, requesters by the secret
//! token of their own request.

use std::sync::{Mutex, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Argon2, Params, Version};
use base64::Engine;
use chrono::Duration;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, Header, Validation};
use rightsdesk_domain::Role;
use rightsdesk_store::officers;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Error, ErrorCode, Services};

/// An authenticated officer, with the roles the database holds now.
#[derive(Debug, Clone)]
pub struct Officer {
    pub id: Uuid,
    pub username: String,
    pub roles: Vec<Role>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// The answer to a successful login.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedToken {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// The Argon2 working area (`m` KiB: 19 MiB with the default parameters), allocated once
/// and reused, so passwords are hashed one at a time. Allocated per hash, a freed area
/// stayed behind in the allocator arena of every thread that had hashed (glibc raises
/// its mmap threshold after the first free of a block this size and keeps the next ones
/// in its heaps): up to 19 MiB more resident memory per blocking thread that ever
/// hashed, for the life of the process.
static ARGON2_MEMORY: Mutex<Vec<argon2::Block>> = Mutex::new(Vec::new());

/// Argon2 as `hash_password_into`, in [`ARGON2_MEMORY`].
fn argon2_into(
    argon: &Argon2<'_>,
    blocks: usize,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let mut memory = ARGON2_MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    argon.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for `password`, with a fresh
/// salt and the default parameters. Runs on a blocking thread.
pub(crate) async fn hash_password(password: &str) -> Result<String, Error> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).ok()?;
        let params = Params::default();
        let argon = Argon2::new(argon2::Algorithm::Argon2id, Version::V0x13, params.clone());
        let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
            argon2_into(
                &argon,
                params.block_count(),
                password.as_bytes(),
                salt_bytes,
                out,
            )
            .map_err(password_hash::Error::from)
        })
        .ok()?;
        let hash = PasswordHash {
            algorithm: argon2::Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).ok()?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Some(hash.to_string())
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(Error::internal)
}

/// Whether `password` matches the PHC string `hash` (any Argon2 variant and parameters,
/// as `argon2`'s own verifier accepts); the comparison takes constant time.
fn verify_password(password: &str, hash: &str) -> bool {
    let check = || -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let algorithm = argon2::Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .ok()?
            .unwrap_or_default();
        let params = Params::try_from(&parsed).ok()?;
        let expected = parsed.hash?;
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
        let argon = Argon2::new(algorithm, version, params.clone());
        let computed = Output::init_with(expected.len(), |out| {
            argon2_into(&argon, params.block_count(), password.as_bytes(), salt, out)
                .map_err(password_hash::Error::from)
        })
        .ok()?;
        // `Output`'s equality is constant-time.
        Some(computed == expected)
    };
    check().unwrap_or(false)
}

/// Verified against when the username is unknown, so that timing does not tell which
/// usernames exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1dVEPyTQQM2TDK8RkD3ZG6dnOSm3V6O9VeS4GgtsKm0";

pub(crate) fn parse_roles(stored: &str) -> Vec<Role> {
    stored
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect()
}

/// The console's CSRF token for a session (SPEC §10): derived from the session's secret
/// token, so it needs no storage and no other site can know it.
pub fn csrf_token(session: &str) -> String {
    sha256_hex(format!("rightsdesk-console-csrf\0{session}").as_bytes())[..32].to_owned()
}

/// A fresh random token, hex (for a login form's double-submitted cookie).
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

impl Services {
    /// Exchanges a username and password for a short-lived token. Repeated failures
    /// lock the account for `security.lockout_secs`.
    pub async fn login(&self, username: &str, password: &str) -> Result<IssuedToken, Error> {
        let now = self.now();
        let sec = &self.config().security;
        let officer = officers::find_by_username(self.db().conn(), username.trim()).await?;
        let stored_hash = officer
            .as_ref()
            .map(|o| o.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.to_owned());
        let pw = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &stored_hash))
            .await
            .map_err(|_| Error::internal())?;
        let invalid = || {
            Error::new(
                ErrorCode::InvalidCredentials,
                "unknown username or wrong password",
            )
        };
        let Some(officer) = officer else {
            return Err(invalid());
        };
        if let Some(until) = officer.locked_until
            && until > now
        {
            let retry = (until - now).num_seconds().max(1);
            return Err(Error::new(
                ErrorCode::AccountLocked,
                "too many failed logins; try again later",
            )
            .with_details(serde_json::json!({ "retry_after": retry })));
        }
        if !ok || !officer.active {
            // Counted in the database, so concurrent wrong passwords all count.
            let tx = self.db().begin_write().await?;
            let failures = officers::count_failed_login(&*tx, officer.id, now).await?;
            let lock = (failures >= sec.max_failed_logins as i32)
                .then(|| now + Duration::seconds(sec.lockout_secs as i64));
            if lock.is_some() {
                officers::record_login(&*tx, officer.id, 0, lock, now).await?;
            }
            tx.commit().await?;
            if lock.is_some() {
                tracing::warn!(officer_id = %officer.id, "officer account locked after repeated failed logins");
            }
            return Err(invalid());
        }
        if officer.failed_logins != 0 || officer.locked_until.is_some() {
            let tx = self.db().begin_write().await?;
            officers::record_login(&*tx, officer.id, 0, None, now).await?;
            tx.commit().await?;
        }
        let claims = Claims {
            sub: officer.id.to_string(),
            iss: sec.token_issuer.clone(),
            aud: sec.token_audience.clone(),
            iat: now.timestamp(),
            exp: now.timestamp() + sec.token_ttl_secs as i64,
        };
        let keys = self.keys();
        let key = keys.officer_tokens.current(now);
        let mut header = Header::new(Algorithm::HS256);
        // The key's id, so that a token outlives a rotation of the key.
        header.kid = Some(key.id.clone());
        let token = jsonwebtoken::encode(&header, &claims, &key.key.encoding)
            .map_err(|_| Error::internal())?;
        Ok(IssuedToken {
            access_token: token,
            token_type: "Bearer",
            expires_in: sec.token_ttl_secs,
        })
    }

    /// Checks an officer's bearer token (signature, algorithm, issuer, audience, expiry
    /// by the service clock) and loads the officer's current roles.
    pub async fn authenticate_officer(&self, bearer: Option<&str>) -> Result<Officer, Error> {
        let token = bearer.ok_or_else(|| {
            Error::new(ErrorCode::Unauthenticated, "an officer token is required")
        })?;
        let invalid = || Error::new(ErrorCode::InvalidToken, "the token is invalid or expired");
        let sec = &self.config().security;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&sec.token_issuer]);
        validation.set_audience(&[&sec.token_audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked against the service clock below.
        validation.validate_exp = false;
        // The version that signed it: named by `kid`; a token without one was signed
        // before keys rotated, by the first version.
        let keys = self.keys();
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid())?
            .kid;
        let key = match kid {
            Some(kid) => keys.officer_tokens.by_id(&kid).ok_or_else(invalid)?,
            None => keys
                .officer_tokens
                .newest_first()
                .last()
                .ok_or_else(invalid)?,
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key.key.decoding, &validation)
            .map_err(|_| invalid())?;
        let now = self.now().timestamp();
        if data.claims.exp <= now || data.claims.iat > now + 60 {
            return Err(invalid());
        }
        let id: Uuid = data.claims.sub.parse().map_err(|_| invalid())?;
        let officer = officers::find(self.db().conn(), id)
            .await?
            .ok_or_else(invalid)?;
        if !officer.active {
            return Err(invalid());
        }
        Ok(Officer {
            id: officer.id,
            username: officer.username,
            roles: parse_roles(&officer.roles),
        })
    }

    /// The secret token of a request, derived from its id with the service key, so a
    /// retried filing can return it again without it ever being stored.
    pub(crate) fn requester_token(&self, request_id: Uuid) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.keys().requester_token_key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"requester-token:");
        mac.update(request_id.as_bytes());
        format!(
            "rdt_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("anything", DUMMY_HASH));
        assert!(!verify_password("anything", "not a hash"));
    }

    /// The hashes are the `argon2` crate's own, both ways: stored hashes stay valid.
    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash_password("密码 with ünïcode").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password("密码 with ünïcode".as_bytes(), &parsed)
                .is_ok()
        );
        let salt = SaltString::generate(&mut OsRng);
        for argon in [
            Argon2::default(),
            // Other parameters and variants, as older or tuned deployments may hold.
            Argon2::new(
                argon2::Algorithm::Argon2i,
                Version::V0x10,
                Params::new(8192, 3, 2, Some(24)).unwrap(),
            ),
        ] {
            let theirs = argon
                .hash_password(b"correct horse", &salt)
                .unwrap()
                .to_string();
            assert!(verify_password("correct horse", &theirs), "{theirs}");
            assert!(!verify_password("correct horsf", &theirs), "{theirs}");
        }
    }

    #[test]
    fn roles_parse_leniently() {
        assert_eq!(
            parse_roles("officer, dpo,unknown"),
            vec![Role::Officer, Role::Dpo]
        );
    }
}
