//! [`PoolTransaction`]: a transaction begun on a [`Pool`], which, when the
//! pool reads from a standby, returns from its commit once the standby has
//! replayed what it wrote (see [`super::standby`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, IsolationLevel,
    QueryResult, Statement, TransactionError, TransactionOptions, TransactionSession,
    TransactionTrait,
};

use super::Pool;

/// A transaction of a [`Pool`]: sea-orm's [`DatabaseTransaction`], which it
/// runs every statement on, and on commit, when the pool has a standby and
/// the transaction wrote, a wait until the standby has replayed the commit.
/// Nested transactions (savepoints) share the outermost one's bookkeeping;
/// only the outermost commit waits.
pub struct PoolTransaction {
    txn: DatabaseTransaction,
    /// The pool to wait on at commit: set on the outermost transaction of a
    /// pool with a standby.
    settle: Option<Pool>,
    wrote: Arc<AtomicBool>,
}

impl fmt::Debug for PoolTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolTransaction")
            .field("backend", &self.txn.get_database_backend())
            .field("waits_for_standby", &self.settle.is_some())
            .finish()
    }
}

impl PoolTransaction {
    /// The outermost transaction of `pool`.
    pub(super) fn new(txn: DatabaseTransaction, pool: &Pool) -> Self {
        Self {
            txn,
            settle: pool.has_standby().then(|| pool.clone()),
            wrote: Arc::default(),
        }
    }

    fn nested(&self, txn: DatabaseTransaction) -> Self {
        Self {
            txn,
            settle: None,
            wrote: Arc::clone(&self.wrote),
        }
    }

    /// Commits; see [`PoolTransaction`].
    ///
    /// # Errors
    /// The commit's error (nothing is waited for then).
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await?;
        if let Some(pool) = &self.settle
            && self.wrote.load(Ordering::Acquire)
        {
            pool.settle().await;
        }
        Ok(())
    }

    /// Rolls back.
    ///
    /// # Errors
    /// The rollback's error.
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }

    fn wrote(&self) {
        self.wrote.store(true, Ordering::Release);
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for PoolTransaction {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.wrote();
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.wrote();
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        if !super::standby::is_plain_select(&stmt.sql) {
            self.wrote();
        }
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        if !super::standby::is_plain_select(&stmt.sql) {
            self.wrote();
        }
        self.txn.query_all_raw(stmt).await
    }
}

#[async_trait::async_trait]
impl TransactionSession for PoolTransaction {
    async fn commit(self) -> Result<(), DbErr> {
        PoolTransaction::commit(self).await
    }

    async fn rollback(self) -> Result<(), DbErr> {
        PoolTransaction::rollback(self).await
    }
}

/// Nested transactions are savepoints of the outermost one.
#[async_trait::async_trait]
impl TransactionTrait for PoolTransaction {
    type Transaction = PoolTransaction;

    async fn begin(&self) -> Result<PoolTransaction, DbErr> {
        Ok(self.nested(self.txn.begin().await?))
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<PoolTransaction, DbErr> {
        Ok(self.nested(
            self.txn
                .begin_with_config(isolation_level, access_mode)
                .await?,
        ))
    }

    async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<PoolTransaction, DbErr> {
        Ok(self.nested(self.txn.begin_with_options(options).await?))
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

/// Runs `callback` in `txn`: commits on `Ok`, rolls back on `Err`.
pub(super) async fn run<F, T, E>(
    txn: PoolTransaction,
    callback: F,
) -> Result<T, TransactionError<E>>
where
    F: for<'c> FnOnce(
            &'c PoolTransaction,
        ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
        + Send,
    T: Send,
    E: fmt::Display + fmt::Debug + Send,
{
    let result = callback(&txn).await;
    match result {
        Ok(value) => {
            txn.commit().await.map_err(TransactionError::Connection)?;
            Ok(value)
        }
        Err(err) => {
            txn.rollback().await.map_err(TransactionError::Connection)?;
            Err(TransactionError::Transaction(err))
        }
    }
}
