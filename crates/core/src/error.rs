//! The one table of error codes. Every error a client can see has a stable snake_case
//! code, an HTTP status and a description; `docs/errors.md` lists them, and a test
//! fails when a code is added without being documented.

use std::fmt;

use rightsdesk_domain::{FieldError, IllegalTransition, ValidationErrors};
use serde_json::{Value, json};

macro_rules! error_codes {
    ($($variant:ident = ($code:literal, $status:literal, $description:literal)),+ $(,)?) => {
        /// A stable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant),+
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code),+
                }
            }

            pub fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status),+
                }
            }

            pub fn description(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $description),+
                }
            }
        }
    };
}

error_codes! {
    MalformedJson = ("malformed_json", 400, "The body is not valid JSON."),
    InvalidBody = ("invalid_body", 400, "The body is JSON but not of the expected shape (e.g. not an object)."),
    ValidationFailed = ("validation_failed", 422, "One or more fields are invalid; `details.fields` names each with its own code."),
    UnknownKind = ("unknown_kind", 422, "`kind` is not one of the request kinds."),
    PayloadTooLarge = ("payload_too_large", 413, "The body is larger than the configured limit."),
    UnsupportedMediaType = ("unsupported_media_type", 415, "The body must be `application/json`."),
    InvalidQuery = ("invalid_query", 400, "A query parameter has an invalid value; `details.fields` names it."),
    InvalidCursor = ("invalid_cursor", 400, "The pagination cursor is not one this service issued."),
    InvalidIdempotencyKey = ("invalid_idempotency_key", 400, "The `Idempotency-Key` header must be 1 to 255 visible ASCII characters."),
    IdempotencyKeyReused = ("idempotency_key_reused", 422, "The `Idempotency-Key` was already used with a different body."),
    Unauthenticated = ("unauthenticated", 401, "No credentials were given: send `Authorization: Bearer <token>`."),
    InvalidToken = ("invalid_token", 401, "The token is malformed, expired, or not signed by this service for this audience."),
    InvalidCredentials = ("invalid_credentials", 401, "Unknown username or wrong password."),
    AccountLocked = ("account_locked", 429, "Too many failed logins; the account is locked for a while (see `Retry-After`)."),
    Forbidden = ("forbidden", 403, "The officer's roles do not allow this."),
    NotFound = ("not_found", 404, "No such resource, or not one these credentials may see."),
    RouteNotFound = ("route_not_found", 404, "No such endpoint."),
    UnknownAction = ("unknown_action", 404, "No such action; `details.actions` lists them."),
    IllegalTransition = ("illegal_transition", 409, "The action is not legal in the request's current state, named in `details.state`."),
    ConcurrentModification = ("concurrent_modification", 409, "The request was changed by someone else at the same moment; read it again and retry."),
    VerificationCodeInvalid = ("verification_code_invalid", 422, "The verification code is wrong, or not the latest one sent; `details.attempts_left` says how many tries remain."),
    VerificationCodeExpired = ("verification_code_expired", 422, "The verification code has expired; request a new one."),
    VerificationLocked = ("verification_locked", 429, "Too many wrong codes: the code no longer works; request a new one."),
    VerificationResendTooSoon = ("verification_resend_too_soon", 429, "A code was sent moments ago; `details.retry_after` and `Retry-After` give the seconds to wait."),
    VerificationLinkInvalid = ("verification_link_invalid", 400, "The verification link was altered or cut short."),
    VerificationLinkExpired = ("verification_link_expired", 410, "The verification link has expired or was already used."),
    AccountLoginDisabled = ("account_login_disabled", 400, "A filing carried `Authorization: Bearer`, but this service accepts no account-system tokens (`account_login.issuer` is unset). File without it."),
    AccountTokenInvalid = ("account_token_invalid", 401, "The account-system token is malformed, lacks `exp`, `iss`, `aud` or `sub`, is not valid yet, or its signature does not verify with the configured key."),
    AccountTokenExpired = ("account_token_expired", 401, "The account-system token has expired."),
    AccountTokenForeign = ("account_token_foreign", 401, "The account-system token was issued by another issuer or for another audience than configured."),
    ExtensionNotAllowed = ("extension_not_allowed", 409, "The request's rule pack allows no extension (`pipl` does not)."),
    ExtensionLimitExceeded = ("extension_limit_exceeded", 409, "The extension would pass the rule pack's limit; `details.max` and `details.used` give the limit and what was granted already."),
    ExtensionTooLate = ("extension_too_late", 409, "The time to announce an extension is over; `details.deadline` is the last day it could be announced."),
    RequestClosed = ("request_closed", 409, "The request is closed; nothing more can be added to it."),
    InvalidUpload = ("invalid_upload", 400, "The body must be `multipart/form-data` with one `file` part and a `kind` field; `details.problem` says what is wrong."),
    EvidenceTooLarge = ("evidence_too_large", 413, "The file is larger than `evidence.max_bytes`; `details.max_bytes` gives the limit."),
    EvidenceTypeNotAllowed = ("evidence_type_not_allowed", 415, "Evidence must be a PDF, JPEG or PNG file, recognised from its content."),
    IntakeAlreadySettled = ("intake_already_settled", 409, "The inbound message was converted or dismissed already; `message` says which."),
    InvalidSignature = ("invalid_signature", 401, "The raw-MIME post is not signed with `intake.hook_secret`, or its timestamp is missing or too far from now."),
    ReplayedMessage = ("replayed_message", 409, "This signed raw-MIME post was accepted already; sign each post anew."),
    NoSources = ("no_sources", 409, "No data source is configured (`sources.file`): there is nothing to look up."),
    CollectionNotAllowed = ("collection_not_allowed", 409, "Sources are looked up for an access, copy or portability request in progress whose subject is verified; `message` says what is missing."),
    ErasureNotAllowed = ("erasure_not_allowed", 409, "Sources are erased for a deletion or account-closure request in progress whose subject is verified; `message` says what is missing."),
    SourcesUnerased = ("sources_unerased", 409, "A data source has no erasure outcome yet; `details.sources` lists them. Re-run a failed source, or confirm its owner's erasure."),
    NotRejected = ("not_rejected", 409, "The request is not rejected: only a rejected request has a refusal letter."),
    SourcesUnchanged = ("sources_unchanged", 409, "A data source that uses a withdrawn purpose has not applied the withdrawal yet; `details.sources` lists them. Re-run a failed source, or confirm its owner's change."),
    ChangeNotAllowed = ("change_not_allowed", 409, "The request has no open change in that source: only an open consent withdrawal's sources are re-run."),
    CorrectionNotAllowed = ("correction_not_allowed", 409, "Corrections are read and decided on a `correction` request in progress."),
    AlreadyDecided = ("already_decided", 409, "The requested change was approved or rejected already (`details.change`); a decision is final."),
    CorrectionsUndecided = ("corrections_undecided", 409, "Not every requested change is approved or rejected yet; `details.changes` lists their indexes."),
    DocumentsRequired = ("documents_required", 409, "A next of kin is verified by accepting their documents — a death certificate and a proof of relationship (`accept_evidence`) — not by `verify`."),
    OnHold = ("on_hold", 409, "The request is on hold for the DPO (relatives of the deceased disagree, or an officer held it): the DPO releases it first."),
    NotOnHold = ("not_on_hold", 409, "The request is not on hold: there is nothing to release."),
    ArrangementDenies = ("arrangement_denies", 409, "The deceased's arrangement refuses every right the next of kin asked for: the request can only be refused, with reason_code deceased_arrangement."),
    FeeNotAllowed = ("fee_not_allowed", 409, "A fee is quoted only for a repeated request: an earlier one of the same subject and kind within `repeats.window_days` (the detail's `repeats`)."),
    NoFeeQuoted = ("no_fee_quoted", 409, "The request is not waiting for a fee to be accepted."),
    FeePending = ("fee_pending", 409, "The request waits for its quoted fee to be accepted (`fee_due`): accept it, or withdraw the request."),
    SourcesUnanswered = ("sources_unanswered", 409, "A data source has not answered the request yet; `details.sources` lists them. Re-run a failed source, or wait for its owner."),
    BundleNotReady = ("bundle_not_ready", 409, "Every source has answered but the bundle is still being written (or writing it failed: see the request's `bundles`); complete once it is `ready`."),
    PortabilityConditionsUnmet = ("portability_conditions_unmet", 409, "A portability request completes only when its four conditions are met; `details.conditions` says which is not. Confirm the fourth with `no_harm_confirmed: true`, or refuse with a reason code."),
    SourceNotManual = ("source_not_manual", 409, "Only a `manual` source is answered by its owner; `sql` and `http` sources are looked up (re-run them instead)."),
    SourceNotWaiting = ("source_not_waiting", 409, "The source is not waiting for its owner's answer: start the collection first, or re-run the source to answer it again."),
    InvalidAnswer = ("invalid_answer", 400, "The owner's answer is not `{\"no_data\": true}` or `{\"records\": {category: [object, …]}}` with categories the source holds, or a CSV with a header row; `details.problem` says what is wrong."),
    DownloadLinkInvalid = ("download_link_invalid", 404, "The download link was altered, cut short, or does not exist."),
    DownloadLinkExpired = ("download_link_expired", 410, "The download link has expired; ask the privacy office for a new one."),
    DownloadLimitReached = ("download_limit_reached", 410, "The download link was used as many times as it allows (`bundles.max_downloads`)."),
    BundlePurged = ("bundle_purged", 410, "The bundle was deleted after its links expired; ask the privacy office for a new one."),
    EvidenceLimitReached = ("evidence_limit_reached", 409, "The request already holds `evidence.max_files_per_request` files."),
    EvidenceAlreadyReviewed = ("evidence_already_reviewed", 409, "The evidence file was already accepted or rejected."),
    EvidenceDeleted = ("evidence_deleted", 410, "The file was deleted after the retention period; its record remains in the timeline."),
    UsernameTaken = ("username_taken", 409, "An officer with this username exists."),
    Internal = ("internal", 500, "Something failed inside the service; the `request_id` finds it in the logs."),
    ReferencesExhausted = ("references_exhausted", 503, "Every request reference of the year (PR-<year>-000000 to 999999) is in use; no further request can be filed for that year."),
    Unavailable = ("unavailable", 503, "A dependency (the database) is unavailable; retry later."),
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a client can see: a code, a human message, and optional details.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// A validation error naming each field.
    pub fn fields(code: ErrorCode, message: impl Into<String>, fields: &[FieldError]) -> Self {
        Self::new(code, message).with_details(json!({ "fields": fields }))
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "no such request")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl From<ValidationErrors> for Error {
    fn from(e: ValidationErrors) -> Self {
        Self::fields(
            ErrorCode::ValidationFailed,
            "the request has invalid fields",
            &e.0,
        )
    }
}

impl From<IllegalTransition> for Error {
    fn from(e: IllegalTransition) -> Self {
        Self::new(ErrorCode::IllegalTransition, e.to_string())
            .with_details(json!({"state": e.state, "action": e.action}))
    }
}

impl From<rightsdesk_store::StoreError> for Error {
    fn from(e: rightsdesk_store::StoreError) -> Self {
        use rightsdesk_store::StoreError;
        match e {
            StoreError::Conflict => Self::new(
                ErrorCode::ConcurrentModification,
                "the request changed while this action ran; read it again and retry",
            ),
            StoreError::NotFound => Self::not_found(),
            StoreError::Db(db) => {
                // The message may carry SQL and values: log it, never return it.
                tracing::error!(error = %db, "database error");
                if matches!(
                    db,
                    sea_orm_errors::Conn(_) | sea_orm_errors::ConnectionAcquire(_)
                ) {
                    Self::new(ErrorCode::Unavailable, "the database is unavailable")
                } else {
                    Self::internal()
                }
            }
            StoreError::Config(m) => {
                tracing::error!(error = %m, "store configuration error");
                Self::internal()
            }
        }
    }
}

use rightsdesk_store::DbErr as sea_orm_errors;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_with_client_or_server_statuses() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate {c}");
            assert!(
                c.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{c}"
            );
            assert!((400..600).contains(&c.status()), "{c}");
        }
    }

    #[test]
    fn every_code_is_documented() {
        let doc = include_str!("../../../docs/errors.md");
        for c in ErrorCode::ALL {
            assert!(
                doc.contains(&format!("`{}`", c.as_str())),
                "docs/errors.md does not list {c}"
            );
        }
    }
}
