//! `password_history`: earlier password hashes, to refuse reuse of the last twelve.

use sea_orm::entity::prelude::*;

/// A former password of a user.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "password_history")]
pub struct Model {
    /// The entry's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// Argon2id PHC string of a former password.
    pub password_hash: String,
    /// Who made the change: the user, an administrator, or NULL for a reset.
    pub changed_by: Option<Uuid>,
    /// Why it changed (`change` or `reset`).
    pub change_reason: Option<String>,
    /// When it was replaced.
    pub created_at: DateTimeUtc,
    /// The user.
    #[sea_orm(
        belongs_to,
        relation_enum = "User",
        from = "user_id",
        to = "id",
        on_delete = "Cascade"
    )]
    pub user: BelongsTo<super::users::Entity>,
    /// Who made the change.
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
