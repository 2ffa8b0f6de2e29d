//! `password_history`: earlier password hashes, to refuse reuse of the last twelve.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "password_history")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// Argon2id PHC string of a former password.
    pub password_hash: String,
    /// Who made the change: the user, an administrator, or NULL for a reset.
    pub changed_by: Option<Uuid>,
    pub change_reason: Option<String>,
    pub created_at: DateTimeUtc,
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
        relation_enum = "ChangedBy",
        from = "changed_by",
        to = "id",
        on_delete = "SetNull"
    )]
    pub changer: BelongsTo<Option<super::users::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
