//! Handing out request references. Each instance reserves blocks of the year's counter
//! from the database and maps each counter value to its number through the keyed
//! permutation of `domain::reference::Numbering`: references never collide, even across
//! instances sharing one PostgreSQL, and do not reveal how many requests exist.

use std::collections::HashMap;
use std::ops::Range;

use rightsdesk_domain::reference::{NUMBERS_PER_YEAR, Numbering, Reference};
use rightsdesk_store::{Db, reference_counters};
use tokio::sync::Mutex;

use crate::error::{Error, ErrorCode};

/// Counter values reserved per database round trip.
const BLOCK: u32 = 32;

pub(crate) struct References {
    numbering: Numbering,
    /// The unused part of the block reserved for each year.
    blocks: Mutex<HashMap<i32, Range<i64>>>,
}

impl References {
    pub(crate) fn new(key: &[u8]) -> Self {
        Self {
            numbering: Numbering::new(key),
            blocks: Mutex::new(HashMap::new()),
        }
    }

    /// The next unused reference of `year`.
    pub(crate) async fn next(&self, db: &Db, year: i32) -> Result<Reference, Error> {
        let mut blocks = self.blocks.lock().await;
        let block = blocks.entry(year).or_insert(0..0);
        if block.is_empty() {
            // On SQLite this waits for the write lock, like every write; a block lasts
            // BLOCK filings.
            let tx = db.begin_write().await?;
            let reserved = reference_counters::reserve(&*tx, year, BLOCK).await?;
            tx.commit().await?;
            *block = reserved;
        }
        let counter = block.start;
        block.start += 1;
        u32::try_from(counter)
            .ok()
            .and_then(|c| self.numbering.reference(year, c))
            .ok_or_else(|| {
                tracing::error!(year, "every request reference of the year is used");
                Error::new(
                    ErrorCode::ReferencesExhausted,
                    format!(
                        "all {NUMBERS_PER_YEAR} request references of {year} are used; no request can be filed for {year}"
                    ),
                )
            })
    }
}
