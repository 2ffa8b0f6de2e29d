//! gatehouse's schema as code-defined migrations for PostgreSQL,
//! MySQL/MariaDB and SQLite, and the one migration CLI behind
//! `sea-orm-cli migrate`, `cargo run -p gatehouse-migration` and `gatehouse migrate`.
//!
//! # One migrator for the whole application
//!
//! An application puts gatehouse's migrations first in its own `Migrator`
//! with [`migrations()`] and appends its own:
//!
//! ```
//! use gatehouse_migration::{MigrationTrait, MigratorTrait};
//!
//! mod m20260301_000001_create_posts {
//!     use gatehouse_migration::columns::{create_table, foreign_key, timestamp_utc_now};
//!     use sea_orm_migration::{prelude::*, schema::*};
//!
//!     #[derive(DeriveMigrationName)]
//!     pub struct Migration;
//!
//!     #[async_trait::async_trait]
//!     impl MigrationTrait for Migration {
//!         async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
//!             let db = manager.get_database_backend();
//!             manager
//!                 .create_table(
//!                     create_table(db, Posts::Table)
//!                         .col(pk_uuid(Posts::Id))
//!                         .col(uuid(Posts::UserId))
//!                         .col(string_len(Posts::Title, 200))
//!                         .col(timestamp_utc_now(db, Posts::CreatedAt))
//!                         .foreign_key(&mut foreign_key(
//!                             Posts::Table,
//!                             Posts::UserId,
//!                             Alias::new("users"),
//!                             ForeignKeyAction::Cascade,
//!                         ))
//!                         .to_owned(),
//!                 )
//!                 .await
//!         }
//!
//!         async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
//!             manager.drop_table(Table::drop().table(Posts::Table).to_owned()).await
//!         }
//!     }
//!
//!     #[derive(DeriveIden, Clone)]
//!     enum Posts {
//!         Table,
//!         Id,
//!         UserId,
//!         Title,
//!         CreatedAt,
//!     }
//! }
//!
//! /// gatehouse's migrations, then the application's.
//! pub struct AppMigrator;
//!
//! impl MigratorTrait for AppMigrator {
//!     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!         let mut migrations = gatehouse_migration::migrations();
//!         migrations.push(Box::new(m20260301_000001_create_posts::Migration));
//!         migrations
//!     }
//! }
//!
//! assert_eq!(
//!     AppMigrator::migrations().len(),
//!     gatehouse_migration::Migrator::migrations().len() + 1
//! );
//! ```
//!
//! The application's `migration/src/main.rs` is then one line,
//! `gatehouse_migration::cli::run::<migration::AppMigrator>()` (feature `cli`),
//! and `migrate status`, `verify`, `sql`, `up --dry-run`, `baseline`, `repair`
//! and `create` cover every migration of the application; [`runner::Runner`]
//! runs them from code.

#![warn(missing_docs)]

// The `migrate create` template names the column helpers as
// `gatehouse_migration::columns`, which then resolves here too.
extern crate self as gatehouse_migration;

pub use sea_orm_migration::prelude::*;

#[cfg(feature = "cli")]
pub mod cli;
pub mod columns;
pub mod read_only;
pub mod redact;
pub mod render;
pub mod runner;

mod m20260115_000001_create_initial_schema;
mod m20260115_000002_seed_default_rbac;
mod m20260115_000003_create_security_enhancements;
mod m20260115_000004_add_session_security;
mod m20260115_000005_seed_data_classification;
mod m20261121_000001_add_api_key_rate_window;
mod m20261121_000002_add_session_cleanup_indexes;
mod m20261121_000003_partition_audit_logs;
mod m20261201_000001_fold_identities;
mod m20261201_000002_add_login_throttles;
mod m20261201_000003_record_backup_code_keys;
mod m20261207_000001_allow_unlimited_api_keys;

/// gatehouse's migrations alone: what `gatehouse migrate` and the
/// `gatehouse-migration` binary run. An application that adds its own
/// migrations builds its migrator from [`migrations()`] instead.
pub struct Migrator;

/// gatehouse's migrations, oldest first: the start of an application's
/// `MigratorTrait::migrations()`, before the application's own (see the
/// crate documentation for an example). Their names never change.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
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
        Box::new(m20261207_000001_allow_unlimited_api_keys::Migration),
    ]
}

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        migrations()
    }
}
