//! `api_keys`: programmatic credentials, stored as SHA-256 hashes with scopes,
//! an optional per-minute rate limit and usage tracking.

use sea_orm::entity::prelude::*;

/// An API key: its owner, digest, scopes, rate limit (if any) and usage.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// The key's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owner; the key acts with at most the owner's permissions.
    pub user_id: Uuid,
    /// A name the owner chose, to tell keys apart.
    pub name: String,
    /// Public, recognisable start of the key, kept to find it and to show it.
    pub key_prefix: String,
    /// SHA-256 (hex) of the whole key.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// JSON array of permission names the key may use.
    #[sea_orm(column_type = "JsonBinary")]
    pub scopes: Json,
    /// Verifications allowed per minute; NULL for no per-minute limit.
    pub rate_limit_per_minute: Option<i32>,
    /// Verifications so far.
    pub usage_count: i64,
    /// When the key last verified.
    pub last_used_at: Option<DateTimeUtc>,
    /// The client address of the last verification.
    pub last_used_ip: Option<String>,
    /// When the key stops verifying; NULL for never.
    pub expires_at: Option<DateTimeUtc>,
    /// Set when the key is revoked; a revoked key never verifies again.
    pub is_revoked: bool,
    /// When the key was revoked.
    pub revoked_at: Option<DateTimeUtc>,
    /// When the key was issued.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// Unix minute (seconds / 60) of the current fixed rate-limit window; 0 before the first use.
    pub rate_window_minute: i64,
    /// Verifications counted in that window, at most `rate_limit_per_minute`.
    pub rate_window_count: i32,
    /// The owner.
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::users::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
