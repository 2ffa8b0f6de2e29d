//! `roles`: `level` held to 0..=100 by a CHECK constraint.

use crate::columns::*;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum Roles {
    Table,
    Id,
    Name,
    Description,
    Level,
    IsSystem,
    CreatedAt,
    UpdatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    manager
        .create_table(
            create_table(db, Roles::Table)
                .col(pk_uuid(Roles::Id))
                .col(string_len(Roles::Name, 64))
                .col(text_null(Roles::Description))
                .col(integer(Roles::Level).default(0))
                .col(boolean(Roles::IsSystem).default(false))
                .col(timestamp_utc_now(db, Roles::CreatedAt))
                .col(timestamp_utc_now(db, Roles::UpdatedAt))
                .check(Check::from(between("roles", Roles::Level, 0, 100)))
                .to_owned(),
        )
        .await?;
    create_unique_ci(manager, Roles::Table, Roles::Name).await
}
