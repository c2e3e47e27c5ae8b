//! The worker's job table. A job is a row with a unique `key`: periodic work has one row
//! per kind that is rescheduled after each run; one-off work is inserted once per key
//! (inserting it again changes nothing). Workers claim due rows under a lease (see
//! [`crate::leases`]), renew the lease while a job runs, and record the outcome. Every
//! outcome is written only by the worker that still holds the row, so a worker whose
//! lease ran out cannot overwrite the work of the one that took the row over.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The job kind's stable name.
    pub kind: String,
    /// At most one row per key: the kind for periodic work, the kind and its subject
    /// for one-off work.
    pub key: String,
    /// The job itself (its kind and values), as the worker reads it back.
    pub payload: Json,
    /// `pending` (due at `run_at`), `done` or `failed` (one-off work that ran out of
    /// attempts).
    pub status: String,
    pub run_at: DateTime<Utc>,
    /// Attempts since the last success.
    pub attempts: i32,
    pub max_attempts: i32,
    /// Periodic work: due again this many seconds after each run. One-off work: none.
    pub every_secs: Option<i64>,
    /// While set and in the future, `leased_by` is running the job.
    pub lease_until: Option<DateTime<Utc>>,
    pub leased_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub const PENDING: &str = "pending";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";

/// Inserts the rows whose key is new; returns how many.
pub async fn insert_new(conn: &impl ConnectionTrait, rows: Vec<Model>) -> Result<u64, StoreError> {
    let rows = rows.into_iter().map(ActiveModel::from).collect();
    crate::insert_new::<ActiveModel>(conn, rows, Column::Key).await
}

/// The periodic job `key` runs every `every_secs` from now on, and is due no later than
/// `by` (its interval may have been shortened in the configuration).
pub async fn set_interval(
    conn: &impl ConnectionTrait,
    key: &str,
    every_secs: i64,
    by: DateTime<Utc>,
) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::EverySecs, Expr::value(Some(every_secs)))
        .filter(Column::Key.eq(key))
        .filter(Column::EverySecs.ne(every_secs))
        .exec(conn)
        .await?;
    Entity::update_many()
        .col_expr(Column::RunAt, Expr::value(by))
        .filter(Column::Key.eq(key))
        .filter(Column::Status.eq(PENDING))
        .filter(Column::RunAt.gt(by))
        .filter(Column::LeaseUntil.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Claims up to `limit` due jobs for `worker` until `lease_until`.
pub async fn claim_due(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    worker: &str,
    limit: u64,
) -> Result<Vec<Model>, StoreError> {
    let statement = crate::leases::claim(
        conn.get_database_backend(),
        "jobs",
        "run_at",
        now,
        lease_until,
        worker,
        limit,
    );
    Ok(Entity::find().from_raw_sql(statement).all(conn).await?)
}

/// The update of job `id` if `worker` still holds it; returns whether it did.
async fn update_held(
    conn: &impl ConnectionTrait,
    id: Uuid,
    worker: &str,
    update: sea_orm::UpdateMany<Entity>,
) -> Result<bool, StoreError> {
    let result = update
        .filter(Column::Id.eq(id))
        .filter(Column::LeasedBy.eq(worker))
        .filter(Column::LeaseUntil.is_not_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// `worker` is still running job `id`: its lease runs until `lease_until`.
pub async fn renew_lease(
    conn: &impl ConnectionTrait,
    id: Uuid,
    worker: &str,
    lease_until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    update_held(
        conn,
        id,
        worker,
        Entity::update_many().col_expr(Column::LeaseUntil, Expr::value(Some(lease_until))),
    )
    .await
}

fn unleased(now: DateTime<Utc>) -> sea_orm::UpdateMany<Entity> {
    Entity::update_many()
        .col_expr(Column::LeaseUntil, Expr::value(None::<DateTime<Utc>>))
        .col_expr(Column::LeasedBy, Expr::value(None::<String>))
        .col_expr(Column::UpdatedAt, Expr::value(now))
}

/// One-off work done.
pub async fn mark_done(
    conn: &impl ConnectionTrait,
    id: Uuid,
    worker: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let update = unleased(now)
        .col_expr(Column::Status, Expr::value(DONE))
        .col_expr(Column::FinishedAt, Expr::value(Some(now)))
        .col_expr(Column::LastError, Expr::value(None::<String>));
    update_held(conn, id, worker, update).await
}

/// Periodic work done: due again at `run_at`, with its attempts counted afresh.
pub async fn reschedule(
    conn: &impl ConnectionTrait,
    id: Uuid,
    worker: &str,
    run_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let update = unleased(now)
        .col_expr(Column::RunAt, Expr::value(run_at))
        .col_expr(Column::Attempts, Expr::value(0))
        .col_expr(Column::LastError, Expr::value(None::<String>));
    update_held(conn, id, worker, update).await
}

/// A failed attempt: tried again at `run_at`.
pub async fn mark_retry(
    conn: &impl ConnectionTrait,
    id: Uuid,
    worker: &str,
    run_at: DateTime<Utc>,
    error: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let update = unleased(now)
        .col_expr(Column::RunAt, Expr::value(run_at))
        .col_expr(Column::LastError, Expr::value(Some(error.to_owned())));
    update_held(conn, id, worker, update).await
}

/// One-off work out of attempts (or that cannot run): never tried again.
pub async fn mark_failed(
    conn: &impl ConnectionTrait,
    id: Uuid,
    worker: &str,
    error: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let update = unleased(now)
        .col_expr(Column::Status, Expr::value(FAILED))
        .col_expr(Column::FinishedAt, Expr::value(Some(now)))
        .col_expr(Column::LastError, Expr::value(Some(error.to_owned())));
    update_held(conn, id, worker, update).await
}

/// A job its worker did not run to its end (a shutdown, or a kind this version does not
/// know): due again at `run_at`, and the interrupted attempt does not count.
pub async fn release(
    conn: &impl ConnectionTrait,
    id: Uuid,
    worker: &str,
    run_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let update = unleased(now)
        .col_expr(Column::RunAt, Expr::value(run_at))
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).sub(1));
    update_held(conn, id, worker, update).await
}

/// Deletes one-off jobs that finished (done or failed) before `before`; returns how many.
pub async fn delete_finished_before(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let result = Entity::delete_many()
        .filter(Column::Status.is_in([DONE, FAILED]))
        .filter(Column::FinishedAt.lt(before))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// Every job that is pending or failed, soonest first, at most `limit`.
pub async fn list_open(conn: &impl ConnectionTrait, limit: u64) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::Status.is_in([PENDING, FAILED]))
        .order_by_asc(Column::Status)
        .order_by_asc(Column::RunAt)
        .limit(limit)
        .all(conn)
        .await?)
}

pub async fn find_by_key(
    conn: &impl ConnectionTrait,
    key: &str,
) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find().filter(Column::Key.eq(key)).one(conn).await?)
}

/// Pending and failed counts, and the oldest due row no worker holds (through the
/// `(status, run_at)` index).
pub async fn backlog(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<crate::leases::Backlog, StoreError> {
    crate::leases::backlog::<Entity>(
        conn,
        (Column::Status, Column::RunAt, Column::LeaseUntil),
        now,
    )
    .await
}

/// Whether a worker other than `worker` holds, under a live lease, a job whose key starts
/// with `prefix` (another run of the same work going on elsewhere).
pub async fn held_by_others(
    conn: &impl ConnectionTrait,
    prefix: &str,
    worker: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    use sea_orm::PaginatorTrait;
    let held = Entity::find()
        .filter(Column::Key.starts_with(prefix))
        .filter(Column::Status.eq(PENDING))
        .filter(Column::LeaseUntil.gt(now))
        .filter(Column::LeasedBy.ne(worker))
        .count(conn)
        .await?;
    Ok(held > 0)
}
