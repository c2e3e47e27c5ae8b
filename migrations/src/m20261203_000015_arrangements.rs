//! Arrangements (生前安排, SPEC §2, PIPL 49): what a subject wants done with their data
//! after death — a legacy contact, per right whether relatives may exercise it, or
//! "delete everything" — recorded by the subject (logged in with the company's account)
//! or by an officer from a document received in writing. Rows are appended, never
//! changed: a subject's arrangement is their latest row.

use sea_orm_migration::prelude::*;

use crate::columns::{index, text, text_null, ts, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Arrangements {
    Table,
    Id,
    SubjectId,
    Arrangement,
    RecordedVia,
    RecordedBy,
    Note,
    RecordedAt,
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
                    .table(Arrangements::Table)
                    .col(uuid(Arrangements::Id).primary_key())
                    .col(uuid(Arrangements::SubjectId))
                    .col(
                        ColumnDef::new(Arrangements::Arrangement)
                            .json_binary()
                            .not_null(),
                    )
                    .col(text(Arrangements::RecordedVia))
                    .col(ColumnDef::new(Arrangements::RecordedBy).uuid().null())
                    .col(text_null(Arrangements::Note))
                    .col(ts(Arrangements::RecordedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Arrangements::Table, Arrangements::SubjectId)
                            .to(Subjects::Table, Subjects::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "arrangements_subject",
                Arrangements::Table,
                &["subject_id", "recorded_at"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Arrangements::Table).to_owned())
            .await
    }
}
