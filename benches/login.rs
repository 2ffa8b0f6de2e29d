//! What one completed login costs: `login::login` (password only, a new
//! session and its audit rows) on a fresh database per backend, as Argon2
//! verifications, statements sent (sea-orm's metric callback, which sees
//! every statement, inside transactions too), server round trips (MariaDB's
//! `Questions` counter of the benchmark's one connection: every statement it
//! sent, `BEGIN`, `SAVEPOINT` and `COMMIT` included) and latency.
//!
//! `cargo bench --bench login` (env `BENCH_LOGINS`, default 200;
//! `BENCH_BACKENDS`, default `sqlite postgres mariadb`). The same file builds
//! against older revisions of the library, so a revision can be measured
//! beside another on the same machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{Duration, Utc};
use gatehouse::accounts::{Accounts, Argon2idHasher, NewAccount, PasswordHasher};
use gatehouse::login::{LoginRequest, login};
use gatehouse::mfa::Mfa;
use gatehouse::sessions::{SessionPolicy, Sessions};
use gatehouse::{ClientInfo, Config, Error};
use sea_orm::{ConnectionTrait, Statement};

#[path = "services/setup.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod setup;

use setup::Backend;

const PASSWORD: &str = "plum orchard under winter light";

/// Argon2id at the library's defaults, counting its verifications.
struct Counted {
    inner: Argon2idHasher,
    verifies: Arc<AtomicUsize>,
}

impl PasswordHasher for Counted {
    fn hash(&self, password: &str) -> Result<String, Error> {
        self.inner.hash(password)
    }
    fn verify(&self, password: &str, phc: &str) -> Result<bool, Error> {
        self.verifies.fetch_add(1, Ordering::SeqCst);
        self.inner.verify(password, phc)
    }
    fn needs_rehash(&self, phc: &str) -> bool {
        self.inner.needs_rehash(phc)
    }
}

async fn questions(db: &sea_orm::DatabaseConnection) -> Option<u64> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SHOW SESSION STATUS LIKE 'Questions'",
        ))
        .await
        .ok()??;
    row.try_get::<String>("", "Value").ok()?.parse().ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("BENCH_LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let backends: Vec<Backend> = std::env::var("BENCH_BACKENDS")
        .unwrap_or_else(|_| "sqlite postgres mariadb".into())
        .split_whitespace()
        .filter_map(Backend::parse)
        .collect();
    let config = Config::from_values(
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40",
    )
    .expect("fixed keys");
    println!(
        "| backend | logins | Argon2 verifications / login | statements / login | server round trips / login | p50 | p99 |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|");
    for backend in backends {
        let bench = match setup::create(backend).await {
            Ok(bench) => bench,
            Err(why) => {
                println!("| {} | skipped: {why} | | | | | |", backend.label());
                continue;
            }
        };
        // One connection: logins run one at a time, and MariaDB's session
        // counter then sees exactly this benchmark's statements.
        let mut options = sea_orm::ConnectOptions::new(bench.url.clone());
        options
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .sqlx_logging(false);
        let mut db = sea_orm::Database::connect(options).await.expect("connect");
        let statements = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&statements);
        db.set_metric_callback(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        let verifies = Arc::new(AtomicUsize::new(0));
        let accounts = Accounts::new(Counted {
            inner: Argon2idHasher::default(),
            verifies: Arc::clone(&verifies),
        })
        .await
        .expect("accounts");
        let sessions = Sessions::load(&db, &config.hmac_key, SessionPolicy::default())
            .await
            .expect("sessions");
        let mfa = Mfa::new(&config);
        accounts
            .register(
                &db,
                NewAccount {
                    email: "bench@example.com",
                    username: "bench",
                    password: PASSWORD,
                },
                Utc::now(),
            )
            .await
            .expect("register");
        let request = LoginRequest {
            identifier: "bench",
            password: PASSWORD,
            second_factor: None,
            client: ClientInfo {
                ip: Some("198.51.100.7"),
                user_agent: Some("bench"),
            },
        };
        // Warm up: connections, prepared statements, the throttle row.
        for _ in 0..3 {
            login(&db, &accounts, &sessions, Some(&mfa), request, Utc::now())
                .await
                .expect("login");
        }
        let (v0, s0, q0) = (
            verifies.load(Ordering::SeqCst),
            statements.load(Ordering::SeqCst),
            if backend == Backend::MySql {
                questions(&db).await
            } else {
                None
            },
        );
        let mut times = Vec::with_capacity(n);
        let start = Utc::now();
        for i in 0..n {
            let at = start + Duration::milliseconds(i as i64);
            let began = Instant::now();
            login(&db, &accounts, &sessions, Some(&mfa), request, at)
                .await
                .expect("login");
            times.push(began.elapsed().as_secs_f64() * 1000.0);
        }
        let q1 = if backend == Backend::MySql {
            questions(&db).await
        } else {
            None
        };
        let per = |a: usize, b: usize| (b - a) as f64 / n as f64;
        let round_trips = match (q0, q1) {
            // Less the first `SHOW SESSION STATUS` itself.
            (Some(a), Some(b)) => format!("{:.1}", (b - a - 1) as f64 / n as f64),
            _ => "–".into(),
        };
        times.sort_by(f64::total_cmp);
        println!(
            "| {} | {n} | {:.2} | {:.1} | {round_trips} | {:.1} ms | {:.1} ms |",
            backend.label(),
            per(v0, verifies.load(Ordering::SeqCst)),
            per(s0, statements.load(Ordering::SeqCst)),
            percentile(&times, 0.5),
            percentile(&times, 0.99),
        );
        let _ = db.close().await;
        bench.drop().await;
    }
}
