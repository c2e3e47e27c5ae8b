//! Email intake (SPEC §6): every inbound message is an `intake_messages` row (what it
//! became: a request, a reply threaded onto one, a triage item, ignored or failed, and
//! why); the raw MIME of a message waiting in triage is kept sealed in `intake_blobs`
//! until an officer converts or dismisses it; `intake_cursors` holds each polled
//! mailbox's UIDVALIDITY and last processed UID; `intake_rules` are the classification
//! rules officers add to the bundled ones; `intake_hook_signatures` remembers the
//! signatures the raw-MIME endpoint accepted, so a replayed post is refused.

use sea_orm_migration::prelude::*;

use crate::columns::{index, text, text_null, ts, ts_null, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IntakeMessages {
    Table,
    Id,
    Source,
    SourceUid,
    MessageId,
    ReceivedAt,
    FromAddress,
    Subject,
    Body,
    Status,
    Reason,
    Kind,
    Confidence,
    RequestId,
    RawSize,
    Attachments,
    HandledBy,
    HandledAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IntakeBlobs {
    Table,
    MessageId,
    KeyId,
    Nonce,
    Ciphertext,
}

#[derive(DeriveIden)]
enum IntakeCursors {
    Table,
    Mailbox,
    UidValidity,
    LastUid,
    Failures,
    NextPollAt,
    LastError,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IntakeRules {
    Table,
    Id,
    Kind,
    Terms,
    Field,
    Weight,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IntakeHookSignatures {
    Table,
    Digest,
    SeenAt,
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
                    .table(IntakeMessages::Table)
                    .col(uuid(IntakeMessages::Id).primary_key().to_owned())
                    .col(text(IntakeMessages::Source))
                    .col(
                        ColumnDef::new(IntakeMessages::SourceUid)
                            .big_integer()
                            .null(),
                    )
                    // Unique: a message seen again (another mailbox, a re-post, a
                    // UIDVALIDITY reset) is recognised by its Message-ID.
                    .col(text_null(IntakeMessages::MessageId).unique_key().to_owned())
                    .col(ts(IntakeMessages::ReceivedAt))
                    .col(text_null(IntakeMessages::FromAddress))
                    .col(text(IntakeMessages::Subject))
                    .col(ColumnDef::new(IntakeMessages::Body).text().not_null())
                    .col(text(IntakeMessages::Status))
                    .col(text_null(IntakeMessages::Reason))
                    .col(text_null(IntakeMessages::Kind))
                    .col(ColumnDef::new(IntakeMessages::Confidence).double().null())
                    .col(ColumnDef::new(IntakeMessages::RequestId).uuid().null())
                    .col(
                        ColumnDef::new(IntakeMessages::RawSize)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IntakeMessages::Attachments)
                            .json_binary()
                            .not_null(),
                    )
                    .col(ColumnDef::new(IntakeMessages::HandledBy).uuid().null())
                    .col(ts_null(IntakeMessages::HandledAt))
                    .col(ts(IntakeMessages::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(IntakeMessages::Table, IntakeMessages::RequestId)
                            .to(Requests::Table, Requests::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "intake_messages_status",
                IntakeMessages::Table,
                &["status", "received_at", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "intake_messages_request",
                IntakeMessages::Table,
                &["request_id", "received_at"],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IntakeBlobs::Table)
                    .col(uuid(IntakeBlobs::MessageId).primary_key().to_owned())
                    .col(text(IntakeBlobs::KeyId))
                    .col(ColumnDef::new(IntakeBlobs::Nonce).binary().not_null())
                    .col(ColumnDef::new(IntakeBlobs::Ciphertext).binary().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(IntakeBlobs::Table, IntakeBlobs::MessageId)
                            .to(IntakeMessages::Table, IntakeMessages::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IntakeCursors::Table)
                    .col(text(IntakeCursors::Mailbox).primary_key().to_owned())
                    .col(
                        ColumnDef::new(IntakeCursors::UidValidity)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(IntakeCursors::LastUid)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(IntakeCursors::Failures).integer().not_null())
                    .col(ts(IntakeCursors::NextPollAt))
                    .col(text_null(IntakeCursors::LastError))
                    .col(ts(IntakeCursors::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IntakeRules::Table)
                    .col(uuid(IntakeRules::Id).primary_key().to_owned())
                    .col(text(IntakeRules::Kind))
                    .col(ColumnDef::new(IntakeRules::Terms).json_binary().not_null())
                    .col(text(IntakeRules::Field))
                    .col(ColumnDef::new(IntakeRules::Weight).double().not_null())
                    .col(ColumnDef::new(IntakeRules::CreatedBy).uuid().null())
                    .col(ts(IntakeRules::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IntakeHookSignatures::Table)
                    .col(text(IntakeHookSignatures::Digest).primary_key().to_owned())
                    .col(ts(IntakeHookSignatures::SeenAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IntakeHookSignatures::Table.into_iden(),
            IntakeRules::Table.into_iden(),
            IntakeCursors::Table.into_iden(),
            IntakeBlobs::Table.into_iden(),
            IntakeMessages::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
