//! The outbox: every notification is a row written in the same transaction as the change
//! that causes it; a sender claims due rows, delivers them, and marks each one.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, QueryOrder};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub request_id: Option<Uuid>,
    /// `email` or `sms`.
    pub channel: String,
    pub recipient: String,
    pub language: String,
    pub template: String,
    /// The template's values, except secrets.
    pub params: Json,
    /// Secrets the message carries (a verification code, a link), encrypted; erased once
    /// the message is sent or has failed for good.
    pub sealed: Option<String>,
    /// At most one notification per key, however often the cause is retried.
    pub dedupe_key: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    /// While set and in the future, a sender is delivering this row.
    pub lease_until: Option<DateTime<Utc>>,
    /// The worker that claimed the row last.
    pub leased_by: Option<String>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub const PENDING: &str = "pending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";

/// Inserts the rows whose `dedupe_key` is new, and returns how many: a notice that
/// several workers (or several passes) produce for the same cause is written once.
pub async fn insert_new(conn: &impl ConnectionTrait, rows: Vec<Model>) -> Result<u64, StoreError> {
    let rows = rows.into_iter().map(ActiveModel::from).collect();
    crate::insert_new::<ActiveModel>(conn, rows, Column::DedupeKey).await
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

/// Claims up to `limit` pending rows that are due and not leased by another sender for
/// `worker`: each gets a lease until `lease_until` and one more attempt (see [`crate::leases`]).
pub async fn claim_due(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    worker: &str,
    limit: u64,
) -> Result<Vec<Model>, StoreError> {
    let statement = crate::leases::claim(
        conn.get_database_backend(),
        "notifications",
        "next_attempt_at",
        now,
        lease_until,
        worker,
        limit,
    );
    Ok(Entity::find().from_raw_sql(statement).all(conn).await?)
}

/// Delivered: the secrets are erased. One statement for all of `ids`.
pub async fn mark_sent(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(SENT))
        .col_expr(Column::SentAt, Expr::value(Some(now)))
        .col_expr(Column::LeaseUntil, Expr::value(None::<DateTime<Utc>>))
        .col_expr(Column::Sealed, Expr::value(None::<String>))
        .col_expr(Column::LastError, Expr::value(None::<String>))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .exec(conn)
        .await?;
    Ok(())
}

/// A temporary failure: tried again at `next_attempt_at`.
pub async fn mark_retry(
    conn: &impl ConnectionTrait,
    id: Uuid,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::NextAttemptAt, Expr::value(next_attempt_at))
        .col_expr(Column::LeaseUntil, Expr::value(None::<DateTime<Utc>>))
        .col_expr(Column::LastError, Expr::value(Some(error.to_owned())))
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// A permanent failure, or too many attempts: never tried again; officers see it.
pub async fn mark_failed(
    conn: &impl ConnectionTrait,
    id: Uuid,
    error: &str,
) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(FAILED))
        .col_expr(Column::LeaseUntil, Expr::value(None::<DateTime<Utc>>))
        .col_expr(Column::Sealed, Expr::value(None::<String>))
        .col_expr(Column::LastError, Expr::value(Some(error.to_owned())))
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn for_request(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::RequestId.eq(request_id))
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Id)
        .all(conn)
        .await?)
}
