//! rightsdesk's schema, one file per change. A migration that has landed is never
//! edited: later changes add a new file.

pub use sea_orm_migration::prelude::*;

mod columns;
mod m20261129_000001_foundation;
mod m20261129_000002_reference_counters;
mod m20261129_000003_notifications_and_verifications;
mod m20261129_000004_evidence;
mod m20261129_000005_acting_for;
mod m20261129_000006_holidays;
mod m20261129_000007_paused_at;
mod m20261129_000008_jobs;
mod m20261202_000009_open_pack_due;
mod m20261202_000010_intake;
mod m20261202_000011_collections;
mod m20261202_000012_bundles;
mod m20261202_000013_erasures;
mod m20261202_000014_consents;
mod m20261203_000015_arrangements;
mod m20261203_000016_console;
mod m20261203_000017_key_versions;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_foundation::Migration),
            Box::new(m20261129_000002_reference_counters::Migration),
            Box::new(m20261129_000003_notifications_and_verifications::Migration),
            Box::new(m20261129_000004_evidence::Migration),
            Box::new(m20261129_000005_acting_for::Migration),
            Box::new(m20261129_000006_holidays::Migration),
            Box::new(m20261129_000007_paused_at::Migration),
            Box::new(m20261129_000008_jobs::Migration),
            Box::new(m20261202_000009_open_pack_due::Migration),
            Box::new(m20261202_000010_intake::Migration),
            Box::new(m20261202_000011_collections::Migration),
            Box::new(m20261202_000012_bundles::Migration),
            Box::new(m20261202_000013_erasures::Migration),
            Box::new(m20261202_000014_consents::Migration),
            Box::new(m20261203_000015_arrangements::Migration),
            Box::new(m20261203_000016_console::Migration),
            Box::new(m20261203_000017_key_versions::Migration),
        ]
    }
}
