//! Polling the privacy mailbox over IMAP (SPEC §6, email intake).
//!
//! The poller (in `core`) owns the position in the mailbox: a [`Cursor`] (UIDVALIDITY and
//! the last UID whose request was committed) that it keeps in the database. Each poll
//! connects ([`ImapClient::connect`]), asks for what comes after the cursor
//! ([`ImapSession::fetch_new`]), turns each message into a request, commits it together
//! with the advanced cursor ([`Batch::cursor_after`]) and only then tells the server
//! ([`ImapSession::mark_processed`]). A crash anywhere in between re-reads at most the
//! message whose commit did not happen (which the Message-ID dedupe absorbs), and never
//! skips one: the session keeps no position of its own.
//!
//! UIDs are only meaningful together with the mailbox's UIDVALIDITY: when the server
//! reports another value (the mailbox was recreated, or the server lost its indexes), the
//! stored UID says nothing any more, so the batch starts again from UID 1 and says so
//! ([`Batch::reset`]).
//!
//! Fetching uses `BODY.PEEK[]`, so reading a message never marks it `\Seen`: a message
//! is `\Seen` (and moved to `processed_folder`) only once its request exists.
//!
//! TLS is rustls on the ring provider (the one lettre and reqwest already bring: one
//! crypto provider in the whole tree), trusting the webpki roots plus, optionally, a
//! company CA (`tls_ca_file`).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_imap::imap_proto::types::{Response, Status};
use base64::Engine as _;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

pub use rightsdesk_domain::Secret;

/// How the connection to the IMAP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImapSecurity {
    /// TLS from the first byte (IMAPS, port 993).
    #[default]
    Tls,
    /// A plain connection upgraded with `STARTTLS` before logging in, which is required
    /// (port 143).
    Starttls,
    /// No encryption: the password crosses the network in clear. Refused unless
    /// `allow_plain = true`; meant for a server on the same host (and tests).
    Plain,
}

/// The privacy mailbox and how to reach it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImapConfig {
    pub host: String,
    /// When not set: 993 for `tls`, 143 for `starttls` and `plain`.
    pub port: Option<u16>,
    pub security: ImapSecurity,
    /// Must be `true` for `security = "plain"`, so that sending the password in clear is
    /// a decision rather than a typo.
    pub allow_plain: bool,
    /// PEM file with CA certificates trusted in addition to the public (webpki) roots,
    /// for a mail server whose certificate comes from the company's own CA.
    pub tls_ca_file: Option<PathBuf>,
    pub username: String,
    pub password: Secret,
    /// The folder polled for new mail.
    pub mailbox: String,
    /// Where processed mail is moved (created when missing). When not set, processed
    /// mail stays in `mailbox`, marked `\Seen`.
    pub processed_folder: Option<String>,
    /// The most messages one [`ImapSession::fetch_new`] returns.
    pub batch_size: u32,
    /// Messages larger than this (the server's `RFC822.SIZE`) are returned without their
    /// content, for the caller to record as failed rather than download.
    pub max_message_bytes: u32,
    /// Seconds the server may stay silent: connecting, the TLS handshake, logging in, or
    /// between two responses of a command (so a large batch may take longer in total).
    pub timeout_secs: u64,
}

/// The default `imap.batch_size`.
pub const DEFAULT_BATCH_SIZE: u32 = 50;
/// The default `imap.max_message_bytes`: 25 MiB, a common provider limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 25 * 1024 * 1024;
const MAX_BATCH_SIZE: u32 = 1000;
const MAX_TIMEOUT_SECS: u64 = 600;

impl Default for ImapConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: None,
            security: ImapSecurity::Tls,
            allow_plain: false,
            tls_ca_file: None,
            username: String::new(),
            password: Secret::default(),
            mailbox: "INBOX".to_owned(),
            processed_folder: None,
            batch_size: DEFAULT_BATCH_SIZE,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            timeout_secs: 30,
        }
    }
}

impl ImapConfig {
    /// The port connected to: `port`, or the usual one for `security`.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            ImapSecurity::Tls => 993,
            ImapSecurity::Starttls | ImapSecurity::Plain => 143,
        })
    }

    /// Every problem, as `imap.key: message` (empty when the configuration is usable).
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.host.trim().is_empty() {
            problems.push("imap.host: must be set".to_owned());
        } else if ServerName::try_from(self.host.trim().to_owned()).is_err() {
            problems.push(format!(
                "imap.host: {:?} is not a host name or an IP address",
                self.host
            ));
        }
        if self.port == Some(0) {
            problems.push("imap.port: must be between 1 and 65535".to_owned());
        }
        if self.security == ImapSecurity::Plain && !self.allow_plain {
            problems.push(
                "imap.security: \"plain\" sends the password unencrypted; use \"tls\" or \
                 \"starttls\", or set imap.allow_plain = true for a server on the same host"
                    .to_owned(),
            );
        }
        if let Some(path) = &self.tls_ca_file
            && !path.is_file()
        {
            problems.push(format!(
                "imap.tls_ca_file: {} is not a readable file",
                path.display()
            ));
        }
        if self.username.trim().is_empty() {
            problems.push("imap.username: must be set".to_owned());
        }
        if self.password.is_empty() {
            problems.push("imap.password: must be set".to_owned());
        }
        if has_control(&self.username) || has_control(self.password.expose()) {
            problems.push(
                "imap.username and imap.password: must not contain line breaks or other control characters"
                    .to_owned(),
            );
        }
        if let Err(m) = check_folder_name(&self.mailbox) {
            problems.push(format!("imap.mailbox: {m}"));
        }
        if let Some(folder) = &self.processed_folder {
            if let Err(m) = check_folder_name(folder) {
                problems.push(format!("imap.processed_folder: {m}"));
            } else if same_folder(folder, &self.mailbox) {
                problems.push("imap.processed_folder: must differ from imap.mailbox".to_owned());
            }
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            problems.push(format!(
                "imap.batch_size: must be between 1 and {MAX_BATCH_SIZE}"
            ));
        }
        if self.max_message_bytes < 1024 {
            problems.push("imap.max_message_bytes: must be at least 1024".to_owned());
        }
        if !(1..=MAX_TIMEOUT_SECS).contains(&self.timeout_secs) {
            problems.push(format!(
                "imap.timeout_secs: must be between 1 and {MAX_TIMEOUT_SECS}"
            ));
        }
        problems
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn check_folder_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        Err("must not be empty")
    } else if has_control(name) {
        Err("must not contain control characters")
    } else if name.contains(['*', '%']) {
        Err("must not contain the IMAP wildcards * and %")
    } else {
        Ok(())
    }
}

/// `INBOX` is case-insensitive in IMAP; other names are compared as written.
fn same_folder(a: &str, b: &str) -> bool {
    if a.eq_ignore_ascii_case("INBOX") {
        b.eq_ignore_ascii_case("INBOX")
    } else {
        a == b
    }
}

/// Why talking to the IMAP server failed. The text never holds the password, the user
/// name or message contents; server texts are quoted as they are (they describe the
/// failure, not the mail).
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The configuration cannot work (see [`ImapConfig::validate`]), or the CA file
    /// cannot be read.
    #[error("IMAP configuration: {0}")]
    Config(String),
    /// No connection: the server is down, unreachable, or refused it.
    #[error("cannot connect to the IMAP server: {0}")]
    Connect(String),
    /// The TLS handshake failed: the certificate is not trusted or does not name the
    /// host, or no common protocol; or the server does not offer STARTTLS.
    #[error("IMAP TLS: {0}")]
    Tls(String),
    /// The server refused the user name and password (or login is disabled).
    #[error("the IMAP server refused the login: {0}")]
    Auth(String),
    /// The server says it cannot serve now (`BYE` greeting, `NO [UNAVAILABLE]`,
    /// `[INUSE]`, `[LIMIT]`).
    #[error("the IMAP server is unavailable: {0}")]
    Unavailable(String),
    /// The server did not answer within `timeout_secs`.
    #[error("the IMAP server did not answer within {0} s")]
    Timeout(u64),
    /// The connection broke in the middle of a command.
    #[error("the IMAP connection was lost: {0}")]
    ConnectionLost(String),
    /// The server answered `NO`/`BAD` to a command or sent something unexpected
    /// (e.g. the mailbox does not exist).
    #[error("IMAP protocol: {0}")]
    Protocol(String),
}

impl ImapError {
    /// Whether trying again later, with back-off, can help without anyone changing the
    /// configuration or the server.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Connect(_) | Self::Unavailable(_) | Self::Timeout(_) | Self::ConnectionLost(_)
        )
    }

    /// Whether the session cannot be used any more: anything but a complete `NO`/`BAD`
    /// answer may leave the stream in the middle of a response.
    fn breaks_session(&self) -> bool {
        match self {
            Self::Protocol(m) => !(m.starts_with("NO ") || m.starts_with("BAD ")),
            Self::Unavailable(_) | Self::Auth(_) | Self::Config(_) => false,
            Self::Connect(_) | Self::Tls(_) | Self::Timeout(_) | Self::ConnectionLost(_) => true,
        }
    }

    fn from_imap(e: async_imap::error::Error) -> Self {
        use async_imap::error::Error as E;
        match e {
            E::Io(e) => io_error(&e),
            E::ConnectionLost => {
                Self::ConnectionLost("the server closed the connection".to_owned())
            }
            E::No(m) => {
                let m = server_text(&m);
                if is_unavailable(&m) {
                    Self::Unavailable(m)
                } else {
                    Self::Protocol(format!("NO {m}"))
                }
            }
            E::Bad(m) => Self::Protocol(format!("BAD {}", server_text(&m))),
            other => Self::Protocol(other.to_string()),
        }
    }
}

fn io_error(e: &std::io::Error) -> ImapError {
    ImapError::ConnectionLost(e.to_string())
}

/// The response codes that say "not now" rather than "no" (RFC 5530).
fn is_unavailable(text: &str) -> bool {
    has_code(text, &["UNAVAILABLE", "INUSE", "LIMIT", "SERVERBUG"])
}

/// Whether the server's text starts with one of the response codes `[CODE]`. The parser
/// async-imap uses knows only RFC 3501's codes; the others stay in the text.
fn has_code(text: &str, codes: &[&str]) -> bool {
    let upper = text.to_ascii_uppercase();
    codes
        .iter()
        .any(|code| upper.contains(&format!("[{code}]")))
}

/// The server's own words from async-imap's `code: …, info: Some("…")` rendering of a
/// `NO`/`BAD`, when there is no parsed code; the rendering otherwise.
fn server_text(rendered: &str) -> String {
    rendered
        .strip_prefix("code: None, info: Some(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .map(|text| text.replace("\\\"", "\""))
        .unwrap_or_else(|| rendered.to_owned())
}

/// Where the poller stands in the mailbox: the last UID whose request is committed,
/// under the mailbox's UIDVALIDITY. Stored by the caller; [`ImapSession::fetch_new`]
/// returns what comes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor {
    pub uid_validity: u32,
    pub last_uid: u32,
}

/// One message of a [`Batch`].
#[derive(Clone, PartialEq, Eq)]
pub struct Fetched {
    pub uid: u32,
    /// The server's `RFC822.SIZE`, in bytes.
    pub size: u32,
    /// The whole message as the server stores it (headers and body); empty when
    /// `too_large`.
    pub raw: Vec<u8>,
    /// `size` is above `max_message_bytes`: the content was not downloaded, and the
    /// caller records the message as failed.
    pub too_large: bool,
}

/// The content is personal data: `Debug` shows only its length.
impl fmt::Debug for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetched")
            .field("uid", &self.uid)
            .field("size", &self.size)
            .field("raw_len", &self.raw.len())
            .field("too_large", &self.too_large)
            .finish()
    }
}

/// What [`ImapSession::fetch_new`] found after the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The mailbox's UIDVALIDITY now; store it with the cursor.
    pub uid_validity: u32,
    /// The stored cursor's UIDVALIDITY differs from the mailbox's: its UID meant nothing,
    /// and `messages` start again from UID 1 (some may have been processed before under
    /// their old UIDs; the caller's Message-ID dedupe recognises them).
    pub reset: bool,
    /// At most `batch_size` messages, by increasing UID, all above the cursor.
    pub messages: Vec<Fetched>,
    /// More messages wait after these: poll again without waiting.
    pub more: bool,
}

impl Batch {
    /// The cursor to store once the message with `uid` (and every one before it) is
    /// committed. After a `reset` with no message, store `cursor_after(0)` so that the
    /// new UIDVALIDITY is recorded.
    pub fn cursor_after(&self, uid: u32) -> Cursor {
        Cursor {
            uid_validity: self.uid_validity,
            last_uid: uid,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// A byte stream that can carry an IMAP session: plain TCP or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}

type Stream = Box<dyn Io>;

/// Connects to the configured server. Built once (it validates the configuration and
/// prepares TLS, reading `tls_ca_file`), then [`ImapClient::connect`] for each poll.
#[derive(Clone)]
pub struct ImapClient {
    config: Arc<ImapConfig>,
    tls: Option<TlsConnector>,
}

impl fmt::Debug for ImapClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapClient")
            .field("host", &self.config.host)
            .field("port", &self.config.effective_port())
            .field("security", &self.config.security)
            .field("mailbox", &self.config.mailbox)
            .finish()
    }
}

impl ImapClient {
    pub fn new(config: ImapConfig) -> Result<Self, ImapError> {
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(ImapError::Config(problems.join("; ")));
        }
        let tls = match config.security {
            ImapSecurity::Plain => None,
            ImapSecurity::Tls | ImapSecurity::Starttls => {
                Some(tls_connector(config.tls_ca_file.as_deref())?)
            }
        };
        Ok(Self {
            config: Arc::new(config),
            tls,
        })
    }

    pub fn config(&self) -> &ImapConfig {
        &self.config
    }

    /// Connects, protects the connection as configured, logs in and learns what the
    /// server can do (`MOVE`, `UIDPLUS`). Each step may take `timeout_secs`.
    pub async fn connect(&self) -> Result<ImapSession, ImapError> {
        let config = &self.config;
        let limit = Duration::from_secs(config.timeout_secs);
        let host = config.host.trim();
        let port = config.effective_port();
        let tcp = match tokio::time::timeout(limit, TcpStream::connect((host, port))).await {
            Err(_) => return Err(ImapError::Timeout(config.timeout_secs)),
            Ok(Err(e)) => return Err(ImapError::Connect(format!("{host}:{port}: {e}"))),
            Ok(Ok(tcp)) => tcp,
        };
        // Commands are small and each waits for its answer: do not let Nagle hold them.
        tcp.set_nodelay(true).ok();
        let stream: Stream = match (config.security, &self.tls) {
            (ImapSecurity::Tls, Some(tls)) => {
                Box::new(handshake(tls, host, tcp, config.timeout_secs).await?)
            }
            (ImapSecurity::Starttls, Some(tls)) => {
                let mut client = async_imap::Client::new(tcp);
                read_greeting(&mut client, limit).await?;
                match within(limit, client.run_command_and_check_ok("STARTTLS", None)).await {
                    Ok(()) => {}
                    Err(ImapError::Protocol(m)) => {
                        return Err(ImapError::Tls(format!("the server refused STARTTLS ({m})")));
                    }
                    Err(e) => return Err(e),
                }
                // No greeting follows STARTTLS (RFC 3501 §6.2.1).
                Box::new(handshake(tls, host, client.into_inner(), config.timeout_secs).await?)
            }
            (ImapSecurity::Plain, _) => Box::new(tcp),
            // `new` prepares TLS for both: never fall back to sending the password in clear.
            (ImapSecurity::Tls | ImapSecurity::Starttls, None) => {
                return Err(ImapError::Config("TLS was not prepared".to_owned()));
            }
        };
        let mut client = async_imap::Client::new(stream);
        if config.security != ImapSecurity::Starttls {
            read_greeting(&mut client, limit).await?;
        }
        let login = client.login(&config.username, config.password.expose());
        let mut session = match tokio::time::timeout(limit, login).await {
            Err(_) => return Err(ImapError::Timeout(config.timeout_secs)),
            Ok(Err((e, _client))) => return Err(login_error(e)),
            Ok(Ok(session)) => session,
        };
        let capabilities = within(limit, session.capabilities()).await?;
        let has_move = capabilities.has_str("MOVE");
        let has_uidplus = capabilities.has_str("UIDPLUS");
        tracing::debug!(
            security = ?config.security,
            has_move,
            has_uidplus,
            "logged in to the IMAP server"
        );
        Ok(ImapSession {
            session,
            config: self.config.clone(),
            limit,
            has_move,
            has_uidplus,
            selected: None,
            snapshot: None,
            processed_folder_exists: false,
            broken: false,
        })
    }
}

fn login_error(e: async_imap::error::Error) -> ImapError {
    use async_imap::error::Error as E;
    match e {
        E::No(m) | E::Bad(m) if is_unavailable(&m) => ImapError::Unavailable(server_text(&m)),
        E::No(m) | E::Bad(m) => ImapError::Auth(server_text(&m)),
        E::Validate(v) => ImapError::Config(format!(
            "the user name or password cannot be sent over IMAP ({v})"
        )),
        other => ImapError::from_imap(other),
    }
}

/// Runs one step of the conversation, bounded by `limit`.
async fn within<T, E: Into<async_imap::error::Error>>(
    limit: Duration,
    step: impl Future<Output = Result<T, E>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(limit, step).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(ImapError::from_imap(e.into())),
        Err(_) => Err(ImapError::Timeout(limit.as_secs())),
    }
}

/// Reads the server's first line: `OK` (or `PREAUTH`) to go on, `BYE` when it will not
/// serve this connection now.
async fn read_greeting<T>(
    client: &mut async_imap::Client<T>,
    limit: Duration,
) -> Result<(), ImapError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug,
{
    let greeting = within(limit, client.read_response()).await?;
    let Some(greeting) = greeting else {
        return Err(ImapError::ConnectionLost(
            "the server closed the connection before its greeting".to_owned(),
        ));
    };
    match greeting.parsed() {
        Response::Data {
            status: Status::Bye,
            information,
            ..
        } => Err(ImapError::Unavailable(
            information.as_deref().unwrap_or("BYE").to_owned(),
        )),
        Response::Data { .. } => Ok(()),
        other => Err(ImapError::Protocol(format!(
            "unexpected greeting: {}",
            short_debug(other)
        ))),
    }
}

/// A bounded rendering of an unexpected response, for an error message.
fn short_debug(value: &impl fmt::Debug) -> String {
    let mut text = format!("{value:?}");
    if text.len() > 200 {
        let mut end = 200;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

fn tls_connector(extra_ca: Option<&Path>) -> Result<TlsConnector, ImapError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let unreadable = |e: &dyn fmt::Display| {
            ImapError::Config(format!("imap.tls_ca_file {}: {e}", path.display()))
        };
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
            let cert = cert.map_err(|e| unreadable(&e))?;
            roots.add(cert).map_err(|e| unreadable(&e))?;
            added += 1;
        }
        if added == 0 {
            return Err(unreadable(&"holds no PEM certificate"));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn handshake(
    tls: &TlsConnector,
    host: &str,
    tcp: TcpStream,
    timeout_secs: u64,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| ImapError::Config(format!("imap.host {host:?} is not a host name")))?;
    let limit = Duration::from_secs(timeout_secs);
    match tokio::time::timeout(limit, tls.connect(name, tcp)).await {
        Err(_) => Err(ImapError::Timeout(timeout_secs)),
        Ok(Ok(stream)) => Ok(stream),
        // A certificate or protocol problem: rustls's own error, wrapped in an io::Error.
        Ok(Err(e)) => match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(tls_error) => Err(ImapError::Tls(tls_error.to_string())),
            None => Err(ImapError::Connect(format!("TLS handshake: {e}"))),
        },
    }
}

/// A logged-in connection. Not shared: one poll at a time uses it, then
/// [`ImapSession::logout`].
pub struct ImapSession {
    session: async_imap::Session<Stream>,
    config: Arc<ImapConfig>,
    limit: Duration,
    has_move: bool,
    has_uidplus: bool,
    /// The UIDVALIDITY of `config.mailbox` when this session last selected it.
    selected: Option<u32>,
    /// What the session's first `fetch_new` selected: later batches of the session read
    /// from it rather than select again (each `SELECT` makes the server rescan the
    /// whole mailbox, a cost per batch that grows with the backlog).
    snapshot: Option<Selected>,
    processed_folder_exists: bool,
    /// A command was cut off (timeout, lost connection): the stream is mid-response and
    /// nothing more can be said on it.
    broken: bool,
}

impl fmt::Debug for ImapSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapSession")
            .field("mailbox", &self.config.mailbox)
            .field("selected_uid_validity", &self.selected)
            .field("has_move", &self.has_move)
            .field("has_uidplus", &self.has_uidplus)
            .field("broken", &self.broken)
            .finish()
    }
}

/// The mailbox as `SELECT` reported it.
#[derive(Debug, Clone, Copy)]
struct Selected {
    uid_validity: u32,
    exists: u32,
    uid_next: Option<u32>,
}

impl ImapSession {
    /// Whether the server moves messages in one step (RFC 6851); without it
    /// [`ImapSession::mark_processed`] copies, flags `\Deleted` and expunges.
    pub fn has_move(&self) -> bool {
        self.has_move
    }

    fn usable(&self) -> Result<(), ImapError> {
        if self.broken {
            Err(ImapError::ConnectionLost(
                "an earlier command was cut off; connect again".to_owned(),
            ))
        } else {
            Ok(())
        }
    }

    /// Marks the session broken when `result` is an error that leaves the stream in an
    /// unknown state.
    fn note<T>(&mut self, result: Result<T, ImapError>) -> Result<T, ImapError> {
        if let Err(e) = &result
            && e.breaks_session()
        {
            self.broken = true;
        }
        result
    }

    async fn select(&mut self) -> Result<Selected, ImapError> {
        let name = encode_folder_name(&self.config.mailbox);
        // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
        self.selected = None;
        let result = within(self.limit, self.session.select(&name)).await;
        let mailbox = self.note(result)?;
        let uid_validity = mailbox.uid_validity.ok_or_else(|| {
            ImapError::Protocol("the server reported no UIDVALIDITY for the mailbox".to_owned())
        })?;
        self.selected = Some(uid_validity);
        Ok(Selected {
            uid_validity,
            exists: mailbox.exists,
            uid_next: mailbox.uid_next,
        })
    }

    /// Runs `UID FETCH set query` and returns each answer's UID, size and content,
    /// waiting at most the timeout between two answers (not for the whole batch).
    async fn uid_fetch(
        &mut self,
        set: &str,
        query: &str,
    ) -> Result<Vec<(Option<u32>, Option<u32>, Option<Vec<u8>>)>, ImapError> {
        let limit = self.limit;
        let session = &mut self.session;
        let result = async {
            let answers = within(limit, session.uid_fetch(set, query)).await?;
            let mut answers = std::pin::pin!(answers);
            let mut out = Vec::new();
            while let Some(fetch) = within(limit, answers.try_next()).await? {
                out.push((fetch.uid, fetch.size, fetch.body().map(<[u8]>::to_vec)));
            }
            Ok::<_, ImapError>(out)
        }
        .await;
        self.note(result)
    }

    /// Runs `UID SEARCH query`; the UIDs found, in increasing order.
    async fn uid_search(&mut self, query: &str) -> Result<Vec<u32>, ImapError> {
        let limit = self.limit;
        let result = within(limit, self.session.uid_search(query)).await;
        let mut uids: Vec<u32> = self.note(result)?.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Runs `UID STORE set query` (a `.SILENT` one: the answers are not needed).
    async fn uid_store(&mut self, set: &str, query: &str) -> Result<(), ImapError> {
        let limit = self.limit;
        let session = &mut self.session;
        let result = async {
            let answers = within(limit, session.uid_store(set, query)).await?;
            let mut answers = std::pin::pin!(answers);
            while within(limit, answers.try_next()).await?.is_some() {}
            Ok::<_, ImapError>(())
        }
        .await;
        self.note(result)
    }

    /// The sizes of the messages with a UID from `from` to `to` (or the last), above
    /// `after`, by increasing UID.
    async fn sizes(
        &mut self,
        from: u32,
        to: Option<u32>,
        after: u32,
    ) -> Result<Vec<(u32, Option<u32>)>, ImapError> {
        let set = match to {
            Some(to) => format!("{from}:{to}"),
            None => format!("{from}:*"),
        };
        // `from:*` always includes the highest UID, even when it is below `from`
        // (RFC 3501 §6.4.8): the filter drops it.
        let mut sizes: Vec<(u32, Option<u32>)> = self
            .uid_fetch(&set, "(UID RFC822.SIZE)")
            .await?
            .into_iter()
            .filter_map(|(uid, size, _)| Some((uid?, size)))
            .filter(|(uid, _)| *uid > after && *uid >= from && to.is_none_or(|to| *uid <= to))
            .collect();
        sizes.sort_unstable_by_key(|(uid, _)| *uid);
        sizes.dedup_by_key(|(uid, _)| *uid);
        Ok(sizes)
    }

    /// Selects the mailbox (on the session's first call; later calls work from what that
    /// `SELECT` reported, so mail that arrives meanwhile comes with the next session) and
    /// returns up to `batch_size` messages with a UID above
    /// `cursor` (all of them from UID 1 when `cursor` is `None` or its UIDVALIDITY is not
    /// the mailbox's), by increasing UID. Nothing is marked `\Seen`. Messages above
    /// `max_message_bytes` come without content (`too_large`).
    ///
    /// Two round trips: the sizes of the next `batch_size` UIDs (from UIDNEXT, so without
    /// reading the rest of the backlog; a gap left by removed mail costs one `UID SEARCH`),
    /// then the content of the batch's messages that fit.
    pub async fn fetch_new(&mut self, cursor: Option<Cursor>) -> Result<Batch, ImapError> {
        self.usable()?;
        let mailbox = match self.snapshot {
            Some(snapshot) if self.selected == Some(snapshot.uid_validity) => snapshot,
            _ => {
                let selected = self.select().await?;
                self.snapshot = Some(selected);
                selected
            }
        };
        let (reset, after) = match cursor {
            Some(c) if c.uid_validity == mailbox.uid_validity => (false, c.last_uid),
            Some(_) => (true, 0),
            None => (false, 0),
        };
        let mut batch = Batch {
            uid_validity: mailbox.uid_validity,
            reset,
            messages: Vec::new(),
            more: false,
        };
        let Some(first) = after.checked_add(1) else {
            return Ok(batch);
        };
        if mailbox.exists == 0 || mailbox.uid_next.is_some_and(|next| next <= first) {
            return Ok(batch);
        }
        let batch_size = usize::try_from(self.config.batch_size).unwrap_or(usize::MAX);
        let sizes = match mailbox.uid_next {
            // The sizes of one batch's range of UIDs only, so that a backlog of N costs
            // N/batch short fetches, not N/batch fetches of everything after the cursor.
            Some(next) => {
                let last = next.saturating_sub(1);
                let span = self.config.batch_size.max(1) - 1;
                let mut from = first;
                let mut to = from.saturating_add(span).min(last);
                let mut sizes = self.sizes(from, Some(to), after).await?;
                if sizes.is_empty() && to < last {
                    // A gap (messages removed by someone else): where does mail go on?
                    let rest = self.uid_search(&format!("UID {}:{last}", to + 1)).await?;
                    if let Some(&next_uid) = rest.iter().find(|u| **u > to) {
                        from = next_uid;
                        to = from.saturating_add(span).min(last);
                        sizes = self.sizes(from, Some(to), after).await?;
                    } else {
                        to = last;
                    }
                }
                batch.more = to < last;
                sizes
            }
            // No UIDNEXT (a server that does not say): everything after the cursor.
            None => {
                let mut sizes = self.sizes(first, None, after).await?;
                batch.more = sizes.len() > batch_size;
                sizes.truncate(batch_size);
                sizes
            }
        };

        let max = self.config.max_message_bytes;
        let wanted: Vec<u32> = sizes
            .iter()
            .filter(|(_, size)| size.is_none_or(|s| s <= max))
            .map(|(uid, _)| *uid)
            .collect();
        let mut bodies: HashMap<u32, Vec<u8>> = HashMap::with_capacity(wanted.len());
        if !wanted.is_empty() {
            for (uid, _, body) in self
                .uid_fetch(&uid_set(&wanted), "(UID BODY.PEEK[])")
                .await?
            {
                if let (Some(uid), Some(body)) = (uid, body) {
                    bodies.insert(uid, body);
                }
            }
        }
        for (uid, size) in sizes {
            match size {
                Some(size) if size > max => batch.messages.push(Fetched {
                    uid,
                    size,
                    raw: Vec::new(),
                    too_large: true,
                }),
                _ => match bodies.remove(&uid) {
                    Some(raw) => batch.messages.push(Fetched {
                        uid,
                        size: size.unwrap_or_else(|| u32::try_from(raw.len()).unwrap_or(u32::MAX)),
                        raw,
                        too_large: false,
                    }),
                    // Expunged by someone else between the two fetches: it is gone.
                    None => tracing::warn!(
                        uid,
                        "a message's content did not come: expunged meanwhile, or the server left it out"
                    ),
                },
            }
        }
        tracing::debug!(
            uid_validity = batch.uid_validity,
            reset = batch.reset,
            messages = batch.messages.len(),
            more = batch.more,
            "fetched new mail"
        );
        Ok(batch)
    }

    /// Marks the message `uid` of the mailbox `\Seen` and, when `processed_folder` is set,
    /// moves it there (creating the folder the first time). `uid` is one of the last
    /// [`Batch`] this session fetched: UIDs are only valid under that UIDVALIDITY.
    /// A UID that is no longer in the mailbox is not an error, so repeating this after a
    /// crash is harmless.
    ///
    /// Without `MOVE`, the message is copied, flagged `\Deleted` and expunged: with
    /// `UIDPLUS` only that message; without it, `EXPUNGE` also removes any other message
    /// someone flagged `\Deleted` in the mailbox.
    pub async fn mark_processed(&mut self, uid: u32) -> Result<(), ImapError> {
        self.usable()?;
        if self.selected.is_none() {
            self.select().await?;
        }
        let set = uid.to_string();
        self.uid_store(&set, "+FLAGS.SILENT (\\Seen)").await?;
        let Some(folder) = self.config.processed_folder.clone() else {
            return Ok(());
        };
        let folder = encode_folder_name(&folder);
        self.ensure_folder(&folder).await?;
        let limit = self.limit;
        if self.has_move {
            let result = within(limit, self.session.uid_mv(&set, &folder)).await;
            self.note(result)?;
        } else {
            let result = within(limit, self.session.uid_copy(&set, &folder)).await;
            self.note(result)?;
            self.uid_store(&set, "+FLAGS.SILENT (\\Deleted)").await?;
            let session = &mut self.session;
            let has_uidplus = self.has_uidplus;
            let result = async {
                if has_uidplus {
                    let gone = within(limit, session.uid_expunge(&set)).await?;
                    let mut gone = std::pin::pin!(gone);
                    while within(limit, gone.try_next()).await?.is_some() {}
                } else {
                    let gone = within(limit, session.expunge()).await?;
                    let mut gone = std::pin::pin!(gone);
                    while within(limit, gone.try_next()).await?.is_some() {}
                }
                Ok::<_, ImapError>(())
            }
            .await;
            self.note(result)?;
        }
        tracing::debug!(uid, "moved processed mail");
        Ok(())
    }

    /// Creates `folder` (already encoded) unless it exists, once per session.
    async fn ensure_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        if self.processed_folder_exists {
            return Ok(());
        }
        let limit = self.limit;
        let session = &mut self.session;
        let pattern = quote(folder);
        let result = async {
            let names = within(limit, session.list(Some(""), Some(&pattern))).await?;
            let mut names = std::pin::pin!(names);
            let mut found = false;
            while let Some(name) = within(limit, names.try_next()).await? {
                found |= name.name() == folder;
            }
            Ok::<_, ImapError>(found)
        }
        .await;
        let found = self.note(result)?;
        if !found {
            match within(limit, self.session.create(folder)).await {
                Ok(()) => {}
                // Created meanwhile by another poller (RFC 5530's code).
                Err(ImapError::Protocol(m)) if has_code(&m, &["ALREADYEXISTS"]) => {}
                Err(e) => return self.note(Err(e)),
            }
            // So that mail clients show it; not needed for moving mail there.
            let result = within(limit, self.session.subscribe(folder)).await;
            if let Err(e) = self.note(result) {
                tracing::debug!(error = %e, "could not subscribe to the processed folder");
            }
            tracing::info!("created the IMAP folder for processed mail");
        }
        self.processed_folder_exists = true;
        Ok(())
    }

    /// Says goodbye to the server. Dropping the session without it just closes the
    /// connection, which servers accept too.
    pub async fn logout(mut self) -> Result<(), ImapError> {
        if self.broken {
            return Ok(());
        }
        within(self.limit, self.session.logout()).await
    }
}

/// An IMAP quoted string.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A folder name in IMAP's modified UTF-7 (RFC 3501 §5.1.3), so a folder may be called
/// `已处理`: printable ASCII stays as it is (`&` becomes `&-`), anything else becomes
/// `&<base64 of UTF-16BE>-` with `,` for `/`.
pub fn encode_folder_name(name: &str) -> String {
    const MUTF7: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::IMAP_MUTF7,
        base64::engine::general_purpose::NO_PAD,
    );
    fn flush(out: &mut String, pending: &mut Vec<u16>) {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&MUTF7.encode(bytes));
        out.push('-');
        pending.clear();
    }
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut out, &mut pending);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut units));
        }
    }
    flush(&mut out, &mut pending);
    out
}

/// A sorted list of UIDs as an IMAP sequence set with ranges: `1:3,7,9:10`.
fn uid_set(uids: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = uids.iter().copied();
    let Some(mut start) = iter.next() else {
        return String::new();
    };
    let mut end = start;
    let push = |parts: &mut Vec<String>, start: u32, end: u32| {
        if start == end {
            parts.push(start.to_string());
        } else {
            parts.push(format!("{start}:{end}"));
        }
    };
    for uid in iter {
        if end.checked_add(1) == Some(uid) {
            end = uid;
        } else {
            push(&mut parts, start, end);
            start = uid;
            end = uid;
        }
    }
    push(&mut parts, start, end);
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> ImapConfig {
        ImapConfig {
            host: "imap.example.com".to_owned(),
            username: "privacy@example.com".to_owned(),
            password: Secret::new("hunter2-but-longer"),
            ..ImapConfig::default()
        }
    }

    #[test]
    fn a_complete_configuration_is_valid() {
        assert_eq!(valid().validate(), Vec::<String>::new());
        assert_eq!(valid().effective_port(), 993);
        let starttls = ImapConfig {
            security: ImapSecurity::Starttls,
            ..valid()
        };
        assert_eq!(starttls.effective_port(), 143);
    }

    #[test]
    fn plain_needs_allow_plain() {
        let plain = ImapConfig {
            security: ImapSecurity::Plain,
            ..valid()
        };
        let problems = plain.validate();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("imap.security:"), "{problems:?}");
        let allowed = ImapConfig {
            allow_plain: true,
            ..plain
        };
        assert!(allowed.validate().is_empty());
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let config = ImapConfig {
            host: " ".to_owned(),
            port: Some(0),
            username: String::new(),
            password: Secret::default(),
            mailbox: "INBOX".to_owned(),
            processed_folder: Some("inbox".to_owned()),
            batch_size: 0,
            max_message_bytes: 10,
            timeout_secs: 0,
            tls_ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..ImapConfig::default()
        };
        let problems = config.validate().join("\n");
        for key in [
            "imap.host:",
            "imap.port:",
            "imap.username:",
            "imap.password:",
            "imap.processed_folder: must differ",
            "imap.batch_size:",
            "imap.max_message_bytes:",
            "imap.timeout_secs:",
            "imap.tls_ca_file:",
        ] {
            assert!(problems.contains(key), "{key} missing from:\n{problems}");
        }
    }

    #[test]
    fn the_configuration_fills_defaults_and_refuses_unknown_keys() {
        let config: ImapConfig = parse(
            r#"{"host": "imap.example.com", "security": "starttls", "username": "u", "password": "p", "processed_folder": "已处理"}"#,
        );
        assert_eq!(config.security, ImapSecurity::Starttls);
        assert_eq!(config.mailbox, "INBOX");
        assert_eq!(config.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(config.processed_folder.as_deref(), Some("已处理"));
        assert!(serde_json::from_str::<ImapConfig>(r#"{"host": "h", "pasword": "typo"}"#).is_err());
    }

    fn parse(json: &str) -> ImapConfig {
        serde_json::from_str(json).expect("a valid configuration")
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let shown = format!("{:?}", valid());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn message_content_never_shows_in_debug_output() {
        let fetched = Fetched {
            uid: 7,
            size: 12,
            raw: b"Subject: Li".to_vec(),
            too_large: false,
        };
        let shown = format!("{fetched:?}");
        assert!(!shown.contains("Subject"), "{shown}");
        assert!(shown.contains("raw_len: 11"), "{shown}");
    }

    #[test]
    fn folder_names_are_modified_utf7() {
        // RFC 3501 §5.1.3's example.
        assert_eq!(
            encode_folder_name("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(encode_folder_name("Processed"), "Processed");
        assert_eq!(encode_folder_name("A&B"), "A&-B");
        // Outside the BMP: a surrogate pair in one run.
        assert_eq!(encode_folder_name("😀"), "&2D3eAA-");
    }

    #[test]
    fn uid_sets_use_ranges() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(
            uid_set(&[u32::MAX - 1, u32::MAX]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn server_texts_are_taken_out_of_async_imaps_rendering() {
        assert_eq!(
            server_text(r#"code: None, info: Some("[UNAVAILABLE] Temporary \"failure\".")"#),
            r#"[UNAVAILABLE] Temporary "failure"."#
        );
        assert_eq!(
            server_text("code: Some(Alert), info: None"),
            "code: Some(Alert), info: None"
        );
        assert!(is_unavailable(
            "[UNAVAILABLE] Temporary authentication failure."
        ));
        assert!(!is_unavailable("Message size exceeds the limit"));
        assert!(has_code(
            "[ALREADYEXISTS] Mailbox already exists",
            &["ALREADYEXISTS"]
        ));
    }

    #[test]
    fn transient_errors_are_the_ones_back_off_can_fix() {
        assert!(ImapError::Connect("refused".into()).is_transient());
        assert!(ImapError::Timeout(5).is_transient());
        assert!(ImapError::ConnectionLost("reset".into()).is_transient());
        assert!(ImapError::Unavailable("[UNAVAILABLE]".into()).is_transient());
        assert!(!ImapError::Auth("[AUTHENTICATIONFAILED]".into()).is_transient());
        assert!(!ImapError::Tls("UnknownIssuer".into()).is_transient());
        assert!(!ImapError::Config("x".into()).is_transient());
        assert!(!ImapError::Protocol("NO mailbox does not exist".into()).is_transient());
    }

    /// The poller runs in a spawned task: every step must be `Send`.
    #[allow(dead_code)]
    fn the_futures_are_send(client: &ImapClient, session: &mut ImapSession) {
        fn send<T: Send>(_: T) {}
        send(client.connect());
        send(session.fetch_new(None));
        send(session.mark_processed(1));
    }

    #[test]
    fn a_batch_gives_the_cursor_to_store() {
        let batch = Batch {
            uid_validity: 42,
            reset: true,
            messages: Vec::new(),
            more: false,
        };
        assert_eq!(
            batch.cursor_after(0),
            Cursor {
                uid_validity: 42,
                last_uid: 0
            }
        );
    }
}
