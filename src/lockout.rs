//! Throttling of sign-in attempts, per account *and* source, so that guessing
//! is bounded while the account's owner keeps signing in.
//!
//! # Slots before secrets
//! Every attempt that will verify a secret (password, TOTP code, backup code)
//! first takes a slot with `claim`: one conditional `UPDATE` of its
//! (subject, source) row in `login_throttles`, then one of the account's
//! `users.failed_login_count`. An attempt counts as a failure from the moment
//! it takes its slot until it succeeds (`release` gives the slot back; a
//! completed login restarts the counts), so N concurrent wrong guesses verify
//! at most as many secrets as the policy allows, on every backend.
//!
//! # Per source
//! The `source` is the client's address (`source_key`: IPv4, an IPv6 /56
//! prefix, empty when unknown). A source that failed `k ≥ 2` times waits
//! `backoff_base × 2^(k-2)` before its next attempt (one typo costs nothing); after
//! [`LockoutPolicy::source_max_failures`] it is shut out of that account until
//! [`LockoutPolicy::source_window`] has passed without an attempt. A refused
//! slot is [`Error::RateLimited`] and verifies nothing. The count restarts
//! after a quiet `source_window`, or when the account's last completed login
//! came from that source.
//!
//! # Per account
//! Beyond that, the account's own ceiling ([`LockoutPolicy::account_max_failures`],
//! much higher, counted over all sources since the last completed login)
//! locks the account (`users.locked_until`) for
//! [`LockoutPolicy::account_lock`]. A locked account's attempts verify
//! against the dummy hash and fail like a wrong password: the same error, the
//! same work and the same statements as an unknown, disabled or wrongly
//! typed account. Automatic locks stop sign-in only: API keys and the
//! permission checks of existing sessions keep working.
//!
//! # Unknown identifiers
//! An identifier that names no account is throttled under a subject derived
//! from it (`unknown_subject`), so it answers exactly as a known one.
//!
//! Every failure is also recorded in `failed_login_attempts` with its factor
//! (password, OTP, backup code), for the audit trail and sessions' risk score.
//!
//! Each slot statement is its own unit for [`db::retry`](mod@crate::db::retry): one that a
//! concurrent conflict rolled back counted nothing, so it runs again alone.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use gatehouse_entity::sea_orm_active_enums::AttemptKind;
use gatehouse_entity::{failed_login_attempts, login_throttles, users};
use sea_orm::sea_query::{CaseStatement, Expr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
};
use uuid::Uuid;

use crate::db::retry;
use crate::{Error, crypto};

/// Longest back-off between two attempts of one source, whatever the policy's doubling gives.
const MAX_BACKOFF: Duration = Duration::hours(1);
/// Most slots one source may take before it is shut out, whatever the policy says.
const MAX_SOURCE_FAILURES: u32 = 100;

/// How attempts are throttled. Defaults: a source gets 5 attempts per account,
/// waiting nothing after its first failure and 1 s, 2 s and 4 s after the
/// next three, then is shut
/// out of that account until 15 minutes pass without an attempt from it; the
/// account itself locks for an hour after 100 failures from all sources
/// together since its last completed login (so at most about 100 failures an
/// hour reach an account, as OWASP ASVS 2.2.1 asks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed attempts one source may make against one account (1..=100).
    pub source_max_failures: u32,
    /// How long a source's count lasts without attempts, and how long a shut-out source stays out.
    pub source_window: Duration,
    /// Wait after a source's second failure; it doubles with each further one (at most an hour).
    pub backoff_base: Duration,
    /// Failed attempts from all sources that lock the account itself.
    pub account_max_failures: u32,
    /// How long the account stays locked once it reached `account_max_failures`.
    pub account_lock: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            source_max_failures: 5,
            source_window: Duration::minutes(15),
            backoff_base: Duration::seconds(1),
            account_max_failures: 100,
            account_lock: Duration::hours(1),
        }
    }
}

impl LockoutPolicy {
    /// Checks the policy is usable.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field that is out of range.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |var: &'static str, reason: &str| {
            Err(Error::Config {
                var,
                reason: reason.to_owned(),
            })
        };
        if !(1..=MAX_SOURCE_FAILURES).contains(&self.source_max_failures) {
            return bad("source_max_failures", "must be within 1..=100");
        }
        if self.account_max_failures < self.source_max_failures {
            return bad(
                "account_max_failures",
                "must be at least source_max_failures (it is the much higher ceiling over all sources)",
            );
        }
        if i32::try_from(self.account_max_failures).is_err() {
            return bad("account_max_failures", "must fit in 31 bits");
        }
        let day = Duration::days(1);
        for (var, span) in [
            ("source_window", self.source_window),
            ("account_lock", self.account_lock),
        ] {
            if span <= Duration::zero() || span > day * 365 {
                return bad(var, "must be positive and at most a year");
            }
        }
        if self.backoff_base < Duration::zero() || self.backoff_base > MAX_BACKOFF {
            return bad("backoff_base", "must be between 0 and an hour");
        }
        Ok(())
    }

    /// How long a source that failed `failures` times waits before its next
    /// attempt: nothing after one failure (a typo), then `backoff_base`,
    /// doubling with each further failure.
    pub fn backoff(&self, failures: u32) -> Duration {
        if failures <= 1 {
            return Duration::zero();
        }
        let factor = 1i32 << failures.saturating_sub(2).min(20);
        self.backoff_base
            .checked_mul(factor)
            .map_or(MAX_BACKOFF, |d| d.min(MAX_BACKOFF))
    }
}

/// The throttling key of a client address: an IPv4 address as is (an
/// IPv4-mapped IPv6 address as its IPv4), an IPv6 address as its /56 prefix
/// (what one subscriber is commonly given: 256 /64 networks), empty when unknown.
pub(crate) fn source_key(ip: Option<IpAddr>) -> String {
    match ip {
        None => String::new(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/56", s[0], s[1], s[2], s[3] & 0xff00)
            }
        },
    }
}

/// The throttling subject of an identifier that names no account: a stable
/// id derived from its normalized form.
pub(crate) fn unknown_subject(normalized_identifier: &str) -> Uuid {
    let digest = crypto::sha256_hex(
        [
            b"gatehouse login subject v1\0".as_slice(),
            normalized_identifier.as_bytes(),
        ]
        .concat()
        .as_slice(),
    );
    let bytes = data_encoding::HEXLOWER
        .decode(&digest.as_bytes()[..32])
        .expect("sha256_hex gives hex");
    Uuid::from_slice(&bytes).expect("16 bytes")
}

/// A slot taken by `claim`: what `release` gives back and failures are recorded against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// Whose count at this source the attempt took: `unknown_subject` of
    /// the identifier typed at a login, the account's id for other checks.
    pub subject: Uuid,
    /// The account whose ceiling counted it (an id matching no account when
    /// the identifier names none).
    pub account: Uuid,
    /// The source it counted against (`source_key` of the client's address).
    pub source: String,
    /// Whether the account's ceiling counted this attempt (false: the account
    /// is locked, or there is no account): verify against the dummy hash then.
    pub account_counted: bool,
}

/// Takes a slot for one attempt of `source` against `subject` (at a login,
/// the typed identifier's `unknown_subject`, known account or not: a
/// shared count would tell which email and username name one account) and
/// against `account`'s ceiling, before any secret is verified. `last_success` is when the account's last completed
/// login came from this same source, if it did: the source's count restarts
/// after it.
///
/// # Errors
/// [`Error::RateLimited`] when the source must wait or is shut out of this
/// account (nothing is counted then); a database error.
pub(crate) async fn claim<C: ConnectionTrait>(
    db: &C,
    policy: &LockoutPolicy,
    subject: Uuid,
    account: Uuid,
    source: &str,
    last_success: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Attempt, Error> {
    let restart = last_success.map_or(now - policy.source_window, |at| {
        at.max(now - policy.source_window)
    });
    if !claim_source(db, policy, subject, source, restart, now).await? {
        let inserted = insert_first(db, subject, source, now).await?;
        // Lost a race to create the row: the conditional UPDATE decides.
        if !inserted && !claim_source(db, policy, subject, source, restart, now).await? {
            return Err(refusal(db, policy, subject, source, now).await?);
        }
    }
    let account_counted = claim_account(db, policy, account, now).await?;
    Ok(Attempt {
        subject,
        account,
        source: source.to_owned(),
        account_counted,
    })
}

/// Creates the row of a source's first attempt (count 1) unless it exists;
/// whether it did. `INSERT IGNORE` on MySQL/MariaDB (whose `ON DUPLICATE KEY`
/// forms count a found row as affected), `ON CONFLICT DO NOTHING` elsewhere.
async fn insert_first<C: ConnectionTrait>(
    db: &C,
    subject: Uuid,
    source: &str,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    use login_throttles::{Column as T, Entity as Throttles};
    let backend = db.get_database_backend();
    let insert = Query::insert()
        .into_table(Throttles)
        .columns([T::Subject, T::Source, T::Failures, T::LastAttemptAt])
        .values_panic([subject.into(), source.into(), 1.into(), now.into()])
        .to_owned();
    let mut stmt = backend.build(&insert);
    stmt.sql = match backend {
        DbBackend::MySql => stmt.sql.replacen("INSERT", "INSERT IGNORE", 1),
        _ => format!("{} ON CONFLICT DO NOTHING", stmt.sql),
    };
    let inserted = retry(db, "lockout.claim", || async {
        Ok(db.execute_raw(stmt.clone()).await?)
    })
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// `UPDATE login_throttles` counting one more attempt, if the source may make one now.
async fn claim_source<C: ConnectionTrait>(
    db: &C,
    policy: &LockoutPolicy,
    subject: Uuid,
    source: &str,
    restart: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    use login_throttles::{Column as T, Entity as Throttles};
    use sea_orm::sea_query::ExprTrait;
    let restarts = Expr::col(T::LastAttemptAt).lte(restart);
    // After k failures the next attempt waits backoff(k): the latest time the
    // previous attempt may have been made is now - backoff(k).
    let mut waited = CaseStatement::new().case(Expr::col(T::Failures).lte(1), Expr::val(true));
    for k in 2..policy.source_max_failures {
        waited = waited.case(
            Expr::col(T::Failures).eq(k),
            Expr::col(T::LastAttemptAt).lte(now - policy.backoff(k)),
        );
    }
    let waited = waited.finally(Expr::val(false));
    let mut stmt = Query::update();
    stmt.table(Throttles)
        // MySQL assigns left to right, later expressions seeing earlier
        // results: `failures` reads the old `last_attempt_at`, so it goes first.
        .value(
            T::Failures,
            CaseStatement::new()
                .case(restarts.clone(), Expr::val(1))
                .finally(Expr::col(T::Failures).add(1)),
        )
        .value(T::LastAttemptAt, now)
        .and_where(Expr::col(T::Subject).eq(subject))
        .and_where(Expr::col(T::Source).eq(source))
        .cond_where(
            Condition::any().add(restarts).add(
                Condition::all()
                    .add(Expr::col(T::Failures).lt(policy.source_max_failures))
                    .add(Expr::expr(waited).eq(Expr::val(true))),
            ),
        );
    let claimed = retry(db, "lockout.claim", || async {
        Ok(db.execute(&stmt).await?)
    })
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Counts the attempt against the account's ceiling, unless it is locked;
/// an expired lock starts the count afresh. False for no account.
async fn claim_account<C: ConnectionTrait>(
    db: &C,
    policy: &LockoutPolicy,
    subject: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    use sea_orm::sea_query::ExprTrait;
    use users::Column as U;
    let lock_over = Condition::all()
        .add(U::LockedUntil.is_not_null())
        .add(U::LockedUntil.lte(now));
    let counted = users::Entity::update_many()
        // `failed_login_count` reads the old `locked_until`: it goes first (MySQL order).
        .col_expr(
            U::FailedLoginCount,
            CaseStatement::new()
                .case(lock_over.clone(), Expr::val(1))
                .finally(Expr::col(U::FailedLoginCount).add(1))
                .into(),
        )
        .col_expr(
            U::LockedUntil,
            CaseStatement::new()
                .case(lock_over.clone(), Expr::val(Option::<DateTime<Utc>>::None))
                .finally(Expr::col(U::LockedUntil))
                .into(),
        )
        .filter(U::Id.eq(subject))
        .filter(
            Condition::any().add(lock_over).add(
                Condition::all()
                    .add(U::LockedUntil.is_null())
                    .add(U::FailedLoginCount.lt(policy.account_max_failures)),
            ),
        );
    let counted = retry(db, "lockout.claim", || async {
        Ok(counted.clone().exec(db).await?)
    })
    .await?;
    Ok(counted.rows_affected == 1)
}

/// The refusal for a source that may not try now, with when it may.
async fn refusal<C: ConnectionTrait>(
    db: &C,
    policy: &LockoutPolicy,
    subject: Uuid,
    source: &str,
    now: DateTime<Utc>,
) -> Result<Error, Error> {
    let row = login_throttles::Entity::find_by_id((subject, source.to_owned()))
        .one(db)
        .await?;
    let retry_at = row.map_or(now, |row| {
        let failures = u32::try_from(row.failures).unwrap_or(0);
        if failures >= policy.source_max_failures {
            row.last_attempt_at + policy.source_window
        } else {
            row.last_attempt_at + policy.backoff(failures)
        }
    });
    let secs = ((retry_at - now).num_milliseconds().max(0) + 999) / 1000;
    Ok(Error::RateLimited {
        retry_after_secs: u64::try_from(secs).unwrap_or(0).max(1),
    })
}

/// Gives a slot back: the attempt turned out not to be a failure (a step-up
/// check that passed, a right password still waiting for its second factor).
///
/// # Errors
/// A database error.
pub(crate) async fn release<C: ConnectionTrait>(db: &C, attempt: &Attempt) -> Result<(), Error> {
    use login_throttles::Column as T;
    use sea_orm::sea_query::ExprTrait;
    // Each statement is its own unit: one that failed gave nothing back.
    retry(db, "lockout.release", || async {
        login_throttles::Entity::update_many()
            .col_expr(T::Failures, Expr::col(T::Failures).sub(1))
            .filter(T::Subject.eq(attempt.subject))
            .filter(T::Source.eq(attempt.source.as_str()))
            .filter(T::Failures.gt(0))
            .exec(db)
            .await?;
        Ok(())
    })
    .await?;
    if attempt.account_counted {
        retry(db, "lockout.release", || async {
            users::Entity::update_many()
                .col_expr(
                    users::Column::FailedLoginCount,
                    Expr::col(users::Column::FailedLoginCount).sub(1),
                )
                .filter(users::Column::Id.eq(attempt.account))
                .filter(users::Column::FailedLoginCount.gt(0))
                .exec(db)
                .await?;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// A failed attempt, as recorded.
#[derive(Clone, Copy, Debug)]
pub struct Failure<'a> {
    /// The account the identifier matched, if any.
    pub user_id: Option<Uuid>,
    /// The normalized email or username that was tried.
    pub identifier: &'a str,
    /// The factor that failed (password, OTP, backup code).
    pub kind: AttemptKind,
    /// The client's address, if known.
    pub ip_address: Option<&'a str>,
    /// The client's user agent, if known.
    pub user_agent: Option<&'a str>,
    /// Why it failed, for the audit trail (e.g. `wrong password`).
    pub reason: &'a str,
}

/// Locks the account when its count reached the policy's ceiling and records
/// the failed attempt in `failed_login_attempts` (in that order: the row's
/// foreign key would otherwise share-lock the account's row before the
/// `UPDATE` needs it exclusively, and two concurrent failures deadlock). The same two statements run
/// whether or not an account matched. Returns the new lock's end, if it locked.
/// Run it in the caller's transaction.
///
/// # Errors
/// A database error.
pub async fn record_failure<C: ConnectionTrait>(
    db: &C,
    policy: &LockoutPolicy,
    failure: Failure<'_>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Error> {
    let until = now + policy.account_lock;
    let locked = users::Entity::update_many()
        .col_expr(users::Column::LockedUntil, Expr::val(until))
        .col_expr(users::Column::UpdatedAt, Expr::val(now))
        .filter(users::Column::Id.eq(failure.user_id.unwrap_or_else(Uuid::nil)))
        .filter(users::Column::FailedLoginCount.gte(policy.account_max_failures))
        .filter(
            Condition::any()
                .add(users::Column::LockedUntil.is_null())
                .add(users::Column::LockedUntil.lte(now)),
        )
        .exec(db)
        .await?;
    failed_login_attempts::Entity::insert(failed_login_attempts::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(failure.user_id),
        identifier: Set(failure.identifier.chars().take(255).collect()),
        attempt_kind: Set(failure.kind),
        ip_address: Set(failure.ip_address.map(|ip| ip.chars().take(45).collect())),
        user_agent: Set(failure.user_agent.map(|ua| ua.chars().take(512).collect())),
        failure_reason: Set(Some(failure.reason.chars().take(64).collect())),
        country_code: Set(None),
        created_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok((locked.rows_affected == 1).then_some(until))
}

/// Whether `user` is locked now: by an operator (`is_locked`) or automatically.
pub fn is_locked(user: &users::Model, now: DateTime<Utc>) -> bool {
    user.is_locked || user.locked_until.is_some_and(|until| until > now)
}

/// Deletes throttle rows no attempt has touched for a whole `source_window`
/// (their counts would restart anyway). Returns how many.
///
/// # Errors
/// A database error.
pub async fn prune<C: ConnectionTrait>(
    db: &C,
    policy: &LockoutPolicy,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    let stale = now - policy.source_window - MAX_BACKOFF;
    Ok(login_throttles::Entity::delete_many()
        .filter(login_throttles::Column::LastAttemptAt.lt(stale))
        .exec(db)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_group_ipv6_by_64_and_unmap_ipv4() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(source_key(None), "");
        assert_eq!(source_key(ip("192.0.2.1")), "192.0.2.1");
        assert_eq!(source_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(
            source_key(ip("2001:db8:1:2:aaaa::1")),
            source_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_eq!(
            source_key(ip("2001:db8:1:2::1")),
            source_key(ip("2001:db8:1:3::1"))
        );
        assert_ne!(
            source_key(ip("2001:db8:1:200::1")),
            source_key(ip("2001:db8:1:300::1"))
        );
    }

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let policy = LockoutPolicy::default();
        assert_eq!(policy.backoff(0), Duration::zero());
        assert_eq!(policy.backoff(1), Duration::zero());
        assert_eq!(policy.backoff(2), Duration::seconds(1));
        assert_eq!(policy.backoff(4), Duration::seconds(4));
        assert_eq!(policy.backoff(u32::MAX), MAX_BACKOFF);
        policy.validate().unwrap();
    }

    #[test]
    fn unknown_subjects_are_stable_and_distinct() {
        assert_eq!(
            unknown_subject("a@example.com"),
            unknown_subject("a@example.com")
        );
        assert_ne!(
            unknown_subject("a@example.com"),
            unknown_subject("b@example.com")
        );
    }

    #[test]
    fn unusable_policies_are_refused() {
        let base = LockoutPolicy::default();
        for bad in [
            LockoutPolicy {
                source_max_failures: 0,
                ..base
            },
            LockoutPolicy {
                account_max_failures: 2,
                ..base
            },
            LockoutPolicy {
                source_window: Duration::zero(),
                ..base
            },
            LockoutPolicy {
                backoff_base: Duration::days(2),
                ..base
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
