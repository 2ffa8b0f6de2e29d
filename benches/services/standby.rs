//! W1 and W3 read from the streaming hot standby (`Pool::with_standby`)
//! against the same calls on the primary, interleaved in one run
//! (PostgreSQL only; skipped when no standby answers at `TEST_STANDBY_URL`,
//! default `postgres://postgres@127.0.0.1:5433/postgres`, as the tests'
//! `scripts/topologies.sh start standby` runs it).

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use gatehouse::db::Pool;
use gatehouse::{Sessions, rbac};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::fill::Fixture;
use crate::measure::{Rng, Stats, interleaved};
use crate::setup::{Backend, BenchDb};

const DEFAULT_STANDBY_URL: &str = "postgres://postgres@127.0.0.1:5433/postgres";
/// Sessions the standby workload validates: each validated once before the
/// timing, so that no timed call is due to record activity.
const SESSIONS: usize = 64;

pub struct StandbyReport {
    /// W1 and W3: [primary, standby].
    pub rows: Vec<(&'static str, &'static str, [Stats; 2])>,
    pub served: u64,
    pub primary: u64,
}

/// The standby's URL for the bench database, or why there is none.
async fn standby_url(bench: &BenchDb) -> Result<String, String> {
    let base = std::env::var("TEST_STANDBY_URL").unwrap_or_else(|_| DEFAULT_STANDBY_URL.into());
    let name = bench.url.rsplit('/').next().unwrap_or_default();
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => return Err(format!("TEST_STANDBY_URL `{base}` names no database")),
    };
    sea_orm::Database::connect(base.clone())
        .await
        .map_err(|e| format!("no standby at {base}: {e}"))?
        .close()
        .await
        .ok();
    Ok(url)
}

/// Waits until the standby has replayed everything the primary committed.
async fn caught_up(primary: &DatabaseConnection, standby_url: &str) -> Result<()> {
    let lsn: String = primary
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_current_wal_lsn()::text",
        ))
        .await?
        .context("a WAL position")?
        .try_get_by_index(0)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Ok(standby) = sea_orm::Database::connect(standby_url).await {
            let row = standby
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"),
                ))
                .await?;
            standby.close().await.ok();
            if row.is_some_and(|r| r.try_get_by_index::<bool>(0).unwrap_or(false)) {
                return Ok(());
            }
        }
        ensure!(
            Instant::now() < deadline,
            "the standby did not catch up in 300 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(
    bench: &BenchDb,
    tuned: &DatabaseConnection,
    service: &Sessions,
    fixture: &Fixture,
    rng: &mut Rng,
    n: usize,
    warmup: usize,
) -> Result<Option<StandbyReport>> {
    if bench.backend != Backend::Postgres {
        return Ok(None);
    }
    let url = match standby_url(bench).await {
        Ok(url) => url,
        Err(why) => {
            println!("PostgreSQL standby: skipped: {why}");
            return Ok(None);
        }
    };
    caught_up(tuned, &url).await?;
    let pool = Pool::from(tuned.clone())
        .with_standby(&url, gatehouse::db::standby::DEFAULT_WAIT)
        .await?;
    let sessions = &fixture.sessions[..SESSIONS.min(fixture.sessions.len())];
    for s in sessions {
        let client = s.client();
        service
            .validate(&pool, &s.token, client, Utc::now())
            .await?;
    }
    let before = pool.standby_stats().unwrap_or_default();
    let mut rows = Vec::new();
    let stats = interleaved("W1 standby", 2, warmup, n, async |peer| {
        let s = rng.pick(sessions);
        let client = s.client();
        match peer {
            0 => drop(
                service
                    .validate(tuned, &s.token, client, Utc::now())
                    .await?,
            ),
            _ => drop(
                service
                    .validate(&pool, &s.token, client, Utc::now())
                    .await?,
            ),
        }
        Ok(())
    })
    .await?;
    rows.push(("W1", "session validation", [stats[0], stats[1]]));
    let stats = interleaved("W3 standby", 2, warmup, n, async |peer| {
        let user = *rng.pick(&fixture.users);
        let held: bool = match peer {
            0 => rbac::has_permission(tuned, user, "users.read", Utc::now()).await?,
            _ => rbac::has_permission(&pool, user, "users.read", Utc::now()).await?,
        };
        black_box(held);
        Ok(())
    })
    .await?;
    rows.push(("W3", "permission check", [stats[0], stats[1]]));
    let after = pool.standby_stats().unwrap_or_default();
    // Dropping the pool closes the standby's connections; the primary's stay.
    drop(pool);
    Ok(Some(StandbyReport {
        rows,
        served: after.served - before.served,
        primary: after.primary - before.primary,
    }))
}
