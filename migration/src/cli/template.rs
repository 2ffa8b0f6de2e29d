//! TODO: what this migration changes, and why.

use gatehouse_migration::columns::{create_table, timestamp_utc_now};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        manager
            .create_table(
                create_table(db, Example::Table)
                    .col(pk_uuid(Example::Id))
                    .col(string_len(Example::Name, 64))
                    .col(timestamp_utc_now(db, Example::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Example::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Example {
    Table,
    Id,
    Name,
    CreatedAt,
}
