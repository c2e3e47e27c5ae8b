//! Consents (SPEC §7, PIPL 15 and 44): the ledger, one row per change of a subject's
//! consent to a purpose (given, withdrawn, narrowed: when, how, by which request or
//! system), never updated; and `source_changes`, one row per request and data source
//! for the changes a request makes in the company's systems (a consent withdrawal
//! pushed to the sources that use the purpose).

use sea_orm_migration::prelude::*;

use crate::columns::{index, int, text, text_null, ts, ts_null, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Consents {
    Table,
    Id,
    SubjectId,
    Purpose,
    State,
    Scope,
    Method,
    PolicyVersion,
    RequestId,
    RecordedBy,
    At,
    RecordedAt,
}

#[derive(DeriveIden)]
enum SourceChanges {
    Table,
    RequestId,
    Source,
    Status,
    Outcome,
    Changes,
    Attempts,
    ErrorCode,
    Error,
    ConfirmedBy,
    Note,
    StartedAt,
    FinishedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Requests {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Subjects {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Consents::Table)
                    .col(uuid(Consents::Id).primary_key())
                    .col(uuid(Consents::SubjectId))
                    .col(text(Consents::Purpose))
                    .col(text(Consents::State))
                    .col(text_null(Consents::Scope))
                    .col(text(Consents::Method))
                    .col(text_null(Consents::PolicyVersion))
                    .col(ColumnDef::new(Consents::RequestId).uuid().null())
                    .col(ColumnDef::new(Consents::RecordedBy).uuid().null())
                    .col(ts(Consents::At))
                    .col(ts(Consents::RecordedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Consents::Table, Consents::SubjectId)
                            .to(Subjects::Table, Subjects::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "consents_subject_purpose_at",
                Consents::Table,
                &["subject_id", "purpose", "at"],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SourceChanges::Table)
                    .col(uuid(SourceChanges::RequestId))
                    .col(text(SourceChanges::Source))
                    .col(text(SourceChanges::Status))
                    .col(text_null(SourceChanges::Outcome))
                    .col(
                        ColumnDef::new(SourceChanges::Changes)
                            .json_binary()
                            .not_null(),
                    )
                    .col(int(SourceChanges::Attempts))
                    .col(text_null(SourceChanges::ErrorCode))
                    .col(text_null(SourceChanges::Error))
                    .col(ColumnDef::new(SourceChanges::ConfirmedBy).uuid().null())
                    .col(text_null(SourceChanges::Note))
                    .col(ts_null(SourceChanges::StartedAt))
                    .col(ts_null(SourceChanges::FinishedAt))
                    .col(ts(SourceChanges::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(SourceChanges::RequestId)
                            .col(SourceChanges::Source),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SourceChanges::Table, SourceChanges::RequestId)
                            .to(Requests::Table, Requests::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "source_changes_status",
                SourceChanges::Table,
                &["status"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SourceChanges::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Consents::Table).to_owned())
            .await
    }
}
