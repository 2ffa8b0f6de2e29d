//! Seed 000's default RBAC: four system roles, ten permissions and the grants
//! its verification expects (superadmin 10, admin 9, moderator 2, user 3).
//!
//! Frozen data: fixed ids, so `down` removes exactly these rows and the
//! statements are the same on every run. Application code gets the same
//! defaults from `gatehouse::seed`, which evolves; this migration does not.

use crate::m20260115_000001_create_initial_schema::{
    permissions::Permissions, role_permissions::RolePermissions, roles::Roles,
};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::Uuid;

/// (id, name, level, description); every default role is a system role.
const ROLES: [(&str, &str, i32, &str); 4] = [
    (
        "019bbef3-b000-7000-8000-000100000001",
        "superadmin",
        100,
        "Full control, including system settings",
    ),
    (
        "019bbef3-b000-7000-8000-000100000002",
        "admin",
        50,
        "Manages users, roles, API keys and audit",
    ),
    (
        "019bbef3-b000-7000-8000-000100000003",
        "moderator",
        10,
        "Reads users and the audit trail",
    ),
    (
        "019bbef3-b000-7000-8000-000100000004",
        "user",
        0,
        "Regular account",
    ),
];

/// (id, resource, action, description)
const PERMISSIONS: [(&str, &str, &str, &str); 10] = [
    (
        "019bbef3-b000-7000-8000-000200000001",
        "users",
        "create",
        "Create user accounts",
    ),
    (
        "019bbef3-b000-7000-8000-000200000002",
        "users",
        "read",
        "Read user accounts",
    ),
    (
        "019bbef3-b000-7000-8000-000200000003",
        "users",
        "update",
        "Update user accounts",
    ),
    (
        "019bbef3-b000-7000-8000-000200000004",
        "users",
        "delete",
        "Delete user accounts",
    ),
    (
        "019bbef3-b000-7000-8000-000200000005",
        "roles",
        "read",
        "Read roles and permissions",
    ),
    (
        "019bbef3-b000-7000-8000-000200000006",
        "roles",
        "manage",
        "Grant, revoke and edit roles",
    ),
    (
        "019bbef3-b000-7000-8000-000200000007",
        "api_keys",
        "create",
        "Issue API keys",
    ),
    (
        "019bbef3-b000-7000-8000-000200000008",
        "api_keys",
        "revoke",
        "Revoke API keys",
    ),
    (
        "019bbef3-b000-7000-8000-000200000009",
        "audit",
        "read",
        "Read audit logs",
    ),
    (
        "019bbef3-b000-7000-8000-00020000000a",
        "system",
        "admin",
        "Change system settings",
    ),
];

/// Role name to the permission names it grants.
const GRANTS: [(&str, &[&str]); 4] = [
    (
        "superadmin",
        &[
            "users.create",
            "users.read",
            "users.update",
            "users.delete",
            "roles.read",
            "roles.manage",
            "api_keys.create",
            "api_keys.revoke",
            "audit.read",
            "system.admin",
        ],
    ),
    (
        "admin",
        &[
            "users.create",
            "users.read",
            "users.update",
            "users.delete",
            "roles.read",
            "roles.manage",
            "api_keys.create",
            "api_keys.revoke",
            "audit.read",
        ],
    ),
    ("moderator", &["users.read", "audit.read"]),
    (
        "user",
        &["users.read", "api_keys.create", "api_keys.revoke"],
    ),
];

fn id(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("frozen seed ids are valid UUIDs")
}

fn role_id(name: &str) -> Uuid {
    let (rid, ..) = ROLES
        .iter()
        .find(|r| r.1 == name)
        .expect("granted role is seeded");
    id(rid)
}

fn permission_id(name: &str) -> Uuid {
    let (pid, ..) = PERMISSIONS
        .iter()
        .find(|p| format!("{}.{}", p.1, p.2) == name)
        .expect("granted permission is seeded");
    id(pid)
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut roles = Query::insert();
        roles.into_table(Roles::Table).columns([
            Roles::Id,
            Roles::Name,
            Roles::Level,
            Roles::Description,
            Roles::IsSystem,
        ]);
        for (rid, name, level, description) in ROLES {
            roles.values_panic([
                id(rid).into(),
                name.into(),
                level.into(),
                description.into(),
                true.into(),
            ]);
        }
        manager.exec_stmt(roles).await?;

        let mut permissions = Query::insert();
        permissions.into_table(Permissions::Table).columns([
            Permissions::Id,
            Permissions::Name,
            Permissions::Resource,
            Permissions::Action,
            Permissions::Description,
        ]);
        for (pid, resource, action, description) in PERMISSIONS {
            let name = format!("{resource}.{action}");
            permissions.values_panic([
                id(pid).into(),
                name.into(),
                resource.into(),
                action.into(),
                description.into(),
            ]);
        }
        manager.exec_stmt(permissions).await?;

        let mut grants = Query::insert();
        grants
            .into_table(RolePermissions::Table)
            .columns([RolePermissions::RoleId, RolePermissions::PermissionId]);
        for (role, permission_names) in GRANTS {
            for permission in permission_names {
                grants.values_panic([role_id(role).into(), permission_id(permission).into()]);
            }
        }
        manager.exec_stmt(grants).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let role_ids: Vec<Uuid> = ROLES.iter().map(|r| id(r.0)).collect();
        let permission_ids: Vec<Uuid> = PERMISSIONS.iter().map(|p| id(p.0)).collect();
        manager
            .exec_stmt(
                Query::delete()
                    .from_table(RolePermissions::Table)
                    .cond_where(
                        Condition::any()
                            .add(Expr::col(RolePermissions::RoleId).is_in(role_ids.clone()))
                            .add(
                                Expr::col(RolePermissions::PermissionId)
                                    .is_in(permission_ids.clone()),
                            ),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::delete()
                    .from_table(Permissions::Table)
                    .and_where(Expr::col(Permissions::Id).is_in(permission_ids))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::delete()
                    .from_table(Roles::Table)
                    .and_where(Expr::col(Roles::Id).is_in(role_ids))
                    .to_owned(),
            )
            .await
    }
}
