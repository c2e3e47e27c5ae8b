//! Writing a batch of new requests, their first events and their idempotency records.

use sea_orm::sea_query::{Alias, CommonTableExpression, WithClause};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryTrait};

use crate::{StoreError, events, idempotency, requests};

/// Inserts the rows. On PostgreSQL this is one statement (data-modifying CTEs), which is
/// atomic on its own: one round trip for the whole batch, no transaction needed. SQLite
/// has no INSERT inside WITH, so there the caller's transaction holds three INSERTs.
pub async fn insert(
    conn: &impl ConnectionTrait,
    requests: Vec<requests::Model>,
    events: Vec<events::Model>,
    keys: Vec<idempotency::Model>,
) -> Result<(), StoreError> {
    if requests.is_empty() {
        return Ok(());
    }
    if conn.get_database_backend() != DbBackend::Postgres {
        requests::insert_many(conn, requests).await?;
        events::insert_many(conn, events).await?;
        return idempotency::insert_many(conn, keys).await;
    }
    let requests =
        requests::Entity::insert_many(requests.into_iter().map(requests::ActiveModel::from))
            .into_query();
    let events =
        events::Entity::insert_many(events.into_iter().map(events::ActiveModel::from)).into_query();
    let mut with = WithClause::new();
    with.cte(
        CommonTableExpression::new()
            .query(requests)
            .table_name(Alias::new("new_requests"))
            .to_owned(),
    );
    let statement = if keys.is_empty() {
        events.with(with)
    } else {
        with.cte(
            CommonTableExpression::new()
                .query(events)
                .table_name(Alias::new("new_events"))
                .to_owned(),
        );
        idempotency::Entity::insert_many(keys.into_iter().map(idempotency::ActiveModel::from))
            .into_query()
            .with(with)
    };
    conn.execute(&statement).await?;
    Ok(())
}
