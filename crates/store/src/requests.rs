//! The `requests` table: one row per rights request, with the requester's contact
//! details, the deadline, and the head of the request's event chain.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Query;
use sea_orm::{Condition, ConnectionTrait, QueryOrder, QuerySelect};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub reference: String,
    pub kind: String,
    pub state: String,
    pub is_open: bool,
    pub channel: String,
    pub language: String,
    pub requester_name: String,
    pub requester_email: Option<String>,
    pub requester_phone: Option<String>,
    /// `{capacity, name, email?, phone?, account_id?}` when a guardian or an agent filed.
    pub acting_for: Option<Json>,
    pub details: Json,
    pub subject_id: Option<Uuid>,
    pub assignee_id: Option<Uuid>,
    pub related_request_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
    pub clock_started_at: Option<DateTime<Utc>>,
    pub due_date: NaiveDate,
    pub time_zone: String,
    pub deadline_pack: String,
    pub deadline_pack_version: i32,
    pub token_hash: String,
    pub event_seq: i64,
    pub head_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Since when the deadline clock stands still (the request waits for its requester).
    pub paused_at: Option<DateTime<Utc>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub async fn insert(conn: &impl ConnectionTrait, row: Model) -> Result<(), StoreError> {
    Entity::insert(ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Inserts `rows` in one statement (nothing when empty).
pub async fn insert_many(conn: &impl ConnectionTrait, rows: Vec<Model>) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    Entity::insert_many(rows.into_iter().map(ActiveModel::from))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find_by_id(id).one(conn).await?)
}

/// The other requests of `subject` and `kind` received from `since` to `until`, newest
/// first (at most 20).
pub async fn of_subject_between(
    conn: &impl ConnectionTrait,
    subject: Uuid,
    kind: &str,
    except: Uuid,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::SubjectId.eq(subject))
        .filter(Column::Kind.eq(kind))
        .filter(Column::Id.ne(except))
        .filter(Column::ReceivedAt.gte(since))
        .filter(Column::ReceivedAt.lte(until))
        .order_by_desc(Column::ReceivedAt)
        .limit(20)
        .all(conn)
        .await?)
}

/// The open requests of `subject` and `kind` other than `except`, newest first.
pub async fn open_of_subject(
    conn: &impl ConnectionTrait,
    subject: Uuid,
    kind: &str,
    except: Uuid,
) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::SubjectId.eq(subject))
        .filter(Column::Kind.eq(kind))
        .filter(Column::Id.ne(except))
        .filter(Column::IsOpen.eq(true))
        .order_by_desc(Column::ReceivedAt)
        .limit(20)
        .all(conn)
        .await?)
}

/// Ids of requests in `state` received before `cutoff`, oldest first, at most `limit`.
pub async fn in_state_received_before(
    conn: &impl ConnectionTrait,
    state: &str,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Uuid>, StoreError> {
    Ok(Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::State.eq(state))
        .filter(Column::ReceivedAt.lt(cutoff))
        .order_by_asc(Column::ReceivedAt)
        .limit(limit)
        .into_tuple::<Uuid>()
        .all(conn)
        .await?)
}

pub async fn find_by_reference(
    conn: &impl ConnectionTrait,
    reference: &str,
) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::Reference.eq(reference))
        .one(conn)
        .await?)
}

/// A change to a request, applied only if nobody else changed it since it was read
/// (`expected_seq` is the event count then). Fields left `None` are not touched.
#[derive(Debug, Default)]
pub struct Change {
    pub state: Option<String>,
    pub is_open: Option<bool>,
    pub assignee_id: Option<Option<Uuid>>,
    pub subject_id: Option<Option<Uuid>>,
    pub due_date: Option<NaiveDate>,
    pub clock_started_at: Option<Option<DateTime<Utc>>>,
    pub closed_at: Option<Option<DateTime<Utc>>>,
    pub paused_at: Option<Option<DateTime<Utc>>>,
}

/// Applies `change` and moves the chain head to (`new_seq`, `new_hash`). Returns
/// `StoreError::Conflict` when the request changed since `expected_seq` was read.
pub async fn update(
    conn: &impl ConnectionTrait,
    id: Uuid,
    expected_seq: i64,
    change: Change,
    new_seq: i64,
    new_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut q = Query::update();
    q.table(Entity)
        .value(Column::EventSeq, new_seq)
        .value(Column::HeadHash, new_hash)
        .value(Column::UpdatedAt, now);
    if let Some(v) = change.state {
        q.value(Column::State, v);
    }
    if let Some(v) = change.is_open {
        q.value(Column::IsOpen, v);
    }
    if let Some(v) = change.assignee_id {
        q.value(Column::AssigneeId, v);
    }
    if let Some(v) = change.subject_id {
        q.value(Column::SubjectId, v);
    }
    if let Some(v) = change.due_date {
        q.value(Column::DueDate, v);
    }
    if let Some(v) = change.clock_started_at {
        q.value(Column::ClockStartedAt, v);
    }
    if let Some(v) = change.closed_at {
        q.value(Column::ClosedAt, v);
    }
    if let Some(v) = change.paused_at {
        q.value(Column::PausedAt, v);
    }
    q.and_where(Column::Id.eq(id))
        .and_where(Column::EventSeq.eq(expected_seq));
    let result = conn.execute(&q).await?;
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

/// The queue's filters; every one optional.
#[derive(Debug, Default, Clone)]
pub struct QueueFilter {
    pub states: Option<Vec<String>>,
    pub open: Option<bool>,
    pub kind: Option<String>,
    pub channel: Option<String>,
    pub pack: Option<String>,
    /// `Some(None)`: unassigned requests.
    pub assignee: Option<Option<Uuid>>,
    /// Due strictly before today (overdue), or today or later (not overdue), where
    /// today is each request's own, in its pack's time zone.
    pub due_before: Option<PackDates>,
    pub due_on_or_after: Option<PackDates>,
    /// With `due_before`: leave out this state (its clock stands still); with
    /// `due_on_or_after`: let this state in whatever its date.
    pub paused_state: Option<String>,
    pub reference: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Today's date for requests under each rule pack (packs in different time zones can
/// be on different dates): the pack names grouped by their date, and the date of
/// requests under a pack not listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackDates {
    pub groups: Vec<(NaiveDate, Vec<String>)>,
    pub others: NaiveDate,
}

impl PackDates {
    /// The same packs, `days` later (the dashboard's "due this week").
    pub fn plus_days(&self, days: i64) -> Self {
        let shift = |d: NaiveDate| d + chrono::Days::new(days.max(0) as u64);
        Self {
            groups: self
                .groups
                .iter()
                .map(|(d, names)| (shift(*d), names.clone()))
                .collect(),
            others: shift(self.others),
        }
    }

    /// The earliest and the latest of the dates.
    fn bounds(&self) -> (NaiveDate, NaiveDate) {
        let dates = self.groups.iter().map(|(d, _)| *d).chain([self.others]);
        let min = dates.clone().min().unwrap_or(self.others);
        let max = dates.max().unwrap_or(self.others);
        (min, max)
    }

    /// One entry per distinct date: the date, and which requests are on it (by their
    /// pack). Together they cover every request once; the date shared with requests
    /// under an unlisted pack excludes the packs of the other dates, the others name
    /// their packs, so each is one index range (see the `requests_open_pack_due` and
    /// `requests_open_due` indexes).
    pub fn days(&self) -> Vec<(NaiveDate, PackFilter)> {
        let listed: Vec<String> = self
            .groups
            .iter()
            .flat_map(|(_, names)| names.iter().cloned())
            .collect();
        let mut days = Vec::new();
        let mut others_placed = false;
        for (date, names) in &self.groups {
            if *date == self.others && !others_placed {
                others_placed = true;
                let elsewhere = listed
                    .iter()
                    .filter(|n| !names.contains(n))
                    .cloned()
                    .collect();
                days.push((*date, PackFilter::NotIn(elsewhere)));
            } else {
                days.push((*date, PackFilter::In(names.clone())));
            }
        }
        if !others_placed {
            days.push((self.others, PackFilter::NotIn(listed)));
        }
        days
    }

    /// `due_date < today` (`before`) or `due_date >= today` of each row's pack. The
    /// first term is a plain range on `due_date`, for the index; when every pack is on
    /// one date it is the whole condition.
    fn condition(&self, before: bool) -> Condition {
        let (min, max) = self.bounds();
        let cmp = |d: NaiveDate| {
            if before {
                Column::DueDate.lt(d)
            } else {
                Column::DueDate.gte(d)
            }
        };
        let range = if before { cmp(max) } else { cmp(min) };
        if min == max {
            return Condition::all().add(range);
        }
        let per_pack = self
            .days()
            .into_iter()
            .fold(Condition::any(), |any, (date, packs)| {
                any.add(packs.condition().add(cmp(date)))
            });
        Condition::all().add(range).add(per_pack)
    }
}

/// Which requests, by the name of their rule pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackFilter {
    In(Vec<String>),
    /// Every pack but these (all of them when empty).
    NotIn(Vec<String>),
}

impl PackFilter {
    fn condition(&self) -> Condition {
        match self {
            PackFilter::In(names) => {
                Condition::all().add(Column::DeadlinePack.is_in(names.clone()))
            }
            PackFilter::NotIn(names) if names.is_empty() => Condition::all(),
            PackFilter::NotIn(names) => {
                Condition::all().add(Column::DeadlinePack.is_not_in(names.clone()))
            }
        }
    }
}

/// Open requests under `packs` whose clock runs (started, not paused) and whose due
/// date is in `[from, to]` (no lower bound when `from` is `None`), after `after` (due
/// date, id), oldest first: the deadline sweep's page.
pub async fn running_due_between(
    conn: &impl ConnectionTrait,
    packs: &PackFilter,
    from: Option<NaiveDate>,
    to: NaiveDate,
    paused_state: &str,
    after: Option<(NaiveDate, Uuid)>,
    limit: u64,
) -> Result<Vec<Model>, StoreError> {
    let mut cond = Condition::all()
        .add(Column::IsOpen.eq(true))
        .add(packs.condition())
        .add(Column::DueDate.lte(to))
        .add(Column::State.ne(paused_state))
        .add(Column::ClockStartedAt.is_not_null());
    if let Some(from) = from {
        cond = cond.add(Column::DueDate.gte(from));
    }
    if let Some((date, id)) = after {
        cond = cond.add(Column::DueDate.gte(date)).add(
            Condition::any()
                .add(Column::DueDate.gt(date))
                .add(Column::Id.gt(id)),
        );
    }
    Ok(Entity::find()
        .filter(cond)
        .order_by_asc(Column::DueDate)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Officer `assignee`'s open requests due on or before `until`, oldest first, at most
/// `limit` (for the daily digest).
pub async fn assigned_due_by(
    conn: &impl ConnectionTrait,
    assignee: Uuid,
    until: NaiveDate,
    limit: u64,
) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::AssigneeId.eq(assignee))
        .filter(Column::IsOpen.eq(true))
        .filter(Column::DueDate.lte(until))
        .order_by_asc(Column::DueDate)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(conn)
        .await?)
}

/// A position in the queue: the last row of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub due_date: NaiveDate,
    pub id: Uuid,
}

/// The condition of `filter`'s rows.
fn condition(filter: &QueueFilter) -> Condition {
    let mut cond = Condition::all();
    if let Some(states) = &filter.states {
        cond = cond.add(Column::State.is_in(states.clone()));
    }
    if let Some(open) = filter.open {
        cond = cond.add(Column::IsOpen.eq(open));
    }
    if let Some(kind) = &filter.kind {
        cond = cond.add(Column::Kind.eq(kind.clone()));
    }
    if let Some(channel) = &filter.channel {
        cond = cond.add(Column::Channel.eq(channel.clone()));
    }
    if let Some(pack) = &filter.pack {
        cond = cond.add(Column::DeadlinePack.eq(pack.clone()));
    }
    match filter.assignee {
        Some(Some(id)) => cond = cond.add(Column::AssigneeId.eq(id)),
        Some(None) => cond = cond.add(Column::AssigneeId.is_null()),
        None => {}
    }
    if let Some(d) = &filter.due_before {
        cond = cond.add(d.condition(true));
        if let Some(s) = &filter.paused_state {
            cond = cond.add(Column::State.ne(s.clone()));
        }
    }
    if let Some(d) = &filter.due_on_or_after {
        let mut due = Condition::any().add(d.condition(false));
        if let Some(s) = &filter.paused_state {
            due = due.add(Column::State.eq(s.clone()));
        }
        cond = cond.add(due);
    }
    if let Some(r) = &filter.reference {
        cond = cond.add(Column::Reference.eq(r.clone()));
    }
    if let Some(e) = &filter.email {
        cond = cond.add(Column::RequesterEmail.eq(e.clone()));
    }
    if let Some(p) = &filter.phone {
        cond = cond.add(Column::RequesterPhone.eq(p.clone()));
    }
    cond
}

/// How many requests `filter` selects (the dashboard's open, due and overdue counts).
pub async fn count(conn: &impl ConnectionTrait, filter: &QueueFilter) -> Result<u64, StoreError> {
    Ok(Entity::find().filter(condition(filter)).count(conn).await?)
}

/// A request closed in the dashboard's window: what its on-time rate, time to close and
/// refusal reasons are measured from.
#[derive(Debug, Clone, sea_orm::FromQueryResult)]
pub struct ClosedRow {
    pub id: Uuid,
    pub state: String,
    pub received_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub due_date: NaiveDate,
    pub time_zone: String,
}

/// The requests closed at or after `since` (by the `requests_closed` index).
pub async fn closed_since(
    conn: &impl ConnectionTrait,
    since: DateTime<Utc>,
) -> Result<Vec<ClosedRow>, StoreError> {
    Ok(Entity::find()
        .select_only()
        .columns([
            Column::Id,
            Column::State,
            Column::ReceivedAt,
            Column::ClosedAt,
            Column::DueDate,
            Column::TimeZone,
        ])
        .filter(Column::ClosedAt.gte(since))
        .into_model::<ClosedRow>()
        .all(conn)
        .await?)
}

/// The requests received at or after `since`, counted by kind and channel:
/// `(kind, channel, count)` (by the `requests_received` index).
pub async fn received_since_by_kind_and_channel(
    conn: &impl ConnectionTrait,
    since: DateTime<Utc>,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    Ok(Entity::find()
        .select_only()
        .column(Column::Kind)
        .column(Column::Channel)
        .column_as(Column::Id.count(), "n")
        .filter(Column::ReceivedAt.gte(since))
        .group_by(Column::Kind)
        .group_by(Column::Channel)
        .into_tuple::<(String, String, i64)>()
        .all(conn)
        .await?)
}

/// One page of the queue, ordered by due date (oldest first), then id. Reads one row
/// more than `limit` to know whether another page follows.
pub async fn queue(
    conn: &impl ConnectionTrait,
    filter: &QueueFilter,
    after: Option<Cursor>,
    limit: u64,
) -> Result<(Vec<Model>, Option<Cursor>), StoreError> {
    let mut cond = condition(filter);
    if let Some(c) = after {
        // Written so that the first term bounds an index range scan.
        cond = cond.add(Column::DueDate.gte(c.due_date)).add(
            Condition::any()
                .add(Column::DueDate.gt(c.due_date))
                .add(Column::Id.gt(c.id)),
        );
    }
    let mut rows = Entity::find()
        .filter(cond)
        .order_by_asc(Column::DueDate)
        .order_by_asc(Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let next = if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| Cursor {
            due_date: r.due_date,
            id: r.id,
        })
    } else {
        None
    };
    Ok((rows, next))
}

/// Every request id, in a stable order (for audit verification).
pub async fn ids_after(
    conn: &impl ConnectionTrait,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Model>, StoreError> {
    let mut find = Entity::find().order_by_asc(Column::Id).limit(limit);
    if let Some(a) = after {
        find = find.filter(Column::Id.gt(a));
    }
    Ok(find.all(conn).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).expect("a date")
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn one_date_for_every_pack_is_one_day_without_a_pack_filter() {
        let dates = PackDates {
            groups: vec![(date(2), names(&["pipl", "gdpr", "ccpa"]))],
            others: date(2),
        };
        assert_eq!(dates.days(), vec![(date(2), PackFilter::NotIn(vec![]))]);
    }

    #[test]
    fn the_unlisted_packs_share_the_day_of_their_date() {
        let dates = PackDates {
            groups: vec![
                (date(2), names(&["pipl", "gdpr"])),
                (date(1), names(&["ccpa"])),
            ],
            others: date(2),
        };
        assert_eq!(
            dates.days(),
            vec![
                (date(2), PackFilter::NotIn(names(&["ccpa"]))),
                (date(1), PackFilter::In(names(&["ccpa"]))),
            ]
        );
        // On a date of no listed pack, they get a day of their own.
        let dates = PackDates {
            groups: vec![(date(1), names(&["ccpa"]))],
            others: date(2),
        };
        assert_eq!(
            dates.days(),
            vec![
                (date(1), PackFilter::In(names(&["ccpa"]))),
                (date(2), PackFilter::NotIn(names(&["ccpa"]))),
            ]
        );
    }
}
