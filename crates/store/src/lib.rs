//! rightsdesk's storage: sea-orm entities and queries on SQLite and PostgreSQL. Every
//! function takes `&impl ConnectionTrait`, so `core` decides what shares a transaction.

pub mod comments;
pub mod db;
pub mod events;
pub mod evidence;
pub mod filings;
pub mod holidays;
pub mod idempotency;
pub mod jobs;
mod leases;
pub mod notifications;
pub mod officers;
pub mod reference_counters;
pub mod requests;
pub mod secrets;
pub mod subjects;
pub mod verifications;

pub use db::{Backend, DatabaseConfig, Db, WriteTx};
pub use sea_orm::prelude::Json;
pub use sea_orm::{ConnectionTrait, DbErr};

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
