//! The configuration: built-in defaults, then a TOML file, then `RIGHTSDESK__SECTION__KEY`
//! environment variables. Each crate owns its section; this file composes them and
//! validates the whole at start, reporting every problem at once.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use rightsdesk_api::ApiConfig;
use rightsdesk_core::account_login::AccountLoginConfig;
use rightsdesk_core::config::{
    BootstrapConfig, BundlesConfig, CoreConfig, DeadlinesConfig, EvidenceConfig, OutboxConfig,
    RemindersConfig, RepeatsConfig, SecurityConfig, VerificationConfig, WorkerConfig,
};
use rightsdesk_core::intake::IntakeConfig;
use rightsdesk_core::sources::SourcesSettings;
use rightsdesk_mail::{CompanyConfig, MailConfig, SmsConfig};
use rightsdesk_store::DatabaseConfig;
use serde::{Deserialize, Serialize};

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `rightsdesk_core=debug,info`, …
    pub level: String,
    /// `json` (one object per line) or `text`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: "json".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: ApiConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub security: SecurityConfig,
    pub deadlines: DeadlinesConfig,
    pub bootstrap: BootstrapConfig,
    pub verification: VerificationConfig,
    pub outbox: OutboxConfig,
    pub evidence: EvidenceConfig,
    pub bundles: BundlesConfig,
    pub account_login: AccountLoginConfig,
    pub reminders: RemindersConfig,
    pub repeats: RepeatsConfig,
    pub worker: WorkerConfig,
    pub intake: IntakeConfig,
    pub sources: SourcesSettings,
    pub mail: MailConfig,
    pub sms: SmsConfig,
    pub company: CompanyConfig,
}

/// The file read when no `--config` is given and it exists.
pub const DEFAULT_FILE: &str = "rightsdesk.toml";

impl Config {
    /// Defaults, then `file` (or `rightsdesk.toml` when present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(format!(
                        "configuration file {} does not exist",
                        path.display()
                    ));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => {
                let default = PathBuf::from(DEFAULT_FILE);
                if default.exists() {
                    figment = figment.merge(Toml::file_exact(default));
                }
            }
        }
        let config: Config = figment
            .merge(Env::prefixed("RIGHTSDESK__").split("__"))
            .extract()
            .map_err(|e| {
                e.into_iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        let problems = config.validate();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems.join("\n"))
        }
    }

    pub fn validate(&self) -> Vec<String> {
        let mut problems = self.http.validate();
        if let Err(m) = self.database.validate() {
            problems.push(m);
        }
        if !matches!(self.log.format.as_str(), "json" | "text") {
            problems.push("log.format: must be json or text".to_owned());
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            problems.push(format!(
                "log.level: {:?} is not a valid filter",
                self.log.level
            ));
        }
        problems.extend(self.core().validate());
        problems
    }

    pub fn core(&self) -> CoreConfig {
        CoreConfig {
            security: self.security.clone(),
            deadlines: self.deadlines.clone(),
            bootstrap: self.bootstrap.clone(),
            verification: self.verification.clone(),
            outbox: self.outbox.clone(),
            evidence: self.evidence.clone(),
            bundles: self.bundles.clone(),
            account_login: self.account_login.clone(),
            reminders: self.reminders.clone(),
            repeats: self.repeats.clone(),
            worker: self.worker.clone(),
            intake: self.intake.clone(),
            sources: self.sources.clone(),
            mail: self.mail.clone(),
            sms: self.sms.clone(),
            company: self.company.clone(),
        }
    }
}

/// What `rightsdesk config check` prints in place of a secret.
pub const MASK: &str = "********";

/// Keys whose values are secrets wherever they appear: the masked view shows only
/// that they are set.
const SECRET_KEYS: [&str; 9] = [
    "token_secret",
    "requester_token_key",
    "admin_password",
    "encryption_key",
    "previous_encryption_keys",
    "password",
    "secret",
    "hook_secret",
    "key",
];

/// Keys named like a secret that hold a setting (`bundles.password` is `never`,
/// `on_request` or `always`).
const NOT_SECRETS: [&str; 1] = ["bundles.password"];

impl Config {
    /// The effective configuration as JSON with every secret replaced by [`MASK`]: the
    /// keys in `SECRET_KEYS`, and the password inside any URL (`database.url`).
    pub fn masked(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        mask(&mut value, "");
        value
    }
}

/// `value` without its null members (unset optional keys), for printing as TOML.
pub fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, without_nulls(v)))
            .collect(),
        serde_json::Value::Array(items) => items.into_iter().map(without_nulls).collect(),
        other => other,
    }
}

fn mask(value: &mut serde_json::Value, path: &str) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if SECRET_KEYS.contains(&key.as_str())
                    && !NOT_SECRETS.contains(&path.as_str())
                    && !v.is_null()
                {
                    *v = serde_json::Value::String(MASK.to_owned());
                } else {
                    mask(v, &path);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| mask(v, path)),
        serde_json::Value::String(s) => {
            if let Some(masked) = mask_url_password(s) {
                *s = masked;
            }
        }
        _ => {}
    }
}

/// `scheme://user:password@host…` with the password masked; `None` when `s` carries no
/// password.
fn mask_url_password(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some(format!(
        "{scheme}://{}:{MASK}{}",
        &rest[..colon],
        &rest[at..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Vec::<String>::new());
    }

    #[test]
    fn the_example_file_loads_and_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rightsdesk.example.toml");
        let config = Config::load(Some(&path)).expect("the example configuration loads");
        // "Every key, set to its built-in default": using it as it is changes nothing.
        assert_eq!(
            serde_json::to_value(&config).ok(),
            serde_json::to_value(Config::default()).ok()
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let mut c = Config::default();
        c.http.bind = "nowhere".to_owned();
        c.log.format = "xml".to_owned();
        c.security.token_secret = Some("short".to_owned());
        let problems = c.validate();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn an_sms_gateway_is_checked_at_start_and_its_secret_never_shown() {
        let dir = std::env::temp_dir().join(format!("rightsdesk-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let file = dir.join("sms.toml");
        std::fs::write(
            &file,
            "[sms]\nprovider = \"http\"\n[sms.http]\nurl = \"smtp://gateway\"\nsecret = \"too short\"\n",
        )
        .expect("write the file");
        let problems = Config::load(Some(&file)).expect_err("an invalid gateway");
        assert!(
            problems.contains("sms.http.url: must start with http:// or https://"),
            "{problems}"
        );
        assert!(
            problems.contains("sms.http.secret: must be at least 32 bytes"),
            "{problems}"
        );
        assert!(!problems.contains("too short"), "{problems}");

        let secret = "a secret of at least thirty-two bytes";
        std::fs::write(
            &file,
            format!(
                "[sms]\nprovider = \"http\"\n[sms.http]\nurl = \"https://sms.example.com/send\"\nsecret = \"{secret}\"\ntimeout_secs = 5\n"
            ),
        )
        .expect("write the file");
        let config = Config::load(Some(&file)).expect("a valid gateway");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(config.core().sms.http.timeout_secs, 5);
        assert_eq!(config.core().sms.http.secret.as_deref(), Some(secret));
        assert!(!format!("{config:?}").contains(secret));
    }

    #[test]
    fn the_masked_view_hides_every_secret_and_keeps_the_rest() {
        let mut c = Config::default();
        let marker = |n: u32| format!("secret-marker-{n}-of-at-least-thirty-two-bytes");
        c.database.url = format!("postgres://rightsdesk:{}@db:5432/rightsdesk", marker(1));
        c.security.token_secret = Some(marker(2));
        c.security.requester_token_key = Some(marker(3));
        c.bootstrap.admin_password = Some(marker(4));
        c.evidence.encryption_key = Some(marker(5));
        c.mail.smtp.password = Some(marker(6));
        c.sms.http.secret = Some(marker(7));
        c.account_login.key = Some(marker(8));
        c.evidence.previous_encryption_keys = vec![marker(9)];
        let shown = c.masked().to_string();
        for n in 1..=9 {
            assert!(!shown.contains(&marker(n)), "secret {n} shown: {shown}");
        }
        let v = c.masked();
        assert_eq!(
            v["database"]["url"],
            "postgres://rightsdesk:********@db:5432/rightsdesk"
        );
        assert_eq!(v["security"]["token_secret"], MASK);
        assert_eq!(
            v["bundles"]["password"],
            serde_json::to_value(c.bundles.password).unwrap_or_default()
        );
        assert_eq!(v["http"]["bind"], "127.0.0.1:8080");
        // Unset secrets stay visibly unset.
        assert!(Config::default().masked()["security"]["token_secret"].is_null());
        assert_eq!(mask_url_password("sqlite://rightsdesk.db"), None);
        assert_eq!(mask_url_password("https://user@host/x"), None);
    }
}
