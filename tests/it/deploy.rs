//! Safe deploys through the built `gatehouse migrate` binary: concurrent
//! migrators, checksum verification, dry runs that match what runs, targets,
//! baselining a database built with each backend's own client, locking,
//! `fresh` and bad arguments.

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

use gatehouse::schema::introspect;
use sea_orm::ConnectionTrait;

use crate::support::{Backend, TestDb, empty_database};

backend_tests!(
    run_empty: four_concurrent_migrators_apply_each_migration_once,
    verify_reports_a_changed_migration_and_up_refuses,
    dry_run_prints_exactly_what_runs,
    targets_land_where_asked,
    baseline_adopts_a_database_built_by_the_native_client,
    baseline_records_checksums_of_a_plain_sea_orm_deployment,
    bad_arguments_change_nothing,
    a_waiting_migrator_says_so_and_times_out,
    fresh_drops_only_managed_tables_and_asks_first,
);

fn gatehouse(t: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.arg("migrate")
        .env("DATABASE_URL", &t.url)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Command output as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd` and fails the test, with its output, unless it succeeds.
pub(crate) fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("gatehouse runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn status_json(t: &TestDb) -> serde_json::Value {
    let out = ok(gatehouse(t).args(["status", "--format", "json"]));
    serde_json::from_slice(&out.stdout).expect("status --format json prints JSON")
}

fn applied_names(t: &TestDb) -> Vec<String> {
    status_json(t)["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["state"] == "applied")
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Every migration's name, in order.
fn names() -> Vec<String> {
    use gatehouse_migration::MigratorTrait;
    gatehouse_migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

async fn four_concurrent_migrators_apply_each_migration_once(t: TestDb) {
    let children: Vec<_> = (0..4)
        .map(|_| {
            gatehouse(&t)
                .arg("up")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a concurrent migrator failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let names = names();
    assert_eq!(t.count("seaql_migrations").await, names.len() as i64);
    for name in &names {
        let runs = t.count(&format!("gatehouse_migrations WHERE name = '{name}' AND direction = 'up' AND status = 'succeeded'")).await;
        assert_eq!(runs, 1, "{name} applied {runs} times");
    }
    assert_eq!(t.count("roles").await, 4);
    assert_eq!(t.count("role_permissions").await, 24);
}

async fn verify_reports_a_changed_migration_and_up_refuses(t: TestDb) {
    let names = names();
    ok(gatehouse(&t).args(["up", "-n", "3"]));
    let verified = ok(gatehouse(&t).arg("verify"));
    assert!(text(&verified.stdout).contains("All applied migrations verified"));
    // What an edited migration looks like from the database's side.
    t.db.execute_unprepared(&format!(
        "UPDATE gatehouse_migrations SET checksum = '{}' WHERE name = '{}'",
        "0".repeat(64),
        names[1]
    ))
    .await
    .unwrap();
    let out = gatehouse(&t).arg("verify").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with(names[1].as_str()) && l.contains("changed")),
        "{report}"
    );
    let json = gatehouse(&t)
        .args(["verify", "--format", "json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["ok"], false);

    let out = gatehouse(&t).arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(names[1].as_str()) && err.contains("--allow-changed"),
        "{err}"
    );
    assert_eq!(
        t.count("seaql_migrations").await,
        3,
        "up refused and applied nothing"
    );
    ok(gatehouse(&t).args(["up", "--allow-changed"]));
    assert_eq!(t.count("seaql_migrations").await, names.len() as i64);
}

/// Statements per migration, and the checksum printed for it, from dry-run output.
fn parse_plan(output: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let mut plan: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    let mut current = None;
    for line in output.lines() {
        if let Some(header) = line.strip_prefix("-- m") {
            let name = format!("m{}", header.split_whitespace().next().unwrap());
            let sum = header
                .rsplit("sha256 ")
                .next()
                .unwrap()
                .trim_end_matches(')')
                .to_owned();
            plan.insert(name.clone(), (sum, Vec::new()));
            current = Some(name);
        } else if !line.starts_with("--") && !line.is_empty() {
            plan.get_mut(current.as_ref().unwrap())
                .unwrap()
                .1
                .push(line.to_owned());
        }
    }
    plan
}

async fn dry_run_prints_exactly_what_runs(t: TestDb) {
    let out = ok(gatehouse(&t).args(["up", "--dry-run"]));
    let plan = parse_plan(&text(&out.stdout));
    assert_eq!(plan.keys().cloned().collect::<Vec<_>>(), names());
    assert_eq!(
        introspect(&t.db).await.unwrap().tables.len(),
        0,
        "a dry run changes nothing"
    );

    ok(gatehouse(&t).arg("up"));
    for (name, (sum, statements)) in &plan {
        assert_eq!(
            &gatehouse_migration::render::checksum(statements),
            sum,
            "printed checksum of {name}"
        );
        let recorded = t
            .count(&format!(
                "gatehouse_migrations WHERE name = '{name}' AND checksum = '{sum}' AND statements_total = {} AND statements_done = {}",
                statements.len(),
                statements.len()
            ))
            .await;
        assert_eq!(
            recorded, 1,
            "{name} ran other statements than the dry run printed"
        );
    }
    // The printed SQL, run as text on one connection as a database's own
    // client runs it, builds the same schema as the run did. (On a pool, a
    // SQLite connection that has not seen a DROP yet refuses the RENAME after it.)
    let other = empty_database(t.backend).await.unwrap();
    let mut options = sea_orm::ConnectOptions::new(other.url.clone());
    options
        .max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    let client = sea_orm::Database::connect(options).await.unwrap();
    for statements in plan.values().map(|(_, s)| s) {
        for sql in statements {
            client
                .execute_unprepared(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
    let mut ran = introspect(&t.db).await.unwrap();
    ran.tables
        .retain(|name, _| name != "seaql_migrations" && name != "gatehouse_migrations");
    assert_eq!(
        introspect(&other.db).await.unwrap().describe(),
        ran.describe()
    );
    client.close().await.unwrap();
    other.drop().await;
}

async fn targets_land_where_asked(t: TestDb) {
    let names = names();
    ok(gatehouse(&t).args(["up", "--to", names[2].as_str()]));
    assert_eq!(applied_names(&t), names[..3]);
    ok(gatehouse(&t).args(["down", "--to", names[0].as_str()]));
    assert_eq!(applied_names(&t), names[..1]);
    ok(gatehouse(&t).args(["up", "-n", "2"]));
    assert_eq!(applied_names(&t), names[..3]);
    ok(gatehouse(&t).args(["down", "-n", "1"]));
    assert_eq!(applied_names(&t), names[..2]);
    ok(gatehouse(&t).arg("down"));
    assert_eq!(applied_names(&t), names[..1]);
    let json = status_json(&t);
    assert_eq!(
        (
            json["applied"].as_u64(),
            json["pending"].as_u64(),
            json["total"].as_u64()
        ),
        (
            Some(1),
            Some(names.len() as u64 - 1),
            Some(names.len() as u64)
        )
    );
}

/// Feeds SQL to the backend's own command-line client.
fn native_client(t: &TestDb, sql: &str) {
    let mut cmd = match t.backend {
        Backend::Postgres => {
            let mut c = Command::new("psql");
            c.args([
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                &t.url.replace("postgres://", "postgresql://"),
            ]);
            c
        }
        Backend::MySql => {
            let db = t.url.rsplit('/').next().unwrap().to_owned();
            let mut c = Command::new("mariadb");
            c.args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", &db]);
            c
        }
        Backend::Sqlite => {
            let path = t
                .url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap()
                .to_owned();
            let mut c = Command::new("sqlite3");
            c.args(["-bail", &path]);
            c
        }
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the database's client is installed");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), sql.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", text(&out.stderr));
}

async fn baseline_adopts_a_database_built_by_the_native_client(t: TestDb) {
    let backend = match t.backend {
        Backend::Postgres => "postgres",
        Backend::MySql => "mysql",
        Backend::Sqlite => "sqlite",
    };
    let sql = ok(Command::new(env!("CARGO_BIN_EXE_gatehouse")).args([
        "migrate",
        "sql",
        "--backend",
        backend,
    ]));
    native_client(&t, &text(&sql.stdout));
    assert_eq!(
        t.count("role_permissions").await,
        24,
        "the client built and seeded the schema"
    );

    let verify = gatehouse(&t).arg("verify").output().unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "nothing is recorded yet, so nothing is wrong"
    );
    let out = ok(gatehouse(&t).arg("baseline"));
    let recorded = format!("Recorded {} migration(s) as applied", names().len());
    assert!(text(&out.stdout).contains(&recorded));
    let verify = ok(gatehouse(&t).arg("verify"));
    assert!(
        text(&verify.stdout).contains("All applied migrations verified"),
        "{}",
        text(&verify.stdout)
    );
    let up = ok(gatehouse(&t).arg("up"));
    assert!(text(&up.stdout).contains("Nothing to apply"));
    let again = gatehouse(&t).arg("baseline").output().unwrap();
    assert_eq!(
        again.status.code(),
        Some(1),
        "baseline refuses a database with migrations applied"
    );
}

async fn baseline_records_checksums_of_a_plain_sea_orm_deployment(t: TestDb) {
    use gatehouse_migration::{Migrator, MigratorTrait};
    // As `sea-orm-cli migrate up -n 3` leaves it: applied, no checksums.
    Migrator::up(&t.db, Some(3)).await.unwrap();
    let verify = gatehouse(&t).arg("verify").output().unwrap();
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        text(&verify.stdout).contains("applied without a record"),
        "{}",
        text(&verify.stdout)
    );

    let names = names();
    let short = gatehouse(&t)
        .args(["baseline", "--to", &names[1]])
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(1));
    assert!(
        text(&short.stderr).contains(&names[2]),
        "{}",
        text(&short.stderr)
    );

    let out = ok(gatehouse(&t).args(["baseline", "--to", &names[2]]));
    assert!(
        text(&out.stdout).contains("Recorded 3 migration(s)"),
        "{}",
        text(&out.stdout)
    );
    ok(gatehouse(&t).arg("verify"));
    assert_eq!(applied_names(&t), names[..3]);
    ok(gatehouse(&t).arg("up"));
    ok(gatehouse(&t).arg("verify"));
    assert_eq!(applied_names(&t), names);
    let again = gatehouse(&t).arg("baseline").output().unwrap();
    assert_eq!(
        again.status.code(),
        Some(1),
        "a managed database is not baselined twice"
    );
}

fn fails_with_one_line(cmd: &mut Command, code: i32, needle: &str) {
    let out = cmd.output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{cmd:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{err}");
}

async fn bad_arguments_change_nothing(t: TestDb) {
    let names = names();
    ok(gatehouse(&t).args(["up", "-n", "2"]));
    let before = introspect(&t.db).await.unwrap().describe();
    fails_with_one_line(
        gatehouse(&t).args(["up", "--to", "m_nope"]),
        2,
        "no migration is named `m_nope`",
    );
    fails_with_one_line(
        gatehouse(&t).args(["down", "--to", "m_nope"]),
        2,
        "no migration is named `m_nope`",
    );
    fails_with_one_line(
        gatehouse(&t).args(["up", "--to", names[0].as_str()]),
        1,
        "is applied already",
    );
    fails_with_one_line(
        gatehouse(&t).args(["down", "--to", names[3].as_str()]),
        1,
        "is not applied",
    );
    fails_with_one_line(
        gatehouse(&t).args(["down", "--to", names[1].as_str()]),
        1,
        "newest applied migration",
    );
    fails_with_one_line(
        gatehouse(&t).args(["mark-applied", names[0].as_str()]),
        1,
        "is applied already",
    );
    fails_with_one_line(
        gatehouse(&t).args(["repair", names[2].as_str()]),
        1,
        "no failed run",
    );
    fails_with_one_line(
        gatehouse(&t).args(["up", "--lock-timeout", "soon"]),
        2,
        "not a duration",
    );
    assert_eq!(introspect(&t.db).await.unwrap().describe(), before);
}

async fn a_waiting_migrator_says_so_and_times_out(t: TestDb) {
    // Hold the migration lock the way another migrator would.
    let holder = empty_database_connection(&t).await;
    let hold = match t.backend {
        Backend::Postgres => format!(
            "SELECT pg_advisory_lock({})",
            gatehouse_migration::runner::lock::POSTGRES_LOCK_KEY
        ),
        Backend::MySql => "SELECT GET_LOCK(CONCAT('gatehouse_migrate:', DATABASE()), 0)".to_owned(),
        Backend::Sqlite => "BEGIN IMMEDIATE".to_owned(),
    };
    holder.execute_unprepared(&hold).await.unwrap();
    let out = gatehouse(&t)
        .args(["up", "--lock-timeout", "1s"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("waiting for another migrator"), "{err}");
    assert!(err.contains("--lock-timeout"), "{err}");
    assert_eq!(
        introspect(&t.db).await.unwrap().tables.get("users"),
        None,
        "nothing ran while waiting"
    );
    let _ = holder.close().await;
    ok(gatehouse(&t).arg("up"));
    assert_eq!(t.count("roles").await, 4);
}

/// A second single connection to the test database.
async fn empty_database_connection(t: &TestDb) -> sea_orm::DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(t.url.clone());
    options.max_connections(1).sqlx_logging(false);
    sea_orm::Database::connect(options).await.unwrap()
}

async fn fresh_drops_only_managed_tables_and_asks_first(t: TestDb) {
    ok(gatehouse(&t).arg("up"));
    t.db.execute_unprepared("CREATE TABLE app_notes (id INTEGER PRIMARY KEY, body TEXT)")
        .await
        .unwrap();
    t.db.execute_unprepared("INSERT INTO app_notes (id, body) VALUES (1, 'keep me')")
        .await
        .unwrap();

    let out = gatehouse(&t).arg("fresh").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("pass --yes"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        t.count("roles").await,
        4,
        "refused without a terminal: nothing dropped"
    );

    t.db.execute_unprepared("DELETE FROM role_permissions")
        .await
        .unwrap();
    ok(gatehouse(&t).args(["fresh", "--yes"]));
    assert_eq!(
        t.count("role_permissions").await,
        24,
        "rebuilt from the migrations"
    );
    assert_eq!(
        t.count("app_notes").await,
        1,
        "a table the Migrator does not manage survives"
    );

    ok(gatehouse(&t).args(["fresh", "--all", "--yes"]));
    assert!(
        !introspect(&t.db)
            .await
            .unwrap()
            .tables
            .contains_key("app_notes")
    );
    assert_eq!(t.count("roles").await, 4);
}
