//! `role_permissions`: role to permission grants, removed with either side.

use super::{permissions::Permissions, roles::Roles};
use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveIden, Clone)]
pub enum RolePermissions {
    Table,
    RoleId,
    PermissionId,
    CreatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    let t = RolePermissions::Table;
    manager
        .create_table(
            create_table(db, t.clone())
                .col(ColumnDef::new(RolePermissions::RoleId).uuid().not_null())
                .col(
                    ColumnDef::new(RolePermissions::PermissionId)
                        .uuid()
                        .not_null(),
                )
                .col(timestamp_utc_now(db, RolePermissions::CreatedAt))
                .primary_key(
                    Index::create()
                        .name("pk-role_permissions")
                        .col(RolePermissions::RoleId)
                        .col(RolePermissions::PermissionId),
                )
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    RolePermissions::RoleId,
                    Roles::Table,
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    RolePermissions::PermissionId,
                    Permissions::Table,
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(index(t, &[RolePermissions::PermissionId]))
        .await
}
