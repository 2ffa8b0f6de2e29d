//! What every operator command shares: the connection arguments, the
//! connection itself (refused up front on a read-only standby for a command
//! that writes), the configuration, and how failures become exit codes.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use gatehouse_entity::users;
use gatehouse_migration::cli::Format;
use gatehouse_migration::redact;
use sea_orm::EntityTrait;
use uuid::Uuid;

use crate::accounts::{self, validate};
use crate::db::{self, Pool, PoolMode};
use crate::{Config, Error};

/// Database and output options, accepted before or after the subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Database URL: postgres://, mysql:// (also MariaDB) or sqlite://.
    /// Defaults to the SQLite file ./gatehouse.db.
    #[arg(
        short = 'u',
        long,
        env = "DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// `human` (default) or `json`.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// A command group: the shared options and one of the group's subcommands.
#[derive(clap::Args, Debug)]
pub struct Group<A: clap::Subcommand> {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub action: A,
}

/// Why a command did not succeed, and its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Denied, invalid, not found, or the database refused (exit 1).
    Denied(String),
    /// Bad arguments or configuration (exit 2).
    Usage(String),
}

impl Failure {
    /// Prints the failure as one line on stderr and gives its exit code.
    pub fn report(self) -> ExitCode {
        match self {
            Self::Denied(message) => {
                eprintln!("error: {}", one_line(&message));
                ExitCode::FAILURE
            }
            Self::Usage(message) => {
                eprintln!("error: {}", one_line(&message));
                ExitCode::from(2)
            }
        }
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        match err {
            // DATABASE_URL names a standby or replica: a configuration error.
            Error::Config { .. } | Error::ReadOnly(_) => Self::Usage(err.to_string()),
            Error::InvalidInput { .. } => Self::Denied(err.to_string()),
            // The driver's text names tables, constraints and SQL: not for the operator's screen.
            Error::Db(db_err) => Self::Denied(database_failure(&db_err).into()),
            other => Self::Denied(other.to_string()),
        }
    }
}

/// A database failure in words, without the driver's text.
fn database_failure(err: &sea_orm::DbErr) -> &'static str {
    use sea_orm::DbErr;
    match err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => {
            "the database connection failed; check that the server is running and try again"
        }
        DbErr::RecordNotFound(_) => "the record was not found (changed or removed meanwhile)",
        _ => "the database could not complete the request",
    }
}

/// Whether a command writes: one that does is refused on a read-only
/// server before it changes anything (see [`db::ensure_writable`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads only; runs on a standby too.
    Read,
    /// Writes (anything, audit rows and key records included).
    Write,
}

/// An open database and the output format: what a command runs against.
pub struct Context {
    /// The database, safe under `DATABASE_POOL_MODE`.
    pub db: Pool,
    pub format: Format,
    pub now: DateTime<Utc>,
}

impl Context {
    /// Connects to the database the arguments (or `DATABASE_URL`, or `.env`)
    /// name, pooled as `DATABASE_POOL_MODE` says; for [`Access::Write`],
    /// checks that the server accepts writes. With `DATABASE_READ_URL`, reads
    /// go to that standby (see [`db::standby`]).
    ///
    /// # Errors
    /// [`Failure::Usage`] for an unsupported URL or pool mode, an unreachable
    /// server, or a read-only server (a standby) when the command writes.
    pub async fn open(args: &CommonArgs, access: Access) -> Result<Self, Failure> {
        let url = database_url(args);
        db::check_scheme(&url)?;
        let mode = PoolMode::from_env().map_err(|reason| Error::Config {
            var: db::POOL_MODE_VAR,
            reason,
        })?;
        let db = Pool::connect(&url, mode).await.map_err(|err| match err {
            Error::Config { .. } => Failure::from(err),
            _ => Failure::Usage(format!(
                "cannot connect to {}: {err}. Check that the server is running and that \
                 DATABASE_URL (or --database-url) is right.",
                redact::url(&url),
                err = redact::text(&err.to_string(), &url)
            )),
        })?;
        if access == Access::Write
            && let Err(err) = db::ensure_writable(&db).await
        {
            db.connection().clone().close().await.ok();
            return Err(err.into());
        }
        let db = match read_url() {
            Some(read_url) => db
                .with_standby(&read_url, db::standby::DEFAULT_WAIT)
                .await
                .map_err(|err| match err {
                    Error::Config { .. } => Failure::from(err),
                    _ => Failure::Usage(format!(
                        "cannot connect to the standby {}: {err}. Check that it is running \
                         and that DATABASE_READ_URL is right, or unset it to read from the primary.",
                        redact::url(&read_url),
                        err = redact::text(&err.to_string(), &read_url)
                    )),
                })?,
            None => db,
        };
        Ok(Self {
            db,
            format: args.format,
            now: Utc::now(),
        })
    }

    /// The account `text` names: a user id, an email or a username.
    ///
    /// # Errors
    /// [`Failure::Denied`] when no account matches, saying how to find one.
    pub async fn user(&self, text: &str) -> Result<users::Model, Failure> {
        let found = if let Ok(id) = Uuid::parse_str(text.trim()) {
            users::Entity::find_by_id(id)
                .one(&self.db)
                .await
                .map_err(Error::from)?
        } else {
            accounts::find_by_identifier(&self.db, &validate::identifier(text)?).await?
        };
        found.ok_or_else(|| {
            Failure::Denied(format!(
                "no user is `{text}` (id, email or username); `gatehouse user list` shows them"
            ))
        })
    }
}

/// The database URL: the argument, `DATABASE_URL`, `.env`, or the SQLite
/// default (said on stderr).
pub fn database_url(args: &CommonArgs) -> String {
    let _ = dotenvy::dotenv();
    let from_env = || std::env::var(db::DATABASE_URL_VAR).ok();
    match args.database_url.clone().or_else(from_env) {
        Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => {
            eprintln!(
                "DATABASE_URL is not set; using the SQLite file ./gatehouse.db \
                 (set DATABASE_URL or pass --database-url for PostgreSQL or MySQL)"
            );
            db::DEFAULT_DATABASE_URL.to_owned()
        }
    }
}

/// `DATABASE_READ_URL` (`.env` loaded already): a standby the commands read
/// from, their writes waiting until it has replayed them.
fn read_url() -> Option<String> {
    std::env::var(db::READ_URL_VAR)
        .ok()
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
}

/// `HMAC_KEY` and `DATA_ENCRYPTION_KEY`, validated.
///
/// # Errors
/// [`Failure::Usage`] naming the variable that is missing or malformed.
pub fn config() -> Result<Config, Failure> {
    Ok(Config::from_env()?)
}

/// Records an operator's action in `audit_logs` (event type `admin`, the
/// affected user as resource), in the caller's transaction.
///
/// # Errors
/// A database error.
pub async fn audit_admin<C: sea_orm::ConnectionTrait>(
    db: &C,
    action: &str,
    user_id: Option<Uuid>,
    details: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    let mut entry = crate::audit::AuditEntry::new(ADMIN_EVENT, action)
        .metadata(serde_json::json!({ "via": "gatehouse cli", "details": details }));
    if let Some(id) = user_id {
        entry = entry.resource("user", id.to_string());
    }
    entry.record(db, now).await?;
    Ok(())
}

/// Event type of operator actions in `audit_logs`.
pub const ADMIN_EVENT: &str = "admin";

/// The longest span a command accepts (`--expires-in`): 100 years.
pub const MAX_SPAN_DAYS: i64 = 36_525;

/// A duration as `90s`, `30m`, `12h`, `30d` or `2w`, from one second to
/// [`MAX_SPAN_DAYS`].
///
/// # Errors
/// A message for clap naming the accepted units and range.
pub fn parse_span(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let out_of_range = || format!("`{text}` must be from 1s to 100 years ({MAX_SPAN_DAYS}d)");
    let value: i64 = match number.parse() {
        Ok(value) => value,
        Err(_) if !number.is_empty() => return Err(out_of_range()),
        Err(_) => {
            return Err(format!(
                "`{text}` is not a duration; write e.g. 30m, 12h, 30d or 2w"
            ));
        }
    };
    let span = match unit {
        "s" => chrono::Duration::try_seconds(value),
        "m" => chrono::Duration::try_minutes(value),
        "h" => chrono::Duration::try_hours(value),
        "d" => chrono::Duration::try_days(value),
        "w" => chrono::Duration::try_weeks(value),
        _ => return Err(format!("unknown unit in `{text}`; use s, m, h, d or w")),
    };
    match span {
        Some(span) if value > 0 && span <= chrono::Duration::days(MAX_SPAN_DAYS) => Ok(span),
        _ => Err(out_of_range()),
    }
}

/// `now + span`, checked: a usage error naming `flag` when the time does
/// not exist.
///
/// # Errors
/// [`Failure::Usage`] when the sum overflows.
pub fn after(
    now: DateTime<Utc>,
    span: chrono::Duration,
    flag: &str,
) -> Result<DateTime<Utc>, Failure> {
    now.checked_add_signed(span).ok_or_else(|| {
        Failure::Usage(format!(
            "{flag} reaches past the last representable time; use at most {MAX_SPAN_DAYS}d"
        ))
    })
}

/// Refuses a `--until` time that is not in the future or lies more than
/// [`MAX_SPAN_DAYS`] ahead.
///
/// # Errors
/// [`Failure::Usage`] naming `flag` and the range.
pub fn check_until(now: DateTime<Utc>, until: DateTime<Utc>, flag: &str) -> Result<(), Failure> {
    let latest = after(now, chrono::Duration::days(MAX_SPAN_DAYS), flag)?;
    if until <= now || until > latest {
        return Err(Failure::Usage(format!(
            "{flag} must be after now and at most 100 years ahead (by {})",
            latest.to_rfc3339()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_with_units_and_refuse_the_rest() {
        assert_eq!(parse_span("30d"), Ok(chrono::Duration::days(30)));
        assert_eq!(parse_span("90s"), Ok(chrono::Duration::seconds(90)));
        assert_eq!(parse_span("2w"), Ok(chrono::Duration::weeks(2)));
        assert!(parse_span("0d").is_err());
        assert!(parse_span("30").is_err());
        assert!(parse_span("d").is_err());
        assert!(parse_span("99999999999999999w").is_err());
        assert!(parse_span("99999999999d").is_err());
        assert!(parse_span("1000000000d").is_err());
        assert!(parse_span("999999999999999999999999d").is_err());
        assert_eq!(parse_span("36525d"), Ok(chrono::Duration::days(36_525)));
        assert!(parse_span("36526d").is_err());
        assert!(parse_span("5219w").is_err());
    }
}
