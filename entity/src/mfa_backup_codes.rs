//! `mfa_backup_codes`: single-use recovery codes (ten per user), stored hashed.

use sea_orm::entity::prelude::*;

/// One backup code of a user, stored as a keyed digest.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_backup_codes")]
pub struct Model {
    /// The code's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The code's owner.
    pub user_id: Uuid,
    /// HMAC-SHA256 (hex) of the normalized code; the code itself is never stored.
    pub code_hash: String,
    /// The `session` (HMAC) key the digest was made with; NULL for codes
    /// issued before keys were recorded per code.
    pub encryption_key_id: Option<Uuid>,
    /// Set once, when the code is consumed.
    pub used_at: Option<DateTimeUtc>,
    /// When the code was issued.
    pub created_at: DateTimeUtc,
    /// The code's owner.
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::users::Entity>,
    /// The HMAC key version the digest was made with.
    #[sea_orm(
        belongs_to,
        from = "encryption_key_id",
        to = "id",
        on_delete = "Restrict"
    )]
    pub encryption_key: BelongsTo<Option<super::encryption_keys::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
