//! Connecting to the database chosen by its URL, running migrations, and opening write
//! transactions.
//!
//! SQLite is the embedded default: one file, WAL, a busy timeout. SQLite has one write
//! lock per file and ignores row locks, so writes in this process are serialised by an
//! async mutex and begin `IMMEDIATE` (a second process waits on the busy timeout instead
//! of failing half-way). PostgreSQL takes concurrent writers; each use-case guards the
//! rows it changes (see `requests::update`).

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::StoreError;

/// Database settings (`[database]` in the configuration file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://rightsdesk.db` (a file in the working directory, created when missing)
    /// or `postgres://user:password@host:5432/dbname`.
    pub url: String,
    /// Connections in the pool. SQLite: readers (writes are serialised anyway).
    pub max_connections: u32,
    /// How long to wait for a connection from the pool, in milliseconds.
    pub acquire_timeout_ms: u64,
    /// SQLite: how long a writer waits for another process's write lock, in milliseconds.
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://rightsdesk.db".to_owned(),
            max_connections: 8,
            acquire_timeout_ms: 5_000,
            busy_timeout_ms: 5_000,
        }
    }
}

impl DatabaseConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("sqlite:")
            || self.url.starts_with("postgres://")
            || self.url.starts_with("postgresql://"))
        {
            return Err("database.url must start with sqlite: or postgres://".to_owned());
        }
        if self.max_connections == 0 || self.max_connections > 1_000 {
            return Err("database.max_connections must be between 1 and 1000".to_owned());
        }
        if self.acquire_timeout_ms == 0 || self.busy_timeout_ms == 0 {
            return Err(
                "database.acquire_timeout_ms and database.busy_timeout_ms must be above 0"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool and, on SQLite, the process-wide write lock.
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    backend: Backend,
    write_lock: Option<Arc<Mutex<()>>>,
}

/// A write transaction. Dropping it without `commit` rolls back.
pub struct WriteTx {
    tx: DatabaseTransaction,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(StoreError::from)
    }

    pub fn conn(&self) -> &DatabaseTransaction {
        &self.tx
    }
}

impl std::ops::Deref for WriteTx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl Db {
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StoreError> {
        config.validate().map_err(StoreError::Config)?;
        // sqlx knows both spellings; sea-orm recognises only `postgres://`.
        let url = match config.url.strip_prefix("postgresql://") {
            Some(rest) => format!("postgres://{rest}"),
            None => config.url.clone(),
        };
        let mut opts = ConnectOptions::new(url);
        opts.max_connections(config.max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
            .test_before_acquire(false)
            .sqlx_logging(false);
        let backend = if config.url.starts_with("sqlite:") {
            let busy = Duration::from_millis(config.busy_timeout_ms);
            opts.map_sqlx_sqlite_opts(move |o: SqliteConnectOptions| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(busy)
                    .foreign_keys(true)
            });
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let conn = Database::connect(opts).await?;
        Ok(Self {
            conn,
            backend,
            write_lock: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for reads outside a transaction.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend == Backend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        let tx = self.conn.begin_with_options(options).await?;
        Ok(WriteTx { tx, _guard: guard })
    }

    /// Brings the schema up to date. Several processes starting together on one
    /// PostgreSQL take turns through an advisory lock.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        use rightsdesk_migrations::{Migrator, MigratorTrait};
        match self.backend {
            Backend::Sqlite => {
                let _guard = match &self.write_lock {
                    Some(lock) => Some(lock.lock().await),
                    None => None,
                };
                Migrator::up(&self.conn, None).await?;
            }
            Backend::Postgres => {
                // A transaction pins one connection, so the lock and the migrations
                // run on the same session.
                let tx = self.conn.begin().await?;
                tx.execute_unprepared("SELECT pg_advisory_xact_lock(7243816329120358001)")
                    .await?;
                Migrator::up(&tx, None).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Readiness: the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.conn.ping().await.map_err(StoreError::from)
    }

    pub async fn close(self) -> Result<(), StoreError> {
        self.conn.close().await.map_err(StoreError::from)
    }

    pub fn db_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }
}
