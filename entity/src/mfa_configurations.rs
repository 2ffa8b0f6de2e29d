//! `mfa_configurations`: one TOTP setup per user, secret encrypted at rest,
//! with the last accepted time step as replay guard.

use super::sea_orm_active_enums::MfaMethod;
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_configurations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub user_id: Uuid,
    pub method: MfaMethod,
    /// AES-GCM nonce and ciphertext of the TOTP secret, base64.
    pub secret_encrypted: String,
    /// The `data` key the secret is encrypted under.
    pub encryption_key_id: Option<Uuid>,
    pub is_enabled: bool,
    pub is_verified: bool,
    pub verified_at: Option<DateTimeUtc>,
    /// Highest TOTP time step accepted so far; a code at or below it is a replay.
    pub last_used_step: Option<i64>,
    pub last_used_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
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
