//! `permissions`: one row per `resource.action`.

use crate::columns::*;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum Permissions {
    Table,
    Id,
    Name,
    Resource,
    Action,
    Description,
    CreatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    manager
        .create_table(
            create_table(db, Permissions::Table)
                .col(pk_uuid(Permissions::Id))
                .col(string_len(Permissions::Name, 128))
                .col(string_len(Permissions::Resource, 64))
                .col(string_len(Permissions::Action, 64))
                .col(text_null(Permissions::Description))
                .col(timestamp_utc_now(db, Permissions::CreatedAt))
                .to_owned(),
        )
        .await?;
    create_unique_ci(manager, Permissions::Table, Permissions::Name).await?;
    manager
        .create_index(
            index(
                Permissions::Table,
                &[Permissions::Resource, Permissions::Action],
            )
            .unique()
            .to_owned(),
        )
        .await
}
