//! Runner overhead: `gatehouse migrate up`'s runner (lock, ledger, checksums,
//! rendering) against plain `Migrator::up` on the same migrations, on fresh
//! databases, side by side in one run on every reachable backend.
//!
//! `cargo bench --bench runner_overhead` (env `BENCH_ROUNDS`, default 15;
//! `BENCH_BACKENDS`, e.g. `mariadb`, default `sqlite postgres mariadb`).
//! Servers as for the tests: `TEST_POSTGRES_URL`, `TEST_MYSQL_URL`.

use std::time::{Duration, Instant};

use gatehouse_migration::runner::{Options, Runner, Target};
use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

struct Server {
    label: &'static str,
    /// The name `BENCH_BACKENDS` uses.
    key: &'static str,
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
            key: "sqlite",
            admin_url: None,
        },
        Server {
            label: "PostgreSQL",
            key: "postgres",
            admin_url: Some(
                std::env::var("TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            ),
        },
        Server {
            label: "MariaDB",
            key: "mariadb",
            admin_url: Some(
                std::env::var("TEST_MYSQL_URL")
                    .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".into()),
            ),
        },
    ];
    let backends = std::env::var("BENCH_BACKENDS")
        .unwrap_or_else(|_| "sqlite postgres mariadb".into())
        .to_lowercase();
    let backends: Vec<&str> = backends.split([' ', ',']).collect();
    println!("runner overhead: {rounds} rounds per side, fresh database per run, alternating");
    println!(
        "| backend | Migrator::up median ms | runner up median ms | ratio | paired ratio | Migrator::up min ms | runner min ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for server in &servers {
        if !backends.contains(&server.key) {
            continue;
        }
        if let Some(url) = &server.admin_url
            && connect(url).await.is_none()
        {
            println!("| {} | skipped: unreachable | | | | | |", server.label);
            continue;
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
        // Paired: each round's runner time over the plain time next to it, so drift cancels.
        let paired = median(a.iter().zip(&b).map(|(a, b)| ms(*b) / ms(*a)).collect());
        let (min_a, min_b) = (ms(*a.iter().min().unwrap()), ms(*b.iter().min().unwrap()));
        let (ma, mb) = (
            median(a.into_iter().map(ms).collect()),
            median(b.into_iter().map(ms).collect()),
        );
        println!(
            "| {} | {ma:.1} | {mb:.1} | {:.2}x | {paired:.2}x | {min_a:.1} | {min_b:.1} |",
            server.label,
            mb / ma
        );
    }
}
