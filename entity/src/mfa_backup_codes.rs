//! `mfa_backup_codes`: single-use recovery codes (ten per user), stored hashed.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_backup_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub code_hash: String,
    /// The `session` (HMAC) key the digest was made with; NULL for codes
    /// issued before keys were recorded per code.
    pub encryption_key_id: Option<Uuid>,
    /// Set once, when the code is consumed.
    pub used_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::users::Entity>,
    #[sea_orm(
        belongs_to,
        from = "encryption_key_id",
        to = "id",
        on_delete = "Restrict"
    )]
    pub encryption_key: BelongsTo<Option<super::encryption_keys::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
