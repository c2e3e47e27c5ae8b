//! Per-year reference counters: each instance reserves a block of counter values at a
//! time, so numbering costs one short statement per block, not one per filing.

use std::ops::Range;

use sea_orm::{ConnectionTrait, Statement};

use crate::StoreError;

/// Reserves the next `n` counter values of `year` and returns them. Values of a block
/// that an instance never uses (it stopped) are skipped for good, which is harmless.
pub async fn reserve(
    conn: &impl ConnectionTrait,
    year: i32,
    n: u32,
) -> Result<Range<i64>, StoreError> {
    let n = i64::from(n);
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DbBackend::Postgres => {
                    "INSERT INTO reference_counters (year, next_counter) VALUES ($1, $2) \
                     ON CONFLICT (year) DO UPDATE \
                     SET next_counter = reference_counters.next_counter + EXCLUDED.next_counter \
                     RETURNING next_counter"
                }
                _ => {
                    "INSERT INTO reference_counters (year, next_counter) VALUES (?, ?) \
                     ON CONFLICT (year) DO UPDATE \
                     SET next_counter = reference_counters.next_counter + excluded.next_counter \
                     RETURNING next_counter"
                }
            },
            [year.into(), n.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    let end: i64 = row.try_get("", "next_counter")?;
    Ok(end - n..end)
}
