//! The outbox of notifications (every message the service sends, written in the same
//! transaction as the change that causes it) and identity-verification challenges.

use sea_orm_migration::prelude::*;

use crate::columns::{index, int, text, text_null, ts, ts_null, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Requests {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    RequestId,
    Channel,
    Recipient,
    Language,
    Template,
    Params,
    Sealed,
    DedupeKey,
    Status,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    LastError,
    SentAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Verifications {
    Table,
    Id,
    RequestId,
    Channel,
    CodeHash,
    Status,
    Attempts,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(uuid(Notifications::Id).primary_key().to_owned())
                    .col(ColumnDef::new(Notifications::RequestId).uuid().null())
                    .col(text(Notifications::Channel))
                    .col(text(Notifications::Recipient))
                    .col(text(Notifications::Language))
                    .col(text(Notifications::Template))
                    .col(
                        ColumnDef::new(Notifications::Params)
                            .json_binary()
                            .not_null(),
                    )
                    .col(text_null(Notifications::Sealed))
                    .col(text(Notifications::DedupeKey).unique_key().to_owned())
                    .col(text(Notifications::Status))
                    .col(int(Notifications::Attempts))
                    .col(ts(Notifications::NextAttemptAt))
                    .col(ts_null(Notifications::LeaseUntil))
                    .col(text_null(Notifications::LastError))
                    .col(ts_null(Notifications::SentAt))
                    .col(ts(Notifications::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Notifications::Table, Notifications::RequestId)
                            .to(Requests::Table, Requests::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "notifications_due",
                Notifications::Table,
                &["status", "next_attempt_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "notifications_request",
                Notifications::Table,
                &["request_id", "created_at"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Verifications::Table)
                    .col(uuid(Verifications::Id).primary_key().to_owned())
                    .col(uuid(Verifications::RequestId))
                    .col(text(Verifications::Channel))
                    .col(text(Verifications::CodeHash))
                    .col(text(Verifications::Status))
                    .col(int(Verifications::Attempts))
                    .col(ts(Verifications::ExpiresAt))
                    .col(ts_null(Verifications::UsedAt))
                    .col(ts(Verifications::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Verifications::Table, Verifications::RequestId)
                            .to(Requests::Table, Requests::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "verifications_request",
                Verifications::Table,
                &["request_id", "created_at"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Verifications::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Notifications::Table).to_owned())
            .await
    }
}
