//! The company's systems that hold personal data (SPEC §7), as rightsdesk reaches them.
//!
//! A **source** is declared in the sources file (`config`): a name, an owner, the data
//! categories it holds, and a connector:
//! - `sql` ([`sql::SqlSource`]): a PostgreSQL, MySQL/MariaDB or SQLite database read
//!   with the identity columns and exported columns of each table; identifiers are
//!   validated and quoted, values always bound;
//! - `http` ([`http::HttpSource`]): a service that answers look-ups signed with
//!   HMAC-SHA256 (the protocol is in `docs/sources.md`);
//! - `manual`: nothing to call; the source's owner is asked and uploads the data.
//!
//! A look-up streams [`Record`]s into a [`RecordSink`] (a channel to the bundle writer,
//! or a counter for an access summary): a person's data is never held whole in memory.

pub mod config;
pub mod http;
pub mod sql;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use rightsdesk_domain::kinds::ConsentChange;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use config::{ConnectorConfig, SourceConfig, Sources, SourcesError};

/// The identifiers of a verified subject that sources are searched by. Printed
/// redacted: they are personal data.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Identifiers {
    /// As verified (lower case).
    pub email: Option<String>,
    /// E.164 (`+8613812345678`); each source says how its column stores it.
    pub mobile: Option<String>,
    /// The company's account id.
    pub account_id: Option<String>,
}

impl Identifiers {
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.mobile.is_none() && self.account_id.is_none()
    }
}

impl fmt::Debug for Identifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identifiers")
            .field("email", &self.email.as_ref().map(|_| "<redacted>"))
            .field("mobile", &self.mobile.as_ref().map(|_| "<redacted>"))
            .field(
                "account_id",
                &self.account_id.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// One row of a source's data, in one category.
#[derive(Clone, PartialEq)]
pub struct Record {
    pub category: String,
    /// Where it came from in the source (a table, or what an `http` source says).
    pub table: String,
    pub data: Map<String, Value>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("category", &self.category)
            .field("table", &self.table)
            .field("fields", &self.data.len())
            .finish()
    }
}

/// Where a look-up puts what it finds.
pub trait RecordSink: Send {
    /// Takes one record; an error stops the look-up (the receiver went away).
    fn accept(&mut self, record: Record) -> impl Future<Output = Result<(), SinkClosed>> + Send;
}

/// The receiver of a [`RecordSink`] stopped taking records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the receiver of the records stopped")]
pub struct SinkClosed;

impl RecordSink for tokio::sync::mpsc::Sender<Record> {
    async fn accept(&mut self, record: Record) -> Result<(), SinkClosed> {
        self.send(record).await.map_err(|_| SinkClosed)
    }
}

/// Counts records per category (for an access summary) and keeps none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counter {
    pub per_category: BTreeMap<String, u64>,
}

impl Counter {
    pub fn total(&self) -> u64 {
        self.per_category.values().sum()
    }
}

impl RecordSink for Counter {
    async fn accept(&mut self, record: Record) -> Result<(), SinkClosed> {
        *self.per_category.entry(record.category).or_default() += 1;
        Ok(())
    }
}

/// Collects records in memory: for tests and small answers only.
impl RecordSink for Vec<Record> {
    async fn accept(&mut self, record: Record) -> Result<(), SinkClosed> {
        self.push(record);
        Ok(())
    }
}

/// Why a source could not answer. The message never holds a subject's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    #[error("cannot reach the source: {0}")]
    Unreachable(String),
    #[error("the source did not answer within {0} s")]
    Timeout(u64),
    #[error("the source refused the request: {0}")]
    Refused(String),
    #[error("the source's answer breaks the protocol: {0}")]
    Protocol(String),
    #[error("the query failed: {0}")]
    Query(String),
    #[error("a manual source is answered by its owner, not called")]
    Manual,
    #[error(transparent)]
    SinkClosed(#[from] SinkClosed),
}

impl ConnectorError {
    /// Whether trying again later may help (the network, a busy server), as opposed to
    /// a configuration or a protocol to fix.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_) | Self::Timeout(_) | Self::Query(_)
        )
    }

    /// A stable code for the error, stored with a failed collection.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Timeout(_) => "timeout",
            Self::Refused(_) => "refused",
            Self::Protocol(_) => "protocol",
            Self::Query(_) => "query_failed",
            Self::Manual => "manual",
            Self::SinkClosed(_) => "cancelled",
        }
    }
}

/// What a look-up found: records per category.
pub type LookupStats = Counter;

/// What an erasure is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct EraseOrder<'a> {
    pub ids: &'a Identifiers,
    /// The categories kept under a retention rule, with the date (`YYYY-MM-DD`) their
    /// retention ends: their rows stay, marked in the table's `restrict_column`.
    pub restricted: &'a BTreeMap<String, String>,
    /// The key of `anonymise`'s keyed hash.
    pub anonymise_key: &'a [u8],
    /// An account closure: deactivate the account first (`[source.sql] deactivate`, or
    /// the `http` call's `deactivate`).
    pub deactivate: bool,
    /// Erase only the tables of these categories (a deletion that names some); `None`:
    /// all of them.
    pub only: Option<&'a std::collections::BTreeSet<String>>,
}

/// A consent withdrawal (or narrowing) pushed to a source that uses the purposes.
#[derive(Debug, Clone, Copy)]
pub struct ConsentOrder<'a> {
    pub ids: &'a Identifiers,
    /// The purposes withdrawn or narrowed that the source uses.
    pub purposes: &'a [String],
    pub change: ConsentChange,
    /// What the person still agrees to, when they narrow (their words).
    pub scope: Option<&'a str>,
}

/// What a consent change did for one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurposeChange {
    pub purpose: String,
    /// Where it was recorded (a table, or what an `http` source says).
    pub table: String,
    /// Rows changed.
    pub rows: u64,
}

/// One field of a correction (PIPL 46) and its new value. Printed without the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldValue {
    /// The key the sources file maps (`[source.sql.correct.<field>]`, `correctable`).
    pub field: String,
    pub value: String,
}

impl fmt::Debug for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldValue")
            .field("field", &self.field)
            .finish_non_exhaustive()
    }
}

/// A correction pushed to a source: the fields it maps, with their new values.
#[derive(Debug, Clone, Copy)]
pub struct CorrectionOrder<'a> {
    pub ids: &'a Identifiers,
    pub changes: &'a [FieldValue],
}

/// What a correction did for one field: where, how many rows, and the values it
/// replaced (personal data: the caller keeps only their digests). Printed without them.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct FieldCorrection {
    pub field: String,
    /// Where it was changed (a table, or what an `http` source says).
    pub table: String,
    pub rows: u64,
    /// The distinct values the rows held before.
    #[serde(default)]
    pub old_values: Vec<String>,
}

impl fmt::Debug for FieldCorrection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldCorrection")
            .field("field", &self.field)
            .field("table", &self.table)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// The values a source holds now for some fields: field → its distinct values.
pub type CurrentValues = BTreeMap<String, Vec<String>>;

/// What an erasure did to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableErasure {
    pub table: String,
    pub category: String,
    pub outcome: TableOutcome,
    /// Rows deleted, changed, or (restricted) kept.
    pub rows: u64,
}

/// How one table's rows were erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableOutcome {
    /// The account was deactivated (an account closure, before its data was erased).
    Deactivated,
    Deleted,
    Nulled,
    Anonymised,
    /// Kept under a retention rule: storage and security only until it ends.
    Restricted,
}

/// What `rightsdesk sources check` reports about one source.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub source: String,
    pub connector: &'static str,
    pub ok: bool,
    /// What was checked (a table, the service) and what was found.
    pub items: Vec<CheckItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckItem {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// A connector, ready to use (connections are opened on first use).
#[derive(Debug)]
pub enum Connector {
    Sql(Box<sql::SqlSource>),
    Http(http::HttpSource),
    Manual,
}

impl Connector {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sql(_) => "sql",
            Self::Http(_) => "http",
            Self::Manual => "manual",
        }
    }

    /// Finds everything the source holds about `ids` and hands it to `sink`, record by
    /// record. `reference` names the request to a source that keeps its own log.
    pub async fn lookup(
        &self,
        reference: &str,
        ids: &Identifiers,
        sink: &mut impl RecordSink,
    ) -> Result<LookupStats, ConnectorError> {
        match self {
            Self::Sql(s) => s.lookup(ids, sink).await,
            Self::Http(h) => h.lookup(reference, ids, sink).await,
            Self::Manual => Err(ConnectorError::Manual),
        }
    }

    /// Connects and reports what can be seen.
    /// Whether rightsdesk erases this source itself (else its owner is asked).
    pub fn erasable(&self) -> bool {
        match self {
            Self::Sql(s) => s.erasable(),
            Self::Http(h) => h.erasable(),
            Self::Manual => false,
        }
    }

    /// Erases the person's data (see [`sql::SqlSource::erase`] and the `erase` action of
    /// the `http` protocol).
    pub async fn erase(
        &self,
        reference: &str,
        order: &EraseOrder<'_>,
    ) -> Result<Vec<TableErasure>, ConnectorError> {
        match self {
            Self::Sql(s) => s.erase(order).await,
            Self::Http(h) => h.erase(reference, order).await,
            Self::Manual => Err(ConnectorError::Manual),
        }
    }

    /// Whether rightsdesk applies `change` to this source itself (else its owner is
    /// asked): an `sql` source records withdrawals of the purposes its `consent` names;
    /// an `http` source with `consent = true` applies both withdrawals and narrowings.
    pub fn applies_consent(&self, change: ConsentChange, purposes: &[String]) -> bool {
        match self {
            Self::Sql(s) => {
                change == ConsentChange::Withdraw
                    && purposes
                        .iter()
                        .all(|p| s.consent_purposes().any(|q| q == p))
            }
            Self::Http(h) => h.applies_consent(),
            Self::Manual => false,
        }
    }

    /// Applies a consent change (see [`sql::SqlSource::change_consent`] and the
    /// `consent` action of the `http` protocol).
    pub async fn change_consent(
        &self,
        reference: &str,
        order: &ConsentOrder<'_>,
    ) -> Result<Vec<PurposeChange>, ConnectorError> {
        match self {
            Self::Sql(s) => s.change_consent(order).await,
            Self::Http(h) => h.change_consent(reference, order).await,
            Self::Manual => Err(ConnectorError::Manual),
        }
    }

    /// Whether rightsdesk corrects this source itself (else its owner is asked): an
    /// `sql` source, for the fields its `[source.sql.correct]` maps; an `http` source with
    /// `correct = true`.
    pub fn applies_correction(&self) -> bool {
        match self {
            Self::Sql(_) => true,
            Self::Http(h) => h.applies_correction(),
            Self::Manual => false,
        }
    }

    /// The values the person's rows hold now for `fields` (of those the source maps),
    /// for the officer to compare with the requested ones.
    pub async fn current_values(
        &self,
        reference: &str,
        ids: &Identifiers,
        fields: &[String],
    ) -> Result<CurrentValues, ConnectorError> {
        match self {
            Self::Sql(s) => s.current_values(ids, fields).await,
            Self::Http(h) => h.current_values(reference, ids, fields).await,
            Self::Manual => Err(ConnectorError::Manual),
        }
    }

    /// Applies a correction (see [`sql::SqlSource::correct`] and the `correct` action
    /// of the `http` protocol).
    pub async fn correct(
        &self,
        reference: &str,
        order: &CorrectionOrder<'_>,
    ) -> Result<Vec<FieldCorrection>, ConnectorError> {
        match self {
            Self::Sql(s) => s.correct(order).await,
            Self::Http(h) => h.correct(reference, order).await,
            Self::Manual => Err(ConnectorError::Manual),
        }
    }

    pub async fn check(&self, source: &str) -> CheckReport {
        let items = match self {
            Self::Sql(s) => s.check().await,
            Self::Http(h) => h.check().await,
            Self::Manual => vec![CheckItem {
                name: "owner".to_owned(),
                ok: true,
                detail: "answered by its owner through the API".to_owned(),
            }],
        };
        CheckReport {
            source: source.to_owned(),
            connector: self.kind(),
            ok: items.iter().all(|i| i.ok),
            items,
        }
    }
}
