//! Rights requests: filing, the requester's view, the officer's queue and detail, and
//! every lifecycle action. Each change, its event and its chain head commit together.

use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, SubsecRound, Utc};
use rightsdesk_domain::deadlines::{self, ClockStart, DeadlineEffect, PeriodUnit, RulePack};
use rightsdesk_domain::lifecycle::{Allowed, next_state, officer_actions};
use rightsdesk_domain::validation::{ObjectReader, ValidationErrors, limits};
use rightsdesk_domain::{
    Action, Actor, Channel, Details, Email, Permission, Phone, ReasonCode, Reference, RequestKind,
    Requester, State,
};
use rightsdesk_store::events::{self, Head, NewEvent};
use rightsdesk_store::requests::{self, Change, Cursor, QueueFilter};
use rightsdesk_store::{
    Json, StoreError, comments, idempotency, notifications, officers, subjects, verifications,
};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{Officer, parse_roles, sha256_hex};
use crate::group_commit::FilingRows;
use crate::officers::require;
use crate::{Error, ErrorCode, Services};

// ---------------------------------------------------------------------------------
// Input

/// A validated filing: what any channel produces before a request is stored.
#[derive(Debug, Clone)]
pub struct Filing {
    pub kind: RequestKind,
    pub requester: Requester,
    pub details: Details,
    /// The rule pack asked for; `deadlines.default_pack` when `None`.
    pub pack: Option<String>,
}

/// A request registered by an officer: received by phone, post, in person or email.
#[derive(Debug, Clone)]
pub struct Registration {
    pub filing: Filing,
    pub channel: Channel,
    pub received_at: DateTime<Utc>,
}

fn read_kind(r: &mut ObjectReader<'_>) -> Result<Option<RequestKind>, Error> {
    match r.take("kind") {
        None | Some(Value::Null) => {
            r.errors()
                .push("kind", "required", "this field is required");
            Ok(None)
        }
        Some(Value::String(s)) => match s.parse::<RequestKind>() {
            Ok(k) => Ok(Some(k)),
            Err(m) => Err(Error::fields(
                ErrorCode::UnknownKind,
                format!("unknown request kind: {m}"),
                &[rightsdesk_domain::FieldError {
                    field: "kind".to_owned(),
                    code: "unknown_kind",
                    message: m,
                }],
            )),
        },
        Some(_) => {
            r.errors().push("kind", "invalid_type", "must be a string");
            Ok(None)
        }
    }
}

pub(crate) fn object_reader<'a>(
    body: &Value,
    errors: &'a mut ValidationErrors,
) -> Result<ObjectReader<'a>, Error> {
    if !body.is_object() {
        return Err(Error::new(
            ErrorCode::InvalidBody,
            "the body must be a JSON object",
        ));
    }
    ObjectReader::new(Some(body), "", false, errors)
        .ok_or_else(|| Error::new(ErrorCode::InvalidBody, "the body must be a JSON object"))
}

/// Reads `{kind, requester, details}` plus whatever `extra` reads; every problem is
/// reported at once.
fn read_filing<T>(
    body: &Value,
    extra: impl FnOnce(&mut ObjectReader<'_>) -> Option<T>,
) -> Result<(Filing, T), Error> {
    let mut errors = ValidationErrors::default();
    let mut r = object_reader(body, &mut errors)?;
    let kind = read_kind(&mut r)?;
    let requester_value = r.take("requester");
    let details_value = r.take("details");
    // Checked against the service's packs when the filing is stored.
    let pack = Some(r.string("pack", false, limits::SHORT_TEXT));
    let extra = extra(&mut r);
    r.deny_unknown();
    let requester = Requester::read(requester_value.as_ref(), "requester", &mut errors);
    let details = kind.and_then(|k| Details::read(k, details_value.as_ref(), &mut errors));
    if kind == Some(RequestKind::NextOfKin)
        && requester.as_ref().is_some_and(|r| r.acting_for.is_some())
    {
        errors.push(
            "requester.acting_for",
            "not_allowed",
            "a next of kin names the deceased in details.deceased",
        );
    }
    match (kind, requester, details, extra, pack) {
        (Some(kind), Some(requester), Some(details), Some(extra), Some(pack))
            if errors.is_empty() =>
        {
            Ok((
                Filing {
                    kind,
                    requester,
                    details,
                    pack,
                },
                extra,
            ))
        }
        _ => Err(errors.into()),
    }
}

impl Filing {
    /// Reads the body of `POST /api/v1/requests`.
    pub fn read(body: &Value) -> Result<Self, Error> {
        read_filing(body, |_| Some(())).map(|(f, ())| f)
    }
}

impl Registration {
    /// Reads the body of `POST /api/v1/officer/requests`; `received_at` must not be in
    /// the future nor more than a year ago.
    pub fn read(body: &Value, now: DateTime<Utc>) -> Result<Self, Error> {
        let (filing, (channel, received_at)) = read_filing(body, |r| {
            let channel_path = r.field_path("channel");
            let channel = r.string("channel", true, limits::SHORT_TEXT).and_then(|c| {
                match c.parse::<Channel>() {
                    Ok(Channel::Api) => {
                        r.errors().push(
                            channel_path,
                            "invalid_value",
                            "requests filed over the API are filed by the requester; use phone, post, in_person or email",
                        );
                        None
                    }
                    Ok(c) => Some(c),
                    Err(m) => {
                        r.errors().push(channel_path, "invalid_value", m);
                        None
                    }
                }
            });
            let at_path = r.field_path("received_at");
            let received_at = r
                .string("received_at", true, limits::SHORT_TEXT)
                .and_then(|s| match DateTime::parse_from_rfc3339(&s) {
                    Ok(t) => {
                        let t = t.with_timezone(&Utc);
                        if t > now + Duration::minutes(5) {
                            r.errors()
                                .push(at_path, "in_future", "must not be in the future");
                            None
                        } else if t < now - Duration::days(366) {
                            r.errors()
                                .push(at_path, "too_old", "must be within the last year");
                            None
                        } else {
                            Some(t)
                        }
                    }
                    Err(_) => {
                        r.errors().push(
                            at_path,
                            "invalid_timestamp",
                            "must be an RFC 3339 timestamp such as 2026-03-01T09:30:00+08:00",
                        );
                        None
                    }
                });
            Some((channel?, received_at?))
        })?;
        Ok(Self {
            filing,
            channel,
            received_at: received_at.trunc_subsecs(6),
        })
    }
}

/// An `Idempotency-Key` with the fingerprint of the body it came with.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

impl Idempotency {
    pub fn new(key: &str, body: &[u8]) -> Result<Self, Error> {
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::new(
                ErrorCode::InvalidIdempotencyKey,
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(Self {
            key: key.to_owned(),
            fingerprint: sha256_hex(body),
        })
    }
}

// ---------------------------------------------------------------------------------
// Output

/// The answer to a filing: the reference and due date, and the requester's secret
/// token (returned here only).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Filed {
    pub id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "PR-2026-048213"))]
    pub reference: Reference,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "access"))]
    pub kind: RequestKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "received"))]
    pub state: State,
    pub received_at: DateTime<Utc>,
    /// The local date by the end of which the request must be answered.
    pub due_date: NaiveDate,
    /// The time zone of `due_date`.
    pub time_zone: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub requester_token: String,
}

/// Where the deadline stands now.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadlineView {
    pub due_date: NaiveDate,
    pub time_zone: String,
    pub pack: String,
    pub pack_version: i32,
    /// Whole local days left (0 on the due date, negative when late); absent once closed.
    /// While the clock stands still, the days that were left when it stopped.
    pub days_left: Option<i64>,
    pub overdue: bool,
    /// The clock stands still: the request waits for its requester. The due date moves
    /// by the paused time when work resumes.
    pub paused: bool,
    /// False until the clock starts, under a pack that starts it at verification; the
    /// due date is then counted from receipt, and set again at verification.
    pub clock_started: bool,
}

/// One step in a request's history as the requester may see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicEvent {
    pub at: DateTime<Utc>,
    pub event: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub state: Option<State>,
    /// What the company said to the requester at this step, if anything.
    pub message: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub reason_code: Option<ReasonCode>,
    /// The fee quoted or accepted at this step: `{amount, currency}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub fee: Option<rightsdesk_domain::fees::Fee>,
}

/// A request as its requester sees it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequesterView {
    pub id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reference: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: RequestKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: State,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub channel: Channel,
    pub received_at: DateTime<Utc>,
    pub due_date: NaiveDate,
    pub time_zone: String,
    pub days_left: Option<i64>,
    pub closed_at: Option<DateTime<Utc>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Value,
    pub history: Vec<PublicEvent>,
    /// True while the request waits for documents an officer must accept (a next of
    /// kin's request): upload them with `POST /api/v1/requests/{id}/evidence`.
    pub documents_required: bool,
    /// The person a guardian or an agent files for, as given at filing.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub acting_for: Option<Value>,
    /// The files uploaded, and how each was judged.
    pub evidence: Vec<crate::evidence::RequesterEvidence>,
    /// Once an access, copy or portability request is complete: which systems hold data
    /// about the requester, of which categories and for what purpose, and how many
    /// records (the data itself is in the bundle the completion notice links to).
    pub data_summary: Option<Vec<crate::bundles::SourceSummary>>,
    /// The cost fee the request waits for (a repeated request, SPEC §8): accept it with
    /// `POST /api/v1/requests/{id}/fee/accept`, or withdraw the request.
    pub fee_due: Option<crate::fees::FeeQuote>,
}

/// The requester's contact details as officers see them.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequesterContact {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: String,
    /// `{capacity: guardian | agent, name, email?, phone?, account_id?}`: the person a
    /// guardian or an agent files for.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub acting_for: Option<Value>,
}

/// A row of the queue.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueItem {
    pub id: Uuid,
    pub reference: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: RequestKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: State,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub channel: Channel,
    pub requester_name: String,
    pub assignee_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
    pub deadline: DeadlineView,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueuePage {
    pub items: Vec<QueueItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One entry of a request's timeline: an event of its hash chain.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// `requester`, `system` or `officer:<id>`.
    pub actor: String,
    pub event: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommentView {
    pub id: Uuid,
    pub author_id: Uuid,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// An earlier request of the same subject and kind.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepeatView {
    pub id: Uuid,
    pub reference: String,
    pub state: String,
    pub received_at: DateTime<Utc>,
}

/// A request with everything an officer needs to work it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestDetail {
    pub id: Uuid,
    pub reference: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: RequestKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: State,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub channel: Channel,
    pub requester: RequesterContact,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Value,
    pub subject_id: Option<Uuid>,
    pub assignee_id: Option<Uuid>,
    pub related_request_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
    pub clock_started_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub deadline: DeadlineView,
    /// The actions this officer may take now.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub allowed_actions: Vec<Action>,
    pub timeline: Vec<TimelineEntry>,
    pub comments: Vec<CommentView>,
    /// Every message sent or queued about this request, with its delivery status.
    pub notifications: Vec<crate::notifications::NotificationView>,
    /// The evidence files (their bytes are opened one by one, audited).
    pub evidence: Vec<crate::evidence::EvidenceView>,
    /// The emails that filed the request or answered about it, oldest first.
    pub messages: Vec<crate::intake::IntakeMessageView>,
    /// Where each data source's look-up stands (access, copy, portability).
    pub sources: Vec<crate::collections::CollectionView>,
    /// Where each data source's erasure stands, and its outcome (deletion, account
    /// closure).
    pub erasures: Vec<crate::erasures::ErasureView>,
    /// The changes a consent withdrawal makes in the sources that use its purposes.
    pub changes: Vec<crate::consents::SourceChangeView>,
    /// Earlier requests of the same subject and kind within `repeats.window_days`
    /// (SPEC §8: a repeat may be refused as excessive, or carry a fee), newest first.
    pub repeats: Vec<RepeatView>,
    /// The fee the request waits for its requester to accept, if it does.
    pub fee_due: Option<crate::fees::FeeQuote>,
    /// A next of kin's request: the deceased's arrangement as checked at verification,
    /// `{arrangement_id, recorded_via, verdict: {outcome, granted, refused}}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub arrangement: Option<Value>,
    /// On hold for the DPO (relatives disagree): nothing is answered until `release`.
    pub on_hold: bool,
    /// The bundles written for it, newest first, with their download links.
    pub bundles: Vec<crate::bundles::BundleView>,
    /// The work this officer may have the data sources do now: `collect` (search them
    /// for the subject's data) and/or `erase`.
    pub source_work: Vec<String>,
}

// ---------------------------------------------------------------------------------
// Helpers

pub(crate) fn parse_stored<T: std::str::FromStr>(s: &str) -> Result<T, Error> {
    s.parse().map_err(|_| {
        tracing::error!(value = s, "unreadable stored enum value");
        Error::internal()
    })
}

/// Whether `row` can be verified only by an officer accepting documents.
pub(crate) fn needs_documents(row: &requests::Model) -> Result<bool, Error> {
    Ok(rightsdesk_domain::evidence::needs_document_review(
        parse_stored(&row.kind)?,
        row.acting_for.is_some(),
    ))
}

impl Services {
    /// The pack `row` was filed under (`pipl` if this service no longer knows it).
    pub(crate) fn pack_of(&self, row: &requests::Model) -> &RulePack {
        self.inner
            .packs
            .get(&row.deadline_pack)
            .unwrap_or_else(|| deadlines::pipl())
    }
}

fn deadline_view(
    pack: &RulePack,
    row: &requests::Model,
    state: State,
    now: DateTime<Utc>,
) -> DeadlineView {
    let paused = state.clock_paused();
    // A stopped clock is read at the moment it stopped.
    let at = if paused {
        row.paused_at.unwrap_or(now)
    } else {
        now
    };
    let status = pack.status(row.due_date, at);
    let clock_started = row.clock_started_at.is_some();
    let open = state.is_open() && clock_started;
    DeadlineView {
        due_date: row.due_date,
        time_zone: row.time_zone.clone(),
        pack: row.deadline_pack.clone(),
        pack_version: row.deadline_pack_version,
        days_left: open.then_some(status.days_left),
        overdue: open && status.overdue,
        paused,
        clock_started,
    }
}

fn event_type(action: Action) -> &'static str {
    match action {
        Action::RequestVerification => "verification_requested",
        Action::Verify => "verified",
        Action::Expire => "expired",
        Action::Assign => "assigned",
        Action::Start => "started",
        Action::RequestInfo => "info_requested",
        Action::Resume => "resumed",
        Action::RequesterReply => "requester_replied",
        Action::Complete => "completed",
        Action::Reject => "rejected",
        Action::Withdraw => "withdrawn",
        Action::Reopen => "reopened",
        Action::AcceptEvidence => "evidence_accepted",
        Action::Extend => "extended",
        Action::QuoteFee => "fee_quoted",
        Action::AcceptFee => "fee_accepted",
        Action::Hold => "held",
        Action::Release => "released",
        Action::RejectEvidence => "evidence_rejected",
    }
}

/// Encodes a queue position for clients; opaque to them.
fn encode_cursor(c: Cursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{}", c.due_date, c.id))
}

fn decode_cursor(s: &str) -> Result<Cursor, Error> {
    let bad = || {
        Error::new(
            ErrorCode::InvalidCursor,
            "the cursor is not one this service issued",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (date, id) = raw.split_once('|').ok_or_else(bad)?;
    Ok(Cursor {
        due_date: date.parse().map_err(|_| bad())?,
        id: id.parse().map_err(|_| bad())?,
    })
}

/// The inputs of one lifecycle action, validated.
pub(crate) struct ActionInput {
    data: serde_json::Map<String, Value>,
    assignee: Option<Option<Uuid>>,
    /// The verification challenge this action redeems (a code or a link).
    verification: Option<Uuid>,
    /// The evidence file an `accept_evidence` or `reject_evidence` judges.
    evidence: Option<Uuid>,
}

impl ActionInput {
    /// An action the service takes on its own, with no inputs.
    pub(crate) fn system() -> Self {
        Self {
            data: serde_json::Map::new(),
            assignee: None,
            verification: None,
            evidence: None,
        }
    }

    /// Verification by the requester: `method` (`email_code`, `sms_link`, …) redeeming
    /// challenge `id`.
    pub(crate) fn verification(method: &str, id: Uuid) -> Self {
        let mut data = serde_json::Map::new();
        data.insert("method".to_owned(), json!(method));
        data.insert("verification_id".to_owned(), json!(id));
        Self {
            data,
            assignee: None,
            verification: Some(id),
            evidence: None,
        }
    }
}

const VERIFY_METHODS: &[&str] = &[
    "call_back",
    "document_review",
    "in_person",
    "account_login",
    "other",
];

pub(crate) fn read_action_input(action: Action, body: &Value) -> Result<ActionInput, Error> {
    let mut errors = ValidationErrors::default();
    let body = if body.is_null() {
        json!({})
    } else {
        body.clone()
    };
    let mut r = object_reader(&body, &mut errors)?;
    let mut data = serde_json::Map::new();
    let mut assignee = None;
    let mut evidence = None;
    let text = |r: &mut ObjectReader<'_>,
                name: &str,
                required: bool,
                data: &mut serde_json::Map<String, Value>| {
        if let Some(v) = r.string(name, required, limits::LONG_TEXT) {
            data.insert(name.to_owned(), Value::String(v));
        }
    };
    match action {
        Action::Assign => {
            let path = r.field_path("assignee_id");
            match r.take("assignee_id") {
                Some(Value::Null) => assignee = Some(None),
                Some(Value::String(s)) => match s.parse::<Uuid>() {
                    Ok(id) => assignee = Some(Some(id)),
                    Err(_) => r
                        .errors()
                        .push(path, "invalid_uuid", "must be an officer id"),
                },
                Some(_) => r
                    .errors()
                    .push(path, "invalid_type", "must be an officer id or null"),
                None => r.errors().push(
                    path,
                    "required",
                    "this field is required (null to unassign)",
                ),
            }
        }
        Action::Verify => {
            let path = r.field_path("method");
            if let Some(m) = r.string("method", true, limits::SHORT_TEXT) {
                if VERIFY_METHODS.contains(&m.as_str()) {
                    data.insert("method".to_owned(), Value::String(m));
                } else {
                    r.errors().push(
                        path,
                        "invalid_value",
                        format!("must be one of {}", VERIFY_METHODS.join(", ")),
                    );
                }
            }
            text(&mut r, "note", false, &mut data);
        }
        Action::RequestInfo => text(&mut r, "message", true, &mut data),
        Action::Complete => {
            text(&mut r, "summary", true, &mut data);
            // Portability's fourth condition (SPEC §1), confirmed by the officer.
            if r.flag("no_harm_confirmed") {
                data.insert("no_harm_confirmed".to_owned(), json!(true));
            }
        }
        Action::Reject => {
            let path = r.field_path("reason_code");
            if let Some(code) = r.string("reason_code", true, limits::SHORT_TEXT) {
                match code.parse::<ReasonCode>() {
                    Ok(c) => {
                        data.insert("reason_code".to_owned(), json!(c));
                    }
                    Err(m) => r.errors().push(path, "invalid_value", m),
                }
            }
            text(&mut r, "explanation", true, &mut data);
        }
        Action::Reopen => {
            text(&mut r, "reason", true, &mut data);
            // Reopened because of a complaint about it: the complaint's reference.
            let path = r.field_path("complaint");
            if let Some(c) = r.string("complaint", false, limits::SHORT_TEXT) {
                match c.parse::<rightsdesk_domain::Reference>() {
                    Ok(reference) => {
                        data.insert("complaint".to_owned(), json!(reference.to_string()));
                    }
                    Err(_) => r.errors().push(
                        path,
                        "invalid_reference",
                        "must be a request reference like PR-2026-000123",
                    ),
                }
            }
        }
        Action::QuoteFee => crate::fees::read_quote(&mut r, &mut data),
        Action::Hold => text(&mut r, "reason", true, &mut data),
        Action::Release => text(&mut r, "decision", true, &mut data),
        Action::Start
        | Action::Resume
        | Action::Withdraw
        | Action::RequesterReply
        | Action::AcceptFee => text(&mut r, "note", false, &mut data),
        Action::AcceptEvidence | Action::RejectEvidence => {
            let path = r.field_path("evidence_id");
            if let Some(s) = r.string("evidence_id", true, limits::SHORT_TEXT) {
                match s.parse::<Uuid>() {
                    Ok(id) => {
                        evidence = Some(id);
                        data.insert("evidence_id".to_owned(), json!(id));
                    }
                    Err(_) => r
                        .errors()
                        .push(path, "invalid_uuid", "must be an evidence file id"),
                }
            }
            if action == Action::AcceptEvidence {
                text(&mut r, "note", false, &mut data);
            } else {
                text(&mut r, "reason", true, &mut data);
            }
        }
        Action::Extend => {
            text(&mut r, "reason", true, &mut data);
            let path = r.field_path("amount");
            match r.take("amount") {
                None | Some(Value::Null) => {}
                Some(Value::Number(n)) if n.as_u64().is_some_and(|n| (1..=1000).contains(&n)) => {
                    data.insert("amount".to_owned(), Value::Number(n));
                }
                Some(_) => r.errors().push(
                    path,
                    "invalid_value",
                    "must be a whole number of the pack's extension unit, at least 1",
                ),
            }
        }
        Action::RequestVerification | Action::Expire => {}
    }
    r.deny_unknown();
    errors
        .finish(ActionInput {
            data,
            assignee,
            verification: None,
            evidence,
        })
        .map_err(Error::from)
}

// ---------------------------------------------------------------------------------
// Use-cases

/// What an account-system token proved at filing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AccountProof {
    /// No token: a code is sent to the requester.
    None,
    /// The requester is the account holder: verified at filing, linked to this subject.
    Verified(Uuid),
    /// The requester's contact is proven, but they act for someone else: no code is
    /// sent, and documents are still needed.
    ContactOnly,
}

/// The most attempts a use-case makes when a concurrent writer got there first.
const ATTEMPTS: usize = 5;

/// The most references a filing tries when the ones it draws are already taken.
const REFERENCE_ATTEMPTS: usize = 20;

impl Services {
    /// The names of the rule packs requests may be filed under (the queue filters by them).
    pub fn pack_names(&self) -> Vec<String> {
        self.inner.packs.iter().map(|p| p.name.clone()).collect()
    }

    /// Today, for requests under each pack (in its time zone); requests under a pack
    /// that is gone count as `pipl`'s, as [`Services::pack_of`] does.
    pub(crate) fn pack_dates(&self, now: DateTime<Utc>) -> requests::PackDates {
        let mut groups: Vec<(NaiveDate, Vec<String>)> = Vec::new();
        for pack in self.inner.packs.iter() {
            let date = pack.local_date(now);
            match groups.iter_mut().find(|(d, _)| *d == date) {
                Some((_, names)) => names.push(pack.name.clone()),
                None => groups.push((date, vec![pack.name.clone()])),
            }
        }
        requests::PackDates {
            groups,
            others: deadlines::pipl().local_date(now),
        }
    }

    pub(crate) fn default_pack(&self) -> &RulePack {
        self.inner
            .packs
            .get(&self.config().deadlines.default_pack)
            .unwrap_or_else(|| deadlines::pipl())
    }

    /// Files a request received over the API now. With `account_token` (a JWT from the
    /// company's account system) the request is verified at once for that account;
    /// a token that does not verify refuses the filing and stores nothing.
    pub async fn file_request(
        &self,
        filing: Filing,
        idempotency: Option<Idempotency>,
        account_token: Option<&str>,
    ) -> Result<Filed, Error> {
        let (scope, proof) = match account_token {
            None => ("requester".to_owned(), AccountProof::None),
            Some(token) => {
                let account = self
                    .inner
                    .account_login
                    .verify(token, self.now().timestamp())?;
                // The account is the requester's own: it cannot vouch for the right to
                // act for a deceased person, a minor or a principal.
                let proof = if rightsdesk_domain::evidence::needs_document_review(
                    filing.kind,
                    filing.requester.acting_for.is_some(),
                ) {
                    AccountProof::ContactOnly
                } else {
                    AccountProof::Verified(self.subject_for_account(&account).await?)
                };
                let scope = format!(
                    "account:{}",
                    &sha256_hex(format!("{}\n{}", account.issuer, account.account_id).as_bytes())
                        [..32]
                );
                (scope, proof)
            }
        };
        let kind = filing.kind;
        let filed = self
            .store_filing(
                filing,
                Channel::Api,
                None,
                Actor::Requester,
                scope,
                idempotency,
                proof,
            )
            .await?;
        if let AccountProof::Verified(subject) = proof {
            // Verified at filing: a consent withdrawal takes effect now, a complaint goes
            // to the DPO now.
            self.consent_effect_after_filing(filed.id, subject).await?;
            if kind == RequestKind::Complaint {
                self.escalate_after_filing(filed.id).await?;
            }
        }
        Ok(filed)
    }

    /// Registers a request an officer received by phone, post, in person or email,
    /// with its real receipt time.
    pub async fn register_request(
        &self,
        officer: &Officer,
        body: &Value,
        idempotency: Option<Idempotency>,
    ) -> Result<Filed, Error> {
        require(officer, Permission::WorkRequests)?;
        let reg = Registration::read(body, self.now())?;
        self.store_filing(
            reg.filing,
            reg.channel,
            Some(reg.received_at),
            Actor::Officer { id: officer.id },
            format!("officer:{}", officer.id),
            idempotency,
            AccountProof::None,
        )
        .await
    }

    /// Stores a filing, verified already when `proof` says so.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn store_filing(
        &self,
        filing: Filing,
        channel: Channel,
        received_at: Option<DateTime<Utc>>,
        actor: Actor,
        idempotency_scope: String,
        idempotency: Option<Idempotency>,
        proof: AccountProof,
    ) -> Result<Filed, Error> {
        // One reading of the clock: a request filed now was received at the instant of
        // its `filed` event.
        let now = self.now();
        let received_at = received_at.unwrap_or(now);
        let pack = match &filing.pack {
            None => self.default_pack(),
            Some(name) => self.inner.packs.get(name).ok_or_else(|| {
                Error::from(ValidationErrors::single(
                    "pack",
                    "unknown_pack",
                    format!("must be one of {}", self.inner.packs.names()),
                ))
            })?,
        };
        let due_date = self.due_date(pack, filing.kind, received_at).await?;
        let year = chrono::Datelike::year(&pack.local_date(received_at));
        if let Details::ConsentWithdrawal { purposes, .. } = &filing.details {
            let mut errors = ValidationErrors::default();
            for (i, p) in purposes.iter().enumerate() {
                if !self.sources().purposes.contains(p) {
                    errors.push(
                        format!("details.purposes[{i}]"),
                        "unknown_purpose",
                        format!(
                            "is not a purpose of processing on consent; known: {}",
                            self.sources()
                                .purposes
                                .iter()
                                .map(|p| p.key.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
            errors.finish(()).map_err(Error::from)?;
        }
        let details = filing.details.to_json();
        // References come from a counter and never collide with each other; a number
        // can be taken only by a request written some other way (a restored backup, a
        // changed key), and then the next one is used.
        for _ in 0..REFERENCE_ATTEMPTS {
            let id = Uuid::now_v7();
            let reference = self.references().next(self.db(), year).await?;
            let filed = Filed {
                id,
                reference,
                kind: filing.kind,
                state: if matches!(proof, AccountProof::Verified(_)) {
                    State::Verified
                } else {
                    State::AwaitingVerification
                },
                received_at,
                due_date,
                time_zone: pack.time_zone.name().to_owned(),
                requester_token: String::new(),
            };
            let outcome = self
                .insert_filing(
                    &filing,
                    &details,
                    channel,
                    &actor,
                    pack,
                    &filed,
                    now,
                    &idempotency_scope,
                    idempotency.as_ref(),
                    proof,
                )
                .await;
            match outcome {
                Ok(Some(replayed)) => return self.replay(replayed, idempotency.as_ref()),
                Ok(None) => {
                    metrics::counter!(
                        "rightsdesk_requests_filed_total",
                        "kind" => filing.kind.as_str(),
                        "channel" => channel.as_str()
                    )
                    .increment(1);
                    tracing::info!(rights_request_id = %id, reference = %reference, kind = %filing.kind, "request filed");
                    self.outbox_written();
                    return Ok(Filed {
                        requester_token: self.requester_token(id),
                        ..filed
                    });
                }
                Err(e) if e.is_unique_violation() => {
                    // Either a concurrent retry with the same key won, or the
                    // reference was taken: answer the first, or take the next one.
                    if let Some(idem) = &idempotency
                        && let Some(row) =
                            idempotency::find(self.db().conn(), &idempotency_scope, &idem.key)
                                .await?
                    {
                        return self.replay(row, Some(idem));
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        tracing::error!("could not find a free reference");
        Err(Error::internal())
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_filing(
        &self,
        filing: &Filing,
        details: &Value,
        channel: Channel,
        actor: &Actor,
        pack: &RulePack,
        filed: &Filed,
        now: DateTime<Utc>,
        scope: &str,
        idempotency: Option<&Idempotency>,
        proof: AccountProof,
    ) -> Result<Option<idempotency::Model>, StoreError> {
        let related = match &filing.details {
            Details::Complaint {
                about_reference, ..
            } => requests::find_by_reference(self.db().conn(), &about_reference.to_string())
                .await?
                .map(|r| r.id),
            _ => None,
        };
        let (event, head) = events::build(
            filed.id,
            &Head::genesis(),
            NewEvent {
                at: now,
                actor: actor.to_stored(),
                event_type: "filed".to_owned(),
                data: json!({
                    "kind": filing.kind,
                    "channel": channel,
                    "state": State::Received,
                    "received_at": filed.received_at,
                    "deadline": DeadlineEffect::Set { due_date: filed.due_date },
                    "pack": pack.name,
                    "pack_version": pack.version,
                    "clock_start": pack.clock_start,
                }),
            },
        );
        // Every filing names an email address or a mobile number; the code goes there,
        // unless the account system has vouched for the requester already.
        let r = &filing.requester;
        let code_channel = if r.email.is_some() { "email" } else { "sms" };
        let requested = |channel: &str| NewEvent {
            at: now,
            actor: Actor::System.to_stored(),
            event_type: event_type(Action::RequestVerification).to_owned(),
            data: json!({
                "action": Action::RequestVerification,
                "from": State::Received,
                "to": State::AwaitingVerification,
                "channel": channel,
            }),
        };
        let then = match proof {
            AccountProof::None => vec![requested(code_channel)],
            AccountProof::ContactOnly => vec![
                requested("documents"),
                NewEvent {
                    at: now,
                    actor: Actor::Requester.to_stored(),
                    event_type: "contact_verified".to_owned(),
                    data: json!({ "method": "account_login" }),
                },
            ],
            AccountProof::Verified(subject) => vec![NewEvent {
                at: now,
                actor: Actor::Requester.to_stored(),
                event_type: event_type(Action::Verify).to_owned(),
                data: json!({
                    "action": Action::Verify,
                    "from": State::Received,
                    "to": State::Verified,
                    "method": "account_login",
                    "subject_id": subject,
                    "deadline": DeadlineEffect::None,
                }),
            }],
        };
        let mut events_written = vec![event];
        let mut head = head;
        for next in then {
            let (built, next_head) = events::build(filed.id, &head, next);
            events_written.push(built);
            head = next_head;
        }
        let request = requests::Model {
            id: filed.id,
            reference: filed.reference.to_string(),
            kind: filing.kind.as_str().to_owned(),
            state: filed.state.as_str().to_owned(),
            is_open: true,
            channel: channel.as_str().to_owned(),
            language: r.language.as_str().to_owned(),
            requester_name: r.name.clone(),
            requester_email: r.email.as_ref().map(|e| e.as_str().to_owned()),
            requester_phone: r.phone.as_ref().map(|p| p.as_str().to_owned()),
            acting_for: r
                .acting_for
                .as_ref()
                .map(serde_json::to_value)
                .transpose()
                .map_err(|e| StoreError::Config(e.to_string()))?,
            details: details.clone(),
            subject_id: match proof {
                AccountProof::Verified(subject) => Some(subject),
                _ => None,
            },
            assignee_id: None,
            related_request_id: related,
            received_at: filed.received_at,
            // A pack that starts the clock at verification starts it now only for a
            // requester the account system vouched for; the due date stored until then
            // counts from receipt.
            clock_started_at: (pack.clock_start == ClockStart::Receipt
                || matches!(proof, AccountProof::Verified(_)))
            .then_some(filed.received_at),
            due_date: filed.due_date,
            time_zone: filed.time_zone.clone(),
            deadline_pack: pack.name.to_owned(),
            deadline_pack_version: pack.version as i32,
            token_hash: sha256_hex(self.requester_token(filed.id).as_bytes()),
            event_seq: head.seq,
            head_hash: head.hash,
            created_at: now,
            updated_at: now,
            closed_at: None,
            paused_at: None,
        };
        let idempotency = match idempotency {
            Some(idem) => Some(idempotency::Model {
                scope: scope.to_owned(),
                key: idem.key.clone(),
                fingerprint: idem.fingerprint.clone(),
                response: serde_json::to_value(filed)
                    .map_err(|e| StoreError::Config(e.to_string()))?,
                created_at: now,
            }),
            None => None,
        };
        let challenge = matches!(proof, AccountProof::None)
            .then(|| self.new_challenge(filed.id, code_channel, now));
        let mut acknowledgement = crate::notifications::request_params(&request, pack);
        acknowledgement["verification_pending"] = json!(challenge.is_some());
        acknowledgement["documents_required"] =
            json!(needs_documents(&request).map_err(|e| StoreError::Config(e.message))?);
        let mut notices = vec![crate::notifications::Notice {
            template: rightsdesk_mail::Template::Acknowledgement,
            to: crate::notifications::Recipient::of_request(&request),
            language: request.language.clone(),
            request_id: Some(request.id),
            params: acknowledgement,
            secret: None,
            dedupe_key: format!("acknowledgement:{}", request.id),
        }];
        notices.extend(challenge.as_ref().map(|c| self.code_notice(&request, c)));
        let outbox = self
            .outbox_rows(notices, now)
            .map_err(|e| StoreError::Config(e.message))?;
        self.filings()
            .commit(FilingRows {
                request,
                events: events_written,
                idempotency,
                verification: challenge.map(|c| c.row),
                notifications: outbox,
            })
            .await
    }

    /// The first answer to a retried filing, with the token derived again.
    fn replay(&self, row: idempotency::Model, idem: Option<&Idempotency>) -> Result<Filed, Error> {
        if idem.is_some_and(|i| i.fingerprint != row.fingerprint) {
            return Err(Error::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used with a different body",
            ));
        }
        let filed: Filed = serde_json::from_value(row.response).map_err(|_| Error::internal())?;
        Ok(Filed {
            requester_token: self.requester_token(filed.id),
            ..filed
        })
    }

    /// The request `id` if `token` is its requester token; otherwise not found (a
    /// token never reveals whether another request exists).
    pub(crate) async fn requester_request(
        &self,
        id: Uuid,
        token: Option<&str>,
    ) -> Result<requests::Model, Error> {
        let token = token.ok_or_else(|| {
            Error::new(
                ErrorCode::Unauthenticated,
                "the requester token is required",
            )
        })?;
        let row = requests::find(self.db().conn(), id)
            .await?
            .ok_or_else(Error::not_found)?;
        let presented = sha256_hex(token.as_bytes());
        if !constant_time_eq(presented.as_bytes(), row.token_hash.as_bytes()) {
            return Err(Error::not_found());
        }
        Ok(row)
    }

    /// Whether `token` is request `id`'s requester token: checked before an upload is
    /// read, so that strangers cannot make the service read large bodies.
    pub async fn check_requester(&self, id: Uuid, token: Option<&str>) -> Result<(), Error> {
        self.requester_request(id, token).await.map(|_| ())
    }

    /// `GET /api/v1/requests/{id}` for the requester.
    pub async fn requester_view(
        &self,
        id: Uuid,
        token: Option<&str>,
    ) -> Result<RequesterView, Error> {
        let row = self.requester_request(id, token).await?;
        self.to_requester_view(row).await
    }

    pub(crate) async fn to_requester_view(
        &self,
        row: requests::Model,
    ) -> Result<RequesterView, Error> {
        let now = self.now();
        let state: State = parse_stored(&row.state)?;
        let all = events::for_request(self.db().conn(), row.id).await?;
        let fee_due = crate::fees::pending(state, &all);
        let history = all.into_iter().filter_map(public_event).collect();
        let deadline = deadline_view(self.pack_of(&row), &row, state, now);
        let documents_required = state == State::AwaitingVerification && needs_documents(&row)?;
        let data_summary = self.data_summary(&row).await?;
        Ok(RequesterView {
            id: row.id,
            reference: row.reference,
            kind: parse_stored(&row.kind)?,
            state,
            channel: parse_stored(&row.channel)?,
            received_at: row.received_at,
            due_date: row.due_date,
            time_zone: row.time_zone,
            days_left: deadline.days_left,
            closed_at: row.closed_at,
            documents_required,
            evidence: self.requester_evidence(row.id).await?,
            acting_for: row.acting_for,
            details: row.details,
            history,
            data_summary,
            fee_due,
        })
    }

    /// `POST /api/v1/requests/{id}/withdraw`: the requester withdraws an open request.
    pub async fn withdraw(
        &self,
        id: Uuid,
        token: Option<&str>,
        body: &Value,
    ) -> Result<RequesterView, Error> {
        self.requester_action(id, token, Action::Withdraw, body)
            .await
    }

    /// An action the requester takes with their token (withdraw, accept a fee).
    pub(crate) async fn requester_action(
        &self,
        id: Uuid,
        token: Option<&str>,
        action: Action,
        body: &Value,
    ) -> Result<RequesterView, Error> {
        self.requester_request(id, token).await?;
        let input = read_action_input(action, body)?;
        let row = self.transition(id, action, Actor::Requester, input).await?;
        self.to_requester_view(row).await
    }

    /// The queue, ordered by due date, oldest first.
    pub async fn queue(&self, officer: &Officer, query: &QueueQuery) -> Result<QueuePage, Error> {
        require(officer, Permission::ViewRequests)?;
        let now = self.now();
        let (filter, cursor, limit) =
            query.parse(officer, self.pack_dates(now), &self.inner.packs)?;
        let (rows, next) = requests::queue(self.db().conn(), &filter, cursor, limit).await?;
        let items = rows
            .into_iter()
            .map(|row| {
                let state: State = parse_stored(&row.state)?;
                Ok(QueueItem {
                    deadline: deadline_view(self.pack_of(&row), &row, state, now),
                    id: row.id,
                    kind: parse_stored(&row.kind)?,
                    state,
                    channel: parse_stored(&row.channel)?,
                    requester_name: row.requester_name,
                    assignee_id: row.assignee_id,
                    received_at: row.received_at,
                    reference: row.reference,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(QueuePage {
            items,
            next_cursor: next.map(encode_cursor),
        })
    }

    /// A request with its timeline and comments.
    pub async fn request_detail(
        &self,
        officer: &Officer,
        id: Uuid,
    ) -> Result<RequestDetail, Error> {
        require(officer, Permission::ViewRequests)?;
        let row = requests::find(self.db().conn(), id)
            .await?
            .ok_or_else(Error::not_found)?;
        self.to_detail(officer, row).await
    }

    async fn to_detail(
        &self,
        officer: &Officer,
        row: requests::Model,
    ) -> Result<RequestDetail, Error> {
        let now = self.now();
        let state: State = parse_stored(&row.state)?;
        let conn = self.db().conn();
        let all = events::for_request(conn, row.id).await?;
        let fee_due = crate::fees::pending(state, &all);
        let held = crate::arrangements::on_hold(&all);
        let arrangement = crate::arrangements::recorded_arrangement(&all).cloned();
        let timeline = all
            .into_iter()
            .map(|e| TimelineEntry {
                seq: e.seq,
                at: e.at,
                actor: e.actor,
                event: e.event_type,
                data: e.data,
                hash: e.hash,
            })
            .collect();
        let comments = comments::for_request(conn, row.id)
            .await?
            .into_iter()
            .map(|c| CommentView {
                id: c.id,
                author_id: c.author_id,
                body: c.body,
                created_at: c.created_at,
            })
            .collect();
        let repeats = self.repeats(&row).await?;
        // A fee is quoted only for a repeat; a hold is released only while held.
        let allowed_actions = officer_actions(state, &officer.roles)
            .into_iter()
            .filter(|a| *a != Action::QuoteFee || !repeats.is_empty())
            .filter(|a| *a != Action::Hold || !held)
            .filter(|a| *a != Action::Release || held)
            .collect();
        let source_work = self.source_work(officer, &row, held).await?;
        Ok(RequestDetail {
            deadline: deadline_view(self.pack_of(&row), &row, state, now),
            allowed_actions,
            id: row.id,
            reference: row.reference,
            kind: parse_stored(&row.kind)?,
            state,
            channel: parse_stored(&row.channel)?,
            requester: RequesterContact {
                name: row.requester_name,
                email: row.requester_email,
                phone: row.requester_phone,
                language: row.language,
                acting_for: row.acting_for,
            },
            details: row.details,
            subject_id: row.subject_id,
            assignee_id: row.assignee_id,
            related_request_id: row.related_request_id,
            received_at: row.received_at,
            clock_started_at: row.clock_started_at,
            closed_at: row.closed_at,
            timeline,
            comments,
            notifications: notifications::for_request(conn, row.id)
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
            evidence: self.officer_evidence(row.id).await?,
            messages: rightsdesk_store::intake::for_request(self.db().conn(), row.id)
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
            sources: self.collections(row.id).await?,
            erasures: self.erasures(row.id).await?,
            changes: self.changes_of(row.id).await?,
            repeats,
            fee_due,
            arrangement,
            on_hold: held,
            bundles: self.bundles(row.id).await?,
            source_work,
        })
    }

    /// What this officer may have the data sources do for `row` now: `collect` (a
    /// request answered with its subject's data) or `erase` (one answered by erasing
    /// them), once it is in progress with its subject verified, not on hold, with
    /// sources configured, and some source not yet worked (or failed) — the checks
    /// `POST …/collect` and `POST …/erase` make.
    async fn source_work(
        &self,
        officer: &Officer,
        row: &requests::Model,
        held: bool,
    ) -> Result<Vec<String>, Error> {
        use crate::collections::SourceWork;
        if held
            || self.sources().is_empty()
            || !rightsdesk_domain::roles::permits(&officer.roles, Permission::WorkRequests)
        {
            return Ok(Vec::new());
        }
        let conn = self.db().conn();
        let names: Vec<String> = self
            .sources()
            .sources
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let mut work = Vec::new();
        for (kind, answers) in [
            (SourceWork::Collect, self.gives_data(conn, row).await?),
            (SourceWork::Erase, self.erases_data(conn, row).await?),
        ] {
            if kind.check(row, answers).is_ok()
                && !kind.to_open(conn, row.id, &names, false).await?.is_empty()
            {
                work.push(kind.name().to_owned());
            }
        }
        Ok(work)
    }

    /// The requester answered (by email): a clock paused for them runs again.
    pub(crate) async fn requester_replied(&self, id: Uuid, channel: &str) -> Result<(), Error> {
        let input = read_action_input(Action::RequesterReply, &json!({ "note": channel }))?;
        self.transition(id, Action::RequesterReply, Actor::Requester, input)
            .await?;
        Ok(())
    }

    /// `POST /api/v1/officer/requests/{id}/actions/{action}`.
    pub async fn act(
        &self,
        officer: &Officer,
        id: Uuid,
        action: &str,
        body: &Value,
    ) -> Result<RequestDetail, Error> {
        let Ok(action) = action.parse::<Action>() else {
            let names: Vec<&str> = Action::ALL
                .iter()
                .filter(|a| matches!(a.allowed(), Allowed::Roles(_)))
                .map(|a| a.as_str())
                .collect();
            return Err(Error::new(
                ErrorCode::UnknownAction,
                format!("unknown action {action:?}"),
            )
            .with_details(json!({ "actions": names })));
        };
        match action.allowed() {
            Allowed::Roles(_) if action.permits_roles(&officer.roles) => {}
            Allowed::Roles(roles) => {
                let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                return Err(Error::forbidden(format!(
                    "{action} needs one of the roles {}",
                    names.join(", ")
                )));
            }
            Allowed::Requester => {
                return Err(Error::forbidden(format!("only the requester can {action}")));
            }
            Allowed::System => {
                return Err(Error::forbidden(format!(
                    "{action} is done by the service itself"
                )));
            }
        }
        let mut input = read_action_input(action, body)?;
        let complaint = match input.data.get("complaint").and_then(Value::as_str) {
            Some(reference) => Some(self.complaint_about(id, reference).await?),
            None => None,
        };
        if action == Action::QuoteFee
            && let Some(row) = requests::find(self.db().conn(), id).await?
        {
            let repeats = self.check_fee_allowed(&row).await?;
            input.data.insert("repeats".to_owned(), json!(repeats));
        }
        if action == Action::Complete
            && let Some(row) = requests::find(self.db().conn(), id).await?
        {
            self.check_not_held(self.db().conn(), row.id).await?;
            self.check_not_denied(self.db().conn(), &row).await?;
            let waiting = self.sources_unanswered(&row).await?;
            if !waiting.is_empty() {
                return Err(Error::new(
                    ErrorCode::SourcesUnanswered,
                    format!("not every data source has answered: {}", waiting.join(", ")),
                )
                .with_details(json!({ "sources": waiting })));
            }
            let unerased = self.sources_unerased(&row).await?;
            if !unerased.is_empty() {
                return Err(Error::new(
                    ErrorCode::SourcesUnerased,
                    format!(
                        "not every data source has an erasure outcome: {}",
                        unerased.join(", ")
                    ),
                )
                .with_details(json!({ "sources": unerased })));
            }
            let undecided = self.corrections_undecided(&row).await?;
            if !undecided.is_empty() {
                return Err(Error::new(
                    ErrorCode::CorrectionsUndecided,
                    format!(
                        "{} requested change(s) are not approved or rejected yet",
                        undecided.len()
                    ),
                )
                .with_details(json!({ "changes": undecided })));
            }
            let unchanged = self.sources_unchanged(&row).await?;
            if !unchanged.is_empty() {
                return Err(Error::new(
                    ErrorCode::SourcesUnchanged,
                    format!(
                        "not every data source has applied the change: {}",
                        unchanged.join(", ")
                    ),
                )
                .with_details(json!({ "sources": unchanged })));
            }
            if self.erases_data(self.db().conn(), &row).await? && !self.sources().is_empty() {
                let certificate = self.deletion_certificate(&row, self.now()).await?;
                input.data.insert("certificate".to_owned(), certificate);
            }
            self.bundle_to_deliver(&row).await?;
            let no_harm = input.data.contains_key("no_harm_confirmed");
            if let Some(checked) = self.portability_conditions(officer, &row, no_harm).await? {
                input.data.insert("portability".to_owned(), checked);
            }
        }
        if let Some(Some(assignee)) = input.assignee {
            let ok = officers::find(self.db().conn(), assignee)
                .await?
                .is_some_and(|o| {
                    o.active
                        && rightsdesk_domain::roles::permits(
                            &parse_roles(&o.roles),
                            Permission::WorkRequests,
                        )
                });
            if !ok {
                return Err(Error::from(ValidationErrors::single(
                    "assignee_id",
                    "unknown_officer",
                    "no active officer who works requests has this id",
                )));
            }
        }
        let actor = Actor::Officer { id: officer.id };
        let row = self.transition(id, action, actor.clone(), input).await?;
        if let Some(complaint) = complaint {
            // The complaint's own timeline says what it led to.
            let data = json!({"reopened": row.reference, "reopened_id": row.id});
            self.record_event(
                complaint,
                &actor,
                "original_reopened",
                async move |_, _, _| Ok((data.clone(), ())),
            )
            .await?;
        }
        self.to_detail(officer, row).await
    }

    /// A complaint verified at filing goes to the DPO, in an event of its own.
    async fn escalate_after_filing(&self, id: Uuid) -> Result<(), Error> {
        let services = self.clone();
        self.record_event(
            id,
            &Actor::System,
            "escalated",
            async move |tx, row, now| {
                let notices = services
                    .complaint_escalation(tx.conn(), row, row.event_seq + 1)
                    .await?;
                let rows = services.outbox_rows(notices, now)?;
                notifications::insert_new(tx.conn(), rows).await?;
                Ok((json!({"escalated_to_dpo": true}), ()))
            },
        )
        .await?;
        self.outbox_written();
        Ok(())
    }

    /// The complaint `reference`, which must be a complaint about request `id`.
    async fn complaint_about(&self, id: Uuid, reference: &str) -> Result<Uuid, Error> {
        let complaint = requests::find_by_reference(self.db().conn(), reference).await?;
        match complaint {
            Some(c)
                if c.kind == RequestKind::Complaint.as_str()
                    && c.related_request_id == Some(id) =>
            {
                Ok(c.id)
            }
            _ => Err(ValidationErrors::single(
                "complaint",
                "invalid_value",
                "must be the reference of a complaint about this request",
            )
            .into()),
        }
    }

    /// Applies `action` to request `id`: checks the transition table, changes the row,
    /// and appends the event, in one transaction; retried when another writer got there
    /// first. Returns the request as it is now.
    pub(crate) async fn transition(
        &self,
        id: Uuid,
        action: Action,
        actor: Actor,
        input: ActionInput,
    ) -> Result<requests::Model, Error> {
        for _ in 0..ATTEMPTS {
            let now = self.now();
            let tx = self.db().begin_write().await?;
            let row = requests::find(&*tx, id)
                .await?
                .ok_or_else(Error::not_found)?;
            let from: State = parse_stored(&row.state)?;
            let mut to = next_state(from, action)?;
            // Accepted documents verify a request that awaits verification.
            // A next of kin shows the death and the relationship (PIPL 49): accepted
            // documents of both verify them, nothing else does.
            let kin = row.kind == RequestKind::NextOfKin.as_str();
            let verifies = match action {
                Action::Verify if kin => {
                    return Err(Error::new(
                        ErrorCode::DocumentsRequired,
                        "a next of kin is verified by accepting their death certificate and proof of relationship (accept_evidence)",
                    ));
                }
                Action::Verify => true,
                Action::AcceptEvidence if kin => {
                    next_state(from, Action::Verify).is_ok()
                        && self.kin_proofs_complete(&*tx, &row, input.evidence).await?
                }
                Action::AcceptEvidence => next_state(from, Action::Verify).is_ok(),
                _ => false,
            };
            if verifies {
                to = next_state(from, Action::Verify)?;
            }
            let pack = self.pack_of(&row);
            let kind: RequestKind = parse_stored(&row.kind)?;
            let mut change = Change::default();
            let mut effect = DeadlineEffect::None;
            if to != from {
                change.state = Some(to.as_str().to_owned());
                change.is_open = Some(to.is_open());
                if !to.is_open() {
                    change.closed_at = Some(Some(now));
                    effect = DeadlineEffect::Stopped {
                        due_date: row.due_date,
                    };
                }
            }
            if to.clock_paused() && !from.clock_paused() {
                // Waiting for the requester: the clock stops.
                change.paused_at = Some(Some(now));
                effect = DeadlineEffect::Paused {
                    due_date: row.due_date,
                };
            } else if from.clock_paused() && !to.clock_paused() {
                change.paused_at = Some(None);
                if to.is_open() {
                    // It runs again: the due date moves by the time it stood still.
                    let paused_at = row.paused_at.unwrap_or(now);
                    let (due, paused) = pack.after_pause(
                        kind,
                        row.due_date,
                        paused_at,
                        now,
                        &*self.calendar().await?,
                    );
                    self.warn_uncovered(&due.uncovered_years);
                    change.due_date = Some(due.date);
                    effect = DeadlineEffect::PauseEnded {
                        due_date: due.date,
                        paused,
                        unit: pack.pause_unit(kind),
                    };
                }
            }
            if verifies && row.clock_started_at.is_none() {
                // The pack starts the clock at verification: now.
                let due = self.due_date(pack, kind, now).await?;
                change.clock_started_at = Some(Some(now));
                change.due_date = Some(due);
                effect = DeadlineEffect::Set { due_date: due };
            }
            if action == Action::Extend {
                let used = events::for_request(&*tx, id)
                    .await?
                    .iter()
                    .filter(|e| e.event_type == event_type(Action::Extend))
                    .filter_map(|e| e.data["deadline"]["amount"].as_u64())
                    .sum::<u64>();
                let asked = input.data.get("amount").and_then(Value::as_u64);
                let (due, amount) = pack
                    .extend(
                        row.due_date,
                        row.clock_started_at.unwrap_or(row.received_at),
                        now,
                        u32::try_from(used).unwrap_or(u32::MAX),
                        asked.and_then(|a| u32::try_from(a).ok()),
                        &*self.calendar().await?,
                    )
                    .map_err(extension_refused)?;
                change.due_date = Some(due);
                effect = DeadlineEffect::Extended {
                    due_date: due,
                    amount,
                    unit: pack
                        .extension
                        .map_or(PeriodUnit::CalendarDays, |x| x.max.unit),
                };
            }
            if matches!(action, Action::Hold | Action::Release) {
                let held = crate::arrangements::on_hold(&events::for_request(&*tx, id).await?);
                if action == Action::Hold && held {
                    return Err(Error::new(
                        ErrorCode::OnHold,
                        "the request is on hold for the DPO already",
                    ));
                }
                if action == Action::Release && !held {
                    return Err(Error::new(
                        ErrorCode::NotOnHold,
                        "the request is not on hold",
                    ));
                }
            }
            let mut accepted_fee = None;
            if matches!(action, Action::AcceptFee | Action::RequesterReply) {
                let history = events::for_request(&*tx, id).await?;
                accepted_fee = crate::fees::check(action, from, &history)?;
            }
            if action == Action::Reopen {
                // Reopened work gets a fresh period from now.
                let due = self.due_date(pack, kind, now).await?;
                change.closed_at = Some(None);
                change.clock_started_at = Some(Some(now));
                change.due_date = Some(due);
                effect = DeadlineEffect::Set { due_date: due };
            }
            if let Some(assignee) = input.assignee {
                change.assignee_id = Some(assignee);
            }
            let mut data = input.data.clone();
            data.insert("action".to_owned(), json!(action));
            data.insert("from".to_owned(), json!(from));
            data.insert("to".to_owned(), json!(to));
            data.insert("deadline".to_owned(), json!(effect));
            if let Some(assignee) = input.assignee {
                data.insert("assignee_id".to_owned(), json!(assignee));
            }
            if let Some(fee) = accepted_fee {
                data.insert(
                    "fee".to_owned(),
                    json!({"amount": fee.amount, "currency": fee.currency}),
                );
                data.insert("quoted_at".to_owned(), json!(fee.quoted_at));
            }
            if let Some(evidence_id) = input.evidence {
                let Actor::Officer { id: officer_id } = actor else {
                    return Err(Error::internal());
                };
                match self
                    .review_evidence(&*tx, &row, evidence_id, action, officer_id, &data, now)
                    .await
                {
                    Ok(kind) => {
                        data.insert("evidence_kind".to_owned(), json!(kind));
                    }
                    Err(e) if e.code == ErrorCode::ConcurrentModification => continue,
                    Err(e) => return Err(e),
                }
            }
            let mut subject = row.subject_id;
            let mut held_with: Vec<requests::Model> = Vec::new();
            if verifies {
                if action == Action::AcceptEvidence {
                    data.insert("method".to_owned(), json!("document_review"));
                }
                let linked = link_subject(&*tx, &row, now).await?;
                change.subject_id = Some(Some(linked));
                data.insert("subject_id".to_owned(), json!(linked));
                subject = Some(linked);
                // A next of kin: the deceased's arrangement decides which rights go
                // ahead, and a relative who disagrees holds both requests for the DPO.
                if let Some((checked, others)) = self.check_arrangement(&*tx, &row, linked).await? {
                    data.extend(checked);
                    held_with = others;
                }
            }
            // A complaint goes to the DPO once its complainant is verified (the notices
            // are written with this move's).
            if verifies && row.kind == RequestKind::Complaint.as_str() {
                data.insert("escalated_to_dpo".to_owned(), json!(true));
            }
            // A consent withdrawal takes effect as soon as its subject is known, in this
            // transaction (once: later moves find it done).
            if let Some(subject) = subject
                && let Some(consent) = self.take_consent_effect(&*tx, &row, subject, now).await?
            {
                data.insert("consent".to_owned(), consent);
            }
            if let Some(challenge) = input.verification {
                // Redeemed once: a second use of the code or link finds it settled.
                verifications::settle(&*tx, challenge, verifications::USED, None, Some(now))
                    .await?;
            }
            let head = Head {
                seq: row.event_seq,
                hash: row.head_hash.clone(),
            };
            let (event, new_head) = events::build(
                id,
                &head,
                NewEvent {
                    at: now,
                    actor: actor.to_stored(),
                    event_type: event_type(action).to_owned(),
                    data: Json::Object(data.clone()),
                },
            );
            match requests::update(
                &*tx,
                id,
                row.event_seq,
                change,
                new_head.seq,
                &new_head.hash,
                now,
            )
            .await
            {
                Ok(()) => {}
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
            match events::insert(&*tx, event).await {
                Ok(()) => {}
                Err(e) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
            let mut notices = self
                .transition_notices(&*tx, action, &row, &data, new_head.seq, &actor)
                .await?;
            for other in &held_with {
                let held = json!({"held_for_dpo": {"reason": "relatives_disagree", "with": [row.reference]}});
                match append_event(&*tx, other, Actor::System, "held_for_dpo", held, now).await {
                    Ok(()) => {}
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e.into()),
                }
                notices.extend(
                    self.hold_notices(
                        &*tx,
                        other,
                        "relatives_disagree",
                        std::slice::from_ref(&row.reference),
                        other.event_seq + 1,
                    )
                    .await?,
                );
            }
            let outbox = self.outbox_rows(notices, now)?;
            let notify = !outbox.is_empty();
            notifications::insert_many(&*tx, outbox).await?;
            tx.commit().await?;
            if notify {
                self.outbox_written();
            }
            metrics::counter!("rightsdesk_request_actions_total", "action" => action.as_str())
                .increment(1);
            tracing::info!(rights_request_id = %id, reference = %row.reference, action = %action, from = %from, to = %to, "request changed");
            return requests::find(self.db().conn(), id)
                .await?
                .ok_or_else(Error::not_found);
        }
        Err(StoreError::Conflict.into())
    }

    /// `POST /api/v1/officer/requests/{id}/comments`: an internal note, recorded in the
    /// timeline.
    pub async fn comment(
        &self,
        officer: &Officer,
        id: Uuid,
        body: &Value,
    ) -> Result<CommentView, Error> {
        require(officer, Permission::WorkRequests)?;
        let mut errors = ValidationErrors::default();
        let text = {
            let mut r = object_reader(body, &mut errors)?;
            let t = r.string("body", true, limits::LONG_TEXT);
            r.deny_unknown();
            t
        };
        let text = errors
            .finish(text)
            .map_err(Error::from)?
            .ok_or_else(Error::internal)?;
        let actor = Actor::Officer { id: officer.id };
        let comment = self
            .record_event(id, &actor, "comment_added", async |tx, _, now| {
                let comment = comments::Model {
                    id: Uuid::now_v7(),
                    request_id: id,
                    author_id: officer.id,
                    body: text.clone(),
                    created_at: now,
                };
                comments::insert(tx.conn(), comment.clone()).await?;
                Ok((json!({ "comment_id": comment.id }), comment))
            })
            .await?;
        Ok(CommentView {
            id: comment.id,
            author_id: comment.author_id,
            body: comment.body,
            created_at: comment.created_at,
        })
    }
}

/// Appends to `row`'s chain an event that changes none of its fields (a comment, a
/// resent code) and moves the chain head. `Conflict` when the request changed since
/// `row` was read, so that the caller can read it again and retry.
pub(crate) async fn append_event(
    conn: &impl rightsdesk_store::ConnectionTrait,
    row: &requests::Model,
    actor: Actor,
    event_type: &str,
    data: Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let head = Head {
        seq: row.event_seq,
        hash: row.head_hash.clone(),
    };
    let (event, head) = events::build(
        row.id,
        &head,
        NewEvent {
            at: now,
            actor: actor.to_stored(),
            event_type: event_type.to_owned(),
            data,
        },
    );
    requests::update(
        conn,
        row.id,
        row.event_seq,
        Change::default(),
        head.seq,
        &head.hash,
        now,
    )
    .await?;
    events::insert(conn, event).await
}

impl Services {
    /// Appends an event to request `request_id`'s chain, in one transaction with what
    /// `work` writes. `work` gets the transaction, the request as read in it and the
    /// time; it checks what it must (an error returns as it is and writes nothing),
    /// writes its rows, and gives the event's data and its result. When another writer
    /// moved the chain meanwhile, everything is rolled back and tried again on a fresh
    /// read, up to `ATTEMPTS` times.
    /// The earlier requests of `row`'s subject and kind within `repeats.window_days`
    /// before it (none before its subject is known).
    pub(crate) async fn repeats(&self, row: &requests::Model) -> Result<Vec<RepeatView>, Error> {
        let days = self.config().repeats.window_days;
        let Some(subject) = row.subject_id.filter(|_| days > 0) else {
            return Ok(Vec::new());
        };
        let since = row.received_at - chrono::TimeDelta::days(i64::from(days));
        Ok(requests::of_subject_between(
            self.db().conn(),
            subject,
            &row.kind,
            row.id,
            since,
            row.received_at,
        )
        .await?
        .into_iter()
        .map(|r| RepeatView {
            id: r.id,
            reference: r.reference,
            state: r.state,
            received_at: r.received_at,
        })
        .collect())
    }

    pub(crate) async fn record_event<T>(
        &self,
        request_id: Uuid,
        actor: &Actor,
        event_type: &str,
        mut work: impl AsyncFnMut(
            &rightsdesk_store::WriteTx,
            &requests::Model,
            DateTime<Utc>,
        ) -> Result<(Value, T), Error>,
    ) -> Result<T, Error> {
        for _ in 0..ATTEMPTS {
            let now = self.now();
            let tx = self.db().begin_write().await?;
            let row = requests::find(&*tx, request_id)
                .await?
                .ok_or_else(Error::not_found)?;
            let (data, out) = work(&tx, &row, now).await?;
            match append_event(&*tx, &row, actor.clone(), event_type, data, now).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
            tx.commit().await?;
            return Ok(out);
        }
        Err(StoreError::Conflict.into())
    }

    /// The subject of a logged-in account, found by its identifiers or created.
    pub(crate) async fn subject_for_account(
        &self,
        account: &crate::account_login::Account,
    ) -> Result<Uuid, Error> {
        let tx = self.db().begin_write().await?;
        let id = find_or_create_subject(
            &*tx,
            Some(account.account_id.clone()),
            account.email.clone(),
            account.phone.clone(),
            self.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }
}

/// The error for a refused extension.
fn extension_refused(e: deadlines::ExtensionRefused) -> Error {
    use deadlines::ExtensionRefused as R;
    let message = e.to_string();
    match e {
        R::NotAllowed => Error::new(ErrorCode::ExtensionNotAllowed, message),
        R::LimitExceeded { max, used } => Error::new(ErrorCode::ExtensionLimitExceeded, message)
            .with_details(json!({ "max": max, "used": used })),
        R::TooLate { deadline } => Error::new(ErrorCode::ExtensionTooLate, message)
            .with_details(json!({ "deadline": deadline })),
    }
}

/// The subject whose identifiers match the requester's, created when none does.
///
/// A next of kin acts for the deceased: the subject is the person named in
/// `details.deceased`, not the relative who wrote; a guardian or an agent acts for the
/// person in `requester.acting_for`.
async fn link_subject(
    conn: &impl rightsdesk_store::ConnectionTrait,
    row: &requests::Model,
    now: DateTime<Utc>,
) -> Result<Uuid, Error> {
    let person = if row.kind == RequestKind::NextOfKin.as_str() {
        Some(&row.details["deceased"])
    } else {
        row.acting_for.as_ref()
    };
    let (account_id, email, phone) = if let Some(person) = person {
        let get = |k: &str| person.get(k).and_then(Value::as_str).map(str::to_owned);
        (get("account_id"), get("email"), get("phone"))
    } else {
        (
            None,
            row.requester_email.clone(),
            row.requester_phone.clone(),
        )
    };
    find_or_create_subject(conn, account_id, email, phone, now).await
}

/// The subject known by any of these identifiers, or a new one with them.
pub(crate) async fn find_or_create_subject(
    conn: &impl rightsdesk_store::ConnectionTrait,
    account_id: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    now: DateTime<Utc>,
) -> Result<Uuid, Error> {
    if let Some(s) = subjects::find_matching(
        conn,
        account_id.as_deref(),
        email.as_deref(),
        phone.as_deref(),
    )
    .await?
    {
        return Ok(s.id);
    }
    let id = Uuid::now_v7();
    subjects::insert(
        conn,
        subjects::Model {
            id,
            account_id,
            email,
            phone,
            created_at: now,
        },
    )
    .await?;
    Ok(id)
}

/// The events a requester may see, with what was said to them.
fn public_event(e: events::Model) -> Option<PublicEvent> {
    let visible = matches!(
        e.event_type.as_str(),
        "filed"
            | "verification_requested"
            | "verified"
            | "started"
            | "info_requested"
            | "resumed"
            | "requester_replied"
            | "completed"
            | "rejected"
            | "withdrawn"
            | "reopened"
            | "expired"
            | "contact_verified"
            | "evidence_uploaded"
            | "evidence_accepted"
            | "evidence_rejected"
            | "extended"
            | "fee_quoted"
            | "fee_accepted"
    );
    if !visible {
        return None;
    }
    let get = |k: &str| e.data.get(k).and_then(Value::as_str).map(str::to_owned);
    let state = get("to")
        .or_else(|| get("state"))
        .and_then(|s| s.parse().ok());
    let message = get("message")
        .or_else(|| {
            matches!(e.event_type.as_str(), "evidence_rejected" | "extended")
                .then(|| get("reason"))
                .flatten()
        })
        .or_else(|| get("summary"))
        .or_else(|| get("explanation"));
    let reason_code = get("reason_code").and_then(|s| s.parse().ok());
    let fee = e
        .data
        .get("fee")
        .and_then(|f| serde_json::from_value(f.clone()).ok());
    Some(PublicEvent {
        at: e.at,
        event: e.event_type,
        state,
        message,
        reason_code,
        fee,
    })
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The queue's query parameters as received; parsed by [`QueueQuery::parse`].
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// `open` (default), `closed`, `all`, or a comma-separated list of states.
    pub state: Option<String>,
    /// A request kind.
    pub kind: Option<String>,
    /// `me`, `none`, or an officer id.
    pub assignee: Option<String>,
    /// `true`: only open requests past their due date; `false`: only those not yet due.
    pub overdue: Option<String>,
    /// `api`, `email`, `phone`, `post` or `in_person`.
    pub channel: Option<String>,
    /// A rule pack name.
    pub pack: Option<String>,
    /// A reference, an email address or a phone number. Searches every state unless
    /// `state` is given.
    pub q: Option<String>,
    /// 1 to 200; 50 by default.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl QueueQuery {
    fn parse(
        &self,
        officer: &Officer,
        today: requests::PackDates,
        packs: &deadlines::Packs,
    ) -> Result<(QueueFilter, Option<Cursor>, u64), Error> {
        let mut errors = ValidationErrors::default();
        let mut f = QueueFilter::default();
        let nonempty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        match nonempty(&self.state).as_deref() {
            None if nonempty(&self.q).is_some() => {}
            None | Some("open") => f.open = Some(true),
            Some("closed") => f.open = Some(false),
            Some("all") => {}
            Some(list) => {
                let mut states = Vec::new();
                for s in list.split(',') {
                    match s.trim().parse::<State>() {
                        Ok(st) => states.push(st.as_str().to_owned()),
                        Err(m) => errors.push(
                            "state",
                            "invalid_value",
                            format!("{s:?}: {m}, or open, closed, all"),
                        ),
                    }
                }
                f.states = Some(states);
            }
        }
        if let Some(k) = nonempty(&self.kind) {
            match k.parse::<RequestKind>() {
                Ok(k) => f.kind = Some(k.as_str().to_owned()),
                Err(m) => errors.push("kind", "invalid_value", m),
            }
        }
        if let Some(c) = nonempty(&self.channel) {
            match c.parse::<Channel>() {
                Ok(c) => f.channel = Some(c.as_str().to_owned()),
                Err(m) => errors.push("channel", "invalid_value", m),
            }
        }
        if let Some(p) = nonempty(&self.pack) {
            match packs.get(&p) {
                Some(p) => f.pack = Some(p.name.to_owned()),
                None => errors.push(
                    "pack",
                    "invalid_value",
                    format!("unknown rule pack (known: {})", packs.names()),
                ),
            }
        }
        match nonempty(&self.assignee).as_deref() {
            None => {}
            Some("me") => f.assignee = Some(Some(officer.id)),
            Some("none") => f.assignee = Some(None),
            Some(id) => match id.parse::<Uuid>() {
                Ok(id) => f.assignee = Some(Some(id)),
                Err(_) => errors.push(
                    "assignee",
                    "invalid_value",
                    "must be me, none or an officer id",
                ),
            },
        }
        match nonempty(&self.overdue).as_deref() {
            None => {}
            Some("true") => {
                // Only open requests can be overdue; `state=closed&overdue=true` is empty.
                f.open = Some(f.open.unwrap_or(true));
                f.due_before = Some(today.clone());
                f.paused_state = Some(State::AwaitingRequester.as_str().to_owned());
            }
            Some("false") => {
                f.due_on_or_after = Some(today.clone());
                f.paused_state = Some(State::AwaitingRequester.as_str().to_owned());
            }
            Some(_) => errors.push("overdue", "invalid_value", "must be true or false"),
        }
        if let Some(q) = nonempty(&self.q) {
            if let Ok(r) = q.parse::<Reference>() {
                f.reference = Some(r.to_string());
            } else if q.contains('@') {
                match Email::parse(&q) {
                    Ok(e) => f.email = Some(e.as_str().to_owned()),
                    Err((_, m)) => errors.push("q", "invalid_value", format!("email address {m}")),
                }
            } else {
                match Phone::parse(&q) {
                    Ok(p) => f.phone = Some(p.as_str().to_owned()),
                    Err(_) => errors.push(
                        "q",
                        "invalid_value",
                        "must be a reference (PR-2026-000123), an email address or a phone number",
                    ),
                }
            }
        }
        let limit = match nonempty(&self.limit) {
            None => 50,
            Some(l) => match l.parse::<u64>() {
                Ok(n) if (1..=200).contains(&n) => n,
                _ => {
                    errors.push(
                        "limit",
                        "invalid_value",
                        "must be a whole number from 1 to 200",
                    );
                    50
                }
            },
        };
        if !errors.is_empty() {
            return Err(Error::fields(
                ErrorCode::InvalidQuery,
                "invalid query parameters",
                &errors.0,
            ));
        }
        let cursor = nonempty(&self.cursor)
            .map(|c| decode_cursor(&c))
            .transpose()?;
        Ok((f, cursor, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let c = Cursor {
            due_date: NaiveDate::from_ymd_opt(2026, 3, 16).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(decode_cursor(&encode_cursor(c)).unwrap(), c);
        for bad in ["", "!!", "MjAyNg", "bm90fGF8Y3Vyc29y"] {
            assert_eq!(
                decode_cursor(bad).unwrap_err().code,
                ErrorCode::InvalidCursor,
                "{bad}"
            );
        }
    }

    #[test]
    fn filings_report_every_field() {
        let err = Filing::read(
            &json!({"kind": "correction", "requester": {"name": ""}, "details": {}, "x": 1}),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::ValidationFailed);
        let fields: Vec<String> = err.details.unwrap()["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            fields,
            vec!["x", "requester.name", "requester.email", "details.changes"]
        );
    }

    #[test]
    fn unknown_kinds_have_their_own_code() {
        let err = Filing::read(
            &json!({"kind": "telepathy", "requester": {"name": "a", "email": "a@b.cn"}}),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownKind);
        assert_eq!(
            Filing::read(&json!([1])).unwrap_err().code,
            ErrorCode::InvalidBody
        );
    }
}
