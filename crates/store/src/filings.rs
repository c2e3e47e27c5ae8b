//! Writing a batch of new requests with everything filing creates: their first events,
//! idempotency records, verification challenges and outbox notifications.

use sea_orm::sea_query::{Alias, CommonTableExpression, InsertStatement, WithClause};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryTrait};

use crate::{StoreError, events, idempotency, notifications, requests, verifications};

/// The rows of a batch of filings.
#[derive(Debug, Default)]
pub struct Batch {
    pub requests: Vec<requests::Model>,
    pub events: Vec<events::Model>,
    pub keys: Vec<idempotency::Model>,
    pub verifications: Vec<verifications::Model>,
    pub notifications: Vec<notifications::Model>,
}

/// Inserts the rows. On PostgreSQL this is one statement (data-modifying CTEs), which is
/// atomic on its own: one round trip for the whole batch, no transaction needed. SQLite
/// has no INSERT inside WITH, so there the caller's transaction holds one INSERT per
/// table.
pub async fn insert(conn: &impl ConnectionTrait, batch: Batch) -> Result<(), StoreError> {
    if batch.requests.is_empty() {
        return Ok(());
    }
    if conn.get_database_backend() != DbBackend::Postgres {
        requests::insert_many(conn, batch.requests).await?;
        events::insert_many(conn, batch.events).await?;
        idempotency::insert_many(conn, batch.keys).await?;
        verifications::insert_many(conn, batch.verifications).await?;
        return notifications::insert_many(conn, batch.notifications).await;
    }
    // Requests first: the other tables refer to them, and foreign keys are checked at
    // the end of the statement.
    let mut inserts: Vec<InsertStatement> = vec![
        requests::Entity::insert_many(batch.requests.into_iter().map(requests::ActiveModel::from))
            .into_query(),
        events::Entity::insert_many(batch.events.into_iter().map(events::ActiveModel::from))
            .into_query(),
    ];
    if !batch.keys.is_empty() {
        inserts.push(
            idempotency::Entity::insert_many(
                batch.keys.into_iter().map(idempotency::ActiveModel::from),
            )
            .into_query(),
        );
    }
    if !batch.verifications.is_empty() {
        inserts.push(
            verifications::Entity::insert_many(
                batch
                    .verifications
                    .into_iter()
                    .map(verifications::ActiveModel::from),
            )
            .into_query(),
        );
    }
    if !batch.notifications.is_empty() {
        inserts.push(
            notifications::Entity::insert_many(
                batch
                    .notifications
                    .into_iter()
                    .map(notifications::ActiveModel::from),
            )
            .into_query(),
        );
    }
    let last = inserts.pop().ok_or(StoreError::NotFound)?;
    let mut with = WithClause::new();
    for (i, insert) in inserts.into_iter().enumerate() {
        with.cte(
            CommonTableExpression::new()
                .query(insert)
                .table_name(Alias::new(format!("batch_{i}")))
                .to_owned(),
        );
    }
    conn.execute(&last.with(with)).await?;
    Ok(())
}
