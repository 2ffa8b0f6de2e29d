//! Test databases: a fresh database per test on each backend, built through
//! `Migrator::up`, and the `backend_tests!` macro that runs one test body on
//! all three backends.
//!
//! Server URLs come from `TEST_POSTGRES_URL` and `TEST_MYSQL_URL` (defaults:
//! this machine's local servers). An unreachable server skips the test with
//! `skipped: <backend> unreachable`, unless `TEST_REQUIRE_BACKENDS=1`.

use std::future::Future;
use std::time::Duration;

use gatehouse_migration::{Migrator, MigratorTrait};
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
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
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
        match self {
            Self::Sqlite => None,
            Self::Postgres => Some(
                std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into()),
            ),
            Self::MySql => {
                Some(std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_MYSQL_URL.into()))
            }
        }
    }
}

/// A database created for one test, with an open connection to it.
#[derive(Clone, Debug)]
pub struct TestDb {
    pub backend: Backend,
    pub db: DatabaseConnection,
    /// The URL the test database is reachable at (for CLI tests).
    pub url: String,
    name: String,
    admin_url: Option<String>,
}

impl TestDb {
    pub fn db_backend(&self) -> DbBackend {
        self.backend.db_backend()
    }

    /// `SELECT COUNT(*)` with the given FROM/WHERE tail.
    pub async fn count(&self, tail: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) AS n FROM {tail}");
        let row = self
            .db
            .query_one_raw(Statement::from_string(self.db_backend(), sql.clone()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .expect("COUNT returns a row");
        row.try_get::<i64>("", "n").expect("COUNT is an integer")
    }

    /// Closes the connection and drops the database.
    pub async fn drop(self) {
        let _ = self.db.close().await;
        match self.backend {
            Backend::Sqlite => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
                }
            }
            _ => {
                if let Ok(admin) = connect(self.admin_url.as_deref().unwrap_or_default()).await {
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

pub async fn connect(url: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(5)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        // A loaded 2-core machine can keep SQLite's write lock past the
        // driver's 5 s default; a test waits rather than failing as busy.
        .map_sqlx_sqlite_opts(|opts| opts.busy_timeout(Duration::from_secs(30)));
    Database::connect(options).await
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
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

/// Creates an empty database of its own on `backend`, or `None` when the
/// server is unreachable and `TEST_REQUIRE_BACKENDS` is not `1`.
pub async fn empty_database(backend: Backend) -> Option<TestDb> {
    let name = format!("gh_test_{}", uuid::Uuid::now_v7().simple());
    match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            let path = path.to_string_lossy().into_owned();
            let url = format!("sqlite://{path}?mode=rwc");
            let db = connect(&url).await.expect("SQLite opens a temporary file");
            Some(TestDb {
                backend,
                db,
                url,
                name: path,
                admin_url: None,
            })
        }
        _ => {
            let admin_url = backend
                .admin_url()
                .expect("server backends have an admin URL");
            let admin = match connect(&admin_url).await {
                Ok(admin) => admin,
                Err(err) => {
                    if require_backends() {
                        panic!(
                            "{} unreachable at {admin_url} and TEST_REQUIRE_BACKENDS=1: {err}",
                            backend.name()
                        );
                    }
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
                .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
            let _ = admin.close().await;
            let url = with_database(&admin_url, &name);
            let db = connect(&url)
                .await
                .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
            Some(TestDb {
                backend,
                db,
                url,
                name,
                admin_url: Some(admin_url),
            })
        }
    }
}

/// Creates a fresh database on `backend`, migrates it to the latest version
/// through `Migrator::up`, runs `body` on it and drops it afterwards.
/// A failing body leaves the database behind for inspection.
pub async fn run_migrated<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    run_empty(backend, |t| async move {
        Migrator::up(&t.db, None).await.expect("migrations apply");
        body(t).await;
    })
    .await;
}

/// Like [`run_migrated`], on an empty database.
pub async fn run_empty<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(test_db) = empty_database(backend).await else {
        return;
    };
    body(test_db.clone()).await;
    test_db.drop().await;
}

/// Runs `async fn $name(t: TestDb)` on every backend, as `$name::sqlite`,
/// `$name::postgres` and `$name::mysql`; `$runner` is `run_migrated` or `run_empty`.
macro_rules! backend_tests {
    ($runner:ident: $($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    crate::support::$runner(crate::support::Backend::Sqlite, super::$name).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    crate::support::$runner(crate::support::Backend::Postgres, super::$name).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mysql() {
                    crate::support::$runner(crate::support::Backend::MySql, super::$name).await;
                }
            }
        )+
    };
}

/// Inserts an active, verified user named `name` (`<name>@example.com`) with
/// a syntactically valid Argon2id PHC hash that matches no password. Works on
/// a schema migrated only part of the way, too: before the fold-identities
/// migration the row is inserted without the folded columns (as gatehouse
/// wrote it then) and the model returned holds what the backfill will copy.
pub async fn insert_user(t: &TestDb, name: &str) -> gatehouse_entity::users::Model {
    use chrono::SubsecRound;
    use sea_orm::{ActiveValue::NotSet, ActiveValue::Set, EntityTrait, TryIntoModel};
    let now = chrono::Utc::now().trunc_subsecs(6);
    let email = format!("{name}@example.com");
    let user = gatehouse_entity::users::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        email_folded: Set(gatehouse::accounts::validate::fold(&email)),
        username_folded: Set(gatehouse::accounts::validate::fold(name)),
        email: Set(email),
        username: Set(name.to_owned()),
        password_hash: Set("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into()),
        is_active: Set(true),
        is_verified: Set(true),
        is_locked: Set(false),
        locked_until: Set(None),
        failed_login_count: Set(0),
        last_login_at: Set(None),
        last_login_ip: Set(None),
        password_reset_token_hash: Set(None),
        password_reset_expires_at: Set(None),
        password_changed_at: Set(None),
        password_expires_at: Set(None),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let mut row = user.clone();
    if !has_folded_identities(t).await {
        row.email_folded = NotSet;
        row.username_folded = NotSet;
    }
    gatehouse_entity::users::Entity::insert(row)
        .exec_without_returning(&t.db)
        .await
        .expect("fixture user inserts");
    user.try_into_model().expect("every column is set")
}

/// Whether `users` has the folded identity columns yet.
async fn has_folded_identities(t: &TestDb) -> bool {
    t.db.query_one_raw(Statement::from_string(
        t.db_backend(),
        "SELECT email_folded FROM users WHERE 1 = 0",
    ))
    .await
    .is_ok()
}

/// Lower-case hex SHA-256, as gatehouse stores token and key digests.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(data))
}
