//! Subjects: the people the company holds data about, known by their identifiers.
//! A request links to a subject once the requester's identity is verified.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{Condition, ConnectionTrait};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "subjects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The first subject known by any of the given identifiers.
pub async fn find_matching(
    conn: &impl ConnectionTrait,
    account_id: Option<&str>,
    email: Option<&str>,
    phone: Option<&str>,
) -> Result<Option<Model>, StoreError> {
    let mut any = Condition::any();
    let mut has = false;
    if let Some(a) = account_id {
        any = any.add(Column::AccountId.eq(a));
        has = true;
    }
    if let Some(e) = email {
        any = any.add(Column::Email.eq(e));
        has = true;
    }
    if let Some(p) = phone {
        any = any.add(Column::Phone.eq(p));
        has = true;
    }
    if !has {
        return Ok(None);
    }
    Ok(Entity::find().filter(any).one(conn).await?)
}

pub async fn insert(conn: &impl ConnectionTrait, row: Model) -> Result<(), StoreError> {
    Entity::insert(ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn get(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find_by_id(id).one(conn).await?)
}
