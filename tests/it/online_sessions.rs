//! The session-security migration (seed 004) on a `sessions` table bigger
//! than one backfill batch: applied by the runner and by plain
//! `Migrator::up`, without rewriting the table; on PostgreSQL statement by
//! statement, so a failed concurrent index build resumes where it stopped.

use std::time::Duration;

use chrono::Utc;
use gatehouse_migration::runner::{Options, Runner, State, Target};
use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, DbBackend, IsolationLevel, Statement, TransactionTrait};
use uuid::Uuid;

use crate::support::{Backend, TestDb, insert_user};

backend_tests!(
    run_empty: runner_backfills_every_session_in_batches_and_indexes_online,
    plain_migrator_backfills_every_session_in_batches,
);

const SESSION_SECURITY: &str = "m20260115_000004_add_session_security";

/// Migrations before the session-security one.
const BEFORE_SESSION_SECURITY: u32 = 3;

/// Rows: more than two batches of 10,000, and not a multiple of one.
const SESSIONS: usize = 25_003;

const NEW_INDEXES: [&str; 5] = [
    "idx-sessions-security_hash",
    "idx-sessions-encryption_key_id",
    "idx-sessions-created_ip_hash",
    "idx-sessions-risk_score",
    "idx-sessions-last_validated_at",
];

async fn connect_runner(t: &TestDb, options: Options) -> Runner<Migrator> {
    Runner::<Migrator>::connect(&t.url, None, options)
        .await
        .expect("the runner connects")
}

/// Inserts `SESSIONS` sessions of one user, 1,000 rows per statement.
async fn insert_sessions(t: &TestDb) {
    let user = insert_user(t, "ada").await;
    let now = Utc::now();
    let columns = [
        "id",
        "user_id",
        "token_hash",
        "created_at",
        "last_activity_at",
        "expires_at",
        "is_revoked",
    ]
    .map(Alias::new);
    for chunk in (0..SESSIONS).collect::<Vec<_>>().chunks(1000) {
        let mut stmt = Query::insert();
        stmt.into_table(Alias::new("sessions"))
            .columns(columns.clone());
        for &i in chunk {
            let active = now - chrono::Duration::seconds(i as i64);
            stmt.values_panic([
                Uuid::now_v7().into(),
                user.id.into(),
                format!("{i:064x}").into(),
                (active - chrono::Duration::hours(1)).into(),
                active.into(),
                (now + chrono::Duration::hours(1)).into(),
                (i % 7 == 0).into(),
            ]);
        }
        t.db.execute(&stmt).await.expect("sessions insert");
    }
}

/// What identifies the table's storage: PostgreSQL's `relfilenode` and
/// InnoDB's table id change when the table is rewritten. SQLite: none.
async fn storage_id(t: &TestDb) -> Option<i64> {
    let sql = match t.backend {
        Backend::Postgres => {
            "SELECT relfilenode::bigint AS n FROM pg_class WHERE oid = 'sessions'::regclass"
        }
        Backend::MySql => {
            "SELECT CAST(TABLE_ID AS SIGNED) AS n FROM information_schema.INNODB_SYS_TABLES \
             WHERE NAME = CONCAT(DATABASE(), '/sessions')"
        }
        Backend::Sqlite => return None,
    };
    let row =
        t.db.query_one_raw(Statement::from_string(t.db_backend(), sql))
            .await
            .unwrap()
            .expect("the sessions table has a storage id");
    Some(row.try_get::<i64>("", "n").unwrap())
}

/// The new `sessions` indexes that exist, with PostgreSQL's `indisvalid`
/// (true elsewhere).
async fn new_indexes(t: &TestDb) -> Vec<(String, bool)> {
    let sql = match t.backend {
        Backend::Postgres => {
            "SELECT c.relname::text AS name, i.indisvalid::int::int8 AS valid FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'sessions'::regclass"
        }
        Backend::MySql => {
            "SELECT DISTINCT CAST(INDEX_NAME AS CHAR) AS name, CAST(1 AS SIGNED) AS valid FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'sessions'"
        }
        Backend::Sqlite => {
            "SELECT name, 1 AS valid FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions'"
        }
    };
    let mut found: Vec<(String, bool)> =
        t.db.query_all_raw(Statement::from_string(t.db_backend(), sql))
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.try_get::<String>("", "name").unwrap(),
                    r.try_get::<i64>("", "valid").unwrap() != 0,
                )
            })
            .filter(|(name, _)| NEW_INDEXES.contains(&name.as_str()))
            .collect();
    found.sort();
    found
}

fn all_valid() -> Vec<(String, bool)> {
    let mut all: Vec<(String, bool)> = NEW_INDEXES.iter().map(|n| (n.to_string(), true)).collect();
    all.sort();
    all
}

async fn assert_backfilled(t: &TestDb) {
    assert_eq!(t.count("sessions").await, SESSIONS as i64);
    assert_eq!(
        t.count("sessions WHERE last_validated_at = last_activity_at AND risk_score = 0 AND security_version = 0")
            .await,
        SESSIONS as i64,
        "every session has last_validated_at = last_activity_at after the batched backfill"
    );
}

async fn runner_backfills_every_session_in_batches_and_indexes_online(t: TestDb) {
    let runner = connect_runner(&t, Options::default()).await;
    runner
        .up(&Target::Count(BEFORE_SESSION_SECURITY))
        .await
        .unwrap();
    insert_sessions(&t).await;
    let before = storage_id(&t).await;

    runner.up(&Target::Count(1)).await.unwrap();

    assert_backfilled(&t).await;
    assert_eq!(new_indexes(&t).await, all_valid());
    assert_eq!(
        storage_id(&t).await,
        before,
        "the migration rewrote the sessions table"
    );
    let status = runner.status().await.unwrap();
    let entry = status.iter().find(|e| e.name == SESSION_SECURITY).unwrap();
    assert_eq!(entry.state, State::Applied);
    runner.close().await;

    if t.backend == Backend::Postgres {
        a_concurrent_index_build_that_fails_is_retried_after_dropping_its_invalid_index(&t).await;
    }
}

/// PostgreSQL: the migration runs statement by statement. A snapshot held
/// open elsewhere makes the first `CREATE INDEX CONCURRENTLY` wait until the
/// statement timeout cancels it, which leaves an INVALID index. Everything
/// before it stays applied, the failure says how many statements ran, and the
/// next `up` drops the invalid index, rebuilds it and finishes.
async fn a_concurrent_index_build_that_fails_is_retried_after_dropping_its_invalid_index(
    t: &TestDb,
) {
    let runner = connect_runner(t, Options::default()).await;
    runner.down(&Target::Count(1)).await.unwrap();
    assert!(new_indexes(t).await.is_empty());
    let plan = runner.plan_up(&Target::Count(1)).await.unwrap();
    let sql = &plan[0].sql;
    let first_index = sql
        .iter()
        .position(|s| s.starts_with("CREATE INDEX CONCURRENTLY"))
        .expect("PostgreSQL builds the indexes concurrently");
    runner.close().await;

    let snapshot =
        t.db.begin_with_config(Some(IsolationLevel::RepeatableRead), None)
            .await
            .unwrap();
    snapshot
        .execute_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT COUNT(*) FROM roles",
        ))
        .await
        .unwrap();
    let options = Options {
        statement_timeout: Some(Duration::from_secs(5)),
        ..Options::default()
    };
    let timed = connect_runner(t, options).await;
    let err = timed.up(&Target::Count(1)).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("statement {} of", first_index + 1)),
        "{err}"
    );
    let status = timed.status().await.unwrap();
    timed.close().await;
    let entry = status.iter().find(|e| e.name == SESSION_SECURITY).unwrap();
    assert_eq!(entry.state, State::Failed);
    let failure = entry.failure.as_ref().unwrap();
    assert_eq!(
        (
            failure.statements_done as usize,
            failure.statements_total as usize
        ),
        (first_index, sql.len()),
        "the failure record says how many statements ran"
    );
    // Not rolled back: the columns and the backfill committed as they ran.
    assert_backfilled(t).await;
    assert_eq!(
        new_indexes(t).await,
        vec![("idx-sessions-security_hash".to_owned(), false)],
        "the cancelled concurrent build leaves its index INVALID"
    );
    snapshot.rollback().await.unwrap();

    let runner = connect_runner(t, Options::default()).await;
    runner.up(&Target::Count(1)).await.unwrap();
    let status = runner.status().await.unwrap();
    runner.close().await;
    let entry = status.iter().find(|e| e.name == SESSION_SECURITY).unwrap();
    assert_eq!(entry.state, State::Applied);
    assert_backfilled(t).await;
    assert_eq!(new_indexes(t).await, all_valid());
}

/// What `sea-orm-cli migrate up` runs: the migration's own `up`, repeating
/// the backfill batch until no rows change.
async fn plain_migrator_backfills_every_session_in_batches(t: TestDb) {
    Migrator::up(&t.db, Some(BEFORE_SESSION_SECURITY))
        .await
        .unwrap();
    insert_sessions(&t).await;
    let before = storage_id(&t).await;
    Migrator::up(&t.db, Some(1)).await.unwrap();
    assert_backfilled(&t).await;
    assert_eq!(new_indexes(&t).await, all_valid());
    assert_eq!(storage_id(&t).await, before);
}
