//! Service secrets generated on first start and shared by every instance through the
//! database (token signing keys), unless the configuration provides them.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::entity::prelude::*;

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub value: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The stored secret `name`, or `candidate` stored as it. When several instances start
/// together, the first insert wins and every instance reads the same value.
pub async fn get_or_insert(
    conn: &impl ConnectionTrait,
    name: &str,
    candidate: String,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    Entity::insert(ActiveModel::from(Model {
        name: name.to_owned(),
        value: candidate,
        created_at: now,
    }))
    .on_conflict_do_nothing_on([Column::Name])
    .exec_without_returning(conn)
    .await?;
    Entity::find_by_id(name.to_owned())
        .one(conn)
        .await?
        .map(|m| m.value)
        .ok_or(StoreError::NotFound)
}

/// The versions of a rotatable key (`rightsdesk keys rotate`).
pub mod versions {
    use super::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "key_versions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        /// The key material, base64.
        pub value: String,
        pub created_at: DateTime<Utc>,
        /// From when this version signs and seals new data.
        pub active_from: DateTime<Utc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Every version of key `name`, oldest first.
pub async fn versions_of(
    conn: &impl ConnectionTrait,
    name: &str,
) -> Result<Vec<versions::Model>, StoreError> {
    use sea_orm::QueryOrder;
    Ok(versions::Entity::find()
        .filter(versions::Column::Name.eq(name))
        .order_by_asc(versions::Column::Version)
        .all(conn)
        .await?)
}

/// Stores `row` unless its version exists already (another instance stored it first);
/// true when this call stored it.
pub async fn insert_version(
    conn: &impl ConnectionTrait,
    row: versions::Model,
) -> Result<bool, StoreError> {
    let inserted = versions::Entity::insert(versions::ActiveModel::from(row))
        .on_conflict_do_nothing_on([versions::Column::Name, versions::Column::Version])
        .exec_without_returning(conn)
        .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0))
}
