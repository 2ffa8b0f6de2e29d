//! W6: the session-security migration (seed 004) applied by the runner to a
//! `sessions` table of 1M rows while a writer keeps inserting and updating
//! sessions one at a time; reports how long each statement ran, whether the
//! table was rewritten, and the longest write stall the writer saw.
//!
//! `cargo bench --bench online_migration [-- --backends postgres,mysql,sqlite
//!  --users N --sessions N]`. Servers as for the tests: `TEST_POSTGRES_URL`,
//! `TEST_MYSQL_URL`. Writes `target/bench-online-migration.json`.

#[allow(dead_code)]
#[path = "services/measure.rs"]
mod measure;
#[allow(unused)]
#[path = "services/setup.rs"]
mod setup;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use gatehouse_migration::Migrator;
use gatehouse_migration::render::Direction;
use gatehouse_migration::runner::{Options, Runner, Target};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, Value,
};
use serde_json::json;

use measure::{Rng, Stats, bar, round1};
use setup::Backend;

const MIGRATION: &str = "m20260115_000004_add_session_security";
/// Migrations before seed 004.
const BEFORE: u32 = 3;
/// Rows generated per statement.
const CHUNK: u64 = 50_000;
/// How often the monitor looks at what the runner's connection runs.
const POLL: Duration = Duration::from_millis(10);

struct Args {
    backends: Vec<Backend>,
    users: u64,
    sessions: u64,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        backends: vec![Backend::Postgres, Backend::MySql, Backend::Sqlite],
        users: 100_000,
        sessions: 1_000_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--bench" => {}
            "--backends" => {
                args.backends = value("--backends")?
                    .split(',')
                    .map(|b| Backend::parse(b).with_context(|| format!("unknown backend {b}")))
                    .collect::<Result<_>>()?;
            }
            "--users" => args.users = value("--users")?.parse()?,
            "--sessions" => args.sessions = value("--sessions")?.parse()?,
            other => bail!(
                "unknown argument {other}; usage: cargo bench --bench online_migration -- \
                 [--backends postgres,mysql,sqlite] [--users N] [--sessions N]"
            ),
        }
    }
    Ok(args)
}

/// A fresh, empty database (a temp file on SQLite) and its URL.
struct Fresh {
    backend: Backend,
    url: String,
    name: String,
    admin_url: Option<String>,
}

fn admin_url(backend: Backend) -> Option<String> {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(var("TEST_POSTGRES_URL", setup::DEFAULT_POSTGRES_URL)),
        Backend::MySql => Some(var("TEST_MYSQL_URL", setup::DEFAULT_MYSQL_URL)),
    }
}

async fn connect(url: &str, sqlite_busy: Duration) -> Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .min_connections(1)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(3600))
        .sqlx_logging(false);
    options.map_sqlx_sqlite_opts(move |o| o.busy_timeout(sqlite_busy));
    Ok(Database::connect(options).await?)
}

impl Fresh {
    async fn create(backend: Backend) -> Result<Self> {
        let name = format!("gh_bench_online_{}", uuid::Uuid::now_v7().simple());
        match admin_url(backend) {
            None => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                let path = path.to_string_lossy().into_owned();
                Ok(Self {
                    backend,
                    url: format!("sqlite://{path}?mode=rwc"),
                    name: path,
                    admin_url: None,
                })
            }
            Some(admin) => {
                let db = connect(&admin, Duration::ZERO).await?;
                db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await?;
                db.close().await?;
                let base = admin.rsplit_once('/').map_or(&*admin, |(b, _)| b);
                Ok(Self {
                    backend,
                    url: format!("{base}/{name}"),
                    name,
                    admin_url: Some(admin),
                })
            }
        }
    }

    async fn drop(self) {
        match self.admin_url {
            None => {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
                }
            }
            Some(admin) => {
                if let Ok(db) = connect(&admin, Duration::ZERO).await {
                    let _ = db
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {}", self.name))
                        .await;
                    let _ = db.close().await;
                }
            }
        }
    }
}

/// `INSERT ... SELECT` generating rows `lo..=hi` on the server: users `n`
/// get ids derived from `n`; session `n` belongs to user `n % users`.
fn generate_sql(backend: Backend, table: &str, lo: u64, hi: u64, users: u64) -> String {
    match (backend, table) {
        (Backend::Postgres, "users") => format!(
            "INSERT INTO users (id, email, username, password_hash, is_active, is_verified, is_locked, \
             failed_login_count, created_at, updated_at) \
             SELECT md5('u' || n)::uuid, 'user' || n || '@example.com', 'user' || n, '{HASH}', true, true, \
             false, 0, now(), now() FROM generate_series({lo}, {hi}) AS n"
        ),
        (Backend::Postgres, _) => format!(
            "INSERT INTO sessions (id, user_id, token_hash, ip_address, user_agent, created_at, \
             last_activity_at, expires_at, is_revoked) \
             SELECT md5('s' || n)::uuid, md5('u' || (n % {users}))::uuid, md5('t' || n) || md5('x' || n), \
             '198.51.100.' || (n % 250), 'bench/1.0', now() - interval '2 days', \
             now() - n * interval '1 second', now() + interval '1 day', n % 10 = 0 \
             FROM generate_series({lo}, {hi}) AS n"
        ),
        (Backend::MySql, "users") => format!(
            "INSERT INTO users (id, email, username, password_hash, is_active, is_verified, is_locked, \
             failed_login_count, created_at, updated_at) \
             SELECT UNHEX(MD5(CONCAT('u', seq))), CONCAT('user', seq, '@example.com'), CONCAT('user', seq), \
             '{HASH}', 1, 1, 0, 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) FROM seq_{lo}_to_{hi}"
        ),
        (Backend::MySql, _) => format!(
            "INSERT INTO sessions (id, user_id, token_hash, ip_address, user_agent, created_at, \
             last_activity_at, expires_at, is_revoked) \
             SELECT UNHEX(MD5(CONCAT('s', seq))), UNHEX(MD5(CONCAT('u', seq % {users}))), \
             SHA2(CONCAT('t', seq), 256), CONCAT('198.51.100.', seq % 250), 'bench/1.0', \
             UTC_TIMESTAMP(6) - INTERVAL 2 DAY, UTC_TIMESTAMP(6) - INTERVAL seq SECOND, \
             UTC_TIMESTAMP(6) + INTERVAL 1 DAY, seq % 10 = 0 FROM seq_{lo}_to_{hi}"
        ),
        (Backend::Sqlite, "users") => format!(
            "WITH RECURSIVE s(n) AS (SELECT {lo} UNION ALL SELECT n + 1 FROM s WHERE n < {hi}) \
             INSERT INTO users (id, email, username, password_hash, is_active, is_verified, is_locked, \
             failed_login_count, created_at, updated_at) \
             SELECT unhex(printf('%032x', n)), 'user' || n || '@example.com', 'user' || n, '{HASH}', 1, 1, \
             0, 0, {NOW}, {NOW} FROM s"
        ),
        (Backend::Sqlite, _) => format!(
            "WITH RECURSIVE s(n) AS (SELECT {lo} UNION ALL SELECT n + 1 FROM s WHERE n < {hi}) \
             INSERT INTO sessions (id, user_id, token_hash, ip_address, user_agent, created_at, \
             last_activity_at, expires_at, is_revoked) \
             SELECT unhex(printf('%032x', n + 1000000000000)), unhex(printf('%032x', n % {users})), \
             printf('%064x', n), '198.51.100.' || (n % 250), 'bench/1.0', {NOW}, \
             strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-' || n || ' seconds'), {NOW}, n % 10 = 0 FROM s"
        ),
    }
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')";

async fn generate(db: &DatabaseConnection, backend: Backend, args: &Args) -> Result<Duration> {
    let started = Instant::now();
    for (table, total, first) in [("users", args.users, 0), ("sessions", args.sessions, 1)] {
        let progress = bar(table, total as usize);
        let mut lo = first;
        while lo < first + total {
            let hi = (lo + CHUNK - 1).min(first + total - 1);
            db.execute_unprepared(&generate_sql(backend, table, lo, hi, args.users))
                .await
                .with_context(|| format!("generating {table} {lo}..={hi}"))?;
            progress.inc(hi - lo + 1);
            lo = hi + 1;
        }
        progress.finish_and_clear();
    }
    let analyze = match backend {
        Backend::Postgres => "VACUUM ANALYZE sessions",
        Backend::MySql => "ANALYZE TABLE sessions",
        Backend::Sqlite => "ANALYZE",
    };
    db.execute_unprepared(analyze).await?;
    Ok(started.elapsed())
}

/// PostgreSQL `relfilenode` / InnoDB table id of `sessions`: changes when the
/// table is rewritten.
async fn storage_id(db: &DatabaseConnection, backend: Backend) -> Result<Option<i64>> {
    let sql = match backend {
        Backend::Postgres => {
            "SELECT relfilenode::bigint AS n FROM pg_class WHERE oid = 'sessions'::regclass"
        }
        Backend::MySql => {
            "SELECT CAST(TABLE_ID AS SIGNED) AS n FROM information_schema.INNODB_SYS_TABLES \
             WHERE NAME = CONCAT(DATABASE(), '/sessions')"
        }
        Backend::Sqlite => return Ok(None),
    };
    let row = db
        .query_one_raw(Statement::from_string(backend.db_backend(), sql))
        .await?
        .context("sessions has a storage id")?;
    Ok(Some(row.try_get::<i64>("", "n")?))
}

/// One write of the concurrent writer.
struct Write {
    at: Duration,
    took: Duration,
    ok: bool,
}

/// Inserts a new session and updates a random existing one, alternately,
/// one at a time, until `stop`; every write timed from `origin`.
async fn writer(
    db: DatabaseConnection,
    backend: DbBackend,
    users: Vec<Value>,
    sessions: Vec<Value>,
    stop: Arc<AtomicBool>,
    origin: Instant,
) -> Vec<Write> {
    let (insert, update) = match backend {
        DbBackend::Postgres => (
            "INSERT INTO sessions (id, user_id, token_hash, last_activity_at, expires_at, is_revoked) \
             VALUES ($1, $2, $3, $4, $5, false)",
            "UPDATE sessions SET last_activity_at = $1 WHERE id = $2",
        ),
        _ => (
            "INSERT INTO sessions (id, user_id, token_hash, last_activity_at, expires_at, is_revoked) \
             VALUES (?, ?, ?, ?, ?, false)",
            "UPDATE sessions SET last_activity_at = ? WHERE id = ?",
        ),
    };
    let mut rng = Rng::new(6);
    let mut writes = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = Utc::now();
        let stmt = if i.is_multiple_of(2) {
            let token = format!("{:064x}", rng.next_u64() as u128 * 31 + i as u128);
            Statement::from_sql_and_values(
                backend,
                insert,
                [
                    uuid::Uuid::now_v7().into(),
                    rng.pick(&users).clone(),
                    token.into(),
                    now.into(),
                    (now + chrono::Duration::hours(1)).into(),
                ],
            )
        } else {
            Statement::from_sql_and_values(
                backend,
                update,
                [now.into(), rng.pick(&sessions).clone()],
            )
        };
        let at = origin.elapsed();
        let ok = db.execute_raw(stmt).await.is_ok();
        writes.push(Write {
            at,
            took: origin.elapsed() - at,
            ok,
        });
        i += 1;
    }
    writes
}

/// `n` ids of `table`, read before the run for the writer to pick from.
async fn sample_ids(
    db: &DatabaseConnection,
    backend: DbBackend,
    table: &str,
    n: u64,
) -> Result<Vec<Value>> {
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            format!("SELECT id FROM {table} LIMIT {n}"),
        ))
        .await?;
    rows.iter()
        .map(|r| Ok(Value::from(r.try_get::<uuid::Uuid>("", "id")?)))
        .collect()
}

/// What the runner's connection is running, sampled every [`POLL`]: the
/// index of the migration statement (matched by text) or `None`.
async fn monitor(
    db: DatabaseConnection,
    backend: Backend,
    runner_id: i64,
    sql: Vec<String>,
    stop: Arc<AtomicBool>,
    origin: Instant,
) -> Vec<(Duration, Option<usize>)> {
    let query = match backend {
        Backend::Postgres => format!(
            "SELECT query AS q FROM pg_stat_activity WHERE pid = {runner_id} AND state = 'active'"
        ),
        _ => format!(
            "SELECT CAST(INFO AS CHAR) AS q FROM information_schema.PROCESSLIST WHERE ID = {runner_id}"
        ),
    };
    let norm: Vec<String> = sql
        .iter()
        .map(|s| s.trim_end_matches(';').to_owned())
        .collect();
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let at = origin.elapsed();
        let running = db
            .query_one_raw(Statement::from_string(backend.db_backend(), query.clone()))
            .await
            .ok()
            .flatten()
            .and_then(|r| r.try_get::<Option<String>>("", "q").ok().flatten())
            .and_then(|q| {
                norm.iter()
                    .position(|s| *s == q.trim().trim_end_matches(';'))
            });
        samples.push((at, running));
        tokio::time::sleep(POLL).await;
    }
    samples
}

/// Per statement: first and last time the monitor saw it running.
fn spans(samples: &[(Duration, Option<usize>)], n: usize) -> Vec<Option<(Duration, Duration)>> {
    let mut spans = vec![None; n];
    for (at, running) in samples {
        if let Some(i) = running {
            let span: &mut Option<(Duration, Duration)> = &mut spans[*i];
            *span = Some(match span {
                None => (*at, *at),
                Some((first, _)) => (*first, *at),
            });
        }
    }
    spans
}

fn short(sql: &str) -> String {
    let sql = sql
        .trim_start_matches("/* gatehouse: repeat while a batch changes 10000 rows */ ")
        .trim_start_matches("/* gatehouse: runs again when the next statement is retried */ ")
        .trim_start_matches("/*M! SET STATEMENT foreign_key_checks = 0 FOR */ ");
    let words: Vec<&str> = sql.split_whitespace().collect();
    let text = match words.as_slice() {
        ["ALTER", "TABLE", _, "ADD", "COLUMN", col, ..] => format!("add column {col}"),
        [
            "ALTER",
            "TABLE",
            _,
            "ADD",
            "CONSTRAINT",
            name,
            "FOREIGN",
            ..,
        ] => {
            format!("add foreign key {name}")
        }
        ["ALTER", "TABLE", _, "ADD", "CONSTRAINT", name, ..] => format!("add check {name}"),
        ["ALTER", "TABLE", _, "VALIDATE", "CONSTRAINT", name] => format!("validate {name}"),
        ["UPDATE", ..] => "backfill last_validated_at (batches)".to_owned(),
        ["DROP", "INDEX", .., name] => format!("drop index if exists {name}"),
        [
            "CREATE",
            "INDEX",
            "CONCURRENTLY",
            "IF",
            "NOT",
            "EXISTS",
            name,
            ..,
        ] => {
            format!("create index concurrently {name}")
        }
        ["CREATE", "INDEX", name, ..] => format!("create index {name}"),
        ["CREATE", "TABLE", name, ..] => format!("create table {name}"),
        _ => sql.chars().take(60).collect(),
    };
    text.replace(['"', '`', ';'], "")
}

struct Outcome {
    json: serde_json::Value,
}

async fn run_backend(backend: Backend, args: &Args) -> Result<Outcome> {
    let fresh = Fresh::create(backend).await?;
    let result = measure_on(&fresh, args).await;
    fresh.drop().await;
    result
}

async fn measure_on(fresh: &Fresh, args: &Args) -> Result<Outcome> {
    let backend = fresh.backend;
    let db_backend = backend.db_backend();
    let runner = Runner::<Migrator>::connect(&fresh.url, None, Options::default()).await?;
    runner.up(&Target::Count(BEFORE)).await?;
    let data = connect(&fresh.url, Duration::from_secs(3600)).await?;
    let generated = generate(&data, backend, args).await?;
    println!(
        "  generated {} users and {} sessions in {:.1} s",
        args.users,
        args.sessions,
        generated.as_secs_f64()
    );
    let step = runner
        .steps(Direction::Up)
        .await?
        .into_iter()
        .find(|s| s.name == MIGRATION)
        .context("seed 004 is a migration")?;
    let before = storage_id(&data, backend).await?;
    let users = sample_ids(&data, db_backend, "users", 1000).await?;
    let sessions = sample_ids(&data, db_backend, "sessions", 10_000).await?;
    let runner_id = match backend {
        Backend::Postgres => Some("SELECT pg_backend_pid()::bigint AS n"),
        Backend::MySql => Some("SELECT CAST(CONNECTION_ID() AS SIGNED) AS n"),
        Backend::Sqlite => None,
    };
    let runner_id = match runner_id {
        Some(sql) => Some(
            runner
                .connection()
                .query_one_raw(Statement::from_string(db_backend, sql))
                .await?
                .context("connection id")?
                .try_get::<i64>("", "n")?,
        ),
        None => None,
    };

    let origin = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writer_db = connect(&fresh.url, Duration::from_secs(3600)).await?;
    let writer_task = tokio::spawn(writer(
        writer_db,
        db_backend,
        users,
        sessions,
        stop.clone(),
        origin,
    ));
    let monitor_task = match runner_id {
        Some(id) => {
            let db = connect(&fresh.url, Duration::ZERO).await?;
            Some(tokio::spawn(monitor(
                db,
                backend,
                id,
                step.sql.clone(),
                stop.clone(),
                origin,
            )))
        }
        None => None,
    };
    // Let the writer reach its steady state first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = origin.elapsed();
    let result = runner.up(&Target::Count(1)).await;
    let finished = origin.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let writes = writer_task.await?;
    let samples = match monitor_task {
        Some(task) => task.await?,
        None => Vec::new(),
    };
    result?;
    runner.close().await;
    let after = storage_id(&data, backend).await?;
    let not_backfilled = data
        .query_one_raw(Statement::from_string(
            db_backend,
            "SELECT COUNT(*) AS n FROM sessions WHERE last_validated_at IS NULL",
        ))
        .await?
        .context("count")?
        .try_get::<i64>("", "n")?;
    data.close().await?;

    let total = finished - started;
    let during: Vec<&Write> = writes
        .iter()
        .filter(|w| w.at + w.took >= started && w.at <= finished)
        .collect();
    let failed = during.iter().filter(|w| !w.ok).count();
    let stats = Stats::of(during.iter().map(|w| w.took).collect());
    let worst = during
        .iter()
        .max_by_key(|w| w.took)
        .context("the writer wrote during the migration")?;
    let spans = spans(&samples, step.sql.len());
    let running_at = |t: Duration| -> Option<usize> {
        samples
            .iter()
            .filter(|(at, _)| *at >= t && *at <= t + worst.took)
            .filter_map(|(_, s)| *s)
            .next()
    };
    let worst_during = running_at(worst.at).map(|i| format!("{} ({})", i + 1, short(&step.sql[i])));

    println!("\n### {} ({} sessions)\n", backend.label(), args.sessions);
    if !spans.is_empty() && backend != Backend::Sqlite {
        println!("| # | statement | observed ms |");
        println!("|--:|---|--:|");
        for (i, sql) in step.sql.iter().enumerate() {
            let ms = match spans[i] {
                Some((first, last)) => format!("{:.0}", (last - first + POLL).as_secs_f64() * 1e3),
                None => format!("< {}", POLL.as_millis()),
            };
            println!("| {} | {} | {ms} |", i + 1, short(sql));
        }
        println!();
    }
    let rewritten = match (before, after) {
        (Some(b), Some(a)) => if a == b { "no" } else { "YES" }.to_owned(),
        _ => "n/a".to_owned(),
    };
    println!("| measure | value |");
    println!("|---|--:|");
    println!("| migration total | {:.2} s |", total.as_secs_f64());
    println!("| table rewritten | {rewritten} |");
    println!(
        "| rows left with last_validated_at NULL (written by the writer after the backfill) | {not_backfilled} |"
    );
    println!(
        "| writer writes during the migration | {} ({} failed) |",
        stats.n, failed
    );
    println!(
        "| writer p50 / p99 | {:.2} / {:.2} ms |",
        stats.p50_us / 1e3,
        stats.p99_us / 1e3
    );
    println!(
        "| longest write stall | {:.1} ms{} |",
        worst.took.as_secs_f64() * 1e3,
        worst_during
            .as_deref()
            .map(|s| format!(", during statement {s}"))
            .unwrap_or_default()
    );

    let statements: Vec<serde_json::Value> = step
        .sql
        .iter()
        .enumerate()
        .map(|(i, sql)| {
            json!({
                "n": i + 1,
                "statement": short(sql),
                "observed_ms": spans.get(i).copied().flatten().map(|(f, l)| round1((l - f + POLL).as_secs_f64() * 1e3)),
            })
        })
        .collect();
    Ok(Outcome {
        json: json!({
            "backend": backend.key(),
            "users": args.users,
            "sessions": args.sessions,
            "generate_s": round1(generated.as_secs_f64()),
            "migration_s": (total.as_secs_f64() * 1000.0).round() / 1000.0,
            "rewritten": rewritten,
            "storage_id_before": before,
            "storage_id_after": after,
            "writer": stats.json(),
            "writer_failed": failed,
            "longest_stall_ms": round1(worst.took.as_secs_f64() * 1e3),
            "longest_stall_during": worst_during,
            "statements": statements,
            "poll_ms": POLL.as_millis() as u64,
        }),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let mut results = Vec::new();
    for &backend in &args.backends {
        println!(
            "\n{}: fresh database, migrate to before seed 004, generate",
            backend.label()
        );
        match run_backend(backend, &args).await {
            Ok(outcome) => results.push(outcome.json),
            Err(err) => {
                println!("  {}: failed: {err:#}", backend.label());
                results.push(json!({ "backend": backend.key(), "error": format!("{err:#}") }));
            }
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let summary = json!({
        "bench": "online_migration",
        "migration": MIGRATION,
        "load_average_at_end": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "results": results,
    });
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = std::path::Path::new(&dir).join("bench-online-migration.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)?;
    println!("\nwrote {}", path.display());
    Ok(())
}
