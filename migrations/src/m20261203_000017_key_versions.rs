//! Versions of the keys the service keeps in its database, so that they can be rotated
//! (`rightsdesk keys rotate`): each rotation adds a version; the newest version whose
//! `active_from` has come signs and seals new data, and every version still verifies
//! and opens what it made. A rotation names an `active_from` a little in the future, so
//! that every running instance has read the new version before any of them uses it.
//!
//! Version 1 of each key is the value `secrets` already holds (copied on first use, not
//! here: the row in `secrets` stays, so that an instance not yet upgraded keeps using
//! the same key).

use sea_orm_migration::prelude::*;

use crate::columns::{int, text, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum KeyVersions {
    Table,
    Name,
    Version,
    Value,
    CreatedAt,
    ActiveFrom,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KeyVersions::Table)
                    .col(text(KeyVersions::Name))
                    .col(int(KeyVersions::Version))
                    .col(text(KeyVersions::Value))
                    .col(ts(KeyVersions::CreatedAt))
                    .col(ts(KeyVersions::ActiveFrom))
                    .primary_key(
                        Index::create()
                            .col(KeyVersions::Name)
                            .col(KeyVersions::Version),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KeyVersions::Table).to_owned())
            .await
    }
}
