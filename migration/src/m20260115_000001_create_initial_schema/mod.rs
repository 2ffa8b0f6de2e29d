//! Seed 000, migration 001: accounts, sessions, RBAC, API keys and the basic
//! audit log. One file per table; `down` drops them in reverse order.

use sea_orm_migration::prelude::*;

pub mod api_keys;
pub mod audit_log_basic;
pub mod permissions;
pub mod role_permissions;
pub mod roles;
pub mod sessions;
pub mod user_roles;
pub mod users;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20260115_000001_create_initial_schema"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        users::create(manager).await?;
        roles::create(manager).await?;
        permissions::create(manager).await?;
        role_permissions::create(manager).await?;
        user_roles::create(manager).await?;
        sessions::create(manager).await?;
        api_keys::create(manager).await?;
        audit_log_basic::create(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            audit_log_basic::AuditLogBasic::Table.into_iden(),
            api_keys::ApiKeys::Table.into_iden(),
            sessions::Sessions::Table.into_iden(),
            user_roles::UserRoles::Table.into_iden(),
            role_permissions::RolePermissions::Table.into_iden(),
            permissions::Permissions::Table.into_iden(),
            roles::Roles::Table.into_iden(),
            users::Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
