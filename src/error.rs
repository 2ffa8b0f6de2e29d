//! The library's error type, and how database constraint violations and a
//! read-only server's refusals are recognised portably across PostgreSQL,
//! MySQL/MariaDB and SQLite.

use chrono::{DateTime, Utc};
use gatehouse_migration::read_only;
pub use gatehouse_migration::read_only::ReadOnly;
use sea_orm::{DbErr, RuntimeErr, sqlx};

/// What went wrong, named after what the caller has to decide.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Wrong identifier, password, code or token; deliberately says no more.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The account is locked: until `until`, or until an administrator
    /// unlocks it when `until` is `None`.
    #[error("locked{}", until.map(|u| format!(" until {u}")).unwrap_or_else(|| " until an administrator unlocks it".into()))]
    Locked {
        /// End of an automatic lock; `None` for an administrator's lock.
        until: Option<DateTime<Utc>>,
    },
    /// Input that can never be valid: `field` and why.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The input's name (`email`, `password`, `scope`, ...).
        field: &'static str,
        /// Why it is invalid, in words a person can act on.
        reason: String,
    },
    /// Valid input a security policy refuses (weak or reused password, ...).
    #[error("policy violation: {0}")]
    PolicyViolation(String),
    /// The caller may not do this (level too low, scope not held, ...).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A credential, session or code that was valid once but has expired.
    #[error("expired")]
    Expired,
    /// The password was right, but the account has MFA and no second factor
    /// (TOTP or backup code) was given: ask for one and log in again.
    #[error("a second factor is required: give a TOTP code or a backup code")]
    MfaRequired,
    /// A credential or session that was revoked.
    #[error("revoked")]
    Revoked,
    /// A one-time value that was used already (TOTP step, backup code, reset token).
    #[error("already used")]
    Replayed,
    /// Over a rate limit: try again after `retry_after_secs`.
    #[error("rate limited, retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the next attempt may succeed.
        retry_after_secs: u64,
    },
    /// A row with the same unique value exists already: `field` names what
    /// is taken (`email`, `username`, `role`, ...), `message` says so in words
    /// a person can act on. Never the database's own text.
    #[error("{message}")]
    Conflict {
        /// What is taken (`email`, `username`, `role`, ...).
        field: &'static str,
        /// What happened, in words a person can act on.
        message: String,
    },
    /// The row refers to a row that does not exist (or is still referred to).
    #[error("reference violation: {0}")]
    Reference(String),
    /// A value is outside what the schema allows.
    #[error("invalid value: {0}")]
    Invalid(String),
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A setting is missing or malformed: names the variable and what to do.
    #[error("configuration: {var}: {reason}")]
    Config {
        /// The setting's name (an environment variable such as `HMAC_KEY`).
        var: &'static str,
        /// What is wrong and what to do about it.
        reason: String,
    },
    /// Stored data that cannot be decrypted or verified (wrong key, tampering).
    #[error("integrity check failed: {0}")]
    Integrity(String),
    /// The server accepts no writes: a hot standby or read-only replica.
    /// Writes go to the primary; reads work here.
    #[error("{0}")]
    ReadOnly(ReadOnly),

    /// Concurrent changes kept the database from completing a step: nothing of
    /// that step was written. On a pool gatehouse has already retried a
    /// conflict ([`crate::db::retry()`]); try again shortly. Inside a caller's
    /// transaction the database rolled that whole transaction back: retry it.
    #[error("{}", contention.message(*attempts))]
    Busy {
        /// Which kind of contention.
        contention: Contention,
        /// How many times the step ran (1 when it could not be retried).
        attempts: u32,
    },
    /// Any other database failure.
    #[error(transparent)]
    Db(DbErr),
}

/// Why the database gave up on a step that other transactions contended for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contention {
    /// The transaction was chosen to roll back so that another could go on:
    /// a deadlock (MySQL/MariaDB 1213, PostgreSQL 40P01), a Galera
    /// certification failure (1213 at `COMMIT`), a serialization failure
    /// (PostgreSQL 40001) or a SQLite snapshot that went stale. Running the
    /// step again from its start usually succeeds.
    Conflict,
    /// A row or table stayed locked by another transaction longer than the
    /// server waits (MySQL/MariaDB 1205 `innodb_lock_wait_timeout`,
    /// PostgreSQL 55P03 `lock_timeout`, SQLite's busy timeout).
    LockTimeout,
}

impl Contention {
    fn message(self, attempts: u32) -> String {
        match self {
            Self::Conflict => format!(
                "concurrent changes to the same records conflicted (tried {attempts} time{}); \
                 nothing of this step was written: try again",
                if attempts == 1 { "" } else { "s" }
            ),
            Self::LockTimeout => "a record stayed locked by another transaction longer than the \
                 database waits; nothing of this step was written: try again, and look for a \
                 long-running transaction if it persists"
                .to_owned(),
        }
    }
}

impl From<DbErr> for Error {
    /// Constraint violations and read-only refusals become their own
    /// variants; everything else stays a `Db` error.
    fn from(err: DbErr) -> Self {
        if read_only::is_refusal(&err) {
            return Self::ReadOnly(ReadOnly::Refused);
        }
        if let Some(contention) = contention(&err) {
            return Self::Busy {
                contention,
                attempts: 1,
            };
        }
        match constraint_violation(&err) {
            Some(Constraint::Unique) => {
                let (field, message) = unique_conflict(&err);
                Self::Conflict {
                    field,
                    message: message.to_owned(),
                }
            }
            Some(Constraint::ForeignKey) => Self::Reference(
                "it refers to a record that does not exist, or a record still refers to it".into(),
            ),
            Some(Constraint::Check | Constraint::NotNull) => {
                Self::Invalid("a value is outside what the schema allows".into())
            }
            None => Self::Db(err),
        }
    }
}

impl Error {
    /// A conflict on `field`, described by `message`.
    pub fn conflict(field: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            field,
            message: message.into(),
        }
    }
}

/// Which unique value a unique violation is about, as (field, message): read
/// from the constraint or index the database names (PostgreSQL reports it;
/// MySQL/MariaDB and SQLite name it in their message), never shown as is.
fn unique_conflict(err: &DbErr) -> (&'static str, &'static str) {
    let key = violated_key(err).unwrap_or_default().to_ascii_lowercase();
    const KNOWN: &[(&[&str], &str, &str)] = &[
        (
            &["users-email", "users.email"],
            "email",
            "an account with this email already exists",
        ),
        (
            &["users-username", "users.username"],
            "username",
            "an account with this username already exists",
        ),
        (
            &["roles-name", "roles.name"],
            "role",
            "a role with this name already exists",
        ),
        (
            &["permissions-name", "permissions.name"],
            "permission",
            "a permission with this name already exists",
        ),
        (&["user_roles"], "role", "the user holds this role already"),
        (
            &["role_permissions"],
            "permission",
            "the role has this permission already",
        ),
        (
            &["mfa_configurations"],
            "mfa",
            "MFA is already set up for this user; disable it first",
        ),
        (
            &["api_keys"],
            "api_key",
            "an API key with this value exists already; issue a new one",
        ),
        (
            &["sessions"],
            "session",
            "a session with this token exists already; sign in again",
        ),
        (
            &["encryption_keys"],
            "key_version",
            "another key rotation ran at the same time; check `gatehouse keys list` and run it again if needed",
        ),
        (
            &["login_throttles"],
            "login_attempt",
            "another login attempt ran at the same time; try again",
        ),
    ];
    KNOWN
        .iter()
        .find(|(needles, _, _)| needles.iter().any(|n| key.contains(n)))
        .map_or(
            (
                "record",
                "a record with the same unique value already exists",
            ),
            |(_, field, message)| (*field, *message),
        )
}

/// The constraint, index or `table.column` list a unique violation names.
fn violated_key(err: &DbErr) -> Option<String> {
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return None;
    };
    let sqlx::Error::Database(e) = e.as_ref() else {
        return None;
    };
    if let Some(name) = e.constraint() {
        return Some(name.to_owned());
    }
    let message = e.message();
    // MySQL/MariaDB: "Duplicate entry '…' for key 'uq-users-email'" (the value
    // comes first, so read from the end); SQLite: "UNIQUE constraint failed:
    // users.email" or "…: index 'uq-users-email'".
    if let Some(at) = message.rfind("for key '") {
        return Some(message[at + 9..].trim_end_matches('\'').to_owned());
    }
    message
        .find("constraint failed: ")
        .map(|at| message[at + 19..].to_owned())
}

/// Whether `err` is the database giving up on contended rows, and how (see
/// [`Contention`]); `None` for anything else.
pub fn contention(err: &DbErr) -> Option<Contention> {
    if let DbErr::RecordNotFound(what) = err {
        return REREAD_MISSES
            .contains(&what.as_str())
            .then_some(Contention::Conflict);
    }
    let (DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = err
    else {
        return None;
    };
    let sqlx::Error::Database(e) = e.as_ref() else {
        return None;
    };
    let code = e.code();
    match code.as_deref().unwrap_or_default() {
        // MySQL/MariaDB 1213 (deadlock, Galera certification failure) has
        // SQLSTATE 40001, as PostgreSQL's serialization failure.
        "40001" | "40P01" => Some(Contention::Conflict),
        "55P03" => Some(Contention::LockTimeout),
        // MySQL/MariaDB 1205 has the generic SQLSTATE HY000.
        "HY000" => (mysql_number(e.as_ref()) == Some(ER_LOCK_WAIT_TIMEOUT))
            .then_some(Contention::LockTimeout),
        // SQLite's extended result codes: SQLITE_BUSY_SNAPSHOT (a read
        // snapshot went stale before the write) is a conflict; the rest of
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6) outlasted the busy timeout.
        other if is_sqlite(e.as_ref()) => match other.parse::<i32>() {
            Ok(517) => Some(Contention::Conflict),
            Ok(code) if matches!(code & 0xff, 5 | 6) => Some(Contention::LockTimeout),
            _ => None,
        },
        _ => None,
    }
}

/// What SeaORM reports when the row a statement of this transaction has just
/// inserted or updated is not there when it reads it back (MySQL/MariaDB and
/// SQLite have no `RETURNING` for it). Within one transaction that happens
/// only when the database aborted the transaction in between: a Galera node
/// rolls back a local transaction whose rows a write from another node
/// certified first, and MariaDB may answer the next read from a fresh
/// snapshot before it reports the abort (1213) at the following statement.
/// Nothing of the unit stays, so it is a conflict, run again like 1213.
const REREAD_MISSES: [&str; 2] = [
    "Failed to find inserted item",
    "Failed to find updated item",
];

/// Whether `e` comes from the SQLite driver.
fn is_sqlite(e: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
    #[cfg(feature = "sqlite")]
    {
        e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
    }
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = e;
        false
    }
}

/// MySQL/MariaDB `ER_LOCK_WAIT_TIMEOUT`.
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;

/// The MySQL/MariaDB error number of `e`, when it is that driver's.
fn mysql_number(e: &(dyn sqlx::error::DatabaseError + 'static)) -> Option<u16> {
    #[cfg(feature = "mysql")]
    {
        e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(sqlx::mysql::MySqlDatabaseError::number)
    }
    #[cfg(not(feature = "mysql"))]
    {
        let _ = e;
        None
    }
}

/// The kind of integrity constraint a statement violated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Constraint {
    /// A unique index or primary key: the value is taken.
    Unique,
    /// A foreign key: the referred row is missing, or still referred to.
    ForeignKey,
    /// A `CHECK` constraint.
    Check,
    /// A `NOT NULL` column given no value.
    NotNull,
}

/// Which constraint, if any, `err` reports as violated, on every backend
/// (sea-orm's own `SqlErr` knows unique and foreign keys only).
pub fn constraint_violation(err: &DbErr) -> Option<Constraint> {
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return None;
    };
    let sqlx::Error::Database(e) = e.as_ref() else {
        return None;
    };
    match e.kind() {
        sqlx::error::ErrorKind::UniqueViolation => Some(Constraint::Unique),
        sqlx::error::ErrorKind::ForeignKeyViolation => Some(Constraint::ForeignKey),
        sqlx::error::ErrorKind::CheckViolation => Some(Constraint::Check),
        sqlx::error::ErrorKind::NotNullViolation => Some(Constraint::NotNull),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_missing_right_after_its_own_write_is_a_conflict() {
        for what in REREAD_MISSES {
            let err = Error::from(DbErr::RecordNotFound(what.to_owned()));
            assert!(
                matches!(
                    err,
                    Error::Busy {
                        contention: Contention::Conflict,
                        attempts: 1
                    }
                ),
                "{what}: {err:?}"
            );
        }
        let other = Error::from(DbErr::RecordNotFound("Can't get current schema".into()));
        assert!(matches!(other, Error::Db(_)), "{other:?}");
    }
}
