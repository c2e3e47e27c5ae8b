//! Bundles (SPEC §7): the zip made for an access, copy or portability request, stored
//! encrypted under `storage_key`, and the signed links that download it.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect};

use crate::StoreError;

/// Where a bundle stands.
pub mod status {
    /// A worker is writing it.
    pub const BUILDING: &str = "building";
    /// Stored; can be delivered.
    pub const READY: &str = "ready";
    /// Writing it failed (`error`); the job tries again.
    pub const FAILED: &str = "failed";
    /// A newer bundle of the same request replaced it before it was delivered; deleted.
    pub const SUPERSEDED: &str = "superseded";
    /// Deleted from storage after it expired.
    pub const PURGED: &str = "purged";
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "bundles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub request_id: Uuid,
    pub status: String,
    pub storage_key: String,
    /// Bytes of the zip (as downloaded).
    pub size: Option<i64>,
    /// SHA-256 of the zip, hex.
    pub sha256: Option<String>,
    /// Entries in the zip.
    pub files: Option<i32>,
    pub records: Option<i64>,
    /// The zip's password, sealed for this bundle (absent: not password-protected).
    pub password_sealed: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub purged_at: Option<DateTime<Utc>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub async fn insert(conn: &impl ConnectionTrait, row: Model) -> Result<(), StoreError> {
    Entity::insert(ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn save(conn: &impl ConnectionTrait, row: Model) -> Result<(), StoreError> {
    ActiveModel::from(row).reset_all().update(conn).await?;
    Ok(())
}

pub async fn get(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find_by_id(id).one(conn).await?)
}

/// The bundles of a request, newest first.
pub async fn for_request(
    conn: &impl ConnectionTrait,
    request_id: Uuid,
) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::RequestId.eq(request_id))
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .all(conn)
        .await?)
}

/// Ready bundles whose time is up at `now`, at most `limit`.
pub async fn expired(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::Status.eq(status::READY))
        .filter(Column::ExpiresAt.lte(now))
        .order_by_asc(Column::ExpiresAt)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Signed links to a bundle.
pub mod links {
    use super::*;

    /// For whom a link was made.
    pub mod audience {
        /// The requester, in the completion notice.
        pub const REQUESTER: &str = "requester";
        /// The recipient a portability requester named.
        pub const RECIPIENT: &str = "recipient";
    }

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "download_links")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub bundle_id: Uuid,
        pub request_id: Uuid,
        pub audience: String,
        pub max_uses: i32,
        pub uses: i32,
        pub expires_at: DateTime<Utc>,
        pub created_at: DateTime<Utc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    pub async fn insert(conn: &impl ConnectionTrait, row: Model) -> Result<(), StoreError> {
        Entity::insert(ActiveModel::from(row))
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    pub async fn get(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, StoreError> {
        Ok(Entity::find_by_id(id).one(conn).await?)
    }

    /// The links to the bundles of a request, oldest first.
    pub async fn for_request(
        conn: &impl ConnectionTrait,
        request_id: Uuid,
    ) -> Result<Vec<Model>, StoreError> {
        Ok(Entity::find()
            .filter(Column::RequestId.eq(request_id))
            .order_by_asc(Column::CreatedAt)
            .order_by_asc(Column::Id)
            .all(conn)
            .await?)
    }

    /// Counts one use of link `id` when it has uses left: false when it has none (two
    /// downloads at once cannot both take the last use).
    pub async fn take_use(conn: &impl ConnectionTrait, id: Uuid) -> Result<bool, StoreError> {
        let result = Entity::update_many()
            .col_expr(Column::Uses, Expr::col(Column::Uses).add(1))
            .filter(Column::Id.eq(id))
            .filter(Expr::col(Column::Uses).lt(Expr::col(Column::MaxUses)))
            .exec(conn)
            .await?;
        Ok(result.rows_affected == 1)
    }
}
