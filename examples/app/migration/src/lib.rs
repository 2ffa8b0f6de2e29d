//! One migrator for the example application: every gatehouse migration, in
//! gatehouse's order, then the application's own. `cargo run -p
//! example-app-migration -- status` (or `up`, `verify`, `sql`, `create` ...)
//! runs gatehouse's migration CLI over all of them.

pub use sea_orm_migration::prelude::*;

mod m20270101_000001_create_posts;

/// gatehouse's migrations followed by the application's.
pub struct AppMigrator;

#[async_trait::async_trait]
impl MigratorTrait for AppMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = gatehouse_migration::migrations();
        migrations.push(Box::new(m20270101_000001_create_posts::Migration));
        migrations
    }
}
