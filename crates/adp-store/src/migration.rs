//! The one migrator for SQLite and PostgreSQL. One migration per file.

use sea_orm_migration::prelude::*;

mod m20261126_000001_admin_resources;
mod m20261126_000002_connections;
mod m20261126_000003_config_log;
mod m20261201_000004_browser_sessions;
mod m20261202_000005_lookup_indexes;

#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_admin_resources::Migration),
            Box::new(m20261126_000002_connections::Migration),
            Box::new(m20261126_000003_config_log::Migration),
            Box::new(m20261201_000004_browser_sessions::Migration),
            Box::new(m20261202_000005_lookup_indexes::Migration),
        ]
    }
}
