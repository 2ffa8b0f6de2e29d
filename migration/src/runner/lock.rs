//! One migrator at a time per database. PostgreSQL: a session advisory lock
//! (advisory locks are per database); MySQL/MariaDB: `GET_LOCK` on a name that
//! includes the database; SQLite: the database's write lock, held by the transaction the
//! whole run executes in. A waiting run says so once (an [`Event`]), then waits until
//! the lock is free or `--lock-timeout` passes.
//!
//! On a Galera cluster (`wsrep_on`) `GET_LOCK` is node-local, so the lock is
//! a lease instead: row 1 of [`LEASE_TABLE`], inserted by an autocommit write
//! that the cluster's certification lets exactly one node win, renewed every
//! few seconds from a connection of its own and deleted on release. The
//! holder also keeps its node's `GET_LOCK`, taken first: a live migrator on
//! the same node (of any account, or an older build without the lease) is
//! waited for there, and a lease taken on the waiter's own node while that
//! lock is free has lost its holder (killed, or its connection gone) and is
//! taken over at once. A lease from another node is taken over once its
//! holder stopped renewing for [`LEASE`] (DDL longer than that blocks
//! renewals under total-order isolation; the holder checks its lease before
//! every statement and stops when it lost it). A live holder on any node is
//! waited for, never mistaken for an interrupted run.

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
/// and saying once through `notify` that it waits. On Galera, returns the
/// lease, which must be kept until [`release`].
///
/// # Errors
/// A message naming `--lock-timeout` when the wait times out; a database error otherwise.
pub async fn acquire(
    db: &DatabaseConnection,
    timeout: Option<Duration>,
    notify: &(dyn Fn(Event) + Sync),
) -> Result<Option<Lease>, DbErr> {
    let galera = is_galera(db).await?;
    let holder = uuid::Uuid::now_v7().to_string();
    if galera {
        prepare_galera(db).await?;
    }
    let started = Instant::now();
    let mut said = false;
    loop {
        let taken = if galera {
            try_lease(db, &holder).await?
        } else {
            try_acquire(db).await?
        };
        if taken {
            if said {
                notify(Event::LockAcquired {
                    waited: started.elapsed(),
                });
            }
            if !galera {
                return Ok(None);
            }
            let renewer = match renewal_connection(db).await {
                Ok(renewer) => renewer,
                Err(err) => {
                    let lease = Lease {
                        holder,
                        renewal: tokio::spawn(async {}),
                    };
                    let _ = release(db, Some(lease)).await;
                    return Err(err);
                }
            };
            let renewal = spawn_renewal(renewer, holder.clone());
            return Ok(Some(Lease { holder, renewal }));
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

/// Whether this connection still holds the lock (a dropped connection loses
/// it), or on Galera whether the lease of holder `lease` is still this run's
/// (row 1 names it: a renewal that found another holder would have too).
///
/// # Errors
/// A database error.
pub async fn still_held(db: &DatabaseConnection, lease: Option<&str>) -> Result<bool, DbErr> {
    if let Some(holder) = lease {
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::MySql,
                format!(
                    "SELECT COUNT(*) FROM `{LEASE_TABLE}` WHERE `id` = 1 AND `holder` = ? \
                     AND IS_USED_LOCK({MYSQL_LOCK_NAME}) = CONNECTION_ID()"
                ),
                [holder.into()],
            ))
            .await?;
        return Ok(row.map(|r| r.try_get_by_index::<i64>(0)).transpose()? == Some(1));
    }
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

/// Whether another connection holds the lock now (a migrator is running):
/// on Galera, a lease that is live (not expired, and its connection open
/// when it was taken on this node). Always `false` on SQLite, whose lock is
/// the write transaction.
///
/// # Errors
/// A database error.
pub async fn held_elsewhere(db: &DatabaseConnection) -> Result<bool, DbErr> {
    if is_galera(db).await? {
        if !super::has_table(db, LEASE_TABLE).await? {
            return Ok(false);
        }
        return Ok(scalar_i64(
            db,
            &format!(
                "SELECT COUNT(*) FROM `{LEASE_TABLE}` WHERE `id` = 1 \
                 AND `expires_at` >= UTC_TIMESTAMP(6) AND NOT (`node` = {NODE_ID} \
                 AND IS_FREE_LOCK({MYSQL_LOCK_NAME}) = 1)"
            ),
        )
        .await?
        .is_some_and(|n| n > 0));
    }
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

/// Releases the lock (closing the connection would too), or on Galera
/// deletes the lease and stops renewing it.
///
/// # Errors
/// A database error.
pub async fn release(db: &DatabaseConnection, lease: Option<Lease>) -> Result<(), DbErr> {
    if let Some(lease) = lease {
        lease.renewal.abort();
        let deleted = db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::MySql,
                format!("DELETE FROM `{LEASE_TABLE}` WHERE `id` = 1 AND `holder` = ?"),
                [lease.holder.clone().into()],
            ))
            .await
            .map(|_| ());
        release_user_lock(db).await;
        return deleted;
    }
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => format!("SELECT pg_advisory_unlock({POSTGRES_LOCK_KEY})"),
        DbBackend::MySql => format!("SELECT RELEASE_LOCK({MYSQL_LOCK_NAME})"),
        _ => return Ok(()),
    };
    db.query_one_raw(stmt(db.get_database_backend(), &sql))
        .await
        .map(|_| ())
}

// --- Galera -----------------------------------------------------------------

/// The Galera lease's table: one row (id 1) while a migrator holds the lock.
pub const LEASE_TABLE: &str = "gatehouse_migration_lock";
/// How long a lease lasts without renewal: a migrator killed on another
/// node blocks others at most this long (one killed on the waiter's own node
/// is seen at once, its connection being gone).
pub const LEASE: Duration = Duration::from_secs(15);
/// How often the holder renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// This node's identity in the cluster, new at every server start, so a
/// lease taken before a restart never matches a connection after it.
const NODE_ID: &str = "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                       WHERE VARIABLE_NAME = 'WSREP_GCOMM_UUID')";

/// A held Galera lease: renewed by a task on a connection of its own until
/// released or dropped, or until a renewal finds another holder.
pub struct Lease {
    holder: String,
    renewal: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// The run's own holder id (a UUID).
    pub fn holder(&self) -> &str {
        &self.holder
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// Whether `db` is a node of a Galera cluster (`wsrep_on`), where user
/// locks are node-local and the lease stands in for them.
///
/// # Errors
/// A database error.
pub async fn is_galera(db: &DatabaseConnection) -> Result<bool, DbErr> {
    if db.get_database_backend() != DbBackend::MySql {
        return Ok(false);
    }
    let row = db
        .query_one_raw(stmt(
            DbBackend::MySql,
            "SHOW GLOBAL VARIABLES LIKE 'wsrep_on'",
        ))
        .await?;
    Ok(match row {
        Some(row) => row
            .try_get_by_index::<String>(1)
            .is_ok_and(|v| v.eq_ignore_ascii_case("ON")),
        None => false,
    })
}

/// Creates the lease table if missing (DDL, replicated in total order) and
/// makes the connection's reads wait until the node applied every write the
/// cluster committed before them, so a run that takes the lease sees the
/// ledger exactly as the previous holder left it.
async fn prepare_galera(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SET SESSION wsrep_sync_wait = 1")
        .await?;
    db.execute_unprepared(&format!(
        "CREATE TABLE IF NOT EXISTS `{LEASE_TABLE}` (\
           `id` int NOT NULL PRIMARY KEY, \
           `holder` varchar(36) NOT NULL, \
           `node` varchar(64) NOT NULL, \
           `connection_id` bigint NOT NULL, \
           `acquired_at` datetime(6) NOT NULL, \
           `expires_at` datetime(6) NOT NULL\
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
    ))
    .await
    .map(|_| ())
}

/// The SQLSTATE of an error the server answered with.
fn sqlstate(err: &DbErr) -> Option<String> {
    use sea_orm_migration::sea_orm::{RuntimeErr, sqlx};
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match &**e {
                sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// 23000: the row exists (MySQL 1062); 40001: certification chose another
/// node's write, or a deadlock (MySQL 1213).
fn lost_race(err: &DbErr) -> bool {
    matches!(sqlstate(err).as_deref(), Some("23000" | "40001"))
}

/// Tries once to take the lease: an autocommit INSERT of row 1, which the
/// cluster's certification lets exactly one node win. A lease whose holder
/// is gone (expired, or its connection no longer exists on this node) is
/// removed first.
async fn try_lease(db: &DatabaseConnection, holder: &str) -> Result<bool, DbErr> {
    // The node's own user lock first: a live migrator on this node holds it
    // (whatever its account, and until its last statement ends even when its
    // client was killed), and so does an older build that knows no lease.
    if !try_acquire(db).await? {
        return Ok(false);
    }
    let taken = try_insert_lease(db, holder).await;
    if !matches!(taken, Ok(true)) {
        release_user_lock(db).await;
    }
    taken
}

async fn release_user_lock(db: &DatabaseConnection) {
    let _ = db
        .execute_unprepared(&format!("DO RELEASE_LOCK({MYSQL_LOCK_NAME})"))
        .await;
}

/// The INSERT of row 1, or else removing a lease whose holder is gone, by a
/// caller holding this node's user lock.
async fn try_insert_lease(db: &DatabaseConnection, holder: &str) -> Result<bool, DbErr> {
    let insert = Statement::from_sql_and_values(
        DbBackend::MySql,
        format!(
            "INSERT INTO `{LEASE_TABLE}` (`id`, `holder`, `node`, `connection_id`, `acquired_at`, \
             `expires_at`) VALUES (1, ?, {NODE_ID}, CONNECTION_ID(), UTC_TIMESTAMP(6), \
             UTC_TIMESTAMP(6) + INTERVAL {} SECOND)",
            LEASE.as_secs()
        ),
        [holder.into()],
    );
    match db.execute_raw(insert).await {
        Ok(_) => return Ok(true),
        Err(err) if lost_race(&err) => {}
        Err(err) => return Err(err),
    }
    // The holder is gone: its lease ran out, or it held it from this node,
    // whose user lock the caller now holds, so its connection is closed (a
    // killed migrator, a lost connection).
    let stale = db
        .execute_unprepared(&format!(
            "DELETE FROM `{LEASE_TABLE}` WHERE `id` = 1 AND (`expires_at` < UTC_TIMESTAMP(6) \
             OR `node` = {NODE_ID})"
        ))
        .await;
    match stale {
        Ok(_) => Ok(false),
        Err(err) if lost_race(&err) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Renews the lease every [`RENEW_EVERY`] on `db` (a connection of its own)
/// until another holder has it.
fn spawn_renewal(db: DatabaseConnection, holder: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let renew = Statement::from_sql_and_values(
                DbBackend::MySql,
                format!(
                    "UPDATE `{LEASE_TABLE}` SET `expires_at` = UTC_TIMESTAMP(6) + INTERVAL {} SECOND \
                     WHERE `id` = 1 AND `holder` = ?",
                    LEASE.as_secs()
                ),
                [holder.clone().into()],
            );
            match db.execute_raw(renew).await {
                // Another holder has it: `still_held` says so before the next migration.
                Ok(done) if done.rows_affected() == 0 => break,
                // A failed renewal is tried again; the lease outlives a few.
                _ => {}
            }
        }
        let _ = db.close().await;
    })
}

/// A second one-connection pool to the runner's server, for lease renewals.
async fn renewal_connection(db: &DatabaseConnection) -> Result<DatabaseConnection, DbErr> {
    #[cfg(feature = "mysql")]
    {
        use sea_orm_migration::sea_orm::{RuntimeErr, SqlxMySqlConnector, sqlx};
        let options = (*db.get_mysql_connection_pool().connect_options()).clone();
        let pool = sqlx::pool::PoolOptions::<sqlx::MySql>::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| {
                DbErr::Conn(RuntimeErr::Internal(format!(
                    "cannot open the migration lease's renewal connection: {e}"
                )))
            })?;
        Ok(SqlxMySqlConnector::from_sqlx_mysql_pool(pool))
    }
    #[cfg(not(feature = "mysql"))]
    {
        let _ = db;
        Err(DbErr::Custom("built without MySQL support".into()))
    }
}
