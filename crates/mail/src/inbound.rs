//! Reading mail that arrives at the privacy mailbox (SPEC §6): raw MIME in, a plain
//! [`Inbound`] out, with the readable text, the attachments, the threading headers,
//! and whether the message was written by a machine that must never be answered
//! ([`AutoKind`]). Pure: no I/O, no clock, no logging (a message is personal data
//! from its first byte).
//!
//! Parsing is [`mail_parser`]'s (any charset: GBK, GB18030, Big5, ISO-8859-x, …, RFC 2047
//! encoded words, broken MIME recovered as far as possible). On top of it this module
//! enforces [`InboundLimits`] (a message too big or with too many parts is refused,
//! attachments over the limits are dropped and listed, never an error), turns HTML into
//! readable text, and never panics: whatever the bytes, the answer is an [`Inbound`] or
//! an [`InboundError`] with a stable [`code`](InboundError::code).

mod auto;

use std::borrow::Cow;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, Utc};
use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

pub use auto::{AutoKind, NOTIFICATION_HEADER};

/// The readable text is cut to this many bytes (on a character boundary): enough for
/// any letter a person writes, and a bound on what classification and storage see.
pub const MAX_TEXT_BYTES: usize = 100 * 1024;

/// How much of a message is read. A config section (`[intake.limits]`, say) later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboundLimits {
    /// A larger raw message is refused (`too_large`) before it is parsed.
    pub max_bytes: usize,
    /// More MIME parts (nested messages' parts included) is refused (`too_many_parts`).
    pub max_parts: usize,
    /// A larger attachment is dropped (and listed in `dropped_attachments`).
    pub max_attachment_bytes: usize,
    /// Attachments after this many are dropped (and listed).
    pub max_attachments: usize,
}

impl Default for InboundLimits {
    fn default() -> Self {
        Self {
            max_bytes: 25 * 1024 * 1024,
            max_parts: 2000,
            max_attachment_bytes: 10 * 1024 * 1024,
            max_attachments: 20,
        }
    }
}

/// Why a message cannot be taken in. [`code`](Self::code) is stable: it is stored with
/// the rejected message and shown to officers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("the message has {size} bytes, more than the {limit} allowed")]
    TooLarge { size: usize, limit: usize },
    #[error("the message has {parts} MIME parts, more than the {limit} allowed")]
    TooManyParts { parts: usize, limit: usize },
    /// No header block, or a structure the parser cannot make sense of.
    #[error("the message cannot be read as email: {0}")]
    Malformed(&'static str),
    /// Nothing at all, or headers without a subject, text or attachment.
    #[error("the message has no subject, text or attachment")]
    Empty,
}

impl InboundError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::TooManyParts { .. } => "too_many_parts",
            Self::Malformed(_) => "malformed",
            Self::Empty => "empty",
        }
    }
}

/// An address with its display name. The domain is lower-cased (domains are case
/// insensitive, so deduplication and matching see one form); the local part is kept
/// as written (it may be case sensitive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub address: String,
    pub name: Option<String>,
}

/// One attachment, decoded (base64 / quoted-printable undone). Text attachments hold
/// their text as UTF-8, whatever charset they were sent in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub filename: Option<String>,
    /// `type/subtype`, lower case, without parameters.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Attachment {
    // The bytes are a document (an ID card scan, say): never in Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// Why an attachment was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Larger than `max_attachment_bytes`.
    TooLarge,
    /// After the first `max_attachments`.
    TooMany,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::TooMany => "too_many",
        }
    }
}

/// An attachment that was not kept, so an officer can ask the sender for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedAttachment {
    pub filename: Option<String>,
    pub content_type: String,
    pub size: usize,
    pub reason: DropReason,
}

/// Headers that tell machines from people, kept as written (trimmed, unfolded) for the
/// officer who wonders why a message was ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoHeaders {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub list_id: Option<String>,
    pub list_unsubscribe: Option<String>,
    pub return_path: Option<String>,
    /// Our own [`NOTIFICATION_HEADER`] on the message itself.
    pub notification_id: Option<String>,
}

/// A parsed inbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Encoded words decoded, white space runs collapsed.
    pub subject: String,
    pub date: Option<DateTime<Utc>>,
    /// The readable body: the text/plain part, or the HTML part as text (scripts and
    /// styles dropped, entities decoded), then any attached (forwarded) message's text.
    /// At most [`MAX_TEXT_BYTES`].
    pub text: String,
    /// Whether `text` was cut.
    pub text_truncated: bool,
    pub attachments: Vec<Attachment>,
    pub dropped_attachments: Vec<DroppedAttachment>,
    /// Set when a machine wrote the message: never answer it.
    pub auto: Option<AutoKind>,
    pub headers: AutoHeaders,
}

impl Inbound {
    /// The request reference (`PR-2026-000123`) the subject carries, upper case.
    pub fn subject_reference(&self) -> Option<String> {
        find_reference(&self.subject)
    }
}

/// Finds the first `PR-<4 digits>-<6 digits>` in `text` (any letter case, not inside a
/// longer word or number) and returns it in upper case.
pub fn find_reference(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let n = "PR-2026-000123".len();
    (0..bytes.len().saturating_sub(n - 1)).find_map(|i| {
        let c = bytes.get(i..i + n)?;
        let shape = c[0].eq_ignore_ascii_case(&b'p')
            && c[1].eq_ignore_ascii_case(&b'r')
            && c[2] == b'-'
            && c[3..7].iter().all(u8::is_ascii_digit)
            && c[7] == b'-'
            && c[8..].iter().all(u8::is_ascii_digit);
        let before_ok = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let after_ok = bytes.get(i + n).is_none_or(|b| !b.is_ascii_alphanumeric());
        (shape && before_ok && after_ok).then(|| String::from_utf8_lossy(c).to_ascii_uppercase())
    })
}

/// Parses one raw message (RFC 5322 bytes, as fetched over IMAP or posted by an MTA).
pub fn parse(raw: &[u8], limits: &InboundLimits) -> Result<Inbound, InboundError> {
    if raw.len() > limits.max_bytes {
        return Err(InboundError::TooLarge {
            size: raw.len(),
            limit: limits.max_bytes,
        });
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(InboundError::Empty);
    }
    // mail-parser is fuzzed and documented not to panic; this is the second belt, so a
    // bug there (or here) costs one message, not the intake worker.
    catch_unwind(AssertUnwindSafe(|| parse_unchecked(raw, limits))).unwrap_or(Err(
        InboundError::Malformed("the MIME structure cannot be parsed"),
    ))
}

/// Headers any real message has at least one of; without them the bytes are not mail
/// (mail-parser reads any `word:` line as a header).
const KNOWN_HEADERS: &[&str] = &[
    "from",
    "sender",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "received",
    "return-path",
    "reply-to",
    "in-reply-to",
    "references",
];

/// At most this many `message/rfc822`, `message/global` and `multipart/digest` content
/// types in one message.
const MAX_ATTACHED_MESSAGES: usize = 200;

/// How deep attached messages are followed (a message in a message in a message…).
const MAX_NESTING: usize = 8;

fn parse_unchecked(raw: &[u8], limits: &InboundLimits) -> Result<Inbound, InboundError> {
    let delimiters = delimiter_count(raw);
    if delimiters > limits.max_parts {
        return Err(InboundError::TooManyParts {
            parts: delimiters,
            limit: limits.max_parts,
        });
    }
    // Each attached message is a level of nesting in the parsed tree, and dropping a
    // tree of a hundred thousand levels overflows the stack (an abort, which no
    // catch_unwind stops). Real mail attaches a few messages, not hundreds.
    if attached_message_markers(raw) > MAX_ATTACHED_MESSAGES {
        return Err(InboundError::Malformed("too many attached messages"));
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(InboundError::Malformed("no header block"))?;
    let Some(root) = message.parts.first() else {
        return Err(InboundError::Malformed("no header block"));
    };
    let known = root.headers.iter().any(|h| {
        KNOWN_HEADERS
            .iter()
            .any(|k| h.name.as_str().eq_ignore_ascii_case(k))
    });
    if !known {
        return Err(InboundError::Malformed("no header block"));
    }

    let parts = count_parts(&message, 0)?;
    if parts > limits.max_parts {
        return Err(InboundError::TooManyParts {
            parts,
            limit: limits.max_parts,
        });
    }

    let subject = message.subject().map(clean_line).unwrap_or_default();
    let from = message.from().and_then(first_mailbox);
    let reply_to = message.reply_to().and_then(first_mailbox);
    let (text, text_truncated) = truncate(readable_text(&message, 0), MAX_TEXT_BYTES);
    let (attachments, dropped_attachments) = attachments(&message, raw, limits);

    if subject.is_empty()
        && text.trim().is_empty()
        && attachments.is_empty()
        && dropped_attachments.is_empty()
    {
        return Err(InboundError::Empty);
    }

    let headers = AutoHeaders {
        auto_submitted: raw_header(&message, "Auto-Submitted"),
        precedence: raw_header(&message, "Precedence"),
        list_id: raw_header(&message, "List-Id"),
        list_unsubscribe: raw_header(&message, "List-Unsubscribe"),
        return_path: raw_header(&message, "Return-Path"),
        notification_id: raw_header(&message, NOTIFICATION_HEADER).map(|v| strip_brackets(&v)),
    };
    let auto = auto::detect(&message, &subject, from.as_ref(), &text);

    Ok(Inbound {
        message_id: message
            .message_id()
            .map(strip_brackets)
            .filter(|s| !s.is_empty()),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        from,
        reply_to,
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        subject,
        date: message
            .date()
            .filter(|d| d.is_valid())
            .and_then(|d| DateTime::<Utc>::from_timestamp(d.to_timestamp(), 0)),
        text,
        text_truncated,
        attachments,
        dropped_attachments,
        auto,
        headers,
    })
}

/// How many MIME parts the raw message opens, counted without parsing: lines
/// `--<boundary>` for any `boundary=` parameter it declares. A message of a million
/// tiny parts is refused before the parser spends memory on each; the count after
/// parsing ([`count_parts`]) stays the rule for everything else.
fn delimiter_count(raw: &[u8]) -> usize {
    const KEY: &[u8] = b"boundary";
    let mut boundaries: HashSet<&[u8]> = HashSet::new();
    for (i, _) in raw.iter().enumerate().filter(|(_, b)| **b == b'=') {
        let Some(key) = i.checked_sub(KEY.len()).and_then(|s| raw.get(s..i)) else {
            continue;
        };
        if !key.eq_ignore_ascii_case(KEY) {
            continue;
        }
        let rest = raw.get(i + 1..).unwrap_or_default();
        let value = match rest.strip_prefix(b"\"") {
            Some(quoted) => {
                let end = quoted
                    .iter()
                    .position(|&b| matches!(b, b'"' | b'\r' | b'\n'))
                    .unwrap_or(quoted.len());
                &quoted[..end]
            }
            None => {
                let end = rest
                    .iter()
                    .position(|&b| b == b';' || b.is_ascii_whitespace())
                    .unwrap_or(rest.len());
                &rest[..end]
            }
        };
        if !value.is_empty() {
            boundaries.insert(value);
        }
    }
    if boundaries.is_empty() {
        return 0;
    }
    raw.split(|&b| b == b'\n')
        .filter(|line| {
            line.strip_prefix(b"--").is_some_and(|rest| {
                let rest = rest.trim_ascii_end();
                boundaries.contains(rest)
            })
        })
        .count()
}

/// Occurrences of `message/rfc822`, `message/global…` and `multipart/digest` (any case):
/// an upper bound on how deep attached messages can nest.
fn attached_message_markers(raw: &[u8]) -> usize {
    let before = |i: usize, k: &[u8]| {
        i.checked_sub(k.len())
            .and_then(|s| raw.get(s..i))
            .is_some_and(|w| w.eq_ignore_ascii_case(k))
    };
    let after = |i: usize, k: &[u8]| {
        raw.get(i + 1..i + 1 + k.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(k))
    };
    raw.iter()
        .enumerate()
        .filter(|&(i, &b)| {
            b == b'/'
                && ((before(i, b"message") && (after(i, b"rfc822") || after(i, b"global")))
                    || (before(i, b"multipart") && after(i, b"digest")))
        })
        .count()
}

/// Parts of the message and of every attached message.
fn count_parts(message: &Message<'_>, depth: usize) -> Result<usize, InboundError> {
    if depth > MAX_NESTING {
        return Err(InboundError::Malformed("messages nested too deeply"));
    }
    let mut n = message.parts.len();
    for part in &message.parts {
        if let PartType::Message(nested) = &part.body {
            n = n.saturating_add(count_parts(nested, depth + 1)?);
        }
    }
    Ok(n)
}

// ---------------------------------------------------------------------------------------
// Headers

/// The first header called `name` (any case), unfolded and trimmed, as written.
pub(crate) fn raw_header(message: &Message<'_>, name: &str) -> Option<String> {
    let root = message.parts.first()?;
    let h = root
        .headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
    let bytes = message
        .raw_message
        .get(h.offset_start as usize..h.offset_end as usize)?;
    let value = unfold(&String::from_utf8_lossy(bytes));
    Some(value)
}

/// Whether a header called `name` is present at all (even empty).
pub(crate) fn has_header(message: &Message<'_>, name: &str) -> bool {
    message.parts.first().is_some_and(|root| {
        root.headers
            .iter()
            .any(|h| h.name.as_str().eq_ignore_ascii_case(name))
    })
}

fn unfold(value: &str) -> String {
    value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn strip_brackets(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned()
}

fn clean_line(s: &str) -> String {
    s.split_whitespace()
        .map(|w| w.chars().filter(|&c| !is_invisible(c)).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Control characters (NUL cannot even be stored in a PostgreSQL text column) and
/// zero-width characters: nothing a reader sees. Tabs and line ends are white space,
/// handled by the callers.
fn is_invisible(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n')
        || matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{FEFF}')
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<String> = match value {
        HeaderValue::Text(t) => vec![strip_brackets(t)],
        HeaderValue::TextList(l) => l.iter().map(|t| strip_brackets(t)).collect(),
        _ => Vec::new(),
    };
    list.into_iter().filter(|s| !s.is_empty()).collect()
}

pub(crate) fn mailbox(address: &str, name: Option<&str>) -> Option<Mailbox> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    if address.is_empty() {
        return None;
    }
    let address = match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => address.to_owned(),
    };
    let name = name.map(clean_line).filter(|n| !n.is_empty());
    Some(Mailbox { address, name })
}

fn first_mailbox(address: &Address<'_>) -> Option<Mailbox> {
    address
        .iter()
        .find_map(|a| mailbox(a.address.as_deref()?, a.name.as_deref()))
}

fn addresses(address: Option<&Address<'_>>) -> Vec<String> {
    address
        .map(|a| {
            a.iter()
                .filter_map(|a| mailbox(a.address.as_deref()?, None))
                .map(|m| m.address)
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Text

/// The body parts as text, then the text of attached messages (a request forwarded as
/// an attachment is still the request).
fn readable_text(message: &Message<'_>, depth: usize) -> String {
    fn push(out: &mut String, s: &str) {
        let s = s.trim();
        if !s.is_empty() {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(s);
        }
    }
    let mut out = String::new();
    let ids = if message.text_body.is_empty() {
        &message.html_body
    } else {
        &message.text_body
    };
    for id in ids {
        match message.parts.get(*id as usize).map(|p| &p.body) {
            Some(PartType::Text(t)) => push(&mut out, &tidy(t)),
            Some(PartType::Html(h)) => push(&mut out, &html_to_text(h)),
            _ => {}
        }
        if out.len() > MAX_TEXT_BYTES {
            return out;
        }
    }
    if out.is_empty() {
        // Broken MIME (a boundary that never occurs, say) leaves the body as an unnamed
        // text "attachment": it is still what the sender wrote.
        let unnamed = message.attachments.iter().find_map(|id| {
            let part = message.parts.get(*id as usize)?;
            match &part.body {
                PartType::Text(t) if part.attachment_name().is_none() => Some(tidy(t)),
                PartType::Html(h) if part.attachment_name().is_none() => Some(html_to_text(h)),
                _ => None,
            }
        });
        if let Some(text) = unnamed {
            push(&mut out, &text);
        }
    }
    if depth < MAX_NESTING {
        for id in &message.attachments {
            if let Some(PartType::Message(nested)) =
                message.parts.get(*id as usize).map(|p| &p.body)
            {
                let subject = nested.subject().map(clean_line).unwrap_or_default();
                let text = readable_text(nested, depth + 1);
                push(
                    &mut out,
                    &format!(
                        "---------- Forwarded message ----------\nSubject: {subject}\n\n{text}"
                    ),
                );
                if out.len() > MAX_TEXT_BYTES {
                    return out;
                }
            }
        }
    }
    out
}

/// HTML as readable text: block elements start new lines, scripts, styles, the head and
/// comments (Outlook's `<!--[if mso]>` blocks) are dropped, entities decoded.
pub fn html_to_text(html: &str) -> String {
    tidy(&mail_parser::decoders::html::html_to_text(&break_blocks(
        html,
    )))
}

/// Block-level tags after which text starts on a new line.
const BLOCK_TAGS: &[&str] = &[
    "div",
    "p",
    "tr",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "blockquote",
    "hr",
    "ul",
    "ol",
    "pre",
    "section",
    "article",
    "header",
    "footer",
    "dt",
    "dd",
];

/// Puts a `<br>` before every block tag (opening or closing): mail-parser's converter
/// breaks lines only at `<br>` and `</p>`, and Outlook, Gmail and Foxmail lay a letter
/// out in `<div>`s, where quote markers ("On … wrote:") need their own line.
fn break_blocks(html: &str) -> Cow<'_, str> {
    if !html.contains('<') {
        return Cow::Borrowed(html);
    }
    let mut out = String::with_capacity(html.len() + html.len() / 16);
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        let (before, tag) = rest.split_at(i);
        out.push_str(before);
        let name: String = tag[1..]
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if BLOCK_TAGS.contains(&name.as_str()) {
            out.push_str("<br>");
        }
        out.push('<');
        rest = &tag[1..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Unix line ends, no-break spaces and tabs as spaces, control and zero-width characters
/// dropped, trailing spaces and runs of more than one blank line removed.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.split('\n') {
        let line: String = line
            .chars()
            .filter(|&c| !is_invisible(c))
            .map(|c| if c == '\u{00A0}' || c == '\t' { ' ' } else { c })
            .collect();
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 || out.is_empty() {
                continue;
            }
            out.push('\n');
            continue;
        }
        blank = 0;
        out.push_str(line);
        out.push('\n');
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn truncate(mut text: String, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    (text, true)
}

// ---------------------------------------------------------------------------------------
// Attachments

fn attachments(
    message: &Message<'_>,
    raw: &[u8],
    limits: &InboundLimits,
) -> (Vec<Attachment>, Vec<DroppedAttachment>) {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for id in &message.attachments {
        let Some(part) = message.parts.get(*id as usize) else {
            continue;
        };
        let bytes: &[u8] = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => &b[..],
            PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
            // An attached message parsed in place points into the raw message; one that
            // was itself base64-encoded carries its decoded bytes.
            PartType::Message(nested) => match part.encoding {
                mail_parser::Encoding::None => raw
                    .get(part.offset_body as usize..part.offset_end as usize)
                    .unwrap_or_default(),
                _ => nested.raw_message(),
            },
            PartType::Multipart(_) => continue,
        };
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_owned(),
            })
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_else(|| match &part.body {
                PartType::Message(_) => "message/rfc822".to_owned(),
                PartType::Text(_) => "text/plain".to_owned(),
                _ => "application/octet-stream".to_owned(),
            });
        let filename = part
            .attachment_name()
            .map(clean_line)
            .filter(|n| !n.is_empty());
        let reason = if bytes.len() > limits.max_attachment_bytes {
            Some(DropReason::TooLarge)
        } else if kept.len() >= limits.max_attachments {
            Some(DropReason::TooMany)
        } else {
            None
        };
        match reason {
            Some(reason) => dropped.push(DroppedAttachment {
                filename,
                content_type,
                size: bytes.len(),
                reason,
            }),
            None => kept.push(Attachment {
                filename,
                content_type,
                bytes: bytes.to_vec(),
            }),
        }
    }
    (kept, dropped)
}

pub(crate) fn content_type_is(
    part_ct: Option<&mail_parser::ContentType<'_>>,
    t: &str,
    sub: &str,
) -> bool {
    part_ct.is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(t)
            && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case(sub))
    })
}

#[cfg(test)]
mod tests;
