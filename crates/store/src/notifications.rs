//! The outbox: every notification is a row written in the same transaction as the change
//! that causes it; a sender claims due rows, delivers them, and marks each one.

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, DbBackend, QueryOrder, Statement};

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
///
/// The deadline sweep calls this every minute with the same few thousand notices, nearly
/// all of them written already, so it first asks which keys exist (one statement whose
/// text does not depend on the row count, so each connection prepares it once) and
/// inserts only the others, nothing when none is new. The insert still skips a key that
/// another worker wrote in between. On PostgreSQL the rows travel as one `jsonb`
/// parameter of a fixed statement rather than as 17 parameters per row, which PostgreSQL
/// would parse and plan again for every row count (see docs/performance.md, "The
/// deadline sweep").
pub async fn insert_new(conn: &impl ConnectionTrait, rows: Vec<Model>) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let existing = existing_keys(conn, rows.iter().map(|r| r.dedupe_key.as_str())).await?;
    let rows: Vec<Model> = rows
        .into_iter()
        .filter(|r| !existing.contains(&r.dedupe_key))
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    match conn.get_database_backend() {
        DbBackend::Postgres => insert_new_postgres(conn, &rows).await,
        _ => {
            let rows = rows.into_iter().map(ActiveModel::from).collect();
            crate::insert_new::<ActiveModel>(conn, rows, Column::DedupeKey).await
        }
    }
}

/// Which of `keys` are taken.
async fn existing_keys<'a>(
    conn: &impl ConnectionTrait,
    keys: impl Iterator<Item = &'a str>,
) -> Result<HashSet<String>, StoreError> {
    let keys = serde_json::Value::from(keys.collect::<Vec<_>>());
    let sql = match conn.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT dedupe_key FROM notifications \
             WHERE dedupe_key IN (SELECT jsonb_array_elements_text($1::jsonb))"
        }
        _ => {
            "SELECT dedupe_key FROM notifications WHERE dedupe_key IN (SELECT value FROM json_each(?))"
        }
    };
    let found = conn
        .query_all_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            sql,
            [keys.into()],
        ))
        .await?;
    found
        .iter()
        .map(|row| Ok(row.try_get::<String>("", "dedupe_key")?))
        .collect()
}

/// `INSERT … SELECT … FROM jsonb_to_recordset($1) ON CONFLICT (dedupe_key) DO NOTHING`.
async fn insert_new_postgres(
    conn: &impl ConnectionTrait,
    rows: &[Model],
) -> Result<u64, StoreError> {
    const SQL: &str = "INSERT INTO notifications (id, request_id, channel, recipient, language, \
        template, params, sealed, dedupe_key, status, attempts, next_attempt_at, lease_until, \
        leased_by, last_error, sent_at, created_at) \
        SELECT id, request_id, channel, recipient, language, template, params, sealed, \
        dedupe_key, status, attempts, next_attempt_at, lease_until, leased_by, last_error, \
        sent_at, created_at \
        FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, request_id uuid, channel text, \
        recipient text, language text, template text, params jsonb, sealed text, \
        dedupe_key text, status text, attempts integer, next_attempt_at timestamptz, \
        lease_until timestamptz, leased_by text, last_error text, sent_at timestamptz, \
        created_at timestamptz) \
        ON CONFLICT (dedupe_key) DO NOTHING";
    // Microseconds, truncated, as sqlx binds a timestamp.
    let ts = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "request_id": r.request_id,
                "channel": r.channel,
                "recipient": r.recipient,
                "language": r.language,
                "template": r.template,
                "params": r.params,
                "sealed": r.sealed,
                "dedupe_key": r.dedupe_key,
                "status": r.status,
                "attempts": r.attempts,
                "next_attempt_at": ts(&r.next_attempt_at),
                "lease_until": r.lease_until.as_ref().map(ts),
                "leased_by": r.leased_by,
                "last_error": r.last_error,
                "sent_at": r.sent_at.as_ref().map(ts),
                "created_at": ts(&r.created_at),
            })
        })
        .collect();
    let result = conn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            SQL,
            [serde_json::Value::from(rows).into()],
        ))
        .await?;
    Ok(result.rows_affected())
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

/// Extends to `lease_until` the leases `worker` still holds on `ids` (a batch being
/// sent); returns how many it still held.
pub async fn renew_leases(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
    worker: &str,
    lease_until: DateTime<Utc>,
) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let result = Entity::update_many()
        .col_expr(Column::LeaseUntil, Expr::value(Some(lease_until)))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .filter(Column::LeasedBy.eq(worker))
        .filter(Column::Status.eq(PENDING))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
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

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find_by_id(id).one(conn).await?)
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

/// Pending and failed counts, and the oldest due row no worker holds (through the
/// `(status, next_attempt_at)` index).
pub async fn backlog(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<crate::leases::Backlog, StoreError> {
    crate::leases::backlog::<Entity>(
        conn,
        (Column::Status, Column::NextAttemptAt, Column::LeaseUntil),
        now,
    )
    .await
}
