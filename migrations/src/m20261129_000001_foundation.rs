//! The foundation: officers, subjects, requests, their hash-chained events, comments,
//! idempotency records and generated service secrets.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Officers {
    Table,
    Id,
    Username,
    DisplayName,
    Email,
    PasswordHash,
    Roles,
    Active,
    FailedLogins,
    LockedUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Subjects {
    Table,
    Id,
    AccountId,
    Email,
    Phone,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Requests {
    Table,
    Id,
    Reference,
    Kind,
    State,
    IsOpen,
    Channel,
    Language,
    RequesterName,
    RequesterEmail,
    RequesterPhone,
    Details,
    SubjectId,
    AssigneeId,
    RelatedRequestId,
    ReceivedAt,
    ClockStartedAt,
    DueDate,
    TimeZone,
    DeadlinePack,
    DeadlinePackVersion,
    TokenHash,
    EventSeq,
    HeadHash,
    CreatedAt,
    UpdatedAt,
    ClosedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    RequestId,
    Seq,
    At,
    Actor,
    EventType,
    Data,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum Comments {
    Table,
    Id,
    RequestId,
    AuthorId,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Scope,
    Key,
    Fingerprint,
    Response,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Secrets {
    Table,
    Name,
    Value,
    CreatedAt,
}

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string().not_null().to_owned()
}

fn text_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string().null().to_owned()
}

fn index(name: &str, table: impl IntoIden, cols: &[&'static str]) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for c in cols {
        idx.col(Alias::new(*c));
    }
    idx.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Officers::Table)
                    .col(ColumnDef::new(Officers::Id).uuid().not_null().primary_key())
                    .col(text(Officers::Username).unique_key().to_owned())
                    .col(text(Officers::DisplayName))
                    .col(text_null(Officers::Email))
                    .col(text(Officers::PasswordHash))
                    .col(text(Officers::Roles))
                    .col(ColumnDef::new(Officers::Active).boolean().not_null())
                    .col(
                        ColumnDef::new(Officers::FailedLogins)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Officers::LockedUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ts(Officers::CreatedAt))
                    .col(ts(Officers::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Subjects::Table)
                    .col(ColumnDef::new(Subjects::Id).uuid().not_null().primary_key())
                    .col(text_null(Subjects::AccountId))
                    .col(text_null(Subjects::Email))
                    .col(text_null(Subjects::Phone))
                    .col(ts(Subjects::CreatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("subjects_account_id", "account_id"),
            ("subjects_email", "email"),
            ("subjects_phone", "phone"),
        ] {
            manager
                .create_index(index(name, Subjects::Table, &[col]))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Requests::Table)
                    .col(ColumnDef::new(Requests::Id).uuid().not_null().primary_key())
                    .col(text(Requests::Reference).unique_key().to_owned())
                    .col(text(Requests::Kind))
                    .col(text(Requests::State))
                    .col(ColumnDef::new(Requests::IsOpen).boolean().not_null())
                    .col(text(Requests::Channel))
                    .col(text(Requests::Language))
                    .col(text(Requests::RequesterName))
                    .col(text_null(Requests::RequesterEmail))
                    .col(text_null(Requests::RequesterPhone))
                    .col(ColumnDef::new(Requests::Details).json_binary().not_null())
                    .col(ColumnDef::new(Requests::SubjectId).uuid().null())
                    .col(ColumnDef::new(Requests::AssigneeId).uuid().null())
                    .col(ColumnDef::new(Requests::RelatedRequestId).uuid().null())
                    .col(ts(Requests::ReceivedAt))
                    .col(
                        ColumnDef::new(Requests::ClockStartedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(Requests::DueDate).date().not_null())
                    .col(text(Requests::TimeZone))
                    .col(text(Requests::DeadlinePack))
                    .col(
                        ColumnDef::new(Requests::DeadlinePackVersion)
                            .integer()
                            .not_null(),
                    )
                    .col(text(Requests::TokenHash))
                    .col(ColumnDef::new(Requests::EventSeq).big_integer().not_null())
                    .col(text(Requests::HeadHash))
                    .col(ts(Requests::CreatedAt))
                    .col(ts(Requests::UpdatedAt))
                    .col(
                        ColumnDef::new(Requests::ClosedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Requests::Table, Requests::SubjectId)
                            .to(Subjects::Table, Subjects::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Requests::Table, Requests::AssigneeId)
                            .to(Officers::Table, Officers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The queue is always ordered by (due_date, id); each filter has an index
        // that yields rows in that order, so a page reads ~limit rows.
        for (name, cols) in [
            ("requests_due", &["due_date", "id"][..]),
            ("requests_open_due", &["is_open", "due_date", "id"][..]),
            ("requests_state_due", &["state", "due_date", "id"][..]),
            ("requests_kind_due", &["kind", "due_date", "id"][..]),
            (
                "requests_assignee_due",
                &["assignee_id", "due_date", "id"][..],
            ),
            ("requests_requester_email", &["requester_email"][..]),
            ("requests_requester_phone", &["requester_phone"][..]),
        ] {
            manager
                .create_index(index(name, Requests::Table, cols))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(ColumnDef::new(Events::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Events::RequestId).uuid().not_null())
                    .col(ColumnDef::new(Events::Seq).big_integer().not_null())
                    .col(ts(Events::At))
                    .col(text(Events::Actor))
                    .col(text(Events::EventType))
                    .col(ColumnDef::new(Events::Data).json_binary().not_null())
                    .col(text(Events::PrevHash))
                    .col(text(Events::Hash))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Events::Table, Events::RequestId)
                            .to(Requests::Table, Requests::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("events_request_seq", Events::Table, &["request_id", "seq"])
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Comments::Table)
                    .col(ColumnDef::new(Comments::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Comments::RequestId).uuid().not_null())
                    .col(ColumnDef::new(Comments::AuthorId).uuid().not_null())
                    .col(ColumnDef::new(Comments::Body).text().not_null())
                    .col(ts(Comments::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Comments::Table, Comments::RequestId)
                            .to(Requests::Table, Requests::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Comments::Table, Comments::AuthorId)
                            .to(Officers::Table, Officers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "comments_request",
                Comments::Table,
                &["request_id", "created_at"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(text(IdempotencyKeys::Scope))
                    .col(text(IdempotencyKeys::Key))
                    .col(text(IdempotencyKeys::Fingerprint))
                    .col(
                        ColumnDef::new(IdempotencyKeys::Response)
                            .json_binary()
                            .not_null(),
                    )
                    .col(ts(IdempotencyKeys::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::Scope)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Secrets::Table)
                    .col(
                        ColumnDef::new(Secrets::Name)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(text(Secrets::Value))
                    .col(ts(Secrets::CreatedAt))
                    .to_owned(),
            )
            .await?;

        // The event log is append-only: the database itself refuses changes.
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN RAISE EXCEPTION 'events are append-only'; END $$",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events \
                     FOR EACH ROW EXECUTE FUNCTION events_append_only()",
                )
                .await?;
            }
            DbBackend::Sqlite => {
                db.execute_unprepared(
                    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events \
                     BEGIN SELECT RAISE(ABORT, 'events are append-only'); END",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events \
                     BEGIN SELECT RAISE(ABORT, 'events are append-only'); END",
                )
                .await?;
            }
            other => {
                return Err(DbErr::Migration(format!(
                    "unsupported database backend {other:?}"
                )));
            }
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "the foundation migration is not reversible: restore a backup instead".to_owned(),
        ))
    }
}
