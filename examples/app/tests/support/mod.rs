//! The example app on a fresh database: created per test (per benchmark
//! run) on SQLite, PostgreSQL or MariaDB, migrated by `AppMigrator`, seeded,
//! and served on a free loopback port. The same rules as gatehouse's own
//! test harness: `TEST_POSTGRES_URL` / `TEST_MYSQL_URL` (defaults: the local
//! servers); an unreachable server skips with `skipped: <backend>
//! unreachable` unless `TEST_REQUIRE_BACKENDS=1`.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use gatehouse::{Config, Gatehouse};
use gatehouse_example_app::{AppState, prepare, serve};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/mysql";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }

    fn admin_url(self) -> Option<String> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        match self {
            Self::Sqlite => None,
            Self::Postgres => Some(var("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)),
            Self::MySql => Some(var("TEST_MYSQL_URL", DEFAULT_MYSQL_URL)),
        }
    }
}

/// The app serving a database of its own.
pub struct TestApp {
    pub backend: Backend,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub db: DatabaseConnection,
    /// The database's URL (for the benchmark's own pool).
    pub url: String,
    pub http: reqwest::Client,
    name: String,
    admin_url: Option<String>,
    server: tokio::task::JoinHandle<()>,
}

pub async fn connect(url: &str, max: u32) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| opts.busy_timeout(Duration::from_secs(30)));
    Database::connect(options).await
}

fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("server URL has a scheme");
    let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let query = tail
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}

fn require_backends() -> bool {
    std::env::var("TEST_REQUIRE_BACKENDS").is_ok_and(|v| v == "1")
}

/// Test keys: fixed, valid, and used nowhere else.
fn config() -> Config {
    Config::from_values(&"ab".repeat(32), &"cd".repeat(32)).expect("test keys are valid")
}

impl TestApp {
    /// Creates a database on `backend`, prepares it and serves the app with
    /// a pool of `pool` connections; `None` when the server is unreachable
    /// and not required.
    pub async fn start(backend: Backend, pool: u32) -> Option<Self> {
        let name = format!("gh_app_{}", uuid::Uuid::now_v7().simple());
        let (url, name, admin_url) = match backend.admin_url() {
            None => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                let path = path.to_string_lossy().into_owned();
                (format!("sqlite://{path}?mode=rwc"), path, None)
            }
            Some(admin_url) => {
                let admin = match connect(&admin_url, 1).await {
                    Ok(admin) => admin,
                    Err(err) => {
                        assert!(
                            !require_backends(),
                            "{} unreachable at {admin_url} and TEST_REQUIRE_BACKENDS=1: {err}",
                            backend.name()
                        );
                        println!("skipped: {} unreachable", backend.name());
                        return None;
                    }
                };
                admin
                    .execute_raw(Statement::from_string(
                        admin.get_database_backend(),
                        format!("CREATE DATABASE {name}"),
                    ))
                    .await
                    .unwrap_or_else(|e| panic!("creating {name}: {e}"));
                let _ = admin.close().await;
                (with_database(&admin_url, &name), name, Some(admin_url))
            }
        };
        let db = connect(&url, pool)
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        prepare(&db).await.expect("the database migrates and seeds");
        let gate = Gatehouse::from_config(db.clone(), &config())
            .await
            .expect("gatehouse starts");
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("a free loopback port");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            serve(listener, AppState { gate })
                .await
                .expect("the app serves");
        });
        Some(Self {
            backend,
            base,
            db,
            url,
            http: reqwest::Client::new(),
            name,
            admin_url,
            server,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `SELECT COUNT(*) FROM <table>`.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let row = self
            .db
            .query_one_raw(Statement::from_string(self.db.get_database_backend(), sql))
            .await
            .expect("COUNT runs")
            .expect("COUNT returns a row");
        row.try_get::<i64>("", "n").expect("COUNT is an integer")
    }

    /// Stops the server, closes the pool and drops the database.
    pub async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
        let _ = self.db.close().await;
        match self.admin_url {
            None => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
                }
            }
            Some(admin_url) => {
                if let Ok(admin) = connect(&admin_url, 1).await {
                    let quoted = if self.backend == Backend::MySql {
                        format!("`{}`", self.name)
                    } else {
                        format!("\"{}\"", self.name)
                    };
                    let _ = admin
                        .execute_raw(Statement::from_string(
                            admin.get_database_backend(),
                            format!("DROP DATABASE IF EXISTS {quoted}"),
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            }
        }
    }
}
