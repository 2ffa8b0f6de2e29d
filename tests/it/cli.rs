//! The built binaries: `gatehouse migrate`, the `migration` bin and, where
//! installed, `sea-orm-cli migrate` from the repository root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gatehouse::schema::introspect;
use gatehouse_migration::{Migrator, MigratorTrait};

use crate::support::TestDb;

backend_tests!(run_empty: gatehouse_migrate_up_down_status, migration_bin_applies_all, sea_orm_cli_migrates, dot_env_serves_every_entry_point);

fn gatehouse() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.env_remove("DATABASE_URL").env_remove("RUST_LOG");
    cmd
}

pub(crate) fn migration_bin() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_gatehouse")).with_file_name("gatehouse-migration");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace --bins`",
        path.display()
    );
    path
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the binary runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// The `status` summary line with `applied` of all migrations applied.
fn summary(applied: usize) -> String {
    let total = Migrator::migrations().len();
    format!(
        "{applied} applied, {} pending, {total} total",
        total - applied
    )
}

fn total() -> usize {
    Migrator::migrations().len()
}

fn last_line(out: &Output) -> String {
    stdout(out).lines().last().unwrap_or_default().to_owned()
}

async fn gatehouse_migrate_up_down_status(t: TestDb) {
    let status = run(gatehouse()
        .args(["migrate", "status"])
        .env("DATABASE_URL", &t.url));
    assert_eq!(last_line(&status), summary(0));
    assert_eq!(
        stdout(&status).matches("pending").count(),
        total() + 1,
        "{}",
        stdout(&status)
    );

    run(gatehouse()
        .args(["migrate", "up", "-n", "2"])
        .env("DATABASE_URL", &t.url));
    let status = run(gatehouse()
        .args(["migrate", "status"])
        .env("DATABASE_URL", &t.url));
    assert_eq!(last_line(&status), summary(2));
    let listing = stdout(&status);
    let applied: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains(" applied "))
        .collect();
    assert_eq!(applied.len(), 2);
    assert!(
        applied[0].starts_with("m20260115_000001_create_initial_schema")
            && applied[0].ends_with(" UTC"),
        "{}",
        applied[0]
    );

    run(gatehouse()
        .args(["migrate", "up"])
        .env("DATABASE_URL", &t.url));
    assert_eq!(t.count("roles").await, 4);
    run(gatehouse()
        .args(["migrate", "down"])
        .env("DATABASE_URL", &t.url));
    let status = run(gatehouse()
        .args(["migrate", "status"])
        .env("DATABASE_URL", &t.url));
    assert_eq!(last_line(&status), summary(total() - 1));

    run(gatehouse()
        .args(["migrate", "refresh"])
        .env("DATABASE_URL", &t.url));
    assert_eq!(t.count("data_classification").await, 26);
    run(gatehouse()
        .args(["migrate", "reset"])
        .env("DATABASE_URL", &t.url));
    let schema = introspect(&t.db).await.unwrap();
    assert!(
        schema.tables.is_empty(),
        "reset leaves {:?}",
        schema.tables.keys()
    );
}

async fn migration_bin_applies_all(t: TestDb) {
    let out = run(Command::new(migration_bin())
        .arg("up")
        .env("DATABASE_URL", &t.url));
    assert!(
        stdout(&out).contains(&format!("Applied {} migration(s)", total())),
        "{}",
        stdout(&out)
    );
    let status = run(Command::new(migration_bin())
        .arg("status")
        .env("DATABASE_URL", &t.url));
    assert_eq!(last_line(&status), summary(total()));
}

/// `sea-orm-cli migrate up` from the repository root, where it is installed.
async fn sea_orm_cli_migrates(t: TestDb) {
    let found = Command::new("sea-orm-cli")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("TEST_REQUIRE_SEA_ORM_CLI").as_deref() != Ok("1"),
            "sea-orm-cli is not installed and TEST_REQUIRE_SEA_ORM_CLI=1: cargo install sea-orm-cli --version 2.0.4"
        );
        println!("skipped: sea-orm-cli not installed");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run(Command::new("sea-orm-cli")
        .args(["migrate", "up"])
        .current_dir(root)
        .env("DATABASE_URL", &t.url));
    assert!(
        stdout(&out).contains(&format!("Applied {} migration(s)", total())),
        "{}",
        stdout(&out)
    );
    let out = run(Command::new("sea-orm-cli")
        .args(["migrate", "status"])
        .current_dir(root)
        .env("DATABASE_URL", &t.url));
    assert!(stdout(&out).contains(&summary(total())), "{}", stdout(&out));
    assert_eq!(t.count("roles").await, 4);
}

#[test]
fn without_database_url_a_sqlite_file_in_the_working_directory_is_used() {
    let dir = std::env::temp_dir().join(format!("gh_cli_{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(gatehouse().args(["migrate", "up"]).current_dir(&dir));
    assert!(
        stderr(&out).contains("DATABASE_URL is not set; using the SQLite file ./gatehouse.db"),
        "{}",
        stderr(&out)
    );
    assert!(dir.join("gatehouse.db").exists());
    let status = run(gatehouse().args(["migrate", "status"]).current_dir(&dir));
    assert_eq!(last_line(&status), summary(total()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unsupported_scheme_is_one_clear_line_and_exit_2() {
    let out = gatehouse()
        .args(["migrate", "up"])
        .env("DATABASE_URL", "oracle://scott@localhost/orcl")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("unsupported database URL scheme `oracle:`") && err.contains("postgres://"),
        "{err}"
    );
}

#[test]
fn unreachable_server_is_one_clear_line_and_exit_2() {
    let out = gatehouse()
        .args(["migrate", "status"])
        .env(
            "DATABASE_URL",
            "postgres://postgres:hunter2@127.0.0.1:1/nowhere",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot connect to postgres://postgres:***@127.0.0.1:1/nowhere"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
}

#[test]
fn sql_preview_needs_no_database() {
    let out = run(gatehouse().args([
        "migrate",
        "sql",
        "--backend",
        "mysql",
        "m20260115_000004_add_session_security",
    ]));
    let sql = stdout(&out);
    assert!(
        sql.contains("ALTER TABLE `sessions` ADD COLUMN `security_hash` varchar(64) NULL;"),
        "{sql}"
    );
    let out = gatehouse()
        .args(["migrate", "sql", "m_nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no migration is named `m_nope`"));
}

/// `DATABASE_URL` only in `.env`: `gatehouse migrate`, the operator commands
/// and the `migration` bin all use that database (none falls back to
/// `./gatehouse.db`, none reads another).
async fn dot_env_serves_every_entry_point(t: TestDb) {
    let dir = std::env::temp_dir().join(format!("gatehouse-dotenv-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".env"),
        format!(
            "DATABASE_URL={}\nHMAC_KEY={}\nDATA_ENCRYPTION_KEY={}\n",
            t.url,
            crate::operator::HMAC_KEY,
            crate::operator::DATA_KEY
        ),
    )
    .unwrap();
    let in_dir = |cmd: &mut Command| {
        cmd.current_dir(&dir)
            .env_remove("DATABASE_URL")
            .env_remove("HMAC_KEY")
            .env_remove("DATA_ENCRYPTION_KEY")
            .env_remove("RUST_LOG");
    };
    let mut up = gatehouse();
    in_dir(up.args(["migrate", "up"]));
    run(&mut up);
    assert_eq!(
        t.count("roles").await,
        4,
        "`migrate up` migrated the .env database"
    );

    crate::support::insert_user(&t, "dotenv").await;
    let mut list = gatehouse();
    in_dir(list.args(["user", "list", "--format", "json"]));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&run(&mut list))).unwrap();
    assert_eq!(
        listed["users"][0]["username"], "dotenv",
        "`user list` read the .env database: {listed}"
    );

    let mut status = Command::new(migration_bin());
    in_dir(status.arg("status"));
    assert_eq!(last_line(&run(&mut status)), summary(total()));
    assert!(
        !dir.join("gatehouse.db").exists(),
        "no entry point fell back to ./gatehouse.db"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
