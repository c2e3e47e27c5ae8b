//! Who is calling: officers by password and short-lived JWT, requesters by the secret
//! token of their own request.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
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

pub(crate) fn hash_password(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| Error::internal())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
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
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.inner.keys.token_encoding,
        )
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
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.inner.keys.token_decoding, &validation)
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
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.inner.keys.requester_token_key)
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

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("anything", DUMMY_HASH));
    }

    #[test]
    fn roles_parse_leniently() {
        assert_eq!(
            parse_roles("officer, dpo,unknown"),
            vec![Role::Officer, Role::Dpo]
        );
    }
}
