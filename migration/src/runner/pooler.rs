//! Connection poolers before PostgreSQL (PgBouncer). In session pooling a
//! client connection keeps one server session until it disconnects, so the
//! runner works as on a direct connection. In transaction pooling the pooler
//! hands the server session to another client as soon as a transaction (or
//! an autocommit statement) ends: the migration lock, the session settings
//! and sqlx's prepared statements would be left on a session the runner no
//! longer owns (a session advisory lock stranded there blocks every later
//! migrator). The runner therefore refuses such a connection before it
//! changes anything, whether the application declares it
//! ([`POOL_MODE_VAR`]` = transaction`) or not ([`refuse_transaction_pooling`]
//! detects it).
//!
//! [`PoolMode`] is also the application's setting: gatehouse's services run
//! under transaction pooling when told so (see `gatehouse::db`).

use sea_orm_migration::sea_orm::{DatabaseConnection, DbBackend, DbErr};

/// The environment variable declaring how `DATABASE_URL` is pooled:
/// `session` (the default: a direct connection or session pooling) or
/// `transaction` (PgBouncer's transaction pooling).
pub const POOL_MODE_VAR: &str = "DATABASE_POOL_MODE";

/// The environment variable naming the database `migrate` commands connect
/// to instead of `DATABASE_URL` (the database itself, or a session-pooling
/// port, when `DATABASE_URL` goes through transaction pooling).
pub const MIGRATION_URL_VAR: &str = "DATABASE_MIGRATION_URL";

/// How the connections of a database URL reach their server sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PoolMode {
    /// Each client connection keeps its server session: a direct
    /// connection, or a pooler in session pooling.
    #[default]
    Session,
    /// A pooler (PgBouncer `pool_mode = transaction`) lends a server session
    /// for one transaction at a time.
    Transaction,
}

impl PoolMode {
    /// The mode's name, as [`POOL_MODE_VAR`] spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Transaction => "transaction",
        }
    }

    /// Parses `session` or `transaction` (any case, surrounding spaces
    /// ignored; empty means the default, `session`).
    ///
    /// # Errors
    /// A message (to follow the variable's name) saying which values it takes.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "session" => Ok(Self::Session),
            "transaction" => Ok(Self::Transaction),
            _ => Err(invalid()),
        }
    }

    /// The mode [`POOL_MODE_VAR`] declares (the default when it is unset).
    ///
    /// # Errors
    /// As [`PoolMode::parse`], also for a value that is not UTF-8.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(POOL_MODE_VAR) {
            Ok(text) => Self::parse(&text),
            Err(std::env::VarError::NotPresent) => Ok(Self::Session),
            Err(std::env::VarError::NotUnicode(_)) => Err(invalid()),
        }
    }
}

fn invalid() -> String {
    "must be `session` (the default) or `transaction` (DATABASE_URL goes through PgBouncer in \
     transaction pooling)"
        .to_owned()
}

/// How the runner knows a connection pools per transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// [`POOL_MODE_VAR`] says so.
    Declared,
    /// [`refuse_transaction_pooling`] saw another client on this
    /// connection's server session, or this connection change sessions.
    Detected,
}

/// The runner's refusal of a connection that goes through transaction
/// pooling; `url_var` names where its URL came from (`DATABASE_URL`).
pub fn transaction_pooling_error(url_var: &str, evidence: Evidence) -> DbErr {
    let how = match evidence {
        Evidence::Declared => format!("{POOL_MODE_VAR}=transaction"),
        Evidence::Detected => "PgBouncer or a similar pooler: another connection was handed \
                               this connection's server session"
            .to_owned(),
    };
    DbErr::Migration(format!(
        "{url_var} goes through a pooler in transaction pooling mode ({how}): migrations need \
         one session (the migration lock and session settings live on it); set \
         {MIGRATION_URL_VAR} to the database directly (or to a session-pooling port). Nothing \
         was changed."
    ))
}

/// Refuses `db` when its connections share server sessions per transaction.
/// PostgreSQL only (elsewhere `Ok`); changes nothing on the database.
///
/// The check takes one connection of `db` and opens a probe connection with
/// `db`'s connect options, then, a few times, reads `pg_backend_pid()` on
/// each in turn, by simple queries (no prepared statement is left behind).
/// In session pooling, as on a direct connection, the connection keeps its
/// server session while it is open: its pid never changes and the probe
/// never gets it. In transaction pooling the session goes back to the pooler
/// after each statement, and PgBouncer lends its most recently used idle
/// session first, so the probe gets the connection's session (or, under
/// other clients' load, the connection moves to another). No false alarm is
/// possible; a miss would need, in every one of twenty rounds, another
/// client to take the session between two statements and hand it back
/// before the connection's next one.
///
/// # Errors
/// [`transaction_pooling_error`] naming `url_var`; a database error when a
/// query or the probe connection fails.
pub async fn refuse_transaction_pooling(
    db: &DatabaseConnection,
    url_var: &str,
) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    #[cfg(feature = "postgres")]
    {
        if postgres::shares_sessions(db).await? {
            return Err(transaction_pooling_error(url_var, Evidence::Detected));
        }
    }
    #[cfg(not(feature = "postgres"))]
    let _ = url_var;
    Ok(())
}

#[cfg(feature = "postgres")]
mod postgres {
    use sea_orm_migration::sea_orm::sqlx::{self, Connection, Row};
    use sea_orm_migration::sea_orm::{DatabaseConnection, DbErr, RuntimeErr};

    /// Rounds of the check; each gives the pooler a chance to show itself. With
    /// three, one check in 40 missed while twelve other clients kept the pooler
    /// busy; twenty cost about 40 simple queries (milliseconds) on a session.
    const ROUNDS: usize = 20;

    fn conn_err(err: sqlx::Error) -> DbErr {
        DbErr::Conn(RuntimeErr::Internal(format!(
            "cannot check how the connection is pooled: {err}"
        )))
    }

    async fn backend_pid(conn: &mut sqlx::PgConnection) -> Result<i32, DbErr> {
        // A simple query: one message, one server session, nothing prepared.
        let row = sqlx::raw_sql("SELECT pg_backend_pid()")
            .fetch_one(conn)
            .await
            .map_err(conn_err)?;
        row.try_get::<i32, _>(0).map_err(conn_err)
    }

    /// Whether `db`'s connections share server sessions (see
    /// [`super::refuse_transaction_pooling`]).
    pub(super) async fn shares_sessions(db: &DatabaseConnection) -> Result<bool, DbErr> {
        let pool = db.get_postgres_connection_pool();
        let mut own = pool.acquire().await.map_err(conn_err)?;
        let mut probe = sqlx::PgConnection::connect_with(pool.connect_options().as_ref())
            .await
            .map_err(conn_err)?;
        let first = backend_pid(&mut own).await?;
        let mut shared = false;
        for round in 0..ROUNDS {
            let mine = if round == 0 {
                first
            } else {
                backend_pid(&mut own).await?
            };
            let theirs = backend_pid(&mut probe).await?;
            if mine != first || theirs == mine || theirs == first {
                shared = true;
                break;
            }
        }
        let _ = probe.close().await;
        Ok(shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_modes_parse_and_refuse_the_rest() {
        assert_eq!(PoolMode::parse(""), Ok(PoolMode::Session));
        assert_eq!(PoolMode::parse(" Session "), Ok(PoolMode::Session));
        assert_eq!(PoolMode::parse("TRANSACTION"), Ok(PoolMode::Transaction));
        let err = PoolMode::parse("statement").unwrap_err();
        assert!(
            err.contains("`session`") && err.contains("`transaction`"),
            "{err}"
        );
        for mode in [PoolMode::Session, PoolMode::Transaction] {
            assert_eq!(PoolMode::parse(mode.as_str()), Ok(mode));
        }
    }

    #[test]
    fn the_refusal_names_the_url_and_the_way_out() {
        let DbErr::Migration(declared) =
            transaction_pooling_error("DATABASE_URL", Evidence::Declared)
        else {
            panic!("a migration error");
        };
        assert!(
            declared.starts_with("DATABASE_URL goes through a pooler in transaction pooling mode")
                && declared.contains("DATABASE_POOL_MODE=transaction")
                && declared.contains("set DATABASE_MIGRATION_URL"),
            "{declared}"
        );
        let detected = transaction_pooling_error("DATABASE_URL", Evidence::Detected).to_string();
        assert!(detected.contains("PgBouncer"), "{detected}");
        assert!(!detected.contains('\n'), "{detected}");
    }
}
