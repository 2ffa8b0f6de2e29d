//! `users`: accounts with their credential state, lockout and password lifecycle.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The normalized email as gatehouse stores it (see `email_folded`).
    pub email: String,
    /// The normalized username as gatehouse stores it (see `username_folded`).
    pub username: String,
    /// `accounts::validate::fold(email)`, compared byte for byte (`utf8mb4_bin`
    /// on MySQL/MariaDB) and unique: what decides which account an email names,
    /// the same on every backend (migration `m20261201_000001_fold_identities`).
    #[sea_orm(unique)]
    pub email_folded: String,
    /// `accounts::validate::fold(username)`, compared byte for byte and unique.
    #[sea_orm(unique)]
    pub username_folded: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub is_active: bool,
    pub is_verified: bool,
    pub is_locked: bool,
    pub locked_until: Option<DateTimeUtc>,
    pub failed_login_count: i32,
    pub last_login_at: Option<DateTimeUtc>,
    pub last_login_ip: Option<String>,
    /// SHA-256 (hex) of the single-use reset token; the token itself is never stored.
    pub password_reset_token_hash: Option<String>,
    pub password_reset_expires_at: Option<DateTimeUtc>,
    pub password_changed_at: Option<DateTimeUtc>,
    pub password_expires_at: Option<DateTimeUtc>,
    pub deleted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(has_many)]
    pub sessions: HasMany<super::sessions::Entity>,
    #[sea_orm(has_many)]
    pub api_keys: HasMany<super::api_keys::Entity>,
    #[sea_orm(has_one)]
    pub mfa_configuration: HasOne<super::mfa_configurations::Entity>,
    #[sea_orm(has_many)]
    pub mfa_backup_codes: HasMany<super::mfa_backup_codes::Entity>,
    #[sea_orm(has_many)]
    pub mfa_trusted_devices: HasMany<super::mfa_trusted_devices::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
