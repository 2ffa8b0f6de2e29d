//! One migrator at a time per database. PostgreSQL: a session advisory lock
//! (advisory locks are per database); MySQL/MariaDB: `GET_LOCK` on a name that
//! includes the database; SQLite: the database's write lock, held by the transaction the
//! whole run executes in. A waiting run says so once (an [`Event`]), then waits until
//! the lock is free or `--lock-timeout` passes.

use std::time::{Duration, Instant};

use super::Event;
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement,
};

/// Name of the MySQL/MariaDB user lock, per database (user locks are server-wide).
const MYSQL_LOCK_NAME: &str = "CONCAT('gatehouse_migrate:', DATABASE())";
/// Key of the PostgreSQL advisory lock: "gatehous" as a big-endian i64; never changes.
pub const POSTGRES_LOCK_KEY: i64 = 0x6761_7465_686f_7573;

const POLL: Duration = Duration::from_millis(200);

fn stmt(backend: DbBackend, sql: &str) -> Statement {
    Statement::from_string(backend, sql.to_owned())
}

async fn scalar_i64(db: &DatabaseConnection, sql: &str) -> Result<Option<i64>, DbErr> {
    let row = db
        .query_one_raw(stmt(db.get_database_backend(), sql))
        .await?;
    match row {
        Some(row) => row.try_get_by_index::<Option<i64>>(0),
        None => Ok(None),
    }
}

/// Tries once to take the lock on the runner's single connection.
async fn try_acquire(db: &DatabaseConnection) -> Result<bool, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let row = db
                .query_one_raw(stmt(
                    DbBackend::Postgres,
                    &format!("SELECT pg_try_advisory_lock({POSTGRES_LOCK_KEY})"),
                ))
                .await?
                .ok_or_else(|| DbErr::Custom("pg_try_advisory_lock returned no row".into()))?;
            row.try_get_by_index::<bool>(0)
        }
        DbBackend::MySql => {
            Ok(scalar_i64(db, &format!("SELECT GET_LOCK({MYSQL_LOCK_NAME}, 0)")).await? == Some(1))
        }
        _ => Ok(true),
    }
}

/// Takes the migration lock, waiting at most `timeout` (forever with `None`)
/// and saying once through `notify` that it waits.
///
/// # Errors
/// A message naming `--lock-timeout` when the wait times out; a database error otherwise.
pub async fn acquire(
    db: &DatabaseConnection,
    timeout: Option<Duration>,
    notify: &(dyn Fn(Event) + Sync),
) -> Result<(), DbErr> {
    let started = Instant::now();
    let mut said = false;
    loop {
        if try_acquire(db).await? {
            if said {
                notify(Event::LockAcquired {
                    waited: started.elapsed(),
                });
            }
            return Ok(());
        }
        if !said {
            notify(Event::Waiting { write_lock: false });
            said = true;
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            return Err(lock_timeout_error(timeout));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The error for a lock wait that ran out.
pub fn lock_timeout_error(timeout: Option<Duration>) -> DbErr {
    DbErr::Migration(format!(
        "another migrator still holds the migration lock after {} s; wait for it to finish \
         or raise --lock-timeout",
        timeout.unwrap_or_default().as_secs()
    ))
}

/// Whether this connection still holds the lock (a dropped connection loses it).
///
/// # Errors
/// A database error.
pub async fn still_held(db: &DatabaseConnection) -> Result<bool, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => Ok(scalar_i64(
            db,
            &format!(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND pid = pg_backend_pid() AND objid = ({POSTGRES_LOCK_KEY} & 4294967295) \
                 AND classid = ({POSTGRES_LOCK_KEY} >> 32)"
            ),
        )
        .await?
            == Some(1)),
        DbBackend::MySql => Ok(scalar_i64(
            db,
            &format!("SELECT IS_USED_LOCK({MYSQL_LOCK_NAME}) = CONNECTION_ID()"),
        )
        .await?
            == Some(1)),
        _ => Ok(true),
    }
}

/// Whether another connection holds the lock now (a migrator is running).
/// Always `false` on SQLite, whose lock is the write transaction.
///
/// # Errors
/// A database error.
pub async fn held_elsewhere(db: &DatabaseConnection) -> Result<bool, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => Ok(scalar_i64(
            db,
            &format!(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND pid <> pg_backend_pid() AND database = (SELECT oid FROM pg_database \
                 WHERE datname = current_database()) AND objid = ({POSTGRES_LOCK_KEY} & 4294967295) \
                 AND classid = ({POSTGRES_LOCK_KEY} >> 32)"
            ),
        )
        .await?
        .is_some_and(|n| n > 0)),
        DbBackend::MySql => Ok(scalar_i64(
            db,
            &format!(
                "SELECT COALESCE(IS_USED_LOCK({MYSQL_LOCK_NAME}) <> CONNECTION_ID(), 0)"
            ),
        )
        .await?
            == Some(1)),
        _ => Ok(false),
    }
}

/// Releases the lock (closing the connection would too).
///
/// # Errors
/// A database error.
pub async fn release(db: &DatabaseConnection) -> Result<(), DbErr> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => format!("SELECT pg_advisory_unlock({POSTGRES_LOCK_KEY})"),
        DbBackend::MySql => format!("SELECT RELEASE_LOCK({MYSQL_LOCK_NAME})"),
        _ => return Ok(()),
    };
    db.query_one_raw(stmt(db.get_database_backend(), &sql))
        .await
        .map(|_| ())
}
