//! Settings owned by the use-cases; the server composes them into its configuration.

use serde::{Deserialize, Serialize};

/// `[security]`: officer tokens and logins.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// HMAC key (at least 32 bytes) that signs officer tokens. When unset, a random key
    /// is generated on first start and kept in the database, shared by every instance.
    pub token_secret: Option<String>,
    /// Key (at least 32 bytes) from which requester tokens are derived; generated and
    /// kept in the database when unset.
    pub requester_token_key: Option<String>,
    /// `iss` of officer tokens.
    pub token_issuer: String,
    /// `aud` of officer tokens.
    pub token_audience: String,
    /// Lifetime of an officer token, in seconds.
    pub token_ttl_secs: u64,
    /// Failed logins in a row before an account is locked.
    pub max_failed_logins: u32,
    /// How long a locked account stays locked, in seconds.
    pub lockout_secs: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            token_secret: None,
            requester_token_key: None,
            token_issuer: "rightsdesk".to_owned(),
            token_audience: "rightsdesk-officers".to_owned(),
            token_ttl_secs: 900,
            max_failed_logins: 5,
            lockout_secs: 900,
        }
    }
}

/// `[deadlines]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadlinesConfig {
    /// The rule pack applied to new requests.
    pub default_pack: String,
}

impl Default for DeadlinesConfig {
    fn default() -> Self {
        Self {
            default_pack: "pipl".to_owned(),
        }
    }
}

/// `[bootstrap]`: the first administrator, created when no officer exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    pub admin_username: String,
    /// When unset, a one-time password is generated and printed once on standard output.
    pub admin_password: Option<String>,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            admin_username: "admin".to_owned(),
            admin_password: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CoreConfig {
    pub security: SecurityConfig,
    pub deadlines: DeadlinesConfig,
    pub bootstrap: BootstrapConfig,
}

impl CoreConfig {
    /// Every problem, as `section.key: message`.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let s = &self.security;
        for (name, value) in [
            ("security.token_secret", &s.token_secret),
            ("security.requester_token_key", &s.requester_token_key),
        ] {
            if value.as_ref().is_some_and(|v| v.len() < 32) {
                problems.push(format!("{name}: must be at least 32 bytes"));
            }
        }
        if s.token_issuer.trim().is_empty() {
            problems.push("security.token_issuer: must not be empty".to_owned());
        }
        if s.token_audience.trim().is_empty() {
            problems.push("security.token_audience: must not be empty".to_owned());
        }
        if !(60..=86_400).contains(&s.token_ttl_secs) {
            problems.push("security.token_ttl_secs: must be between 60 and 86400".to_owned());
        }
        if s.lockout_secs == 0 {
            problems.push("security.lockout_secs: must be at least 1".to_owned());
        }
        if s.max_failed_logins == 0 {
            problems.push("security.max_failed_logins: must be at least 1".to_owned());
        }
        if rightsdesk_domain::deadlines::pack(&self.deadlines.default_pack).is_none() {
            problems.push(format!(
                "deadlines.default_pack: unknown pack {:?} (known: pipl)",
                self.deadlines.default_pack
            ));
        }
        if let Err(m) = crate::officers::check_username(&self.bootstrap.admin_username) {
            problems.push(format!("bootstrap.admin_username: {m}"));
        }
        if let Some(p) = &self.bootstrap.admin_password
            && let Err(m) = crate::officers::check_password(p)
        {
            problems.push(format!("bootstrap.admin_password: {m}"));
        }
        problems
    }
}
