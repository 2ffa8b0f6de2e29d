//! `user_roles`: role grants to users, with who granted them and an optional expiry.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_roles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub role_id: Uuid,
    pub granted_by: Option<Uuid>,
    pub granted_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    #[sea_orm(
        belongs_to,
        relation_enum = "User",
        from = "user_id",
        to = "id",
        on_delete = "Cascade"
    )]
    pub user: BelongsTo<super::users::Entity>,
    #[sea_orm(
        belongs_to,
        relation_enum = "Role",
        from = "role_id",
        to = "id",
        on_delete = "Cascade"
    )]
    pub role: BelongsTo<super::roles::Entity>,
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
