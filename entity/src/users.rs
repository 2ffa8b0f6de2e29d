//! `users`: accounts with their credential state, lockout and password lifecycle.

use sea_orm::entity::prelude::*;

/// An account.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// The account's id.
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
    /// False once disabled: no sign-in.
    pub is_active: bool,
    /// Whether the email address was verified (the application sets it).
    pub is_verified: bool,
    /// An operator's lock: no sign-in, no permissions, no API keys.
    pub is_locked: bool,
    /// End of the automatic lock after too many failed sign-ins.
    pub locked_until: Option<DateTimeUtc>,
    /// Failed sign-in attempts from all sources since the last completed login.
    pub failed_login_count: i32,
    /// When the last login completed.
    pub last_login_at: Option<DateTimeUtc>,
    /// The client address of the last completed login.
    pub last_login_ip: Option<String>,
    /// SHA-256 (hex) of the single-use reset token; the token itself is never stored.
    pub password_reset_token_hash: Option<String>,
    /// When the pending reset token stops working.
    pub password_reset_expires_at: Option<DateTimeUtc>,
    /// When the password was last set.
    pub password_changed_at: Option<DateTimeUtc>,
    /// When the password expires, if the application sets an expiry.
    pub password_expires_at: Option<DateTimeUtc>,
    /// When the account was soft-deleted.
    pub deleted_at: Option<DateTimeUtc>,
    /// When the account was registered.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// The account's sessions.
    #[sea_orm(has_many)]
    pub sessions: HasMany<super::sessions::Entity>,
    /// The account's API keys.
    #[sea_orm(has_many)]
    pub api_keys: HasMany<super::api_keys::Entity>,
    /// The account's TOTP set-up, if any.
    #[sea_orm(has_one)]
    pub mfa_configuration: HasOne<super::mfa_configurations::Entity>,
    /// The account's backup codes.
    #[sea_orm(has_many)]
    pub mfa_backup_codes: HasMany<super::mfa_backup_codes::Entity>,
    /// The account's trusted devices.
    #[sea_orm(has_many)]
    pub mfa_trusted_devices: HasMany<super::mfa_trusted_devices::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
