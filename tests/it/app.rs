//! gatehouse inside an application: one migrator with gatehouse's migrations
//! first (`tests/fixtures/app-migration`, whose `posts` references `users`),
//! gatehouse's own tools judging only gatehouse's part of that database, the
//! runner built from the application's connection, and the file
//! `migrate create` writes compiling and running in the application's crate.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app_migration::{AppMigrator, BehindMigrator, TemplateMigrator};
use gatehouse::schema::{application_tables, drift, introspect};
use gatehouse_migration::runner::{Event, Options, Runner, State, Target};
use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;
use serde_json::Value;

use crate::deploy::{ok, text};
use crate::operator::gatehouse;
use crate::support::TestDb;

backend_tests!(
    run_empty: gatehouse_tools_list_the_apps_migration_and_table_as_the_apps,
    gatehouse_up_applies_its_pending_migration_after_an_app_migration,
    drift_in_a_gatehouse_table_still_fails_beside_the_apps_table,
    the_create_template_applies_and_rolls_back,
    runners_from_one_application_pool_apply_each_migration_once,
);

const POSTS: &str = "m20260301_000001_create_posts";

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("--format json prints JSON")
}

async fn migrate<M: MigratorTrait>(t: &TestDb) {
    let runner = Runner::<M>::connect(&t.url, None, Options::default())
        .await
        .expect("the runner connects");
    runner.up(&Target::All).await.expect("the migrations apply");
    runner.close().await;
}

async fn gatehouse_tools_list_the_apps_migration_and_table_as_the_apps(t: TestDb) {
    migrate::<AppMigrator>(&t).await;
    let total = Migrator::migrations().len();

    let status = ok(gatehouse(&t).args(["migrate", "status"]));
    let listing = text(&status.stdout);
    let (ours, theirs) = listing
        .split_once("The application's migrations")
        .unwrap_or_else(|| panic!("no application section:\n{listing}"));
    assert!(!ours.contains(POSTS), "{listing}");
    assert!(
        theirs
            .lines()
            .any(|l| l.starts_with(POSTS) && l.contains(" applied ")),
        "{listing}"
    );
    assert_eq!(
        listing.lines().last().unwrap(),
        format!("{total} applied, 0 pending, {total} total; 1 of the application's")
    );
    let doc = json(&ok(
        gatehouse(&t).args(["migrate", "status", "--format", "json"])
    ));
    assert_eq!(doc["pending"], 0);
    assert_eq!(doc["migrations"].as_array().unwrap().len(), total);
    assert_eq!(doc["application"][0]["name"], POSTS);
    assert_eq!(doc["application"][0]["state"], "application");

    let verify = ok(gatehouse(&t).args(["migrate", "verify"]));
    let report = text(&verify.stdout);
    assert!(
        report.contains(&format!(
            "Not checked here, the application's (its own migrator verifies them): {POSTS}"
        )) && report.contains("All applied migrations verified"),
        "{report}"
    );
    let doc = json(&ok(
        gatehouse(&t).args(["migrate", "verify", "--format", "json"])
    ));
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["application"][0]["name"], POSTS);

    let up = ok(gatehouse(&t).args(["migrate", "up"]));
    assert!(
        text(&up.stdout).contains("Nothing to apply"),
        "{}",
        text(&up.stdout)
    );

    let doctor = ok(gatehouse(&t).args(["doctor", "--format", "json"]));
    let doc = json(&doctor);
    assert_eq!(doc["ok"], true, "{doc:#}");
    let check = |name: &str| {
        doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no {name} check: {doc:#}"))
            .clone()
    };
    let migrations = check("migrations");
    assert_eq!(migrations["status"], "ok", "{migrations:#}");
    assert!(
        migrations["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("1 of the application's ({POSTS})")),
        "{migrations:#}"
    );
    let schema = check("schema");
    assert_eq!(schema["status"], "ok", "{schema:#}");
    assert!(
        schema["detail"]
            .as_str()
            .unwrap()
            .ends_with("1 table(s) of the application's: posts"),
        "{schema:#}"
    );

    // Removing sea-orm's migration table would lose the application's records.
    for args in [&["migrate", "reset"][..], &["migrate", "fresh", "--yes"]] {
        let out = gatehouse(&t).args(args).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(POSTS) && err.contains("with the application's migrator"),
            "{err}"
        );
    }
    assert_eq!(t.count("seaql_migrations").await, total as i64 + 1);

    // The application's own migrator owns them all: nothing is the application's, all applied.
    let runner = Runner::<AppMigrator>::connect(&t.url, None, Options::default())
        .await
        .unwrap();
    let entries = runner.status().await.unwrap();
    runner.close().await;
    assert!(entries.iter().all(|e| e.state == State::Applied));
    assert_eq!(entries.len(), total + 1);
    // gatehouse's migrator alone, owning the whole database, still calls it missing from code.
    let runner = Runner::<Migrator>::connect(&t.url, None, Options::default())
        .await
        .unwrap();
    let entries = runner.status().await.unwrap();
    runner.close().await;
    assert_eq!(entries.last().unwrap().state, State::MissingFromCode);
}

async fn gatehouse_up_applies_its_pending_migration_after_an_app_migration(t: TestDb) {
    migrate::<BehindMigrator>(&t).await;
    let newest = Migrator::migrations().last().unwrap().name().to_owned();
    let up = ok(gatehouse(&t).args(["migrate", "up"]));
    let out = text(&up.stdout);
    assert!(
        out.contains(&format!("Applied     {newest} (")) && out.contains("Applied 1 migration(s)"),
        "{out}"
    );
    ok(gatehouse(&t).args(["migrate", "verify"]));
    let runner = Runner::<AppMigrator>::connect(&t.url, None, Options::default())
        .await
        .unwrap();
    assert!(runner.is_up_to_date().await.unwrap());
    runner.close().await;
}

async fn drift_in_a_gatehouse_table_still_fails_beside_the_apps_table(t: TestDb) {
    migrate::<AppMigrator>(&t).await;
    t.db.execute_unprepared("ALTER TABLE users ADD COLUMN nickname VARCHAR(20) NULL")
        .await
        .unwrap();
    let live = introspect(&t.db).await.unwrap();
    assert_eq!(application_tables(&live), ["posts"]);
    let problems = drift(t.db_backend(), &live);
    assert_eq!(
        problems,
        ["column `users.nickname` exists in the database but not in entity/src/users.rs"]
    );

    let out = gatehouse(&t)
        .args(["doctor", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc = json(&out);
    let schema = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "schema")
        .unwrap()
        .clone();
    assert_eq!(schema["status"], "fail", "{schema:#}");
    let detail = schema["detail"].as_str().unwrap();
    assert!(
        detail.contains("users.nickname") && !detail.contains("posts"),
        "{detail}"
    );
}

async fn the_create_template_applies_and_rolls_back(t: TestDb) {
    let runner = Runner::<TemplateMigrator>::connect(&t.url, None, Options::default())
        .await
        .unwrap();
    runner.up(&Target::All).await.unwrap();
    assert!(
        introspect(&t.db)
            .await
            .unwrap()
            .tables
            .contains_key("example")
    );
    runner.down(&Target::Count(1)).await.unwrap();
    runner.close().await;
    assert!(
        !introspect(&t.db)
            .await
            .unwrap()
            .tables
            .contains_key("example")
    );
}

/// Four runners made from the application's own pool (five connections) at
/// once: each takes the lock on a connection of its own, so every migration
/// runs once, the events report each one, and the application's pool stays open.
async fn runners_from_one_application_pool_apply_each_migration_once(t: TestDb) {
    let applied = Arc::new(Mutex::new(Vec::<String>::new()));
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let db = t.db.clone();
            let applied = Arc::clone(&applied);
            tokio::spawn(async move {
                let options = Options {
                    lock_timeout: Some(Duration::from_secs(300)),
                    on_event: Some(Arc::new(move |event: &Event| {
                        if let Event::Applied { name, .. } = event {
                            applied.lock().unwrap().push(name.clone());
                        }
                    })),
                    ..Options::default()
                };
                let runner = Runner::<AppMigrator>::from_connection(db, None, options)
                    .await
                    .expect("the runner opens its connection");
                let names = runner.up(&Target::All).await.expect("up succeeds");
                runner.close().await;
                names
            })
        })
        .collect();
    let mut all = Vec::new();
    for run in runs {
        all.extend(run.await.unwrap());
    }
    let expected: Vec<String> = AppMigrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    all.sort();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(all, sorted, "each migration applied exactly once");
    let mut events = applied.lock().unwrap().clone();
    events.sort();
    assert_eq!(events, sorted, "one Applied event per migration");
    assert_eq!(
        t.count("gatehouse_migrations WHERE direction = 'up' AND status = 'succeeded'")
            .await,
        expected.len() as i64
    );
    assert_eq!(t.count("seaql_migrations").await, expected.len() as i64);
}

#[tokio::test]
async fn a_runner_works_on_an_in_memory_sqlite_connection() {
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    let runner = Runner::<AppMigrator>::from_connection(db.clone(), None, Options::default())
        .await
        .unwrap();
    let names = runner.up(&Target::All).await.unwrap();
    assert_eq!(names.len(), AppMigrator::migrations().len());
    assert!(runner.is_up_to_date().await.unwrap());
    runner.close().await;
    // The application's connection sees the tables and stays open.
    let live = introspect(&db).await.unwrap();
    assert!(live.tables.contains_key("users") && live.tables.contains_key("posts"));
    assert!(drift(sea_orm::DbBackend::Sqlite, &live).is_empty());

    let mut options = sea_orm::ConnectOptions::new("sqlite::memory:");
    options.max_connections(3);
    let pool = sea_orm::Database::connect(options).await.unwrap();
    let err = Runner::<Migrator>::from_connection(pool, None, Options::default())
        .await
        .err()
        .expect("an in-memory pool of several connections is refused");
    assert!(err.to_string().contains("max_connections(1)"), "{err}");
}

/// An application's lib.rs in the form the crate documentation shows.
const APP_LIB: &str = "pub use sea_orm_migration::prelude::*;

mod m20260301_000001_create_posts;

pub struct AppMigrator;

impl MigratorTrait for AppMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = gatehouse_migration::migrations();
        migrations.push(Box::new(m20260301_000001_create_posts::Migration));
        migrations
    }
}
";

/// The new migration's module name, from `Created     <path>`.
fn created(out: &Output) -> String {
    let line = text(&out.stdout);
    let path = line
        .trim()
        .strip_prefix("Created     ")
        .expect("Created line");
    Path::new(path)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn app_crate(root: &Path) -> std::path::PathBuf {
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("lib.rs"), APP_LIB).unwrap();
    src
}

#[test]
fn migrate_create_writes_into_the_running_crate_and_registers_there() {
    let root = std::env::temp_dir().join(format!("gh_create_{}", uuid::Uuid::now_v7().simple()));
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("migration/src/cli/template.rs"),
    )
    .unwrap();
    let cli = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.env_remove("CARGO_MANIFEST_DIR");
        cmd
    };

    // The crate `cargo run` runs (an application's migration binary).
    let running = app_crate(&root.join("app/migration"));
    let module = created(&ok(cli()
        .args(["migrate", "create", "add_tags"])
        .current_dir(&root)
        .env("CARGO_MANIFEST_DIR", root.join("app/migration"))));
    assert!(module.ends_with("_add_tags"), "{module}");
    assert_eq!(
        std::fs::read_to_string(running.join(format!("{module}.rs"))).unwrap(),
        template
    );
    let lib = std::fs::read_to_string(running.join("lib.rs")).unwrap();
    assert!(
        lib.contains(&format!("mod m20260301_000001_create_posts;\nmod {module};\n"))
            && lib.contains(&format!(
                "        migrations.push(Box::new(m20260301_000001_create_posts::Migration));\n        migrations.push(Box::new({module}::Migration));\n        migrations\n"
            )),
        "{lib}"
    );

    // Outside cargo: ./migration/src of the working directory, or --dir.
    let cwd = app_crate(&root.join("repo/migration"));
    let module = created(&ok(cli()
        .args(["migrate", "create", "add_likes"])
        .current_dir(root.join("repo"))));
    assert!(cwd.join(format!("{module}.rs")).exists());
    let dir = app_crate(&root.join("elsewhere"));
    let module = created(&ok(cli()
        .args(["migrate", "create", "add_votes", "--dir"])
        .arg(&dir)
        .current_dir(&root)));
    assert!(
        std::fs::read_to_string(dir.join("lib.rs"))
            .unwrap()
            .contains(&format!("mod {module};"))
    );
    std::fs::remove_dir_all(&root).unwrap();
}
