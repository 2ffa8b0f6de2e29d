//! Per-account lockout. Every failed attempt is recorded in
//! `failed_login_attempts` with its factor (password, OTP, backup code); when
//! one factor fails `max_failures` times within `window`, the account is
//! locked for `lock_duration`. Each factor has its own counter; a successful
//! login or an expired lock starts the counters afresh.

use chrono::{DateTime, Duration, Utc};
use entity::sea_orm_active_enums::AttemptKind;
use entity::{failed_login_attempts, users};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use crate::Error;

/// When failures lock an account. Defaults: 5 failures within 15 minutes lock it for 15 minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: u64,
    pub window: Duration,
    pub lock_duration: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::minutes(15),
            lock_duration: Duration::minutes(15),
        }
    }
}

/// A failed attempt, as recorded.
#[derive(Clone, Copy, Debug)]
pub struct Failure<'a> {
    /// The account the identifier matched, if any.
    pub user_id: Option<Uuid>,
    /// The normalized email or username that was tried.
    pub identifier: &'a str,
    pub kind: AttemptKind,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub reason: &'a str,
}

/// Refuses a locked account: [`Error::Locked`] while an automatic lock runs
/// or an administrator's lock (`is_locked`) stands.
///
/// # Errors
/// [`Error::Locked`].
pub fn ensure_not_locked(user: &users::Model, now: DateTime<Utc>) -> Result<(), Error> {
    if user.is_locked {
        return Err(Error::Locked {
            until: user.locked_until.filter(|u| *u > now),
        });
    }
    match user.locked_until {
        Some(until) if until > now => Err(Error::Locked { until: Some(until) }),
        _ => Ok(()),
    }
}

/// Records a failed attempt and locks the account when this failure reaches
/// the policy's limit for its factor. Returns the new lock's end, if it locked.
///
/// # Errors
/// A database error; nothing is recorded then.
pub async fn record_failure<C>(
    db: &C,
    policy: &LockoutPolicy,
    failure: Failure<'_>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    let txn = db.begin().await?;
    failed_login_attempts::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(failure.user_id),
        identifier: Set(failure.identifier.chars().take(255).collect()),
        attempt_kind: Set(failure.kind),
        ip_address: Set(failure.ip_address.map(|ip| ip.chars().take(45).collect())),
        user_agent: Set(failure.user_agent.map(|ua| ua.chars().take(512).collect())),
        failure_reason: Set(Some(failure.reason.chars().take(64).collect())),
        country_code: Set(None),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let Some(user_id) = failure.user_id else {
        txn.commit().await?;
        return Ok(None);
    };
    let Some(user) = users::Entity::find_by_id(user_id).one(&txn).await? else {
        txn.commit().await?;
        return Ok(None);
    };
    // Failures count from the latest of: the window's start, the last
    // successful login, the end of the previous lock.
    let since = [
        Some(now - policy.window),
        user.last_login_at,
        user.locked_until.filter(|u| *u <= now),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(now - policy.window);
    let failures = failed_login_attempts::Entity::find()
        .filter(failed_login_attempts::Column::UserId.eq(user_id))
        .filter(failed_login_attempts::Column::AttemptKind.eq(failure.kind))
        .filter(failed_login_attempts::Column::CreatedAt.gt(since))
        .count(&txn)
        .await?;
    let already_locked = user.locked_until.is_some_and(|u| u > now);
    let lock_until =
        (failures >= policy.max_failures && !already_locked).then(|| now + policy.lock_duration);
    let mut update: users::ActiveModel = user.into();
    if failure.kind == AttemptKind::Password {
        update.failed_login_count = Set(i32::try_from(failures).unwrap_or(i32::MAX));
    }
    if let Some(until) = lock_until {
        update.locked_until = Set(Some(until));
    }
    update.updated_at = Set(now);
    update.update(&txn).await?;
    txn.commit().await?;
    Ok(lock_until)
}

/// Records a successful login: clears the failure counter and notes when and from where.
///
/// # Errors
/// A database error.
pub async fn record_success<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    ip_address: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    users::Entity::update_many()
        .col_expr(users::Column::FailedLoginCount, 0.into())
        .col_expr(users::Column::LastLoginAt, now.into())
        .col_expr(
            users::Column::LastLoginIp,
            ip_address
                .map(|ip| ip.chars().take(45).collect::<String>())
                .into(),
        )
        .col_expr(users::Column::UpdatedAt, now.into())
        .filter(users::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}
