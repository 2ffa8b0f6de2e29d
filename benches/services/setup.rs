//! A fresh, migrated database per backend, and the three ways the benchmark
//! connects to it: gatehouse's tuned pool, SeaORM with default options, and a
//! hand-built sqlx pool.

use std::time::Duration;

use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::{self, Connection as _, pool::PoolOptions};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/mysql";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    /// The name `--backends` takes and the JSON summary uses.
    pub fn key(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
            Self::MySql => "MariaDB/MySQL",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" | "pg" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            _ => None,
        }
    }

    pub fn db_backend(self) -> DbBackend {
        match self {
            Self::Sqlite => DbBackend::Sqlite,
            Self::Postgres => DbBackend::Postgres,
            Self::MySql => DbBackend::MySql,
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

/// A database made for one benchmark run; [`BenchDb::drop`] removes it.
pub struct BenchDb {
    pub backend: Backend,
    pub url: String,
    /// Database name, or the file path on SQLite.
    name: String,
    admin_url: Option<String>,
}

async fn admin_connect(url: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(3))
        .sqlx_logging(false);
    Database::connect(options).await
}

fn quoted(backend: Backend, name: &str) -> String {
    match backend {
        Backend::MySql => format!("`{name}`"),
        _ => format!("\"{name}\""),
    }
}

/// Creates an empty, uniquely named database (a temp file on SQLite) and
/// migrates it with `Migrator::up`. `Err` says why the backend is skipped.
pub async fn create(backend: Backend) -> Result<BenchDb, String> {
    let name = format!("gh_bench_services_{}", uuid::Uuid::now_v7().simple());
    let bench = match backend.admin_url() {
        None => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            let path = path.to_string_lossy().into_owned();
            BenchDb {
                backend,
                url: format!("sqlite://{path}?mode=rwc"),
                name: path,
                admin_url: None,
            }
        }
        Some(admin_url) => {
            let admin = admin_connect(&admin_url)
                .await
                .map_err(|e| format!("unreachable at {admin_url}: {e}"))?;
            admin
                .execute_raw(Statement::from_string(
                    admin.get_database_backend(),
                    format!("CREATE DATABASE {}", quoted(backend, &name)),
                ))
                .await
                .map_err(|e| format!("creating {name}: {e}"))?;
            let _ = admin.close().await;
            let base = admin_url
                .rsplit_once('/')
                .map_or(&*admin_url, |(base, _)| base);
            BenchDb {
                backend,
                url: format!("{base}/{name}"),
                name,
                admin_url: Some(admin_url),
            }
        }
    };
    let db = admin_connect(&bench.url)
        .await
        .map_err(|e| format!("connecting to the new database: {e}"))?;
    Migrator::up(&db, None)
        .await
        .map_err(|e| format!("Migrator::up: {e}"))?;
    let _ = db.close().await;
    Ok(bench)
}

impl BenchDb {
    /// Drops the database (deletes the SQLite file).
    pub async fn drop(self) {
        match &self.admin_url {
            None => {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
                }
            }
            Some(admin_url) => {
                if let Ok(admin) = admin_connect(admin_url).await {
                    let _ = admin
                        .execute_raw(Statement::from_string(
                            admin.get_database_backend(),
                            format!(
                                "DROP DATABASE IF EXISTS {}",
                                quoted(self.backend, &self.name)
                            ),
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            }
        }
    }

    /// gatehouse's pool: `gatehouse::db::connect` (no ping on a hot checkout).
    pub async fn tuned(&self) -> DatabaseConnection {
        gatehouse::db::connect(&self.url)
            .await
            .expect("gatehouse::db::connect")
    }

    /// SeaORM with default connection options (`ConnectOptions::new(url)`).
    pub async fn default_seaorm(&self) -> DatabaseConnection {
        Database::connect(ConnectOptions::new(self.url.clone()))
            .await
            .expect("Database::connect with default options")
    }

    /// A hand-built sqlx pool with the settings a careful sqlx user picks:
    /// gatehouse's pool size, and a ping only for connections idle for
    /// [`gatehouse::db::PING_IF_IDLE_FOR`].
    pub async fn sqlx(&self) -> SqlxPool {
        match self.backend {
            Backend::Postgres => {
                SqlxPool::Postgres(pool_options().connect(&self.url).await.unwrap())
            }
            Backend::MySql => SqlxPool::MySql(pool_options().connect(&self.url).await.unwrap()),
            Backend::Sqlite => SqlxPool::Sqlite(pool_options().connect(&self.url).await.unwrap()),
        }
    }
}

fn pool_options<DB: sqlx::Database>() -> PoolOptions<DB> {
    PoolOptions::<DB>::new()
        .max_connections(gatehouse::db::MAX_CONNECTIONS)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= gatehouse::db::PING_IF_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// One sqlx pool of the backend's own type.
pub enum SqlxPool {
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

impl SqlxPool {
    pub async fn close(&self) {
        match self {
            Self::Postgres(p) => p.close().await,
            Self::MySql(p) => p.close().await,
            Self::Sqlite(p) => p.close().await,
        }
    }
}

/// Runs the same code on whichever pool type `$pool` holds: the body is
/// compiled once per backend, so it may use each driver's own row type.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::setup::SqlxPool::Postgres($p) => $body,
            $crate::setup::SqlxPool::MySql($p) => $body,
            $crate::setup::SqlxPool::Sqlite($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// `sql` written with `?` placeholders, numbered `$1, $2 ...` for
/// PostgreSQL. Leaked once per statement, so sqlx takes it as a static
/// string, as it would a literal in hand-written code.
pub fn dialect(backend: Backend, sql: &str) -> &'static str {
    let text = if backend == Backend::Postgres {
        number_placeholders(sql)
    } else {
        sql.to_owned()
    };
    Box::leak(text.into_boxed_str())
}

pub fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// The server's version string.
pub async fn server_version(db: &DatabaseConnection) -> String {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => "SELECT 'PostgreSQL ' || current_setting('server_version') AS v",
        DbBackend::MySql => "SELECT VERSION() AS v",
        DbBackend::Sqlite => "SELECT 'SQLite ' || sqlite_version() AS v",
        _ => return String::new(),
    };
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get::<String>("", "v").ok())
        .unwrap_or_default()
}
