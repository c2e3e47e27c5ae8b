//! The `source_checks` table: every check of a data source (reached, its tables and
//! columns there, its service answering), appended; a source's last check is its latest
//! row.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "source_checks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub source: String,
    pub ok: bool,
    /// What was checked and found: `[{name, ok, detail}]`.
    pub items: Json,
    /// The officer who ran it.
    pub checked_by: Uuid,
    pub checked_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Records `rows` in one statement (nothing when empty).
pub async fn insert_many(conn: &impl ConnectionTrait, rows: Vec<Model>) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    Entity::insert_many(rows.into_iter().map(ActiveModel::from))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The last check of `source`, if it was ever checked.
pub async fn latest(
    conn: &impl ConnectionTrait,
    source: &str,
) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::Source.eq(source))
        .order_by_desc(Column::CheckedAt)
        .order_by_desc(Column::Id)
        .one(conn)
        .await?)
}
