//! W5, retention: prune 30 of 60 days of `audit_logs`. On PostgreSQL the
//! table is partitioned by month and prune detaches and drops the expired
//! month; the same rows deleted in batches of 10k (what every other backend
//! does) are measured beside it, and the partition prune again at a larger
//! row count to show that its time and WAL do not grow with the rows.
//!
//! `cargo bench --bench retention [-- --backends sqlite,postgres,mysql
//!  --rows 1000000 --large-rows 5000000]`. Servers as for the tests
//! (`TEST_POSTGRES_URL`, `TEST_MYSQL_URL`). Prints a Markdown table and writes
//! `target/bench-retention.json`.

#[path = "services/setup.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod setup;

use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use gatehouse::audit::{AuditEntry, ingest, partitions, retention};
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::json;

use setup::Backend;

/// Rows kept per day by the retention period, and the days generated.
const RETENTION_DAYS: i32 = 30;
const DAYS: i64 = 60;
/// Rows per ingest call while generating, and per delete batch.
const CHUNK: usize = 10_000;
const BATCH: u64 = 10_000;

/// "Now" for the benchmark: 60 days of rows end here, and the 30 expired
/// days are exactly September, so the partition prune has a whole month to
/// drop and nothing to delete row by row.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 31, 0, 0, 0).unwrap()
}

struct Args {
    backends: Vec<Backend>,
    rows: u64,
    large_rows: u64,
}

fn args() -> Args {
    let mut args = Args {
        backends: vec![Backend::Postgres, Backend::MySql, Backend::Sqlite],
        rows: 1_000_000,
        large_rows: 5_000_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--backends" => {
                args.backends = value()
                    .split(',')
                    .map(|b| Backend::parse(b).unwrap_or_else(|| panic!("unknown backend {b}")))
                    .collect();
            }
            "--rows" => args.rows = value().parse().expect("--rows N"),
            "--large-rows" => args.large_rows = value().parse().expect("--large-rows N"),
            // cargo bench passes --bench.
            _ => {}
        }
    }
    args
}

/// Writes `rows` audit rows spread evenly over `[from, to)`, with a progress bar.
async fn generate(
    db: &DatabaseConnection,
    rows: u64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    label: &str,
) {
    let bar = ProgressBar::new(rows).with_style(
        ProgressStyle::with_template(
            "{msg:>28} [{bar:40}] {human_pos}/{human_len} rows ({per_sec}, {eta})",
        )
        .unwrap()
        .progress_chars("=> "),
    );
    bar.set_message(label.to_owned());
    let span = (to - from).num_microseconds().unwrap() as f64;
    let mut written = 0;
    while written < rows {
        let n = (rows - written).min(CHUNK as u64);
        let entries: Vec<AuditEntry> = (written..written + n)
            .map(|i| {
                let at =
                    from + chrono::Duration::microseconds((span * i as f64 / rows as f64) as i64);
                AuditEntry::new("api", "request")
                    .retention_days(RETENTION_DAYS)
                    .client(Some("203.0.113.7"), Some("bench/1.0"))
                    .http("GET", "/v1/things", 200)
                    .created_at(at)
            })
            .collect();
        ingest(db, &entries, now()).await.expect("ingest");
        written += n;
        bar.set_position(written);
    }
    bar.finish();
}

async fn scalar_i64(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index::<i64>(0)
    .unwrap()
}

async fn wal_lsn(db: &DatabaseConnection) -> String {
    db.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT pg_current_wal_lsn()::text".to_owned(),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index::<String>(0)
    .unwrap()
}

async fn wal_since(db: &DatabaseConnection, lsn: &str) -> i64 {
    scalar_i64(
        db,
        &format!("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn}')::bigint"),
    )
    .await
}

struct Measured {
    method: &'static str,
    rows: u64,
    deleted_rows: i64,
    seconds: f64,
    wal_bytes: Option<i64>,
    detail: String,
}

/// Runs `prune`, returning its time, the rows that left and the WAL written.
async fn measure<F, Fut>(
    db: &DatabaseConnection,
    method: &'static str,
    rows: u64,
    prune: F,
) -> Measured
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let before = scalar_i64(db, "SELECT count(*) FROM audit_logs").await;
    let lsn = if postgres {
        Some(wal_lsn(db).await)
    } else {
        None
    };
    let started = Instant::now();
    let detail = prune().await;
    let seconds = started.elapsed().as_secs_f64();
    let wal_bytes = match &lsn {
        Some(lsn) => Some(wal_since(db, lsn).await),
        None => None,
    };
    let after = scalar_i64(db, "SELECT count(*) FROM audit_logs").await;
    Measured {
        method,
        rows,
        deleted_rows: before - after,
        seconds,
        wal_bytes,
        detail,
    }
}

async fn partition_prune(db: &DatabaseConnection) -> String {
    let pruned = retention::prune_audit_logs(db, BATCH, now())
        .await
        .expect("prune");
    assert_eq!(pruned.deleted, 0, "the expired days are exactly one month");
    format!(
        "{} partition(s) dropped, {} rows deleted",
        pruned.partitions_dropped, pruned.deleted
    )
}

async fn batched_prune(db: &DatabaseConnection) -> String {
    let pruned = retention::prune_audit_rows(db, BATCH, now(), 1)
        .await
        .expect("prune");
    format!("{} rows in {} batches", pruned.deleted, pruned.batches)
}

/// Fills 60 days (September and October 2026) with `rows` rows.
async fn fill(db: &DatabaseConnection, rows: u64, label: &str) {
    let start = now() - chrono::Duration::days(DAYS);
    if partitions::is_partitioned(db).await.unwrap() {
        partitions::ensure(db, start, 1).await.expect("partitions");
    }
    generate(db, rows, start, now(), label).await;
    // Settled, as a table is between prunes: otherwise autovacuum, drawn by
    // the fresh rows, holds the month's lock until it yields (deadlock_timeout, 1 s).
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared("VACUUM ANALYZE audit_logs")
            .await
            .unwrap();
    }
}

async fn run_backend(backend: Backend, args: &Args) -> Vec<Measured> {
    let bench = match setup::create(backend).await {
        Ok(bench) => bench,
        Err(why) => {
            eprintln!("{}: skipped ({why})", backend.label());
            return Vec::new();
        }
    };
    let db = bench.tuned().await;
    let mut results = Vec::new();
    fill(&db, args.rows, backend.label()).await;
    if backend == Backend::Postgres {
        results.push(
            measure(&db, "drop expired month", args.rows, || {
                partition_prune(&db)
            })
            .await,
        );
        // The same September again, deleted row by row.
        let september = now() - chrono::Duration::days(DAYS);
        partitions::ensure(&db, september, 0).await.unwrap();
        generate(
            &db,
            args.rows / 2,
            september,
            september + chrono::Duration::days(30),
            "September again",
        )
        .await;
        results.push(
            measure(&db, "batched DELETE (10k)", args.rows, || {
                batched_prune(&db)
            })
            .await,
        );
        // Larger: the partition prune should not notice.
        db.execute_unprepared("TRUNCATE audit_logs").await.unwrap();
        fill(&db, args.large_rows, "PostgreSQL, large").await;
        results.push(
            measure(&db, "drop expired month", args.large_rows, || {
                partition_prune(&db)
            })
            .await,
        );
    } else {
        results.push(
            measure(&db, "batched DELETE (10k)", args.rows, || {
                batched_prune(&db)
            })
            .await,
        );
    }
    db.close().await.ok();
    bench.drop().await;
    results
}

fn mb(bytes: Option<i64>) -> String {
    bytes.map_or_else(|| "–".into(), |b| format!("{:.2}", b as f64 / 1_048_576.0))
}

#[tokio::main]
async fn main() {
    let args = args();
    let mut summary = Vec::new();
    let mut lines = Vec::new();
    for &backend in &args.backends {
        for m in run_backend(backend, &args).await {
            lines.push(format!(
                "| {} | {} | {} | {} | {:.3} | {} | {} |",
                backend.label(),
                m.method,
                m.rows,
                m.deleted_rows,
                m.seconds,
                mb(m.wal_bytes),
                m.detail
            ));
            summary.push(json!({
                "backend": backend.key(),
                "method": m.method,
                "rows": m.rows,
                "rows_removed": m.deleted_rows,
                "seconds": m.seconds,
                "wal_bytes": m.wal_bytes,
                "detail": m.detail,
            }));
        }
    }
    println!();
    println!(
        "| backend | method | rows in table | rows removed | time (s) | WAL (MiB) | what ran |"
    );
    println!("|---|---|---:|---:|---:|---:|---|");
    for line in &lines {
        println!("{line}");
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-retention.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary).unwrap()).ok();
    println!("\n(JSON: {})", path.display());
}
