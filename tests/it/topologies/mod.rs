//! Production topologies as fixtures: a 3-node MariaDB Galera cluster,
//! PgBouncer in transaction and session pooling, and a PostgreSQL streaming
//! hot standby, all started by `scripts/topologies.sh start`.
//!
//! Each test gets a database of its own, created where the topology needs it
//! (on Galera node 1, replicated to the others; on the PostgreSQL primary,
//! reached through PgBouncer or replayed by the standby). A topology that is
//! not running skips the test with `skipped: <topology> unavailable`, unless
//! `TEST_REQUIRE_TOPOLOGIES=1` (set by `.ci/run`).
//!
//! URLs: `TEST_GALERA_URLS` (three, comma-separated), `TEST_PGBOUNCER_URL`
//! (transaction pooling), `TEST_PGBOUNCER_SESSION_URL`, `TEST_STANDBY_URL`;
//! the defaults are `scripts/topologies.sh`'s ports.

mod pgbouncer;

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::support::{Backend, TestDb, connect, empty_database, with_database};

mod galera_migrations;
mod restarts;
mod standby;
mod standby_reads;

const DEFAULT_GALERA_URLS: [&str; 3] = [
    "mysql://root@127.0.0.1:3311/mysql",
    "mysql://root@127.0.0.1:3312/mysql",
    "mysql://root@127.0.0.1:3313/mysql",
];
const DEFAULT_PGBOUNCER_URL: &str = "postgres://postgres@127.0.0.1:6432/postgres";
const DEFAULT_PGBOUNCER_SESSION_URL: &str = "postgres://postgres@127.0.0.1:6433/postgres";
const DEFAULT_STANDBY_URL: &str = "postgres://postgres@127.0.0.1:5433/postgres";

fn require_topologies() -> bool {
    std::env::var("TEST_REQUIRE_TOPOLOGIES").is_ok_and(|v| v == "1")
}

/// `None` after printing the skip line, or a panic when topologies are required.
fn unavailable<T>(topology: &str, url: &str, err: impl std::fmt::Display) -> Option<T> {
    if require_topologies() {
        panic!(
            "{topology} unavailable at {url} and TEST_REQUIRE_TOPOLOGIES=1 \
             (start it with `scripts/topologies.sh start`): {err}"
        );
    }
    println!("skipped: {topology} unavailable");
    None
}

async fn scalar_i64(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("a row")
        .try_get_by_index::<i64>(0)
        .expect("an integer")
}

/// A database of its own on the Galera cluster, with a connection to each node.
pub struct Galera {
    /// The database's URL on node 1, 2 and 3.
    pub urls: Vec<String>,
    /// A pool on each node.
    pub nodes: Vec<DatabaseConnection>,
    name: String,
}

impl Galera {
    /// Creates the database on node 1 and connects to every node once it is
    /// there; `None` (skipped) when the cluster is not running.
    pub async fn start() -> Option<Self> {
        let admin_urls: Vec<String> = match std::env::var("TEST_GALERA_URLS") {
            Ok(list) => list.split(',').map(str::to_owned).collect(),
            Err(_) => DEFAULT_GALERA_URLS
                .iter()
                .map(|u| (*u).to_owned())
                .collect(),
        };
        let admin = match connect(&admin_urls[0]).await {
            Ok(db) => db,
            Err(err) => return unavailable("galera", &admin_urls[0], err),
        };
        let size = scalar_i64(
            &admin,
            "SELECT CAST(VARIABLE_VALUE AS SIGNED) FROM information_schema.GLOBAL_STATUS \
             WHERE VARIABLE_NAME = 'WSREP_CLUSTER_SIZE'",
        )
        .await;
        if size != admin_urls.len() as i64 {
            return unavailable(
                "galera",
                &admin_urls[0],
                format!("the cluster has {size} nodes, not {}", admin_urls.len()),
            );
        }
        let name = format!("gh_test_{}", uuid::Uuid::now_v7().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("creating {name} on Galera node 1: {e}"));
        let _ = admin.close().await;
        let urls: Vec<String> = admin_urls.iter().map(|u| with_database(u, &name)).collect();
        let mut nodes = Vec::new();
        for url in &urls {
            // DDL replicates in total order; a node may apply it a moment later.
            let deadline = Instant::now() + Duration::from_secs(20);
            let db = loop {
                match connect(url).await {
                    Ok(db) => break db,
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    Err(err) => panic!("connecting to {url}: {err}"),
                }
            };
            nodes.push(db);
        }
        Some(Self { urls, nodes, name })
    }

    /// A one-connection pool on `node` (0-based) whose reads wait until the
    /// node applied every write the cluster committed before them, for tests
    /// that check what the cluster holds (`nodes` are plain, as an
    /// application's pools are).
    pub async fn causal(&self, node: usize) -> DatabaseConnection {
        let db = sea_orm::Database::connect(
            sea_orm::ConnectOptions::new(self.urls[node].clone())
                .max_connections(1)
                .min_connections(1)
                .sqlx_logging(false)
                .to_owned(),
        )
        .await
        .unwrap_or_else(|e| panic!("connecting to node {}: {e}", node + 1));
        db.execute_unprepared("SET SESSION wsrep_sync_wait = 1")
            .await
            .expect("causal reads");
        db
    }

    /// Closes every pool and drops the database.
    pub async fn drop(self) {
        for db in self.nodes {
            let _ = db.close().await;
        }
        if let Ok(admin) = connect(&self.urls[0]).await {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {}", self.name))
                .await;
            let _ = admin.close().await;
        }
    }
}

/// Which PgBouncer pool mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    Transaction,
    Session,
}

/// A database of its own on the PostgreSQL primary, reachable directly and
/// through PgBouncer.
pub struct Pooled {
    /// The database, directly on the primary.
    pub direct: TestDb,
    /// The same database through PgBouncer.
    pub url: String,
}

impl Pooled {
    /// `None` (skipped) when PgBouncer or PostgreSQL is not running.
    pub async fn start(mode: PoolMode) -> Option<Self> {
        let (var, default) = match mode {
            PoolMode::Transaction => ("TEST_PGBOUNCER_URL", DEFAULT_PGBOUNCER_URL),
            PoolMode::Session => ("TEST_PGBOUNCER_SESSION_URL", DEFAULT_PGBOUNCER_SESSION_URL),
        };
        let pooler_url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        let topology = match mode {
            PoolMode::Transaction => "pgbouncer (transaction pooling)",
            PoolMode::Session => "pgbouncer (session pooling)",
        };
        match connect(&pooler_url).await {
            Ok(db) => {
                let _ = db.close().await;
            }
            Err(err) => return unavailable(topology, &pooler_url, err),
        }
        let direct = empty_database(Backend::Postgres).await?;
        let name = direct.url.rsplit('/').next().expect("a database name");
        let url = with_database(&pooler_url, name);
        Some(Self { direct, url })
    }

    pub async fn drop(self) {
        // PgBouncer keeps server connections to the database: close them first.
        let _ = self
            .direct
            .db
            .execute_unprepared(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .await;
        self.direct.drop().await;
    }
}

/// A database of its own on the PostgreSQL primary and its hot standby.
pub struct Standby {
    /// The database on the primary.
    pub primary: TestDb,
    /// The same database on the standby (read-only).
    pub url: String,
}

impl Standby {
    /// `None` (skipped) when the standby is not running. Returns once the
    /// standby has replayed the database's creation.
    pub async fn start() -> Option<Self> {
        let standby_url =
            std::env::var("TEST_STANDBY_URL").unwrap_or_else(|_| DEFAULT_STANDBY_URL.to_owned());
        match connect(&standby_url).await {
            Ok(db) => {
                let _ = db.close().await;
            }
            Err(err) => return unavailable("standby", &standby_url, err),
        }
        let primary = empty_database(Backend::Postgres).await?;
        let name = primary.url.rsplit('/').next().expect("a database name");
        let url = with_database(&standby_url, name);
        let deadline = Instant::now() + Duration::from_secs(30);
        while connect(&url).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the standby did not replay CREATE DATABASE {name} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(Self { primary, url })
    }

    /// Waits until the standby has replayed everything the primary committed so far.
    pub async fn caught_up(&self) {
        let lsn: String = self
            .primary
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pg_current_wal_lsn()::text",
            ))
            .await
            .expect("pg_current_wal_lsn")
            .expect("a row")
            .try_get_by_index(0)
            .expect("text");
        let standby = connect(&self.url).await.expect("standby connects");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let behind = scalar_i64(
                &standby,
                &format!(
                    "SELECT CASE WHEN pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn THEN 0 ELSE 1 END::int8"
                ),
            )
            .await;
            if behind == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the standby did not catch up within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = standby.close().await;
    }

    pub async fn drop(self) {
        self.primary.drop().await;
    }
}

/// Each fixture is what its tests take it for.
mod fixtures {
    use super::*;

    #[tokio::test]
    async fn galera_nodes_share_one_database() {
        let Some(g) = Galera::start().await else {
            return;
        };
        g.nodes[0]
            .execute_unprepared("CREATE TABLE probe (id INT PRIMARY KEY)")
            .await
            .expect("DDL on node 1");
        g.nodes[0]
            .execute_unprepared("INSERT INTO probe VALUES (1)")
            .await
            .expect("insert on node 1");
        for i in 0..g.nodes.len() {
            let node = g.causal(i).await;
            assert_eq!(scalar_i64(&node, "SELECT @@wsrep_on").await, 1);
            assert_eq!(scalar_i64(&node, "SELECT COUNT(*) FROM probe").await, 1);
            let _ = node.close().await;
        }
        g.drop().await;
    }

    #[tokio::test]
    async fn pgbouncer_reaches_the_test_database() {
        for mode in [PoolMode::Transaction, PoolMode::Session] {
            let Some(p) = Pooled::start(mode).await else {
                return;
            };
            let pooled = connect(&p.url).await.expect("through PgBouncer");
            let port = scalar_i64(&pooled, "SELECT inet_server_port()::bigint").await;
            assert_eq!(port, 5432, "PgBouncer forwards to the local server");
            let _ = pooled.close().await;
            p.drop().await;
        }
    }

    #[tokio::test]
    async fn the_standby_replays_and_refuses_writes() {
        let Some(s) = Standby::start().await else {
            return;
        };
        s.primary
            .db
            .execute_unprepared(
                "CREATE TABLE probe (id INT PRIMARY KEY); INSERT INTO probe VALUES (1)",
            )
            .await
            .expect("writes on the primary");
        s.caught_up().await;
        let standby = connect(&s.url).await.expect("standby connects");
        assert_eq!(
            scalar_i64(&standby, "SELECT pg_is_in_recovery()::int::int8").await,
            1
        );
        assert_eq!(scalar_i64(&standby, "SELECT COUNT(*) FROM probe").await, 1);
        let err = standby
            .execute_unprepared("INSERT INTO probe VALUES (2)")
            .await
            .expect_err("a standby is read-only");
        assert!(err.to_string().contains("read-only"), "{err}");
        let _ = standby.close().await;
        s.drop().await;
    }
}

mod galera;
