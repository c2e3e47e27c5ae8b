//! Reminders and escalation (SPEC §4): before a due date, a reminder to the assignee at
//! each of `reminders.offsets_days`; after it, a daily overdue notice to the assignee and
//! every DPO. Unassigned requests go to `reminders.team_email`. Each notice is an outbox
//! row whose unique `dedupe_key` names the request, the kind of notice and the due date
//! (and the day, for overdue notices), so it is written once however many workers sweep,
//! and a moved due date makes new reminders due. The sweep reads only the requests due
//! on the days it looks at, for each date the rule packs are on (their time zones
//! differ) the requests of the packs on that date, each one index range
//! (`requests_open_pack_due`, or `requests_open_due` for the date that also holds the
//! unlisted packs); it inserts only the notices whose key is new. Each officer with an
//! address also gets a daily digest of their requests due within a week.

use chrono::{Days, NaiveDate};
use rightsdesk_domain::{Permission, State};
use rightsdesk_mail::Template;
use rightsdesk_store::{notifications, officers, requests};
use serde::Serialize;
use serde_json::json;

use crate::auth::parse_roles;
use crate::notifications::{Notice, Recipient, officer_notice};
use crate::{Error, Services};

/// Requests read per page.
const PAGE: u64 = 500;
/// Days ahead a digest looks, and the most requests it lists.
const DIGEST_DAYS: u64 = 7;
const DIGEST_ITEMS: u64 = 50;

/// What a sweep wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub reminders: u64,
    pub overdue: u64,
    pub digests: u64,
    /// Reminders to owners of `manual` sources that have not answered.
    pub owner_reminders: u64,
    /// Requests the sweep read (due on an offset day, or overdue).
    pub examined: u64,
}

impl Services {
    /// One sweep at the service's current date: the reminders and overdue notices that
    /// are due and not yet written.
    pub async fn sweep_deadlines(&self) -> Result<SweepReport, Error> {
        let now = self.now();
        // Each request's today is in its pack's time zone, and packs in different zones
        // can be on different dates: each date is read for the requests on it.
        let today_of = |row: &requests::Model| self.pack_of(row).local_date(now);
        let days = self.pack_dates(now).days();
        // The officers' day (digests) is the default pack's.
        let today = self.default_pack().local_date(now);
        let officers = officers::list(self.db().conn()).await?;
        let dpos: Vec<String> = officers
            .iter()
            .filter(|o| o.active && parse_roles(&o.roles).contains(&rightsdesk_domain::Role::Dpo))
            .filter_map(|o| o.email.clone())
            .collect();
        let mut report = SweepReport::default();
        for offset in self.config().reminders.offsets_days.clone() {
            let ahead = Days::new(u64::from(offset));
            for (date, packs) in &days {
                let Some(due) = date.checked_add_days(ahead) else {
                    continue;
                };
                let (examined, written) = self
                    .sweep(packs, Some(due), due, &officers, |row, to| {
                        if today_of(row).checked_add_days(ahead) == Some(row.due_date) {
                            vec![self.reminder(row, to, offset)]
                        } else {
                            Vec::new()
                        }
                    })
                    .await?;
                report.examined += examined;
                report.reminders += written;
            }
        }
        if self.config().reminders.overdue {
            for (date, packs) in &days {
                let Some(yesterday) = date.pred_opt() else {
                    continue;
                };
                let (examined, written) = self
                    .sweep(packs, None, yesterday, &officers, |row, to| {
                        let today = today_of(row);
                        if row.due_date >= today {
                            return Vec::new();
                        }
                        let mut to_all: Vec<Recipient> = to.into_iter().collect();
                        for dpo in &dpos {
                            if !to_all
                                .iter()
                                .any(|r| matches!(r, Recipient::Email(e) if e == dpo))
                            {
                                to_all.push(Recipient::Email(dpo.clone()));
                            }
                        }
                        to_all
                            .into_iter()
                            .map(|r| self.overdue_notice(row, Some(r), today))
                            .collect()
                    })
                    .await?;
                report.examined += examined;
                report.overdue += written;
            }
        }
        if self.config().reminders.digest {
            report.digests = self.digests(&officers, today, today_of).await?;
        }
        report.owner_reminders = self.remind_owners(today).await?;
        if report.reminders + report.overdue + report.digests + report.owner_reminders > 0 {
            metrics::counter!("rightsdesk_reminders_total", "kind" => "reminder")
                .increment(report.reminders);
            metrics::counter!("rightsdesk_reminders_total", "kind" => "overdue")
                .increment(report.overdue);
            metrics::counter!("rightsdesk_reminders_total", "kind" => "digest")
                .increment(report.digests);
            metrics::counter!("rightsdesk_reminders_total", "kind" => "owner")
                .increment(report.owner_reminders);
            tracing::info!(
                reminders = report.reminders,
                overdue = report.overdue,
                digests = report.digests,
                owner_reminders = report.owner_reminders,
                "deadline sweep"
            );
            self.outbox_written();
        }
        Ok(report)
    }

    /// One digest a day per active officer with an address and open requests due within
    /// a week (or overdue): what is due, oldest first. Returns how many were new.
    async fn digests(
        &self,
        officers: &[officers::Model],
        today: NaiveDate,
        today_of: impl Fn(&requests::Model) -> NaiveDate,
    ) -> Result<u64, Error> {
        let Some(until) = today.checked_add_days(Days::new(DIGEST_DAYS)) else {
            return Ok(0);
        };
        let now = self.now();
        let mut rows = Vec::new();
        for officer in officers.iter().filter(|o| o.active) {
            let Some(email) = &officer.email else {
                continue;
            };
            let due = requests::assigned_due_by(self.db().conn(), officer.id, until, DIGEST_ITEMS)
                .await?;
            if due.is_empty() {
                continue;
            }
            let items: Vec<_> = due
                .iter()
                .map(|r| {
                    json!({
                        "reference": r.reference,
                        "kind_label": rightsdesk_mail::labels::kind(&r.kind, crate::notifications::OFFICER_LANGUAGE),
                        "due_date": r.due_date.to_string(),
                        "days_left": (r.due_date - today_of(r)).num_days(),
                        "paused": r.state == State::AwaitingRequester.as_str(),
                    })
                })
                .collect();
            rows.extend(self.outbox_rows(
                [Notice {
                    template: Template::Digest,
                    to: Some(Recipient::Email(email.clone())),
                    language: crate::notifications::OFFICER_LANGUAGE.to_owned(),
                    request_id: None,
                    params: json!({
                        "officer_name": officer.display_name,
                        "date": today.to_string(),
                        "items": items,
                        "count": due.len(),
                    }),
                    secret: None,
                    dedupe_key: format!("digest:{}:{today}", officer.id),
                }],
                now,
            )?);
        }
        let tx = self.db().begin_write().await?;
        let written = notifications::insert_new(&*tx, rows).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Writes `notices(row, assignee-or-team)` for every running request under `packs`
    /// due in `[from, to]`; returns how many requests it read and how many rows were new.
    async fn sweep(
        &self,
        packs: &requests::PackFilter,
        from: Option<NaiveDate>,
        to: NaiveDate,
        officers: &[officers::Model],
        notices: impl Fn(&requests::Model, Option<Recipient>) -> Vec<Notice>,
    ) -> Result<(u64, u64), Error> {
        let mut written = 0;
        let mut examined = 0;
        let mut after = None;
        loop {
            let page = requests::running_due_between(
                self.db().conn(),
                packs,
                from,
                to,
                State::AwaitingRequester.as_str(),
                after,
                PAGE,
            )
            .await?;
            let Some(last) = page.last() else {
                return Ok((examined, written));
            };
            examined += page.len() as u64;
            after = Some((last.due_date, last.id));
            let now = self.now();
            let mut rows = Vec::new();
            for row in &page {
                rows.extend(self.outbox_rows(notices(row, self.responsible(row, officers)), now)?);
            }
            let tx = self.db().begin_write().await?;
            written += notifications::insert_new(&*tx, rows).await?;
            tx.commit().await?;
            if (page.len() as u64) < PAGE {
                return Ok((examined, written));
            }
        }
    }

    /// Who answers for `row`: its assignee, or the team address when it has none (or
    /// the assignee has no address or works no more).
    fn responsible(
        &self,
        row: &requests::Model,
        officers: &[officers::Model],
    ) -> Option<Recipient> {
        row.assignee_id
            .and_then(|id| officers.iter().find(|o| o.id == id))
            .filter(|o| {
                o.active
                    && rightsdesk_domain::roles::permits(
                        &parse_roles(&o.roles),
                        Permission::WorkRequests,
                    )
            })
            .and_then(|o| o.email.clone())
            .or_else(|| self.config().reminders.team_email.clone())
            .map(Recipient::Email)
    }

    fn reminder(&self, row: &requests::Model, to: Option<Recipient>, days: u32) -> Notice {
        officer_notice(
            row,
            self.pack_of(row),
            Template::DeadlineReminder,
            to,
            json!({ "days_left": days }),
            format!("reminder:{}:{days}:{}", row.id, row.due_date),
        )
    }

    fn overdue_notice(
        &self,
        row: &requests::Model,
        to: Option<Recipient>,
        today: NaiveDate,
    ) -> Notice {
        let whom = match &to {
            Some(Recipient::Email(e)) | Some(Recipient::Sms(e)) => e.clone(),
            None => String::new(),
        };
        let dedupe_key = format!(
            "overdue:{}:{}:{today}:{}",
            row.id,
            row.due_date,
            crate::auth::sha256_hex(whom.as_bytes())
        );
        officer_notice(
            row,
            self.pack_of(row),
            Template::Overdue,
            to,
            json!({ "days_overdue": (today - row.due_date).num_days() }),
            dedupe_key,
        )
    }
}
