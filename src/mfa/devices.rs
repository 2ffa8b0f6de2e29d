//! Trusted devices: a device that passed the second factor may skip it until
//! its token expires (30 days by default) or is revoked. Tokens are 256-bit
//! random values; only their SHA-256 is stored.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use data_encoding::BASE64URL_NOPAD;
use gatehouse_entity::mfa_trusted_devices::{self, ActiveModel, Column, Entity};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, sea_query::Expr,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::{ClientInfo, check_text};
use crate::Error;
use crate::crypto;

/// How long a device stays trusted by default.
pub const DEFAULT_TRUST_DAYS: i64 = 30;
/// Token length in bytes (256 bits).
const TOKEN_BYTES: usize = 32;
/// Length of a token as text (unpadded base64url of 32 bytes).
const TOKEN_CHARS: usize = 43;
/// Longest device name accepted (the column's size).
const MAX_DEVICE_NAME: usize = 255;

/// A device token issued once, for the client to keep (e.g. in a cookie).
/// `Debug` prints no token.
pub struct DeviceToken {
    /// The `mfa_trusted_devices` row, for listing and revoking.
    pub device_id: Uuid,
    /// When the device stops skipping the second factor.
    pub expires_at: DateTime<Utc>,
    token: SecretString,
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceToken")
            .field("device_id", &self.device_id)
            .field("expires_at", &self.expires_at)
            .field("token", &"redacted")
            .finish()
    }
}

impl DeviceToken {
    /// The token to hand to the client.
    pub fn expose(&self) -> &str {
        self.token.expose_secret()
    }
}

fn token_hash(token: &str) -> String {
    crypto::sha256_hex(token.as_bytes())
}

/// Trusts a device of `user_id` for `ttl` (see [`DEFAULT_TRUST_DAYS`]).
/// Call it only right after the user passed the second factor.
///
/// # Errors
/// [`Error::InvalidInput`] for a malformed name, IP or user agent or a
/// non-positive `ttl`; [`Error::Reference`] for an unknown user.
pub async fn trust<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    device_name: Option<&str>,
    client: ClientInfo<'_>,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<DeviceToken, Error> {
    if ttl <= Duration::zero() {
        return Err(Error::InvalidInput {
            field: "ttl",
            reason: "must be positive".into(),
        });
    }
    if let Some(name) = device_name {
        check_text("device_name", name, MAX_DEVICE_NAME)?;
    }
    let client = client.check()?;
    let token = BASE64URL_NOPAD.encode(&crypto::random_bytes::<TOKEN_BYTES>());
    let device = ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        device_token_hash: Set(token_hash(&token)),
        device_name: Set(device_name.map(str::to_owned)),
        ip_address: Set(client.ip.map(|ip| ip.to_string())),
        user_agent: Set(client.user_agent),
        created_at: Set(now),
        last_used_at: Set(None),
        expires_at: Set(now + ttl),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(DeviceToken {
        device_id: device.id,
        expires_at: device.expires_at,
        token: SecretString::from(token),
    })
}

/// Accepts a device token of `user_id` that is neither expired nor revoked,
/// and notes its use.
///
/// # Errors
/// [`Error::InvalidInput`] for text that cannot be a token;
/// [`Error::InvalidCredentials`] for an unknown token or one of another
/// user; [`Error::Revoked`]; [`Error::Expired`]; a database error.
pub async fn check<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    token: &str,
    now: DateTime<Utc>,
) -> Result<mfa_trusted_devices::Model, Error> {
    let well_formed = token.len() == TOKEN_CHARS
        && BASE64URL_NOPAD
            .decode(token.as_bytes())
            .is_ok_and(|bytes| bytes.len() == TOKEN_BYTES);
    if !well_formed {
        return Err(Error::InvalidInput {
            field: "device_token",
            reason: "not a device token".into(),
        });
    }
    let device = Entity::find()
        .filter(Column::DeviceTokenHash.eq(token_hash(token)))
        .one(db)
        .await?
        .filter(|d| d.user_id == user_id)
        .ok_or(Error::InvalidCredentials)?;
    if device.revoked_at.is_some() {
        return Err(Error::Revoked);
    }
    if device.expires_at <= now {
        return Err(Error::Expired);
    }
    Entity::update_many()
        .col_expr(Column::LastUsedAt, Expr::value(now))
        .filter(Column::Id.eq(device.id))
        .exec(db)
        .await?;
    Ok(mfa_trusted_devices::Model {
        last_used_at: Some(now),
        ..device
    })
}

/// Revokes one device of `user_id`. Revoking a revoked device changes nothing.
///
/// # Errors
/// [`Error::NotFound`] when the user has no such device; a database error.
pub async fn revoke<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    device_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let updated = Entity::update_many()
        .col_expr(Column::RevokedAt, Expr::value(now))
        .filter(Column::Id.eq(device_id))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    if updated.rows_affected == 0
        && Entity::find()
            .filter(Column::Id.eq(device_id))
            .filter(Column::UserId.eq(user_id))
            .one(db)
            .await?
            .is_none()
    {
        return Err(Error::NotFound(format!("trusted device {device_id}")));
    }
    Ok(())
}

/// Revokes every device of `user_id` (after a password change, say);
/// returns how many were revoked.
///
/// # Errors
/// A database error.
pub async fn revoke_all<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    Ok(Entity::update_many()
        .col_expr(Column::RevokedAt, Expr::value(now))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?
        .rows_affected)
}

/// The devices of `user_id` trusted at `now` (neither revoked nor expired),
/// newest first.
///
/// # Errors
/// A database error.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<mfa_trusted_devices::Model>, Error> {
    Ok(Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::RevokedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .order_by_desc(Column::CreatedAt)
        .all(db)
        .await?)
}
