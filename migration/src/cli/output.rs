//! How the CLI prints plans, status and verification, for people and (with
//! `--format json`) for machines.

use sea_orm_migration::sea_orm::DbBackend;
use serde_json::json;

use super::Format;
use crate::runner::{Entry, State, Step};

/// Prints what a dry run would do: each migration's statements and checksum.
pub fn plan(steps: &[Step], verb: &str) {
    if steps.is_empty() {
        println!("-- nothing to {verb}");
        return;
    }
    for step in steps {
        println!(
            "-- {} ({} statements, sha256 {})",
            step.name,
            step.sql.len(),
            step.checksum
        );
        for sql in &step.sql {
            println!("{sql}");
        }
    }
    println!(
        "-- dry run: would {verb} {} migration(s); nothing was changed",
        steps.len()
    );
}

fn backend_name(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "PostgreSQL",
        DbBackend::MySql => "MySQL/MariaDB",
        DbBackend::Sqlite => "SQLite",
        _ => "unknown",
    }
}

fn failure_json(entry: &Entry) -> serde_json::Value {
    entry.failure.as_ref().map_or(serde_json::Value::Null, |f| {
        json!({
            "direction": f.direction,
            "status": f.status,
            "statement": f.statements_done + 1,
            "statements_total": f.statements_total,
            "error": f.error,
            "at": f.executed_at.to_rfc3339(),
        })
    })
}

/// The migrator's own entries, and the application's (applied migrations
/// another migrator runs, see [`crate::runner::Ownership::Part`]).
fn split(entries: &[Entry]) -> (Vec<&Entry>, Vec<&Entry>) {
    entries.iter().partition(|e| e.state != State::Application)
}

fn application_json(application: &[&Entry]) -> Vec<serde_json::Value> {
    application
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "state": e.state.as_str(),
                "applied_at": e.applied_at.map(|t| t.to_rfc3339()),
            })
        })
        .collect()
}

fn counts(entries: &[&Entry]) -> (usize, usize, usize) {
    let applied = entries.iter().filter(|e| e.state.is_applied()).count();
    (applied, entries.len() - applied, entries.len())
}

/// Prints every migration's standing, ending with `N applied, M pending, T total`.
/// The application's migrations are listed apart, after the migrator's own.
pub fn status(backend: DbBackend, entries: &[Entry], format: Format) {
    let (entries, application) = split(entries);
    let (applied, pending, total) = counts(&entries);
    if format == Format::Json {
        let migrations: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "name": e.name,
                    "state": e.state.as_str(),
                    "applied_at": e.applied_at.map(|t| t.to_rfc3339()),
                    "checksum": e.checksum,
                    "recorded_checksum": e.recorded_checksum,
                    "failure": failure_json(e),
                })
            })
            .collect();
        let doc = json!({
            "backend": backend_name(backend),
            "migrations": migrations,
            "application": application_json(&application),
            "applied": applied,
            "pending": pending,
            "total": total,
        });
        println!("{doc:#}");
        return;
    }
    println!("Database: {}", backend_name(backend));
    let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
    for entry in &entries {
        let detail = match (entry.state, &entry.failure) {
            (State::Failed, Some(f)) => format!(
                "at statement {} of {}: {}",
                f.statements_done + 1,
                f.statements_total,
                f.error.as_deref().unwrap_or("no error recorded")
            ),
            (State::Interrupted, Some(f)) => match &f.error {
                Some(error) => format!(
                    "at statement {} of {}, outcome unknown: {error}",
                    f.statements_done + 1,
                    f.statements_total
                ),
                None if f.statements_done == 0 => format!(
                    "somewhere in its {} statements: the run stopped without recording where",
                    f.statements_total
                ),
                None => format!(
                    "after statement {} of {}: the run stopped without recording where",
                    f.statements_done, f.statements_total
                ),
            },
            (State::Running, Some(f)) => format!(
                "by {} since {}",
                f.run_by,
                f.executed_at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            _ => entry
                .applied_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default(),
        };
        let line = format!("{:<width$}  {:<8} {detail}", entry.name, short(entry.state));
        println!("{}", line.trim_end());
    }
    let failed = entries
        .iter()
        .filter(|e| matches!(e.state, State::Failed | State::Interrupted))
        .count();
    let changed = entries.iter().filter(|e| e.state == State::Changed).count();
    if failed + changed > 0 {
        println!(
            "{failed} failed, {changed} changed: `migrate verify` explains, `migrate repair NAME` clears a failure"
        );
    }
    if !application.is_empty() {
        println!("The application's migrations (its own migrator runs and checks them):");
        let width = application.iter().map(|e| e.name.len()).max().unwrap_or(0);
        for entry in &application {
            let at = entry
                .applied_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default();
            println!("{:<width$}  {:<8} {at}", entry.name, short(entry.state));
        }
    }
    let theirs = if application.is_empty() {
        String::new()
    } else {
        format!("; {} of the application's", application.len())
    };
    println!("{applied} applied, {pending} pending, {total} total{theirs}");
}

fn short(state: State) -> &'static str {
    match state {
        State::Applied | State::AppliedWithoutRecord => "applied",
        State::Changed => "changed",
        State::Pending => "pending",
        State::Failed => "failed",
        State::Interrupted => "interrupted",
        State::Running => "running",
        State::MissingFromCode => "missing",
        State::Application => "applied",
    }
}

fn verdict(state: State) -> &'static str {
    match state {
        State::Applied => "ok",
        State::Changed => "changed",
        State::AppliedWithoutRecord => "applied without a record",
        State::MissingFromCode => "missing from code",
        State::Failed => "failed",
        State::Interrupted => "interrupted",
        State::Running => "running",
        State::Pending => "pending",
        State::Application => "the application's",
    }
}

/// Prints each migration's verification; returns whether there was no
/// problem. The application's migrations are named, not checked.
pub fn verify(entries: &[Entry], format: Format) -> bool {
    let (entries, application) = split(entries);
    let problems = entries.iter().filter(|e| e.state.is_problem()).count();
    if format == Format::Json {
        let migrations: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "name": e.name,
                    "result": verdict(e.state),
                    "checksum": e.checksum,
                    "recorded_checksum": e.recorded_checksum,
                })
            })
            .collect();
        println!(
            "{:#}",
            json!({
                "ok": problems == 0,
                "problems": problems,
                "migrations": migrations,
                "application": application_json(&application),
            })
        );
        return problems == 0;
    }
    let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
    for entry in &entries {
        let hint = match entry.state {
            State::Changed => format!(
                " (recorded sha256 {}, now {})",
                short_sum(entry.recorded_checksum.as_deref()),
                short_sum(entry.checksum.as_deref())
            ),
            State::AppliedWithoutRecord => {
                " (applied by another tool; `migrate baseline` or `mark-applied` records it)".into()
            }
            State::MissingFromCode => " (applied, but this build does not contain it)".into(),
            State::Failed => {
                " (`migrate status` shows where; fix and rerun, or `migrate repair`)".into()
            }
            State::Interrupted => {
                " (stopped at a statement the ledger cannot tell; `migrate up` explains what to do)"
                    .into()
            }
            _ => String::new(),
        };
        println!("{:<width$}  {}{hint}", entry.name, verdict(entry.state));
    }
    if !application.is_empty() {
        let names: Vec<&str> = application.iter().map(|e| e.name.as_str()).collect();
        println!(
            "Not checked here, the application's (its own migrator verifies them): {}",
            names.join(", ")
        );
    }
    if problems == 0 {
        println!("All applied migrations verified");
    } else {
        println!("{problems} problem(s) found");
    }
    problems == 0
}

fn short_sum(sum: Option<&str>) -> &str {
    sum.map_or("-", |s| &s[..s.len().min(12)])
}
