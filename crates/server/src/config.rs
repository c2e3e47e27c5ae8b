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
}
