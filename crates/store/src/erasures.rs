//! Erasures (SPEC §7, PIPL 47): one row per deletion or account-closure request and data
//! source, with where it stands, its outcome, what it did per table (names and row
//! counts only), the categories kept under a retention rule and until when, and when the
//! source's backups rotate.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, QueryOrder};

use crate::StoreError;

/// Where a source's erasure stands.
pub mod status {
    /// Waiting for a worker.
    pub const PENDING: &str = "pending";
    /// A worker is erasing.
    pub const RUNNING: &str = "running";
    /// Done: `outcome` says how.
    pub const DONE: &str = "done";
    /// Its owner is asked to erase and confirm (a `manual` source, or one rightsdesk
    /// cannot erase itself).
    pub const WAITING_OWNER: &str = "waiting_owner";
    /// The erasure failed (`error_code`, `error`); tried again while attempts remain.
    pub const FAILED: &str = "failed";
}

/// How a source's erasure ended.
pub mod outcome {
    /// The source held nothing about the subject.
    pub const NO_DATA: &str = "no_data";
    /// Deleted or anonymised everywhere in the source.
    pub const DELETED: &str = "deleted";
    /// Some categories kept under a retention rule, for storage and security only,
    /// until `restricted_until`; erased then.
    pub const RESTRICTED: &str = "restricted";
    /// Deleted live; the source's backups still hold it until `backup_until`.
    pub const BACKUP_PENDING: &str = "backup_pending";

    pub const ALL: &[&str] = &[NO_DATA, DELETED, RESTRICTED, BACKUP_PENDING];
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "erasures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    pub status: String,
    pub outcome: Option<String>,
    /// `[{table, category, outcome, rows}]`.
    pub tables: Json,
    /// `{category: {until, basis_zh, basis_en}}`: what is kept, and why.
    pub restricted: Json,
    /// The last day of the longest retention (local date), while it runs.
    pub restricted_until: Option<String>,
    /// When the kept categories were erased at the end of their retention.
    pub restriction_ended_at: Option<DateTime<Utc>>,
    /// The day the source's backups rotate (local date).
    pub backup_until: Option<String>,
    pub attempts: i32,
    pub error_code: Option<String>,
    pub error: Option<String>,
    /// The officer who confirmed an owner's erasure.
    pub confirmed_by: Option<Uuid>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Opens an erasure for each of `sources` (status `pending`), or puts an existing one
/// back to `pending` (a re-run).
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
            tables: serde_json::json!([]),
            restricted: serde_json::json!({}),
            restricted_until: None,
            restriction_ended_at: None,
            backup_until: None,
            attempts: 0,
            error_code: None,
            error: None,
            confirmed_by: None,
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

/// The erasures of a request, by source name.
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

/// Every erasure waiting for its source's owner.
pub async fn waiting_owner(conn: &impl ConnectionTrait) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::Status.eq(status::WAITING_OWNER))
        .order_by_asc(Column::UpdatedAt)
        .all(conn)
        .await?)
}

/// Restrictions whose retention ended on or before `today` (a local date) and that are
/// not erased yet.
pub async fn restrictions_ended(
    conn: &impl ConnectionTrait,
    today: &str,
) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::RestrictedUntil.lte(today))
        .filter(Column::RestrictionEndedAt.is_null())
        .order_by_asc(Column::RestrictedUntil)
        .all(conn)
        .await?)
}

/// Erasures whose source's backups still hold the data on `today` (a local date):
/// `backup_until` not passed. Optionally of one source; oldest first.
pub async fn in_backups(
    conn: &impl ConnectionTrait,
    today: &str,
    source: Option<&str>,
) -> Result<Vec<Model>, StoreError> {
    let mut q = Entity::find()
        .filter(Column::Status.eq(status::DONE))
        .filter(Column::BackupUntil.gte(today));
    if let Some(source) = source {
        q = q.filter(Column::Source.eq(source));
    }
    Ok(q.order_by_asc(Column::FinishedAt).all(conn).await?)
}

/// Writes an erasure's new state.
pub async fn save(conn: &impl ConnectionTrait, row: Model) -> Result<(), StoreError> {
    ActiveModel::from(row).reset_all().update(conn).await?;
    Ok(())
}
