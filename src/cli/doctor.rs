//! `gatehouse doctor`: configuration, database reachability, pending or
//! failed migrations, schema drift, audit_logs' partitions (PostgreSQL) and
//! the key ring (each configured key, current and previous, with its
//! record's version and status, and what still depends on previous keys),
//! each reported as
//! ok, warn or fail with what to do. Exit 0 when nothing fails, 1 when a
//! check fails, 2 when the configuration itself is unusable.

use std::process::ExitCode;

use gatehouse_entity::sea_orm_active_enums::{KeyStatus, KeyType};
use gatehouse_entity::{encryption_keys, mfa_backup_codes, mfa_configurations, sessions};
use gatehouse_migration::Migrator;
use gatehouse_migration::runner::{Options, Ownership, Runner};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use sea_orm::{ConnectionTrait, DbBackend};
use serde_json::json;

use super::context::{CommonArgs, Failure, database_url};
use super::output;
use crate::audit::partitions;
use crate::config::{DATA_KEY_VAR, HMAC_KEY_VAR};
use crate::db::{Pool, PoolMode};
use crate::{Config, db, keys, schema};
use chrono::{Datelike, Months, Utc};
use gatehouse_migration::runner::pooler::MIGRATION_URL_VAR;

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
    /// More for `--format json` (the key ring).
    extra: Option<(&'static str, serde_json::Value)>,
}

fn check(name: &'static str, level: Level, detail: impl Into<String>) -> Check {
    Check {
        name,
        level,
        detail: detail.into(),
        extra: None,
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
        Ok(()) => match PoolMode::from_env() {
            Err(reason) => Err(format!("{} {reason}", db::POOL_MODE_VAR)),
            Ok(mode) => Pool::connect(&url, mode).await.map_err(|err| {
                format!(
                    "cannot connect to {}: {}; check that the server runs and DATABASE_URL is right",
                    gatehouse_migration::redact::url(&url),
                    gatehouse_migration::redact::text(&err.to_string(), &url)
                )
            }),
        },
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
            conn.connection().clone().close().await.ok();
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

async fn database_check(conn: &Pool, url: &str) -> Check {
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
    // Reads work on a standby; say so, since every command that writes refuses there.
    let read_only = match gatehouse_migration::read_only::detect(conn).await {
        Ok(Some(_)) => {
            "; read-only (a standby or read-only replica): reads work, \
             commands that write refuse; point DATABASE_URL at the primary for those"
        }
        _ => "",
    };
    check(
        "database",
        Level::Ok,
        format!(
            "{} reachable ({version}){read_only}",
            gatehouse_migration::redact::url(url)
        ),
    )
}

async fn migrations_check(url: &str) -> Check {
    // As `migrate` does: DATABASE_MIGRATION_URL when set, else DATABASE_URL
    // as DATABASE_POOL_MODE describes it (transaction pooling is refused).
    let migration_url = std::env::var(MIGRATION_URL_VAR)
        .ok()
        .filter(|u| !u.trim().is_empty());
    let (url, url_var, pool_mode) = match &migration_url {
        Some(migration_url) => (migration_url.trim(), MIGRATION_URL_VAR, PoolMode::Session),
        None => (
            url,
            "DATABASE_URL",
            PoolMode::from_env().unwrap_or_default(),
        ),
    };
    // gatehouse's migrations; applied ones it does not contain are the application's.
    let options = Options {
        ownership: Ownership::Part,
        pool_mode,
        url_var: Some(url_var),
        ..Options::default()
    };
    let runner = match Runner::<Migrator>::connect(url, None, options).await {
        Ok(runner) => runner,
        Err(err) => {
            return check(
                "migrations",
                Level::Fail,
                gatehouse_migration::redact::text(&err.to_string(), url),
            );
        }
    };
    let status = runner.status().await;
    runner.close().await;
    let entries = match status {
        Ok(entries) => entries,
        Err(err) => return check("migrations", Level::Fail, err.to_string()),
    };
    use gatehouse_migration::runner::State;
    let named = |wanted: &[State]| -> Vec<&str> {
        entries
            .iter()
            .filter(|e| wanted.contains(&e.state))
            .map(|e| e.name.as_str())
            .collect()
    };
    let problems = named(&[State::Changed, State::Failed, State::MissingFromCode]);
    let unrecorded = named(&[State::AppliedWithoutRecord]);
    let application = named(&[State::Application]);
    let entries: Vec<_> = entries
        .iter()
        .filter(|e| e.state != State::Application)
        .collect();
    let theirs = if application.is_empty() {
        String::new()
    } else {
        format!(
            "; {} of the application's ({})",
            application.len(),
            application.join(", ")
        )
    };
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
                 `gatehouse migrate baseline` records them{theirs}",
                entries.len(),
                unrecorded.len()
            ),
        )
    } else {
        check(
            "migrations",
            Level::Ok,
            format!("all {} applied{theirs}", entries.len()),
        )
    }
}

async fn drift_check(conn: &Pool) -> Check {
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
    let application = schema::application_tables(&live);
    if drift.is_empty() && application.is_empty() {
        check("schema", Level::Ok, "tables and columns match the entities")
    } else if drift.is_empty() {
        check(
            "schema",
            Level::Ok,
            format!(
                "gatehouse's tables and columns match the entities; {} table(s) of the application's: {}",
                application.len(),
                application.join(", ")
            ),
        )
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
async fn partitions_check(conn: &Pool) -> Option<Check> {
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

/// One configured key of the ring and what depends on it.
struct RingEntry {
    variable: &'static str,
    role: &'static str,
    record: Option<encryption_keys::Model>,
    dependents: u64,
}

fn status_word(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "active",
        KeyStatus::Rotated => "rotated",
        KeyStatus::Compromised => "compromised",
    }
}

/// What depends on the key record `id` of `key_type`: live sessions and
/// unused backup codes (HMAC), TOTP secrets (data).
async fn dependents(
    conn: &Pool,
    key_type: KeyType,
    ids: Vec<uuid::Uuid>,
) -> Result<(u64, u64), sea_orm::DbErr> {
    if ids.is_empty() {
        return Ok((0, 0));
    }
    Ok(match key_type {
        KeyType::Data => (
            mfa_configurations::Entity::find()
                .filter(mfa_configurations::Column::EncryptionKeyId.is_in(ids))
                .count(conn)
                .await?,
            0,
        ),
        _ => (
            sessions::Entity::find()
                .filter(sessions::Column::EncryptionKeyId.is_in(ids.clone()))
                .filter(sessions::Column::IsRevoked.eq(false))
                .filter(sessions::Column::ExpiresAt.gt(Utc::now()))
                .count(conn)
                .await?,
            mfa_backup_codes::Entity::find()
                .filter(mfa_backup_codes::Column::EncryptionKeyId.is_in(ids))
                .filter(mfa_backup_codes::Column::UsedAt.is_null())
                .count(conn)
                .await?,
        ),
    })
}

async fn key_check(conn: &Pool, config: &Config) -> Check {
    match ring_report(conn, config).await {
        Ok(check) => check,
        Err(err) => check(
            "keys",
            Level::Warn,
            format!("cannot read encryption_keys: {err}"),
        ),
    }
}

async fn ring_report(conn: &Pool, config: &Config) -> Result<Check, crate::Error> {
    let mut level = Level::Ok;
    let mut notes: Vec<String> = Vec::new();
    let mut json_ring = Vec::new();
    let types = [
        (
            KeyType::Session,
            config.hmac_key.fingerprint(),
            config
                .hmac_previous
                .iter()
                .map(|k| k.fingerprint())
                .collect::<Vec<_>>(),
        ),
        (
            KeyType::Data,
            config.data_key.fingerprint(),
            config
                .data_previous
                .iter()
                .map(|k| k.fingerprint())
                .collect::<Vec<_>>(),
        ),
    ];
    for (key_type, current, ring) in types {
        let var = keys::variable(key_type);
        let ring_var = keys::previous_variable(key_type);
        let word = keys::command_word(key_type);
        let recorded = keys::list(conn)
            .await?
            .into_iter()
            .filter(|k| k.key_type == key_type)
            .collect::<Vec<_>>();
        let find = |fp: &str| recorded.iter().find(|k| k.fingerprint == fp).cloned();
        let mut entries = vec![RingEntry {
            variable: var,
            role: "current",
            record: find(&current),
            dependents: 0,
        }];
        for fp in &ring {
            entries.push(RingEntry {
                variable: ring_var,
                role: "previous",
                record: find(fp),
                dependents: 0,
            });
        }
        match (&entries[0].record, recorded.is_empty()) {
            (_, true) => notes.push(format!(
                "{var}: not recorded yet (the first command that needs it records it as version 1)"
            )),
            (Some(k), _) if k.status == KeyStatus::Active => {
                notes.push(format!("{var}: version {} active", k.version));
            }
            (record, _) => {
                level = Level::Fail;
                let what = record.as_ref().map_or_else(
                    || "not recorded".to_owned(),
                    |k| format!("version {} {}", k.version, status_word(k.status)),
                );
                notes.push(format!(
                    "{var}: {what}, not the active key; commands that need it refuse to start                      (configure the active key, or `gatehouse keys rotate {word}`)"
                ));
            }
        }
        let mut covered: Vec<uuid::Uuid> = Vec::new();
        for entry in entries.iter_mut().skip(1) {
            match &entry.record {
                None => {
                    level = level.max(Level::Warn);
                    notes.push(format!(
                        "{ring_var}: a key that is not recorded (it verifies nothing)"
                    ));
                }
                Some(k) if k.status == KeyStatus::Compromised => {
                    level = level.max(Level::Warn);
                    notes.push(format!(
                        "{ring_var}: version {} is compromised (it verifies nothing; remove it)",
                        k.version
                    ));
                }
                Some(k) if k.status == KeyStatus::Active => {}
                Some(k) => {
                    covered.push(k.id);
                    let (first, second) = dependents(conn, key_type, vec![k.id]).await?;
                    entry.dependents = first + second;
                    let depends = match key_type {
                        KeyType::Data => format!("{first} TOTP secret(s)"),
                        _ => format!("{first} live session(s), {second} unused backup code(s)"),
                    };
                    notes.push(format!(
                        "{ring_var}: version {} rotated, still used by {depends}{}",
                        k.version,
                        if first + second == 0 {
                            "; it can leave the ring"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
        // What depends on retired keys outside the ring is refused.
        let stranded: Vec<uuid::Uuid> = recorded
            .iter()
            .filter(|k| k.status != KeyStatus::Active && !covered.contains(&k.id))
            .map(|k| k.id)
            .collect();
        let (first, second) = dependents(conn, key_type, stranded).await?;
        if first + second > 0 {
            level = level.max(Level::Warn);
            notes.push(match key_type {
                KeyType::Data => format!(
                    "{first} TOTP secret(s) are under retired data keys outside {ring_var}:                      they do not open"
                ),
                _ => format!(
                    "{first} live session(s) and {second} unused backup code(s) are under retired                      HMAC keys outside {ring_var}: they are refused"
                ),
            });
        }
        for entry in entries {
            json_ring.push(json!({
                "variable": entry.variable,
                "role": entry.role,
                "key_type": word,
                "version": entry.record.as_ref().map(|k| k.version),
                "status": entry.record.as_ref().map(|k| status_word(k.status)),
                "dependents": entry.dependents,
            }));
        }
    }
    let mut result = check("keys", level, notes.join("; "));
    result.extra = Some(("ring", serde_json::Value::Array(json_ring)));
    Ok(result)
}

fn print(checks: &[Check], format: gatehouse_migration::cli::Format) {
    let json: Vec<_> = checks
        .iter()
        .map(|c| {
            let mut entry =
                json!({ "check": c.name, "status": c.level.as_str(), "detail": c.detail });
            if let Some((name, value)) = &c.extra {
                entry[*name] = value.clone();
            }
            entry
        })
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
