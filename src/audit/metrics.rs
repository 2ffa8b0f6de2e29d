//! The daily `security_metrics` rollup: one row per UTC day, recomputed from
//! the source tables and upserted, so running it twice gives the same row.
//!
//! Each counter covers `[date 00:00 UTC, date+1 00:00 UTC)` and comes from:
//!
//! | counter | source |
//! |---|---|
//! | `successful_logins` | `audit_logs` rows with `event_type` [`LOGIN`] and outcome `success` (the login service writes them; `users.last_login_at` keeps only the latest login) |
//! | `failed_logins` | `failed_login_attempts` of kind `password` |
//! | `failed_otp_attempts` | `failed_login_attempts` of kind `otp` or `backup_code` (every failed second factor) |
//! | `lockouts` | users whose current `locked_until` minus the policy's lock duration falls in the day, i.e. automatic locks that began that day. Limits: a user locked twice counts once, a later lock replaces an earlier one, administrator locks (`is_locked`) are not counted |
//! | `new_users` | `users.created_at` |
//! | `sessions_created` | `sessions.created_at` (sessions deleted by cleanup before the rollup runs are missed: run it soon after midnight) |
//! | `sessions_revoked` | `sessions.revoked_at` (same limit) |
//! | `api_key_uses` | API keys whose `last_used_at` falls in the day. There is no per-use log, so this is the number of keys used that day and not used again since: a lower bound of the uses |
//! | `suspicious_events` | `audit_logs` rows with `is_suspicious` |
//! | `security_events_opened` | `security_events.created_at` |
//! | `security_events_resolved` | `security_events.resolved_at` (resolved or false positive) |
//! | `unique_ips` | distinct non-null `ip_address` over `failed_login_attempts` and `audit_logs` together |

use std::collections::HashSet;

use chrono::{DateTime, Days, NaiveDate, Utc};
use gatehouse_entity::sea_orm_active_enums::{AttemptKind, AuditOutcome};
use gatehouse_entity::{
    api_keys, audit_logs, failed_login_attempts, security_events, security_metrics, sessions, users,
};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect,
};
use uuid::Uuid;

use super::entries::event_types::LOGIN;
use crate::Error;
use crate::lockout::LockoutPolicy;

/// Computes the counters of `date` (a UTC day) and writes them as that day's
/// single `security_metrics` row, replacing an earlier computation.
/// `lockout` must be the policy the accounts were locked under (see the
/// module table).
///
/// # Errors
/// [`Error::InvalidInput`] for a date whose day cannot be represented; a
/// database error.
pub async fn rollup<C: ConnectionTrait>(
    db: &C,
    date: NaiveDate,
    lockout: &LockoutPolicy,
    now: DateTime<Utc>,
) -> Result<security_metrics::Model, Error> {
    let start = date
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let end = date
        .checked_add_days(Days::new(1))
        .ok_or_else(|| Error::InvalidInput {
            field: "date",
            reason: "out of range".into(),
        })?
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();

    let successful_logins = audit_logs::Entity::find()
        .filter(audit_logs::Column::EventType.eq(LOGIN))
        .filter(audit_logs::Column::Outcome.eq(AuditOutcome::Success))
        .filter(within(audit_logs::Column::CreatedAt, start, end))
        .count(db)
        .await?;
    let failed_logins = failed_login_attempts::Entity::find()
        .filter(failed_login_attempts::Column::AttemptKind.eq(AttemptKind::Password))
        .filter(within(failed_login_attempts::Column::CreatedAt, start, end))
        .count(db)
        .await?;
    let failed_otp_attempts = failed_login_attempts::Entity::find()
        .filter(
            failed_login_attempts::Column::AttemptKind
                .is_in([AttemptKind::Otp, AttemptKind::BackupCode]),
        )
        .filter(within(failed_login_attempts::Column::CreatedAt, start, end))
        .count(db)
        .await?;
    let lockouts = users::Entity::find()
        .filter(within(
            users::Column::LockedUntil,
            start + lockout.account_lock,
            end + lockout.account_lock,
        ))
        .count(db)
        .await?;
    let new_users = users::Entity::find()
        .filter(within(users::Column::CreatedAt, start, end))
        .count(db)
        .await?;
    let sessions_created = sessions::Entity::find()
        .filter(within(sessions::Column::CreatedAt, start, end))
        .count(db)
        .await?;
    let sessions_revoked = sessions::Entity::find()
        .filter(within(sessions::Column::RevokedAt, start, end))
        .count(db)
        .await?;
    let api_key_uses = api_keys::Entity::find()
        .filter(within(api_keys::Column::LastUsedAt, start, end))
        .count(db)
        .await?;
    let suspicious_events = audit_logs::Entity::find()
        .filter(audit_logs::Column::IsSuspicious.eq(true))
        .filter(within(audit_logs::Column::CreatedAt, start, end))
        .count(db)
        .await?;
    let security_events_opened = security_events::Entity::find()
        .filter(within(security_events::Column::CreatedAt, start, end))
        .count(db)
        .await?;
    let security_events_resolved = security_events::Entity::find()
        .filter(within(security_events::Column::ResolvedAt, start, end))
        .count(db)
        .await?;
    let mut ips: HashSet<String> = failed_login_attempts::Entity::find()
        .select_only()
        .column(failed_login_attempts::Column::IpAddress)
        .distinct()
        .filter(failed_login_attempts::Column::IpAddress.is_not_null())
        .filter(within(failed_login_attempts::Column::CreatedAt, start, end))
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    ips.extend(
        audit_logs::Entity::find()
            .select_only()
            .column(audit_logs::Column::IpAddress)
            .distinct()
            .filter(audit_logs::Column::IpAddress.is_not_null())
            .filter(within(audit_logs::Column::CreatedAt, start, end))
            .into_tuple::<String>()
            .all(db)
            .await?,
    );

    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let row = security_metrics::ActiveModel {
        id: Set(Uuid::now_v7()),
        metric_date: Set(date),
        successful_logins: Set(count(successful_logins)),
        failed_logins: Set(count(failed_logins)),
        failed_otp_attempts: Set(count(failed_otp_attempts)),
        lockouts: Set(count(lockouts)),
        new_users: Set(count(new_users)),
        sessions_created: Set(count(sessions_created)),
        sessions_revoked: Set(count(sessions_revoked)),
        api_key_uses: Set(count(api_key_uses)),
        suspicious_events: Set(count(suspicious_events)),
        security_events_opened: Set(count(security_events_opened)),
        security_events_resolved: Set(count(security_events_resolved)),
        unique_ips: Set(count(ips.len() as u64)),
        computed_at: Set(now),
    };
    use security_metrics::Column as M;
    security_metrics::Entity::insert(row)
        .on_conflict(
            OnConflict::column(M::MetricDate)
                .update_columns([
                    M::SuccessfulLogins,
                    M::FailedLogins,
                    M::FailedOtpAttempts,
                    M::Lockouts,
                    M::NewUsers,
                    M::SessionsCreated,
                    M::SessionsRevoked,
                    M::ApiKeyUses,
                    M::SuspiciousEvents,
                    M::SecurityEventsOpened,
                    M::SecurityEventsResolved,
                    M::UniqueIps,
                    M::ComputedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    security_metrics::Entity::find()
        .filter(M::MetricDate.eq(date))
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("security metrics of {date}")))
}

/// `start <= column < end`.
fn within<T: ColumnTrait>(column: T, start: DateTime<Utc>, end: DateTime<Utc>) -> Condition {
    Condition::all().add(column.gte(start)).add(column.lt(end))
}
