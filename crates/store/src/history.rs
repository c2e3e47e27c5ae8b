//! Every row that records one request's history, as JSON, for the evidence export
//! (`rightsdesk export-evidence`). Secrets kept beside the history (sealed notification
//! parameters and bundle passwords, verification code hashes, encrypted file contents)
//! are left out: the export proves what happened, it does not hand out keys to it.

use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
use serde_json::Value;

use crate::{
    StoreError, bundles, collections, comments, consents, erasures, evidence, intake,
    notifications, source_changes, subjects, verifications,
};

/// Columns never exported, by table.
const LEFT_OUT: [(&str, &str); 4] = [
    ("notifications", "sealed"),
    ("bundles", "password_sealed"),
    ("verifications", "code_hash"),
    ("collections", "answer_key"),
];

fn without_secrets(table: &str, mut rows: Vec<Value>) -> Vec<Value> {
    for row in &mut rows {
        if let Some(map) = row.as_object_mut() {
            for (t, column) in LEFT_OUT {
                if t == table {
                    map.remove(column);
                }
            }
        }
    }
    rows
}

/// The request's own row.
pub async fn request_row(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
) -> Result<Option<Value>, StoreError> {
    Ok(crate::requests::Entity::find_by_id(request_id)
        .into_json()
        .one(conn)
        .await?)
}

/// The request's related rows, table by table (each in the order it was written), and
/// its subject's row when it has one.
pub async fn related_rows(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
    subject_id: Option<Uuid>,
) -> Result<Vec<(&'static str, Vec<Value>)>, StoreError> {
    let mut tables = vec![
        (
            "notifications",
            notifications::Entity::find()
                .filter(notifications::Column::RequestId.eq(request_id))
                .order_by_asc(notifications::Column::CreatedAt)
                .into_json()
                .all(conn)
                .await?,
        ),
        (
            "verifications",
            verifications::Entity::find()
                .filter(verifications::Column::RequestId.eq(request_id))
                .order_by_asc(verifications::Column::CreatedAt)
                .into_json()
                .all(conn)
                .await?,
        ),
        (
            "evidence",
            evidence::Entity::find()
                .filter(evidence::Column::RequestId.eq(request_id))
                .order_by_asc(evidence::Column::UploadedAt)
                .into_json()
                .all(conn)
                .await?,
        ),
        (
            "intake_messages",
            intake::messages::Entity::find()
                .filter(intake::messages::Column::RequestId.eq(request_id))
                .order_by_asc(intake::messages::Column::ReceivedAt)
                .into_json()
                .all(conn)
                .await?,
        ),
        (
            "comments",
            comments::Entity::find()
                .filter(comments::Column::RequestId.eq(request_id))
                .order_by_asc(comments::Column::CreatedAt)
                .into_json()
                .all(conn)
                .await?,
        ),
        (
            "collections",
            collections::Entity::find()
                .filter(collections::Column::RequestId.eq(request_id))
                .order_by_asc(collections::Column::Source)
                .into_json()
                .all(conn)
                .await?,
        ),
        (
            "erasures",
            erasures::Entity::find()
                .filter(erasures::Column::RequestId.eq(request_id))
                .order_by_asc(erasures::Column::Source)
                .into_json()
                .all(conn)
                .await?,
        ),
        (
            "source_changes",
            source_changes::Entity::find()
                .filter(source_changes::Column::RequestId.eq(request_id))
                .order_by_asc(source_changes::Column::Source)
                .into_json()
                .all(conn)
                .await?,
        ),
        (
            "consents",
            consents::Entity::find()
                .filter(consents::Column::RequestId.eq(request_id))
                .order_by_asc(consents::Column::RecordedAt)
                .into_json()
                .all(conn)
                .await?,
        ),
        (
            "bundles",
            bundles::Entity::find()
                .filter(bundles::Column::RequestId.eq(request_id))
                .order_by_asc(bundles::Column::CreatedAt)
                .into_json()
                .all(conn)
                .await?,
        ),
        (
            "download_links",
            bundles::links::Entity::find()
                .filter(bundles::links::Column::RequestId.eq(request_id))
                .order_by_asc(bundles::links::Column::CreatedAt)
                .into_json()
                .all(conn)
                .await?,
        ),
    ];
    if let Some(subject) = subject_id {
        tables.push((
            "subjects",
            subjects::Entity::find_by_id(subject)
                .into_json()
                .all(conn)
                .await?,
        ));
    }
    Ok(tables
        .into_iter()
        .map(|(table, rows)| (table, without_secrets(table, rows)))
        .collect())
}
