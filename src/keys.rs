//! Records of the keys gatehouse uses (`encryption_keys`): at most one active
//! key per type, versions, rotation and compromise history. Key material
//! stays outside the database; a key is known by its fingerprint.
//!
//! Keys change only on purpose. At start [`ensure_configured`] records the
//! configured key as version 1 when no key of its type is recorded yet, and
//! otherwise refuses ([`Error::Config`]) unless it is the active record: a
//! process started with the wrong key never rotates the real one out.
//! [`rotate`] (the operator's `gatehouse keys rotate`) is the only way a new
//! version becomes active.

use chrono::Utc;
use gatehouse_entity::encryption_keys::{self, ActiveModel, Column, Entity};
use gatehouse_entity::sea_orm_active_enums::{KeyStatus, KeyType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use crate::Error;
use crate::config::{DATA_KEY_VAR, DATA_PREVIOUS_VAR, HMAC_KEY_VAR, HMAC_PREVIOUS_VAR};
use crate::db::retry;

/// `encryption_keys.algorithm` of the HMAC key (type `session`).
pub const HMAC_ALGORITHM: &str = "HMAC-SHA256";
/// `encryption_keys.algorithm` of the data key (type `data`).
pub const DATA_ALGORITHM: &str = "AES-256-GCM";

/// The environment variable that configures keys of `key_type`.
pub fn variable(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::Data => DATA_KEY_VAR,
        _ => HMAC_KEY_VAR,
    }
}

/// The environment variable holding the previous keys of `key_type`.
pub fn previous_variable(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::Data => DATA_PREVIOUS_VAR,
        _ => HMAC_PREVIOUS_VAR,
    }
}

/// The word `gatehouse keys rotate` takes for `key_type`.
pub fn command_word(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::Data => "data",
        KeyType::Session => "hmac",
        KeyType::Jwt => "jwt",
        KeyType::Api => "api",
    }
}

fn type_name(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::Data => "data",
        KeyType::Session => "session",
        KeyType::Jwt => "jwt",
        KeyType::Api => "api",
    }
}

fn status_name(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "active",
        KeyStatus::Rotated => "rotated",
        KeyStatus::Compromised => "compromised",
    }
}

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

/// The record of the key of `key_type` with `fingerprint`, whatever its status.
///
/// # Errors
/// A database error.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    key_type: KeyType,
    fingerprint: &str,
) -> Result<Option<encryption_keys::Model>, Error> {
    Ok(Entity::find()
        .filter(Column::KeyType.eq(key_type))
        .filter(Column::Fingerprint.eq(fingerprint))
        .one(db)
        .await?)
}

/// Every key record, by type and version.
///
/// # Errors
/// A database error.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<encryption_keys::Model>, Error> {
    Ok(Entity::find()
        .order_by_asc(Column::KeyType)
        .order_by_asc(Column::Version)
        .all(db)
        .await?)
}

/// The record of the configured key with `fingerprint`, checked at start.
///
/// - No key of `key_type` is recorded yet: the configured one is recorded as
///   version 1, active. Concurrent first starts with the same key all
///   succeed (the losers of the insert read the winner's record).
/// - The configured key is the active record: that record.
/// - Anything else (another key is active, or none is): refused, nothing
///   written.
///
/// # Errors
/// [`Error::Config`] naming the variable (`HMAC_KEY` or
/// `DATA_ENCRYPTION_KEY`) when the configured key is not the active recorded
/// key, with that key's version and date and the command that rotates; a
/// database error.
pub async fn ensure_configured<C>(
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
        return Err(not_active(db, key_type, fingerprint, Some(&current)).await?);
    }
    let recorded = Entity::find()
        .filter(Column::KeyType.eq(key_type))
        .one(db)
        .await?;
    if recorded.is_some() {
        // Read again: a concurrent first start may have recorded it since.
        return match active(db, key_type).await? {
            Some(current) if current.fingerprint == fingerprint => Ok(current),
            current => Err(not_active(db, key_type, fingerprint, current.as_ref()).await?),
        };
    }
    // First start: record version 1. A savepoint inside a caller's
    // transaction, so a lost race leaves that transaction usable.
    let now = Utc::now();
    let inserted = retry(db, "keys.record_first", || async {
        let txn = db.begin().await?;
        Entity::insert(new_record(key_type, 1, fingerprint, algorithm, now))
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    })
    .await;
    match inserted {
        Ok(()) => {}
        // Another process recorded a key at the same time: theirs counts.
        Err(Error::Conflict { .. }) => {}
        Err(err) => return Err(err),
    }
    match active(db, key_type).await? {
        Some(current) if current.fingerprint == fingerprint => Ok(current),
        current => Err(not_active(db, key_type, fingerprint, current.as_ref()).await?),
    }
}

/// The refusal of a configured key that is not the active record.
async fn not_active<C: ConnectionTrait>(
    db: &C,
    key_type: KeyType,
    fingerprint: &str,
    active: Option<&encryption_keys::Model>,
) -> Result<Error, Error> {
    let var = variable(key_type);
    let word = command_word(key_type);
    let kind = type_name(key_type);
    let this = match find(db, key_type, fingerprint).await? {
        Some(old) => format!(
            "it is {kind} key version {}, {} on {}",
            old.version,
            match old.status {
                KeyStatus::Compromised => "marked compromised",
                KeyStatus::Rotated => "rotated out",
                KeyStatus::Active => "made active",
            },
            old.rotated_at
                .unwrap_or(old.activated_at)
                .format("%Y-%m-%d"),
        ),
        None => "it is not recorded".to_owned(),
    };
    let reason = match active {
        Some(current) => format!(
            "is not the active recorded {kind} key (version {}, active since {}); {this}. \
             Nothing was changed. Configure the active key, or make this one active on purpose \
             with `gatehouse keys rotate {word}` (keeping the active key in {} so what it \
             protects keeps working)",
            current.version,
            current.activated_at.format("%Y-%m-%d"),
            previous_variable(key_type),
        ),
        None => format!(
            "no {kind} key is active (every recorded version was rotated out or marked \
             compromised); {this}. Nothing was changed. Record a new key on purpose with \
             `gatehouse keys rotate {word} --retire-previous`"
        ),
    };
    Ok(Error::Config { var, reason })
}

fn new_record(
    key_type: KeyType,
    version: i32,
    fingerprint: &str,
    algorithm: &str,
    now: chrono::DateTime<Utc>,
) -> ActiveModel {
    ActiveModel {
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
}

/// Makes the key with `fingerprint` the new active version of `key_type`
/// and marks `replaces` (the active record the caller checked, `None` when
/// no key is active) rotated, in one transaction (a savepoint inside the
/// caller's, so an audit row can join it). Race-free: of two concurrent
/// rotations of the same active key one succeeds, the other gets
/// [`Error::Conflict`] and changes nothing.
///
/// # Errors
/// [`Error::Conflict`] (field `key_version`) when `replaces` is no longer
/// the active key or another rotation ran at the same time, when the key is
/// already active, or was recorded before (rotated out or compromised keys
/// never come back); a database error.
pub async fn rotate<C>(
    db: &C,
    key_type: KeyType,
    fingerprint: &str,
    algorithm: &str,
    replaces: Option<Uuid>,
    rotated_by: Option<Uuid>,
    reason: &str,
) -> Result<encryption_keys::Model, Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    let kind = type_name(key_type);
    let raced = || {
        Error::conflict(
            "key_version",
            format!(
                "the active {kind} key changed while rotating (another rotation ran at the same \
                 time); nothing was changed here, check `gatehouse keys list`"
            ),
        )
    };
    let now = Utc::now();
    let txn = db.begin().await?;
    // The write comes first: it takes the row lock (the write lock on
    // SQLite, before any read could pin an older snapshot), so a concurrent
    // rotation waits here and then finds nothing to rotate. Without
    // `replaces` it must match nothing: no key may be active.
    let mut retire = Entity::update_many()
        .col_expr(Column::Status, KeyStatus::Rotated.into())
        .col_expr(Column::RotatedAt, now.into())
        .col_expr(Column::RotatedBy, rotated_by.into())
        .col_expr(Column::RotationReason, truncate(reason, 255).into())
        .filter(Column::KeyType.eq(key_type))
        .filter(Column::Status.eq(KeyStatus::Active))
        .filter(Column::Fingerprint.ne(fingerprint));
    if let Some(old) = replaces {
        retire = retire.filter(Column::Id.eq(old));
    }
    let retired = retire.exec(&txn).await?.rows_affected;
    let known = find(&txn, key_type, fingerprint).await?;
    let refusal = match known {
        Some(known) if known.status == KeyStatus::Active => Some(if Some(known.id) == replaces {
            Error::conflict(
                "key_version",
                format!(
                    "the configured key is already the active {kind} key (version {}); \
                     configure the new key in {} first",
                    known.version,
                    variable(key_type)
                ),
            )
        } else {
            Error::conflict(
                "key_version",
                format!(
                    "the configured key became the active {kind} key (version {}) in another \
                     rotation; nothing was changed here, check `gatehouse keys list`",
                    known.version
                ),
            )
        }),
        Some(known) => Some(Error::conflict(
            "key_version",
            format!(
                "the configured key is {kind} key version {}, {} before; a retired key never \
                 becomes active again, generate a new one",
                known.version,
                status_name(known.status)
            ),
        )),
        None if retired != u64::from(replaces.is_some()) => Some(raced()),
        None => None,
    };
    if let Some(refusal) = refusal {
        txn.rollback().await?;
        return Err(refusal);
    }
    let latest = Entity::find()
        .filter(Column::KeyType.eq(key_type))
        .order_by_desc(Column::Version)
        .one(&txn)
        .await?;
    let version = latest.as_ref().map_or(1, |k| k.version + 1);
    let record = new_record(key_type, version, fingerprint, algorithm, now);
    let inserted = Entity::insert(record.clone())
        .exec_without_returning(&txn)
        .await;
    if let Err(err) = inserted {
        txn.rollback().await?;
        return Err(match Error::from(err) {
            Error::Conflict { .. } => raced(),
            other => other,
        });
    }
    txn.commit().await?;
    Entity::find_by_id(record.id.unwrap())
        .one(db)
        .await?
        .ok_or_else(raced)
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
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
    use sea_orm::ActiveModelTrait;
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
