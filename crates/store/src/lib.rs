//! rightsdesk's storage: sea-orm entities and queries on SQLite and PostgreSQL. Every
//! function takes `&impl ConnectionTrait`, so `core` decides what shares a transaction.

pub mod arrangements;
pub mod bundles;
pub mod collections;
pub mod comments;
pub mod consents;
pub mod db;
pub mod erasures;
pub mod events;
pub mod evidence;
pub mod filings;
pub mod history;
pub mod holidays;
pub mod idempotency;
pub mod intake;
pub mod jobs;
pub mod leases;
pub mod notifications;
pub mod officers;
pub mod reference_counters;
pub mod requests;
pub mod secrets;
pub mod source_changes;
pub mod source_checks;
pub mod subjects;
pub mod verifications;

pub use db::{Backend, DatabaseConfig, Db, WriteTx};
pub use sea_orm::prelude::Json;
pub use sea_orm::{ConnectionTrait, DbErr};

/// Inserts the `rows` whose `key` (a unique column) is new, in one statement, and
/// returns how many: work that several workers (or several passes) produce for the same
/// cause is written once.
pub(crate) async fn insert_new<A>(
    conn: &impl ConnectionTrait,
    rows: Vec<A>,
    key: <A::Entity as sea_orm::EntityTrait>::Column,
) -> Result<u64, StoreError>
where
    A: sea_orm::ActiveModelTrait + Send,
{
    if rows.is_empty() {
        return Ok(0);
    }
    let result = <A::Entity as sea_orm::EntityTrait>::insert_many(rows)
        .on_conflict_do_nothing_on([key])
        .exec_without_returning(conn)
        .await?;
    Ok(match result {
        sea_orm::TryInsertResult::Inserted(n) => n,
        _ => 0,
    })
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// The row changed since it was read; the caller may retry.
    #[error("concurrent modification")]
    Conflict,
    #[error("row not found")]
    NotFound,
    #[error("invalid database configuration: {0}")]
    Config(String),
}

impl StoreError {
    /// A unique constraint was violated (e.g. a reference or an idempotency key exists).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Db(e) => matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ),
            _ => false,
        }
    }
}
