//! Identity verification by one-time code or signed link (SPEC §5). Filing sends a
//! 6-digit code (drawn from the operating system's secure generator, stored only as an
//! HMAC) to the requester's email address or mobile number, together with a signed,
//! expiring, single-use link. A correct code or the link verifies the request and links
//! it to the subject with the same identifiers. Answers never say whether the company
//! holds data about anyone.

use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use rightsdesk_domain::lifecycle::{Action, Actor, State};
use rightsdesk_domain::validation::ValidationErrors;
use rightsdesk_mail::Template;
use rightsdesk_store::{notifications, requests, verifications};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::notifications::{Notice, Recipient, request_params};
use crate::requests::{ActionInput, RequesterView, needs_documents, parse_stored};
use crate::{Error, ErrorCode, Services};

/// A new challenge and what the requester is sent.
pub(crate) struct Challenge {
    pub row: verifications::Model,
    pub code: String,
    pub link: String,
}

/// The answer to a resend.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodeSent {
    /// `email` or `sms`: where the new code went.
    pub channel: String,
    /// How long the new code is valid.
    pub expires_at: DateTime<Utc>,
    /// Seconds before another code can be requested.
    pub resend_after_secs: u64,
}

/// The answer to a verification link.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkVerified {
    pub id: Uuid,
    pub reference: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: State,
    /// True when the contact is confirmed but the request still waits for an officer
    /// to accept documents (a next of kin's request).
    pub documents_required: bool,
}

const CODE_DIGITS: usize = 6;
/// Bytes of a link token before its MAC: the challenge id and the expiry (Unix seconds).
const LINK_PAYLOAD: usize = 16 + 8;

impl Services {
    fn verification_mac(&self, purpose: &[u8], id: Uuid, data: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.keys().verification_key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(purpose);
        mac.update(id.as_bytes());
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    fn code_hash(&self, id: Uuid, code: &str) -> String {
        hex::encode(self.verification_mac(b"code:", id, code.as_bytes()))
    }

    /// `<link_base_url>/verify/<token>`, where the token is the challenge id and its
    /// expiry, signed.
    fn link(&self, id: Uuid, expires_at: DateTime<Utc>) -> String {
        let mut payload = id.as_bytes().to_vec();
        payload.extend(expires_at.timestamp().to_be_bytes());
        let mac = self.verification_mac(b"link:", id, &payload[16..]);
        let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}/verify/{}.{}",
            self.config()
                .verification
                .link_base_url
                .trim_end_matches('/'),
            b64.encode(&payload),
            b64.encode(mac)
        )
    }

    /// The challenge id and expiry of an authentic link token.
    fn read_link(&self, token: &str) -> Option<(Uuid, DateTime<Utc>)> {
        let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (payload, mac) = token.split_once('.')?;
        let payload = b64.decode(payload).ok()?;
        let mac = b64.decode(mac).ok()?;
        if payload.len() != LINK_PAYLOAD {
            return None;
        }
        let id = Uuid::from_slice(&payload[..16]).ok()?;
        let expected = self.verification_mac(b"link:", id, &payload[16..]);
        if !crate::requests::constant_time_eq(&expected, &mac) {
            return None;
        }
        let secs = i64::from_be_bytes(payload[16..].try_into().ok()?);
        Some((id, DateTime::from_timestamp(secs, 0)?))
    }

    /// A new challenge for request `request_id`, sent over `channel`.
    pub(crate) fn new_challenge(
        &self,
        request_id: Uuid,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Challenge {
        let id = Uuid::now_v7();
        let mut rng = rand::rng();
        let code: String = (0..CODE_DIGITS)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        let ttl = i64::try_from(self.config().verification.code_ttl_secs).unwrap_or(900);
        let expires_at = now + TimeDelta::seconds(ttl);
        Challenge {
            link: self.link(id, expires_at),
            row: verifications::Model {
                id,
                request_id,
                channel: channel.to_owned(),
                code_hash: self.code_hash(id, &code),
                status: verifications::PENDING.to_owned(),
                attempts: 0,
                expires_at,
                used_at: None,
                created_at: now,
            },
            code,
        }
    }

    /// The notice that carries `challenge` to the requester of `row`.
    pub(crate) fn code_notice(&self, row: &requests::Model, challenge: &Challenge) -> Notice {
        let mut params = request_params(row, self.pack_of(row));
        params["valid_minutes"] = json!(self.config().verification.code_ttl_secs / 60);
        Notice {
            template: Template::VerificationCode,
            to: Recipient::of_request(row),
            language: row.language.clone(),
            request_id: Some(row.id),
            params,
            secret: Some(json!({ "code": challenge.code, "link": challenge.link })),
            dedupe_key: format!("verification_code:{}", challenge.row.id),
        }
    }

    /// `POST /api/v1/requests/{id}/verification`: the requester enters the code.
    pub async fn verify_code(
        &self,
        id: Uuid,
        token: Option<&str>,
        body: &Value,
    ) -> Result<RequesterView, Error> {
        let code = read_code(body)?;
        let row = self.requester_request(id, token).await?;
        awaiting_verification(&row, Action::Verify)?;
        let challenge = self.pending_challenge(id).await?;
        let now = self.now();
        if now >= challenge.expires_at {
            return Err(Error::new(
                ErrorCode::VerificationCodeExpired,
                "the code has expired; request a new one",
            ));
        }
        let expected = self.code_hash(challenge.id, &code);
        if !crate::requests::constant_time_eq(expected.as_bytes(), challenge.code_hash.as_bytes()) {
            return Err(self.count_wrong_code(&challenge).await?);
        }
        let method = format!("{}_code", challenge.channel);
        let updated = self
            .redeem(&row, challenge.id, &method)
            .await
            .map_err(|e| match e.code {
                ErrorCode::ConcurrentModification => invalid_code(0),
                _ => e,
            })?;
        self.to_requester_view(updated).await
    }

    /// The request's pending challenge, or why there is none.
    async fn pending_challenge(&self, id: Uuid) -> Result<verifications::Model, Error> {
        match verifications::latest(self.db().conn(), id).await? {
            Some(c) if c.status == verifications::PENDING => Ok(c),
            Some(c) if c.status == verifications::BURNED => Err(Error::new(
                ErrorCode::VerificationLocked,
                "too many wrong codes: this code no longer works; request a new one",
            )),
            _ => Err(invalid_code(0)),
        }
    }

    /// Counts a wrong code; the code is burned at `verification.max_attempts`.
    async fn count_wrong_code(&self, challenge: &verifications::Model) -> Result<Error, Error> {
        let max = i32::try_from(self.config().verification.max_attempts).unwrap_or(5);
        let tx = self.db().begin_write().await?;
        verifications::count_wrong(&*tx, challenge.id).await?;
        let now_attempts = verifications::find(&*tx, challenge.id)
            .await?
            .map_or(max, |c| c.attempts);
        if now_attempts >= max {
            // Another attempt may have burned it first: either way it is burned.
            let _ = verifications::settle(
                &*tx,
                challenge.id,
                verifications::BURNED,
                Some(now_attempts),
                None,
            )
            .await;
        }
        tx.commit().await?;
        metrics::counter!("rightsdesk_verification_failures_total").increment(1);
        if now_attempts >= max {
            Ok(Error::new(
                ErrorCode::VerificationLocked,
                "too many wrong codes: this code no longer works; request a new one",
            ))
        } else {
            Ok(invalid_code(max - now_attempts))
        }
    }

    /// `POST /api/v1/requests/{id}/verification/resend`: a new code replaces the old one.
    pub async fn resend_code(&self, id: Uuid, token: Option<&str>) -> Result<CodeSent, Error> {
        let row = self.requester_request(id, token).await?;
        awaiting_verification(&row, Action::RequestVerification)?;
        let cooldown = self.config().verification.resend_cooldown_secs;
        let now = self.now();
        if let Some(last) = verifications::latest(self.db().conn(), id).await? {
            let ready = last.created_at + TimeDelta::seconds(i64::try_from(cooldown).unwrap_or(60));
            if now < ready {
                let wait = (ready - now).num_seconds().max(1);
                return Err(Error::new(
                    ErrorCode::VerificationResendTooSoon,
                    format!("a code was sent moments ago; ask again in {wait} seconds"),
                )
                .with_details(json!({ "retry_after": wait })));
            }
        }
        let Some(recipient) = Recipient::of_request(&row) else {
            return Err(Error::internal());
        };
        let channel = match recipient {
            Recipient::Email(_) => "email",
            Recipient::Sms(_) => "sms",
        };
        let challenge = self.new_challenge(id, channel, now);
        let notice = self.code_notice(&row, &challenge);
        let outbox = self.outbox_rows([notice], now)?;
        self.record_resend(&row, &challenge, outbox).await?;
        self.outbox_written();
        Ok(CodeSent {
            channel: channel.to_owned(),
            expires_at: challenge.row.expires_at,
            resend_after_secs: cooldown,
        })
    }

    /// Redeems `challenge` of request `id`: the request is verified, or, when its kind
    /// needs documents, the contact is confirmed with a `contact_verified` event and
    /// the request keeps waiting for an officer to accept the evidence.
    async fn redeem(
        &self,
        request: &requests::Model,
        challenge: Uuid,
        method: &str,
    ) -> Result<requests::Model, Error> {
        let id = request.id;
        if !needs_documents(request)? {
            return self
                .transition(
                    id,
                    Action::Verify,
                    Actor::Requester,
                    ActionInput::verification(method, challenge),
                )
                .await;
        }
        self.record_event(
            id,
            &Actor::Requester,
            "contact_verified",
            async |tx, row, now| {
                awaiting_verification(row, Action::Verify)?;
                verifications::settle(tx.conn(), challenge, verifications::USED, None, Some(now))
                    .await?;
                Ok((
                    json!({ "method": method, "verification_id": challenge }),
                    (),
                ))
            },
        )
        .await?;
        tracing::info!(rights_request_id = %id, "contact verified; documents to review");
        requests::find(self.db().conn(), id)
            .await?
            .ok_or_else(Error::not_found)
    }

    /// `POST /verify/{token}`: the link from the verification email; also
    /// `GET /api/v1/requests/{id}/verify?token=`, where the token must be one of request
    /// `expected`'s.
    pub async fn verify_link(
        &self,
        token: &str,
        expected: Option<Uuid>,
    ) -> Result<LinkVerified, Error> {
        let invalid = || {
            Error::new(
                ErrorCode::VerificationLinkInvalid,
                "this verification link is not valid: it was altered or cut short",
            )
        };
        let (challenge_id, expires_at) = self.read_link(token).ok_or_else(invalid)?;
        let challenge = verifications::find(self.db().conn(), challenge_id)
            .await?
            .filter(|c| expected.is_none_or(|id| id == c.request_id))
            .ok_or_else(invalid)?;
        let gone = || {
            Error::new(
                ErrorCode::VerificationLinkExpired,
                "this verification link has expired or was already used; request a new code",
            )
        };
        if self.now() >= expires_at || challenge.status != verifications::PENDING {
            return Err(gone());
        }
        let method = format!("{}_link", challenge.channel);
        let row = requests::find(self.db().conn(), challenge.request_id)
            .await?
            .ok_or_else(invalid)?;
        let updated = self
            .redeem(&row, challenge.id, &method)
            .await
            .map_err(|e| match e.code {
                ErrorCode::ConcurrentModification | ErrorCode::IllegalTransition => gone(),
                _ => e,
            })?;
        let state = parse_stored(&updated.state)?;
        Ok(LinkVerified {
            id: updated.id,
            reference: updated.reference,
            state,
            documents_required: state == State::AwaitingVerification,
        })
    }
}

impl Services {
    /// Writes a resent code: the old challenge superseded, the new one and its notice,
    /// and a `verification_code_sent` event, in one transaction.
    async fn record_resend(
        &self,
        row: &requests::Model,
        challenge: &Challenge,
        outbox: Vec<rightsdesk_store::notifications::Model>,
    ) -> Result<(), Error> {
        let event = "verification_code_sent";
        self.record_event(row.id, &Actor::Requester, event, async |tx, _, _| {
            verifications::supersede_pending(tx.conn(), row.id).await?;
            verifications::insert_many(tx.conn(), vec![challenge.row.clone()]).await?;
            notifications::insert_many(tx.conn(), outbox.clone()).await?;
            let data = json!({
                "channel": challenge.row.channel,
                "verification_id": challenge.row.id,
            });
            Ok((data, ()))
        })
        .await
    }
}

/// Requests expired per pass; the next pass takes the rest.
const EXPIRE_BATCH: u64 = 100;

impl Services {
    /// Expires the requests whose requester has not verified within
    /// `verification.expire_after_days` of receipt; each gets an `expired` event and a
    /// notice. Returns how many it expired. Safe to run from several instances at once:
    /// a request another instance expired first is skipped.
    pub async fn expire_unverified(&self) -> Result<usize, Error> {
        let days = i64::from(self.config().verification.expire_after_days);
        let cutoff = self.now() - TimeDelta::days(days);
        let mut expired = 0;
        loop {
            let ids = requests::in_state_received_before(
                self.db().conn(),
                State::AwaitingVerification.as_str(),
                cutoff,
                EXPIRE_BATCH,
            )
            .await?;
            let batch = ids.len();
            for id in ids {
                match self
                    .transition(id, Action::Expire, Actor::System, ActionInput::system())
                    .await
                {
                    Ok(row) => {
                        expired += 1;
                        tracing::info!(rights_request_id = %id, reference = %row.reference, "unverified request expired");
                    }
                    Err(e) if e.code == ErrorCode::IllegalTransition => {}
                    Err(e) => return Err(e),
                }
            }
            if (batch as u64) < EXPIRE_BATCH {
                return Ok(expired);
            }
        }
    }
}

/// `illegal_transition` for `action` unless `row` waits for verification.
fn awaiting_verification(row: &requests::Model, action: Action) -> Result<(), Error> {
    let state: State = parse_stored(&row.state)?;
    if state == State::AwaitingVerification {
        Ok(())
    } else {
        Err(rightsdesk_domain::lifecycle::IllegalTransition { state, action }.into())
    }
}

fn invalid_code(attempts_left: i32) -> Error {
    Error::new(
        ErrorCode::VerificationCodeInvalid,
        "the code is not right, or not the latest one sent",
    )
    .with_details(json!({ "attempts_left": attempts_left.max(0) }))
}

fn read_code(body: &Value) -> Result<String, Error> {
    let mut errors = ValidationErrors::default();
    let code = {
        let mut r = crate::requests::object_reader(body, &mut errors)?;
        let c = r.string("code", true, 16);
        r.deny_unknown();
        c
    };
    let code = errors
        .finish(code)
        .map_err(Error::from)?
        .unwrap_or_default();
    if code.len() != CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::from(ValidationErrors::single(
            "code",
            "invalid_code_format",
            "the code is the 6 digits from the message",
        )));
    }
    Ok(code)
}
