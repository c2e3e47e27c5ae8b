//! Fulfilment's look-ups (SPEC §7): one row per request and data source, with where it
//! stands, how often it was tried, what it found per category (counts only) and why it
//! last failed.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, QueryOrder};

use crate::StoreError;

/// Where a source's look-up stands.
pub mod status {
    /// Waiting for a worker.
    pub const PENDING: &str = "pending";
    /// A worker is looking.
    pub const RUNNING: &str = "running";
    /// The source holds data about the subject (`records` says how much).
    pub const ANSWERED: &str = "answered";
    /// The source holds nothing about the subject.
    pub const NO_DATA: &str = "no_data";
    /// A `manual` source: its owner is asked.
    pub const WAITING_OWNER: &str = "waiting_owner";
    /// The look-up failed (`error_code`, `error`); tried again while attempts remain.
    pub const FAILED: &str = "failed";

    /// Whether the source has answered (the request may complete).
    pub fn is_answered(status: &str) -> bool {
        status == ANSWERED || status == NO_DATA
    }
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "collections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    pub status: String,
    pub attempts: i32,
    /// `{category: count}`.
    pub records: Json,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// A `manual` source: where its owner's answer is stored (sealed), when it holds
    /// records.
    pub answer_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Opens a look-up for each of `sources` (status `pending`), or puts an existing one
/// back to `pending` (a re-run): nothing else of it changes until it runs.
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
            attempts: 0,
            records: serde_json::json!({}),
            error_code: None,
            error: None,
            started_at: None,
            finished_at: None,
            updated_at: at,
            answer_key: None,
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

/// The look-ups of a request, by source name.
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

/// Every look-up waiting for its source's owner (few at any time: manual sources only).
pub async fn waiting_owner(conn: &impl ConnectionTrait) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::Status.eq(status::WAITING_OWNER))
        .order_by_asc(Column::UpdatedAt)
        .all(conn)
        .await?)
}

/// Writes a look-up's new state.
pub async fn save(conn: &impl ConnectionTrait, row: Model) -> Result<(), StoreError> {
    ActiveModel::from(row).reset_all().update(conn).await?;
    Ok(())
}
