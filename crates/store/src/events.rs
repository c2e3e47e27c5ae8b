//! The append-only, hash-chained event log (SPEC §11). Each request has its own chain,
//! so concurrent writers on different requests never wait on one global "last hash":
//! event `n` stores the hash of event `n-1`, and the request row stores the head.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder};
use sha2::{Digest, Sha256};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub request_id: Uuid,
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub event_type: String,
    pub data: Json,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The hash that precedes the first event of every chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to be appended; `at` is truncated to microseconds, the precision both
/// databases store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub event_type: String,
    pub data: Json,
}

/// The position of a chain's last event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

impl Head {
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

/// SHA-256 over the previous hash and every stored field, each on its own line; JSON
/// with its keys sorted, so the hash does not depend on how a database returns it.
pub fn chain_hash(
    prev_hash: &str,
    request_id: Uuid,
    seq: i64,
    at: DateTime<Utc>,
    actor: &str,
    event_type: &str,
    data: &Json,
) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(request_id.to_string().as_bytes());
    h.update(b"\n");
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(
        at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .as_bytes(),
    );
    h.update(b"\n");
    h.update(actor.as_bytes());
    h.update(b"\n");
    h.update(event_type.as_bytes());
    h.update(b"\n");
    canonical_json(data, &mut h);
    hex::encode(h.finalize())
}

/// Feeds `value` as JSON with object keys sorted, whatever order the map keeps them in
/// (serde_json's `preserve_order` may be switched on by another crate in the build).
fn canonical_json(value: &Json, h: &mut Sha256) {
    match value {
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            h.update(b"{");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                h.update(Json::String(k.clone()).to_string().as_bytes());
                h.update(b":");
                canonical_json(&map[k], h);
            }
            h.update(b"}");
        }
        Json::Array(items) => {
            h.update(b"[");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                canonical_json(v, h);
            }
            h.update(b"]");
        }
        scalar => h.update(scalar.to_string().as_bytes()),
    }
}

/// Builds the row for `event` after `head`, and the new head. Nothing is written.
pub fn build(request_id: Uuid, head: &Head, event: NewEvent) -> (Model, Head) {
    let seq = head.seq + 1;
    let at = event.at.trunc_subsecs(6);
    let hash = chain_hash(
        &head.hash,
        request_id,
        seq,
        at,
        &event.actor,
        &event.event_type,
        &event.data,
    );
    let row = Model {
        id: Uuid::now_v7(),
        request_id,
        seq,
        at,
        actor: event.actor,
        event_type: event.event_type,
        data: event.data,
        prev_hash: head.hash.clone(),
        hash: hash.clone(),
    };
    (row, Head { seq, hash })
}

pub async fn insert(conn: &impl ConnectionTrait, row: Model) -> Result<(), StoreError> {
    Entity::insert(ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Inserts `rows` in one statement (nothing when empty).
pub async fn insert_many(conn: &impl ConnectionTrait, rows: Vec<Model>) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    Entity::insert_many(rows.into_iter().map(ActiveModel::from))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn for_request(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::RequestId.eq(request_id))
        .order_by_asc(Column::Seq)
        .all(conn)
        .await?)
}

/// The events of type `event_type` of the requests `request_ids` (the dashboard reads
/// the refusals' reason codes this way, through the `(request_id, seq)` key).
pub async fn of_type_for(
    conn: &impl ConnectionTrait,
    request_ids: &[Uuid],
    event_type: &str,
) -> Result<Vec<Model>, StoreError> {
    if request_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(Entity::find()
        .filter(Column::RequestId.is_in(request_ids.iter().copied()))
        .filter(Column::EventType.eq(event_type))
        .all(conn)
        .await?)
}

/// Why a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("event {seq} does not follow event {}", seq - 1)]
    Gap { seq: i64 },
    #[error("event {seq} does not link to the hash of the event before it")]
    BrokenLink { seq: i64 },
    #[error("event {seq} was altered: its hash does not match its content")]
    Altered { seq: i64 },
    #[error("the request's chain head does not match its last event (events removed or added)")]
    HeadMismatch,
}

/// Checks `events` (in order) against the head stored on the request.
pub fn verify_chain(request_id: Uuid, events: &[Model], head: &Head) -> Result<(), ChainError> {
    let mut prev = Head::genesis();
    for e in events {
        if e.seq != prev.seq + 1 {
            return Err(ChainError::Gap { seq: e.seq });
        }
        if e.prev_hash != prev.hash {
            return Err(ChainError::BrokenLink { seq: e.seq });
        }
        let expected = chain_hash(
            &prev.hash,
            request_id,
            e.seq,
            e.at,
            &e.actor,
            &e.event_type,
            &e.data,
        );
        if expected != e.hash {
            return Err(ChainError::Altered { seq: e.seq });
        }
        prev = Head {
            seq: e.seq,
            hash: e.hash.clone(),
        };
    }
    if &prev != head {
        return Err(ChainError::HeadMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: usize) -> (Uuid, Vec<Model>, Head) {
        let id = Uuid::now_v7();
        let mut head = Head::genesis();
        let mut rows = Vec::new();
        for i in 0..n {
            let (row, h) = build(
                id,
                &head,
                NewEvent {
                    at: Utc::now(),
                    actor: "system".into(),
                    event_type: "test".into(),
                    data: json!({"i": i, "b": [1, 2], "a": "x"}),
                },
            );
            rows.push(row);
            head = h;
        }
        (id, rows, head)
    }

    #[test]
    fn a_chain_verifies_and_any_change_breaks_it() {
        let (id, rows, head) = chain(4);
        assert_eq!(verify_chain(id, &rows, &head), Ok(()));

        let mut altered = rows.clone();
        altered[1].data = json!({"i": 99});
        assert_eq!(
            verify_chain(id, &altered, &head),
            Err(ChainError::Altered { seq: 2 })
        );

        let mut removed = rows.clone();
        removed.pop();
        assert_eq!(
            verify_chain(id, &removed, &head),
            Err(ChainError::HeadMismatch)
        );

        let mut gap = rows.clone();
        gap.remove(1);
        assert_eq!(
            verify_chain(id, &gap, &head),
            Err(ChainError::Gap { seq: 3 })
        );
    }

    #[test]
    fn key_order_does_not_matter() {
        let at = Utc::now().trunc_subsecs(6);
        let a = chain_hash(
            GENESIS,
            Uuid::nil(),
            1,
            at,
            "x",
            "y",
            &json!({"a": 1, "b": 2}),
        );
        let b: Json = serde_json::from_str(r#"{"b": 2, "a": 1}"#).unwrap();
        assert_eq!(a, chain_hash(GENESIS, Uuid::nil(), 1, at, "x", "y", &b));
    }
}
