//! Stored first answers for requests retried with an `Idempotency-Key`.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{Condition, ConnectionTrait};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// SHA-256 of the request body: the same key with another body is refused.
    pub fingerprint: String,
    pub response: Json,
    pub created_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub async fn find(
    conn: &impl ConnectionTrait,
    scope: &str,
    key: &str,
) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find_by_id((scope.to_owned(), key.to_owned()))
        .one(conn)
        .await?)
}

/// The stored records among `keys` (scope, key), in one query.
pub async fn find_many(
    conn: &impl ConnectionTrait,
    keys: &[(&str, &str)],
) -> Result<Vec<Model>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let any = keys.iter().fold(Condition::any(), |c, (scope, key)| {
        c.add(
            Condition::all()
                .add(Column::Scope.eq(*scope))
                .add(Column::Key.eq(*key)),
        )
    });
    Ok(Entity::find().filter(any).all(conn).await?)
}

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
