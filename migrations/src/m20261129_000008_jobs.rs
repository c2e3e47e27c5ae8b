//! The worker's durable job table: periodic work (expiry, purges, the deadline sweep)
//! and one-off work, each claimed under a lease by one worker at a time, retried with
//! back-off. Notifications record which worker holds their lease too.

use sea_orm_migration::prelude::*;

use crate::columns::{index, int, text, text_null, ts, ts_null, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    Key,
    Payload,
    Status,
    RunAt,
    Attempts,
    MaxAttempts,
    EverySecs,
    LeaseUntil,
    LeasedBy,
    LastError,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    LeasedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(uuid(Jobs::Id).primary_key().to_owned())
                    .col(text(Jobs::Kind))
                    .col(text(Jobs::Key).unique_key().to_owned())
                    .col(ColumnDef::new(Jobs::Payload).json_binary().not_null())
                    .col(text(Jobs::Status))
                    .col(ts(Jobs::RunAt))
                    .col(int(Jobs::Attempts))
                    .col(int(Jobs::MaxAttempts))
                    .col(ColumnDef::new(Jobs::EverySecs).big_integer().null())
                    .col(ts_null(Jobs::LeaseUntil))
                    .col(text_null(Jobs::LeasedBy))
                    .col(text_null(Jobs::LastError))
                    .col(ts(Jobs::CreatedAt))
                    .col(ts(Jobs::UpdatedAt))
                    .col(ts_null(Jobs::FinishedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("jobs_due", Jobs::Table, &["status", "run_at"]))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .add_column(text_null(Notifications::LeasedBy))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .drop_column(Notifications::LeasedBy)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Jobs::Table).to_owned())
            .await
    }
}
