//! The working-day calendar's table: special days (`holidays`) and the years covered
//! (`holiday_years`), replaced a year at a time.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "holidays")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub date: NaiveDate,
    /// `holiday` or `workday`.
    pub kind: String,
    pub name: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A year the table covers, and where its days came from.
pub mod year {
    use chrono::{DateTime, Utc};
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "holiday_years")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub year: i32,
        /// `bundled` or the imported file's name.
        pub source: String,
        pub imported_at: DateTime<Utc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Every special day, by date.
pub async fn all(conn: &impl ConnectionTrait) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find().order_by_asc(Column::Date).all(conn).await?)
}

/// The covered years, oldest first.
pub async fn years(conn: &impl ConnectionTrait) -> Result<Vec<year::Model>, StoreError> {
    Ok(year::Entity::find()
        .order_by_asc(year::Column::Year)
        .all(conn)
        .await?)
}

/// Makes `days` the whole table for `year`, recorded as coming from `source`.
pub async fn replace_year(
    conn: &impl ConnectionTrait,
    year: i32,
    days: Vec<Model>,
    source: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (first, last) = match (
        NaiveDate::from_ymd_opt(year, 1, 1),
        NaiveDate::from_ymd_opt(year, 12, 31),
    ) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(StoreError::Config(format!("no such year {year}"))),
    };
    Entity::delete_many()
        .filter(Column::Date.between(first, last))
        .exec(conn)
        .await?;
    year::Entity::delete_by_id(year).exec(conn).await?;
    if !days.is_empty() {
        Entity::insert_many(days.into_iter().map(ActiveModel::from))
            .exec_without_returning(conn)
            .await?;
    }
    year::Entity::insert(year::ActiveModel::from(year::Model {
        year,
        source: source.to_owned(),
        imported_at: at,
    }))
    .exec_without_returning(conn)
    .await?;
    Ok(())
}
