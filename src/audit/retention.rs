//! Retention: deletes `audit_logs` rows older than their own `retention_days`,
//! and `failed_login_attempts` and `session_audit_log` rows older than a
//! configured age, in small batches so no statement holds locks for long.
//!
//! Each batch selects up to `batch_size` ids (oldest first) and deletes them
//! in a statement of its own. Where `audit_logs` is partitioned by month
//! (PostgreSQL), months whose rows have all expired are detached and dropped
//! whole first (see [`super::partitions`]); only the rest is deleted row by row. Pass a pooled connection, not a transaction:
//! inside one transaction every batch would hold its locks until the end.

use chrono::{DateTime, Duration, Utc};
use gatehouse_entity::{audit_logs, failed_login_attempts, session_audit_log};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use super::entries::MAX_RETENTION_DAYS;
use super::partitions;
use crate::Error;

/// Rows deleted per statement by default.
pub const DEFAULT_BATCH_SIZE: u64 = 1_000;
/// Largest batch accepted.
pub const MAX_BATCH_SIZE: u64 = 10_000;
/// Days failed login attempts are kept by default.
pub const DEFAULT_FAILED_LOGIN_DAYS: i64 = 90;
/// Days session audit entries are kept by default.
pub const DEFAULT_SESSION_AUDIT_DAYS: i64 = 30;

/// How much to keep and how much to delete at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Rows deleted per statement (1 to [`MAX_BATCH_SIZE`]).
    pub batch_size: u64,
    /// Age past which `failed_login_attempts` rows are deleted.
    pub failed_login_max_age: Duration,
    /// Age past which `session_audit_log` rows are deleted.
    pub session_audit_max_age: Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH_SIZE,
            failed_login_max_age: Duration::days(DEFAULT_FAILED_LOGIN_DAYS),
            session_audit_max_age: Duration::days(DEFAULT_SESSION_AUDIT_DAYS),
        }
    }
}

/// What a prune did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Rows deleted by the delete statements (the rows of dropped partitions
    /// are not counted).
    pub deleted: u64,
    /// Delete statements run.
    pub batches: u64,
    /// Whole partitions detached and dropped (`audit_logs` on PostgreSQL).
    pub partitions_dropped: u64,
}

/// What [`prune_all`] did, per table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// `audit_logs`, each row after its own `retention_days`.
    pub audit_logs: Pruned,
    /// `failed_login_attempts`, after [`RetentionPolicy::failed_login_max_age`].
    pub failed_login_attempts: Pruned,
    /// `session_audit_log`, after [`RetentionPolicy::session_audit_max_age`].
    pub session_audit_log: Pruned,
}

/// Runs all three prunes with `policy`.
///
/// # Errors
/// [`Error::InvalidInput`] for a batch size outside 1 to [`MAX_BATCH_SIZE`]
/// or a non-positive age; a database error (batches committed before it stay deleted).
pub async fn prune_all<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<PruneReport, Error> {
    Ok(PruneReport {
        audit_logs: prune_audit_logs(db, policy.batch_size, now).await?,
        failed_login_attempts: prune_failed_logins(
            db,
            policy.failed_login_max_age,
            policy.batch_size,
            now,
        )
        .await?,
        session_audit_log: prune_session_audit(
            db,
            policy.session_audit_max_age,
            policy.batch_size,
            now,
        )
        .await?,
    })
}

/// Deletes every `audit_logs` row whose `created_at` is more than its own
/// `retention_days` days before `now`: on a partitioned table by dropping
/// every month that has wholly expired, then in batches.
///
/// # Errors
/// [`Error::InvalidInput`] for a batch size outside 1 to [`MAX_BATCH_SIZE`];
/// a database error.
pub async fn prune_audit_logs<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    batch_size: u64,
    now: DateTime<Utc>,
) -> Result<Pruned, Error> {
    check_batch_size(batch_size)?;
    let mut total = Pruned::default();
    // No row younger than the shortest retention in use can have expired;
    // partitioned, that bound comes from the retention_days index (without
    // it, reading it would scan the table: a day is the smallest period).
    let mut shortest = 1;
    if partitions::is_partitioned(db).await? {
        total.partitions_dropped = partitions::drop_expired(db, now).await?.len() as u64;
        match partitions::shortest_retention(db).await? {
            Some(days) => shortest = days.max(1),
            None => return Ok(total),
        }
    }
    let pruned = prune_audit_rows(db, batch_size, now, shortest).await?;
    total.deleted = pruned.deleted;
    total.batches = pruned.batches;
    Ok(total)
}

/// [`prune_audit_logs`] row by row only, whether or not the table is
/// partitioned: rows younger than `shortest_days` are not looked at.
///
/// # Errors
/// As [`prune_audit_logs`].
pub async fn prune_audit_rows<C: ConnectionTrait>(
    db: &C,
    batch_size: u64,
    now: DateTime<Utc>,
    shortest_days: i32,
) -> Result<Pruned, Error> {
    use audit_logs::{Column, Entity};
    check_batch_size(batch_size)?;
    // The retention periods in use among rows old enough to have expired (a handful).
    let periods: Vec<i32> = Entity::find()
        .select_only()
        .column(Column::RetentionDays)
        .distinct()
        .filter(Column::CreatedAt.lt(now - Duration::days(i64::from(shortest_days.max(1)))))
        .into_tuple()
        .all(db)
        .await?;
    let mut total = Pruned::default();
    for days in periods {
        let days = days.clamp(1, MAX_RETENTION_DAYS);
        let expired = Condition::all()
            .add(Column::RetentionDays.eq(days))
            .add(Column::CreatedAt.lt(now - Duration::days(i64::from(days))));
        let pruned =
            delete_in_batches::<Entity, _>(db, Column::Id, Column::CreatedAt, expired, batch_size)
                .await?;
        total.deleted += pruned.deleted;
        total.batches += pruned.batches;
    }
    Ok(total)
}

/// Deletes `failed_login_attempts` rows older than `max_age`.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad batch size or a non-positive age; a database error.
pub async fn prune_failed_logins<C: ConnectionTrait>(
    db: &C,
    max_age: Duration,
    batch_size: u64,
    now: DateTime<Utc>,
) -> Result<Pruned, Error> {
    use failed_login_attempts::{Column, Entity};
    check_batch_size(batch_size)?;
    check_age(max_age)?;
    let expired = Condition::all().add(Column::CreatedAt.lt(now - max_age));
    delete_in_batches::<Entity, _>(db, Column::Id, Column::CreatedAt, expired, batch_size).await
}

/// Deletes `session_audit_log` rows older than `max_age`.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad batch size or a non-positive age; a database error.
pub async fn prune_session_audit<C: ConnectionTrait>(
    db: &C,
    max_age: Duration,
    batch_size: u64,
    now: DateTime<Utc>,
) -> Result<Pruned, Error> {
    use session_audit_log::{Column, Entity};
    check_batch_size(batch_size)?;
    check_age(max_age)?;
    let expired = Condition::all().add(Column::CreatedAt.lt(now - max_age));
    delete_in_batches::<Entity, _>(db, Column::Id, Column::CreatedAt, expired, batch_size).await
}

fn check_batch_size(batch_size: u64) -> Result<(), Error> {
    if (1..=MAX_BATCH_SIZE).contains(&batch_size) {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            field: "batch_size",
            reason: format!("must be 1 to {MAX_BATCH_SIZE}"),
        })
    }
}

fn check_age(max_age: Duration) -> Result<(), Error> {
    if max_age > Duration::zero() {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            field: "max_age",
            reason: "must be positive".into(),
        })
    }
}

/// Deletes the rows matching `expired`, oldest first, `batch_size` at a time,
/// each batch its own statement.
async fn delete_in_batches<E, C>(
    db: &C,
    id: E::Column,
    created_at: E::Column,
    expired: Condition,
    batch_size: u64,
) -> Result<Pruned, Error>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut pruned = Pruned::default();
    loop {
        let rows: Vec<(Uuid, DateTime<Utc>)> = E::find()
            .select_only()
            .column(id)
            .column(created_at)
            .filter(expired.clone())
            .order_by_asc(created_at)
            .limit(batch_size)
            .into_tuple()
            .all(db)
            .await?;
        let (Some(&(_, oldest)), Some(&(_, newest))) = (rows.first(), rows.last()) else {
            break;
        };
        let selected = rows.len() as u64;
        // The time bounds let a partitioned table look in the batch's months only.
        let deleted = E::delete_many()
            .filter(id.is_in(rows.into_iter().map(|(id, _)| id)))
            .filter(created_at.between(oldest, newest))
            .exec(db)
            .await?
            .rows_affected;
        pruned.deleted += deleted;
        pruned.batches += 1;
        if selected < batch_size {
            break;
        }
    }
    Ok(pruned)
}
