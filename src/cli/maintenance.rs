//! `gatehouse audit prune` and `gatehouse metrics rollup`: the scheduled
//! jobs (seed 004's cleanup procedures, seed 002's daily metrics).

use std::process::ExitCode;

use chrono::{Days, NaiveDate};
use serde_json::json;

use super::context::{Context, Failure, Group};
use super::output;
use crate::audit::retention::{self, MAX_BATCH_SIZE, RetentionPolicy};
use crate::audit::{Pruned, rollup};
use crate::lockout::LockoutPolicy;

/// The `AuditArgs` command line: options and subcommand.
pub type AuditArgs = Group<AuditAction>;

#[derive(clap::Subcommand, Debug)]
pub enum AuditAction {
    /// Delete audit entries past their retention_days (default 90), failed
    /// login attempts and session audit rows past their age, in batches.
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
}

/// The `MetricsArgs` command line: options and subcommand.
pub type MetricsArgs = Group<MetricsAction>;

#[derive(clap::Subcommand, Debug)]
pub enum MetricsAction {
    /// Compute one UTC day's security_metrics row (replacing an earlier one).
    Rollup {
        /// The day, YYYY-MM-DD (default: yesterday, UTC).
        #[arg(long)]
        date: Option<NaiveDate>,
    },
}

pub async fn run_audit(args: AuditArgs) -> Result<ExitCode, Failure> {
    let AuditAction::Prune {
        batch_size,
        failed_login_days,
        session_audit_days,
    } = args.action;
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
    let ctx = Context::open(&args.common).await?;
    let policy = RetentionPolicy {
        batch_size,
        failed_login_max_age: chrono::Duration::days(failed_login_days),
        session_audit_max_age: chrono::Duration::days(session_audit_days),
    };
    eprintln!("pruning in batches of {batch_size} rows ...");
    let report = retention::prune_all(&ctx.db, &policy, ctx.now).await?;
    let part = |p: Pruned| json!({ "deleted": p.deleted, "batches": p.batches });
    let line = |name: &str, p: Pruned| {
        format!("{name}: {} deleted in {} batch(es)\n", p.deleted, p.batches)
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

pub async fn run_metrics(args: MetricsArgs) -> Result<ExitCode, Failure> {
    let MetricsAction::Rollup { date } = args.action;
    let ctx = Context::open(&args.common).await?;
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
