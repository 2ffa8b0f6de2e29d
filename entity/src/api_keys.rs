//! `api_keys`: programmatic credentials, stored as SHA-256 hashes with scopes,
//! a per-minute rate limit and usage tracking.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    /// Public, recognisable start of the key, kept to find it and to show it.
    pub key_prefix: String,
    /// SHA-256 (hex) of the whole key.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// JSON array of permission names the key may use.
    #[sea_orm(column_type = "JsonBinary")]
    pub scopes: Json,
    pub rate_limit_per_minute: i32,
    pub usage_count: i64,
    pub last_used_at: Option<DateTimeUtc>,
    pub last_used_ip: Option<String>,
    pub expires_at: Option<DateTimeUtc>,
    pub is_revoked: bool,
    pub revoked_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Unix minute (seconds / 60) of the current fixed rate-limit window; 0 before the first use.
    pub rate_window_minute: i64,
    /// Verifications counted in that window, at most `rate_limit_per_minute`.
    pub rate_window_count: i32,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::users::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
