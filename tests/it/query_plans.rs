//! The hot queries use indexes: each service call runs on a connection that
//! records every statement it sends (values included), and each recorded
//! statement's plan is read with EXPLAIN on PostgreSQL (sequential scans
//! priced out, so a seq scan means no usable index) and EXPLAIN QUERY PLAN on
//! SQLite. A statement that reads a hot table whole (a sequential scan, an
//! index walked without a condition, SQLite's `SCAN`) fails the test.

use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use gatehouse::ClientInfo;
use gatehouse::accounts::{Accounts, Argon2idHasher, Credentials, NewAccount};
use gatehouse::api_keys::{self, NewApiKey};
use gatehouse::audit::{AuditQuery, find_entries};
use gatehouse::lockout::{Failure, LockoutPolicy, record_failure};
use gatehouse::sessions::{SessionPolicy, Sessions};
use gatehouse::{Config, rbac};
use gatehouse_entity::sea_orm_active_enums::AttemptKind;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

use crate::support::{Backend, TestDb};

/// PostgreSQL and SQLite only: MariaDB's plans for these small test tables
/// follow its table statistics rather than the indexes available.
mod hot_queries_use_indexes {
    use crate::support::{Backend, run_migrated};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run_migrated(Backend::Sqlite, super::hot_queries_use_indexes).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run_migrated(Backend::Postgres, super::hot_queries_use_indexes).await;
    }
}

const HMAC_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const DATA_HEX: &str = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

type Recorded = Arc<Mutex<Vec<Statement>>>;

/// A connection to `t` that records every statement sent through it.
async fn recording(t: &TestDb) -> (DatabaseConnection, Recorded) {
    let mut db = Database::connect(t.url.as_str()).await.unwrap();
    let recorded: Recorded = Arc::default();
    let sink = Arc::clone(&recorded);
    db.set_metric_callback(move |info| sink.lock().unwrap().push(info.statement.clone()));
    (db, recorded)
}

/// Plan lines of `stmt` (values inlined), with sequential scans priced out on PostgreSQL.
async fn plan(t: &TestDb, stmt: &Statement) -> Vec<String> {
    let sql = stmt.to_string();
    let backend = t.db_backend();
    let explain = match backend {
        DbBackend::Postgres => format!("EXPLAIN {sql}"),
        _ => format!("EXPLAIN QUERY PLAN {sql}"),
    };
    let txn = sea_orm::TransactionTrait::begin(&t.db).await.unwrap();
    if backend == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL enable_seqscan = off")
            .await
            .unwrap();
    }
    let rows = txn
        .query_all_raw(Statement::from_string(backend, explain.clone()))
        .await
        .unwrap_or_else(|e| panic!("{explain}: {e}"));
    txn.rollback().await.unwrap();
    rows.iter()
        .map(|row| match backend {
            DbBackend::Postgres => row.try_get_by_index::<String>(0).unwrap(),
            _ => row.try_get::<String>("", "detail").unwrap(),
        })
        .collect()
}

/// Asserts that no statement `what` sent reads one of `tables` by a full scan.
async fn assert_indexed(t: &TestDb, what: &str, recorded: &Recorded, tables: &[&str]) {
    let statements: Vec<Statement> = std::mem::take(&mut *recorded.lock().unwrap());
    let explainable: Vec<&Statement> = statements
        .iter()
        .filter(|s| {
            let head = s.sql.trim_start().to_ascii_uppercase();
            head.starts_with("SELECT") || head.starts_with("UPDATE") || head.starts_with("DELETE")
        })
        .collect();
    assert!(
        !explainable.is_empty(),
        "{what} sent no query: {statements:?}"
    );
    for stmt in explainable {
        let lines = plan(t, stmt).await;
        for table in tables {
            let quoted = format!("\"{table}\"");
            if !stmt.sql.contains(&quoted) && !stmt.sql.contains(&format!("`{table}`")) {
                continue;
            }
            let full_scan = match t.backend {
                Backend::Postgres => pg_full_scan(&lines, table),
                _ => lines
                    .iter()
                    .any(|line| line.starts_with(&format!("SCAN {table}"))),
            };
            assert!(
                !full_scan,
                "{what} scans {table} row by row:\n{}\nplan:\n{}",
                stmt,
                lines.join("\n")
            );
        }
    }
}

/// Whether a PostgreSQL plan reads `table` whole: a seq scan, or an index
/// scan with no index condition (a full walk in index order).
fn pg_full_scan(lines: &[String], table: &str) -> bool {
    let target = format!(" on {table} ");
    let target_end = format!(" on {table}");
    for (i, line) in lines.iter().enumerate() {
        let node = line.split("  (cost").next().unwrap_or(line);
        if !(node.contains(&target) || node.ends_with(&target_end)) {
            continue;
        }
        if node.contains("Seq Scan") {
            return true;
        }
        if node.contains("Index Scan") || node.contains("Index Only Scan") {
            let depth = line.len() - line.trim_start().len();
            let has_cond = lines[i + 1..]
                .iter()
                .take_while(|l| l.len() - l.trim_start().len() > depth && !l.contains("->"))
                .any(|l| l.contains("Index Cond"));
            if !has_cond {
                return true;
            }
        }
    }
    false
}

async fn hot_queries_use_indexes(t: TestDb) {
    let config = Config::from_values(HMAC_HEX, DATA_HEX).unwrap();
    let now = Utc::now();
    let accounts = Accounts::new(Argon2idHasher::default()).await.unwrap();
    let mut users = Vec::new();
    for i in 0..20 {
        let account = accounts
            .register(
                &t.db,
                NewAccount {
                    email: &format!("user{i}@example.com"),
                    username: &format!("user{i}"),
                    password: "a long enough passphrase for the plan test",
                },
                now,
            )
            .await
            .unwrap();
        users.push(account);
    }
    let user = users[3].id;
    let sessions = Sessions::load(&t.db, &config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let mut tokens = Vec::new();
    for account in &users {
        let created = sessions
            .create(&t.db, account.id, ClientInfo::default(), now)
            .await
            .unwrap();
        tokens.push(created.token);
    }
    let issued = api_keys::issue(
        &t.db,
        NewApiKey {
            user_id: user,
            name: "plan",
            scopes: &["users.read"],
            rate_limit_per_minute: Some(60),
            expires_at: None,
        },
        now,
    )
    .await
    .unwrap();
    for i in 0..5 {
        record_failure(
            &t.db,
            &LockoutPolicy::default(),
            Failure {
                user_id: Some(users[i].id),
                identifier: &users[i].email,
                kind: AttemptKind::Password,
                ip_address: None,
                user_agent: None,
                reason: "wrong password",
            },
            now,
        )
        .await
        .unwrap();
    }
    for account in &users {
        gatehouse::audit::AuditEntry::new("test", "seed")
            .user(account.id)
            .record(&t.db, now)
            .await
            .unwrap();
    }

    let (db, recorded) = recording(&t).await;

    // W1: session validation.
    sessions
        .validate(&db, tokens[3].expose(), ClientInfo::default(), now)
        .await
        .unwrap();
    assert_indexed(
        &t,
        "session validation",
        &recorded,
        &["sessions", "encryption_keys", "failed_login_attempts"],
    )
    .await;

    // W2: API-key verification.
    api_keys::verify(&db, issued.key.expose(), None, now)
        .await
        .unwrap();
    assert_indexed(
        &t,
        "API-key verification",
        &recorded,
        &[
            "api_keys",
            "users",
            "user_roles",
            "role_permissions",
            "permissions",
        ],
    )
    .await;

    // W3: permission check.
    assert!(
        rbac::has_permission(&db, user, "users.read", now)
            .await
            .unwrap()
    );
    assert_indexed(
        &t,
        "permission check",
        &recorded,
        &[
            "users",
            "user_roles",
            "roles",
            "role_permissions",
            "permissions",
        ],
    )
    .await;

    // Audit trail of one user over a time range.
    let entries = find_entries(
        &db,
        &AuditQuery {
            user_id: Some(user),
            since: Some(now - Duration::days(1)),
            until: Some(now + Duration::days(1)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(entries.len(), 1);
    assert_indexed(&t, "audit by user and time", &recorded, &["audit_logs"]).await;

    // Failed attempts within an account's lockout window (a wrong password).
    let refused = accounts
        .authenticate(
            &db,
            Credentials {
                identifier: &users[0].email,
                password: "not the right passphrase at all",
                client: ClientInfo {
                    ip: None,
                    user_agent: None,
                },
            },
            now,
        )
        .await;
    assert!(refused.is_err());
    assert_indexed(
        &t,
        "failed attempts in the lockout window",
        &recorded,
        &["users", "failed_login_attempts"],
    )
    .await;

    // Expired-session cleanup.
    let later = now + Duration::days(2);
    let report = sessions.cleanup(&db, later).await.unwrap();
    assert_eq!(report.expired, users.len() as u64, "{report:?}");
    assert_indexed(&t, "expired-session cleanup", &recorded, &["sessions"]).await;
}
