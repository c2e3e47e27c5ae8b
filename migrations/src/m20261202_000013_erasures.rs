//! Erasures (SPEC §7, PIPL 47): one row per deletion or account-closure request and data
//! source: where the erasure stands, its outcome (`no_data`, `deleted`, `restricted`,
//! `backup_pending`), what it did per table, the categories kept under a retention rule
//! and until when, and when the source's backups rotate.

use sea_orm_migration::prelude::*;

use crate::columns::{index, int, text, text_null, ts, ts_null, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Erasures {
    Table,
    RequestId,
    Source,
    Status,
    Outcome,
    Tables,
    Restricted,
    RestrictedUntil,
    RestrictionEndedAt,
    BackupUntil,
    Attempts,
    ErrorCode,
    Error,
    ConfirmedBy,
    StartedAt,
    FinishedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Requests {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Erasures::Table)
                    .col(uuid(Erasures::RequestId))
                    .col(text(Erasures::Source))
                    .col(text(Erasures::Status))
                    .col(text_null(Erasures::Outcome))
                    .col(ColumnDef::new(Erasures::Tables).json_binary().not_null())
                    .col(
                        ColumnDef::new(Erasures::Restricted)
                            .json_binary()
                            .not_null(),
                    )
                    // Local dates, `YYYY-MM-DD`.
                    .col(text_null(Erasures::RestrictedUntil))
                    .col(ts_null(Erasures::RestrictionEndedAt))
                    .col(text_null(Erasures::BackupUntil))
                    .col(int(Erasures::Attempts))
                    .col(text_null(Erasures::ErrorCode))
                    .col(text_null(Erasures::Error))
                    .col(ColumnDef::new(Erasures::ConfirmedBy).uuid().null())
                    .col(ts_null(Erasures::StartedAt))
                    .col(ts_null(Erasures::FinishedAt))
                    .col(ts(Erasures::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(Erasures::RequestId)
                            .col(Erasures::Source),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Erasures::Table, Erasures::RequestId)
                            .to(Requests::Table, Requests::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The daily purge of restrictions that have ended.
        manager
            .create_index(index(
                "erasures_restricted_until",
                Erasures::Table,
                &["restricted_until"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Erasures::Table).to_owned())
            .await
    }
}
