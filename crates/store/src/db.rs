//! Connecting to the database chosen by its URL, running migrations, and opening write
//! transactions.
//!
//! SQLite is the embedded default: one file, WAL, a busy timeout. SQLite has one write
//! lock per file and ignores row locks, so writes in this process are serialised by an
//! async mutex, go through one dedicated connection (whose page cache then stays warm),
//! and begin `IMMEDIATE` (a second process waits on the busy timeout instead of failing
//! half-way). WAL checkpoints run in a background task rather than inside whichever
//! commit crosses SQLite's threshold (see [`checkpoints`]). PostgreSQL takes concurrent
//! writers; each use-case guards the rows it changes (see `requests::update`).

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
    /// Connections in the pool. SQLite: readers; writes use one more connection of their own.
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

/// A connection pool and, on SQLite, the process-wide write lock, the writer connection
/// and the checkpoint task.
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    /// SQLite: a pool of exactly one connection that every write uses. PostgreSQL: `conn`.
    writer: DatabaseConnection,
    backend: Backend,
    write_lock: Option<Arc<Mutex<()>>>,
    checkpoints: Option<Arc<checkpoints::Task>>,
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

    /// PostgreSQL: this transaction's commit does not wait for its WAL to reach the disk
    /// (`synchronous_commit = off`), so it does not queue behind other commits' flushes.
    /// A crash of the database server may lose it (never half of it). Only for work that
    /// is safe to lose and redo. SQLite: nothing changes.
    pub async fn relax_durability(&self) -> Result<(), StoreError> {
        if self.tx.get_database_backend() == DbBackend::Postgres {
            self.tx
                .execute_unprepared("SET LOCAL synchronous_commit = off")
                .await?;
        }
        Ok(())
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
        let options = |max_connections: u32| {
            let mut opts = ConnectOptions::new(url.clone());
            opts.max_connections(max_connections)
                .min_connections(1)
                .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
                .test_before_acquire(false)
                .sqlx_logging(false);
            if config.url.starts_with("sqlite:") {
                let busy = Duration::from_millis(config.busy_timeout_ms);
                // One closure for every SQLite setting: a second `map_sqlx_sqlite_opts`
                // call would replace this one.
                opts.map_sqlx_sqlite_opts(move |o: SqliteConnectOptions| {
                    o.create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                        .busy_timeout(busy)
                        .foreign_keys(true)
                        // Checkpoints are the background task's job, never a commit's.
                        .pragma("wal_autocheckpoint", "0")
                        .pragma("journal_size_limit", checkpoints::JOURNAL_SIZE_LIMIT)
                });
            }
            opts
        };
        if !config.url.starts_with("sqlite:") {
            let conn = Database::connect(options(config.max_connections)).await?;
            return Ok(Self {
                writer: conn.clone(),
                conn,
                backend: Backend::Postgres,
                write_lock: None,
                checkpoints: None,
            });
        }
        // The writer first: it creates the file and switches it to WAL.
        let writer = Database::connect(options(1)).await?;
        let conn = Database::connect(options(config.max_connections)).await?;
        let write_lock = Arc::new(Mutex::new(()));
        let checkpoints = checkpoints::Task::start(
            conn.clone(),
            writer.clone(),
            write_lock.clone(),
            config.busy_timeout_ms,
        );
        Ok(Self {
            conn,
            writer,
            backend: Backend::Sqlite,
            write_lock: Some(write_lock),
            checkpoints: Some(Arc::new(checkpoints)),
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
        let tx = self.writer.begin_with_options(options).await?;
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
                Migrator::up(&self.writer, None).await?;
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

    /// How many migrations this binary knows that the database has not run yet.
    pub async fn pending_migrations(&self) -> Result<usize, StoreError> {
        use rightsdesk_migrations::{Migrator, MigratorTrait};
        Ok(Migrator::get_pending_migrations(&self.conn).await?.len())
    }

    /// Readiness: the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.conn.ping().await.map_err(StoreError::from)
    }

    pub async fn close(self) -> Result<(), StoreError> {
        if let Some(task) = &self.checkpoints {
            task.stop();
        }
        if self.backend == Backend::Sqlite {
            self.writer.close().await?;
        }
        self.conn.close().await.map_err(StoreError::from)
    }

    pub fn db_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }
}

/// SQLite WAL checkpoints, off the commit path.
///
/// SQLite's automatic checkpoint runs inside the commit that makes the WAL cross 1,000
/// pages, copies the WAL into the database and fsyncs while every other writer waits
/// (12–18 ms per fsync measured here; see docs/performance.md). Instead, every
/// connection has `wal_autocheckpoint=0` and this task:
/// - every `PASSIVE_EVERY`, runs a PASSIVE checkpoint on a reader connection, which
///   copies what it can without blocking anyone;
/// - every `TRUNCATE_EVERY`, or as soon as the WAL holds more than `TRUNCATE_ABOVE`
///   frames, takes the write lock and runs a TRUNCATE checkpoint on the writer. Little is
///   left to copy by then, and it resets the WAL file, which a writer that never pauses
///   would otherwise grow without bound (a PASSIVE checkpoint can never restart it).
pub mod checkpoints {
    use std::sync::Arc;
    use std::time::Duration;

    use sea_orm::{ConnectionTrait, DatabaseConnection};
    use tokio::sync::Mutex;
    use tokio::task::JoinHandle;

    const PASSIVE_EVERY: Duration = Duration::from_millis(200);
    const TRUNCATE_EVERY: Duration = Duration::from_secs(2);
    /// WAL frames (pages) above which the next tick truncates: 16 MB at 4 KB pages.
    const TRUNCATE_ABOVE: i64 = 4_096;
    /// How long a TRUNCATE checkpoint waits for readers, holding the write lock.
    const TRUNCATE_WAIT_MS: u64 = 100;
    /// Bytes SQLite leaves a WAL at after a checkpoint resets it, as a backstop.
    pub(super) const JOURNAL_SIZE_LIMIT: &str = "67108864";

    pub(super) struct Task(JoinHandle<()>);

    impl Task {
        pub(super) fn start(
            readers: DatabaseConnection,
            writer: DatabaseConnection,
            write_lock: Arc<Mutex<()>>,
            busy_timeout_ms: u64,
        ) -> Self {
            Self(tokio::spawn(async move {
                let mut tick = tokio::time::interval(PASSIVE_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut since_truncate = Duration::ZERO;
                loop {
                    tick.tick().await;
                    since_truncate += PASSIVE_EVERY;
                    let log = match checkpoint(&readers, "PASSIVE").await {
                        Ok(log) => log,
                        Err(e) => {
                            tracing::warn!(error = %e, "SQLite passive checkpoint failed");
                            continue;
                        }
                    };
                    if log == 0 || (since_truncate < TRUNCATE_EVERY && log < TRUNCATE_ABOVE) {
                        continue;
                    }
                    since_truncate = Duration::ZERO;
                    let _guard = write_lock.lock().await;
                    // A long reader (an export) would make TRUNCATE wait, and every
                    // writer behind it: give up quickly and try again next time.
                    let result = async {
                        writer
                            .execute_unprepared(&format!(
                                "PRAGMA busy_timeout = {TRUNCATE_WAIT_MS}"
                            ))
                            .await?;
                        let log = checkpoint(&writer, "TRUNCATE").await;
                        writer
                            .execute_unprepared(&format!("PRAGMA busy_timeout = {busy_timeout_ms}"))
                            .await?;
                        log
                    }
                    .await;
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "SQLite truncating checkpoint failed");
                    }
                }
            }))
        }

        pub(super) fn stop(&self) {
            self.0.abort();
        }
    }

    impl Drop for Task {
        fn drop(&mut self) {
            self.0.abort();
        }
    }

    /// Runs `PRAGMA wal_checkpoint(mode)` and returns the WAL's size in frames.
    async fn checkpoint(conn: &DatabaseConnection, mode: &str) -> Result<i64, sea_orm::DbErr> {
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                conn.get_database_backend(),
                format!("PRAGMA wal_checkpoint({mode})"),
            ))
            .await?;
        Ok(row
            .and_then(|r| r.try_get_by_index::<i64>(1).ok())
            .unwrap_or(0))
    }
}
