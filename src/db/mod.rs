//! Connecting to the database with pool settings made for short security
//! queries, refusing writes to a read-only standby up front, and [`Pool`],
//! the connection the services reach it through.
//!
//! SeaORM's defaults ping the server on every pool checkout, which costs a
//! second round trip per point lookup (session validation, API-key
//! verification, permission checks). [`connect_options`] pings only
//! connections that sat idle long enough to have been dropped by a server,
//! proxy or firewall, and turns off per-statement logging.
//!
//! # On a Galera cluster
//! Galera replicates synchronously but applies asynchronously: a node may
//! read a moment before it has applied what another node committed (an
//! account registered on node 1, signed in on node 2). Every connection the
//! pool opens therefore turns on causal reads when the server is a Galera
//! node (`@@wsrep_on`): `wsrep_sync_wait` gets bit 1 (reads, `SHOW` and
//! `BEGIN` wait until the node has applied everything committed in the
//! cluster before they started), with one statement when the connection
//! opens and nothing on checkout ([`causal_reads`]). A pool built otherwise
//! and given to [`crate::Gatehouse::builder`] is checked
//! ([`ensure_causal_reads`]). The retry policy of writes lives in [`retry`](mod@retry).
//!
//! # Reading from a hot standby
//! A [`Pool`] given a PostgreSQL standby (`DATABASE_READ_URL`,
//! [`Pool::with_standby`]) reads there and writes to the primary, never
//! staler than the primary: see [`standby`].
//!
//! # Behind PgBouncer
//! Behind PgBouncer in transaction pooling ([`PoolMode::Transaction`],
//! `DATABASE_POOL_MODE=transaction`), a [`Pool`] runs every statement in a
//! transaction of its own, so that it stays on one server session (see
//! [`Pool`]).

mod pool;
pub mod retry;
pub mod standby;
mod transaction;

use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

use crate::Error;

pub use gatehouse_migration::runner::pooler::{POOL_MODE_VAR, PoolMode};
pub use pool::{Pool, PoolSource};
pub use retry::retry;
pub use standby::{READ_URL_VAR, StandbyStats};
pub use transaction::PoolTransaction;

/// The environment variable naming the database.
pub const DATABASE_URL_VAR: &str = "DATABASE_URL";
/// Where the database lives when `DATABASE_URL` is not set: gatehouse's
/// embedded default, the SQLite file `./gatehouse.db` (the same as the
/// migration CLI's, which exists only with the `cli` feature).
pub const DEFAULT_DATABASE_URL: &str = "sqlite://gatehouse.db?mode=rwc";

#[cfg(test)]
#[tokio::test]
async fn a_url_that_cannot_be_parsed_is_never_quoted_with_its_password() {
    let url = "postgres://app:hunter2@127.0.0.1:99999/x";
    let err = connect(url).await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    let err = Pool::connect(url, PoolMode::Session).await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
}

#[cfg(all(test, feature = "cli"))]
#[test]
fn the_default_database_is_the_migration_clis() {
    assert_eq!(
        DEFAULT_DATABASE_URL,
        gatehouse_migration::cli::DEFAULT_DATABASE_URL
    );
}
/// A pooled connection idle at least this long is pinged before use.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(30);
/// Default pool size.
pub const MAX_CONNECTIONS: u32 = 16;

/// Pool settings for `url`: no ping on a hot checkout, no statement logging,
/// bounded connect and acquire waits.
pub fn connect_options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(MAX_CONNECTIONS)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
        .sqlx_logging(false);
    causal_reads(&mut options);
    options
}

/// The setting [`causal_reads`] turns on, named in errors.
pub const WSREP_SYNC_WAIT_VAR: &str = "wsrep_sync_wait";

/// Sets bit 1 of `wsrep_sync_wait` (keeping the server's other bits) on a
/// Galera node; a no-op elsewhere. MariaDB knows both variables with or
/// without Galera; MySQL without Galera knows neither (error 1193).
#[cfg(feature = "mysql")]
const CAUSAL_READS_SQL: &str = "SET SESSION wsrep_sync_wait = \
     IF(@@wsrep_on, @@session.wsrep_sync_wait | 1, @@session.wsrep_sync_wait)";

/// Makes every MySQL/MariaDB connection of a pool built from `options` read
/// causally when its server is a Galera node (see the module docs): one
/// statement when a connection opens, none on checkout. It takes the
/// `map_sqlx_mysql_pool_opts` slot of `options`: an application that needs
/// that slot for itself sets `wsrep_sync_wait` in its own hook instead.
/// Nothing changes for PostgreSQL and SQLite.
pub fn causal_reads(options: &mut ConnectOptions) -> &mut ConnectOptions {
    #[cfg(feature = "mysql")]
    options.map_sqlx_mysql_pool_opts(|pool| {
        pool.after_connect(|conn, _| {
            Box::pin(async move {
                use sea_orm::sqlx::Executor;
                match conn.execute(CAUSAL_READS_SQL).await {
                    Ok(_) => Ok(()),
                    Err(err) if unknown_variable(&err) => Ok(()),
                    Err(err) => Err(err),
                }
            })
        })
    });
    options
}

/// MySQL's "unknown system variable" (1193): a server without Galera.
#[cfg(feature = "mysql")]
fn unknown_variable(err: &sea_orm::sqlx::Error) -> bool {
    const ER_UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;
    err.as_database_error()
        .and_then(|e| e.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>())
        .is_some_and(|e| e.number() == ER_UNKNOWN_SYSTEM_VARIABLE)
}

/// Refuses a pool on a Galera node whose connections do not read causally
/// (bit 1 of `wsrep_sync_wait` unset), checked on one connection: a sign-in
/// right after a registration on another node could then miss the account.
/// A pool from [`connect`] or [`connect_options`] (or options passed through
/// [`causal_reads`]) passes, as does a server configured with
/// `wsrep_sync_wait=1`. One query on MySQL/MariaDB, none elsewhere.
///
/// # Errors
/// [`Error::Config`] naming `wsrep_sync_wait` and the two ways to set it; a
/// database error when the server cannot be reached.
pub async fn ensure_causal_reads<C: ConnectionTrait>(db: &C) -> Result<(), Error> {
    if db.get_database_backend() != DbBackend::MySql {
        return Ok(());
    }
    let row = match db
        .query_one_raw(Statement::from_string(
            DbBackend::MySql,
            "SELECT CAST(@@wsrep_on AS SIGNED), CAST(@@session.wsrep_sync_wait AS SIGNED)",
        ))
        .await
    {
        Ok(row) => row,
        // MySQL without Galera has neither variable.
        Err(err) if sea_orm_unknown_variable(&err) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    let (on, wait): (i64, i64) = match row {
        Some(row) => (row.try_get_by_index(0)?, row.try_get_by_index(1)?),
        None => return Ok(()),
    };
    if on == 1 && wait & 1 == 0 {
        return Err(Error::Config {
            var: WSREP_SYNC_WAIT_VAR,
            reason: format!(
                "the pool is on a Galera node and its connections read without waiting for \
                 the other nodes' writes (wsrep_sync_wait = {wait}): a sign-in right after a \
                 registration on another node could miss the account. Open the pool with \
                 gatehouse::db::connect_options (or pass your ConnectOptions through \
                 gatehouse::db::causal_reads), or set wsrep_sync_wait = 1 in the servers' \
                 configuration"
            ),
        });
    }
    Ok(())
}

/// [`unknown_variable`] on a sea-orm error.
fn sea_orm_unknown_variable(err: &sea_orm::DbErr) -> bool {
    #[cfg(feature = "mysql")]
    {
        use sea_orm::{DbErr, RuntimeErr};
        matches!(err, DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) if unknown_variable(e))
    }
    #[cfg(not(feature = "mysql"))]
    {
        let _ = err;
        false
    }
}

/// Opens a pool to `url` with [`connect_options`], after checking the
/// URL's scheme. For [`PoolMode::Transaction`] use [`Pool::connect`].
///
/// # Errors
/// [`Error::Config`] (naming `DATABASE_URL`) for an unsupported scheme;
/// [`Error::Db`] when the server cannot be reached.
pub async fn connect(url: &str) -> Result<DatabaseConnection, Error> {
    check_scheme(url)?;
    Database::connect(connect_options(url))
        .await
        .map_err(|err| Error::Db(without_secrets(err, url)))
}

/// A connection error with `url`'s password (and the whole URL where the
/// driver quotes it) masked: drivers quote the URL they could not parse.
pub(crate) fn without_secrets(err: sea_orm::DbErr, url: &str) -> sea_orm::DbErr {
    let text = err.to_string();
    let masked = gatehouse_migration::redact::text(&text, url);
    if masked == text {
        err
    } else {
        sea_orm::DbErr::Conn(sea_orm::RuntimeErr::Internal(masked))
    }
}

/// Refuses a server that accepts no writes (a PostgreSQL hot standby, a
/// MySQL/MariaDB read-only replica) before a change is attempted: what
/// every writing operator command runs first. Reads a few settings only
/// (see [`gatehouse_migration::read_only::detect`], the one check the
/// migration runner uses too).
///
/// # Errors
/// [`Error::ReadOnly`] saying why and to connect to the primary; a
/// database error.
pub async fn ensure_writable<C: ConnectionTrait>(db: &C) -> Result<(), Error> {
    match gatehouse_migration::read_only::detect(db).await {
        Ok(None) => Ok(()),
        Ok(Some(reason)) => Err(Error::ReadOnly(reason)),
        Err(err) => Err(err.into()),
    }
}

/// Refuses a URL gatehouse has no driver for, before any connection attempt.
///
/// # Errors
/// [`Error::Config`] naming `DATABASE_URL` and the schemes that work.
pub fn check_scheme(url: &str) -> Result<(), Error> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if matches!(
        scheme.as_str(),
        "postgres" | "postgresql" | "mysql" | "mariadb" | "sqlite"
    ) {
        Ok(())
    } else {
        Err(Error::Config {
            var: DATABASE_URL_VAR,
            reason: format!(
                "unsupported scheme `{scheme}:`; use postgres://, mysql:// (also MariaDB) or sqlite://"
            ),
        })
    }
}
