//! Records of the keys gatehouse uses (`encryption_keys`): at most one active
//! key per type, versions, rotation and compromise history. Key material
//! stays outside the database; a key is known by its fingerprint.

use chrono::Utc;
use entity::encryption_keys::{self, ActiveModel, Column, Entity};
use entity::sea_orm_active_enums::{KeyStatus, KeyType};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use crate::Error;

/// The key of type `key_type` that is active now, if any.
///
/// # Errors
/// A database error.
pub async fn active<C: ConnectionTrait>(
    db: &C,
    key_type: KeyType,
) -> Result<Option<encryption_keys::Model>, Error> {
    Ok(Entity::find()
        .filter(Column::KeyType.eq(key_type))
        .filter(Column::Status.eq(KeyStatus::Active))
        .one(db)
        .await?)
}

/// The record of the configured key with `fingerprint`: the active key of its
/// type when the fingerprints match, otherwise a new active version that
/// rotates the previous one out. Called at start with the configured keys.
///
/// # Errors
/// [`Error::Integrity`] when the configured key was marked compromised or was
/// rotated out before (configure a new key); a database error otherwise.
pub async fn ensure_active<C>(
    db: &C,
    key_type: KeyType,
    fingerprint: &str,
    algorithm: &str,
) -> Result<encryption_keys::Model, Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    if let Some(current) = active(db, key_type).await? {
        if current.fingerprint == fingerprint {
            return Ok(current);
        }
    }
    let known = Entity::find()
        .filter(Column::KeyType.eq(key_type))
        .filter(Column::Fingerprint.eq(fingerprint))
        .one(db)
        .await?;
    if let Some(old) = known {
        return Err(Error::Integrity(format!(
            "the configured {key_type:?} key (version {}) was {} on {}; configure a new key",
            old.version,
            if old.status == KeyStatus::Compromised {
                "marked compromised"
            } else {
                "rotated out"
            },
            old.rotated_at
                .unwrap_or(old.activated_at)
                .format("%Y-%m-%d"),
        )));
    }
    rotate(
        db,
        key_type,
        fingerprint,
        algorithm,
        None,
        "configured key changed",
    )
    .await
}

/// Makes a new key version active for `key_type` and marks the previous
/// active one rotated, in one transaction. Two concurrent rotations cannot
/// both succeed: (key_type, version) is unique.
///
/// # Errors
/// [`Error::Conflict`] when another rotation won the race; a database error otherwise.
pub async fn rotate<C>(
    db: &C,
    key_type: KeyType,
    fingerprint: &str,
    algorithm: &str,
    rotated_by: Option<Uuid>,
    reason: &str,
) -> Result<encryption_keys::Model, Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    let txn = db.begin().await?;
    let now = Utc::now();
    let latest = Entity::find()
        .filter(Column::KeyType.eq(key_type))
        .order_by_desc(Column::Version)
        .one(&txn)
        .await?;
    let version = latest.as_ref().map_or(1, |k| k.version + 1);
    Entity::update_many()
        .col_expr(Column::Status, KeyStatus::Rotated.into())
        .col_expr(Column::RotatedAt, now.into())
        .col_expr(Column::RotatedBy, rotated_by.into())
        .col_expr(
            Column::RotationReason,
            format!("{reason}; replaced by version {version}").into(),
        )
        .filter(Column::KeyType.eq(key_type))
        .filter(Column::Status.eq(KeyStatus::Active))
        .exec(&txn)
        .await?;
    let key = ActiveModel {
        id: Set(Uuid::now_v7()),
        key_type: Set(key_type),
        version: Set(version),
        status: Set(KeyStatus::Active),
        algorithm: Set(algorithm.to_owned()),
        fingerprint: Set(fingerprint.to_owned()),
        activated_at: Set(now),
        rotated_at: Set(None),
        expires_at: Set(None),
        rotated_by: Set(None),
        rotation_reason: Set(None),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(key)
}

/// Marks a key compromised; anything sealed or encrypted under it must be
/// treated as untrusted.
///
/// # Errors
/// [`Error::NotFound`] for an unknown key; a database error otherwise.
pub async fn mark_compromised<C: ConnectionTrait>(
    db: &C,
    key_id: Uuid,
    by: Option<Uuid>,
    reason: &str,
) -> Result<encryption_keys::Model, Error> {
    let key = Entity::find_by_id(key_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("encryption key {key_id}")))?;
    let mut key: ActiveModel = key.into();
    key.status = Set(KeyStatus::Compromised);
    key.rotated_at = Set(Some(Utc::now()));
    key.rotated_by = Set(by);
    key.rotation_reason = Set(Some(reason.to_owned()));
    Ok(key.update(db).await?)
}
