//! Evidence files attached to requests (SPEC §2): what each file is and how it was
//! reviewed, and, in a table of its own so that listing never reads them, the encrypted
//! bytes, removed on a schedule after the request closes.

use sea_orm_migration::prelude::*;

use crate::columns::{index, text, text_null, ts, ts_null, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Requests {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Evidence {
    Table,
    Id,
    RequestId,
    Kind,
    ContentType,
    FileName,
    SizeBytes,
    Sha256,
    UploadedBy,
    UploadedAt,
    Status,
    ReviewedBy,
    ReviewedAt,
    ReviewNote,
    DeletedAt,
}

#[derive(DeriveIden)]
enum EvidenceBlobs {
    Table,
    EvidenceId,
    KeyId,
    Nonce,
    Ciphertext,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Evidence::Table)
                    .col(uuid(Evidence::Id).primary_key().to_owned())
                    .col(uuid(Evidence::RequestId))
                    .col(text(Evidence::Kind))
                    .col(text(Evidence::ContentType))
                    .col(text_null(Evidence::FileName))
                    .col(ColumnDef::new(Evidence::SizeBytes).big_integer().not_null())
                    .col(text(Evidence::Sha256))
                    .col(text(Evidence::UploadedBy))
                    .col(ts(Evidence::UploadedAt))
                    .col(text(Evidence::Status))
                    .col(ColumnDef::new(Evidence::ReviewedBy).uuid().null())
                    .col(ts_null(Evidence::ReviewedAt))
                    .col(text_null(Evidence::ReviewNote))
                    .col(ts_null(Evidence::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Evidence::Table, Evidence::RequestId)
                            .to(Requests::Table, Requests::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "evidence_request",
                Evidence::Table,
                &["request_id", "uploaded_at"],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EvidenceBlobs::Table)
                    .col(uuid(EvidenceBlobs::EvidenceId).primary_key().to_owned())
                    .col(text(EvidenceBlobs::KeyId))
                    .col(ColumnDef::new(EvidenceBlobs::Nonce).blob().not_null())
                    .col(ColumnDef::new(EvidenceBlobs::Ciphertext).blob().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(EvidenceBlobs::Table, EvidenceBlobs::EvidenceId)
                            .to(Evidence::Table, Evidence::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EvidenceBlobs::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Evidence::Table).to_owned())
            .await
    }
}
