//! gatehouse behind PgBouncer: the services under transaction pooling
//! (`db::Pool` in `PoolMode::Transaction`, 16 concurrent clients), and
//! migrations, refused there before any change (detected with no setting,
//! or declared by `DATABASE_POOL_MODE`), run by four concurrent binaries
//! under session pooling, and sent past the pooler by `DATABASE_MIGRATION_URL`.

use std::process::{Command, Stdio};

use chrono::Utc;
use gatehouse::api_keys::{self, DEFAULT_RATE_LIMIT_PER_MINUTE, NewApiKey};
use gatehouse::db::{Pool, PoolMode as Mode};
use gatehouse::rbac::{self, Actor};
use gatehouse::{ClientInfo, Config, Error, Gatehouse, LoginRequest, NewAccount};
use gatehouse_migration::runner::{Options, Runner};
use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::DbErr;

use super::{PoolMode, Pooled};
use crate::deploy::text;
use crate::support::TestDb;

const HMAC_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const DATA_HEX: &str = "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40";
const PASSPHRASE: &str = "plum orchard under winter light";
const CLIENTS: usize = 16;

/// What one client does through the handle; `Err` says which step failed and how.
async fn client(gate: Gatehouse, i: usize, moderator: uuid::Uuid) -> Result<(), String> {
    let step = |what: &str, err: Error| format!("client {i}: {what}: {err:?}");
    let name = format!("client{i}");
    let ip = format!("192.0.2.{}", i + 1);
    let other_ip = format!("198.51.100.{}", i + 1);
    let account = gate
        .register(NewAccount {
            email: &format!("{name}@example.com"),
            username: &name,
            password: PASSPHRASE,
        })
        .await
        .map_err(|e| step("register", e))?;
    let now = Utc::now();
    if i % 2 == 0 {
        rbac::grant_role(gate.db(), Actor::System, account.id, moderator, None, now)
            .await
            .map_err(|e| step("grant moderator", e))?;
    }
    let wrong = gate
        .login(LoginRequest {
            identifier: &name,
            password: "not the passphrase at all, sorry",
            second_factor: None,
            client: ClientInfo {
                ip: Some(&other_ip),
                user_agent: Some("pgbouncer test"),
            },
        })
        .await;
    if !matches!(wrong, Err(Error::InvalidCredentials)) {
        return Err(format!(
            "client {i}: a wrong password gave {:?}",
            wrong.map(|_| ())
        ));
    }
    let client = ClientInfo {
        ip: Some(&ip),
        user_agent: Some("pgbouncer test"),
    };
    let done = gate
        .login(LoginRequest {
            identifier: &name,
            password: PASSPHRASE,
            second_factor: None,
            client,
        })
        .await
        .map_err(|e| step("login", e))?;
    if done.account.id != account.id {
        return Err(format!("client {i}: signed in as another account"));
    }
    let token = done.session.token.expose().to_owned();
    let session = gate
        .validate_session(&token, client)
        .await
        .map_err(|e| step("validate", e))?;
    if session.user_id != account.id {
        return Err(format!("client {i}: the session is another account's"));
    }
    for (permission, held) in [
        ("users.read", true),
        ("audit.read", i % 2 == 0),
        ("roles.manage", false),
    ] {
        let has = gate
            .has_permission(account.id, permission)
            .await
            .map_err(|e| step("has_permission", e))?;
        if has != held {
            return Err(format!("client {i}: has_permission({permission}) = {has}"));
        }
    }
    let issued = api_keys::issue(
        gate.db(),
        NewApiKey {
            user_id: account.id,
            name: "ci",
            scopes: &["users.read"],
            rate_limit_per_minute: Some(DEFAULT_RATE_LIMIT_PER_MINUTE),
            expires_at: None,
        },
        Utc::now(),
    )
    .await
    .map_err(|e| step("issue key", e))?;
    let verified = gate
        .verify_api_key(issued.key.expose(), Some(&ip))
        .await
        .map_err(|e| step("verify key", e))?;
    if verified.user_id != account.id || verified.scopes != ["users.read"] {
        return Err(format!("client {i}: the key verified as {verified:?}"));
    }
    gate.logout(&token).await.map_err(|e| step("logout", e))?;
    match gate.validate_session(&token, client).await {
        Err(Error::Revoked) => Ok(()),
        other => Err(format!(
            "client {i}: a logged-out session gave {:?}",
            other.map(|s| s.id)
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_clients_use_every_service_through_transaction_pooling() {
    let Some(p) = Pooled::start(PoolMode::Transaction).await else {
        return;
    };
    Migrator::up(&p.direct.db, None)
        .await
        .expect("migrations apply");
    let pool = Pool::connect(&p.url, Mode::Transaction)
        .await
        .expect("the pool opens through PgBouncer");
    let config = Config::from_values(HMAC_HEX, DATA_HEX).unwrap();
    let gate = Gatehouse::from_config(pool, &config).await.unwrap();
    assert_eq!(gate.db().mode(), Mode::Transaction);
    let moderator = rbac::find_role(gate.db(), "moderator").await.unwrap().id;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(client(gate.clone(), i, moderator)))
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        if let Err(err) = task.await.expect("the client task completes") {
            failures.push(err);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} clients failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let t = &p.direct;
    assert_eq!(t.count("users").await, CLIENTS as i64);
    assert_eq!(
        t.count("sessions WHERE revoked_at IS NOT NULL").await,
        CLIENTS as i64
    );
    assert_eq!(t.count("sessions WHERE revoked_at IS NULL").await, 0);
    assert_eq!(
        t.count("api_keys WHERE usage_count = 1").await,
        CLIENTS as i64
    );
    assert_eq!(
        t.count("user_roles ur JOIN roles r ON r.id = ur.role_id WHERE r.name = 'moderator'")
            .await,
        (CLIENTS / 2) as i64
    );
    p.drop().await;
}

/// `gatehouse migrate <args>` with only the given database variables set.
fn migrate(vars: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.arg("migrate")
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_MIGRATION_URL")
        .env_remove("DATABASE_POOL_MODE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    for (var, value) in vars {
        cmd.env(var, value);
    }
    cmd
}

/// Tables in the database's public schema.
async fn tables(t: &TestDb) -> i64 {
    t.count("information_schema.tables WHERE table_schema = 'public'")
        .await
}

/// Advisory locks anyone holds in the database (a stranded migration lock).
async fn advisory_locks(t: &TestDb) -> i64 {
    t.count(
        "pg_locks WHERE locktype = 'advisory' AND database = \
         (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_refused_under_transaction_pooling_before_any_change() {
    let Some(p) = Pooled::start(PoolMode::Transaction).await else {
        return;
    };
    // Detected, with no setting at all.
    let out = migrate(&[("DATABASE_URL", &p.url)], &["up"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("DATABASE_URL goes through a pooler in transaction pooling mode")
            && stderr.contains("set DATABASE_MIGRATION_URL"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    // Status and the library's runner on the application's pool are refused too.
    let status = migrate(&[("DATABASE_URL", &p.url)], &["status"])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(2), "{}", text(&status.stderr));
    let pool = Pool::connect(&p.url, Mode::Transaction).await.unwrap();
    let refused =
        Runner::<Migrator>::from_connection(pool.connection().clone(), None, Options::default())
            .await;
    assert!(
        matches!(&refused, Err(DbErr::Migration(m)) if m.contains("transaction pooling")),
        "{:?}",
        refused.as_ref().err()
    );
    // Declared: refused on a direct URL too, before connecting.
    let declared = migrate(
        &[
            ("DATABASE_URL", &p.direct.url),
            ("DATABASE_POOL_MODE", "transaction"),
        ],
        &["up"],
    )
    .output()
    .unwrap();
    let stderr = text(&declared.stderr);
    assert_eq!(declared.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("DATABASE_POOL_MODE=transaction"),
        "{stderr}"
    );
    // Nothing changed, and no migration lock was left on a pooled session.
    assert_eq!(tables(&p.direct).await, 0);
    assert_eq!(advisory_locks(&p.direct).await, 0);
    p.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_concurrent_migrators_apply_each_migration_once_through_session_pooling() {
    let Some(p) = Pooled::start(PoolMode::Session).await else {
        return;
    };
    // Half with a statement timeout: a `SET`, since PgBouncer refuses the
    // `options` startup parameter.
    let children: Vec<_> = (0..4)
        .map(|i| {
            let args: &[&str] = if i % 2 == 0 {
                &["up", "--statement-timeout", "60s"]
            } else {
                &["up"]
            };
            migrate(&[("DATABASE_URL", &p.url)], args)
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
            "a migrator failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let t = &p.direct;
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    assert_eq!(t.count("seaql_migrations").await, names.len() as i64);
    for name in &names {
        let runs = t
            .count(&format!(
                "gatehouse_migrations WHERE name = '{name}' AND direction = 'up' \
                 AND status = 'succeeded'"
            ))
            .await;
        assert_eq!(runs, 1, "{name} applied {runs} times");
    }
    assert_eq!(t.count("roles").await, 4);
    assert_eq!(advisory_locks(t).await, 0, "the lock is released");
    // The library's runner on an application's pool through session pooling.
    let pool = crate::support::connect(&p.url).await.unwrap();
    let options = Options {
        statement_timeout: Some(std::time::Duration::from_secs(60)),
        ..Options::default()
    };
    let runner = Runner::<Migrator>::from_connection(pool, None, options)
        .await
        .expect("the runner opens its connection through session pooling");
    let status = runner.status().await.unwrap();
    runner.close().await;
    assert!(status.iter().all(|e| e.state.is_applied()), "{status:?}");
    p.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_url_takes_migrations_past_transaction_pooling() {
    let Some(p) = Pooled::start(PoolMode::Transaction).await else {
        return;
    };
    let vars = [
        ("DATABASE_URL", p.url.as_str()),
        ("DATABASE_POOL_MODE", "transaction"),
        ("DATABASE_MIGRATION_URL", p.direct.url.as_str()),
    ];
    let out = migrate(&vars, &["up"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let applied = p.direct.count("seaql_migrations").await;
    assert_eq!(applied, Migrator::migrations().len() as i64);
    let status = migrate(&vars, &["status", "--format", "json"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", text(&status.stderr));
    let help = migrate(&[], &["--help"]).output().unwrap();
    assert!(
        text(&help.stdout).contains("DATABASE_MIGRATION_URL"),
        "{}",
        text(&help.stdout)
    );
    // The application's side of the same settings: a pool opened as usual,
    // which the builder reopens for transaction pooling.
    let config = Config::from_values(HMAC_HEX, DATA_HEX).unwrap();
    let opened = gatehouse::db::connect(&p.url).await.unwrap();
    let gate = Gatehouse::builder(opened)
        .config(&config)
        .pool_mode(Mode::Transaction)
        .build()
        .await
        .unwrap();
    assert_eq!(gate.db().mode(), Mode::Transaction);
    let registrations: Vec<_> = (0..8)
        .map(|i| {
            let gate = gate.clone();
            tokio::spawn(async move {
                let name = format!("app{i}");
                let account = gate
                    .register(NewAccount {
                        email: &format!("{name}@example.com"),
                        username: &name,
                        password: PASSPHRASE,
                    })
                    .await?;
                gate.has_permission(account.id, "users.read").await
            })
        })
        .collect();
    for registration in registrations {
        assert!(matches!(registration.await.unwrap(), Ok(true)));
    }
    assert_eq!(p.direct.count("users").await, 8);
    p.drop().await;
}
