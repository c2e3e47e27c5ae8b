//! `[mail]` and `[company]`: how messages leave, and who they are from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where mail goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// Each message is written as an `.eml` file into `mail.folder` (the embedded default).
    Folder,
    /// Each message is sent to `mail.smtp`.
    Smtp,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host or in tests.
    None,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Seconds a connection attempt or command may take.
    pub timeout_secs: u64,
    /// Connections kept open to the server.
    pub pool_size: u32,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".to_owned(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            timeout_secs: 15,
            pool_size: 4,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub transport: TransportKind,
    /// `folder` transport: where `.eml` files are written (created when missing).
    pub folder: PathBuf,
    /// The `From:` of every message, e.g. `"隐私保护 <privacy@example.com>"`.
    pub from: String,
    /// A directory with templates that replace the built-in ones, same layout
    /// (`zh-CN/acknowledgement.subject`, …). Files not there keep the built-in text.
    pub templates_dir: Option<PathBuf>,
    pub smtp: SmtpConfig,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: TransportKind::Folder,
            folder: PathBuf::from("outbox"),
            from: "Privacy team <privacy@example.com>".to_owned(),
            templates_dir: None,
            smtp: SmtpConfig::default(),
        }
    }
}

impl MailConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "mail.from {:?} is not a mailbox like \"Privacy <privacy@example.com>\"",
                self.from
            ));
        }
        if self.transport == TransportKind::Smtp {
            if self.smtp.host.trim().is_empty() {
                return Err("mail.smtp.host must be set when mail.transport = \"smtp\"".to_owned());
            }
            if self.smtp.username.is_some() != self.smtp.password.is_some() {
                return Err(
                    "mail.smtp.username and mail.smtp.password must be set together".to_owned(),
                );
            }
            if self.smtp.timeout_secs == 0 || self.smtp.pool_size == 0 {
                return Err(
                    "mail.smtp.timeout_secs and mail.smtp.pool_size must be above 0".to_owned(),
                );
            }
        }
        Ok(())
    }
}

/// `[company]`: who the messages speak for (the privacy policy's contact section).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompanyConfig {
    pub name: String,
    /// The privacy mailbox people write to.
    pub privacy_email: String,
    /// The customer hotline, if any.
    pub hotline: Option<String>,
    /// The personal information protection officer's address (PIPL art. 52).
    pub dpo_email: String,
    /// The registered address, for letters.
    pub address: Option<String>,
}

impl Default for CompanyConfig {
    fn default() -> Self {
        Self {
            name: "Example Company".to_owned(),
            privacy_email: "privacy@example.com".to_owned(),
            hotline: None,
            dpo_email: "dpo@example.com".to_owned(),
            address: None,
        }
    }
}
