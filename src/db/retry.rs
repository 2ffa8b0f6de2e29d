//! The retry policy of service writes: a unit of work the database rolled
//! back because of a concurrent conflict runs again, a few times, from its start.
//!
//! # What is retried
//! A *unit*: one transaction a service begins on a pool, or one statement it
//! runs on a pool outside a transaction (its own transaction): the smallest
//! thing that is written entirely or not at all. A unit runs again from its
//! start in a new transaction and re-reads inside it whatever it decides on,
//! so running it twice is the same as running it once.
//!
//! # When
//! On [`Contention::Conflict`]: a deadlock (MySQL/MariaDB 1213, PostgreSQL
//! 40P01), a Galera certification failure (1213 at `COMMIT`: another node
//! committed a write to the same rows first), a serialization failure
//! (PostgreSQL 40001; no service raises the isolation level, so only an
//! application's own settings lead there) or a stale SQLite snapshot. The
//! database decided at once and the winner has committed: running again sees
//! its result (a duplicate is then [`Error::Conflict`] naming the field, as
//! without the retry). At most [`MAX_ATTEMPTS`] runs, each retry after a
//! random wait of up to 2, 4, 8, 16 ms (full jitter, so that the contenders
//! spread out); then [`Error::Busy`] with the number of runs.
//!
//! Not on [`Contention::LockTimeout`] (MySQL/MariaDB 1205, PostgreSQL 55P03,
//! SQLite busy): the server already waited its whole lock timeout (50 s by
//! default on InnoDB) for a lock another transaction still holds. Running
//! again would make the request wait that long once more for the same cause;
//! the caller gets [`Error::Busy`] at once (InnoDB rolls back only the
//! statement on 1205; the unit's transaction is dropped, so nothing of it stays).
//! Except a lock timeout that came back sooner than [`NOT_A_LOCK_WAIT`]: no
//! lock wait ran out then. That is what a Galera node answers when
//! certification aborts a transaction while one of its reads waits for the
//! node to catch up (`wsrep_sync_wait`): 1205 at once, under contention on
//! one row from several nodes. It is retried as a conflict.
//!
//! # Only on a pool
//! The retry runs only when the service was given the pool itself
//! ([`DatabaseConnection`]). Inside a caller's transaction (a
//! `DatabaseTransaction`, or any other connection type), a deadlock has rolled
//! back the caller's whole transaction (MySQL) or aborted it (PostgreSQL):
//! running the unit's savepoint again would write outside it. The first
//! failure goes up as [`Error::Busy`] with `attempts: 1`, and the caller
//! retries its own transaction (with [`retry`] around it, for instance).
//!
//! # Sign-in is retried unit by unit, never as a whole
//! A login commits its throttling slot (`lockout::claim`: conditional
//! `UPDATE`s, each its own transaction) *before* the Argon2 verification, on
//! purpose: concurrent guesses are counted before any secret is checked.
//! Running a whole login again after a conflict in a later step would take a
//! second slot (one guess counted twice) and verify a second time. So each
//! unit is retried on its own: each claim statement (a statement that failed
//! changed nothing, so running it again counts the attempt once), the
//! `release` statements, the failure transaction (the account's lock check,
//! the `failed_login_attempts` row and the audit row, all or nothing: one
//! failure recorded once) and the completion transaction (its conditional
//! `UPDATE`s check again that the account is live and unlocked, its password
//! and MFA unchanged; the session gets a new token). No check is skipped: a
//! unit that exhausts its attempts ends the login with [`Error::Busy`],
//! its slot still taken (counted as a failure, the safe side, as if the
//! process had stopped between the claim and the verification). A password
//! change, which also takes a slot first, follows the same rule.
//!
//! A row the unit has just written and cannot read back (SeaORM reads an
//! inserted or updated row back where the backend has no `RETURNING`) is a
//! conflict too: the database aborted the transaction in between.
//!
//! Galera itself retries a conflicting autocommit statement once on the
//! server (`wsrep_retry_autocommit`, default 1) before it reports 1213; the
//! policy here comes on top and covers transactions too.

use std::future::Future;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::{Contention, Error};

/// Most runs of one unit (the first and four retries).
pub const MAX_ATTEMPTS: u32 = 5;
/// Longest wait before the first retry; it doubles before each further one.
const FIRST_WAIT: Duration = Duration::from_millis(2);
/// A lock timeout reported sooner than this after the unit started was no
/// lock wait running out (InnoDB's shortest is 1 s): a Galera abort.
pub const NOT_A_LOCK_WAIT: Duration = Duration::from_millis(900);

/// Runs `unit` and, when `db` is a pool and the database rolled it back on a
/// conflict, runs it again from its start (see the module docs): at most
/// [`MAX_ATTEMPTS`] runs, each retry logged at debug level with `operation`.
///
/// `unit` must be safe to run again: it begins its own transaction (or is one
/// statement) and re-reads what it decides on.
///
/// # Errors
/// [`Error::Busy`] when every run conflicted (`attempts` says how many ran),
/// at once for a lock timeout or inside a caller's transaction; any other
/// error of `unit` as it is.
pub async fn retry<C, T, F, Fut>(db: &C, operation: &'static str, mut unit: F) -> Result<T, Error>
where
    C: ConnectionTrait + ?Sized,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let retries = on_pool::<C>();
    let mut attempt = 1;
    loop {
        let started = std::time::Instant::now();
        let result = unit().await;
        let conflicted = match &result {
            Err(Error::Busy { contention, .. }) => {
                *contention == Contention::Conflict
                    || (*contention == Contention::LockTimeout
                        && started.elapsed() < NOT_A_LOCK_WAIT)
            }
            _ => false,
        };
        match result {
            Err(Error::Busy { .. }) if conflicted && retries && attempt < MAX_ATTEMPTS => {
                let wait = jitter(FIRST_WAIT * 2u32.pow(attempt - 1));
                tracing::debug!(
                    operation,
                    attempt,
                    backend = ?db.get_database_backend(),
                    wait_us = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX),
                    "a concurrent change conflicted; running the unit again"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(Error::Busy { contention, .. }) => {
                return Err(Error::Busy {
                    contention,
                    attempts: attempt,
                });
            }
            other => return other,
        }
    }
}

/// Whether `db` is the pool itself, whose units own their transactions (not
/// a caller's transaction, whose rollback a retry could not undo). The type
/// names come from the same compiler run, so equal names are the same type.
fn on_pool<C: ?Sized>() -> bool {
    let name = std::any::type_name::<C>();
    name == std::any::type_name::<DatabaseConnection>()
        || name == std::any::type_name::<super::Pool>()
}

/// A uniformly random wait in `[0, up_to]`.
fn jitter(up_to: Duration) -> Duration {
    let fraction = f64::from(getrandom::u32().unwrap_or(u32::MAX / 2)) / f64::from(u32::MAX);
    up_to.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use sea_orm::{DatabaseExecutor, DatabaseTransaction};

    use super::*;

    fn busy(contention: Contention) -> Error {
        Error::Busy {
            contention,
            attempts: 1,
        }
    }

    #[test]
    fn only_the_pool_itself_retries() {
        assert!(on_pool::<DatabaseConnection>());
        assert!(on_pool::<super::super::Pool>());
        assert!(!on_pool::<DatabaseTransaction>());
        assert!(!on_pool::<DatabaseExecutor<'static>>());
    }

    #[tokio::test]
    async fn conflicts_run_again_until_the_unit_succeeds_or_the_bound() {
        let pool = DatabaseConnection::default();
        let runs = Cell::new(0);
        let done = retry(&pool, "test", || async {
            runs.set(runs.get() + 1);
            if runs.get() < 3 {
                Err(busy(Contention::Conflict))
            } else {
                Ok(runs.get())
            }
        })
        .await;
        assert_eq!(done.unwrap(), 3);

        runs.set(0);
        let gave_up: Result<(), Error> = retry(&pool, "test", || async {
            runs.set(runs.get() + 1);
            Err(busy(Contention::Conflict))
        })
        .await;
        assert!(matches!(
            gave_up,
            Err(Error::Busy {
                contention: Contention::Conflict,
                attempts: MAX_ATTEMPTS
            })
        ));
        assert_eq!(runs.get(), MAX_ATTEMPTS);
    }

    #[tokio::test]
    async fn lock_timeouts_and_other_errors_are_not_retried() {
        let pool = DatabaseConnection::default();
        for (error, after) in [
            (busy(Contention::LockTimeout), NOT_A_LOCK_WAIT),
            (Error::conflict("email", "taken"), Duration::ZERO),
        ] {
            let runs = Cell::new(0);
            let result: Result<(), Error> = retry(&pool, "test", || async {
                runs.set(runs.get() + 1);
                tokio::time::sleep(after).await;
                Err(match &error {
                    Error::Busy { contention, .. } => busy(*contention),
                    _ => Error::conflict("email", "taken"),
                })
            })
            .await;
            assert!(result.is_err());
            assert_eq!(runs.get(), 1);
        }
    }

    #[tokio::test]
    async fn a_lock_timeout_at_once_is_a_galera_abort_and_runs_again() {
        let pool = DatabaseConnection::default();
        let runs = Cell::new(0);
        let result: Result<(), Error> = retry(&pool, "test", || async {
            runs.set(runs.get() + 1);
            if runs.get() < 3 {
                Err(busy(Contention::LockTimeout))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(runs.get(), 3);
    }

    #[test]
    fn waits_stay_within_their_bound() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_millis(4)) <= Duration::from_millis(4));
        }
    }
}
