//! Group commit for new requests. Filing is the hottest write: every filing is two rows
//! (the request and its first event) and, with an `Idempotency-Key`, a third. Rather
//! than one transaction per filing, committer tasks gather the filings that arrive
//! while the previous transaction runs and write them with one multi-row INSERT per
//! table in one transaction. Each caller is answered only after the commit that holds
//! its rows, so a 201 still means the request survives a crash.
//!
//! On SQLite (one writer at a time) one committer runs; on PostgreSQL several do, and each
//! batch is one statement (see `write`). When a batch fails (an idempotency key used
//! concurrently, a reference taken by a restored row), every filing of it is retried
//! alone, so one bad row never fails the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rightsdesk_store::{
    Backend, ConnectionTrait, Db, StoreError, events, filings, idempotency, notifications,
    requests, verifications,
};
use tokio::sync::{mpsc, oneshot};

/// The rows of one filing.
pub(crate) struct FilingRows {
    pub request: requests::Model,
    /// `filed`, then `verification_requested` when a code is sent.
    pub events: Vec<events::Model>,
    pub idempotency: Option<idempotency::Model>,
    pub verification: Option<verifications::Model>,
    pub notifications: Vec<notifications::Model>,
}

/// `Some(row)`: the idempotency key was already used; `row` holds the first answer.
pub(crate) type Outcome = Result<Option<idempotency::Model>, StoreError>;

type Job = (FilingRows, oneshot::Sender<Outcome>);

/// The most filings written in one transaction.
const MAX_BATCH: usize = 64;

pub(crate) struct GroupCommit {
    queues: Vec<mpsc::Sender<Job>>,
    next: AtomicUsize,
}

impl GroupCommit {
    /// Starts the committer tasks on the current runtime; they stop when this is dropped.
    pub(crate) fn start(db: Db) -> Arc<Self> {
        let committers = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        };
        let queues = (0..committers)
            .map(|_| {
                let (tx, rx) = mpsc::channel(MAX_BATCH * 4);
                tokio::spawn(run(db.clone(), rx));
                tx
            })
            .collect();
        Arc::new(Self {
            queues,
            next: AtomicUsize::new(0),
        })
    }

    /// Writes `rows` and waits for the commit that holds them.
    pub(crate) async fn commit(&self, rows: FilingRows) -> Outcome {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len();
        let (reply, answer) = oneshot::channel();
        self.queues[i]
            .send((rows, reply))
            .await
            .map_err(|_| StoreError::Config("the filing committer has stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| StoreError::Config("the filing committer has stopped".to_owned()))?
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if batch.len() > 1 {
            let rows: Vec<&FilingRows> = batch.iter().map(|(r, _)| r).collect();
            if let Ok(outcomes) = write(&db, &rows).await {
                for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                continue;
            }
        }
        for (rows, reply) in batch {
            let outcome = write(&db, &[&rows]).await.map(|mut o| o.remove(0));
            let _ = reply.send(outcome);
        }
    }
}

/// Writes the filings atomically; a filing whose idempotency key is already stored is
/// not written, and its outcome carries the stored answer. On PostgreSQL that is one
/// query for the stored keys and one statement for the rows, outside a transaction: a
/// key stored concurrently between the two fails the statement, and `run` then retries
/// each filing alone. On SQLite, one transaction under the write lock.
async fn write(
    db: &Db,
    filings: &[&FilingRows],
) -> Result<Vec<Option<idempotency::Model>>, StoreError> {
    match db.backend() {
        Backend::Postgres => write_on(db.conn(), filings).await,
        Backend::Sqlite => {
            let tx = db.begin_write().await?;
            let outcomes = write_on(&*tx, filings).await?;
            tx.commit().await?;
            Ok(outcomes)
        }
    }
}

async fn write_on(
    conn: &impl ConnectionTrait,
    filings: &[&FilingRows],
) -> Result<Vec<Option<idempotency::Model>>, StoreError> {
    let keys: Vec<(&str, &str)> = filings
        .iter()
        .filter_map(|f| f.idempotency.as_ref())
        .map(|k| (k.scope.as_str(), k.key.as_str()))
        .collect();
    let stored = idempotency::find_many(conn, &keys).await?;
    let outcomes: Vec<Option<idempotency::Model>> = filings
        .iter()
        .map(|f| {
            let key = f.idempotency.as_ref()?;
            stored
                .iter()
                .find(|s| s.scope == key.scope && s.key == key.key)
                .cloned()
        })
        .collect();
    let new: Vec<&FilingRows> = filings
        .iter()
        .zip(&outcomes)
        .filter(|(_, stored)| stored.is_none())
        .map(|(f, _)| *f)
        .collect();
    let batch = filings::Batch {
        requests: new.iter().map(|f| f.request.clone()).collect(),
        events: new.iter().flat_map(|f| f.events.iter().cloned()).collect(),
        keys: new.iter().filter_map(|f| f.idempotency.clone()).collect(),
        verifications: new.iter().filter_map(|f| f.verification.clone()).collect(),
        notifications: new
            .iter()
            .flat_map(|f| f.notifications.iter().cloned())
            .collect(),
    };
    filings::insert(conn, batch).await?;
    Ok(outcomes)
}
