//! Fulfilment's look-ups (SPEC §7): one `collections` row per request and data source,
//! with where the look-up stands (`pending`, `running`, `answered`, `no_data`,
//! `waiting_owner`, `failed`), how often it was tried, what it found per category (counts,
//! never the data) and why it last failed.

use sea_orm_migration::prelude::*;

use crate::columns::{int, text, text_null, ts, ts_null, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Collections {
    Table,
    RequestId,
    Source,
    Status,
    Attempts,
    Records,
    ErrorCode,
    Error,
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
                    .table(Collections::Table)
                    .col(uuid(Collections::RequestId))
                    .col(text(Collections::Source))
                    .col(text(Collections::Status))
                    .col(int(Collections::Attempts))
                    .col(
                        ColumnDef::new(Collections::Records)
                            .json_binary()
                            .not_null(),
                    )
                    .col(text_null(Collections::ErrorCode))
                    .col(text_null(Collections::Error))
                    .col(ts_null(Collections::StartedAt))
                    .col(ts_null(Collections::FinishedAt))
                    .col(ts(Collections::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(Collections::RequestId)
                            .col(Collections::Source),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Collections::Table, Collections::RequestId)
                            .to(Requests::Table, Requests::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Collections::Table).to_owned())
            .await
    }
}
