//! What the officer console reads beyond the queue (SPEC §10):
//! - the dashboard counts requests received and closed in the last 30 and 90 days, by
//!   the `requests_received` and `requests_closed` indexes, not by reading every request;
//! - administration keeps each data source's last check (`source_checks`, one row per
//!   check: whether it passed, what was checked and found, by whom), so the page shows
//!   when a source last answered without reaching it on every view.

use sea_orm_migration::prelude::*;

use crate::columns::{index, text, ts, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Requests {
    Table,
}

#[derive(DeriveIden)]
enum SourceChecks {
    Table,
    Id,
    Source,
    Ok,
    Items,
    CheckedBy,
    CheckedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, cols) in [
            ("requests_received", &["received_at"][..]),
            ("requests_closed", &["closed_at"][..]),
        ] {
            manager
                .create_index(index(name, Requests::Table, cols))
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(SourceChecks::Table)
                    .col(uuid(SourceChecks::Id).primary_key())
                    .col(text(SourceChecks::Source))
                    .col(ColumnDef::new(SourceChecks::Ok).boolean().not_null())
                    .col(ColumnDef::new(SourceChecks::Items).json_binary().not_null())
                    .col(uuid(SourceChecks::CheckedBy))
                    .col(ts(SourceChecks::CheckedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "source_checks_source",
                SourceChecks::Table,
                &["source", "checked_at"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SourceChecks::Table).to_owned())
            .await?;
        for name in ["requests_received", "requests_closed"] {
            manager
                .drop_index(Index::drop().name(name).table(Requests::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}
