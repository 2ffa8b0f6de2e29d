//! `up` and `down`: choosing the migrations a target names, then running each
//! one under the lock. PostgreSQL and SQLite run a migration and its records
//! in one transaction. MySQL/MariaDB commit DDL statement by statement, and so
//! does PostgreSQL for a migration whose `use_transaction()` is `Some(false)`:
//! the ledger marks the run as running before its first statement, and a
//! refused statement's failure record says how many ran, so the next run
//! resumes after them; a run that stopped without saying where is refused.

use std::time::Instant;

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, ExecResult, RuntimeErr, SqliteTransactionMode,
    Statement, TransactionOptions, TransactionSession, TransactionTrait, sqlx,
};

use super::ledger::{self, FAILED, INTERRUPTED, RUNNING, RunKind, SUCCEEDED};
use super::rerun::{self, Rerun};
use super::{Entry, Error, Event, Runner, State, Step, Target, lock};
use crate::render::{Direction, RETRY_WITH_NEXT, checksum, repeat_batch};

impl<M: MigratorTrait> Runner<M> {
    /// The migrations `up` would apply for `target`, rendered, without changing anything.
    ///
    /// # Errors
    /// A target that names no pending migration, a changed or unknown applied
    /// migration (see [`Runner::up`]), or a database error.
    pub async fn plan_up(&self, target: &Target) -> Result<Vec<Step>, DbErr> {
        let entries = self.status().await?;
        let steps = self.steps(Direction::Up).await?;
        select_up(&entries, steps, target, self.options.allow_changed)
    }

    /// The migrations `down` would roll back for `target`, newest first,
    /// rendered, without changing anything.
    ///
    /// # Errors
    /// A target that names no applied migration, or a database error.
    pub async fn plan_down(&self, target: &Target) -> Result<Vec<Step>, DbErr> {
        let entries = self.status().await?;
        let steps = self.steps(Direction::Down).await?;
        select_down(&entries, steps, target)
    }

    /// Applies the pending migrations `target` names, in order, under the
    /// migration lock; returns their names. Refuses when an applied
    /// migration changed since it was applied (unless `allow_changed`) or
    /// when the database has migrations this build does not know.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a server that accepts no writes, before any
    /// change; otherwise the first failure, and what ran before it stays
    /// applied and recorded.
    pub async fn up(&self, target: &Target) -> Result<Vec<String>, Error> {
        self.ensure_writable().await?;
        Ok(locked!(self, conn => self.up_on(conn, target))?)
    }

    async fn up_on<C: ConnectionTrait + TransactionTrait>(
        &self,
        conn: &C,
        target: &Target,
    ) -> Result<Vec<String>, DbErr> {
        install::<M, _>(conn).await?;
        let (steps, entries) = self.standing(conn).await?;
        let selected = select_up(&entries, steps, target, self.options.allow_changed)?;
        self.run_selected(conn, selected, RunKind::Up, &entries)
            .await
    }

    /// Rolls back the applied migrations `target` names, newest first, under
    /// the migration lock; returns their names.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a server that accepts no writes, before any
    /// change; otherwise the first failure, and what was rolled back before
    /// it stays rolled back.
    pub async fn down(&self, target: &Target) -> Result<Vec<String>, Error> {
        self.ensure_writable().await?;
        Ok(locked!(self, conn => self.down_on(conn, target))?)
    }

    async fn down_on<C: ConnectionTrait + TransactionTrait>(
        &self,
        conn: &C,
        target: &Target,
    ) -> Result<Vec<String>, DbErr> {
        install::<M, _>(conn).await?;
        let (_, entries) = self.standing(conn).await?;
        let steps = self.steps(Direction::Down).await?;
        let selected = select_down(&entries, steps, target)?;
        self.run_selected(conn, selected, RunKind::Down, &entries)
            .await
    }

    /// Runs `selected` in order, each after checking the lock is still held;
    /// an up run resumes a migration's unrepaired failure where it can.
    async fn run_selected<C: ConnectionTrait + TransactionTrait>(
        &self,
        conn: &C,
        selected: Vec<Step>,
        kind: RunKind,
        entries: &[Entry],
    ) -> Result<Vec<String>, DbErr> {
        let mut done = Vec::new();
        for step in selected {
            self.ensure_lock_held().await?;
            let failure = (kind == RunKind::Up)
                .then(|| {
                    entries
                        .iter()
                        .find(|e| e.name == step.name)
                        .and_then(|e| e.failure.clone())
                })
                .flatten();
            let started = Instant::now();
            self.run_step(conn, &step, kind, failure).await?;
            let (name, elapsed) = (step.name.clone(), started.elapsed());
            self.notify(if kind == RunKind::Up {
                Event::Applied { name, elapsed }
            } else {
                Event::RolledBack { name, elapsed }
            });
            done.push(step.name);
        }
        Ok(done)
    }

    /// `BEGIN IMMEDIATE`, retried until the write lock is free or the lock timeout passes.
    pub(super) async fn begin_sqlite_write(&self) -> Result<DatabaseTransaction, DbErr> {
        let started = Instant::now();
        let mut said = false;
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        loop {
            match self.db.begin_with_options(options).await {
                Ok(txn) => return Ok(txn),
                Err(err) if err.to_string().contains("database is locked") => {
                    if !said {
                        self.notify(Event::Waiting { write_lock: true });
                        said = true;
                    }
                    if self
                        .options
                        .lock_timeout
                        .is_some_and(|t| started.elapsed() >= t)
                    {
                        return Err(lock::lock_timeout_error(self.options.lock_timeout));
                    }
                }
                Err(err) => return Err(err),
            }
        }
    }

    pub(super) async fn ensure_lock_held(&self) -> Result<(), DbErr> {
        let holder = self.lease().as_ref().map(|l| l.holder().to_owned());
        if lock::still_held(&self.db, holder.as_deref()).await? {
            Ok(())
        } else {
            Err(DbErr::Migration(
                "the connection holding the migration lock was lost; stopped before the next migration".into(),
            ))
        }
    }

    /// Runs one rendered migration and records it.
    async fn run_step<C: ConnectionTrait + TransactionTrait>(
        &self,
        conn: &C,
        step: &Step,
        kind: RunKind,
        failure: Option<ledger::Record>,
    ) -> Result<(), DbErr> {
        if step.statementwise(self.backend()) {
            self.run_step_statementwise(conn, step, kind, failure).await
        } else {
            self.run_step_atomically(conn, step, kind).await
        }
    }

    async fn run_step_atomically<C: ConnectionTrait + TransactionTrait>(
        &self,
        conn: &C,
        step: &Step,
        kind: RunKind,
    ) -> Result<(), DbErr> {
        let started = Instant::now();
        let total = step.statements.len();
        let txn = conn.begin().await?;
        for (i, statement) in step.statements.iter().enumerate() {
            if let Err(err) = execute(&txn, statement).await {
                let _ = txn.rollback().await;
                let message = format!("statement {} of {total} failed: {err}", i + 1);
                let ms = started.elapsed().as_millis() as i64;
                ledger::insert(
                    conn,
                    &step.name,
                    kind,
                    FAILED,
                    &step.checksum,
                    total,
                    i,
                    Some(ms),
                    Some(&message),
                )
                .await?;
                return Err(DbErr::Migration(format!(
                    "{} {}: {message}. Nothing of it was applied (rolled back); fix it and run the command again",
                    kind.as_str(),
                    step.name
                )));
            }
        }
        record_applied::<M, _>(&txn, &step.name, kind).await?;
        let ms = started.elapsed().as_millis() as i64;
        ledger::insert(
            &txn,
            &step.name,
            kind,
            SUCCEEDED,
            &step.checksum,
            total,
            total,
            Some(ms),
            None,
        )
        .await?;
        txn.commit().await
    }

    /// Runs a migration statement by statement, each committing by itself:
    /// on MySQL/MariaDB, where DDL commits implicitly, and on PostgreSQL for a
    /// migration without a transaction (`CREATE INDEX CONCURRENTLY` cannot
    /// run in one, and a batched backfill must commit its batches). The ledger row is written once before the first statement
    /// (`running`) and once at the end, not after every statement: a refused
    /// statement is known not to have taken effect, so the failure record
    /// alone says exactly how many ran. Only a run that stops without
    /// recording its end leaves the position unknown; [`resume_point`]
    /// refuses to guess it.
    async fn run_step_statementwise<C: ConnectionTrait + TransactionTrait>(
        &self,
        conn: &C,
        step: &Step,
        kind: RunKind,
        failure: Option<ledger::Record>,
    ) -> Result<(), DbErr> {
        let started = Instant::now();
        let total = step.statements.len();
        let Resume {
            from: resume_from,
            uncertain_until,
        } = resume_point(step, kind, failure.as_ref())?;
        let reruns =
            plan_reruns(conn, step, resume_from, uncertain_until, failure.as_ref()).await?;
        if uncertain_until > resume_from {
            self.notify(Event::Recovering {
                name: step.name.clone(),
                from: resume_from + 1,
                uncertain_to: uncertain_until,
                total,
            });
        } else if resume_from > 0 {
            self.notify(Event::Resuming {
                name: step.name.clone(),
                done: resume_from,
                total,
            });
        }
        let id = ledger::insert(
            conn,
            &step.name,
            kind,
            RUNNING,
            &step.checksum,
            total,
            resume_from,
            None,
            None,
        )
        .await?;
        // On Galera another node may take over a lease this run could not
        // renew (a long DDL holds every commit): stop at the next statement.
        let leased = self.lease().is_some();
        for i in resume_from..total {
            if leased && i > resume_from {
                self.ensure_lock_held().await?;
            }
            let ran = match reruns.get(i - resume_from) {
                Some(rerun) => execute_again(conn, &step.statements[i], rerun).await,
                None => execute(conn, &step.statements[i]).await,
            };
            let Err(err) = ran else {
                continue;
            };
            let message = format!("statement {} of {total} failed: {err}", i + 1);
            let ms = started.elapsed().as_millis() as i64;
            let done_checksum = checksum(&step.sql[..i]);
            if !refused_by_database(&err) {
                // The statement may have committed before the connection failed.
                let _ =
                    ledger::finish(conn, id, INTERRUPTED, i, &done_checksum, ms, Some(&message))
                        .await;
                return Err(DbErr::Migration(format!(
                    "{} {}: {message}. Statements 1 to {i} are applied; whether statement {} took effect \
                     is unknown (the connection failed while it ran). `migrate status` shows the run as \
                     interrupted and `migrate up` explains how to continue",
                    kind.as_str(),
                    step.name,
                    i + 1
                )));
            }
            ledger::finish(conn, id, FAILED, i, &done_checksum, ms, Some(&message)).await?;
            return Err(DbErr::Migration(format!(
                "{} {}: {message}. Statements 1 to {i} are applied and recorded (each committed as it ran); \
                 fix the migration and run the command again to continue at statement {}, or undo them by hand \
                 and run `migrate repair {}`",
                kind.as_str(),
                step.name,
                i + 1,
                step.name
            )));
        }
        // sea-orm's record and the ledger's outcome commit together.
        let txn = conn.begin().await?;
        record_applied::<M, _>(&txn, &step.name, kind).await?;
        ledger::finish(
            &txn,
            id,
            SUCCEEDED,
            total,
            &step.checksum,
            started.elapsed().as_millis() as i64,
            None,
        )
        .await?;
        txn.commit().await
    }
}

/// Whether the database answered `err` itself, refusing the statement (it
/// did not take effect), rather than the connection failing with the
/// statement's outcome unknown. A statement that never got a connection was
/// not sent.
fn refused_by_database(err: &DbErr) -> bool {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(**e, sqlx::Error::Database(_))
        }
        DbErr::ConnectionAcquire(_) => true,
        _ => false,
    }
}

/// Where a statement-wise run continues: `from` is the first statement that
/// runs; statements before `uncertain_until` may have taken effect already
/// and run again in their safe forms ([`rerun`]).
#[derive(Debug, PartialEq, Eq)]
struct Resume {
    from: usize,
    uncertain_until: usize,
}

/// Where a statement-wise run continues after an unrepaired failure: after the
/// statements that ran, provided they are unchanged. After a run that
/// stopped without recording where (`running`: every statement from its
/// start on is uncertain; `interrupted`: the one its connection failed in),
/// the uncertain statements run again in forms safe to repeat.
fn resume_point(
    step: &Step,
    kind: RunKind,
    failure: Option<&ledger::Record>,
) -> Result<Resume, DbErr> {
    let fresh = Resume {
        from: 0,
        uncertain_until: 0,
    };
    let Some(failure) = failure.filter(|f| f.direction == kind.as_str()) else {
        return Ok(fresh);
    };
    let done = usize::try_from(failure.statements_done)
        .unwrap_or(0)
        .min(step.sql.len());
    if failure.is_unfinished() {
        // Any statement up to the uncertain ones may have run: all of the
        // migration must be what that run ran, or a statement run again in
        // its safe form could find an older version of its effect and keep it.
        if failure.checksum != step.checksum {
            return Err(interrupted(step, failure, &[]));
        }
        let uncertain_until = if failure.status == RUNNING {
            step.sql.len()
        } else {
            (done + 1).min(step.sql.len())
        };
        return Ok(Resume {
            from: retry_from(&step.sql, done),
            uncertain_until,
        });
    }
    if done == 0 {
        return Ok(fresh);
    }
    if failure.done_checksum.as_deref() == Some(checksum(&step.sql[..done]).as_str()) {
        let from = retry_from(&step.sql, done);
        Ok(Resume {
            from,
            uncertain_until: from,
        })
    } else {
        Err(DbErr::Migration(format!(
            "{} ran {done} of its statements before it failed, and those statements changed since; \
             restore them so the run can continue, or undo their effect by hand and run `migrate repair {}`",
            step.name, step.name
        )))
    }
}

/// Where a resume starts when `done` statements ran: at statement `done`,
/// or earlier at the statements just before it that must run again with it
/// (marked [`RETRY_WITH_NEXT`], e.g. dropping the INVALID index a failed
/// `CREATE INDEX CONCURRENTLY` leaves behind).
fn retry_from(sql: &[String], done: usize) -> usize {
    let mut from = done.min(sql.len());
    while from > 0 && from < sql.len() && sql[from - 1].starts_with(RETRY_WITH_NEXT) {
        from -= 1;
    }
    from
}

/// Runs one rendered statement; a backfill batch (marked
/// [`crate::render::REPEAT_WHILE_FULL`]) runs again while it changes a full batch.
async fn execute<C: ConnectionTrait>(conn: &C, statement: &Statement) -> Result<(), DbErr> {
    if let Some(batch) = repeat_batch(&statement.sql) {
        while execute_once(conn, statement).await?.rows_affected() >= batch {}
        Ok(())
    } else {
        execute_once(conn, statement).await.map(|_| ())
    }
}

/// A statement without bound values (all DDL) goes as plain text: one round
/// trip instead of prepare + execute, and no prepared statement to cache. On
/// MySQL/MariaDB over TCP, evicting cached statements (a close the server does
/// not answer, then the next prepare) stalled ~40 ms on delayed ACKs, since
/// sqlx 0.9 leaves Nagle's algorithm on.
async fn execute_once<C: ConnectionTrait>(
    conn: &C,
    statement: &Statement,
) -> Result<ExecResult, DbErr> {
    if statement.values.as_ref().is_none_or(|v| v.0.is_empty()) {
        conn.execute_unprepared(&statement.sql).await
    } else {
        conn.execute_raw(statement.clone()).await
    }
}

/// How each uncertain statement (`from..until`) runs again; refuses, before
/// anything runs, when one of them cannot be made safe to repeat.
async fn plan_reruns<C: ConnectionTrait>(
    conn: &C,
    step: &Step,
    from: usize,
    until: usize,
    failure: Option<&ledger::Record>,
) -> Result<Vec<Rerun>, DbErr> {
    let mut plans = Vec::new();
    let mut unsafe_ones = Vec::new();
    let if_exists_forms = from < until && rerun::has_if_exists_forms(conn).await?;
    for i in from..until {
        match rerun::plan(conn, &step.statements[i], if_exists_forms).await? {
            Some(plan) => plans.push(plan),
            None => unsafe_ones.push(i + 1),
        }
    }
    match failure {
        Some(run) if !unsafe_ones.is_empty() => Err(interrupted(step, run, &unsafe_ones)),
        _ => Ok(plans),
    }
}

/// Runs an uncertain statement in its safe form.
async fn execute_again<C: ConnectionTrait>(
    conn: &C,
    statement: &Statement,
    rerun: &Rerun,
) -> Result<(), DbErr> {
    match rerun {
        Rerun::AsIs => execute(conn, statement).await,
        Rerun::Rewritten(safe) => execute(conn, safe).await,
        Rerun::SkipIfFound(query) => {
            let found = conn
                .query_one_raw(query.clone())
                .await?
                .map(|row| row.try_get_by_index::<i64>(0))
                .transpose()?
                .unwrap_or(0);
            if found > 0 {
                Ok(())
            } else {
                execute(conn, statement).await
            }
        }
    }
}

/// The refusal for a migration whose last run stopped at an unknown
/// statement: its statements changed since (`unsafe_ones` empty), or
/// statements `unsafe_ones` (1-based) cannot be made safe to run again (see
/// [`rerun`]), so the ledger cannot tell whether they took effect.
fn interrupted(step: &Step, run: &ledger::Record, unsafe_ones: &[usize]) -> DbErr {
    let name = &step.name;
    let done = run.statements_done;
    let total = run.statements_total;
    let (how, uncertain) = if run.status == INTERRUPTED {
        (
            format!(
                "its connection failed at statement {} ({})",
                done + 1,
                run.error.as_deref().unwrap_or("no error recorded")
            ),
            format!("statement {} may have taken effect", done + 1),
        )
    } else {
        let uncertain = if done == 0 {
            format!("any of its {total} statements may have taken effect")
        } else {
            format!(
                "any of statements {} to {total} may have taken effect",
                done + 1
            )
        };
        (
            "it stopped without recording its end: the migrator was killed, or its machine or the \
             database went down"
                .to_owned(),
            uncertain,
        )
    };
    let state = match done {
        0 => uncertain,
        1 => format!("statement 1 of {total} took effect and {uncertain} too"),
        _ => format!("statements 1 to {done} of {total} took effect and {uncertain} too"),
    };
    let why = if unsafe_ones.is_empty() {
        "its statements changed since, so what ran cannot be matched to them".to_owned()
    } else {
        format!(
            "statement{} {} cannot be run again safely (not a form whose effect is the same \
             whether it ran or not)",
            if unsafe_ones.len() == 1 { "" } else { "s" },
            unsafe_ones
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    DbErr::Migration(format!(
        "{name} did not finish its last run (run {} by {}, started {}; {how}). It commits each \
         statement as it runs, so {state}; the ledger cannot tell, and {why}. Compare the database with `migrate sql {name}`, then run \
         `migrate repair {name} --statements-done N` with N the number of its statements that took \
         effect (`migrate up` then continues at statement N+1), or undo them by hand and run \
         `migrate repair {name}` to start it afresh",
        run.id,
        run.run_by,
        run.executed_at.format("%Y-%m-%d %H:%M:%S UTC"),
    ))
}

/// Creates sea-orm's migration table and the ledger if missing.
pub(super) async fn install<M: MigratorTrait, C: ConnectionTrait>(conn: &C) -> Result<(), DbErr> {
    M::install(conn).await?;
    ledger::install(conn).await
}

/// Adds or removes the migration in sea-orm's own table.
pub(super) async fn record_applied<M: MigratorTrait, C: ConnectionTrait>(
    conn: &C,
    name: &str,
    kind: RunKind,
) -> Result<(), DbErr> {
    let table = M::migration_table_name();
    if kind.applies() {
        let now = chrono::Utc::now().timestamp();
        let stmt = Query::insert()
            .into_table(table)
            .columns([Alias::new("version"), Alias::new("applied_at")])
            .values_panic([name.into(), now.into()])
            .to_owned();
        conn.execute(&stmt).await?;
    } else {
        let stmt = Query::delete()
            .from_table(table)
            .and_where(Expr::col(Alias::new("version")).eq(name))
            .to_owned();
        conn.execute(&stmt).await?;
    }
    Ok(())
}

fn unknown(name: &str) -> DbErr {
    DbErr::Migration(format!(
        "no migration is named `{name}`; `migrate status` lists them"
    ))
}

/// The pending steps `target` selects, refusing over changed or unknown applied migrations.
fn select_up(
    entries: &[Entry],
    steps: Vec<Step>,
    target: &Target,
    allow_changed: bool,
) -> Result<Vec<Step>, DbErr> {
    let missing: Vec<&str> = entries
        .iter()
        .filter(|e| e.state == State::MissingFromCode)
        .map(|e| e.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(DbErr::Migration(format!(
            "the database has migrations this build does not contain: {}; deploy a build that has them",
            missing.join(", ")
        )));
    }
    let changed: Vec<&str> = entries
        .iter()
        .filter(|e| e.state == State::Changed)
        .map(|e| e.name.as_str())
        .collect();
    if !changed.is_empty() && !allow_changed {
        return Err(DbErr::Migration(format!(
            "applied migrations changed since they were applied: {}; restore them (`migrate verify` shows \
             the details) or pass --allow-changed",
            changed.join(", ")
        )));
    }
    let pending = |name: &str| {
        entries
            .iter()
            .any(|e| e.name == name && !e.state.is_applied())
    };
    let mut pending_steps: Vec<Step> = steps.into_iter().filter(|s| pending(&s.name)).collect();
    match target {
        Target::All => {}
        Target::Count(n) => pending_steps.truncate(*n as usize),
        Target::To(name) => {
            let Some(entry) = entries.iter().find(|e| &e.name == name) else {
                return Err(unknown(name));
            };
            if entry.state.is_applied() {
                return Err(DbErr::Migration(format!(
                    "`{name}` is applied already, so `up --to {name}` has nothing to do; pick a pending migration"
                )));
            }
            let end = pending_steps
                .iter()
                .position(|s| &s.name == name)
                .expect("a pending entry has a step");
            pending_steps.truncate(end + 1);
        }
    }
    Ok(pending_steps)
}

/// The applied steps `target` selects, newest first.
fn select_down(entries: &[Entry], steps: Vec<Step>, target: &Target) -> Result<Vec<Step>, DbErr> {
    let applied = |name: &str| {
        entries
            .iter()
            .any(|e| e.name == name && e.state.is_applied())
    };
    let mut applied_steps: Vec<Step> = steps.into_iter().filter(|s| applied(&s.name)).collect();
    applied_steps.reverse();
    match target {
        Target::All => {}
        Target::Count(n) => applied_steps.truncate(*n as usize),
        Target::To(name) => {
            let Some(entry) = entries.iter().find(|e| &e.name == name) else {
                return Err(unknown(name));
            };
            if !entry.state.is_applied() {
                return Err(DbErr::Migration(format!(
                    "`{name}` is not applied, so `down --to {name}` cannot roll back to it; pick an applied migration"
                )));
            }
            let keep = applied_steps
                .iter()
                .position(|s| &s.name == name)
                .expect("an applied entry has a step");
            if keep == 0 {
                return Err(DbErr::Migration(format!(
                    "`{name}` is the newest applied migration; `down --to {name}` has nothing to roll back"
                )));
            }
            applied_steps.truncate(keep);
        }
    }
    Ok(applied_steps)
}
