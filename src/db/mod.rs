//! Connecting to the database with pool settings made for short security
//! queries, and [`Pool`], the connection the services reach it through.
//!
//! SeaORM's defaults ping the server on every pool checkout, which costs a
//! second round trip per point lookup (session validation, API-key
//! verification, permission checks). [`connect_options`] pings only
//! connections that sat idle long enough to have been dropped by a server,
//! proxy or firewall, and turns off per-statement logging.
//!
//! Behind PgBouncer in transaction pooling ([`PoolMode::Transaction`],
//! `DATABASE_POOL_MODE=transaction`), a [`Pool`] runs every statement in a
//! transaction of its own, so that it stays on one server session (see
//! [`Pool`]).

mod pool;

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::Error;

pub use gatehouse_migration::runner::pooler::{POOL_MODE_VAR, PoolMode};
pub use pool::{Pool, PoolSource};

/// The environment variable naming the database.
pub const DATABASE_URL_VAR: &str = "DATABASE_URL";
/// Where the database lives when `DATABASE_URL` is not set: gatehouse's
/// embedded default, the SQLite file `./gatehouse.db` (the same as the
/// migration CLI's, which exists only with the `cli` feature).
pub const DEFAULT_DATABASE_URL: &str = "sqlite://gatehouse.db?mode=rwc";

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
    options
}

/// Opens a pool to `url` with [`connect_options`], after checking the
/// URL's scheme. For [`PoolMode::Transaction`] use [`Pool::connect`].
///
/// # Errors
/// [`Error::Config`] (naming `DATABASE_URL`) for an unsupported scheme;
/// [`Error::Db`] when the server cannot be reached.
pub async fn connect(url: &str) -> Result<DatabaseConnection, Error> {
    check_scheme(url)?;
    Ok(Database::connect(connect_options(url)).await?)
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
