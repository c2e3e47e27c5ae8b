//! Real text messages in tests: an SMS gateway on a free loopback port that speaks the
//! protocol of docs/sms-gateway.md as a company's gateway would. It checks every
//! request (signature, timestamp, idempotency key), records what it accepts, drops a
//! message it has already accepted, and can be told to answer 503 or 400. Also a reader
//! for the development provider's folder.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// The secret the gateway and, unless a test says otherwise, the service share.
pub const GATEWAY_SECRET: &str = "the test gateway's secret, well over 32 bytes";

/// How far a request's timestamp may be from the gateway's clock, as the protocol
/// advises receivers.
const MAX_SKEW_SECS: u64 = 300;

/// How the gateway answers a request whose signature is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayMode {
    /// `200` with `{"message_id"}`; a message already accepted is not recorded again.
    Accept,
    /// `503`: a temporary outage.
    Unavailable,
    /// `400` with an error that echoes the number, as careless gateways do.
    Reject,
}

/// A text message the gateway accepted.
#[derive(Debug, Clone)]
pub struct AcceptedSms {
    pub id: String,
    pub to: String,
    pub text: String,
    pub message_id: String,
}

impl AcceptedSms {
    /// The 6-digit code at the start of a verification message.
    pub fn code(&self) -> String {
        let code: String = self.text.chars().take(6).collect();
        assert!(
            code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
            "no code in {:?}",
            self.text
        );
        code
    }
}

/// One request as the gateway saw it, and its answer.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    /// `Idempotency-Key`.
    pub idempotency_key: String,
    /// The body's `id`, empty when the body could not be read.
    pub id: String,
    pub status: u16,
}

struct State {
    secret: Vec<u8>,
    mode: GatewayMode,
    requests: Vec<GatewayRequest>,
    accepted: Vec<AcceptedSms>,
}

/// A running gateway; stopped when dropped.
pub struct SmsGateway {
    /// Where the service posts: `http://127.0.0.1:<port>/sms`.
    pub url: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
}

impl SmsGateway {
    /// A gateway that accepts messages signed with `secret`.
    pub async fn start(secret: &str) -> Self {
        let state = Arc::new(Mutex::new(State {
            secret: secret.as_bytes().to_vec(),
            mode: GatewayMode::Accept,
            requests: Vec::new(),
            accepted: Vec::new(),
        }));
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/sms", web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind the gateway to a loopback port");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/sms"),
            state,
            handle,
        }
    }

    pub fn set_mode(&self, mode: GatewayMode) {
        self.lock().mode = mode;
    }

    /// The messages accepted so far, each once, oldest first.
    pub fn messages(&self) -> Vec<AcceptedSms> {
        self.lock().accepted.clone()
    }

    /// Every request received so far, duplicates and refusals included, oldest first.
    pub fn requests(&self) -> Vec<GatewayRequest> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for SmsGateway {
    fn drop(&mut self) {
        // The stop command is sent when `stop` is called; nothing needs to wait for it.
        drop(self.handle.stop(false));
    }
}

/// `POST /sms`: checks the request, then answers as the mode says.
async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let idempotency_key = header("Idempotency-Key");
    let checked = check(
        &state.secret,
        &header("Content-Type"),
        &header("X-Rightsdesk-Timestamp"),
        &header("X-Rightsdesk-Signature"),
        &idempotency_key,
        &body,
    );
    let (status, answer) = match checked {
        Err((status, error)) => (status, json!({ "error": error })),
        Ok(message) => answer(&mut state, message),
    };
    let id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    state.requests.push(GatewayRequest {
        idempotency_key,
        id,
        status: status.as_u16(),
    });
    HttpResponse::build(status).json(answer)
}

/// The answer to a well-signed `message`, as the mode says.
fn answer(state: &mut State, message: AcceptedSms) -> (StatusCode, Value) {
    match state.mode {
        GatewayMode::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "upstream carrier unavailable"}),
        ),
        GatewayMode::Reject => (
            StatusCode::BAD_REQUEST,
            json!({"error": format!("invalid recipient {}", message.to)}),
        ),
        GatewayMode::Accept => {
            if let Some(known) = state.accepted.iter().find(|m| m.id == message.id) {
                return (StatusCode::OK, json!({"message_id": known.message_id}));
            }
            let message_id = format!("gw-{}", state.accepted.len() + 1);
            let message = AcceptedSms {
                message_id: message_id.clone(),
                ..message
            };
            state.accepted.push(message);
            (StatusCode::OK, json!({ "message_id": message_id }))
        }
    }
}

/// What a receiver must check (docs/sms-gateway.md): the content type, a fresh
/// timestamp, the signature over `"<timestamp>.<body>"` (compared in constant time), a
/// body `{"id", "to", "text"}`, and an idempotency key equal to the id.
fn check(
    secret: &[u8],
    content_type: &str,
    timestamp: &str,
    signature: &str,
    idempotency_key: &str,
    body: &[u8],
) -> Result<AcceptedSms, (StatusCode, &'static str)> {
    let unauthorized = |m| (StatusCode::UNAUTHORIZED, m);
    let bad = |m| (StatusCode::BAD_REQUEST, m);
    if content_type != "application/json" {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/json",
        ));
    }
    let sent: u64 = timestamp
        .parse()
        .map_err(|_| unauthorized("missing or malformed timestamp"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if now.abs_diff(sent) > MAX_SKEW_SECS {
        return Err(unauthorized("timestamp too far from now"));
    }
    let given = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| unauthorized("missing or malformed signature"))?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| unauthorized("signature mismatch"))?;
    let value: Value = serde_json::from_slice(body).map_err(|_| bad("the body is not JSON"))?;
    let field = |name: &str| value[name].as_str().map(str::to_owned);
    let (Some(id), Some(to), Some(text)) = (field("id"), field("to"), field("text")) else {
        return Err(bad("expected {\"id\", \"to\", \"text\"}"));
    };
    if idempotency_key != id {
        return Err(bad("Idempotency-Key must equal the id"));
    }
    Ok(AcceptedSms {
        id,
        to,
        text,
        message_id: String::new(),
    })
}

/// The development provider's messages in `dir` (`<mail.folder>/sms`): each file's
/// name without `.json`, and its `{"to", "text"}`.
pub fn folder_messages(dir: &Path) -> Vec<(String, Value)> {
    let mut messages: Vec<(String, Value)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.strip_suffix(".json")?.to_owned();
            if name.starts_with('.') {
                return None;
            }
            let value = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            Some((name, value))
        })
        .collect();
    messages.sort_by(|a, b| a.0.cmp(&b.0));
    messages
}
