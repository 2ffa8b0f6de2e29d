//! `user_roles`: role grants with the granting user and an optional expiry.

use super::{roles::Roles, users::Users};
use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveIden, Clone)]
pub enum UserRoles {
    Table,
    UserId,
    RoleId,
    GrantedBy,
    GrantedAt,
    ExpiresAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    let t = UserRoles::Table;
    manager
        .create_table(
            create_table(db, t.clone())
                .col(ColumnDef::new(UserRoles::UserId).uuid().not_null())
                .col(ColumnDef::new(UserRoles::RoleId).uuid().not_null())
                .col(ColumnDef::new(UserRoles::GrantedBy).uuid().null())
                .col(timestamp_utc_now(db, UserRoles::GrantedAt))
                .col(timestamp_utc_null(db, UserRoles::ExpiresAt))
                .primary_key(
                    Index::create()
                        .name("pk-user_roles")
                        .col(UserRoles::UserId)
                        .col(UserRoles::RoleId),
                )
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    UserRoles::UserId,
                    Users::Table,
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    UserRoles::RoleId,
                    Roles::Table,
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    UserRoles::GrantedBy,
                    Users::Table,
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(index(t.clone(), &[UserRoles::RoleId]))
        .await?;
    manager
        .create_index(index(t.clone(), &[UserRoles::GrantedBy]))
        .await?;
    manager
        .create_index(index(t, &[UserRoles::ExpiresAt]))
        .await
}
