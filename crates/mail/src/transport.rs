//! Delivering one message: over SMTP (lettre, pooled, STARTTLS/TLS), or as an `.eml`
//! file in a folder on the embedded defaults. Failures say whether a retry can help.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailConfig, SmtpTls, TransportKind};
use crate::templates::Rendered;

/// One message to one recipient.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub rendered: Rendered,
    /// The `Message-ID` without angle brackets, stable across retries, so a receiver
    /// can recognise a message delivered twice after a crash.
    pub message_id: String,
    /// Files sent with it (a deletion certificate).
    pub attachments: Vec<AttachedFile>,
}

/// A file attached to an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedFile {
    pub name: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// Why a message (email or SMS) was not delivered. Officers see the text and logs keep
/// it: an SMS error never holds the number or the message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The server is down, too slow, or answered that it cannot take the message now
    /// (SMTP 4xx; HTTP 408, 429, 5xx): retry later.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The server refused the message (SMTP 5xx; another HTTP status) or it cannot be
    /// built: do not retry.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

enum Transport {
    Folder(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    /// `mail.smtp.pool_size`.
    pool_size: usize,
}

/// Files written at once by the folder transport.
const FOLDER_CONCURRENCY: usize = 4;

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.transport {
            Transport::Folder(p) => write!(f, "Mailer(folder {})", p.display()),
            Transport::Smtp(_) => f.write_str("Mailer(smtp)"),
        }
    }
}

impl Mailer {
    pub fn new(config: &MailConfig) -> Result<Self, String> {
        config.validate()?;
        let from: Mailbox = config.from.parse().map_err(|e| format!("mail.from: {e}"))?;
        let transport = match config.transport {
            TransportKind::Folder => Transport::Folder(config.folder.clone()),
            TransportKind::Smtp => {
                let s = &config.smtp;
                let builder = match s.tls {
                    SmtpTls::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
                    }
                    SmtpTls::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
                            .map_err(|e| format!("mail.smtp: {e}"))?
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)
                        .map_err(|e| format!("mail.smtp: {e}"))?,
                };
                let mut builder = builder
                    .port(s.port)
                    .timeout(Some(Duration::from_secs(s.timeout_secs)))
                    .pool_config(PoolConfig::new().max_size(s.pool_size));
                if let (Some(user), Some(password)) = (&s.username, &s.password) {
                    builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
                }
                Transport::Smtp(builder.build())
            }
        };
        Ok(Self {
            from,
            transport,
            pool_size: usize::try_from(config.smtp.pool_size).unwrap_or(1).max(1),
        })
    }

    /// How many messages to have in flight at once: one per pooled SMTP connection.
    /// Each connection waits for the server's answer to every message, and lettre 0.11
    /// writes the end of the data in a separate packet that Nagle's algorithm holds
    /// until the server's delayed ACK (~40 ms on Linux), so throughput grows with the
    /// pool (docs/performance.md).
    pub fn concurrency(&self) -> usize {
        match &self.transport {
            Transport::Smtp(_) => self.pool_size,
            Transport::Folder(_) => FOLDER_CONCURRENCY,
        }
    }

    /// The domain `Message-ID`s are made in: the `From:` address's.
    pub fn message_id_domain(&self) -> String {
        self.from.email.domain().to_owned()
    }

    /// Sends `email`. A folder transport writes `<message id>.eml` once: a second send of
    /// the same message finds the file and does nothing. Building the MIME message and
    /// writing the file happen on the blocking pool.
    pub async fn send(&self, email: Email) -> Result<(), SendError> {
        match &self.transport {
            Transport::Smtp(smtp) => {
                let message = self.build(&email)?;
                smtp.send(message).await.map(|_| ()).map_err(|e| {
                    // Servers echo the recipient ("550 <li@example.com>: no such user");
                    // the error is logged and shown, so addresses are taken out.
                    let reason = without_addresses(&e.to_string());
                    if e.is_permanent() {
                        SendError::Permanent(reason)
                    } else {
                        SendError::Transient(reason)
                    }
                })
            }
            Transport::Folder(dir) => {
                let dir = dir.clone();
                let from = self.from.clone();
                tokio::task::spawn_blocking(move || {
                    let message = build(&from, &email)?;
                    write_once(
                        &dir,
                        &format!("{}.eml", file_stem(&email.message_id)),
                        &message.formatted(),
                    )
                })
                .await
                .map_err(|e| SendError::Transient(format!("writing the message: {e}")))?
            }
        }
    }

    fn build(&self, email: &Email) -> Result<Message, SendError> {
        build(&self.from, email)
    }
}

fn build(from: &Mailbox, email: &Email) -> Result<Message, SendError> {
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|e| SendError::Permanent(format!("invalid recipient address: {e}")))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.rendered.subject.clone())
        .message_id(Some(format!("<{}>", email.message_id)))
        .raw_header(header::HeaderValue::new(
            header::HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ))
        // Tells our own message from a person's when it comes back to the privacy
        // mailbox, and ties a bounce to the notification (crate::inbound::AutoKind).
        .raw_header(header::HeaderValue::new(
            header::HeaderName::new_from_ascii_str(crate::inbound::NOTIFICATION_HEADER),
            notification_id(&email.message_id).to_owned(),
        ))
        .multipart(body(email)?)
        .map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))
}

/// The text and HTML alternatives, and the attachments after them when there are any.
fn body(email: &Email) -> Result<MultiPart, SendError> {
    let text =
        MultiPart::alternative_plain_html(email.rendered.text.clone(), email.rendered.html.clone());
    if email.attachments.is_empty() {
        return Ok(text);
    }
    let mut mixed = MultiPart::mixed().multipart(text);
    for a in &email.attachments {
        let content_type = header::ContentType::parse(&a.content_type)
            .map_err(|e| SendError::Permanent(format!("attachment {:?}: {e}", a.name)))?;
        mixed = mixed.singlepart(
            lettre::message::Attachment::new(a.name.clone()).body(a.content.clone(), content_type),
        );
    }
    Ok(mixed)
}

/// The notification id in a Message-ID: its local part (core writes
/// `<notification uuid>@<domain>`).
fn notification_id(message_id: &str) -> &str {
    message_id.split('@').next().unwrap_or(message_id)
}

/// `id` made safe as a file name.
pub(crate) fn file_stem(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `dir/name` unless it exists, whole then renamed, so that a reader never sees
/// half a message and a second send of the same message does nothing. Blocking: called
/// on the blocking pool.
pub(crate) fn write_once(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Result<(), SendError> {
    let path = dir.join(name);
    if path.exists() {
        return Ok(());
    }
    let io = |e: std::io::Error| SendError::Transient(format!("writing to {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// `text` with every word that holds an `@` (an email address, bracketed or not)
/// replaced by `[address]`.
fn without_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains('@') {
                "[address]"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_errors_lose_the_addresses_servers_echo() {
        assert_eq!(
            without_addresses(
                "permanent error (550): 5.1.1 <li.lei@example.com>: Recipient address rejected"
            ),
            "permanent error (550): 5.1.1 [address] Recipient address rejected"
        );
        assert_eq!(
            without_addresses("connection refused"),
            "connection refused"
        );
    }

    #[test]
    fn our_messages_are_recognised_when_they_come_back() {
        let from: Mailbox = "Privacy <privacy@example.com>".parse().expect("from");
        let email = Email {
            to: "li.lei@example.com".into(),
            rendered: Rendered {
                subject: "[PR-2026-000123] 我们已收到您的请求".into(),
                text: "您好".into(),
                html: "<p>您好</p>".into(),
            },
            message_id: "0190c1d2-0000-7000-8000-000000000001@rightsdesk.example.com".into(),
            attachments: Vec::new(),
        };
        let raw = build(&from, &email).expect("builds").formatted();
        let parsed = crate::inbound::parse(&raw, &Default::default()).expect("parses");
        assert_eq!(parsed.auto, Some(crate::inbound::AutoKind::OwnMessage));
        assert_eq!(
            parsed.headers.notification_id.as_deref(),
            Some("0190c1d2-0000-7000-8000-000000000001")
        );
    }

    #[test]
    fn an_attachment_goes_after_the_text_and_html() {
        use mail_parser::MimeHeaders;
        let from: Mailbox = "Privacy <privacy@example.com>".parse().expect("from");
        let email = Email {
            to: "li.lei@example.com".into(),
            rendered: Rendered {
                subject: "已办结".into(),
                text: "您好".into(),
                html: "<p>您好</p>".into(),
            },
            message_id: "0190c1d2-0000-7000-8000-000000000002@rightsdesk.example.com".into(),
            attachments: vec![AttachedFile {
                name: "deletion-certificate-PR-2026-000123.json".into(),
                content_type: "application/json".into(),
                content: br#"{"certificate": {"reference": "PR-2026-000123"}}"#.to_vec(),
            }],
        };
        let raw = build(&from, &email).expect("builds").formatted();
        let parsed = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("parses");
        assert_eq!(parsed.body_text(0).as_deref(), Some("您好"));
        let file = parsed.attachment(0).expect("an attachment");
        assert_eq!(
            file.attachment_name(),
            Some("deletion-certificate-PR-2026-000123.json")
        );
        assert!(
            String::from_utf8_lossy(file.contents()).contains("PR-2026-000123"),
            "the file as it was"
        );
    }
}
