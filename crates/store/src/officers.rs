//! Officer accounts: the people who work the queue.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, PaginatorTrait, QueryOrder};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "officers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub password_hash: String,
    /// Comma-separated role names.
    pub roles: String,
    pub active: bool,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find_by_id(id).one(conn).await?)
}

pub async fn find_by_username(
    conn: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::Username.eq(username))
        .one(conn)
        .await?)
}

pub async fn count(conn: &impl ConnectionTrait) -> Result<u64, StoreError> {
    Ok(Entity::find().count(conn).await?)
}

pub async fn list(conn: &impl ConnectionTrait) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .order_by_asc(Column::Username)
        .all(conn)
        .await?)
}

/// Writes an account's changeable columns (name, email, password, roles, active, the
/// lockout) as `row` holds them.
pub async fn update(conn: &impl ConnectionTrait, row: &Model) -> Result<(), StoreError> {
    let mut q = Query::update();
    q.table(Entity)
        .value(Column::DisplayName, row.display_name.clone())
        .value(Column::Email, row.email.clone())
        .value(Column::PasswordHash, row.password_hash.clone())
        .value(Column::Roles, row.roles.clone())
        .value(Column::Active, row.active)
        .value(Column::FailedLogins, row.failed_logins)
        .value(Column::LockedUntil, row.locked_until)
        .value(Column::UpdatedAt, row.updated_at)
        .and_where(Column::Id.eq(row.id));
    conn.execute(&q).await?;
    Ok(())
}

/// Adds one failed login and returns the count now (the row stays locked by this
/// transaction until it ends, so concurrent failures are all counted).
pub async fn count_failed_login(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<i32, StoreError> {
    let mut q = Query::update();
    q.table(Entity)
        .value(Column::FailedLogins, Expr::col(Column::FailedLogins).add(1))
        .value(Column::UpdatedAt, now)
        .and_where(Column::Id.eq(id));
    conn.execute(&q).await?;
    Ok(find(conn, id).await?.map(|o| o.failed_logins).unwrap_or(0))
}

/// Records a login outcome: failures count up and may lock the account; a success
/// resets the count.
pub async fn record_login(
    conn: &impl ConnectionTrait,
    id: Uuid,
    failed_logins: i32,
    locked_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut q = Query::update();
    q.table(Entity)
        .value(Column::FailedLogins, failed_logins)
        .value(Column::LockedUntil, locked_until)
        .value(Column::UpdatedAt, now)
        .and_where(Column::Id.eq(id));
    conn.execute(&q).await?;
    Ok(())
}
