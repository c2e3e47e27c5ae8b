//! Email intake (SPEC §6). One `intake_messages` row per inbound message, whatever it
//! became; the sealed raw MIME of messages waiting in triage; each polled mailbox's
//! cursor; the classification rules officers added; the signatures the raw-MIME
//! endpoint accepted.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect};

use crate::StoreError;

/// What an inbound message became.
pub mod status {
    /// A new request was filed from it.
    pub const REQUEST: &str = "request";
    /// Threaded onto an existing request.
    pub const REPLY: &str = "reply";
    /// Waiting for an officer to convert or dismiss it.
    pub const TRIAGE: &str = "triage";
    /// Converted by an officer into a request.
    pub const CONVERTED: &str = "converted";
    /// Dismissed by an officer.
    pub const DISMISSED: &str = "dismissed";
    /// Never answered: an auto-reply, a bounce, list mail, our own message (`reason`).
    pub const IGNORED: &str = "ignored";
    /// Could not be read (`reason`: too large, malformed, …).
    pub const FAILED: &str = "failed";
}

pub mod messages {
    use super::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "intake_messages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// `imap:<mailbox>` or `hook`.
        pub source: String,
        /// The IMAP UID it was read at.
        pub source_uid: Option<i64>,
        /// The `Message-ID` without angle brackets; unique.
        pub message_id: Option<String>,
        pub received_at: DateTime<Utc>,
        pub from_address: Option<String>,
        pub subject: String,
        /// The readable text of the message.
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub status: String,
        pub reason: Option<String>,
        /// The kind it was classified as (or converted to).
        pub kind: Option<String>,
        pub confidence: Option<f64>,
        pub request_id: Option<Uuid>,
        pub raw_size: i64,
        /// `[{file_name, content_type, size_bytes, evidence_id?, dropped?}]`.
        pub attachments: Json,
        pub handled_by: Option<Uuid>,
        pub handled_at: Option<DateTime<Utc>>,
        pub created_at: DateTime<Utc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The raw MIME of a message in triage, sealed like evidence.
pub mod blobs {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "intake_blobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub message_id: Uuid,
        pub key_id: String,
        pub nonce: Vec<u8>,
        pub ciphertext: Vec<u8>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod cursors {
    use super::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "intake_cursors")]
    pub struct Model {
        /// The configured mailbox's name.
        #[sea_orm(primary_key, auto_increment = false)]
        pub mailbox: String,
        pub uid_validity: Option<i64>,
        /// The last UID whose message is recorded.
        pub last_uid: i64,
        /// Polls that failed in a row, for back-off.
        pub failures: i32,
        pub next_poll_at: DateTime<Utc>,
        pub last_error: Option<String>,
        pub updated_at: DateTime<Utc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod rules {
    use super::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "intake_rules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub kind: String,
        pub terms: Json,
        pub field: String,
        pub weight: f64,
        pub created_by: Option<Uuid>,
        pub created_at: DateTime<Utc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod hook_signatures {
    use super::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "intake_hook_signatures")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub digest: String,
        pub seen_at: DateTime<Utc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Records `row` (and, for triage, its sealed raw MIME). A `message_id` recorded
/// already is a unique violation: the caller treats the message as seen.
pub async fn insert(
    conn: &impl ConnectionTrait,
    row: messages::Model,
    raw: Option<blobs::Model>,
) -> Result<(), StoreError> {
    messages::Entity::insert(messages::ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    if let Some(raw) = raw {
        blobs::Entity::insert(blobs::ActiveModel::from(raw))
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

pub async fn find_by_message_id(
    conn: &impl ConnectionTrait,
    message_id: &str,
) -> Result<Option<messages::Model>, StoreError> {
    Ok(messages::Entity::find()
        .filter(messages::Column::MessageId.eq(message_id))
        .one(conn)
        .await?)
}

pub async fn get(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<messages::Model>, StoreError> {
    Ok(messages::Entity::find_by_id(id).one(conn).await?)
}

/// Messages in `status`, oldest first, after `after` (received_at, id), at most `limit`.
pub async fn list(
    conn: &impl ConnectionTrait,
    status: &str,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<messages::Model>, StoreError> {
    use messages::Column;
    let mut q = messages::Entity::find().filter(Column::Status.eq(status));
    if let Some((at, id)) = after {
        q = q.filter(
            sea_orm::Condition::any()
                .add(Column::ReceivedAt.gt(at))
                .add(
                    sea_orm::Condition::all()
                        .add(Column::ReceivedAt.eq(at))
                        .add(Column::Id.gt(id)),
                ),
        );
    }
    Ok(q.order_by_asc(Column::ReceivedAt)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(conn)
        .await?)
}

/// The messages of request `request_id`, oldest first.
pub async fn for_request(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
) -> Result<Vec<messages::Model>, StoreError> {
    use messages::Column;
    Ok(messages::Entity::find()
        .filter(Column::RequestId.eq(request_id))
        .order_by_asc(Column::ReceivedAt)
        .order_by_asc(Column::Id)
        .all(conn)
        .await?)
}

/// Settles a triage item: `status` (converted or dismissed), by `officer`, with the
/// request it became (if any). `Conflict` when it is no longer in triage. Its sealed raw
/// MIME is destroyed.
#[allow(clippy::too_many_arguments)]
pub async fn settle(
    conn: &impl ConnectionTrait,
    id: Uuid,
    status: &str,
    kind: Option<String>,
    request_id: Option<Uuid>,
    reason: Option<String>,
    officer: Uuid,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    use messages::Column;
    let result = messages::Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::Kind, Expr::value(kind))
        .col_expr(Column::RequestId, Expr::value(request_id))
        .col_expr(Column::Reason, Expr::value(reason))
        .col_expr(Column::HandledBy, Expr::value(Some(officer)))
        .col_expr(Column::HandledAt, Expr::value(Some(at)))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(status::TRIAGE))
        .exec(conn)
        .await?;
    if result.rows_affected != 1 {
        return Err(StoreError::Conflict);
    }
    blobs::Entity::delete_by_id(id).exec(conn).await?;
    Ok(())
}

pub async fn sealed_raw(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<blobs::Model>, StoreError> {
    Ok(blobs::Entity::find_by_id(id).one(conn).await?)
}

pub async fn cursor(
    conn: &impl ConnectionTrait,
    mailbox: &str,
) -> Result<Option<cursors::Model>, StoreError> {
    Ok(cursors::Entity::find_by_id(mailbox.to_owned())
        .one(conn)
        .await?)
}

/// Every mailbox's cursor, by name.
pub async fn cursors(conn: &impl ConnectionTrait) -> Result<Vec<cursors::Model>, StoreError> {
    Ok(cursors::Entity::find()
        .order_by_asc(cursors::Column::Mailbox)
        .all(conn)
        .await?)
}

/// Writes `row` as the mailbox's cursor, whether or not it had one.
pub async fn save_cursor(
    conn: &impl ConnectionTrait,
    row: cursors::Model,
) -> Result<(), StoreError> {
    use cursors::Column;
    cursors::Entity::insert(cursors::ActiveModel::from(row))
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(Column::Mailbox)
                .update_columns([
                    Column::UidValidity,
                    Column::LastUid,
                    Column::Failures,
                    Column::NextPollAt,
                    Column::LastError,
                    Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn rules(conn: &impl ConnectionTrait) -> Result<Vec<rules::Model>, StoreError> {
    Ok(rules::Entity::find()
        .order_by_asc(rules::Column::CreatedAt)
        .order_by_asc(rules::Column::Id)
        .all(conn)
        .await?)
}

pub async fn add_rule(conn: &impl ConnectionTrait, row: rules::Model) -> Result<(), StoreError> {
    rules::Entity::insert(rules::ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// `NotFound` when there is no such rule.
pub async fn delete_rule(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), StoreError> {
    let result = rules::Entity::delete_by_id(id).exec(conn).await?;
    if result.rows_affected == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Remembers a signature the raw-MIME endpoint accepted; `false` when it was seen
/// already (a replay).
pub async fn remember_signature(
    conn: &impl ConnectionTrait,
    digest: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let row = hook_signatures::ActiveModel::from(hook_signatures::Model {
        digest: digest.to_owned(),
        seen_at: at,
    });
    Ok(crate::insert_new::<hook_signatures::ActiveModel>(
        conn,
        vec![row],
        hook_signatures::Column::Digest,
    )
    .await?
        == 1)
}

/// Forgets the signatures seen before `before` (older posts are refused by their
/// timestamp anyway).
pub async fn forget_signatures_before(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(hook_signatures::Entity::delete_many()
        .filter(hook_signatures::Column::SeenAt.lt(before))
        .exec(conn)
        .await?
        .rows_affected)
}
