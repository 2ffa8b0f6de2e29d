//! `gatehouse doctor`: configuration, database reachability, pending or
//! failed migrations, schema drift, audit_logs' partitions (PostgreSQL) and
//! the recorded keys, each reported as
//! ok, warn or fail with what to do. Exit 0 when nothing fails, 1 when a
//! check fails, 2 when the configuration itself is unusable.

use std::process::ExitCode;

use entity::sea_orm_active_enums::KeyType;
use migration::Migrator;
use migration::runner::{Options, Runner};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use serde_json::json;

use super::context::{CommonArgs, Failure, database_url};
use super::output;
use crate::audit::partitions;
use crate::config::{DATA_KEY_VAR, HMAC_KEY_VAR};
use crate::{Config, db, keys, schema};
use chrono::{Datelike, Months, Utc};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

struct Check {
    name: &'static str,
    level: Level,
    detail: String,
}

fn check(name: &'static str, level: Level, detail: impl Into<String>) -> Check {
    Check {
        name,
        level,
        detail: detail.into(),
    }
}

pub async fn run(args: Args) -> Result<ExitCode, Failure> {
    let mut checks = Vec::new();
    let config = match Config::from_env() {
        Ok(config) => {
            checks.push(check(
                "configuration",
                Level::Ok,
                format!("{HMAC_KEY_VAR} and {DATA_KEY_VAR} are set and well formed"),
            ));
            Some(config)
        }
        Err(err) => {
            checks.push(check("configuration", Level::Fail, err.to_string()));
            None
        }
    };
    let url = database_url(&args.common);
    let connected = match db::check_scheme(&url) {
        Err(err) => Err(err.to_string()),
        Ok(()) => db::connect(&url).await.map_err(|err| {
            format!(
                "cannot connect to {}: {}; check that the server runs and DATABASE_URL is right",
                migration::redact::url(&url),
                migration::redact::text(&err.to_string(), &url)
            )
        }),
    };
    match connected {
        Err(message) => checks.push(check("database", Level::Fail, message)),
        Ok(conn) => {
            checks.push(database_check(&conn, &url).await);
            checks.push(migrations_check(&url).await);
            checks.push(drift_check(&conn).await);
            if let Some(partitions) = partitions_check(&conn).await {
                checks.push(partitions);
            }
            if let Some(config) = &config {
                checks.push(key_check(&conn, config).await);
            }
            conn.close().await.ok();
        }
    }
    print(&checks, args.common.format);
    let worst = checks.iter().map(|c| c.level).max().unwrap_or(Level::Ok);
    Ok(if config.is_none() {
        ExitCode::from(2)
    } else if worst == Level::Fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn database_check(conn: &DatabaseConnection, url: &str) -> Check {
    let backend = conn.get_database_backend();
    let version_sql = match backend {
        DbBackend::Sqlite => "SELECT sqlite_version()",
        _ => "SELECT VERSION()",
    };
    let version = match conn
        .query_one_raw(sea_orm::Statement::from_string(backend, version_sql))
        .await
    {
        Ok(Some(row)) => row.try_get_by_index::<String>(0).unwrap_or_default(),
        Ok(None) => String::new(),
        Err(err) => return check("database", Level::Fail, format!("query failed: {err}")),
    };
    let version = version
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    check(
        "database",
        Level::Ok,
        format!("{} reachable ({version})", migration::redact::url(url)),
    )
}

async fn migrations_check(url: &str) -> Check {
    let runner = match Runner::<Migrator>::connect(url, None, Options::default()).await {
        Ok(runner) => runner,
        Err(err) => {
            return check(
                "migrations",
                Level::Fail,
                migration::redact::text(&err.to_string(), url),
            );
        }
    };
    let status = runner.status().await;
    runner.close().await;
    let entries = match status {
        Ok(entries) => entries,
        Err(err) => return check("migrations", Level::Fail, err.to_string()),
    };
    use migration::runner::State;
    let named = |wanted: &[State]| -> Vec<&str> {
        entries
            .iter()
            .filter(|e| wanted.contains(&e.state))
            .map(|e| e.name.as_str())
            .collect()
    };
    let problems = named(&[State::Changed, State::Failed, State::MissingFromCode]);
    let unrecorded = named(&[State::AppliedWithoutRecord]);
    let pending = entries.iter().filter(|e| !e.state.is_applied()).count();
    if !problems.is_empty() {
        check(
            "migrations",
            Level::Fail,
            format!(
                "changed, failed or unknown: {}; see `gatehouse migrate status` and `gatehouse migrate verify`",
                problems.join(", ")
            ),
        )
    } else if pending > 0 {
        check(
            "migrations",
            Level::Fail,
            format!(
                "{pending} of {} pending; run `gatehouse migrate up`",
                entries.len()
            ),
        )
    } else if !unrecorded.is_empty() {
        check(
            "migrations",
            Level::Warn,
            format!(
                "all {} applied, {} without a checksum record (applied by plain sea-orm-migration); \
                 `gatehouse migrate baseline` records them",
                entries.len(),
                unrecorded.len()
            ),
        )
    } else {
        check(
            "migrations",
            Level::Ok,
            format!("all {} applied", entries.len()),
        )
    }
}

async fn drift_check(conn: &DatabaseConnection) -> Check {
    let live = match schema::introspect(conn).await {
        Ok(live) => live,
        Err(err) => {
            return check(
                "schema",
                Level::Fail,
                format!("cannot read the schema: {err}"),
            );
        }
    };
    let drift = schema::drift(conn.get_database_backend(), &live);
    if drift.is_empty() {
        check("schema", Level::Ok, "tables and columns match the entities")
    } else {
        check(
            "schema",
            Level::Fail,
            format!(
                "{} difference(s) from the entities: {}",
                drift.len(),
                drift.join("; ")
            ),
        )
    }
}

/// PostgreSQL with a partitioned `audit_logs`: next month's partition exists
/// (else new rows pile up in the default partition) and the default is empty.
async fn partitions_check(conn: &DatabaseConnection) -> Option<Check> {
    match partitions::is_partitioned(conn).await {
        Ok(true) => {}
        Ok(false) => return None,
        Err(err) => return Some(check("partitions", Level::Fail, err.to_string())),
    }
    let list = match partitions::list(conn).await {
        Ok(list) => list,
        Err(err) => return Some(check("partitions", Level::Fail, err.to_string())),
    };
    let now = Utc::now();
    let next = now
        .date_naive()
        .with_day(1)
        .and_then(|d| d.checked_add_months(Months::new(1)));
    let ensure = "run `gatehouse audit partitions ensure` (and schedule it)";
    if !list.iter().any(|p| p.month.is_some() && p.month == next) {
        return Some(check(
            "partitions",
            Level::Warn,
            format!("audit_logs has no partition for next month yet: {ensure}"),
        ));
    }
    let stranded = list
        .iter()
        .find(|p| p.name == partitions::DEFAULT_PARTITION)
        .and_then(|p| p.estimated_rows)
        .unwrap_or(0);
    if stranded > 0 {
        return Some(check(
            "partitions",
            Level::Warn,
            format!(
                "about {stranded} audit_logs row(s) are in {} (outside every monthly partition), \
                 where prune deletes row by row; `gatehouse audit partitions ensure --months-ahead N` \
                 moves rows of the months it creates",
                partitions::DEFAULT_PARTITION
            ),
        ));
    }
    let months = list.iter().filter(|p| p.month.is_some()).count();
    Some(check(
        "partitions",
        Level::Ok,
        format!("audit_logs has {months} monthly partition(s), next month's included"),
    ))
}

async fn key_check(conn: &DatabaseConnection, config: &Config) -> Check {
    let active = match keys::active(conn, KeyType::Session).await {
        Ok(active) => active,
        Err(err) => {
            return check(
                "keys",
                Level::Warn,
                format!("cannot read encryption_keys: {err}"),
            );
        }
    };
    match active {
        None => check(
            "keys",
            Level::Ok,
            "no session key recorded yet; the first session records the configured one",
        ),
        Some(key) if key.fingerprint == config.hmac_key.fingerprint() => check(
            "keys",
            Level::Ok,
            format!(
                "the configured {HMAC_KEY_VAR} is the active session key (version {})",
                key.version
            ),
        ),
        Some(key) => check(
            "keys",
            Level::Warn,
            format!(
                "the configured {HMAC_KEY_VAR} differs from the active session key (version {}): \
                 the next start rotates to it and existing sessions stop validating",
                key.version
            ),
        ),
    }
}

fn print(checks: &[Check], format: migration::cli::Format) {
    let json: Vec<_> = checks
        .iter()
        .map(|c| json!({ "check": c.name, "status": c.level.as_str(), "detail": c.detail }))
        .collect();
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            vec![
                c.level.as_str().to_owned(),
                c.name.to_owned(),
                c.detail.clone(),
            ]
        })
        .collect();
    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    let warned = checks.iter().filter(|c| c.level == Level::Warn).count();
    let human = format!(
        "{}{} check(s): {failed} failed, {warned} warning(s)",
        output::table(&["status", "check", "detail"], &rows),
        checks.len()
    );
    let ok = failed == 0;
    output::emit(format, &json!({ "ok": ok, "checks": json }), &human);
}
