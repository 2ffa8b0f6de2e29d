//! [`Pool`]: the connection the services reach the database through, safe
//! under the pool mode the application declares: what transaction pooling
//! breaks, what the pool does about it and what it costs are on [`Pool`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, Statement, TransactionError, TransactionOptions,
    TransactionTrait,
};

use super::standby::{Standby, StandbyStats, is_plain_select};
use super::transaction::{PoolTransaction, run};
use super::{POOL_MODE_VAR, PoolMode};
use crate::Error;

/// A database pool as the services use it: sea-orm's [`DatabaseConnection`]
/// and the [`PoolMode`] it runs under. Implements sea-orm's
/// [`ConnectionTrait`] and [`TransactionTrait`], so every service function
/// and sea-orm query takes it; cheap to clone (clones share the pool).
///
/// In [`PoolMode::Session`] (a direct connection, or session pooling) it is
/// the sea-orm pool itself, statement for statement.
///
/// PgBouncer in transaction pooling lends a server session for one
/// transaction at a time. sqlx runs a statement with arguments as Parse,
/// Describe, Sync, then Bind, Execute, Sync: outside a transaction the
/// pooler may send the two halves to two sessions. sea-orm names every
/// statement (`sqlx_s_N`, per client connection) and, with the statement
/// cache off, never closes it, so a session collects the names of every
/// client it served: `prepared statement "sqlx_s_1" already exists`, or
/// another client's statement run under that name. In
/// [`PoolMode::Transaction`] the pool therefore
///
/// - runs each statement outside a transaction as `BEGIN`, the statement
///   (unnamed, so nothing is left on the session), `COMMIT`, on one pooled
///   connection: four round trips, where a statement sqlx has cached costs
///   one;
/// - starts each transaction with `DEALLOCATE ALL` (the names other clients
///   left on the session it is lent): one round trip more, and each
///   statement in it is parsed again (two round trips);
/// - runs statements without arguments (`execute_unprepared`) as they are:
///   a simple query is one message, on one session;
/// - keeps sqlx's statement cache off (a cached name would be looked up on
///   whatever session serves the next transaction).
///
/// Statements the application runs on the sea-orm pool directly
/// ([`Pool::connection`]) get none of this.
///
/// # With a standby
/// [`Pool::with_standby`] adds a PostgreSQL hot standby that plain reads go
/// to, at least as fresh as the primary's: see [`super::standby`].
///
/// ```no_run
/// # async fn run() -> Result<(), gatehouse::Error> {
/// use gatehouse::db::{Pool, PoolMode};
///
/// // Through PgBouncer in transaction pooling (DATABASE_POOL_MODE=transaction).
/// let pool = Pool::connect("postgres://app@pgbouncer:6432/app", PoolMode::Transaction).await?;
/// let admins = gatehouse::rbac::find_role(&pool, "admin").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    conn: DatabaseConnection,
    mode: PoolMode,
    standby: Option<Arc<Standby>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("backend", &self.conn.get_database_backend())
            .field("mode", &self.mode)
            .field("standby", &self.standby.is_some())
            .finish()
    }
}

/// A pool in [`PoolMode::Session`]: the connection as it is.
impl From<DatabaseConnection> for Pool {
    fn from(conn: DatabaseConnection) -> Self {
        Self {
            conn,
            mode: PoolMode::Session,
            standby: None,
        }
    }
}

impl Pool {
    /// Opens a pool to `url` with [`super::connect_options`] for `mode`
    /// (in [`PoolMode::Transaction`], with sqlx's statement cache off).
    ///
    /// # Errors
    /// As [`super::connect`]; [`Error::Config`] naming `DATABASE_POOL_MODE`
    /// for transaction pooling on a database other than PostgreSQL.
    pub async fn connect(url: &str, mode: PoolMode) -> Result<Self, Error> {
        super::check_scheme(url)?;
        #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
        let mut options = super::connect_options(url);
        if mode == PoolMode::Transaction {
            check_postgres(url.starts_with("postgres"))?;
            #[cfg(feature = "postgres")]
            options.map_sqlx_postgres_opts(|o| o.statement_cache_capacity(0));
        }
        let conn = sea_orm::Database::connect(options)
            .await
            .map_err(|err| super::without_secrets(err, url))?;
        Ok(Self {
            conn,
            mode,
            standby: None,
        })
    }

    /// `conn` for `mode`. In [`PoolMode::Transaction`] this opens a pool of
    /// its own with `conn`'s connect and pool options and sqlx's statement
    /// cache off (which cannot be turned off on an open pool); `conn` itself
    /// is then left unused (close it when nothing else needs it).
    ///
    /// # Errors
    /// [`Error::Config`] naming `DATABASE_POOL_MODE` for transaction pooling
    /// on a database other than PostgreSQL; [`Error::Db`] when the new pool
    /// cannot connect.
    pub async fn from_connection(conn: DatabaseConnection, mode: PoolMode) -> Result<Self, Error> {
        match mode {
            PoolMode::Session => Ok(Self::from(conn)),
            PoolMode::Transaction => {
                check_postgres(conn.get_database_backend() == DbBackend::Postgres)?;
                #[cfg(feature = "postgres")]
                {
                    let pool = conn.get_postgres_connection_pool();
                    let options = (*pool.connect_options())
                        .clone()
                        .statement_cache_capacity(0);
                    let reopened = pool
                        .options()
                        .clone()
                        .connect_with(options)
                        .await
                        .map_err(|err| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(err.into())))?;
                    Ok(Self {
                        conn: sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(reopened),
                        mode,
                        standby: None,
                    })
                }
                #[cfg(not(feature = "postgres"))]
                unreachable!("check_postgres refused a non-PostgreSQL connection")
            }
        }
    }

    /// The mode this pool runs under.
    pub fn mode(&self) -> PoolMode {
        self.mode
    }

    /// This pool, reading from the PostgreSQL hot standby at `url`
    /// (`DATABASE_READ_URL`), each write waiting at most `wait` for the
    /// standby to replay it ([`super::standby::DEFAULT_WAIT`] is the usual
    /// choice; never less than [`super::standby::MAX_APPLY_LAG`]); see
    /// [`super::standby`].
    ///
    /// # Errors
    /// [`Error::Config`] naming `DATABASE_READ_URL` when this pool or `url`
    /// is not PostgreSQL, when the standby cannot be reached (its URL's
    /// password never shown) or is not in recovery.
    pub async fn with_standby(mut self, url: &str, wait: Duration) -> Result<Self, Error> {
        if self.conn.get_database_backend() != DbBackend::Postgres {
            return Err(Error::Config {
                var: super::standby::READ_URL_VAR,
                reason: "reads from a standby are for PostgreSQL, and DATABASE_URL is not \
                         PostgreSQL; unset it"
                    .into(),
            });
        }
        self.standby = Some(Standby::connect(url, wait, self.mode).await?);
        Ok(self)
    }

    /// Whether plain reads go to a standby.
    pub fn has_standby(&self) -> bool {
        self.standby.is_some()
    }

    /// The reads the standby served and those the primary answered instead;
    /// `None` without a standby.
    pub fn standby_stats(&self) -> Option<StandbyStats> {
        self.standby.as_ref().map(|s| s.stats())
    }

    /// Waits until the standby has replayed what the primary has committed
    /// so far (at most the standby's wait; past it, this process reads from
    /// the primary until it has). Every write through the pool does this by
    /// itself; call it after writes made around the pool, for instance on
    /// [`Pool::connection`]. Nothing without a standby.
    pub async fn settle(&self) {
        if let Some(standby) = &self.standby {
            standby.settle(&self.primary()).await;
        }
    }

    /// Closes the pool and the standby's.
    ///
    /// # Errors
    /// A database error while closing.
    pub async fn close(self) -> Result<(), DbErr> {
        if let Some(standby) = &self.standby {
            standby.close().await?;
        }
        self.conn.close().await
    }

    /// This pool without its standby: every statement on the primary.
    fn primary(&self) -> Self {
        Self {
            conn: self.conn.clone(),
            mode: self.mode,
            standby: None,
        }
    }

    /// sea-orm's pool underneath. In [`PoolMode::Transaction`] statements run
    /// on it directly are not safe (see [`Pool`]): give `&Pool` instead
    /// wherever a `ConnectionTrait` is taken.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Whether statements outside a transaction need one of their own.
    fn pinned(&self) -> bool {
        self.mode == PoolMode::Transaction
    }

    /// Clears the prepared statements other clients left on the session a
    /// new transaction was lent (transaction pooling only).
    async fn clear(&self, txn: DatabaseTransaction) -> Result<PoolTransaction, DbErr> {
        if self.pinned() {
            txn.execute_unprepared("DEALLOCATE ALL").await?;
        }
        Ok(PoolTransaction::new(txn, self))
    }
}

/// Refuses transaction pooling on a database other than PostgreSQL.
fn check_postgres(is_postgres: bool) -> Result<(), Error> {
    if is_postgres {
        Ok(())
    } else {
        Err(Error::Config {
            var: POOL_MODE_VAR,
            reason: "`transaction` is for PostgreSQL behind PgBouncer in transaction pooling, \
                     and DATABASE_URL is not PostgreSQL; set it to `session` or unset it"
                .into(),
        })
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Pool {
    fn get_database_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let result = self.primary_execute(stmt).await?;
        self.settle().await;
        Ok(result)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        // A simple query: one message, one session, nothing prepared.
        let result = self.conn.execute_unprepared(sql).await?;
        self.settle().await;
        Ok(result)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        if let Some(standby) = &self.standby {
            if let Some(rows) = standby.read(&stmt).await {
                return Ok(rows.into_iter().next());
            }
            if !is_plain_select(&stmt.sql) {
                let row = self.primary_query_one(stmt).await?;
                self.settle().await;
                return Ok(row);
            }
        }
        self.primary_query_one(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        if let Some(standby) = &self.standby {
            if let Some(rows) = standby.read(&stmt).await {
                return Ok(rows);
            }
            if !is_plain_select(&stmt.sql) {
                let rows = self.primary_query_all(stmt).await?;
                self.settle().await;
                return Ok(rows);
            }
        }
        self.primary_query_all(stmt).await
    }
}

/// Statements on the primary, as the pool mode wants them.
impl Pool {
    async fn primary_execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        #[cfg(feature = "postgres")]
        if self.pinned() {
            return pinned::execute(&self.conn, stmt).await;
        }
        self.conn.execute_raw(stmt).await
    }

    async fn primary_query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        #[cfg(feature = "postgres")]
        if self.pinned() {
            return pinned::query_one(&self.conn, stmt).await;
        }
        self.conn.query_one_raw(stmt).await
    }

    async fn primary_query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        #[cfg(feature = "postgres")]
        if self.pinned() {
            return pinned::query_all(&self.conn, stmt).await;
        }
        self.conn.query_all_raw(stmt).await
    }
}

/// The transactions of a [`Pool`] are sea-orm's, begun on one pooled
/// connection (on the primary), as [`PoolTransaction`]s; in
/// [`PoolMode::Transaction`] their first statement is `DEALLOCATE ALL`.
#[async_trait::async_trait]
impl TransactionTrait for Pool {
    type Transaction = PoolTransaction;

    async fn begin(&self) -> Result<PoolTransaction, DbErr> {
        self.clear(self.conn.begin().await?).await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<PoolTransaction, DbErr> {
        self.clear(
            self.conn
                .begin_with_config(isolation_level, access_mode)
                .await?,
        )
        .await
    }

    async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<PoolTransaction, DbErr> {
        self.clear(self.conn.begin_with_options(options).await?)
            .await
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c PoolTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: fmt::Display + fmt::Debug + Send,
    {
        let txn = self.begin().await.map_err(TransactionError::Connection)?;
        run(txn, callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c PoolTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: fmt::Display + fmt::Debug + Send,
    {
        let txn = self
            .begin_with_config(isolation_level, access_mode)
            .await
            .map_err(TransactionError::Connection)?;
        run(txn, callback).await
    }
}

/// What takes a whole pooled connection (a `COPY`, see
/// [`crate::audit::ingest_pooled`]) besides statements: a
/// [`DatabaseConnection`] (as it is) or a [`Pool`] (safe under its mode).
pub trait PoolSource: ConnectionTrait + TransactionTrait {
    /// sea-orm's pool underneath.
    fn connection(&self) -> &DatabaseConnection;
}

impl PoolSource for DatabaseConnection {
    fn connection(&self) -> &DatabaseConnection {
        self
    }
}

impl PoolSource for Pool {
    fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }
}

/// A statement outside a transaction under transaction pooling: `BEGIN`,
/// the statement unnamed, `COMMIT`, on one pooled connection (one server
/// session); rolled back when it fails. Errors map as sea-orm's driver maps
/// them, so [`crate::Error`] reads them the same.
#[cfg(feature = "postgres")]
pub(super) mod pinned {
    use std::sync::Arc;

    use sea_orm::sqlx::{self, PgPool, Postgres};
    use sea_orm::{ConnAcquireErr, DatabaseConnection, DbErr, ExecResult, QueryResult, RuntimeErr};
    use sea_query_sqlx::SqlxValues;

    use super::Statement;

    type Query<'q> = sqlx::query::Query<'q, Postgres, SqlxValues>;

    fn query(stmt: &Statement) -> Query<'_> {
        let values = stmt
            .values
            .clone()
            .unwrap_or(sea_orm::sea_query::Values(Vec::new()));
        // Unnamed: nothing stays on the session for the next client.
        sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
            .persistent(false)
    }

    fn acquire_err(err: sqlx::Error) -> DbErr {
        match err {
            sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
            other => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(other))),
        }
    }

    fn exec_err(err: sqlx::Error) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err)))
    }

    fn query_err(err: sqlx::Error) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
    }

    fn pool(conn: &DatabaseConnection) -> &PgPool {
        conn.get_postgres_connection_pool()
    }

    /// Commits after `result`, or rolls back and gives its error.
    async fn finish<T>(
        txn: sqlx::Transaction<'static, Postgres>,
        result: Result<T, sqlx::Error>,
        map: fn(sqlx::Error) -> DbErr,
    ) -> Result<T, DbErr> {
        match result {
            Ok(value) => {
                txn.commit().await.map_err(map)?;
                Ok(value)
            }
            Err(err) => {
                let _ = txn.rollback().await;
                Err(map(err))
            }
        }
    }

    pub(super) async fn execute(
        conn: &DatabaseConnection,
        stmt: Statement,
    ) -> Result<ExecResult, DbErr> {
        let mut txn = pool(conn).begin().await.map_err(acquire_err)?;
        let result = query(&stmt).execute(&mut *txn).await.map(Into::into);
        finish(txn, result, exec_err).await
    }

    pub(super) async fn query_one(
        conn: &DatabaseConnection,
        stmt: Statement,
    ) -> Result<Option<QueryResult>, DbErr> {
        let mut txn = pool(conn).begin().await.map_err(acquire_err)?;
        let result = query(&stmt)
            .fetch_optional(&mut *txn)
            .await
            .map(|row| row.map(Into::into));
        finish(txn, result, query_err).await
    }

    pub(in crate::db) async fn query_all(
        conn: &DatabaseConnection,
        stmt: Statement,
    ) -> Result<Vec<QueryResult>, DbErr> {
        let mut txn = pool(conn).begin().await.map_err(acquire_err)?;
        let result = query(&stmt)
            .fetch_all(&mut *txn)
            .await
            .map(|rows| rows.into_iter().map(Into::into).collect());
        finish(txn, result, query_err).await
    }
}
