//! Deploys killed part way: `gatehouse migrate up` is killed with SIGKILL at
//! 8 points spread over a run, each on a database of its own, and a plain
//! `migrate up` afterwards must finish with the schema and seed data of an
//! uninterrupted run and `migrate verify` passing: no `repair`, no person.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse::schema::{LiveSchema, introspect};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::deploy::{ok, text};
use crate::support::{TestDb, empty_database};

backend_tests!(run_empty: a_migrator_killed_anywhere_recovers_on_a_plain_rerun);

/// How many points of a run the migrator is killed at.
pub const KILL_POINTS: u32 = 8;

pub fn migrate(url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.arg("migrate")
        .env("DATABASE_URL", url)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// What a finished deploy leaves: the schema and the seeded rows.
#[derive(Debug, PartialEq)]
pub struct Deployed {
    schema: LiveSchema,
    seeded: Vec<(String, i64)>,
}

impl Deployed {
    /// What differs from `expected`, table by table (empty when nothing does).
    pub fn differences(&self, expected: &Deployed) -> Vec<String> {
        let mut out = Vec::new();
        let names: std::collections::BTreeSet<&String> = self
            .schema
            .tables
            .keys()
            .chain(expected.schema.tables.keys())
            .collect();
        for name in names {
            let (got, want) = (
                self.schema.tables.get(name),
                expected.schema.tables.get(name),
            );
            if got != want {
                out.push(format!("table {name}: got {got:?}, expected {want:?}"));
            }
        }
        if self.seeded != expected.seeded {
            out.push(format!(
                "rows: got {:?}, expected {:?}",
                self.seeded, expected.seeded
            ));
        }
        out
    }
}

pub async fn deployed(db: &DatabaseConnection) -> Deployed {
    let mut schema = introspect(db).await.expect("the schema reads");
    // The Galera lease's table exists once a migrator took the lease; it is not the schema.
    schema
        .tables
        .remove(gatehouse_migration::runner::lock::LEASE_TABLE);
    // The catalog lists indexes and keys in no set order.
    for table in schema.tables.values_mut() {
        table.indexes.sort_by(|a, b| a.name.cmp(&b.name));
        table.foreign_keys.sort_by(|a, b| {
            (&a.columns, &a.referenced_table).cmp(&(&b.columns, &b.referenced_table))
        });
        table.checks.sort();
    }
    let mut seeded = Vec::new();
    for table in [
        "roles",
        "permissions",
        "role_permissions",
        "data_classification",
        "seaql_migrations",
    ] {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) FROM {table}"),
            ))
            .await
            .expect("count")
            .expect("a row");
        seeded.push((
            table.to_owned(),
            row.try_get_by_index::<i64>(0).expect("count"),
        ));
    }
    Deployed { schema, seeded }
}

/// Where a killed run left the database: how many migrations sea-orm
/// records as applied, and whether the ledger holds a run that never
/// recorded its end.
pub async fn left_at(db: &DatabaseConnection) -> (i64, bool) {
    let count = |sql: &'static str| async move {
        match db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
        {
            Ok(Some(row)) => row.try_get_by_index::<i64>(0).unwrap_or(0),
            _ => 0,
        }
    };
    (
        count("SELECT COUNT(*) FROM seaql_migrations").await,
        count("SELECT COUNT(*) FROM gatehouse_migrations WHERE status = 'running'").await > 0,
    )
}

/// Starts `migrate up` on `url`, kills it with SIGKILL after `after`, and
/// returns whether it was still running then.
pub fn kill_after(url: &str, after: Duration) -> bool {
    let mut child = migrate(url)
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gatehouse starts");
    std::thread::sleep(after);
    let running = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

/// A plain rerun finishes and verifies.
pub fn rerun_succeeds(url: &str) -> String {
    let out = ok(migrate(url).arg("up"));
    ok(migrate(url).arg("verify"));
    text(&out.stdout) + &text(&out.stderr)
}

async fn a_migrator_killed_anywhere_recovers_on_a_plain_rerun(t: TestDb) {
    let started = Instant::now();
    ok(migrate(&t.url).arg("up"));
    let whole = started.elapsed();
    let expected = deployed(&t.db).await;
    let mut seen = Vec::new();
    for point in 1..=KILL_POINTS {
        let d = empty_database(t.backend).await.expect("a second database");
        let after = whole * point / (KILL_POINTS + 1);
        let was_running = kill_after(&d.url, after);
        let left = left_at(&d.db).await;
        rerun_succeeds(&d.url);
        let differences = deployed(&d.db).await.differences(&expected);
        assert!(
            differences.is_empty(),
            "killed after {after:?} (applied {}, unfinished run {}), the rerun left another schema: {differences:#?}",
            left.0,
            left.1
        );
        seen.push((after.as_millis(), was_running, left));
        d.drop().await;
    }
    println!(
        "{}: a whole run took {} ms; killed at (ms, still running, (applied, unfinished run)): {seen:?}",
        t.backend.name(),
        whole.as_millis()
    );
    let distinct: std::collections::BTreeSet<_> = seen.iter().map(|s| s.2).collect();
    assert!(
        distinct.len() >= 2 || t.backend == crate::support::Backend::Sqlite,
        "the kills all landed at one point ({seen:?}): they test nothing spread over a run"
    );
}

backend_tests!(run_empty: every_statement_runs_again_safely_after_a_run_that_died_at_its_end);

/// The hardest recovery, for every migration gatehouse has: a statement-wise
/// run that executed all of its statements and died before recording its
/// end, so that every statement runs again in its safe form on top of its own
/// effect. The schema and seed rows must come out as from one clean run.
async fn every_statement_runs_again_safely_after_a_run_that_died_at_its_end(t: TestDb) {
    use gatehouse_migration::render::Direction;
    use gatehouse_migration::runner::ledger::{self, RunKind};
    use gatehouse_migration::runner::{Options, Runner, Target};
    use gatehouse_migration::{Migrator, MigratorTrait};

    let reference = empty_database(t.backend)
        .await
        .expect("a reference database");
    ok(migrate(&reference.url).arg("up"));
    let expected = deployed(&reference.db).await;
    reference.drop().await;

    let runner = Runner::<Migrator>::connect(&t.url, None, Options::default())
        .await
        .expect("the runner connects");
    Migrator::install(&t.db).await.expect("sea-orm's table");
    ledger::install(&t.db).await.expect("the ledger");
    let mut recovered = Vec::new();
    for step in runner.steps(Direction::Up).await.expect("steps render") {
        if step.statementwise(t.db_backend()) {
            for statement in &step.statements {
                t.db.execute_raw(statement.clone())
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", step.name));
            }
            ledger::insert(
                &t.db,
                &step.name,
                RunKind::Up,
                ledger::RUNNING,
                &step.checksum,
                step.statements.len(),
                0,
                None,
                None,
            )
            .await
            .expect("the dead run's ledger row");
            recovered.push(step.name.clone());
        }
        runner
            .up(&Target::To(step.name.clone()))
            .await
            .unwrap_or_else(|e| panic!("recovering {}: {e}", step.name));
    }
    runner.close().await;
    ok(migrate(&t.url).arg("verify"));
    let differences = deployed(&t.db).await.differences(&expected);
    assert!(differences.is_empty(), "{differences:#?}");
    match t.backend {
        // Every migration: MySQL/MariaDB run each statement by statement.
        crate::support::Backend::MySql => assert_eq!(
            recovered.len(),
            Migrator::migrations().len(),
            "{recovered:?}"
        ),
        crate::support::Backend::Postgres => assert!(!recovered.is_empty(), "{recovered:?}"),
        crate::support::Backend::Sqlite => assert!(recovered.is_empty()),
    }
}
