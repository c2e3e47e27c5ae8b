//! Polling the IMAP mailboxes of `[intake.mailboxes]` on the worker (the periodic job
//! `poll_mailboxes`). Each mailbox's cursor (UIDVALIDITY and the last UID whose message
//! is recorded) lives in `intake_cursors`, so a restart neither reads a message again
//! nor skips one: a message is recorded (and its request committed) first, then marked
//! processed on the server, then the cursor moves past it. A crash between the two
//! reads the message again, and its Message-ID makes it a duplicate. A changed
//! UIDVALIDITY restarts the mailbox from its first message, with the same protection.
//! A mailbox that cannot be reached is tried again later, waiting twice as long each
//! time (up to an hour); the others are polled meanwhile.

use chrono::{DateTime, Utc};
use rightsdesk_mail::imap::{Cursor, ImapClient, ImapError};
use rightsdesk_store::intake::{self as store, status};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::IntakeSource;
use crate::{Error, Services};

/// How long one run reads one mailbox before it lets the others (and the next run) go
/// on: a backlog drains at the speed of intake, not at one batch per interval.
const RUN_BUDGET: std::time::Duration = std::time::Duration::from_secs(300);
/// Waits after failed polls: 30 s, doubling, at most an hour.
const BACKOFF_BASE_SECS: u64 = 30;
const BACKOFF_MAX_SECS: u64 = 3_600;

/// What one run of `poll_mailboxes` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollReport {
    /// Mailboxes polled (not waiting after a failure).
    pub polled: u32,
    /// Messages recorded, whatever they became.
    pub messages: u64,
    /// Mailboxes whose poll failed (unreachable, refused login, …).
    pub failed: u32,
}

/// Why a mailbox's poll stopped.
enum Stop {
    /// The mailbox: tried again after a back-off.
    Mailbox(ImapError),
    /// The service itself (the database): the job fails and is retried.
    Service(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Service(e)
    }
}

impl From<rightsdesk_store::StoreError> for Stop {
    fn from(e: rightsdesk_store::StoreError) -> Self {
        Stop::Service(e.into())
    }
}

impl From<ImapError> for Stop {
    fn from(e: ImapError) -> Self {
        Stop::Mailbox(e)
    }
}

impl Services {
    /// Polls every configured mailbox once (those waiting after a failure are skipped).
    pub async fn poll_mailboxes(&self) -> Result<PollReport, Error> {
        self.poll(false).await
    }

    /// Polls every configured mailbox once, those waiting after a failure too
    /// (`rightsdesk intake poll`: an operator checking a mailbox's settings).
    pub async fn poll_mailboxes_now(&self) -> Result<PollReport, Error> {
        self.poll(true).await
    }

    async fn poll(&self, waiting_too: bool) -> Result<PollReport, Error> {
        let mut report = PollReport::default();
        for (name, client) in self.inner.mailboxes.iter() {
            let now = self.now();
            let state = store::cursor(self.db().conn(), name).await?;
            if !waiting_too && state.as_ref().is_some_and(|s| s.next_poll_at > now) {
                continue;
            }
            report.polled += 1;
            let mut recorded = 0;
            match self
                .poll_mailbox(name, client, state.as_ref(), &mut recorded)
                .await
            {
                Ok(()) => {}
                Err(Stop::Service(e)) => return Err(e),
                Err(Stop::Mailbox(e)) => {
                    report.failed += 1;
                    self.mailbox_failed(name, &e).await?;
                }
            }
            report.messages += recorded;
        }
        Ok(report)
    }

    async fn poll_mailbox(
        &self,
        name: &str,
        client: &ImapClient,
        state: Option<&store::cursors::Model>,
        recorded: &mut u64,
    ) -> Result<(), Stop> {
        let mut cursor = state.and_then(|s| {
            Some(Cursor {
                uid_validity: u32::try_from(s.uid_validity?).ok()?,
                last_uid: u32::try_from(s.last_uid).ok()?,
            })
        });
        let started = std::time::Instant::now();
        let mut session = client.connect().await?;
        // Read from the database once per poll, on the first message that needs them.
        let mut rules = None;
        loop {
            let batch = session.fetch_new(cursor).await?;
            if batch.reset {
                tracing::warn!(
                    mailbox = name,
                    "the mailbox's UIDVALIDITY changed: it is read again from its first message; messages recorded before are recognised by their Message-ID"
                );
                metrics::counter!("rightsdesk_intake_uidvalidity_resets_total").increment(1);
            }
            if batch.messages.is_empty() && batch.more {
                // Nothing came back though more was announced: never spin on it; the
                // next run tries again with a fresh session.
                tracing::warn!(
                    mailbox = name,
                    last_uid = cursor.map(|c| c.last_uid),
                    "the server returned no message of a batch it announced; the next run tries again"
                );
                break;
            }
            if batch.messages.is_empty() {
                // Records a new UIDVALIDITY, and clears a past failure.
                let at = cursor.map_or(0, |c| c.last_uid);
                let next = batch.cursor_after(if batch.reset { 0 } else { at });
                self.save_cursor(name, next).await?;
            }
            for message in &batch.messages {
                let source = IntakeSource::Mailbox {
                    name: name.to_owned(),
                    uid: message.uid,
                };
                if message.too_large {
                    self.record_unread(source, u64::from(message.size), "too_large")
                        .await?;
                } else {
                    self.ingest(&message.raw, source, &mut rules).await?;
                }
                *recorded += 1;
                if let Err(e) = session.mark_processed(message.uid).await {
                    // The message is recorded: the cursor moves past it anyway, and the
                    // next poll reconnects if the session broke.
                    tracing::warn!(mailbox = name, uid = message.uid, error = %e, "could not mark a message processed");
                }
                let next = batch.cursor_after(message.uid);
                self.save_cursor(name, next).await?;
                cursor = Some(next);
            }
            if !batch.more || started.elapsed() >= RUN_BUDGET {
                break;
            }
        }
        if let Err(e) = session.logout().await {
            tracing::debug!(mailbox = name, error = %e, "logout failed");
        }
        Ok(())
    }

    async fn save_cursor(&self, name: &str, cursor: Cursor) -> Result<(), Error> {
        let now = self.now();
        store::save_cursor(
            self.db().conn(),
            store::cursors::Model {
                mailbox: name.to_owned(),
                uid_validity: Some(i64::from(cursor.uid_validity)),
                last_uid: i64::from(cursor.last_uid),
                failures: 0,
                next_poll_at: now,
                last_error: None,
                updated_at: now,
            },
        )
        .await?;
        Ok(())
    }

    /// Counts a failed poll and sets when to try again.
    async fn mailbox_failed(&self, name: &str, error: &ImapError) -> Result<(), Error> {
        let now = self.now();
        let previous = store::cursor(self.db().conn(), name).await?;
        let failures = previous
            .as_ref()
            .map_or(0, |p| p.failures)
            .saturating_add(1);
        let wait = crate::jobs::backoff(BACKOFF_BASE_SECS, BACKOFF_MAX_SECS, failures);
        metrics::counter!("rightsdesk_intake_poll_failures_total").increment(1);
        tracing::warn!(
            mailbox = name,
            failures,
            retry_in_secs = wait.num_seconds(),
            transient = error.is_transient(),
            error = %error,
            "polling a mailbox failed"
        );
        store::save_cursor(
            self.db().conn(),
            store::cursors::Model {
                mailbox: name.to_owned(),
                uid_validity: previous.as_ref().and_then(|p| p.uid_validity),
                last_uid: previous.as_ref().map_or(0, |p| p.last_uid),
                failures,
                next_poll_at: now + wait,
                last_error: Some(error.to_string()),
                updated_at: now,
            },
        )
        .await?;
        Ok(())
    }

    /// Records a message that was not read (over the size limit) as failed.
    pub(crate) async fn record_unread(
        &self,
        source: IntakeSource,
        size: u64,
        reason: &str,
    ) -> Result<(), Error> {
        let now = self.now();
        self.record_intake(
            store::messages::Model {
                id: Uuid::now_v7(),
                source: source.stored(),
                source_uid: source.uid(),
                message_id: None,
                received_at: now,
                from_address: None,
                subject: String::new(),
                body: String::new(),
                status: status::FAILED.to_owned(),
                reason: Some(reason.to_owned()),
                kind: None,
                confidence: None,
                request_id: None,
                raw_size: i64::try_from(size).unwrap_or(i64::MAX),
                attachments: json!([]),
                handled_by: None,
                handled_at: None,
                created_at: now,
            },
            None,
            None,
        )
        .await?;
        Ok(())
    }

    /// Each mailbox's cursor, for `rightsdesk intake status` and the console.
    pub async fn mailbox_states(&self) -> Result<Vec<MailboxState>, Error> {
        let mut out = Vec::new();
        for name in self.inner.mailboxes.keys() {
            let state = store::cursor(self.db().conn(), name).await?;
            out.push(MailboxState {
                name: name.clone(),
                uid_validity: state.as_ref().and_then(|s| s.uid_validity),
                last_uid: state.as_ref().map(|s| s.last_uid),
                failures: state.as_ref().map_or(0, |s| s.failures),
                next_poll_at: state.as_ref().map(|s| s.next_poll_at),
                last_error: state.and_then(|s| s.last_error),
            });
        }
        Ok(out)
    }
}

/// Where the poller stands in one mailbox.
#[derive(Debug, Clone, Serialize)]
pub struct MailboxState {
    pub name: String,
    pub uid_validity: Option<i64>,
    pub last_uid: Option<i64>,
    pub failures: i32,
    pub next_poll_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}
