//! rightsdesk's outgoing messages: the templates every notice is written from
//! (`templates/<language>/<name>.{subject,txt,html}`, Chinese and English), and their
//! delivery, over SMTP or, on the embedded defaults, as `.eml` files in a folder; and
//! text messages through an [`SmsProvider`]: an HTTP SMS gateway, or a folder on the
//! embedded defaults.
//!
//! It also reads what arrives: [`inbound::parse`] turns raw MIME sent to the privacy
//! mailbox into an [`Inbound`], and tells mail written by machines ([`AutoKind`]) from
//! mail written by people.
//!
//! This crate knows nothing of requests or the database: `core` decides what to send and
//! when (the outbox), and calls [`Templates::render`], [`Mailer::send`] and
//! [`SmsProvider::send`].

pub mod config;
pub mod imap;
pub mod inbound;
pub mod labels;
pub mod sms;
pub mod templates;
pub mod transport;

pub use config::{
    CompanyConfig, MailConfig, SmsConfig, SmsHttpConfig, SmsProviderKind, SmtpConfig, SmtpTls,
    TransportKind,
};
pub use imap::{
    Batch, Cursor, Fetched, ImapClient, ImapConfig, ImapError, ImapSecurity, ImapSession,
};
pub use inbound::{
    Attachment, AutoKind, Inbound, InboundError, InboundLimits, Mailbox as InboundMailbox,
};
pub use sms::{Sms, SmsProvider};
pub use templates::{Rendered, Template, TemplateError, Templates};
pub use transport::{AttachedFile, Email, Mailer, SendError};
