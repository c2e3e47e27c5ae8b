//! Identity-verification challenges: a one-time code (kept only as an HMAC) sent to the
//! requester's email address or mobile number, also redeemable through a signed link.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ConnectionTrait, QueryOrder};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "verifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub request_id: Uuid,
    /// `email` or `sms`: where the code went.
    pub channel: String,
    /// HMAC-SHA256 of the code, hex.
    pub code_hash: String,
    /// `pending`, `used`, `burned` (too many wrong codes) or `superseded` (resent).
    pub status: String,
    /// Wrong codes entered so far.
    pub attempts: i32,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub const PENDING: &str = "pending";
pub const USED: &str = "used";
pub const BURNED: &str = "burned";
pub const SUPERSEDED: &str = "superseded";

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

/// The request's newest challenge.
pub async fn latest(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::RequestId.eq(request_id))
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .one(conn)
        .await?)
}

/// Moves a challenge from `pending` to `status` (recording `attempts` when given);
/// `Conflict` when it was no longer pending (another attempt got there first).
pub async fn settle(
    conn: &impl ConnectionTrait,
    id: Uuid,
    status: &str,
    attempts: Option<i32>,
    used_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let mut update = Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::UsedAt, Expr::value(used_at));
    if let Some(attempts) = attempts {
        update = update.col_expr(Column::Attempts, Expr::value(attempts));
    }
    let result = update
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(PENDING))
        .exec(conn)
        .await?;
    if result.rows_affected == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

/// Counts one more wrong code on a pending challenge.
pub async fn count_wrong(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(PENDING))
        .exec(conn)
        .await?;
    Ok(())
}

/// Every pending challenge of the request becomes `superseded` (a new code was sent).
pub async fn supersede_pending(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(SUPERSEDED))
        .filter(Column::RequestId.eq(request_id))
        .filter(Column::Status.eq(PENDING))
        .exec(conn)
        .await?;
    Ok(())
}
