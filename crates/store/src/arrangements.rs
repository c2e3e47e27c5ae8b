//! Arrangements (生前安排, SPEC §2): one row per arrangement a subject made (or an
//! officer recorded from a document), appended and never updated. A subject's
//! arrangement is their latest row.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder};

use crate::StoreError;

/// How an arrangement reached rightsdesk.
pub mod via {
    /// The subject, logged in with the company's account.
    pub const ACCOUNT: &str = "account";
    /// An officer, from a document received in writing (`note` says which).
    pub const OFFICER: &str = "officer";
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "arrangements")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub subject_id: Uuid,
    /// `{legacy_contact, rights, delete_everything}` (`domain::arrangements::Arrangement`).
    pub arrangement: Json,
    pub recorded_via: String,
    /// The officer who entered it.
    pub recorded_by: Option<Uuid>,
    pub note: Option<String>,
    pub recorded_at: DateTime<Utc>,
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

/// A subject's arrangements, newest first.
pub async fn for_subject(
    conn: &impl ConnectionTrait,
    subject_id: Uuid,
) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::SubjectId.eq(subject_id))
        .order_by_desc(Column::RecordedAt)
        .order_by_desc(Column::Id)
        .all(conn)
        .await?)
}

/// A subject's arrangement as it stands: their latest.
pub async fn current(
    conn: &impl ConnectionTrait,
    subject_id: Uuid,
) -> Result<Option<Model>, StoreError> {
    Ok(for_subject(conn, subject_id).await?.into_iter().next())
}
