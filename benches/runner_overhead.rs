//! Runner overhead: `gatehouse migrate up`'s runner (lock, ledger, checksums,
//! rendering) against plain `Migrator::up` on the same migrations, on fresh
//! databases, side by side in one run on every reachable backend.
//!
//! `cargo bench --bench runner_overhead` (env `BENCH_ROUNDS`, default 15).
//! Servers as for the tests: `TEST_POSTGRES_URL`, `TEST_MYSQL_URL`.

use std::time::{Duration, Instant};

use migration::runner::{Options, Runner, Target};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

struct Server {
    label: &'static str,
    admin_url: Option<String>,
}

async fn connect(url: &str) -> Option<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(3));
    Database::connect(options).await.ok()
}

/// A fresh empty database; returns its URL.
async fn fresh(server: &Server, n: usize) -> String {
    match &server.admin_url {
        None => {
            let path = std::env::temp_dir().join(format!("gh_bench_{}_{n}.db", std::process::id()));
            let _ = std::fs::remove_file(&path);
            format!("sqlite://{}?mode=rwc", path.display())
        }
        Some(admin_url) => {
            let name = format!("gh_bench_{}_{n}", std::process::id());
            let admin = connect(admin_url).await.expect("admin connection");
            let backend = admin.get_database_backend();
            let q = if backend == DbBackend::MySql {
                '`'
            } else {
                '"'
            };
            admin
                .execute_raw(Statement::from_string(
                    backend,
                    format!("DROP DATABASE IF EXISTS {q}{name}{q}"),
                ))
                .await
                .unwrap();
            admin
                .execute_raw(Statement::from_string(
                    backend,
                    format!("CREATE DATABASE {q}{name}{q}"),
                ))
                .await
                .unwrap();
            admin.close().await.unwrap();
            let base = admin_url.rsplit_once('/').unwrap().0;
            format!("{base}/{name}")
        }
    }
}

async fn plain(url: &str) -> Duration {
    let started = Instant::now();
    let db = connect(url).await.expect("connects");
    Migrator::up(&db, None).await.expect("Migrator::up");
    db.close().await.unwrap();
    started.elapsed()
}

async fn runner(url: &str) -> Duration {
    let started = Instant::now();
    let runner = Runner::<Migrator>::connect(url, None, Options::default())
        .await
        .expect("connects");
    let applied = runner.up(&Target::All).await.expect("runner up");
    assert_eq!(applied.len(), Migrator::migrations().len());
    runner.close().await;
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let servers = [
        Server {
            label: "SQLite",
            admin_url: None,
        },
        Server {
            label: "PostgreSQL",
            admin_url: Some(
                std::env::var("TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            ),
        },
        Server {
            label: "MariaDB",
            admin_url: Some(
                std::env::var("TEST_MYSQL_URL")
                    .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".into()),
            ),
        },
    ];
    println!("runner overhead: {rounds} rounds per side, fresh database per run, alternating");
    println!("| backend | Migrator::up median ms | runner up median ms | ratio |");
    println!("|---|---:|---:|---:|");
    for server in &servers {
        if let Some(url) = &server.admin_url {
            if connect(url).await.is_none() {
                println!("| {} | skipped: unreachable | | |", server.label);
                continue;
            }
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate the order so that warm-up and drift hit both sides alike.
            if round % 2 == 0 {
                a.push(plain(&fresh(server, 2 * round).await).await);
                b.push(runner(&fresh(server, 2 * round + 1).await).await);
            } else {
                b.push(runner(&fresh(server, 2 * round + 1).await).await);
                a.push(plain(&fresh(server, 2 * round).await).await);
            }
        }
        let (ma, mb) = (median(a), median(b));
        println!("| {} | {ma:.1} | {mb:.1} | {:.2}x |", server.label, mb / ma);
    }
}
