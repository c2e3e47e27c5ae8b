//! The consent ledger (SPEC §7): one row per change of a subject's consent to a purpose,
//! appended and never updated. A subject's consent to a purpose is the latest row by
//! `at` (then by id).

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder};

use crate::StoreError;

/// What a row says about the purpose.
pub mod state {
    pub const GIVEN: &str = "given";
    pub const WITHDRAWN: &str = "withdrawn";
    /// Still given, for less than before (`scope` says what remains).
    pub const NARROWED: &str = "narrowed";

    pub const ALL: &[&str] = &[GIVEN, WITHDRAWN, NARROWED];
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "consents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub subject_id: Uuid,
    pub purpose: String,
    pub state: String,
    /// What the consent covers (given) or still covers (narrowed), in the person's or
    /// the system's words.
    pub scope: Option<String>,
    /// How it was expressed: `rights_request` for a request's withdrawal, else what the
    /// recording system says (`web_form`, `sms_reply`, `paper`, …).
    pub method: String,
    /// The version of the text the person agreed to, when a system says.
    pub policy_version: Option<String>,
    /// The request that withdrew or narrowed it.
    pub request_id: Option<Uuid>,
    /// The account (officer or system) that recorded it.
    pub recorded_by: Option<Uuid>,
    /// When it took effect.
    pub at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub async fn insert(conn: &impl ConnectionTrait, rows: Vec<Model>) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    Entity::insert_many(rows.into_iter().map(ActiveModel::from))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// A subject's ledger, oldest first.
pub async fn history(
    conn: &impl ConnectionTrait,
    subject_id: Uuid,
) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::SubjectId.eq(subject_id))
        .order_by_asc(Column::At)
        .order_by_asc(Column::Id)
        .all(conn)
        .await?)
}

/// The ledger rows a request wrote.
pub async fn for_request(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::RequestId.eq(request_id))
        .order_by_asc(Column::Purpose)
        .all(conn)
        .await?)
}

/// Whether a request has written its rows already.
pub async fn recorded_by_request(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
) -> Result<bool, StoreError> {
    Ok(Entity::find()
        .filter(Column::RequestId.eq(request_id))
        .one(conn)
        .await?
        .is_some())
}
