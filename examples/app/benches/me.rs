//! `GET /api/me` with a valid session, over loopback HTTP, at 1, 8 and 64
//! concurrent clients: the example app (gatehouse's `AuthSession` extractor,
//! then the account) against the same route whose handler looks the session
//! up with one hand-written sqlx query. Same database, same pool, same run.
//!
//! `cargo bench -p gatehouse-example-app --bench me`; `BENCH_SECONDS`
//! (default 3) per cell, `BENCH_BACKENDS` (default `sqlite,postgres,mysql`).
//! Prints a Markdown table for BENCHMARKS.md.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, sqlx};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::{Backend, TestApp};

const POOL: u32 = 16;
const CONCURRENCY: [usize; 3] = [1, 8, 64];
const PASSWORD: &str = "plum verdict lantern oak 47";

/// The peer: one query by token hash, checks in Rust, nothing written.
#[derive(Clone)]
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
}

type Row = (
    String,
    String,
    bool,
    DateTime<Utc>,
    bool,
    Option<DateTime<Utc>>,
);

/// The peer's one statement, with the backend's placeholder.
macro_rules! lookup_sql {
    ($placeholder:literal) => {
        concat!(
            "SELECT u.email, u.username, s.is_revoked, s.expires_at, u.is_active, u.deleted_at ",
            "FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ",
            $placeholder
        )
    };
}

/// The activity update gatehouse's validation also makes (one autocommit
/// statement), for the second peer.
macro_rules! touch_sql {
    ($a:literal, $b:literal, $c:literal) => {
        concat!(
            "UPDATE sessions SET last_activity_at = ",
            $a,
            ", last_validated_at = ",
            $b,
            " WHERE token_hash = ",
            $c
        )
    };
}

async fn touch(pool: &Pool, hash: &str) -> Result<(), sqlx::Error> {
    let now = Utc::now();
    match pool {
        Pool::Sqlite(p) => sqlx::query(touch_sql!("?", "?", "?"))
            .bind(now)
            .bind(now)
            .bind(hash)
            .execute(p)
            .await
            .map(drop),
        Pool::Postgres(p) => sqlx::query(touch_sql!("$1", "$2", "$3"))
            .bind(now)
            .bind(now)
            .bind(hash)
            .execute(p)
            .await
            .map(drop),
        Pool::MySql(p) => sqlx::query(touch_sql!("?", "?", "?"))
            .bind(now)
            .bind(now)
            .bind(hash)
            .execute(p)
            .await
            .map(drop),
    }
}

async fn lookup(pool: &Pool, hash: &str) -> Result<Option<Row>, sqlx::Error> {
    match pool {
        Pool::Sqlite(p) => {
            sqlx::query_as(lookup_sql!("?"))
                .bind(hash)
                .fetch_optional(p)
                .await
        }
        Pool::Postgres(p) => {
            sqlx::query_as(lookup_sql!("$1"))
                .bind(hash)
                .fetch_optional(p)
                .await
        }
        Pool::MySql(p) => {
            sqlx::query_as(lookup_sql!("?"))
                .bind(hash)
                .fetch_optional(p)
                .await
        }
    }
}

async fn peer_me(
    State((pool, write)): State<(Pool, bool)>,
    headers: HeaderMap,
) -> Result<Json<Value>, StatusCode> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let hash = data_encoding::HEXLOWER.encode(&Sha256::digest(token.as_bytes()));
    let row = lookup(&pool, &hash)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    match row {
        Some((email, username, false, expires_at, true, None)) if expires_at > Utc::now() => {
            if write {
                touch(&pool, &hash)
                    .await
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
            }
            Ok(Json(json!({"email": email, "username": username})))
        }
        _ => Err(StatusCode::UNAUTHORIZED),
    }
}

async fn start_peer(db: &DatabaseConnection) -> String {
    let pool = match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => Pool::Sqlite(db.get_sqlite_connection_pool().clone()),
        sea_orm::DbBackend::Postgres => Pool::Postgres(db.get_postgres_connection_pool().clone()),
        _ => Pool::MySql(db.get_mysql_connection_pool().clone()),
    };
    let router = Router::new()
        .route("/api/me", get(peer_me).with_state((pool.clone(), false)))
        .route("/touch/api/me", get(peer_me).with_state((pool, true)));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

struct Cell {
    rps: f64,
    p99: Duration,
    errors: usize,
}

/// `clients` loops of `GET url` for `seconds` after a short warm-up.
async fn load(url: &str, token: &str, clients: usize, seconds: f64) -> Cell {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let warm_until = Instant::now() + Duration::from_millis(500);
    let end = warm_until + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let http = http.clone();
            let url = url.to_owned();
            let auth = format!("Bearer {token}");
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                loop {
                    let start = Instant::now();
                    if start >= end {
                        break;
                    }
                    let ok = match http
                        .get(&url)
                        .header(header::AUTHORIZATION, &auth)
                        .send()
                        .await
                    {
                        Ok(r) => r.status() == StatusCode::OK && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if start >= warm_until {
                        latencies.push(start.elapsed());
                        errors += usize::from(!ok);
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await.unwrap();
        all.extend(latencies);
        errors += e;
    }
    all.sort();
    let p99 = all
        .get((all.len() * 99 / 100).min(all.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    Cell {
        rps: all.len() as f64 / seconds,
        p99,
        errors,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let backends =
        std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres,mysql".into());
    println!(
        "| backend | clients | gatehouse req/s | p99 ms | sqlx read req/s | p99 ms | sqlx read + UPDATE req/s | p99 ms | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for name in backends.split(',') {
        let backend = match name.trim() {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            "mysql" => Backend::MySql,
            other => panic!("unknown backend {other}"),
        };
        let Some(app) = TestApp::start(backend, POOL).await else {
            continue;
        };
        let register = app
            .http
            .post(app.url("/api/auth/register"))
            .json(&json!({"email": "bench@example.com", "username": "bench", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(register.status(), StatusCode::CREATED);
        // One session for gatehouse, one for the peers (whose UPDATE writes
        // timestamps in sqlx's own text form on SQLite).
        let mut tokens = Vec::new();
        for _ in 0..2 {
            let login: Value = app
                .http
                .post(app.url("/api/auth/login"))
                .json(&json!({"identifier": "bench", "password": PASSWORD, "bearer": true}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            tokens.push(
                login["token"]
                    .as_str()
                    .expect("login returns a token")
                    .to_owned(),
            );
        }
        let peer = start_peer(&app.db).await;
        for clients in CONCURRENCY {
            let ours = load(&app.url("/api/me"), &tokens[0], clients, seconds).await;
            let read = load(&format!("{peer}/api/me"), &tokens[1], clients, seconds).await;
            let write = load(
                &format!("{peer}/touch/api/me"),
                &tokens[1],
                clients,
                seconds,
            )
            .await;
            println!(
                "| {} | {clients} | {:.0} | {} | {:.0} | {} | {:.0} | {} | {} |",
                backend.name(),
                ours.rps,
                ms(ours.p99),
                read.rps,
                ms(read.p99),
                write.rps,
                ms(write.p99),
                ours.errors + read.errors + write.errors,
            );
        }
        app.stop().await;
    }
}
