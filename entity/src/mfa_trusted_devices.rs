//! `mfa_trusted_devices`: devices that may skip the second factor until they expire.

use sea_orm::entity::prelude::*;

/// A device that may skip the second factor.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_trusted_devices")]
pub struct Model {
    /// The device's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The device's owner.
    pub user_id: Uuid,
    /// SHA-256 (hex) of the device token.
    #[sea_orm(unique)]
    pub device_token_hash: String,
    /// A name for the device, shown to the owner.
    pub device_name: Option<String>,
    /// The client address it was trusted from.
    pub ip_address: Option<String>,
    /// The user agent it was trusted with.
    pub user_agent: Option<String>,
    /// When it was trusted.
    pub created_at: DateTimeUtc,
    /// When it last skipped the second factor.
    pub last_used_at: Option<DateTimeUtc>,
    /// When the trust ends.
    pub expires_at: DateTimeUtc,
    /// When the trust was revoked.
    pub revoked_at: Option<DateTimeUtc>,
    /// The owner.
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::users::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
