//! gatehouse's schema as code-defined migrations for PostgreSQL,
//! MySQL/MariaDB and SQLite, and the one migration CLI behind
//! `sea-orm-cli migrate`, `cargo run -p gatehouse-migration` and `gatehouse migrate`.

pub use sea_orm_migration::prelude::*;

#[cfg(feature = "cli")]
pub mod cli;
mod columns;
pub mod redact;
pub mod render;
pub mod runner;

pub mod m20260115_000001_create_initial_schema;
mod m20260115_000002_seed_default_rbac;
pub mod m20260115_000003_create_security_enhancements;
mod m20260115_000004_add_session_security;
mod m20260115_000005_seed_data_classification;
mod m20261121_000001_add_api_key_rate_window;
mod m20261121_000002_add_session_cleanup_indexes;
mod m20261121_000003_partition_audit_logs;
mod m20261201_000001_fold_identities;
mod m20261201_000002_add_login_throttles;
mod m20261201_000003_record_backup_code_keys;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260115_000001_create_initial_schema::Migration),
            Box::new(m20260115_000002_seed_default_rbac::Migration),
            Box::new(m20260115_000003_create_security_enhancements::Migration),
            Box::new(m20260115_000004_add_session_security::Migration),
            Box::new(m20260115_000005_seed_data_classification::Migration),
            Box::new(m20261121_000001_add_api_key_rate_window::Migration),
            Box::new(m20261121_000002_add_session_cleanup_indexes::Migration),
            Box::new(m20261121_000003_partition_audit_logs::Migration),
            Box::new(m20261201_000001_fold_identities::Migration),
            Box::new(m20261201_000002_add_login_throttles::Migration),
            Box::new(m20261201_000003_record_backup_code_keys::Migration),
        ]
    }
}
