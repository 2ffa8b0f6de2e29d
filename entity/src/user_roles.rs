//! `user_roles`: role grants to users, with who granted them and an optional expiry.

use sea_orm::entity::prelude::*;

/// A role granted to a user.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_roles")]
pub struct Model {
    /// The user.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The role.
    #[sea_orm(primary_key, auto_increment = false)]
    pub role_id: Uuid,
    /// Who granted it; NULL for the operator or a deleted user.
    pub granted_by: Option<Uuid>,
    /// When it was granted.
    pub granted_at: DateTimeUtc,
    /// When the grant ends; NULL for never.
    pub expires_at: Option<DateTimeUtc>,
    /// The user.
    #[sea_orm(
        belongs_to,
        relation_enum = "User",
        from = "user_id",
        to = "id",
        on_delete = "Cascade"
    )]
    pub user: BelongsTo<super::users::Entity>,
    /// The role.
    #[sea_orm(
        belongs_to,
        relation_enum = "Role",
        from = "role_id",
        to = "id",
        on_delete = "Cascade"
    )]
    pub role: BelongsTo<super::roles::Entity>,
    /// The user who granted it.
    #[sea_orm(
        belongs_to,
        relation_enum = "GrantedBy",
        from = "granted_by",
        to = "id",
        on_delete = "SetNull"
    )]
    pub granter: BelongsTo<Option<super::users::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
