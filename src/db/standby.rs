//! Reads from a PostgreSQL hot standby ([`DATABASE_READ_URL`](READ_URL_VAR)),
//! never staler than reads from the primary.
//!
//! # What reads there
//! A [`Pool`](super::Pool) given a standby ([`Pool::with_standby`](super::Pool::with_standby))
//! sends every plain `SELECT` it runs outside a transaction there: session
//! validation, permission checks, API-key lookups, listings. Everything
//! else (writes, `SELECT … FOR UPDATE`, every statement of a transaction)
//! goes to the primary.
//!
//! # Freshness
//! Two rules keep every read at least as fresh as the primary's:
//!
//! 1. **A write returns once the standby has it.** After a write through the
//!    pool commits (a statement outside a transaction, or the commit of a
//!    transaction that wrote), the pool reads the primary's WAL position and
//!    waits until the standby has replayed up to it, at most
//!    [`Standby::wait`] (default [`DEFAULT_WAIT`]). So a session revoked, a
//!    key revoked, a role revoked or an account locked is refused by every
//!    read that starts after the revoking call returned, in any process
//!    that reads from that standby, and a session just created validates at
//!    once. When the wait runs out (the standby is paused, lagging or
//!    gone), this process reads from the primary until the standby has
//!    replayed that position (the *fence*).
//! 2. **A standby serves a read only when it is keeping up.** Each read
//!    carries a check the standby evaluates in the same round trip: replay
//!    not paused (`pg_wal_replay_pause()`); everything received replayed,
//!    or else the last transaction it replayed committed less than
//!    [`MAX_APPLY_LAG`] ago; and this process's fence replayed. Otherwise
//!    the primary answers. A read that finds no row (an unknown token, a
//!    key or account just created elsewhere) also asks the primary.
//!
//! Why that covers other processes: a writer whose wait ran out waited at
//! least [`MAX_APPLY_LAG`] (the wait is never shorter), so from then on the
//! standby holds WAL it received and has not replayed, and the last
//! transaction it replayed committed before the write, longer ago than
//! the lag allowed: every process's next read goes to the primary until the
//! standby has replayed the write. (This compares the standby's clock with
//! the commit times the primary wrote: the two clocks must agree to well
//! within [`MAX_APPLY_LAG`].)
//!
//! What no read-side check can see is WAL the standby has not received yet:
//! a write committed by another process that did not wait (a client other
//! than gatehouse) reaches the standby after the network's delay, and a
//! replication stream that stalls silently is noticed after
//! `wal_receiver_timeout` (60 s by default), when the walreceiver restarts.
//!
//! A busy primary keeps the standby a moment from having replayed all it
//! received; that is within [`MAX_APPLY_LAG`] and the standby still serves.
//! Reads the primary answers instead are counted in [`StandbyStats::primary`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement, Value, Values,
};

use crate::Error;

/// The environment variable naming the read-only standby.
pub const READ_URL_VAR: &str = "DATABASE_READ_URL";
/// How long a write waits by default for the standby to replay it.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(1);
/// How far behind the primary a standby that has WAL left to replay may be
/// (by the commit time of what it replayed last) and still serve reads; also
/// the shortest wait a write may be given.
pub const MAX_APPLY_LAG: Duration = Duration::from_millis(100);

/// The result column carrying the standby's verdict on its own freshness.
const FRESH: &str = "gatehouse_fresh";

/// A hot standby and what this process knows of it; shared by a pool's clones.
pub struct Standby {
    conn: DatabaseConnection,
    wait: Duration,
    /// The WAL position (as a number) the standby must have replayed before
    /// it serves this process again; 0 when it has kept up.
    fence: AtomicU64,
    served: AtomicU64,
    primary: AtomicU64,
}

/// How many reads the standby served and how many went to the primary
/// instead (a miss, a standby behind, or an error there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StandbyStats {
    /// Reads the standby answered.
    pub served: u64,
    /// Reads routed to the standby that the primary answered.
    pub primary: u64,
}

impl Standby {
    /// Opens a pool to the standby at `url` ([`super::connect_options`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming `DATABASE_READ_URL` for a URL that is not
    /// PostgreSQL; [`Error::Db`] when the standby cannot be reached.
    pub(super) async fn connect(url: &str, wait: Duration) -> Result<Arc<Self>, Error> {
        if !url.starts_with("postgres") {
            return Err(Error::Config {
                var: READ_URL_VAR,
                reason: "reads from a standby are for a PostgreSQL hot standby; \
                         give a postgres:// URL or unset it"
                    .into(),
            });
        }
        let conn = sea_orm::Database::connect(super::connect_options(url)).await?;
        Ok(Arc::new(Self {
            conn,
            wait: wait.max(MAX_APPLY_LAG),
            fence: AtomicU64::new(0),
            served: AtomicU64::new(0),
            primary: AtomicU64::new(0),
        }))
    }

    /// How long a write waits for the standby to replay it (at least
    /// [`MAX_APPLY_LAG`]).
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// The reads served so far by the standby and by the primary instead.
    pub fn stats(&self) -> StandbyStats {
        StandbyStats {
            served: self.served.load(Ordering::Relaxed),
            primary: self.primary.load(Ordering::Relaxed),
        }
    }

    /// The rows of `stmt` from the standby, or `None` when the primary must
    /// answer: not a plain `SELECT`, no row, the standby behind, or an error there.
    pub(super) async fn read(&self, stmt: &Statement) -> Option<Vec<QueryResult>> {
        let checked = self.checked(stmt)?;
        let rows = match self.conn.query_all_raw(checked).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::debug!(error = %err, "the standby failed a read; the primary answers");
                return self.to_primary();
            }
        };
        let fresh = rows
            .first()
            .map(|row| row.try_get::<Option<bool>>("", FRESH));
        match fresh {
            Some(Ok(Some(true))) => {
                self.served.fetch_add(1, Ordering::Relaxed);
                Some(rows)
            }
            _ => self.to_primary(),
        }
    }

    fn to_primary(&self) -> Option<Vec<QueryResult>> {
        self.primary.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// `stmt` with the freshness check as its last column, when it is a
    /// plain `SELECT` (see the module docs).
    fn checked(&self, stmt: &Statement) -> Option<Statement> {
        if stmt.db_backend != DbBackend::Postgres || !is_plain_select(&stmt.sql) {
            return None;
        }
        let mut values = stmt.values.clone().unwrap_or(Values(Vec::new())).0;
        values.push(Value::String(Some(format_lsn(
            self.fence.load(Ordering::Acquire),
        ))));
        let fence = values.len();
        values.push(Value::Double(Some(MAX_APPLY_LAG.as_secs_f64() * 1000.0)));
        let lag = values.len();
        let sql = format!(
            "SELECT gh_q.*, (SELECT CASE WHEN pg_is_in_recovery() THEN \
             NOT pg_is_wal_replay_paused() \
             AND (pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn() \
             OR now() - pg_last_xact_replay_timestamp() < ${lag} * interval '1 millisecond') \
             AND pg_last_wal_replay_lsn() >= ${fence}::pg_lsn \
             ELSE TRUE END) AS {FRESH} FROM ({}) AS gh_q",
            stmt.sql
        );
        Some(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
    }

    /// Waits until the standby has replayed what the primary (`primary`)
    /// has committed so far, at most [`Standby::wait`]; past that, fences
    /// this process's reads off the standby until it has (module docs).
    pub(super) async fn settle<C: ConnectionTrait>(&self, primary: &C) {
        let position = match primary
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pg_current_wal_lsn()::text",
            ))
            .await
        {
            Ok(Some(row)) => row
                .try_get_by_index::<String>(0)
                .ok()
                .and_then(|text| parse_lsn(&text)),
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the primary's WAL position after a write");
                None
            }
        };
        let Some(position) = position else {
            // Unknown: keep every read on the primary until the next settle.
            self.fence.store(u64::MAX, Ordering::Release);
            return;
        };
        let deadline = Instant::now() + self.wait;
        let mut pause = Duration::from_micros(250);
        loop {
            if self.replayed(position).await {
                // The fence is passed too once this position is.
                let _ = self
                    .fence
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                        (f <= position || f == u64::MAX).then_some(0)
                    });
                return;
            }
            if Instant::now() + pause > deadline {
                break;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        self.fence.fetch_max(position, Ordering::AcqRel);
        tracing::warn!(
            wait_ms = u64::try_from(self.wait.as_millis()).unwrap_or(u64::MAX),
            position = %format_lsn(position),
            "the standby has not replayed a write in time; this process reads from the primary until it has"
        );
    }

    /// Whether the standby has replayed up to `position` (a standby that
    /// is no longer in recovery has everything).
    async fn replayed(&self, position: u64) -> bool {
        let stmt = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT CASE WHEN pg_is_in_recovery() \
             THEN COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, FALSE) ELSE TRUE END",
            [Value::String(Some(format_lsn(position)))],
        );
        match self.conn.query_one_raw(stmt).await {
            Ok(Some(row)) => row.try_get_by_index::<bool>(0).unwrap_or(false),
            _ => false,
        }
    }

    /// Closes the standby's pool.
    pub(super) async fn close(&self) -> Result<(), sea_orm::DbErr> {
        self.conn.clone().close().await
    }
}

/// Whether `sql` only reads and takes no row locks.
pub(super) fn is_plain_select(sql: &str) -> bool {
    let sql = sql.trim_start();
    let starts = sql
        .get(..7)
        .is_some_and(|head| head.eq_ignore_ascii_case("SELECT "));
    let upper = sql.to_ascii_uppercase();
    starts
        && !upper.contains(" FOR UPDATE")
        && !upper.contains(" FOR SHARE")
        && !upper.contains(" FOR NO KEY UPDATE")
        && !upper.contains(" FOR KEY SHARE")
}

/// A WAL position `X/Y` (two hexadecimal halves) as one number.
fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.trim().split_once('/')?;
    let high = u64::from_str_radix(high, 16).ok()?;
    let low = u64::from_str_radix(low, 16).ok()?;
    (high <= u64::from(u32::MAX) && low <= u64::from(u32::MAX)).then_some(high << 32 | low)
}

/// A WAL position as PostgreSQL writes it.
fn format_lsn(position: u64) -> String {
    format!("{:X}/{:X}", position >> 32, position & u64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_positions_read_and_write_as_postgres_does() {
        for text in ["0/0", "0/3000060", "16/B374D848", "FFFFFFFF/FFFFFFFF"] {
            assert_eq!(format_lsn(parse_lsn(text).unwrap()), text);
        }
        assert!(parse_lsn("0/3000060").unwrap() < parse_lsn("1/0").unwrap());
        for bad in ["", "3000060", "x/1", "1/", "100000000/0"] {
            assert_eq!(parse_lsn(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_plain_selects_are_routed() {
        assert!(is_plain_select(
            r#"SELECT "id" FROM "sessions" WHERE "token_hash" = $1"#
        ));
        assert!(is_plain_select("  select 1"));
        for sql in [
            r#"SELECT "id" FROM "roles" WHERE "id" = $1 FOR UPDATE"#,
            r#"SELECT "id" FROM "roles" FOR SHARE"#,
            r#"INSERT INTO "roles" ("id") VALUES ($1) RETURNING "id""#,
            r#"UPDATE "sessions" SET "risk_score" = $1"#,
            "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
            "SELECTED",
        ] {
            assert!(!is_plain_select(sql), "{sql}");
        }
    }
}
