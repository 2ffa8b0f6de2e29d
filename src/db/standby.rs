//! Reads from a PostgreSQL hot standby ([`DATABASE_READ_URL`](READ_URL_VAR))
//! as fresh as reads from the primary while the standby streams (see the
//! limits below).
//!
//! # What reads there
//! A [`Pool`](super::Pool) given a standby ([`Pool::with_standby`](super::Pool::with_standby))
//! sends every plain `SELECT` it runs outside a transaction there: session
//! validation, permission checks, API-key lookups, listings. Everything
//! else (writes, `SELECT … FOR UPDATE`, every statement of a transaction)
//! goes to the primary.
//!
//! # Freshness
//! Two rules keep reads as fresh as the primary's while the standby streams:
//!
//! 1. **A write returns once the standby has it.** After a write through the
//!    pool commits (a statement outside a transaction, or the commit of a
//!    transaction that wrote), the pool reads the primary's WAL position and
//!    waits until the standby has replayed up to it, at most
//!    [`Standby::wait`] (default [`DEFAULT_WAIT`], never less than
//!    [`MAX_APPLY_LAG`]). So a session revoked, a key revoked, a role revoked
//!    or an account locked is refused by every read that starts after the
//!    revoking call returned, and a session just created validates at once.
//!    When the wait runs out (the standby is paused, lagging, gone) or the
//!    position cannot be read, this process reads from the primary until the
//!    standby has replayed that position (the *fence*), and its further
//!    writes check once instead of waiting again.
//! 2. **A standby serves a read only when it is keeping up.** Each read
//!    carries a check the standby evaluates in the same statement: it is in
//!    recovery; replay is not paused (`pg_wal_replay_pause()`); a walreceiver
//!    runs and streams; everything received is replayed, or else the last
//!    transaction it replayed committed less than [`MAX_APPLY_LAG`] ago; and
//!    this process's fence is replayed. Otherwise the primary answers. A
//!    read that finds no row (an unknown token, a key or account just created
//!    elsewhere) also asks the primary. A standby that fails or does not
//!    answer within the wait is left alone for a second.
//!
//! Other processes are covered by the same check: a writer whose wait ran
//! out waited at least [`MAX_APPLY_LAG`], so if the standby had received the
//! write it now holds WAL it has not replayed while what it replayed last
//! committed before the write, longer ago than the lag allowed, and every
//! process's reads go to the primary until it has replayed the write. (This
//! compares the standby's clock with the commit times the primary wrote: the
//! clocks must agree to well within [`MAX_APPLY_LAG`].)
//!
//! # Limits
//! - WAL the standby has not received while its walreceiver still counts as
//!   streaming: a connection that stalls without closing is seen after
//!   `wal_receiver_timeout` (60 s by default). A walreceiver that stopped
//!   (the primary gone, the stream cut) is seen at once. Without
//!   `pg_read_all_stats` the role cannot see a walreceiver's status, only
//!   that it runs: grant it to the application's role on the standby.
//! - Writes made without gatehouse do not wait for the standby.
//! - The check is evaluated after the statement took its snapshot: a fenced
//!   process whose standby passes the fence in that instant may read once
//!   from just before it.
//! - For a guarantee that holds with the stream down too, make the standby
//!   synchronous (`synchronous_standby_names`, `synchronous_commit =
//!   remote_apply`): the primary then commits only what the standby applied.
//!
//! Reads the primary answers instead are counted in [`StandbyStats::primary`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement, Value, Values,
};

use super::PoolMode;
use crate::Error;

/// The environment variable naming the read-only standby.
pub const READ_URL_VAR: &str = "DATABASE_READ_URL";
/// How long a write waits by default for the standby to replay it.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(1);
/// How far behind the primary a standby that has WAL left to replay may be
/// (by the commit time of what it replayed last) and still serve reads; also
/// the shortest wait a write may be given.
pub const MAX_APPLY_LAG: Duration = Duration::from_millis(100);
/// How long the standby is left alone after it failed a read or a check.
const BACK_OFF: Duration = Duration::from_secs(1);

/// The result column carrying the standby's verdict on its own freshness.
const FRESH: &str = "gatehouse_fresh";

/// A hot standby and what this process knows of it; shared by a pool's clones.
pub struct Standby {
    conn: DatabaseConnection,
    // Read under transaction pooling only, which is PostgreSQL's.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    mode: PoolMode,
    wait: Duration,
    /// The WAL position (as a number) the standby must have replayed before
    /// it serves this process again; 0 when it has kept up, `u64::MAX` when
    /// a write's position could not be read.
    fence: AtomicU64,
    /// Counts the times the fence became `u64::MAX`, so that only a position
    /// read afterwards clears it.
    unknown: AtomicU64,
    /// Milliseconds since `origin` before which the standby is not asked
    /// (it just failed).
    skip_until: AtomicU64,
    origin: Instant,
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

/// A configuration error naming `DATABASE_READ_URL`.
fn config(reason: impl Into<String>) -> Error {
    Error::Config {
        var: READ_URL_VAR,
        reason: reason.into(),
    }
}

impl Standby {
    /// Opens a pool to the standby at `url` ([`super::connect_options`],
    /// under the primary's pool `mode`, waits bounded by `wait`) and checks
    /// that it is a hot standby.
    ///
    /// # Errors
    /// [`Error::Config`] naming `DATABASE_READ_URL` for a URL that is not
    /// PostgreSQL, a server that cannot be reached (the URL's password never
    /// shown) or one that is not in recovery.
    pub(super) async fn connect(
        url: &str,
        wait: Duration,
        mode: PoolMode,
    ) -> Result<Arc<Self>, Error> {
        if !url.starts_with("postgres") {
            return Err(config(
                "reads from a standby are for a PostgreSQL hot standby; give a postgres:// URL or unset it",
            ));
        }
        let wait = wait.max(MAX_APPLY_LAG);
        let unreachable = |err: DbErr| {
            config(format!(
                "cannot reach the standby {}: {}. Check that it runs and accepts connections, \
                 or unset DATABASE_READ_URL to read from the primary",
                gatehouse_migration::redact::url(url),
                gatehouse_migration::redact::text(&err.to_string(), url)
            ))
        };
        let mut options = super::connect_options(url);
        // A standby that does not answer costs a bounded wait, then is left alone.
        options
            .connect_timeout(wait.max(Duration::from_secs(1)))
            .acquire_timeout(wait.max(Duration::from_secs(1)));
        #[cfg(feature = "postgres")]
        if mode == PoolMode::Transaction {
            options.map_sqlx_postgres_opts(|o| o.statement_cache_capacity(0));
        }
        let conn = sea_orm::Database::connect(options)
            .await
            .map_err(unreachable)?;
        let standby = Self {
            conn,
            mode,
            wait,
            fence: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            skip_until: AtomicU64::new(0),
            origin: Instant::now(),
            served: AtomicU64::new(0),
            primary: AtomicU64::new(0),
        };
        let in_recovery = standby
            .query(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pg_is_in_recovery()",
            ))
            .await
            .map_err(unreachable)?
            .first()
            .and_then(|row| row.try_get_by_index::<bool>(0).ok());
        if in_recovery != Some(true) {
            return Err(config(
                "the server it names is not a hot standby (it is not in recovery): a primary or \
                 a promoted standby would serve reads that never see the primary's writes; point \
                 it at a streaming standby of DATABASE_URL, or unset it",
            ));
        }
        Ok(Arc::new(standby))
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

    /// Runs `stmt` on the standby as the pool mode wants it.
    async fn query(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        #[cfg(feature = "postgres")]
        if self.mode == PoolMode::Transaction {
            return super::pool::pinned::query_all(&self.conn, stmt).await;
        }
        self.conn.query_all_raw(stmt).await
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Leaves the standby alone for [`BACK_OFF`] after it failed.
    fn back_off(&self, err: &dyn std::fmt::Display) {
        let until = self.elapsed_ms() + u64::try_from(BACK_OFF.as_millis()).unwrap_or(1000);
        self.skip_until.fetch_max(until, Ordering::AcqRel);
        tracing::warn!(error = %err, "the standby failed; the primary answers for a second");
    }

    fn resting(&self) -> bool {
        self.elapsed_ms() < self.skip_until.load(Ordering::Acquire)
    }

    /// The rows of `stmt` from the standby, or `None` when the primary must
    /// answer: not a plain `SELECT`, no row, the standby behind, slow or
    /// failing.
    pub(super) async fn read(&self, stmt: &Statement) -> Option<Vec<QueryResult>> {
        let checked = self.checked(stmt)?;
        if self.resting() {
            return self.to_primary();
        }
        let rows = match tokio::time::timeout(self.wait, self.query(checked)).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(err)) => {
                self.back_off(&err);
                return self.to_primary();
            }
            Err(_) => {
                self.back_off(&"no answer within the wait");
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
        // A walreceiver whose status this role may not see (without
        // pg_read_all_stats) counts as streaming.
        let sql = format!(
            "SELECT gh_q.*, (SELECT CASE WHEN pg_is_in_recovery() THEN \
             NOT pg_is_wal_replay_paused() \
             AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status IS NULL OR status = 'streaming') \
             AND (pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn() \
             OR now() - pg_last_xact_replay_timestamp() < ${lag} * interval '1 millisecond') \
             AND pg_last_wal_replay_lsn() >= ${fence}::pg_lsn \
             ELSE FALSE END) AS {FRESH} FROM ({}) AS gh_q",
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
    /// While the fence is up, a write checks once instead of waiting again.
    pub(super) async fn settle<C: ConnectionTrait>(&self, primary: &C) {
        let unknown_before = self.unknown.load(Ordering::Acquire);
        let started = Instant::now();
        let deadline = started + self.wait;
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
            // Unknown: give the standby the whole wait as for any write, then
            // keep this process on the primary until a later write's position
            // is replayed.
            tokio::time::sleep_until(deadline.into()).await;
            self.unknown.fetch_add(1, Ordering::AcqRel);
            self.fence.store(u64::MAX, Ordering::Release);
            return;
        };
        let patient = self.fence.load(Ordering::Acquire) == 0 && !self.resting();
        let mut pause = Duration::from_micros(250);
        loop {
            if self.replayed(position, deadline).await {
                let unknown_now = self.unknown.load(Ordering::Acquire);
                let _ = self
                    .fence
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |fence| {
                        let passed = fence <= position
                            || (fence == u64::MAX && unknown_now == unknown_before);
                        passed.then_some(0)
                    });
                return;
            }
            let now = Instant::now();
            if !patient || now >= deadline {
                break;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        self.fence.fetch_max(position, Ordering::AcqRel);
        if patient {
            tracing::warn!(
                wait_ms = u64::try_from(self.wait.as_millis()).unwrap_or(u64::MAX),
                position = %format_lsn(position),
                "the standby has not replayed a write in time; this process reads from the primary until it has"
            );
        }
    }

    /// Whether the standby has replayed up to `position`, asked before
    /// `deadline` (no answer, an error, or a server no longer in recovery
    /// count as not).
    async fn replayed(&self, position: u64, deadline: Instant) -> bool {
        let stmt = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT CASE WHEN pg_is_in_recovery() \
             THEN COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, FALSE) ELSE FALSE END",
            [Value::String(Some(format_lsn(position)))],
        );
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left.max(Duration::from_millis(1)), self.query(stmt)).await {
            Ok(Ok(rows)) => rows
                .first()
                .and_then(|row| row.try_get_by_index::<bool>(0).ok())
                .unwrap_or(false),
            Ok(Err(err)) => {
                self.back_off(&err);
                false
            }
            Err(_) => false,
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
