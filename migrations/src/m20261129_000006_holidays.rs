//! The working-day calendar: the days that differ from the usual week (public holidays
//! and make-up working days), and the years the table covers. The service fills in the
//! bundled years at start; `rightsdesk holidays import` adds or replaces years.

use sea_orm_migration::prelude::*;

use crate::columns::{text, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Holidays {
    Table,
    Date,
    Kind,
    Name,
}

#[derive(DeriveIden)]
enum HolidayYears {
    Table,
    Year,
    Source,
    ImportedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Holidays::Table)
                    .col(
                        ColumnDef::new(Holidays::Date)
                            .date()
                            .not_null()
                            .primary_key(),
                    )
                    .col(text(Holidays::Kind))
                    .col(text(Holidays::Name))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HolidayYears::Table)
                    .col(
                        ColumnDef::new(HolidayYears::Year)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(text(HolidayYears::Source))
                    .col(ts(HolidayYears::ImportedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(HolidayYears::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Holidays::Table).to_owned())
            .await
    }
}
