//! Cost fees for repeated requests (SPEC §8). An officer may quote one only when the
//! request repeats an earlier one of the same subject and kind within
//! `repeats.window_days`; the request then waits for its requester (the clock stopped)
//! until they accept it with `POST /api/v1/requests/{id}/fee/accept`, or withdraw. An
//! officer's `resume` goes on without it (the fee waived, or accepted in writing).
//!
//! The quote is the `fee_quoted` event; which fee a waiting request waits for is read
//! from its events, never kept twice.

use chrono::{DateTime, Utc};
use rightsdesk_domain::fees::Fee;
use rightsdesk_domain::validation::{ObjectReader, limits};
use rightsdesk_domain::{Action, State};
use rightsdesk_store::events;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::requests::RequesterView;
use crate::{Error, ErrorCode, Services};

/// The currency of a quote that names none.
pub const DEFAULT_CURRENCY: &str = "CNY";

/// A fee the requester is asked to accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeeQuote {
    /// Two decimals, e.g. `"30.00"`.
    pub amount: String,
    /// ISO 4217, e.g. `CNY`.
    pub currency: String,
    /// Why the fee is asked: the repetition and the cost it causes.
    pub explanation: String,
    pub quoted_at: DateTime<Utc>,
}

/// Reads `quote_fee`'s body into the event data: `fee {amount, currency}` and
/// `explanation`.
pub(crate) fn read_quote(r: &mut ObjectReader<'_>, data: &mut serde_json::Map<String, Value>) {
    let amount_path = r.field_path("amount");
    let amount = match r.take("amount") {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            r.errors().push(
                amount_path.clone(),
                "invalid_type",
                "must be a decimal amount as a string, like \"30.00\"",
            );
            None
        }
        None => {
            r.errors()
                .push(amount_path.clone(), "required", "this field is required");
            None
        }
    };
    let currency_path = r.field_path("currency");
    let currency = r
        .string("currency", false, limits::SHORT_TEXT)
        .unwrap_or_else(|| DEFAULT_CURRENCY.to_owned());
    if let Some(amount) = amount {
        match Fee::parse(&amount, &currency) {
            Ok(fee) => {
                data.insert("fee".to_owned(), json!(fee));
            }
            Err(e @ rightsdesk_domain::fees::FeeError::Currency) => {
                r.errors()
                    .push(currency_path, "invalid_value", e.to_string())
            }
            Err(e) => r.errors().push(amount_path, "invalid_value", e.to_string()),
        }
    }
    if let Some(text) = r.string("explanation", true, limits::LONG_TEXT) {
        data.insert("explanation".to_owned(), Value::String(text));
    }
}

/// The fee a request in `awaiting_requester` waits for: the quote that paused it, if the
/// last pause was a quote. `events` are the request's, oldest first.
pub(crate) fn pending(state: State, events: &[events::Model]) -> Option<FeeQuote> {
    if state != State::AwaitingRequester {
        return None;
    }
    let pause = events
        .iter()
        .rev()
        .find(|e| e.data.get("to").and_then(Value::as_str) == Some("awaiting_requester"))?;
    if pause.event_type != "fee_quoted" {
        return None;
    }
    let fee: Fee = serde_json::from_value(pause.data.get("fee")?.clone()).ok()?;
    Some(FeeQuote {
        amount: fee.amount,
        currency: fee.currency,
        explanation: pause
            .data
            .get("explanation")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        quoted_at: pause.at,
    })
}

/// Whether `action` may be taken given the fee a request in `state` waits for:
/// `accept_fee` needs one (409 `no_fee_quoted`); a requester's reply does not end the
/// wait for a fee (409 `fee_pending`). Returns the fee `accept_fee` accepts.
pub(crate) fn check(
    action: Action,
    state: State,
    events: &[events::Model],
) -> Result<Option<FeeQuote>, Error> {
    match (action, pending(state, events)) {
        (Action::AcceptFee, None) => Err(Error::new(
            ErrorCode::NoFeeQuoted,
            "the request is not waiting for a fee to be accepted",
        )),
        (Action::AcceptFee, Some(fee)) => Ok(Some(fee)),
        (Action::RequesterReply, Some(_)) => Err(Error::new(
            ErrorCode::FeePending,
            "the request waits for its fee to be accepted",
        )),
        _ => Ok(None),
    }
}

impl Services {
    /// A fee is quoted only for a repeat (SPEC §8): 409 `fee_not_allowed` otherwise.
    pub(crate) async fn check_fee_allowed(
        &self,
        row: &rightsdesk_store::requests::Model,
    ) -> Result<Vec<String>, Error> {
        let repeats = self.repeats(row).await?;
        if repeats.is_empty() {
            return Err(Error::new(
                ErrorCode::FeeNotAllowed,
                format!(
                    "a fee is quoted only for a repeated request: no earlier {} request of this subject in the last {} days",
                    row.kind,
                    self.config().repeats.window_days
                ),
            ));
        }
        Ok(repeats.into_iter().map(|r| r.reference).collect())
    }

    /// `POST /api/v1/requests/{id}/fee/accept`: the requester accepts the quoted fee,
    /// and the clock runs again. Body (optional): `{note}`.
    pub async fn accept_fee(
        &self,
        id: Uuid,
        token: Option<&str>,
        body: &Value,
    ) -> Result<RequesterView, Error> {
        self.requester_action(id, token, Action::AcceptFee, body)
            .await
    }
}
