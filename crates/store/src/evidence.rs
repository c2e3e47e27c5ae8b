//! Evidence files (SPEC §2): the `evidence` row says what a file is and how it was
//! reviewed; its encrypted bytes live in `evidence_blobs`, read only when an officer
//! opens the file and removed when the retention period after closing has passed.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "evidence")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub request_id: Uuid,
    /// What the file proves: `id_document`, `death_certificate`, …
    pub kind: String,
    /// `application/pdf`, `image/jpeg` or `image/png`, from the file's own bytes.
    pub content_type: String,
    pub file_name: Option<String>,
    pub size_bytes: i64,
    /// SHA-256 of the plaintext, hex: proves later which file was reviewed.
    pub sha256: String,
    /// `requester` or `officer:<uuid>`.
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
    /// `pending`, `accepted` or `rejected`.
    pub status: String,
    pub reviewed_by: Option<Uuid>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub review_note: Option<String>,
    /// When the bytes were destroyed; the row stays as the record that they existed.
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub const PENDING: &str = "pending";
pub const ACCEPTED: &str = "accepted";
pub const REJECTED: &str = "rejected";

/// The encrypted bytes of one file.
pub mod blob {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "evidence_blobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub evidence_id: Uuid,
        /// Which key sealed it (a fingerprint), so that keys can be rotated.
        pub key_id: String,
        pub nonce: Vec<u8>,
        /// AES-256-GCM of the file, with the evidence id as associated data.
        pub ciphertext: Vec<u8>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    row: Model,
    sealed: blob::Model,
) -> Result<(), StoreError> {
    Entity::insert(ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    blob::Entity::insert(blob::ActiveModel::from(sealed))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The request's files, oldest first, without their bytes.
pub async fn for_request(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::RequestId.eq(request_id))
        .order_by_asc(Column::UploadedAt)
        .order_by_asc(Column::Id)
        .all(conn)
        .await?)
}

/// How many files the request holds that are not yet destroyed.
pub async fn count_live(conn: &impl ConnectionTrait, request_id: Uuid) -> Result<u64, StoreError> {
    Ok(Entity::find()
        .filter(Column::RequestId.eq(request_id))
        .filter(Column::DeletedAt.is_null())
        .count(conn)
        .await?)
}

/// File `id` of request `request_id`.
pub async fn find(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
    id: Uuid,
) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find_by_id(id)
        .filter(Column::RequestId.eq(request_id))
        .one(conn)
        .await?)
}

/// The encrypted bytes of file `id`, when not destroyed.
pub async fn sealed(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<blob::Model>, StoreError> {
    Ok(blob::Entity::find_by_id(id).one(conn).await?)
}

/// Records the review of a pending file; `Conflict` when it was already reviewed.
pub async fn review(
    conn: &impl ConnectionTrait,
    id: Uuid,
    status: &str,
    officer: Uuid,
    note: Option<String>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let result = Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::ReviewedBy, Expr::value(Some(officer)))
        .col_expr(Column::ReviewedAt, Expr::value(Some(at)))
        .col_expr(Column::ReviewNote, Expr::value(note))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(PENDING))
        .exec(conn)
        .await?;
    if result.rows_affected == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

/// Up to `limit` files whose bytes still exist on requests closed before `closed_before`.
pub async fn due_for_deletion(
    conn: &impl ConnectionTrait,
    closed_before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Model>, StoreError> {
    use crate::requests::{Column as Request, Entity as Requests};
    // Correlated on the request's primary key: the few live files lead, and the
    // requests table (millions of rows) is only probed, never scanned.
    let closed = Query::select()
        .expr(Expr::val(1))
        .from(Requests)
        .and_where(Expr::col((Requests, Request::Id)).equals((Entity, Column::RequestId)))
        .and_where(Expr::col((Requests, Request::ClosedAt)).lt(closed_before))
        .to_owned();
    Ok(Entity::find()
        .filter(Column::DeletedAt.is_null())
        .filter(Expr::exists(closed))
        .order_by_asc(Column::UploadedAt)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Destroys the bytes of file `id` and records when; `Conflict` when already done.
pub async fn destroy(
    conn: &impl ConnectionTrait,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let result = Entity::update_many()
        .col_expr(Column::DeletedAt, Expr::value(Some(at)))
        .filter(Column::Id.eq(id))
        .filter(Column::DeletedAt.is_null())
        .exec(conn)
        .await?;
    if result.rows_affected != 1 {
        return Err(StoreError::Conflict);
    }
    blob::Entity::delete_by_id(id).exec(conn).await?;
    Ok(())
}
