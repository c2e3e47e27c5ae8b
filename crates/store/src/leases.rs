//! Claiming due rows under a lease, for the two queues the worker drains (`jobs` and the
//! `notifications` outbox). A claim sets `lease_until` and `leased_by` and counts one more
//! attempt; a row whose lease ran out (its worker crashed) is due again. On PostgreSQL
//! concurrent workers skip each other's rows (`FOR UPDATE SKIP LOCKED`); on SQLite the
//! caller claims inside a write transaction, which holds the database's one write lock.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};

use crate::StoreError;

/// The statement that claims up to `limit` rows of `table` whose `status` is `pending`,
/// whose `due_column` is at or before `now`, and whose lease is free; it returns them.
pub(crate) fn claim(
    backend: DbBackend,
    table: &str,
    due_column: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    worker: &str,
    limit: u64,
) -> Statement {
    let (p, lock) = match backend {
        DbBackend::Postgres => (["$1", "$2", "$3", "$4", "$5"], " FOR UPDATE SKIP LOCKED"),
        _ => (["?", "?", "?", "?", "?"], ""),
    };
    let sql = format!(
        "UPDATE {table} SET lease_until = {lease}, leased_by = {worker}, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM {table} \
           WHERE status = 'pending' AND {due_column} <= {now} \
             AND (lease_until IS NULL OR lease_until <= {now2}) \
           ORDER BY {due_column} LIMIT {limit}{lock}) \
         RETURNING *",
        lease = p[0],
        worker = p[1],
        now = p[2],
        now2 = p[3],
        limit = p[4],
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Statement::from_sql_and_values(
        backend,
        sql,
        [
            lease_until.into(),
            worker.into(),
            now.into(),
            now.into(),
            limit.into(),
        ],
    )
}

/// How one of the worker's queues stands, for monitoring: rows still to do, rows given
/// up on, and when the longest-waiting due row that no worker holds became due.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub pending: u64,
    pub failed: u64,
    /// The due time of the oldest pending row that is due at `now` and not under a live
    /// lease: work waiting for a worker. `None` when nothing waits.
    pub oldest_waiting: Option<DateTime<Utc>>,
}

/// The [`Backlog`] of a queue table `E`, given its `(status, due, lease_until)` columns.
pub(crate) async fn backlog<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    (status, due, lease_until): (E::Column, E::Column, E::Column),
    now: DateTime<Utc>,
) -> Result<Backlog, StoreError>
where
    E::Model: Sync,
{
    let pending = E::find().filter(status.eq("pending")).count(conn).await?;
    let failed = E::find().filter(status.eq("failed")).count(conn).await?;
    let oldest_waiting = E::find()
        .select_only()
        .column(due)
        .filter(status.eq("pending"))
        .filter(due.lte(now))
        .filter(
            Condition::any()
                .add(lease_until.is_null())
                .add(lease_until.lte(now)),
        )
        .order_by_asc(due)
        .into_tuple::<DateTime<Utc>>()
        .one(conn)
        .await?;
    Ok(Backlog {
        pending,
        failed,
        oldest_waiting,
    })
}
