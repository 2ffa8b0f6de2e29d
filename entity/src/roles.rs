//! `roles`: RBAC roles ranked by `level` (0..=100); system roles cannot be deleted.

use sea_orm::entity::prelude::*;

/// A role: a named set of permissions at a level.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "roles")]
pub struct Model {
    /// The role's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The role's unique name (e.g. `admin`).
    #[sea_orm(unique)]
    pub name: String,
    /// What the role is for.
    pub description: Option<String>,
    /// 0 (least privileged) to 100, enforced by a CHECK constraint.
    pub level: i32,
    /// A seeded role: its permissions are fixed and it cannot be deleted.
    pub is_system: bool,
    /// When it was created.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// The permissions it grants.
    #[sea_orm(has_many, via = "role_permissions")]
    pub permissions: HasMany<super::permissions::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
