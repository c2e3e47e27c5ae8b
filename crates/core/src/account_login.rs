//! Account-system login (SPEC §5): a request filed with a JWT from the company's own
//! account system is verified at once for that account. The token must carry the
//! configured issuer and audience, an `exp` in the future (by this service's clock) and
//! a `sub` (the account id), and be signed with the configured HMAC secret or the
//! private half of the configured RSA, EC or Ed25519 public key. Anything else is
//! refused with a code that says why; a token is never silently ignored.

use std::collections::HashMap;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, ErrorCode};

/// `[account_login]`: the company's account system, whose tokens verify requesters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountLoginConfig {
    /// `iss` of the account system's tokens. Unset: account tokens are refused.
    pub issuer: Option<String>,
    /// `aud` the tokens must name: this service, as the account system calls it.
    pub audience: String,
    /// `HS256`, `HS384`, `HS512` (shared secret), `RS256`…`RS512`, `PS256`…`PS512`
    /// (RSA), `ES256`, `ES384` (EC) or `EdDSA` (Ed25519).
    pub algorithm: String,
    /// The HMAC secret (at least 32 bytes) or the PEM public key, inline.
    pub key: Option<String>,
    /// The same, read from a file.
    pub key_file: Option<std::path::PathBuf>,
    /// Seconds of clock difference tolerated on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// The claim holding the account's email address, if the system sends one.
    pub email_claim: String,
    /// The claim holding the account's mobile number, if the system sends one.
    pub phone_claim: String,
}

impl Default for AccountLoginConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: "rightsdesk".to_owned(),
            algorithm: "RS256".to_owned(),
            key: None,
            key_file: None,
            leeway_secs: 60,
            email_claim: "email".to_owned(),
            phone_claim: "phone_number".to_owned(),
        }
    }
}

/// The account a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub issuer: String,
    pub account_id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// The configured verifier; `None` inside when account login is off.
pub(crate) struct AccountLogin {
    verifier: Option<Verifier>,
    email_claim: String,
    phone_claim: String,
}

struct Verifier {
    key: DecodingKey,
    validation: Validation,
    issuer: String,
    leeway: i64,
}

impl AccountLoginConfig {
    /// The key material, inline or from `key_file`.
    fn key_bytes(&self) -> Result<Option<Vec<u8>>, String> {
        match (&self.key, &self.key_file) {
            (Some(_), Some(_)) => Err("account_login: set key or key_file, not both".to_owned()),
            (Some(k), None) => Ok(Some(k.as_bytes().to_vec())),
            (None, Some(path)) => std::fs::read(path)
                .map(Some)
                .map_err(|e| format!("account_login.key_file: {}: {e}", path.display())),
            (None, None) => Ok(None),
        }
    }

    /// Every problem with the section, as `account_login.key: message`.
    pub fn validate(&self) -> Vec<String> {
        match AccountLogin::new(self) {
            Ok(_) => Vec::new(),
            Err(m) => vec![m],
        }
    }
}

impl AccountLogin {
    pub(crate) fn new(config: &AccountLoginConfig) -> Result<Self, String> {
        let verifier = match &config.issuer {
            None => None,
            Some(issuer) => Some(Verifier::new(config, issuer)?),
        };
        Ok(Self {
            verifier,
            email_claim: config.email_claim.clone(),
            phone_claim: config.phone_claim.clone(),
        })
    }

    /// The account of `token`, checked against `now` (Unix seconds).
    pub(crate) fn verify(&self, token: &str, now: i64) -> Result<Account, Error> {
        let Some(v) = &self.verifier else {
            return Err(Error::new(
                ErrorCode::AccountLoginDisabled,
                "this service does not accept account-system tokens; file without Authorization and verify with the code sent to you",
            ));
        };
        let claims = jsonwebtoken::decode::<HashMap<String, Value>>(token, &v.key, &v.validation)
            .map_err(|e| refused(e.kind()))?
            .claims;
        let number = |name: &str| claims.get(name).and_then(Value::as_i64);
        let exp = number("exp").ok_or_else(|| refused(&ErrorKind::InvalidToken))?;
        if exp + v.leeway <= now {
            return Err(refused(&ErrorKind::ExpiredSignature));
        }
        if number("nbf").is_some_and(|nbf| nbf - v.leeway > now) {
            return Err(refused(&ErrorKind::ImmatureSignature));
        }
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let account_id = text("sub").ok_or_else(|| refused(&ErrorKind::InvalidToken))?;
        Ok(Account {
            issuer: v.issuer.clone(),
            account_id,
            email: text(&self.email_claim).map(|e| e.to_lowercase()),
            // As requests store a number (E.164), so that the account's subject is the
            // one a filing or a relative names by it.
            phone: text(&self.phone_claim)
                .map(|p| rightsdesk_domain::Phone::parse(&p).map_or(p, |n| n.as_str().to_owned())),
        })
    }
}

impl Verifier {
    fn new(config: &AccountLoginConfig, issuer: &str) -> Result<Self, String> {
        if issuer.trim().is_empty() || config.audience.trim().is_empty() {
            return Err("account_login: issuer and audience must not be empty".to_owned());
        }
        let algorithm: Algorithm = config.algorithm.parse().map_err(|_| {
            format!(
                "account_login.algorithm: unknown algorithm {:?}",
                config.algorithm
            )
        })?;
        let bytes = config
            .key_bytes()?
            .ok_or("account_login: key or key_file is required when issuer is set")?;
        let bad_key = |e: jsonwebtoken::errors::Error| {
            format!("account_login.key: not a usable {algorithm:?} key: {e}")
        };
        let key = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                if bytes.len() < 32 {
                    return Err(
                        "account_login.key: an HMAC secret must be at least 32 bytes".to_owned(),
                    );
                }
                DecodingKey::from_secret(&bytes).map_err(bad_key)?
            }
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => DecodingKey::from_rsa_pem(&bytes).map_err(bad_key)?,
            Algorithm::ES256 | Algorithm::ES384 => {
                DecodingKey::from_ec_pem(&bytes).map_err(bad_key)?
            }
            Algorithm::EdDSA => DecodingKey::from_ed_pem(&bytes).map_err(bad_key)?,
            other => {
                return Err(format!(
                    "account_login.algorithm: {other:?} is not supported"
                ));
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[config.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Time is checked against the service's own clock, after the signature.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Ok(Self {
            key,
            validation,
            issuer: issuer.to_owned(),
            leeway: i64::try_from(config.leeway_secs).unwrap_or(60),
        })
    }
}

/// Why a token is refused, as a code of the error table.
fn refused(kind: &ErrorKind) -> Error {
    let (code, message) = match kind {
        ErrorKind::ExpiredSignature => (
            ErrorCode::AccountTokenExpired,
            "the account token has expired; log in again",
        ),
        ErrorKind::ImmatureSignature => (
            ErrorCode::AccountTokenInvalid,
            "the account token is not valid yet",
        ),
        ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => (
            ErrorCode::AccountTokenForeign,
            "the account token was issued by another system or for another audience",
        ),
        _ => (
            ErrorCode::AccountTokenInvalid,
            "the account token is malformed, lacks a required claim, or its signature does not verify",
        ),
    };
    Error::new(code, message)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const SECRET: &str = "an-account-system-secret-of-32-bytes!";

    fn login() -> AccountLogin {
        AccountLogin::new(&AccountLoginConfig {
            issuer: Some("https://accounts.example.com".to_owned()),
            algorithm: "HS256".to_owned(),
            key: Some(SECRET.to_owned()),
            ..AccountLoginConfig::default()
        })
        .expect("a valid configuration")
    }

    fn token(claims: Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()).expect("an HMAC key"),
        )
        .expect("a token")
    }

    fn claims(exp: i64) -> Value {
        json!({
            "iss": "https://accounts.example.com",
            "aud": "rightsdesk",
            "sub": "u-1001",
            "exp": exp,
            "email": "Li.Lei@Example.com",
            "phone_number": "13812345678",
        })
    }

    #[test]
    fn a_valid_token_names_the_account() {
        let account = login()
            .verify(&token(claims(2_000), SECRET), 1_000)
            .unwrap();
        assert_eq!(account.account_id, "u-1001");
        assert_eq!(account.email.as_deref(), Some("li.lei@example.com"));
        assert_eq!(
            account.phone.as_deref(),
            Some("+8613812345678"),
            "as requests store it"
        );
    }

    #[test]
    fn expiry_follows_the_service_clock_with_leeway() {
        let l = login();
        let t = token(claims(1_000), SECRET);
        assert!(l.verify(&t, 1_059).is_ok());
        let e = l.verify(&t, 1_060).unwrap_err();
        assert_eq!(e.code, ErrorCode::AccountTokenExpired);
    }

    #[test]
    fn every_bad_token_has_a_code() {
        let l = login();
        let mut other_issuer = claims(2_000);
        other_issuer["iss"] = json!("https://evil.example.com");
        let mut other_audience = claims(2_000);
        other_audience["aud"] = json!("someone-else");
        let mut no_sub = claims(2_000);
        no_sub.as_object_mut().unwrap().remove("sub");
        for (t, code) in [
            (token(other_issuer, SECRET), ErrorCode::AccountTokenForeign),
            (
                token(other_audience, SECRET),
                ErrorCode::AccountTokenForeign,
            ),
            (
                token(claims(2_000), "another-secret-that-is-32-bytes-long"),
                ErrorCode::AccountTokenInvalid,
            ),
            (token(no_sub, SECRET), ErrorCode::AccountTokenInvalid),
            ("not.a.token".to_owned(), ErrorCode::AccountTokenInvalid),
        ] {
            assert_eq!(l.verify(&t, 1_000).unwrap_err().code, code, "{t}");
        }
    }

    #[test]
    fn off_unless_configured_and_bad_keys_are_reported() {
        let off = AccountLogin::new(&AccountLoginConfig::default()).unwrap();
        assert_eq!(
            off.verify("x.y.z", 0).unwrap_err().code,
            ErrorCode::AccountLoginDisabled
        );
        let short = AccountLoginConfig {
            issuer: Some("https://accounts.example.com".to_owned()),
            algorithm: "HS256".to_owned(),
            key: Some("short".to_owned()),
            ..AccountLoginConfig::default()
        };
        assert_eq!(short.validate().len(), 1);
        let not_pem = AccountLoginConfig {
            issuer: Some("https://accounts.example.com".to_owned()),
            algorithm: "ES256".to_owned(),
            key: Some("not a pem".to_owned()),
            ..AccountLoginConfig::default()
        };
        assert!(not_pem.validate()[0].starts_with("account_login.key"));
        let no_key = AccountLoginConfig {
            issuer: Some("https://accounts.example.com".to_owned()),
            ..AccountLoginConfig::default()
        };
        assert_eq!(no_key.validate().len(), 1);
    }
}
