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
            pool_size: 8,
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
            if self.smtp.timeout_secs == 0 || !(1..=64).contains(&self.smtp.pool_size) {
                return Err(
                    "mail.smtp.timeout_secs must be above 0 and mail.smtp.pool_size between 1 and 64"
                        .to_owned(),
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

/// Which provider text messages go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsProviderKind {
    /// Each message is written as `<mail.folder>/sms/<id>.json` (the embedded default).
    Folder,
    /// Each message is posted to the HTTP gateway at `sms.http.url` (docs/sms-gateway.md).
    Http,
}

/// `[sms.http]`: the HTTP SMS gateway (or a small adapter in front of the company's SMS
/// service) and the secret that signs every request to it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsHttpConfig {
    /// Where each message is posted: `http://…` or `https://…`.
    pub url: Option<String>,
    /// HMAC-SHA256 key (at least 32 bytes) shared with the gateway.
    pub secret: Option<String>,
    /// Seconds one request (connecting, sending, reading the answer) may take.
    pub timeout_secs: u64,
}

impl Default for SmsHttpConfig {
    fn default() -> Self {
        Self {
            url: None,
            secret: None,
            timeout_secs: 10,
        }
    }
}

/// The secret stays out of logs and panic messages.
impl std::fmt::Debug for SmsHttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsHttpConfig")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// The shortest `sms.http.secret`, in bytes.
pub const SMS_SECRET_MIN_BYTES: usize = 32;

/// The longest `sms.http.timeout_secs`.
const SMS_TIMEOUT_MAX_SECS: u64 = 120;

/// `[sms]`: how text messages (SPEC §5's 短信验证码, and notices to requesters who gave
/// only a mobile number) leave.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    pub provider: SmsProviderKind,
    pub http: SmsHttpConfig,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            provider: SmsProviderKind::Folder,
            http: SmsHttpConfig::default(),
        }
    }
}

impl SmsConfig {
    /// Every problem, as `sms.key: message`. `[sms.http]` is checked only when it is
    /// the provider.
    pub fn validate(&self) -> Vec<String> {
        if self.provider != SmsProviderKind::Http {
            return Vec::new();
        }
        let http = &self.http;
        let mut problems = Vec::new();
        match http.url.as_deref().map(str::trim) {
            None | Some("") => {
                problems.push("sms.http.url: must be set when sms.provider = \"http\"".to_owned())
            }
            Some(url) => {
                if let Err(m) = check_gateway_url(url) {
                    problems.push(format!("sms.http.url: {m}"));
                }
            }
        }
        match &http.secret {
            None => problems
                .push("sms.http.secret: must be set when sms.provider = \"http\"".to_owned()),
            Some(s) if s.len() < SMS_SECRET_MIN_BYTES => problems.push(format!(
                "sms.http.secret: must be at least {SMS_SECRET_MIN_BYTES} bytes"
            )),
            Some(_) => {}
        }
        if !(1..=SMS_TIMEOUT_MAX_SECS).contains(&http.timeout_secs) {
            problems.push(format!(
                "sms.http.timeout_secs: must be between 1 and {SMS_TIMEOUT_MAX_SECS}"
            ));
        }
        problems
    }
}

/// An absolute `http://` or `https://` URL with a host. The URL itself is not repeated
/// in the message: it may carry a token.
pub(crate) fn check_gateway_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("is not a URL such as https://sms.example.com/send ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must start with http:// or https://".to_owned());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_owned());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn http(url: Option<&str>, secret: Option<&str>) -> SmsConfig {
        SmsConfig {
            provider: SmsProviderKind::Http,
            http: SmsHttpConfig {
                url: url.map(str::to_owned),
                secret: secret.map(str::to_owned),
                ..SmsHttpConfig::default()
            },
        }
    }

    #[test]
    fn the_folder_provider_needs_nothing() {
        assert!(SmsConfig::default().validate().is_empty());
        let mut unused = http(Some("ftp://nowhere"), Some("short"));
        unused.provider = SmsProviderKind::Folder;
        assert!(unused.validate().is_empty(), "[sms.http] is ignored");
    }

    #[test]
    fn the_http_provider_needs_a_url_and_a_long_secret() {
        assert!(
            http(Some("https://sms.example.com/send"), Some(SECRET))
                .validate()
                .is_empty()
        );
        assert!(
            http(Some("http://127.0.0.1:9000/"), Some(SECRET))
                .validate()
                .is_empty()
        );
        assert_eq!(
            http(None, None).validate(),
            vec![
                "sms.http.url: must be set when sms.provider = \"http\"",
                "sms.http.secret: must be set when sms.provider = \"http\"",
            ]
        );
        assert_eq!(
            http(Some("ftp://sms.example.com"), Some("short")).validate(),
            vec![
                "sms.http.url: must start with http:// or https://",
                "sms.http.secret: must be at least 32 bytes",
            ]
        );
        let problems = http(Some("sms.example.com/send"), Some(SECRET)).validate();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("sms.http.url: is not a URL"),
            "{problems:?}"
        );
        let mut slow = http(Some("https://sms.example.com"), Some(SECRET));
        slow.http.timeout_secs = 0;
        assert_eq!(
            slow.validate(),
            vec!["sms.http.timeout_secs: must be between 1 and 120"]
        );
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let shown = format!("{:?}", http(Some("https://sms.example.com"), Some(SECRET)));
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
