//! `permissions`: fine-grained `resource.action` permissions.

use sea_orm::entity::prelude::*;

/// A permission, named `resource.action`.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "permissions")]
pub struct Model {
    /// The permission's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `resource.action`, for example `users.create`.
    #[sea_orm(unique)]
    pub name: String,
    /// The part of the name before the dot.
    pub resource: String,
    /// The part of the name after the dot.
    pub action: String,
    /// What it allows.
    pub description: Option<String>,
    /// When it was created.
    pub created_at: DateTimeUtc,
    /// The roles that grant it.
    #[sea_orm(has_many, via = "role_permissions")]
    pub roles: HasMany<super::roles::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
