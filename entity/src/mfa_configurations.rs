//! `mfa_configurations`: one TOTP setup per user, secret encrypted at rest,
//! with the last accepted time step as replay guard.

use super::sea_orm_active_enums::MfaMethod;
use sea_orm::entity::prelude::*;

/// The TOTP set-up of one user.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_configurations")]
pub struct Model {
    /// The configuration's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The user; at most one configuration each.
    #[sea_orm(unique)]
    pub user_id: Uuid,
    /// The second factor method.
    pub method: MfaMethod,
    /// AES-GCM nonce and ciphertext of the TOTP secret, base64.
    pub secret_encrypted: String,
    /// The `data` key the secret is encrypted under.
    pub encryption_key_id: Option<Uuid>,
    /// Whether sign-in asks for the second factor.
    pub is_enabled: bool,
    /// Whether a first code confirmed the enrollment.
    pub is_verified: bool,
    /// When it was confirmed.
    pub verified_at: Option<DateTimeUtc>,
    /// Highest TOTP time step accepted so far; a code at or below it is a replay.
    pub last_used_step: Option<i64>,
    /// When a code was last accepted.
    pub last_used_at: Option<DateTimeUtc>,
    /// When enrollment started.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// The user.
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::users::Entity>,
    /// The data key version the secret is encrypted under.
    #[sea_orm(
        belongs_to,
        from = "encryption_key_id",
        to = "id",
        on_delete = "Restrict"
    )]
    pub encryption_key: BelongsTo<Option<super::encryption_keys::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
