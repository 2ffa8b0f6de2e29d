//! Whether the server accepts writes: a PostgreSQL hot standby or a
//! MySQL/MariaDB read-only replica does not. The one check every writing
//! command runs first (the runner's, the operator CLI's), and the one reading
//! of a server's read-only refusal.

use std::fmt;

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, DbErr, RuntimeErr, Statement, sqlx};

/// Why the server accepts no writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadOnly {
    /// PostgreSQL in recovery (`pg_is_in_recovery()`): a hot standby.
    Standby,
    /// A setting that makes every transaction read-only, as on a replica:
    /// `default_transaction_read_only` or `transaction_read_only` on
    /// PostgreSQL; `read_only`, `super_read_only`, `innodb_read_only`,
    /// `transaction_read_only` or `tx_read_only` on MySQL/MariaDB.
    Setting(&'static str),
    /// The server refused a write as read-only (PostgreSQL SQLSTATE 25006,
    /// MySQL/MariaDB errors 1290, 1792 and 1836).
    Refused,
}

impl fmt::Display for ReadOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Standby => f.write_str(
                "the database server is a read-only standby (PostgreSQL in recovery) and accepts \
                 no writes; nothing was changed",
            )?,
            Self::Setting(name) => write!(
                f,
                "the database server is read-only, like a standby or read-only replica \
                 ({name} is on), and accepts no writes; nothing was changed"
            )?,
            Self::Refused => f.write_str(
                "the database server refused the write as read-only (a standby or read-only \
                 replica); nothing was written",
            )?,
        }
        f.write_str(
            ". Point DATABASE_URL (or --database-url) at the primary and run the command again",
        )
    }
}

impl std::error::Error for ReadOnly {}

/// PostgreSQL: recovery, then the two settings that make transactions read-only.
const POSTGRES_SQL: &str = "SELECT pg_is_in_recovery()::text, \
     current_setting('default_transaction_read_only'), current_setting('transaction_read_only')";

/// MySQL/MariaDB's read-only variables, in the order they are reported.
/// `SHOW VARIABLES` lists those the server has (MariaDB has no
/// `super_read_only`; MySQL 8 no `tx_read_only`), where `SELECT @@name`
/// would fail on an unknown one.
pub const MYSQL_VARIABLES: [&str; 5] = [
    "read_only",
    "super_read_only",
    "innodb_read_only",
    "transaction_read_only",
    "tx_read_only",
];

/// The statement that reads [`MYSQL_VARIABLES`] as `(Variable_name, Value)` rows.
pub fn mysql_sql() -> String {
    let names: Vec<String> = MYSQL_VARIABLES.iter().map(|n| format!("'{n}'")).collect();
    format!(
        "SHOW VARIABLES WHERE Variable_name IN ({})",
        names.join(", ")
    )
}

/// Whether a MySQL/MariaDB variable's value means "on": `OFF`/`0` is off;
/// anything else (`ON`, `1`, MariaDB 11's `NO_LOCK`...) is on.
fn mysql_on(value: &str) -> bool {
    !matches!(value.trim().to_ascii_uppercase().as_str(), "OFF" | "0" | "")
}

/// Reads `SHOW VARIABLES` rows ([`mysql_sql`]): the first of
/// [`MYSQL_VARIABLES`] that is on, if any.
pub fn from_mysql_variables<'a>(
    rows: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<ReadOnly> {
    let on: Vec<String> = rows
        .into_iter()
        .filter(|(_, value)| mysql_on(value))
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    MYSQL_VARIABLES
        .iter()
        .find(|name| on.iter().any(|n| n == *name))
        .map(|name| ReadOnly::Setting(name))
}

/// Whether the server `db` is connected to accepts writes: `None` when it
/// does, else why not. Reads a few settings and changes nothing, so it
/// runs on a standby too. SQLite is always writable here (a file opened
/// read-only shows in its own error).
///
/// # Errors
/// A database error from reading the settings.
pub async fn detect<C: ConnectionTrait>(db: &C) -> Result<Option<ReadOnly>, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let row = db
                .query_one_raw(Statement::from_string(DbBackend::Postgres, POSTGRES_SQL))
                .await?
                .ok_or_else(|| DbErr::Custom("pg_is_in_recovery() returned no row".into()))?;
            let recovery: String = row.try_get_by_index(0)?;
            let default_read_only: String = row.try_get_by_index(1)?;
            let read_only: String = row.try_get_by_index(2)?;
            Ok(if recovery == "true" {
                Some(ReadOnly::Standby)
            } else if default_read_only == "on" {
                Some(ReadOnly::Setting("default_transaction_read_only"))
            } else if read_only == "on" {
                Some(ReadOnly::Setting("transaction_read_only"))
            } else {
                None
            })
        }
        DbBackend::MySql => {
            let rows = db
                .query_all_raw(Statement::from_string(DbBackend::MySql, mysql_sql()))
                .await?;
            let mut pairs = Vec::with_capacity(rows.len());
            for row in &rows {
                let name: String = row.try_get_by_index(0)?;
                let value: String = row.try_get_by_index(1)?;
                pairs.push((name, value));
            }
            Ok(from_mysql_variables(
                pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            ))
        }
        _ => Ok(None),
    }
}

/// SQLSTATE `read_only_sql_transaction`: a write in a read-only transaction
/// (a PostgreSQL standby's refusal too).
pub const READ_ONLY_SQLSTATE: &str = "25006";

/// MySQL/MariaDB error numbers of a read-only refusal: 1290 (`--read-only`
/// and other options; only when its message says read-only), 1792 (a
/// read-only transaction), 1836 (read-only mode).
pub const MYSQL_READ_ONLY_ERRORS: [u16; 3] = [1290, 1792, 1836];

/// Whether `err` is the server refusing a write because it is read-only.
pub fn is_refusal(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    let sqlx::Error::Database(e) = e.as_ref() else {
        return false;
    };
    // The SQL standard's code, which MySQL/MariaDB also give error 1792.
    e.code().as_deref() == Some(READ_ONLY_SQLSTATE) || mysql_refusal(e.as_ref())
}

#[cfg(feature = "mysql")]
fn mysql_refusal(e: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(e) = e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() else {
        return false;
    };
    match e.number() {
        1290 => {
            let message = e.message().to_ascii_lowercase();
            message.contains("read-only") || message.contains("read_only")
        }
        number => MYSQL_READ_ONLY_ERRORS.contains(&number),
    }
}

#[cfg(not(feature = "mysql"))]
fn mysql_refusal(_: &dyn sqlx::error::DatabaseError) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_variables_read_off_as_writable_and_name_the_first_on() {
        let writable = [
            ("innodb_read_only", "OFF"),
            ("read_only", "OFF"),
            ("tx_read_only", "OFF"),
        ];
        assert_eq!(from_mysql_variables(writable), None);
        let replica = [
            ("innodb_read_only", "OFF"),
            ("read_only", "ON"),
            ("super_read_only", "ON"),
        ];
        assert_eq!(
            from_mysql_variables(replica),
            Some(ReadOnly::Setting("read_only"))
        );
        assert_eq!(
            from_mysql_variables([("read_only", "NO_LOCK"), ("TX_READ_ONLY", "1")]),
            Some(ReadOnly::Setting("read_only"))
        );
        assert_eq!(
            from_mysql_variables([("read_only", "0"), ("tx_read_only", "1")]),
            Some(ReadOnly::Setting("tx_read_only"))
        );
        // A variable the check does not know is ignored, whatever its value.
        assert_eq!(from_mysql_variables([("other", "ON")]), None);
    }

    #[test]
    fn the_mysql_statement_asks_for_every_variable() {
        let sql = mysql_sql();
        assert!(sql.starts_with("SHOW VARIABLES WHERE Variable_name IN ("));
        for name in MYSQL_VARIABLES {
            assert!(sql.contains(&format!("'{name}'")), "{sql}");
        }
    }

    #[test]
    fn every_message_says_what_to_do() {
        for read_only in [
            ReadOnly::Standby,
            ReadOnly::Setting("read_only"),
            ReadOnly::Refused,
        ] {
            let text = read_only.to_string();
            assert!(text.contains("read-only"), "{text}");
            assert!(text.contains("DATABASE_URL"), "{text}");
            assert!(text.contains("primary"), "{text}");
        }
        assert!(ReadOnly::Standby.to_string().contains("read-only standby"));
    }
}
