//! The `http` connector: a service of the company's that answers look-ups
//! (`docs/sources.md` is the protocol, with a worked example).
//!
//! Every call is a `POST` of a JSON body to the source's URL, signed:
//! `X-Rightsdesk-Timestamp: <Unix seconds>` and
//! `X-Rightsdesk-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with the
//! shared secret. The answer is signed the same way, so that nobody else can put data
//! into a person's bundle. A look-up is paged: `{"action": "lookup", "reference",
//! "identifiers": {"email", "mobile", "account_id"}, "cursor", "limit"}` answers
//! `{"records": [{"category", "table", "data": {…}}], "next_cursor"}` until
//! `next_cursor` is null. An erasure (`erase = true` in the file) is
//! `{"action": "erase", "reference", "identifiers", "restricted": {category: date},
//! "deactivate", "categories"}`,
//! answered `{"tables": [{"table", "category", "outcome", "rows"}]}`. A consent change
//! (`consent = true`) is `{"action": "consent", "reference", "identifiers", "purposes",
//! "change": "withdraw" | "narrow", "scope"}`, answered
//! `{"purposes": [{"purpose", "table", "rows"}]}`. A correction (`correct = true`) reads
//! the values held now with `{"action": "current", "reference", "identifiers",
//! "fields"}`, answered `{"values": {field: [value, …]}}`, and applies the approved
//! changes with `{"action": "correct", "reference", "identifiers", "changes": [{"field",
//! "value"}]}`, answered `{"fields": [{"field", "table", "rows", "old_values"}]}`.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rightsdesk_domain::Secret;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::HttpConfig;
use crate::{
    CheckItem, ConnectorError, ConsentOrder, CorrectionOrder, Counter, CurrentValues, EraseOrder,
    FieldCorrection, Identifiers, LookupStats, PurposeChange, Record, RecordSink, TableErasure,
    TableOutcome,
};

pub use rightsdesk_domain::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify};

/// How far a signed answer's timestamp may be from the clock.
pub const TOLERANCE_SECS: i64 = 300;
/// A look-up stops after this many pages (a source whose cursor never ends).
const MAX_PAGES: u32 = 100_000;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// A look-up service.
pub struct HttpSource {
    url: String,
    secret: Secret,
    page_size: u32,
    timeout: Duration,
    categories: BTreeSet<String>,
    erase: bool,
    consent: bool,
    correct: bool,
    client: reqwest::Client,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSource")
            .field("url", &self.url)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Page {
    records: Vec<PageRecord>,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct PageRecord {
    category: String,
    #[serde(default)]
    table: Option<String>,
    data: Map<String, Value>,
}

impl HttpSource {
    /// Checks `config`; problems go to `problems` (then `None`).
    pub fn new(
        config: &HttpConfig,
        secret: Secret,
        timeout: Duration,
        problems: &mut Vec<String>,
    ) -> Option<Self> {
        let before = problems.len();
        let url = config.url.trim();
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| {
                url.strip_prefix(p)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            });
        if !url.starts_with("https://") && !loopback {
            problems.push("url: must be https:// (plain http only on loopback)".to_owned());
        }
        if secret.expose().len() < 32 {
            problems.push("secret: at least 32 bytes".to_owned());
        }
        if !(1..=10_000).contains(&config.page_size) {
            problems.push("page_size must be from 1 to 10000".to_owned());
        }
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .build();
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("cannot build an HTTP client: {e}"));
                return None;
            }
        };
        (problems.len() == before).then(|| Self {
            url: url.to_owned(),
            secret,
            page_size: config.page_size,
            timeout,
            categories: BTreeSet::new(),
            erase: config.erase,
            consent: config.consent,
            correct: config.correct,
            client,
        })
    }

    /// The categories the source may answer with (others are a protocol error).
    pub fn with_categories(mut self, categories: BTreeSet<String>) -> Self {
        self.categories = categories;
        self
    }

    /// Posts `body`, signed, and returns the signed answer.
    async fn call(&self, body: &Value) -> Result<Value, ConnectorError> {
        let bytes =
            serde_json::to_vec(body).map_err(|e| ConnectorError::Protocol(e.to_string()))?;
        let timestamp = unix_now().to_string();
        let signature = sign(self.secret.expose().as_bytes(), &timestamp, &bytes);
        let response = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, signature)
            .body(bytes)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    ConnectorError::Timeout(self.timeout.as_secs())
                } else {
                    ConnectorError::Unreachable(without_url(&e))
                }
            })?;
        let status = response.status();
        let their_timestamp = header(&response, TIMESTAMP_HEADER);
        let their_signature = header(&response, SIGNATURE_HEADER);
        let answer = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                ConnectorError::Timeout(self.timeout.as_secs())
            } else {
                ConnectorError::Unreachable(without_url(&e))
            }
        })?;
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ConnectorError::Refused(format!(
                "HTTP {status}: check the shared secret and the clocks"
            )));
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(ConnectorError::Unreachable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(ConnectorError::Protocol(format!("HTTP {status}")));
        }
        let (Some(ts), Some(sig)) = (their_timestamp, their_signature) else {
            return Err(ConnectorError::Protocol(
                "the answer is not signed".to_owned(),
            ));
        };
        let fresh = ts
            .trim()
            .parse::<i64>()
            .is_ok_and(|t| (unix_now() - t).abs() <= TOLERANCE_SECS);
        if !fresh || !verify(self.secret.expose().as_bytes(), ts.trim(), &answer, &sig) {
            return Err(ConnectorError::Protocol(
                "the answer's signature does not match".to_owned(),
            ));
        }
        serde_json::from_slice(&answer)
            .map_err(|e| ConnectorError::Protocol(format!("the answer is not JSON: {e}")))
    }

    /// Pages through the source's records of `ids` into `sink`.
    pub async fn lookup(
        &self,
        reference: &str,
        ids: &Identifiers,
        sink: &mut impl RecordSink,
    ) -> Result<LookupStats, ConnectorError> {
        let mut stats = Counter::default();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let answer = self
                .call(&json!({
                    "action": "lookup",
                    "reference": reference,
                    "identifiers": Self::identifiers(ids),
                    "cursor": cursor,
                    "limit": self.page_size,
                }))
                .await?;
            let page: Page = serde_json::from_value(answer)
                .map_err(|e| ConnectorError::Protocol(format!("not a page of records: {e}")))?;
            if page.records.len() > self.page_size as usize {
                return Err(ConnectorError::Protocol(format!(
                    "{} records in a page of at most {}",
                    page.records.len(),
                    self.page_size
                )));
            }
            for r in page.records {
                if !self.categories.contains(&r.category) {
                    return Err(ConnectorError::Protocol(format!(
                        "category {:?} is not one this source declares",
                        r.category
                    )));
                }
                *stats.per_category.entry(r.category.clone()).or_default() += 1;
                sink.accept(Record {
                    table: r.table.unwrap_or_else(|| r.category.clone()),
                    category: r.category,
                    data: r.data,
                })
                .await?;
            }
            match page.next_cursor {
                None => return Ok(stats),
                Some(next) if cursor.as_ref() == Some(&next) => {
                    return Err(ConnectorError::Protocol(
                        "the next cursor repeats the last one".to_owned(),
                    ));
                }
                Some(next) => cursor = Some(next),
            }
        }
        Err(ConnectorError::Protocol(format!(
            "more than {MAX_PAGES} pages"
        )))
    }

    /// Whether the service carries out erasures (`erase = true`).
    pub fn erasable(&self) -> bool {
        self.erase
    }

    /// `{"action": "erase"}`: the service erases the person's data, or keeps the
    /// `restricted` categories until the date given, and says what it did per table.
    pub async fn erase(
        &self,
        reference: &str,
        order: &EraseOrder<'_>,
    ) -> Result<Vec<TableErasure>, ConnectorError> {
        if !self.erase {
            return Err(ConnectorError::Refused(
                "the service does not carry out erasures (erase = false)".to_owned(),
            ));
        }
        let ids = order.ids;
        let answer = self
            .call(&json!({
                "action": "erase",
                "reference": reference,
                "identifiers": Self::identifiers(ids),
                "restricted": order.restricted,
                "deactivate": order.deactivate,
                "categories": order.only,
            }))
            .await?;
        #[derive(Deserialize)]
        struct Answer {
            tables: Vec<Table>,
        }
        #[derive(Deserialize)]
        struct Table {
            #[serde(default)]
            table: Option<String>,
            category: String,
            outcome: TableOutcome,
            rows: u64,
        }
        let answer: Answer = serde_json::from_value(answer)
            .map_err(|e| ConnectorError::Protocol(format!("not an erasure's answer: {e}")))?;
        let mut done = Vec::new();
        for t in answer.tables {
            if !self.categories.contains(&t.category) {
                return Err(ConnectorError::Protocol(format!(
                    "category {:?} is not one this source declares",
                    t.category
                )));
            }
            if t.outcome != TableOutcome::Deactivated
                && order.only.is_some_and(|only| !only.contains(&t.category))
            {
                return Err(ConnectorError::Protocol(format!(
                    "category {:?} was not to be erased",
                    t.category
                )));
            }
            if t.outcome == TableOutcome::Deactivated && !order.deactivate {
                return Err(ConnectorError::Protocol(
                    "an account was deactivated, but this is no account closure".to_owned(),
                ));
            }
            let kept = order.restricted.contains_key(&t.category);
            if t.outcome != TableOutcome::Deactivated
                && kept != (t.outcome == TableOutcome::Restricted)
            {
                return Err(ConnectorError::Protocol(format!(
                    "category {:?} answered {:?}, but it was {}",
                    t.category,
                    t.outcome,
                    if kept {
                        "to be kept under its retention rule"
                    } else {
                        "to be erased"
                    }
                )));
            }
            done.push(TableErasure {
                table: t.table.unwrap_or_else(|| t.category.clone()),
                category: t.category,
                outcome: t.outcome,
                rows: t.rows,
            });
        }
        Ok(done)
    }

    /// Whether the service applies consent changes (`consent = true`).
    pub fn applies_consent(&self) -> bool {
        self.consent
    }

    /// `{"action": "consent"}`: the service records that the person withdrew or narrowed
    /// their consent to `purposes`, and says what it changed per purpose.
    pub async fn change_consent(
        &self,
        reference: &str,
        order: &ConsentOrder<'_>,
    ) -> Result<Vec<PurposeChange>, ConnectorError> {
        if !self.consent {
            return Err(ConnectorError::Refused(
                "the service does not apply consent changes (consent = false)".to_owned(),
            ));
        }
        let ids = order.ids;
        let answer = self
            .call(&json!({
                "action": "consent",
                "reference": reference,
                "identifiers": Self::identifiers(ids),
                "purposes": order.purposes,
                "change": order.change,
                "scope": order.scope,
            }))
            .await?;
        #[derive(Deserialize)]
        struct Answer {
            purposes: Vec<PurposeChange>,
        }
        let answer: Answer = serde_json::from_value(answer)
            .map_err(|e| ConnectorError::Protocol(format!("not a consent change's answer: {e}")))?;
        for p in &answer.purposes {
            if !order.purposes.contains(&p.purpose) {
                return Err(ConnectorError::Protocol(format!(
                    "purpose {:?} was not to be changed",
                    p.purpose
                )));
            }
        }
        Ok(answer.purposes)
    }

    /// Whether the service reads and applies corrections (`correct = true`).
    pub fn applies_correction(&self) -> bool {
        self.correct
    }

    /// `{email, mobile, account_id}`, as every action sends them.
    fn identifiers(ids: &Identifiers) -> Value {
        json!({
            "email": ids.email,
            "mobile": ids.mobile,
            "account_id": ids.account_id,
        })
    }

    /// `{"action": "current"}`: the values the service holds now for `fields`.
    pub async fn current_values(
        &self,
        reference: &str,
        ids: &Identifiers,
        fields: &[String],
    ) -> Result<CurrentValues, ConnectorError> {
        if !self.correct {
            return Err(ConnectorError::Refused(
                "the service does not apply corrections (correct = false)".to_owned(),
            ));
        }
        let answer = self
            .call(&json!({
                "action": "current",
                "reference": reference,
                "identifiers": Self::identifiers(ids),
                "fields": fields,
            }))
            .await?;
        #[derive(Deserialize)]
        struct Answer {
            values: CurrentValues,
        }
        let answer: Answer = serde_json::from_value(answer)
            .map_err(|e| ConnectorError::Protocol(format!("not a current values' answer: {e}")))?;
        if let Some(field) = answer.values.keys().find(|f| !fields.contains(f)) {
            return Err(ConnectorError::Protocol(format!(
                "field {field:?} was not asked for"
            )));
        }
        Ok(answer.values)
    }

    /// `{"action": "correct"}`: the service sets the fields to their new values and
    /// says, per field, what it changed and the values it replaced.
    pub async fn correct(
        &self,
        reference: &str,
        order: &CorrectionOrder<'_>,
    ) -> Result<Vec<FieldCorrection>, ConnectorError> {
        if !self.correct {
            return Err(ConnectorError::Refused(
                "the service does not apply corrections (correct = false)".to_owned(),
            ));
        }
        let answer = self
            .call(&json!({
                "action": "correct",
                "reference": reference,
                "identifiers": Self::identifiers(order.ids),
                "changes": order.changes,
            }))
            .await?;
        #[derive(Deserialize)]
        struct Answer {
            fields: Vec<FieldCorrection>,
        }
        let answer: Answer = serde_json::from_value(answer)
            .map_err(|e| ConnectorError::Protocol(format!("not a correction's answer: {e}")))?;
        if let Some(f) = answer
            .fields
            .iter()
            .find(|f| !order.changes.iter().any(|c| c.field == f.field))
        {
            return Err(ConnectorError::Protocol(format!(
                "field {:?} was not to be corrected",
                f.field
            )));
        }
        Ok(answer.fields)
    }

    /// `{"action": "check"}`: the service answers, signed, and says what it holds.
    pub async fn check(&self) -> Vec<CheckItem> {
        let (ok, detail) = match self.call(&json!({"action": "check"})).await {
            Ok(answer) => {
                let theirs: BTreeSet<String> = answer["categories"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let missing: Vec<&String> = self.categories.difference(&theirs).collect();
                if answer["ok"] != json!(true) {
                    (false, format!("the service answered {answer}"))
                } else if !missing.is_empty() {
                    (
                        false,
                        format!(
                            "the service does not hold {missing:?}, which the sources file declares"
                        ),
                    )
                } else {
                    (true, "answers, signed".to_owned())
                }
            }
            Err(e) => (false, e.to_string()),
        };
        vec![CheckItem {
            name: "service".to_owned(),
            ok,
            detail,
        }]
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A client error without the URL (it may carry a token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}
