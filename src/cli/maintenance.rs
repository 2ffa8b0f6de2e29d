//! `gatehouse audit prune`, `gatehouse audit partitions` and `gatehouse
//! metrics rollup`: the scheduled jobs (seed 004's cleanup procedures,
//! seed 000's audit_logs partitioning, seed 002's daily metrics).

use std::process::ExitCode;

use chrono::{Days, NaiveDate};
use serde_json::json;

use super::context::{Access, CommonArgs, Context, Failure, Group};
use super::output;
use crate::audit::partitions::{self, DEFAULT_MONTHS_AHEAD, MAX_MONTHS_AHEAD};
use crate::audit::retention::{self, MAX_BATCH_SIZE, RetentionPolicy};
use crate::audit::{Pruned, rollup};
use crate::lockout::LockoutPolicy;

/// The `AuditArgs` command line: options and subcommand.
pub type AuditArgs = Group<AuditAction>;

#[derive(clap::Subcommand, Debug)]
pub enum AuditAction {
    /// Delete audit entries past their retention_days (default 90), failed
    /// login attempts and session audit rows past their age, in batches;
    /// on PostgreSQL wholly expired months of audit_logs are dropped first.
    Prune {
        /// Rows deleted per transaction (1 to 10000); small batches hold short locks.
        #[arg(long, default_value_t = retention::DEFAULT_BATCH_SIZE)]
        batch_size: u64,
        /// Keep failed login attempts this many days.
        #[arg(long, default_value_t = retention::DEFAULT_FAILED_LOGIN_DAYS)]
        failed_login_days: i64,
        /// Keep session audit rows this many days.
        #[arg(long, default_value_t = retention::DEFAULT_SESSION_AUDIT_DAYS)]
        session_audit_days: i64,
    },
    /// PostgreSQL: audit_logs' monthly partitions.
    Partitions {
        #[command(subcommand)]
        action: PartitionsAction,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum PartitionsAction {
    /// Create this month's partition and those of the next months that are
    /// missing (schedule it, e.g. daily); rows the default partition holds
    /// for a created month move into it.
    Ensure {
        /// Months after the current one to have partitions for (0 to 120).
        #[arg(long, default_value_t = DEFAULT_MONTHS_AHEAD)]
        months_ahead: u32,
    },
    /// The partitions, their months and estimated rows.
    List,
}

/// The `MetricsArgs` command line: options and subcommand.
pub type MetricsArgs = Group<MetricsAction>;

#[derive(clap::Subcommand, Debug)]
pub enum MetricsAction {
    /// Compute one UTC day's security_metrics row (replacing an earlier one).
    Rollup {
        /// The day, YYYY-MM-DD, from 1970-01-01 to today (default: yesterday, UTC).
        #[arg(long)]
        date: Option<NaiveDate>,
    },
}

pub async fn run_audit(args: AuditArgs) -> Result<ExitCode, Failure> {
    match args.action {
        AuditAction::Prune {
            batch_size,
            failed_login_days,
            session_audit_days,
        } => {
            prune(
                &args.common,
                batch_size,
                failed_login_days,
                session_audit_days,
            )
            .await
        }
        AuditAction::Partitions {
            action: PartitionsAction::Ensure { months_ahead },
        } => ensure_partitions(&args.common, months_ahead).await,
        AuditAction::Partitions {
            action: PartitionsAction::List,
        } => list_partitions(&args.common).await,
    }
}

async fn prune(
    common: &CommonArgs,
    batch_size: u64,
    failed_login_days: i64,
    session_audit_days: i64,
) -> Result<ExitCode, Failure> {
    if !(1..=MAX_BATCH_SIZE).contains(&batch_size) {
        return Err(Failure::Usage(format!(
            "--batch-size must be between 1 and {MAX_BATCH_SIZE}"
        )));
    }
    if failed_login_days < 1
        || session_audit_days < 1
        || failed_login_days.max(session_audit_days) > 36_500
    {
        return Err(Failure::Usage(
            "--failed-login-days and --session-audit-days must be between 1 and 36500".into(),
        ));
    }
    let ctx = Context::open(common, Access::Write).await?;
    let policy = RetentionPolicy {
        batch_size,
        failed_login_max_age: chrono::Duration::days(failed_login_days),
        session_audit_max_age: chrono::Duration::days(session_audit_days),
    };
    eprintln!("pruning in batches of {batch_size} rows ...");
    let report = retention::prune_all(&ctx.db, &policy, ctx.now).await?;
    let part = |p: Pruned| json!({ "deleted": p.deleted, "batches": p.batches, "partitions_dropped": p.partitions_dropped });
    let line = |name: &str, p: Pruned| {
        let dropped = match p.partitions_dropped {
            0 => String::new(),
            n => format!(", {n} expired month partition(s) dropped"),
        };
        format!(
            "{name}: {} deleted in {} batch(es){dropped}\n",
            p.deleted, p.batches
        )
    };
    output::emit(
        ctx.format,
        &json!({
            "audit_logs": part(report.audit_logs),
            "failed_login_attempts": part(report.failed_login_attempts),
            "session_audit_log": part(report.session_audit_log),
        }),
        &format!(
            "{}{}{}",
            line("audit_logs", report.audit_logs),
            line("failed_login_attempts", report.failed_login_attempts),
            line("session_audit_log", report.session_audit_log),
        ),
    );
    Ok(ExitCode::SUCCESS)
}

async fn ensure_partitions(common: &CommonArgs, months_ahead: u32) -> Result<ExitCode, Failure> {
    if months_ahead > MAX_MONTHS_AHEAD {
        return Err(Failure::Usage(format!(
            "--months-ahead must be between 0 and {MAX_MONTHS_AHEAD}"
        )));
    }
    let ctx = Context::open(common, Access::Write).await?;
    let ensured = partitions::ensure(&ctx.db, ctx.now, months_ahead).await?;
    let mut human: String = ensured
        .created
        .iter()
        .map(|name| format!("created {name}\n"))
        .collect();
    if ensured.moved_rows > 0 {
        human.push_str(&format!(
            "moved {} row(s) out of {}\n",
            ensured.moved_rows,
            partitions::DEFAULT_PARTITION
        ));
    }
    if ensured.created.is_empty() {
        human.push_str(&format!(
            "every partition up to {months_ahead} month(s) ahead exists already\n"
        ));
    }
    output::emit(
        ctx.format,
        &json!({ "created": ensured.created, "moved_rows": ensured.moved_rows }),
        &human,
    );
    Ok(ExitCode::SUCCESS)
}

async fn list_partitions(common: &CommonArgs) -> Result<ExitCode, Failure> {
    let ctx = Context::open(common, Access::Read).await?;
    let list = partitions::list(&ctx.db).await?;
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            let (from, to) = p.range().map_or_else(
                || ("-".to_owned(), "-".to_owned()),
                |(from, to)| (from.to_rfc3339(), to.to_rfc3339()),
            );
            let rows = p
                .estimated_rows
                .map_or_else(|| "not analyzed".to_owned(), |n| n.to_string());
            vec![p.name.clone(), from, to, rows]
        })
        .collect();
    let json: Vec<_> = list
        .iter()
        .map(|p| {
            let range = p.range();
            json!({
                "name": p.name,
                "from": range.map(|r| r.0),
                "to": range.map(|r| r.1),
                "estimated_rows": p.estimated_rows,
            })
        })
        .collect();
    output::emit(
        ctx.format,
        &json!(json),
        &output::table(&["partition", "from", "to", "estimated rows"], &rows),
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn run_metrics(args: MetricsArgs) -> Result<ExitCode, Failure> {
    let MetricsAction::Rollup { date } = args.action;
    let today = chrono::Utc::now().date_naive();
    if let Some(date) = date
        && !(NaiveDate::from_ymd_opt(1970, 1, 1).is_some_and(|first| date >= first)
            && date <= today)
    {
        return Err(Failure::Usage(format!(
            "--date must be between 1970-01-01 and today ({today})"
        )));
    }
    let ctx = Context::open(&args.common, Access::Write).await?;
    let date = date.unwrap_or_else(|| {
        ctx.now
            .date_naive()
            .checked_sub_days(Days::new(1))
            .expect("yesterday exists")
    });
    let row = rollup(&ctx.db, date, &LockoutPolicy::default(), ctx.now).await?;
    let counters = [
        ("successful_logins", row.successful_logins),
        ("failed_logins", row.failed_logins),
        ("failed_otp_attempts", row.failed_otp_attempts),
        ("lockouts", row.lockouts),
        ("new_users", row.new_users),
        ("sessions_created", row.sessions_created),
        ("sessions_revoked", row.sessions_revoked),
        ("api_key_uses", row.api_key_uses),
        ("suspicious_events", row.suspicious_events),
        ("security_events_opened", row.security_events_opened),
        ("security_events_resolved", row.security_events_resolved),
        ("unique_ips", row.unique_ips),
    ];
    let mut json = serde_json::Map::new();
    json.insert("date".into(), json!(date.to_string()));
    for (name, value) in counters {
        json.insert(name.into(), json!(value));
    }
    let pairs: Vec<(&str, String)> = counters.iter().map(|(k, v)| (*k, v.to_string())).collect();
    output::emit(
        ctx.format,
        &serde_json::Value::Object(json),
        &format!(
            "security metrics for {date} (UTC)\n{}",
            output::fields(&pairs)
        ),
    );
    Ok(ExitCode::SUCCESS)
}
