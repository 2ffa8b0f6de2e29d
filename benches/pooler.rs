//! Session validation and API-key verification through PgBouncer in
//! transaction pooling (gatehouse's `PoolMode::Transaction`) and in session
//! pooling, against a direct connection to the same PostgreSQL database,
//! side by side in one run (rounds interleaved, the order rotating).
//!
//! `cargo bench --bench pooler` (needs `scripts/topologies.sh start
//! pgbouncer`; env `BENCH_CALLS`, default 300; `TEST_POSTGRES_URL`,
//! `BENCH_PGBOUNCER_URL` (default 127.0.0.1:6432), `BENCH_PGBOUNCER_SESSION_URL`
//! (6433)). Writes `target/bench-pooler.json`.

#[path = "services/measure.rs"]
#[allow(dead_code)]
mod measure;
#[path = "services/setup.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod setup;

use anyhow::{Context, Result};
use gatehouse::api_keys::{self, DEFAULT_RATE_LIMIT_PER_MINUTE, NewApiKey};
use gatehouse::db::{Pool, PoolMode};
use gatehouse::{ClientInfo, Config, Gatehouse, LoginRequest, NewAccount};

use measure::{Stats, interleaved};
use setup::Backend;

const PASSWORD: &str = "plum orchard under winter light";

fn through(url: &str, port: &str) -> String {
    let (base, name) = url.rsplit_once('/').expect("a database URL");
    let (scheme_auth, _) = base.rsplit_once(':').expect("a port");
    format!("{scheme_auth}:{port}/{name}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let db = setup::create(Backend::Postgres)
        .await
        .map_err(|e| anyhow::anyhow!("PostgreSQL: {e}"))?;
    let transaction_url = std::env::var("BENCH_PGBOUNCER_URL")
        .map(|u| through(&db.url, u.rsplit_once(':').map_or("6432", |(_, p)| p)))
        .unwrap_or_else(|_| through(&db.url, "6432"));
    let session_url = std::env::var("BENCH_PGBOUNCER_SESSION_URL")
        .map(|u| through(&db.url, u.rsplit_once(':').map_or("6433", |(_, p)| p)))
        .unwrap_or_else(|_| through(&db.url, "6433"));
    let config = Config::from_values(&"11".repeat(32), &"22".repeat(32))?;
    let peers = [
        ("direct", db.url.clone(), PoolMode::Session),
        (
            "pgbouncer transaction pooling",
            transaction_url,
            PoolMode::Transaction,
        ),
        ("pgbouncer session pooling", session_url, PoolMode::Session),
    ];
    let mut gates = Vec::new();
    for (label, url, mode) in &peers {
        let pool = Pool::connect(url, *mode).await.with_context(|| {
            format!("{label}: is PgBouncer running? scripts/topologies.sh start pgbouncer")
        })?;
        gates.push(Gatehouse::builder(pool).config(&config).build().await?);
    }
    // One account, its session and an API key, made on the direct connection.
    let direct = &gates[0];
    let account = direct
        .register(NewAccount {
            email: "bench@example.com",
            username: "bench",
            password: PASSWORD,
        })
        .await?;
    let client = ClientInfo {
        ip: Some("192.0.2.10"),
        user_agent: Some("bench/1"),
    };
    let login = direct
        .login(LoginRequest {
            identifier: "bench",
            password: PASSWORD,
            second_factor: None,
            client,
        })
        .await?;
    let token = login.session.token.expose().to_owned();
    let issued = api_keys::issue(
        direct.db(),
        NewApiKey {
            user_id: account.id,
            name: "bench",
            scopes: &["users.read"],
            rate_limit_per_minute: Some(100_000.max(DEFAULT_RATE_LIMIT_PER_MINUTE)),
            expires_at: None,
        },
        chrono::Utc::now(),
    )
    .await?;
    let key = issued.key.expose().to_owned();

    let w1 = interleaved(
        "W1 session validation",
        gates.len(),
        20,
        calls,
        async |peer| {
            gates[peer].validate_session(&token, client).await?;
            Ok(())
        },
    )
    .await?;
    let w2 = interleaved(
        "W2 API-key verification",
        gates.len(),
        20,
        calls,
        async |peer| {
            gates[peer].verify_api_key(&key, Some("192.0.2.10")).await?;
            Ok(())
        },
    )
    .await?;

    println!("PostgreSQL, {calls} calls per peer, 1 client");
    println!();
    println!("| workload | peer | p50 µs | p99 µs | p50 vs direct |");
    println!("|---|---|--:|--:|--:|");
    let mut json = Vec::new();
    for (name, stats) in [
        ("W1 session validation", &w1),
        ("W2 API-key verification", &w2),
    ] {
        let base = stats[0].p50_us;
        for ((label, _, _), s) in peers.iter().zip(stats.iter()) {
            println!(
                "| {name} | {label} | {:.0} | {:.0} | {:.2}x |",
                s.p50_us,
                s.p99_us,
                s.p50_us / base
            );
            json.push(
                serde_json::json!({"workload": name, "peer": label, "stats": Stats::json(s)}),
            );
        }
    }
    std::fs::create_dir_all("target").ok();
    std::fs::write(
        "target/bench-pooler.json",
        serde_json::to_string_pretty(&json)?,
    )?;
    for gate in gates {
        let _ = gate.db().connection().clone().close().await;
    }
    // PgBouncer keeps server sessions to the database: end them before dropping it.
    if let Ok(admin) = sea_orm::Database::connect(db.url.clone()).await {
        use sea_orm::ConnectionTrait;
        let _ = admin
            .execute_unprepared(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .await;
        let _ = admin.close().await;
    }
    db.drop().await;
    Ok(())
}
