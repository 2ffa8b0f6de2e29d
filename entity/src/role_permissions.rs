//! `role_permissions`: which permissions each role grants.

use sea_orm::entity::prelude::*;

/// A permission granted by a role.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "role_permissions")]
pub struct Model {
    /// The role.
    #[sea_orm(primary_key, auto_increment = false)]
    pub role_id: Uuid,
    /// The permission.
    #[sea_orm(primary_key, auto_increment = false)]
    pub permission_id: Uuid,
    /// When it was added.
    pub created_at: DateTimeUtc,
    /// The role.
    #[sea_orm(belongs_to, from = "role_id", to = "id", on_delete = "Cascade")]
    pub role: BelongsTo<super::roles::Entity>,
    /// The permission.
    #[sea_orm(belongs_to, from = "permission_id", to = "id", on_delete = "Cascade")]
    pub permission: BelongsTo<super::permissions::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
