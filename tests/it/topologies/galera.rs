//! gatehouse's services on the 3-node Galera cluster: concurrent writes from
//! different nodes are retried or refused with a typed error, never driver
//! text; reads see what another node committed just before. Also how
//! PostgreSQL's and MariaDB's contention errors are classified.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;
use gatehouse::{
    Accounts, Argon2idHasher, ClientInfo, Config, Contention, Credentials, Error, Gatehouse,
    NewAccount,
};
use gatehouse_migration::Migrator;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use sea_orm_migration::MigratorTrait;
use tracing_subscriber::layer::{Context, SubscriberExt};

use super::{Galera, scalar_i64};
use crate::accounts::PASSPHRASE;
use crate::support::{Backend, empty_database};

/// The cluster with gatehouse's schema, and a pool per node opened as
/// gatehouse opens its own (`db::connect`: causal reads on).
async fn migrated() -> Option<(Galera, Vec<DatabaseConnection>)> {
    let g = Galera::start().await?;
    Migrator::up(&g.nodes[0], None)
        .await
        .expect("migrations apply on node 1");
    let mut pools = Vec::new();
    for url in &g.urls {
        pools.push(
            gatehouse::db::connect(url)
                .await
                .expect("gatehouse connects"),
        );
    }
    Some((g, pools))
}

/// Counts the retries `gatehouse::db::retry` logs on this thread.
#[derive(Clone, Default)]
struct Retries(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Retries {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "gatehouse::db::retry" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Retries {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn register<'a>(email: &'a str, username: &'a str) -> NewAccount<'a> {
    NewAccount {
        email,
        username,
        password: PASSPHRASE,
    }
}

// Current-thread runtimes: the three nodes' calls are joined on the test's
// thread, where the retry counter listens.
#[tokio::test]
async fn one_email_registered_on_every_node_at_once_gives_one_account() {
    let Some((g, pools)) = migrated().await else {
        return;
    };
    let retries = Retries::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(retries.clone()));
    let accounts = Accounts::new(Argon2idHasher::default()).await.unwrap();
    for round in 0..10 {
        let email = format!("same{round}@example.com");
        let names: Vec<String> = (0..3).map(|n| format!("same{round}n{n}")).collect();
        let now = Utc::now();
        let (a, b, c) = tokio::join!(
            accounts.register(&pools[0], register(&email, &names[0]), now),
            accounts.register(&pools[1], register(&email, &names[1]), now),
            accounts.register(&pools[2], register(&email, &names[2]), now),
        );
        let results = [a, b, c];
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            ok, 1,
            "round {round}: exactly one registration wins: {results:?}"
        );
        for r in &results {
            match r {
                Ok(_) | Err(Error::Conflict { field: "email", .. }) => {}
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        let rows = scalar_i64(
            &pools[0],
            &format!("SELECT COUNT(*) FROM users WHERE email = '{email}'"),
        )
        .await;
        assert_eq!(rows, 1, "round {round}");
    }
    println!("registration retries: {}", retries.count());
    g.drop().await;
}

#[tokio::test]
async fn failed_logins_on_one_account_from_every_node_are_all_counted() {
    let Some((g, pools)) = migrated().await else {
        return;
    };
    let retries = Retries::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(retries.clone()));
    let accounts = Accounts::new(Argon2idHasher::default()).await.unwrap();
    accounts
        .register(
            &pools[0],
            register("target@example.com", "target"),
            Utc::now(),
        )
        .await
        .unwrap();
    const ROUNDS: usize = 8;
    let mut refused = 0;
    for round in 0..ROUNDS {
        // One source per attempt: the account's own count is the row they share.
        let ips: Vec<String> = (0..3)
            .map(|n| format!("198.51.100.{}", round * 3 + n + 1))
            .collect();
        let attempt = |node: usize| {
            accounts.authenticate(
                &pools[node],
                Credentials {
                    identifier: "target",
                    password: "not the passphrase at all",
                    client: ClientInfo {
                        ip: Some(&ips[node]),
                        user_agent: Some("galera test"),
                    },
                },
                Utc::now(),
            )
        };
        let (a, b, c) = tokio::join!(attempt(0), attempt(1), attempt(2));
        for result in [a, b, c] {
            match result {
                Err(Error::InvalidCredentials) => refused += 1,
                other => panic!("round {round}: {other:?}"),
            }
        }
    }
    assert_eq!(refused, 3 * ROUNDS);
    let count = scalar_i64(
        &pools[1],
        "SELECT failed_login_count FROM users WHERE username = 'target'",
    )
    .await;
    assert_eq!(
        count, refused as i64,
        "every failure counted once, none lost"
    );
    let recorded = scalar_i64(
        &pools[2],
        "SELECT COUNT(*) FROM failed_login_attempts f JOIN users u ON u.id = f.user_id \
         WHERE u.username = 'target'",
    )
    .await;
    assert_eq!(recorded, refused as i64, "every failure recorded once");
    assert!(
        retries.count() > 0,
        "the account's count, updated from three nodes at once, conflicts in certification"
    );
    println!("failed-login retries: {}", retries.count());
    g.drop().await;
}

#[tokio::test]
async fn role_changes_on_one_role_from_every_node_conflict_and_are_retried() {
    let Some((g, pools)) = migrated().await else {
        return;
    };
    let retries = Retries::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(retries.clone()));
    use gatehouse::rbac::{self, Actor, RoleUpdate};
    let role = rbac::create_role(&pools[0], Actor::System, "contended", None, 10, Utc::now())
        .await
        .unwrap();
    const ROUNDS: i32 = 10;
    for round in 0..ROUNDS {
        // Three changes per node at once: certification conflicts are then all
        // but certain in every round, not only when the scheduler lines them up.
        let change = |node: usize, n: i32| {
            let level = 10 + (round * 9 + node as i32 * 3 + n) % 80;
            rbac::update_role(
                &pools[node],
                Actor::System,
                role.id,
                RoleUpdate {
                    level: Some(level),
                    description: None,
                },
                Utc::now(),
            )
        };
        let results = tokio::join!(
            change(0, 0),
            change(1, 0),
            change(2, 0),
            change(0, 1),
            change(1, 1),
            change(2, 1),
            change(0, 2),
            change(1, 2),
            change(2, 2)
        );
        let (a, b, c, d, e, f, g2, h, i) = results;
        for result in [a, b, c, d, e, f, g2, h, i] {
            if let Err(err) = result {
                panic!("round {round}: {err:?}");
            }
        }
    }
    let audited = scalar_i64(
        &pools[1],
        &format!(
            "SELECT COUNT(*) FROM audit_logs WHERE action = 'role.update' AND resource_id = '{}'",
            role.id
        ),
    )
    .await;
    assert_eq!(
        audited,
        9 * i64::from(ROUNDS),
        "every change committed once"
    );
    assert!(
        retries.count() > 0,
        "three nodes changing one row at once conflict in certification"
    );
    println!("role-change retries: {}", retries.count());
    g.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_registered_on_one_node_signs_in_at_once_on_the_others() {
    let Some((g, pools)) = migrated().await else {
        return;
    };
    let accounts = Accounts::new(Argon2idHasher::default()).await.unwrap();
    for pool in &pools {
        assert_eq!(
            scalar_i64(pool, "SELECT CAST(@@session.wsrep_sync_wait & 1 AS SIGNED)").await,
            1,
            "gatehouse's pools read causally"
        );
    }
    for round in 0..20 {
        let name = format!("fresh{round}");
        accounts
            .register(
                &pools[0],
                register(&format!("{name}@example.com"), &name),
                Utc::now(),
            )
            .await
            .unwrap();
        let sign_in = |node: usize| {
            accounts.authenticate(
                &pools[node],
                Credentials {
                    identifier: &name,
                    password: PASSPHRASE,
                    client: ClientInfo {
                        ip: Some("203.0.113.9"),
                        user_agent: None,
                    },
                },
                Utc::now(),
            )
        };
        let (on2, on3) = tokio::join!(sign_in(1), sign_in(2));
        on2.unwrap_or_else(|e| panic!("round {round}, node 2: {e}"));
        on3.unwrap_or_else(|e| panic!("round {round}, node 3: {e}"));
    }
    g.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_refuses_a_pool_that_reads_without_waiting_for_the_cluster() {
    let Some((g, pools)) = migrated().await else {
        return;
    };
    let config = Config::from_values(
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40",
    )
    .unwrap();
    // The fixture's own pools are plain sqlx pools: wsrep_sync_wait = 0.
    let err = Gatehouse::from_config(g.nodes[1].clone(), &config)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                var: "wsrep_sync_wait",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("causal_reads"), "{err}");
    Gatehouse::from_config(pools[1].clone(), &config)
        .await
        .expect("gatehouse's own pool reads causally");
    g.drop().await;
}

/// Two transactions on `db` that contend for one row: the second waits for
/// the first's lock until its timeout, and gets the backend's error as
/// gatehouse converts it.
async fn contended(db: &DatabaseConnection, second_setup: &str) -> Error {
    db.execute_unprepared("CREATE TABLE contended (id INT PRIMARY KEY, n INT NOT NULL)")
        .await
        .unwrap();
    db.execute_unprepared("INSERT INTO contended VALUES (1, 0)")
        .await
        .unwrap();
    let first = db.begin().await.unwrap();
    let second = db.begin().await.unwrap();
    second.execute_unprepared(second_setup).await.unwrap();
    first
        .execute_unprepared("UPDATE contended SET n = n + 1 WHERE id = 1")
        .await
        .unwrap();
    let err = second
        .execute_unprepared("UPDATE contended SET n = n + 10 WHERE id = 1")
        .await
        .expect_err("the row is contended");
    first.rollback().await.unwrap();
    let _ = second.rollback().await;
    Error::from(err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contention_errors_are_typed_on_postgres_and_mariadb() {
    // PostgreSQL: a lock held past lock_timeout (55P03).
    if let Some(t) = empty_database(Backend::Postgres).await {
        let err = contended(&t.db, "SET LOCAL lock_timeout = '100ms'").await;
        assert!(
            matches!(
                err,
                Error::Busy {
                    contention: Contention::LockTimeout,
                    attempts: 1
                }
            ),
            "{err:?}"
        );
        t.drop().await;
    }
    // MariaDB: a lock wait timeout (1205).
    if let Some(t) = empty_database(Backend::MySql).await {
        let err = contended(&t.db, "SET SESSION innodb_lock_wait_timeout = 1").await;
        assert!(
            matches!(
                err,
                Error::Busy {
                    contention: Contention::LockTimeout,
                    attempts: 1
                }
            ),
            "{err:?}"
        );
        assert!(!err.to_string().contains("1205"), "no driver text: {err}");
        t.drop().await;
    }
    // PostgreSQL: a serialization failure (40001) under REPEATABLE READ,
    // after the first transaction commits.
    if let Some(t) = empty_database(Backend::Postgres).await {
        t.db.execute_unprepared("CREATE TABLE contended (id INT PRIMARY KEY, n INT NOT NULL)")
            .await
            .unwrap();
        t.db.execute_unprepared("INSERT INTO contended VALUES (1, 0)")
            .await
            .unwrap();
        let second = t.db.begin().await.unwrap();
        second
            .execute_unprepared("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .await
            .unwrap();
        second
            .execute_unprepared("SELECT n FROM contended")
            .await
            .unwrap();
        t.db.execute_unprepared("UPDATE contended SET n = 1 WHERE id = 1")
            .await
            .unwrap();
        let err = Error::from(
            second
                .execute_unprepared("UPDATE contended SET n = 2 WHERE id = 1")
                .await
                .expect_err("a concurrent update under REPEATABLE READ"),
        );
        let _ = second.rollback().await;
        assert!(
            matches!(
                err,
                Error::Busy {
                    contention: Contention::Conflict,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("try again"), "{err}");
        t.drop().await;
    }
}
