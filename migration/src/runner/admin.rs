//! Operations around the migrations rather than through them: recording a
//! migration as applied without running it, adopting a database built from
//! the plain SQL, clearing a failure or recording how far an interrupted run
//! got after a human check, and rebuilding.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DbBackend, Statement, TransactionSession, TransactionTrait,
};

use super::exec::{install, record_applied};
use super::ledger::{self, RunKind, SUCCEEDED};
use super::{Error, Event, Runner, State, Target, lock};
use crate::render::{Direction, checksum};

impl<M: MigratorTrait> Runner<M> {
    /// Records the pending migration `name` as applied without running it
    /// (its tables exist already), with its checksum.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a server that accepts no writes; an unknown or
    /// already applied migration, or a database error.
    pub async fn mark_applied(&self, name: &str) -> Result<(), Error> {
        self.ensure_writable().await?;
        Ok(
            locked!(self, conn => self.record_without_running(conn, Some(name), RunKind::MarkApplied))?,
        )
    }

    /// Adopts a database gatehouse's runner did not build: records every
    /// migration up to and including `to` (default: all) with its checksum,
    /// without running any. Pending migrations (a database built from
    /// `migrate sql`) are also recorded as applied in sea-orm's table;
    /// migrations applied by plain sea-orm-migration (`sea-orm-cli migrate
    /// up`) get the checksum record they lack. Refuses when a migration in
    /// that range already has a record, or one after it is applied.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a server that accepts no writes; a database the
    /// runner manages already, an unknown `to`, or a database error.
    pub async fn baseline(&self, to: Option<&str>) -> Result<Vec<String>, Error> {
        self.ensure_writable().await?;
        let names = locked!(self, conn => self.baseline_on(conn, to))?;
        Ok(names)
    }

    async fn baseline_on<C: ConnectionTrait + TransactionTrait>(
        &self,
        conn: &C,
        to: Option<&str>,
    ) -> Result<Vec<String>, DbErr> {
        install::<M, _>(conn).await?;
        let (steps, entries) = self.standing(conn).await?;
        let end = match to {
            Some(name) => steps.iter().position(|s| s.name == name).ok_or_else(|| {
                DbErr::Migration(format!(
                    "no migration is named `{name}`; `migrate status` lists them"
                ))
            })?,
            None => steps.len().saturating_sub(1),
        };
        let recorded: Vec<&str> = entries
            .iter()
            .filter(|e| {
                !matches!(
                    e.state,
                    State::Pending | State::AppliedWithoutRecord | State::Application
                )
            })
            .map(|e| e.name.as_str())
            .collect();
        if !recorded.is_empty() {
            return Err(DbErr::Migration(format!(
                "{} migration(s) are recorded by gatehouse already ({}); baseline adopts a \
                 database without records. Use `migrate mark-applied NAME` for single migrations",
                recorded.len(),
                recorded.join(", ")
            )));
        }
        if let Some(later) = entries
            .iter()
            .skip(end + 1)
            .find(|e| e.state == State::AppliedWithoutRecord)
        {
            return Err(DbErr::Migration(format!(
                "`{}` is applied, so the baseline must reach it: pass `--to {}` or omit `--to`",
                later.name, later.name
            )));
        }
        let txn = conn.begin().await?;
        let mut names = Vec::new();
        for (step, entry) in steps.iter().zip(&entries).take(end + 1) {
            if entry.state == State::Pending {
                record_applied::<M, _>(&txn, &step.name, RunKind::Baseline).await?;
            }
            ledger::insert(
                &txn,
                &step.name,
                RunKind::Baseline,
                SUCCEEDED,
                &step.checksum,
                step.statements.len(),
                0,
                Some(0),
                None,
            )
            .await?;
            names.push(step.name.clone());
        }
        txn.commit().await?;
        Ok(names)
    }

    async fn record_without_running<C: ConnectionTrait + TransactionTrait>(
        &self,
        conn: &C,
        name: Option<&str>,
        kind: RunKind,
    ) -> Result<(), DbErr> {
        install::<M, _>(conn).await?;
        let name = name.unwrap_or_default();
        let (steps, entries) = self.standing(conn).await?;
        let Some(entry) = entries.iter().find(|e| e.name == name) else {
            return Err(DbErr::Migration(format!(
                "no migration is named `{name}`; `migrate status` lists them"
            )));
        };
        if entry.state.is_applied() {
            return Err(DbErr::Migration(format!(
                "`{name}` is applied already; nothing to mark"
            )));
        }
        let step = steps
            .iter()
            .find(|s| s.name == name)
            .expect("an entry in code has a step");
        let txn = conn.begin().await?;
        record_applied::<M, _>(&txn, name, kind).await?;
        ledger::insert(
            &txn,
            name,
            kind,
            SUCCEEDED,
            &step.checksum,
            step.statements.len(),
            0,
            Some(0),
            None,
        )
        .await?;
        txn.commit().await
    }

    /// Clears the failure record of `name` after a human fixed the database,
    /// so the next `up` starts the migration from its first statement.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a server that accepts no writes; no failed run
    /// of `name` to clear, or a database error.
    pub async fn repair(&self, name: &str) -> Result<u64, Error> {
        self.ensure_writable().await?;
        let cleared = locked!(self, conn => async {
            ledger::install(conn).await?;
            ledger::repair(conn, name).await
        })?;
        if cleared == 0 {
            return Err(DbErr::Migration(format!(
                "`{name}` has no failed run to repair; `migrate status` shows failures"
            ))
            .into());
        }
        Ok(cleared)
    }

    /// Records that exactly the first `statements_done` statements of `name`
    /// took effect before its last run stopped, as a person established by
    /// comparing the database with `migrate sql`, so that the next `up`
    /// continues at the statement after them. For a statement-wise run
    /// (MySQL/MariaDB, or a PostgreSQL migration without a transaction) that
    /// was interrupted at a statement the ledger cannot tell (or failed).
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a server that accepts no writes; no unresolved
    /// `up` run of `name`, a backend that does not resume part way, more
    /// statements than the migration has, or a database error.
    pub async fn repair_at(&self, name: &str, statements_done: usize) -> Result<(), Error> {
        self.ensure_writable().await?;
        Ok(locked!(self, conn => async {
            ledger::install(conn).await?;
            let (steps, entries) = self.standing(conn).await?;
            let failure = entries
                .iter()
                .find(|e| e.name == name && !e.state.is_applied())
                .and_then(|e| e.failure.clone())
                .filter(|f| f.direction == RunKind::Up.as_str())
                .ok_or_else(|| {
                    DbErr::Migration(format!(
                        "`{name}` has no failed or interrupted run to repair; `migrate status` shows them"
                    ))
                })?;
            let step = steps
                .iter()
                .find(|s| s.name == name)
                .expect("an entry with a failure has a step");
            if !step.statementwise(self.backend()) {
                return Err(DbErr::Migration(format!(
                    "`{name}` runs in one transaction on this database, so it never stops part way: a \
                     failed run was rolled back; fix it and run `migrate up` again (or `migrate repair {name}`)"
                )));
            }
            let total = step.sql.len();
            if statements_done > total {
                return Err(DbErr::Migration(format!(
                    "`{name}` has {total} statements; --statements-done {statements_done} is more"
                )));
            }
            let before = failure
                .error
                .as_deref()
                .unwrap_or("stopped without recording its end");
            let note = format!(
                "{before}; statements 1 to {statements_done} recorded as applied by \
                 `migrate repair --statements-done {statements_done}`"
            );
            ledger::settle(
                conn,
                failure.id,
                statements_done,
                &checksum(&step.sql[..statements_done]),
                &note,
            )
            .await
        })?)
    }

    /// The tables `fresh` drops: those this migrator creates (plus its own
    /// bookkeeping), or with `all` every table in the database/schema.
    ///
    /// # Errors
    /// A database error.
    pub async fn tables_to_drop(&self, all: bool) -> Result<Vec<String>, DbErr> {
        // Never the Galera lease's table: `fresh` holds the lease in it.
        let existing: Vec<String> = existing_tables(&self.db)
            .await?
            .into_iter()
            .filter(|t| t != super::lock::LEASE_TABLE)
            .collect();
        if all {
            return Ok(existing);
        }
        let mut managed: Vec<String> = self
            .steps(Direction::Up)
            .await?
            .iter()
            .flat_map(|s| s.sql.iter().filter_map(|sql| created_table(sql)))
            .collect();
        managed.push(M::migration_table_name().to_string());
        managed.push(ledger::LEDGER_TABLE.to_owned());
        Ok(existing
            .into_iter()
            .filter(|t| managed.contains(t))
            .collect())
    }

    /// Drops `tables` (see [`Runner::tables_to_drop`]) and applies every migration.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a server that accepts no writes, before
    /// anything is dropped; a database error.
    pub async fn fresh(&self, tables: &[String]) -> Result<Vec<String>, Error> {
        self.ensure_writable().await?;
        self.refuse_over_application("fresh").await?;
        let backend = self.backend();
        if backend == DbBackend::Sqlite {
            // Per connection, outside a transaction: the runner has exactly one connection.
            self.db
                .execute_raw(raw(backend, "PRAGMA foreign_keys = OFF"))
                .await?;
        }
        let dropped = locked!(self, conn => drop_tables(conn, tables, &|e| self.notify(e)));
        if backend == DbBackend::Sqlite {
            self.db
                .execute_raw(raw(backend, "PRAGMA foreign_keys = ON"))
                .await?;
        }
        dropped?;
        self.up(&Target::All).await
    }

    /// Rolls back every applied migration, then removes sea-orm's table and the ledger.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a server that accepts no writes, before any
    /// change; otherwise the first failure.
    pub async fn reset(&self) -> Result<Vec<String>, Error> {
        self.ensure_writable().await?;
        self.refuse_over_application("reset").await?;
        let names = self.down(&Target::All).await?;
        locked!(self, conn => async {
            conn.execute(&Table::drop().table(M::migration_table_name()).if_exists().to_owned()).await?;
            ledger::uninstall(conn).await
        })?;
        Ok(names)
    }

    /// Refuses `what` (which removes sea-orm's migration table) while the
    /// application's migrations are recorded there.
    async fn refuse_over_application(&self, what: &str) -> Result<(), DbErr> {
        let application: Vec<String> = self
            .status()
            .await?
            .into_iter()
            .filter(|e| e.state == State::Application)
            .map(|e| e.name)
            .collect();
        if application.is_empty() {
            return Ok(());
        }
        Err(DbErr::Migration(format!(
            "the database also holds the application's migrations ({}), and `{what}` would remove \
             their records; run `{what}` with the application's migrator, which has them all",
            application.join(", ")
        )))
    }

    /// Problems `verify` reports: changed, unrecorded, failed or unknown migrations.
    ///
    /// # Errors
    /// A database error.
    pub async fn verify(&self) -> Result<Vec<super::Entry>, DbErr> {
        Ok(self
            .status()
            .await?
            .into_iter()
            .filter(|e| e.state.is_problem())
            .collect())
    }

    /// Whether every migration is applied and unchanged.
    ///
    /// # Errors
    /// A database error.
    pub async fn is_up_to_date(&self) -> Result<bool, DbErr> {
        Ok(self
            .status()
            .await?
            .iter()
            .all(|e| matches!(e.state, State::Applied | State::Application)))
    }
}

fn raw(backend: DbBackend, sql: &str) -> Statement {
    Statement::from_string(backend, sql.to_owned())
}

/// The table a `CREATE TABLE` statement creates.
fn created_table(sql: &str) -> Option<String> {
    let rest = sql.strip_prefix("CREATE TABLE ")?;
    let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
    let name = rest.split_whitespace().next()?;
    Some(name.trim_matches(|c| c == '"' || c == '`').to_owned())
}

async fn existing_tables<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        // Partitions go with their partitioned table.
        DbBackend::Postgres => {
            "SELECT table_name::text AS t FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
               AND NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = \
                   (quote_ident(table_schema) || '.' || quote_ident(table_name))::regclass)"
        }
        DbBackend::MySql => {
            "SELECT CAST(TABLE_NAME AS CHAR) AS t FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
        }
        _ => {
            "SELECT name AS t FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
    };
    db.query_all_raw(raw(backend, sql))
        .await?
        .iter()
        .map(|row| row.try_get::<String>("", "t"))
        .collect()
}

async fn drop_tables<C: ConnectionTrait>(
    conn: &C,
    tables: &[String],
    notify: &(dyn Fn(Event) + Sync),
) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    if backend == DbBackend::MySql {
        conn.execute_raw(raw(backend, "SET FOREIGN_KEY_CHECKS = 0"))
            .await?;
    }
    for table in tables {
        let mut stmt = Table::drop();
        stmt.table(Alias::new(table.as_str())).if_exists();
        if backend == DbBackend::Postgres {
            stmt.cascade();
        }
        conn.execute(&stmt).await?;
        notify(Event::Dropped {
            table: table.clone(),
        });
    }
    if backend == DbBackend::MySql {
        conn.execute_raw(raw(backend, "SET FOREIGN_KEY_CHECKS = 1"))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::created_table;

    #[test]
    fn created_table_reads_each_backends_quoting() {
        assert_eq!(
            created_table(r#"CREATE TABLE "users" ( "id" uuid )"#).as_deref(),
            Some("users")
        );
        assert_eq!(
            created_table("CREATE TABLE `roles` ( `id` binary(16) )").as_deref(),
            Some("roles")
        );
        assert_eq!(created_table("CREATE INDEX x ON y (z)"), None);
    }
}
