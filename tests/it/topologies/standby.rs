//! Both binaries against a PostgreSQL hot standby: every command that writes
//! refuses at once (exit 2, saying the server is a read-only standby and to
//! point `DATABASE_URL` at the primary) and changes nothing; every command
//! that only reads answers as on the primary. Also the library's typed
//! refusals, a PostgreSQL session made read-only by a setting, and a MariaDB
//! session in read-only transactions.

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

use gatehouse::{Error, ReadOnly};
use gatehouse_migration::Migrator;
use gatehouse_migration::runner::{self, Options, Ownership, Runner, Target};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};

use super::Standby;
use crate::operator::{self, PASSWORD, create_user, expect, json, run, run_cmd, text};
use crate::support::{Backend, TestDb, connect, empty_database};

/// A key other than the operator tests' `HMAC_KEY`, for `keys rotate`.
const NEW_HMAC_KEY: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f";

/// `gatehouse` with the operator tests' keys, pointed at `url`.
fn gatehouse_at(t: &TestDb, url: &str) -> Command {
    let mut cmd = operator::gatehouse(t);
    cmd.env("DATABASE_URL", url);
    cmd
}

/// The `gatehouse-migration` binary pointed at `url`.
fn migration_at(url: &str) -> Command {
    let mut cmd = Command::new(crate::cli::migration_bin());
    cmd.current_dir(std::env::temp_dir())
        .env_remove("RUST_LOG")
        .env("DATABASE_URL", url);
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `cmd` with nothing on stdin and returns its output.
fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("the binary runs")
}

/// Every row of every table in the database, as one digest per table.
async fn contents(db: &DatabaseConnection) -> BTreeMap<String, String> {
    let tables = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        ))
        .await
        .expect("the table list");
    let mut digests = BTreeMap::new();
    for row in tables {
        let table: String = row.try_get_by_index(0).expect("a name");
        let digest: String = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!(
                    "SELECT md5(COALESCE(string_agg(t::text, '|' ORDER BY t::text), '')) \
                     FROM \"{table}\" t"
                ),
            ))
            .await
            .expect("a digest")
            .expect("a row")
            .try_get_by_index(0)
            .expect("text");
        digests.insert(table, digest);
    }
    digests
}

/// Asserts that `out` is the up-front read-only refusal.
fn refused(what: &str, out: &Output) {
    assert_eq!(out.status.code(), Some(2), "{what}: {}", text(out));
    let err = stderr(out);
    assert!(
        err.contains("read-only standby")
            && err.contains("DATABASE_URL")
            && err.contains("primary"),
        "{what} does not say the server is a read-only standby: {}",
        text(out)
    );
    assert!(
        !err.contains("Execution Error") && !err.contains("cannot execute"),
        "{what} shows the driver's text: {}",
        text(out)
    );
    assert!(
        out.stdout.is_empty(),
        "{what} printed a result: {}",
        text(out)
    );
}

/// The primary migrated by the binary, with alice (role `user`, an API key,
/// a session), and the standby caught up with it.
struct Seeded {
    standby: Standby,
    alice_id: String,
    key: String,
    key_id: String,
    token: String,
}

async fn seeded() -> Option<Seeded> {
    let standby = Standby::start().await?;
    let primary = &standby.primary;
    let up = output(gatehouse_at(primary, &primary.url).args(["migrate", "up"]));
    expect(&up, 0);
    let alice = create_user(primary, "alice", &[]);
    let issued = json(&run(
        primary,
        &[
            "apikey",
            "issue",
            "alice",
            "--name",
            "ci",
            "--scope",
            "users.read",
            "--format",
            "json",
        ],
        "",
    ));
    let login = json(&run(
        primary,
        &["login", "alice", "--format", "json"],
        &format!("{PASSWORD}\n"),
    ));
    standby.caught_up().await;
    Some(Seeded {
        alice_id: alice["id"].as_str().unwrap().to_owned(),
        key: issued["key"].as_str().unwrap().to_owned(),
        key_id: issued["id"].as_str().unwrap().to_owned(),
        token: login["token"].as_str().unwrap().to_owned(),
        standby,
    })
}

#[tokio::test]
async fn every_writing_command_refuses_on_the_standby_and_changes_nothing() {
    let Some(seed) = seeded().await else {
        return;
    };
    let s = &seed.standby;
    let primary = &s.primary;
    let before = contents(&primary.db).await;
    let password = format!("{PASSWORD}\n{PASSWORD}\n");
    let key = format!("{}\n", seed.key);
    let token = format!("{}\n", seed.token);
    let gatehouse: &[(&[&str], &str)] = &[
        (&["migrate", "up"], ""),
        (&["migrate", "down"], ""),
        (&["migrate", "refresh"], ""),
        (&["migrate", "reset"], ""),
        (&["migrate", "fresh", "--yes"], ""),
        (&["migrate", "baseline"], ""),
        (
            &[
                "migrate",
                "repair",
                "m20260115_000001_create_initial_schema",
            ],
            "",
        ),
        (
            &[
                "user",
                "create",
                "--email",
                "bob@example.com",
                "--username",
                "bob",
            ],
            &password,
        ),
        (&["user", "lock", "alice"], ""),
        (&["user", "unlock", "alice"], ""),
        (&["role", "grant", "alice", "moderator"], ""),
        (&["role", "revoke", "alice", "user"], ""),
        (&["role", "create", "auditor", "--level", "20"], ""),
        (
            &["role", "permission", "add", "moderator", "users.update"],
            "",
        ),
        (&["role", "delete", "moderator"], ""),
        (
            &[
                "apikey",
                "issue",
                "alice",
                "--name",
                "x",
                "--scope",
                "users.read",
            ],
            "",
        ),
        (&["apikey", "verify"], &key),
        (&["apikey", "revoke", &seed.key_id], ""),
        (&["login", "alice"], &password),
        (&["session", "validate"], &token),
        (&["session", "revoke", "--user", "alice"], ""),
        (&["session", "cleanup"], ""),
        (&["mfa", "enroll", "alice"], ""),
        (&["mfa", "verify", "alice"], "123456\n"),
        (&["audit", "prune"], ""),
        (&["audit", "partitions", "ensure"], ""),
        (&["metrics", "rollup"], ""),
    ];
    for (args, stdin) in gatehouse {
        let out = run_cmd(gatehouse_at(primary, &s.url).args(*args), stdin);
        refused(&format!("gatehouse {}", args.join(" ")), &out);
    }
    let rotate = run_cmd(
        gatehouse_at(primary, &s.url)
            .env("HMAC_KEY", NEW_HMAC_KEY)
            .env("HMAC_KEY_PREVIOUS", operator::HMAC_KEY)
            .args(["keys", "rotate", "hmac"]),
        "",
    );
    refused("gatehouse keys rotate hmac", &rotate);
    let migration: &[&[&str]] = &[
        &["up"],
        &[],
        &["down", "-n", "2"],
        &["fresh", "--yes"],
        &["reset"],
        &["mark-applied", "m20260115_000001_create_initial_schema"],
        &[
            "repair",
            "m20260115_000001_create_initial_schema",
            "--statements-done",
            "1",
        ],
    ];
    for args in migration {
        let out = output(migration_at(&s.url).args(*args));
        refused(&format!("gatehouse-migration {}", args.join(" ")), &out);
    }
    // `fresh` without --yes is refused before it asks (no terminal here).
    refused(
        "gatehouse migrate fresh",
        &output(gatehouse_at(primary, &s.url).args(["migrate", "fresh"])),
    );
    assert_eq!(
        contents(&primary.db).await,
        before,
        "a refused command changed the primary"
    );
    // The standby still serves what the primary had.
    let status = json(&run_cmd(
        gatehouse_at(primary, &s.url).args(["migrate", "status", "--format", "json"]),
        "",
    ));
    assert!(
        status["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "applied"),
        "{status}"
    );
    seed.standby.drop().await;
}

#[tokio::test]
async fn reading_commands_answer_on_the_standby() {
    let Some(seed) = seeded().await else {
        return;
    };
    let s = &seed.standby;
    let primary = &s.primary;
    let standby = |args: &[&str]| run_cmd(gatehouse_at(primary, &s.url).args(args), "");
    let total = {
        use gatehouse_migration::MigratorTrait;
        Migrator::migrations().len()
    };

    let status = json(&standby(&["migrate", "status", "--format", "json"]));
    let migrations = status["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), total, "{status}");
    assert!(
        migrations.iter().all(|m| m["state"] == "applied"),
        "{status}"
    );
    let verified = expect(&standby(&["migrate", "verify"]), 0);
    assert!(
        verified.contains("All applied migrations verified"),
        "{verified}"
    );
    let plain = expect(&output(migration_at(&s.url).arg("status")), 0);
    assert!(
        plain.contains(&format!("{total} applied, 0 pending, {total} total")),
        "{plain}"
    );
    expect(&output(migration_at(&s.url).arg("verify")), 0);
    let dry_run = expect(&standby(&["migrate", "up", "--dry-run"]), 0);
    assert!(dry_run.contains("-- nothing to apply"), "{dry_run}");
    let sql = expect(&standby(&["migrate", "sql"]), 0);
    assert!(sql.contains("CREATE TABLE"), "migrate sql printed no SQL");

    let allowed = standby(&["perm", "check", "alice", "users.read", "--format", "json"]);
    assert_eq!(json(&allowed)["allowed"], true);
    let denied = standby(&["perm", "check", "alice", "audit.read", "--format", "json"]);
    let verdict: serde_json::Value = serde_json::from_str(&expect(&denied, 1)).unwrap();
    assert_eq!(verdict["allowed"], false);

    let users = json(&standby(&["user", "list", "--format", "json"]));
    let listed: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["alice"]);
    assert_eq!(users["users"][0]["id"], seed.alice_id.as_str());

    let roles = json(&standby(&["role", "list", "--format", "json"]));
    assert_eq!(roles["roles"].as_array().unwrap().len(), 4, "{roles}");
    let of_alice = json(&standby(&[
        "role", "list", "--user", "alice", "--format", "json",
    ]));
    assert_eq!(of_alice["roles"], serde_json::json!(["user"]));

    let keys = json(&standby(&["apikey", "list", "alice", "--format", "json"]));
    assert_eq!(keys["keys"][0]["id"], seed.key_id.as_str());
    assert_eq!(keys["keys"][0]["state"], "active");

    expect(&standby(&["keys", "list"]), 0);
    let partitions = json(&standby(&[
        "audit",
        "partitions",
        "list",
        "--format",
        "json",
    ]));
    assert!(!partitions.as_array().unwrap().is_empty(), "{partitions}");

    let doctor = json(&standby(&["doctor", "--format", "json"]));
    assert_eq!(doctor["ok"], true, "{doctor}");
    let database = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "database")
        .unwrap();
    assert!(
        database["detail"].as_str().unwrap().contains("read-only"),
        "{database}"
    );
    seed.standby.drop().await;
}

/// The library and the runner refuse with typed errors, not driver text.
#[tokio::test]
async fn refusals_are_typed_errors() {
    let Some(seed) = seeded().await else {
        return;
    };
    let s = &seed.standby;
    let standby = connect(&s.url).await.expect("the standby connects");
    assert!(matches!(
        gatehouse::db::ensure_writable(&standby).await,
        Err(Error::ReadOnly(ReadOnly::Standby))
    ));
    gatehouse::db::ensure_writable(&s.primary.db)
        .await
        .expect("the primary accepts writes");
    // A write that reaches the standby anyway (no check first) is typed too.
    let alice = uuid::Uuid::parse_str(&seed.alice_id).unwrap();
    let err = gatehouse::accounts::lock(
        &standby,
        gatehouse::rbac::Actor::System,
        alice,
        chrono::Utc::now(),
    )
    .await
    .expect_err("a standby takes no writes");
    assert!(matches!(err, Error::ReadOnly(ReadOnly::Refused)), "{err:?}");
    assert!(err.to_string().contains("DATABASE_URL"), "{err}");
    let _ = standby.close().await;

    let options = Options {
        ownership: Ownership::Part,
        ..Options::default()
    };
    let runner = Runner::<Migrator>::connect(&s.url, None, options)
        .await
        .expect("the runner connects to the standby");
    assert!(
        runner
            .status()
            .await
            .expect("status reads")
            .iter()
            .all(|e| e.state.is_applied())
    );
    for result in [
        runner.up(&Target::All).await.map(|_| ()),
        runner.down(&Target::Count(1)).await.map(|_| ()),
        runner.baseline(None).await.map(|_| ()),
        runner.reset().await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(runner::Error::ReadOnly(ReadOnly::Standby))),
            "{result:?}"
        );
    }
    runner.close().await;
    seed.standby.drop().await;
}

/// A primary whose sessions are read-only by a setting is refused the same
/// way, naming the setting.
#[tokio::test]
async fn a_read_only_setting_is_refused_like_a_standby() {
    let Some(t) = empty_database(Backend::Postgres).await else {
        return;
    };
    expect(&output(gatehouse_at(&t, &t.url).args(["migrate", "up"])), 0);
    let before = contents(&t.db).await;
    let read_only = format!("{}?options=-c%20default_transaction_read_only%3Don", t.url);
    let outs = [
        run_cmd(
            gatehouse_at(&t, &read_only).args([
                "user",
                "create",
                "--email",
                "bob@example.com",
                "--username",
                "bob",
            ]),
            format!("{PASSWORD}\n{PASSWORD}\n"),
        ),
        output(migration_at(&read_only).args(["down"])),
    ];
    for out in &outs {
        assert_eq!(out.status.code(), Some(2), "{}", text(out));
        assert!(
            stderr(out).contains("default_transaction_read_only is on")
                && stderr(out).contains("DATABASE_URL"),
            "{}",
            text(out)
        );
    }
    // Reading works through the same URL.
    let users = json(&run_cmd(
        gatehouse_at(&t, &read_only).args(["user", "list", "--format", "json"]),
        "",
    ));
    assert_eq!(users["users"], serde_json::json!([]));
    assert_eq!(contents(&t.db).await, before);
    t.drop().await;
}

/// MariaDB: a session in read-only transactions is detected, and the
/// server's refusal (error 1792) is typed. A server-wide `read_only` cannot
/// be set here without disturbing the other tests; its reading is unit-tested.
#[tokio::test]
async fn mariadb_read_only_transactions_are_detected_and_refused() {
    let Some(t) = empty_database(Backend::MySql).await else {
        return;
    };
    t.db.execute_unprepared("CREATE TABLE probe (id INT PRIMARY KEY)")
        .await
        .unwrap();
    assert_eq!(
        gatehouse_migration::read_only::detect(&t.db).await.unwrap(),
        None,
        "a plain MariaDB session is writable"
    );
    // One connection, so the session setting holds for every statement.
    let mut options = ConnectOptions::new(t.url.clone());
    options
        .max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    let session = Database::connect(options).await.unwrap();
    session
        .execute_unprepared("SET SESSION TRANSACTION READ ONLY")
        .await
        .unwrap();
    let found = gatehouse_migration::read_only::detect(&session)
        .await
        .unwrap();
    assert!(
        matches!(
            found,
            Some(ReadOnly::Setting("tx_read_only" | "transaction_read_only"))
        ),
        "{found:?}"
    );
    assert!(matches!(
        gatehouse::db::ensure_writable(&session).await,
        Err(Error::ReadOnly(ReadOnly::Setting(_)))
    ));
    let err = session
        .execute_unprepared("INSERT INTO probe VALUES (1)")
        .await
        .expect_err("a read-only transaction takes no writes");
    assert!(gatehouse_migration::read_only::is_refusal(&err), "{err}");
    assert!(matches!(
        Error::from(err),
        Error::ReadOnly(ReadOnly::Refused)
    ));
    let _ = session.close().await;
    assert_eq!(t.count("probe").await, 0);
    t.drop().await;
}
