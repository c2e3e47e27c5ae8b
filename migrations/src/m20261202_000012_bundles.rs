//! Bundles and their download links (SPEC §7): the zip made for an access, copy or
//! portability request (`bundles`: where it is stored, encrypted; its size and SHA-256;
//! when it expires and was purged), and each signed link to it (`download_links`: for whom,
//! until when, how many uses); and where a manual source's answer is stored
//! (`collections.answer_key`).

use sea_orm_migration::prelude::*;

use crate::columns::{index, int, text, text_null, ts, ts_null, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Bundles {
    Table,
    Id,
    RequestId,
    Status,
    StorageKey,
    Size,
    Sha256,
    Files,
    Records,
    PasswordSealed,
    Error,
    CreatedAt,
    ReadyAt,
    ExpiresAt,
    PurgedAt,
}

#[derive(DeriveIden)]
enum DownloadLinks {
    Table,
    Id,
    BundleId,
    RequestId,
    Audience,
    MaxUses,
    Uses,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Collections {
    Table,
    AnswerKey,
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
                    .table(Bundles::Table)
                    .col(uuid(Bundles::Id).primary_key())
                    .col(uuid(Bundles::RequestId))
                    .col(text(Bundles::Status))
                    .col(text(Bundles::StorageKey))
                    .col(ColumnDef::new(Bundles::Size).big_integer().null())
                    .col(text_null(Bundles::Sha256))
                    .col(ColumnDef::new(Bundles::Files).integer().null())
                    .col(ColumnDef::new(Bundles::Records).big_integer().null())
                    .col(text_null(Bundles::PasswordSealed))
                    .col(text_null(Bundles::Error))
                    .col(ts(Bundles::CreatedAt))
                    .col(ts_null(Bundles::ReadyAt))
                    .col(ts_null(Bundles::ExpiresAt))
                    .col(ts_null(Bundles::PurgedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Bundles::Table, Bundles::RequestId)
                            .to(Requests::Table, Requests::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "bundles_request",
                Bundles::Table,
                &["request_id", "created_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "bundles_expiry",
                Bundles::Table,
                &["status", "expires_at"],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DownloadLinks::Table)
                    .col(uuid(DownloadLinks::Id).primary_key())
                    .col(uuid(DownloadLinks::BundleId))
                    .col(uuid(DownloadLinks::RequestId))
                    .col(text(DownloadLinks::Audience))
                    .col(int(DownloadLinks::MaxUses))
                    .col(int(DownloadLinks::Uses))
                    .col(ts(DownloadLinks::ExpiresAt))
                    .col(ts(DownloadLinks::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(DownloadLinks::Table, DownloadLinks::BundleId)
                            .to(Bundles::Table, Bundles::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "download_links_bundle",
                DownloadLinks::Table,
                &["bundle_id"],
            ))
            .await?;
        // A manual source's answer, stored sealed like a bundle.
        manager
            .alter_table(
                Table::alter()
                    .table(Collections::Table)
                    .add_column(text_null(Collections::AnswerKey))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Collections::Table)
                    .drop_column(Collections::AnswerKey)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(DownloadLinks::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Bundles::Table).to_owned())
            .await
    }
}
