//! The deadline sweep reads, for each date a rule pack is on, the open requests of the
//! packs on that date due on a reminder day: `(is_open, deadline_pack, due_date, id)`
//! makes that one index range, where `requests_open_due` would also read every other
//! pack's requests due that day (packs in different time zones are on different dates
//! for much of each day).

use sea_orm_migration::prelude::*;

use crate::columns::index;

const NAME: &str = "requests_open_pack_due";

#[derive(DeriveIden)]
enum Requests {
    Table,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index(
                NAME,
                Requests::Table,
                &["is_open", "deadline_pack", "due_date", "id"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(NAME).table(Requests::Table).to_owned())
            .await
    }
}
