//! What every operator command shares: the connection arguments, the
//! connection itself, the configuration, and how failures become exit codes.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use entity::users;
use migration::cli::{Format, redact};
use sea_orm::{DatabaseConnection, EntityTrait};
use uuid::Uuid;

use crate::accounts::{self, validate};
use crate::{Config, Error, db};

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
            Error::Config { .. } => Self::Usage(err.to_string()),
            Error::InvalidInput { .. } => Self::Denied(err.to_string()),
            other => Self::Denied(other.to_string()),
        }
    }
}

/// An open database and the output format: what a command runs against.
pub struct Context {
    pub db: DatabaseConnection,
    pub format: Format,
    pub now: DateTime<Utc>,
}

impl Context {
    /// Connects to the database the arguments (or `DATABASE_URL`, or `.env`) name.
    ///
    /// # Errors
    /// [`Failure::Usage`] for an unsupported URL or an unreachable server.
    pub async fn open(args: &CommonArgs) -> Result<Self, Failure> {
        let url = database_url(args);
        db::check_scheme(&url)?;
        let db = db::connect(&url).await.map_err(|err| {
            Failure::Usage(format!(
                "cannot connect to {}: {err}. Check that the server is running and that \
                 DATABASE_URL (or --database-url) is right.",
                redact(&url)
            ))
        })?;
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

/// A duration as `90s`, `30m`, `12h`, `30d` or `2w`.
///
/// # Errors
/// A message for clap naming the accepted units.
pub fn parse_span(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: i64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 30m, 12h, 30d or 2w"))?;
    let span = match unit {
        "s" => chrono::Duration::try_seconds(value),
        "m" => chrono::Duration::try_minutes(value),
        "h" => chrono::Duration::try_hours(value),
        "d" => chrono::Duration::try_days(value),
        "w" => chrono::Duration::try_weeks(value),
        _ => return Err(format!("unknown unit in `{text}`; use s, m, h, d or w")),
    };
    match span {
        Some(span) if value > 0 => Ok(span),
        _ => Err(format!(
            "`{text}` must be positive and at most a few centuries"
        )),
    }
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
    }
}
