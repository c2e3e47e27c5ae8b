//! Delivering one text message through the configured provider (SPEC §5): into a folder
//! on the embedded defaults, or to an HTTP SMS gateway with a signed JSON request
//! (the protocol is in docs/sms-gateway.md). Failures say whether a retry can help,
//! and never carry the number or the text.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue};

use crate::config::{SmsConfig, SmsProviderKind, check_gateway_url};
use crate::transport::{SendError, file_stem, write_once};

/// The request's Unix time in seconds, and `sha256=<hex HMAC-SHA256(secret,
/// "<timestamp>.<body>")>`: the scheme of `rightsdesk_domain::signature`.
pub use rightsdesk_domain::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
/// The header with the message's id, the same on every attempt.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The most of a refusing gateway's answer kept in the error, in characters.
const EXCERPT_CHARS: usize = 200;
/// The most of an answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 4096;

/// One text message to one mobile number.
#[derive(Clone)]
pub struct Sms {
    /// The notification's id: stable across retries, so that a gateway can recognise a
    /// message delivered twice after a crash.
    pub id: String,
    /// The number, E.164 (`+8613812345678`).
    pub to: String,
    pub text: String,
}

/// The number and the text are personal data: they stay out of logs.
impl std::fmt::Debug for Sms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sms({}, <redacted>)", self.id)
    }
}

/// Where text messages go, built once at start from `[sms]`.
pub enum SmsProvider {
    /// The development provider: `<dir>/<id>.json` with `{"to", "text"}`, written once.
    Folder(PathBuf),
    /// An HTTP SMS gateway.
    Http(HttpGateway),
}

impl std::fmt::Debug for SmsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Folder(dir) => write!(f, "SmsProvider(folder {})", dir.display()),
            Self::Http(gateway) => write!(f, "SmsProvider({gateway:?})"),
        }
    }
}

impl SmsProvider {
    /// The provider `config` names; the folder provider writes into `<mail_folder>/sms`.
    pub fn new(config: &SmsConfig, mail_folder: &Path) -> Result<Self, String> {
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(match config.provider {
            SmsProviderKind::Folder => Self::Folder(mail_folder.join("sms")),
            SmsProviderKind::Http => {
                let http = &config.http;
                let url = http.url.as_deref().unwrap_or_default();
                let secret = http.secret.as_deref().unwrap_or_default();
                Self::Http(HttpGateway::new(
                    url.trim(),
                    secret.as_bytes(),
                    Duration::from_secs(http.timeout_secs),
                )?)
            }
        })
    }

    /// Sends `sms`. Sending the same message (same id) again is safe: the folder keeps
    /// the first file, and the gateway is told the id to drop a duplicate.
    pub async fn send(&self, sms: &Sms) -> Result<(), SendError> {
        match self {
            Self::Folder(dir) => write_to_folder(dir, sms).await,
            Self::Http(gateway) => gateway.send(sms).await,
        }
    }
}

/// Writes `<dir>/<id>.json` on the blocking pool, once.
async fn write_to_folder(dir: &Path, sms: &Sms) -> Result<(), SendError> {
    let body = serde_json::to_vec_pretty(&serde_json::json!({ "to": sms.to, "text": sms.text }))
        .map_err(|e| SendError::Permanent(e.to_string()))?;
    let dir = dir.to_owned();
    let name = format!("{}.json", file_stem(&sms.id));
    tokio::task::spawn_blocking(move || write_once(&dir, &name, &body))
        .await
        .map_err(|e| SendError::Transient(format!("writing the message: {e}")))?
}

/// The client of an HTTP SMS gateway: one signed `POST` per message.
pub struct HttpGateway {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Vec<u8>,
    timeout: Duration,
}

/// Only the gateway's origin: its path or query may carry a token, and the secret never
/// shows.
impl std::fmt::Debug for HttpGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HttpGateway({})",
            self.url.origin().ascii_serialization()
        )
    }
}

impl HttpGateway {
    /// A client for the gateway at `url`, signing with `secret`; each request may take
    /// `timeout`. Redirects are not followed: a signed message goes only where configured.
    pub fn new(url: &str, secret: &[u8], timeout: Duration) -> Result<Self, String> {
        let url = check_gateway_url(url).map_err(|m| format!("sms.http.url: {m}"))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rightsdesk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("sms.http: cannot build the HTTP client: {e}"))?;
        Ok(Self {
            client,
            url,
            secret: secret.to_vec(),
            timeout,
        })
    }

    /// Posts `sms` and classifies the answer (see [`classify`]).
    pub async fn send(&self, sms: &Sms) -> Result<(), SendError> {
        let body = request_body(sms)?;
        let timestamp = unix_now();
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature(&self.secret, timestamp, &body))
            .header(IDEMPOTENCY_HEADER, sms.id.as_str())
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let answer = read_answer(response).await;
        classify(status, &redact(&answer, sms))?;
        if let Some(message_id) = gateway_message_id(&answer) {
            tracing::debug!(notification_id = %sms.id, gateway_message_id = %message_id, "SMS accepted by the gateway");
        }
        Ok(())
    }

    /// A request that got no answer: always worth a retry. The URL is left out.
    fn transport_error(&self, e: &reqwest::Error) -> SendError {
        if e.is_timeout() {
            return SendError::Transient(format!(
                "the SMS gateway did not answer within {} s",
                self.timeout.as_secs()
            ));
        }
        let mut message = String::from("cannot reach the SMS gateway");
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        SendError::Transient(message)
    }
}

/// The JSON a gateway receives, fields in this order.
#[derive(serde::Serialize)]
struct RequestBody<'a> {
    id: &'a str,
    to: &'a str,
    text: &'a str,
}

/// `{"id", "to", "text"}`, the bytes that are signed and sent.
fn request_body(sms: &Sms) -> Result<Vec<u8>, SendError> {
    serde_json::to_vec(&RequestBody {
        id: &sms.id,
        to: &sms.to,
        text: &sms.text,
    })
    .map_err(|e| SendError::Permanent(format!("cannot encode the message: {e}")))
}

/// Seconds since the Unix epoch on this machine's clock: the gateway compares it with
/// its own to refuse replays, so it is the wall clock, not the service's clock.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The `X-Rightsdesk-Signature` value: `sha256=` and the lower-case hex of
/// HMAC-SHA256 with `secret` over `"<timestamp>.<body>"` (`rightsdesk_domain::signature`).
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    rightsdesk_domain::signature::sign(secret, &timestamp.to_string(), body)
}

/// What the gateway's status means: 2xx accepted; 408, 429 and 5xx a temporary
/// failure (the outbox retries with its own back-off); anything else, other 4xx and a
/// redirect alike, a refusal that a retry would not change. `excerpt` is the start of
/// the answer, already free of the number and the text.
pub fn classify(status: StatusCode, excerpt: &str) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let message = if excerpt.is_empty() {
        format!("the SMS gateway answered {status}")
    } else {
        format!("the SMS gateway answered {status}: {excerpt}")
    };
    let transient = status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS;
    Err(if transient {
        SendError::Transient(message)
    } else {
        SendError::Permanent(message)
    })
}

/// The first `MAX_ANSWER_BYTES` of the answer's body, as text; empty when it cannot be
/// read.
async fn read_answer(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(MAX_ANSWER_BYTES);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `message_id` of an accepting answer, when it carries one.
fn gateway_message_id(answer: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(answer).ok()?;
    let id = value.get("message_id")?.as_str()?;
    Some(id.chars().take(128).collect())
}

/// The start of a gateway's answer, fit for an error that officers see and logs keep:
/// one line, at most `EXCERPT_CHARS` characters, with the message's text and every run
/// of six or more digits (a number, a code) replaced, since a gateway may echo them.
pub fn redact(answer: &str, sms: &Sms) -> String {
    let mut text = answer.to_owned();
    for secret in [sms.text.as_str(), sms.to.as_str()] {
        if !secret.is_empty() {
            text = text.replace(secret, "[redacted]");
        }
    }
    let mut out = String::new();
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 6 {
            out.push_str("[redacted]");
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        flush(&mut digits, &mut out);
        if c.is_whitespace() || c.is_control() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    let out = out.trim();
    match out.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &out[..cut]),
        None => out.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms() -> Sms {
        Sms {
            id: "01a22715-c75c-70f5-a1b0-2fbba79515c4".to_owned(),
            to: "+8613812345678".to_owned(),
            text: "442689 是您的身份验证码（PR-2026-873821）".to_owned(),
        }
    }

    /// The worked example of docs/sms-gateway.md, computed independently with Python's
    /// `hmac` module.
    #[test]
    fn the_signature_is_the_documented_hmac() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let body = br#"{"id":"01a22715-c75c-70f5-a1b0-2fbba79515c4","to":"+8613812345678","text":"442689 is your verification code (PR-2026-873821)"}"#;
        assert_eq!(
            signature(secret, 1_772_330_400, body),
            "sha256=229ed05a5185ad2f755e1c151c07a795a8c83508be8454f11c291201a9d41bde"
        );
    }

    #[test]
    fn the_signature_covers_the_secret_the_timestamp_and_every_byte() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let base = signature(secret, 1_772_330_400, b"{}");
        assert!(
            base.starts_with("sha256=") && base.len() == 7 + 64,
            "{base}"
        );
        assert_ne!(
            signature(b"another secret of thirty-two bytes", 1_772_330_400, b"{}"),
            base
        );
        assert_ne!(signature(secret, 1_772_330_401, b"{}"), base);
        assert_ne!(signature(secret, 1_772_330_400, b"{ }"), base);
    }

    #[test]
    fn the_body_is_the_documented_json() {
        let body = request_body(&sms()).expect("a body");
        assert_eq!(
            String::from_utf8(body).expect("UTF-8"),
            r#"{"id":"01a22715-c75c-70f5-a1b0-2fbba79515c4","to":"+8613812345678","text":"442689 是您的身份验证码（PR-2026-873821）"}"#
        );
    }

    fn outcome(status: u16) -> &'static str {
        match classify(StatusCode::from_u16(status).expect("a status"), "") {
            Ok(()) => "accepted",
            Err(SendError::Transient(_)) => "transient",
            Err(SendError::Permanent(_)) => "permanent",
        }
    }

    #[test]
    fn statuses_are_classified_as_documented() {
        for status in [200, 201, 202, 204] {
            assert_eq!(outcome(status), "accepted", "{status}");
        }
        for status in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(outcome(status), "transient", "{status}");
        }
        for status in [301, 302, 307, 400, 401, 403, 404, 409, 410, 413, 422] {
            assert_eq!(outcome(status), "permanent", "{status}");
        }
    }

    #[test]
    fn a_refusal_names_the_status_and_the_start_of_the_answer() {
        let Err(SendError::Permanent(m)) =
            classify(StatusCode::BAD_REQUEST, "{\"error\": \"unknown template\"}")
        else {
            panic!("a permanent failure");
        };
        assert_eq!(
            m,
            "the SMS gateway answered 400 Bad Request: {\"error\": \"unknown template\"}"
        );
    }

    #[test]
    fn the_excerpt_keeps_neither_the_number_nor_the_text_and_is_short() {
        let sms = sms();
        let answer = format!(
            "{{\"error\": \"refused\",\n \"to\": \"{}\", \"national\": \"13812345678\", \"text\": \"{}\", \"code\": 40001}}",
            sms.to, sms.text
        );
        let excerpt = redact(&answer, &sms);
        assert!(!excerpt.contains("13812345678"), "{excerpt}");
        assert!(!excerpt.contains("442689"), "{excerpt}");
        assert!(!excerpt.contains('\n'), "{excerpt}");
        assert!(excerpt.contains("40001"), "short numbers stay: {excerpt}");
        assert!(excerpt.contains("refused"), "{excerpt}");

        let long = redact(&"x".repeat(5_000), &sms);
        assert_eq!(long.chars().count(), EXCERPT_CHARS + 1, "{long}");
        assert!(long.ends_with('…'));
        // A cut never splits a character.
        let wide = redact(&"验".repeat(300), &sms);
        assert_eq!(wide.chars().count(), EXCERPT_CHARS + 1);
    }

    #[test]
    fn the_gateway_message_id_is_read_when_present() {
        assert_eq!(
            gateway_message_id(r#"{"message_id": "gw-17"}"#).as_deref(),
            Some("gw-17")
        );
        assert_eq!(gateway_message_id(r#"{"ok": true}"#), None);
        assert_eq!(gateway_message_id("accepted"), None);
        assert_eq!(gateway_message_id(""), None);
    }

    #[test]
    fn debug_output_shows_neither_the_secret_nor_the_message() {
        let gateway = HttpGateway::new(
            "https://sms.example.com/send?token=abc",
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(10),
        )
        .expect("a gateway");
        let shown = format!("{:?} {:?}", SmsProvider::Http(gateway), sms());
        assert!(shown.contains("https://sms.example.com"), "{shown}");
        for hidden in ["0123456789abcdef", "token=abc", "13812345678", "442689"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
    }

    /// A loopback server that accepts connections and never answers.
    async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!("http://{}/send", listener.local_addr().expect("an address"));
        let task = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        (url, task)
    }

    #[tokio::test]
    async fn a_gateway_that_does_not_answer_in_time_is_a_temporary_failure() {
        let (url, server) = silent_server().await;
        let gateway = HttpGateway::new(
            &url,
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(1),
        )
        .expect("a gateway");
        let started = std::time::Instant::now();
        let Err(SendError::Transient(m)) = gateway.send(&sms()).await else {
            panic!("a temporary failure");
        };
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(m.contains("did not answer within 1 s"), "{m}");
        server.abort();
    }

    #[tokio::test]
    async fn a_gateway_that_is_down_is_a_temporary_failure_without_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let gateway = HttpGateway::new(
            &format!("http://127.0.0.1:{port}/send?token=abc"),
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(2),
        )
        .expect("a gateway");
        let Err(SendError::Transient(m)) = gateway.send(&sms()).await else {
            panic!("a temporary failure");
        };
        assert!(m.starts_with("cannot reach the SMS gateway"), "{m}");
        assert!(!m.contains("token=abc"), "{m}");
    }

    #[tokio::test]
    async fn the_folder_provider_writes_each_message_once() {
        let dir = std::env::temp_dir().join(format!("rightsdesk-sms-{}", unix_now_nanos()));
        let provider = SmsProvider::Folder(dir.clone());
        let mut message = sms();
        provider.send(&message).await.expect("written");
        message.text = "changed".to_owned();
        provider
            .send(&message)
            .await
            .expect("a second send does nothing");
        let path = dir.join(format!("{}.json", message.id));
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("the file")).expect("JSON");
        assert_eq!(
            written,
            serde_json::json!({"to": "+8613812345678", "text": sms().text})
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    fn unix_now_nanos() -> u128 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    }
}
