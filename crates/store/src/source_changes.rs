//! Source changes (SPEC §7): one row per request and data source for a change the
//! request makes in the company's systems — a consent withdrawal pushed to the sources
//! that use the purpose — with where it stands, its outcome and what it changed (names
//! and row counts only, never values).

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, QueryOrder};

use crate::StoreError;

/// Where a source's change stands.
pub mod status {
    /// Waiting for a worker.
    pub const PENDING: &str = "pending";
    /// A worker is at it.
    pub const RUNNING: &str = "running";
    /// Done: `outcome` says how.
    pub const DONE: &str = "done";
    /// Its owner is asked to make the change and an officer confirms it.
    pub const WAITING_OWNER: &str = "waiting_owner";
    /// It failed (`error_code`, `error`); tried again while attempts remain.
    pub const FAILED: &str = "failed";
}

/// How a source's change ended.
pub mod outcome {
    /// Changed in the source.
    pub const APPLIED: &str = "applied";
    /// The source held nothing of the subject's to change.
    pub const NO_DATA: &str = "no_data";

    pub const ALL: &[&str] = &[APPLIED, NO_DATA];
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "source_changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    pub status: String,
    pub outcome: Option<String>,
    /// What was changed: `[{purpose, table, rows}]`.
    pub changes: Json,
    pub attempts: i32,
    pub error_code: Option<String>,
    pub error: Option<String>,
    /// The officer who confirmed the owner's change.
    pub confirmed_by: Option<Uuid>,
    /// The officer's note with a confirmation.
    pub note: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Opens a change for each of `sources` (status `pending`), or puts an existing one back
/// to `pending` (a re-run).
pub async fn open(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
    sources: &[String],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if sources.is_empty() {
        return Ok(());
    }
    let rows = sources.iter().map(|source| {
        ActiveModel::from(Model {
            request_id,
            source: source.clone(),
            status: status::PENDING.to_owned(),
            outcome: None,
            changes: serde_json::json!([]),
            attempts: 0,
            error_code: None,
            error: None,
            confirmed_by: None,
            note: None,
            started_at: None,
            finished_at: None,
            updated_at: at,
        })
    });
    Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([Column::RequestId, Column::Source])
                .update_columns([Column::Status, Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The changes of a request, by source name.
pub async fn for_request(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::RequestId.eq(request_id))
        .order_by_asc(Column::Source)
        .all(conn)
        .await?)
}

pub async fn get(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
    source: &str,
) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find_by_id((request_id, source.to_owned()))
        .one(conn)
        .await?)
}

/// Every change waiting for its source's owner.
pub async fn waiting_owner(conn: &impl ConnectionTrait) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::Status.eq(status::WAITING_OWNER))
        .order_by_asc(Column::UpdatedAt)
        .all(conn)
        .await?)
}

/// Writes a change's new state.
pub async fn save(conn: &impl ConnectionTrait, row: Model) -> Result<(), StoreError> {
    ActiveModel::from(row).reset_all().update(conn).await?;
    Ok(())
}
