//! Hot service paths against their peers, side by side in one run, on a
//! fresh database per backend filled with generated data: gatehouse's
//! services on their tuned pool, the same work hand-written against sqlx,
//! and the same services over a SeaORM connection with default options.
//!
//! `cargo bench --bench services [-- --scale small|full --backends sqlite,postgres,mysql
//!  --iterations N]`. Servers as for the tests: `TEST_POSTGRES_URL`,
//! `TEST_MYSQL_URL`. Prints a Markdown table per backend and writes
//! `target/bench-services.json`.

#[path = "services/fill.rs"]
mod fill;
#[path = "services/handwritten.rs"]
mod handwritten;
#[path = "services/measure.rs"]
mod measure;
#[path = "services/setup.rs"]
mod setup;
#[path = "services/standby.rs"]
mod standby;
#[path = "services/tower.rs"]
mod tower;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use gatehouse::ClientInfo;
use gatehouse::accounts::{self, Credentials, PasswordHasher};
use gatehouse::sessions::SessionPolicy;
use gatehouse::{Accounts, Argon2idHasher, Config, Sessions, api_keys, rbac};
use gatehouse_entity::roles;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::json;

use fill::{Fixture, PASSWORD, Scale};
use handwritten::{SessionKeys, Statements};
use measure::{Rng, Stats, interleaved, round1, round3, throughput};
use setup::{Backend, BenchDb};

/// A fixed key, so that runs are comparable; never a real deployment's key.
const HMAC_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const DATA_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Rows W7 lists.
const LIST_ROWS: u64 = 10_000;
/// Logins hashing at once while the trivial query is timed.
const CONCURRENT_LOGINS: usize = 8;
const CLIENT_IP: &str = "203.0.113.10";
const PEERS: [&str; 3] = ["gatehouse", "sqlx", "default SeaORM"];

struct Args {
    scale: Scale,
    backends: Vec<Backend>,
    /// Measured calls per peer for W1–W3 and per phase for the trivial query.
    iterations: usize,
    /// Measured calls per peer for W7.
    list_iterations: usize,
    /// Argon2id hashes (and verifications) timed.
    hashes: usize,
}

const USAGE: &str = "usage: cargo bench --bench services -- [--scale small|full] \
[--backends sqlite,postgres,mysql] [--iterations N] [--list-iterations N] [--hashes N]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        scale: Scale::SMALL,
        backends: vec![Backend::Sqlite, Backend::Postgres, Backend::MySql],
        iterations: 1_000,
        list_iterations: 30,
        hashes: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let number = |text: String| text.parse::<usize>().map_err(|e| format!("{text}: {e}"));
        match arg.as_str() {
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--scale" => {
                args.scale = match value("--scale")?.as_str() {
                    "small" => Scale::SMALL,
                    "full" => Scale::FULL,
                    other => return Err(format!("unknown scale {other}")),
                }
            }
            "--backends" => {
                args.backends = value("--backends")?
                    .split(',')
                    .map(|b| Backend::parse(b).ok_or(format!("unknown backend {b}")))
                    .collect::<Result<_, _>>()?;
            }
            "--iterations" => args.iterations = number(value("--iterations")?)?.max(10),
            "--list-iterations" => {
                args.list_iterations = number(value("--list-iterations")?)?.max(3);
            }
            "--hashes" => args.hashes = number(value("--hashes")?)?.max(3),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// One workload's peers.
struct Row {
    id: &'static str,
    name: &'static str,
    stats: Vec<Stats>,
    /// Most gatehouse may cost relative to sqlx (p50).
    goal_vs_sqlx: Option<f64>,
    /// Least default SeaORM must cost relative to gatehouse (p50).
    goal_vs_default: Option<f64>,
}

impl Row {
    fn vs_sqlx(&self) -> (f64, f64) {
        (
            self.stats[0].p50_us / self.stats[1].p50_us,
            self.stats[0].p99_us / self.stats[1].p99_us,
        )
    }

    fn vs_default(&self) -> (f64, f64) {
        (
            self.stats[2].p50_us / self.stats[0].p50_us,
            self.stats[2].p99_us / self.stats[0].p99_us,
        )
    }

    fn verdicts(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(goal) = self.goal_vs_sqlx {
            let r = self.vs_sqlx().0;
            out.push(if r <= goal {
                format!("≤{goal:.2}x sqlx: met")
            } else {
                format!(
                    "≤{goal:.2}x sqlx: MISSED by {:.1}%",
                    (r / goal - 1.0) * 100.0
                )
            });
        }
        if let Some(goal) = self.goal_vs_default {
            let r = self.vs_default().0;
            out.push(if r >= goal {
                format!("≥{goal:.1}x faster than default: met")
            } else {
                format!("≥{goal:.1}x faster than default: MISSED ({r:.3}x)")
            });
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        let (s50, s99) = self.vs_sqlx();
        let (d50, d99) = self.vs_default();
        json!({
            "id": self.id,
            "name": self.name,
            "peers": PEERS.iter().zip(&self.stats).map(|(p, s)| (p.to_string(), s.json()))
                .collect::<serde_json::Map<_, _>>(),
            "gatehouse_over_sqlx": {"p50": round3(s50), "p99": round3(s99)},
            "default_over_gatehouse": {"p50": round3(d50), "p99": round3(d99)},
            "goal_gatehouse_over_sqlx_max": self.goal_vs_sqlx,
            "goal_default_over_gatehouse_min": self.goal_vs_default,
            "goals_met": self.goal_vs_sqlx.is_none_or(|g| s50 <= g)
                && self.goal_vs_default.is_none_or(|g| d50 >= g),
        })
    }
}

/// Argon2id timings at the hasher's default (OWASP minimum) costs.
struct Argon2Report {
    costs: String,
    hash: Stats,
    verify: Stats,
}

/// `SELECT 1` latency alone and while logins hash.
struct TrivialReport {
    idle: Stats,
    loaded: Stats,
    logins: u64,
    login_seconds: f64,
}

struct BackendReport {
    backend: Backend,
    server: String,
    fixture_rows: Vec<(&'static str, usize)>,
    fill_seconds: f64,
    rows: Vec<Row>,
    argon2: Argon2Report,
    trivial: TrivialReport,
    standby: Option<standby::StandbyReport>,
    /// W1 calls per second at each client count: [gatehouse, sqlx].
    w1_throughput: Vec<(usize, Vec<f64>)>,
    /// W1 against tower-sessions loading a session: [gatehouse, tower].
    w1_tower: Option<[Stats; 2]>,
}

/// Sessions the tower-sessions peer stores.
const TOWER_SESSIONS: usize = 1_000;

/// Calls in flight at once for the W1 throughput.
const CLIENTS: [usize; 2] = [8, 64];
/// How long each peer runs per client count and rotation.
const THROUGHPUT_RUN: Duration = Duration::from_secs(3);

/// Tables whose statistics the planners get fresh after the bulk load.
const TABLES: [&str; 7] = [
    "users",
    "user_roles",
    "roles",
    "role_permissions",
    "permissions",
    "api_keys",
    "sessions",
];

async fn analyze(db: &DatabaseConnection, backend: Backend) -> Result<()> {
    let statements: Vec<String> = match backend {
        Backend::Postgres | Backend::Sqlite => vec!["ANALYZE".into()],
        Backend::MySql => vec![format!("ANALYZE TABLE {}", TABLES.join(", "))],
    };
    for sql in statements {
        db.query_all_raw(Statement::from_string(backend.db_backend(), sql))
            .await?;
    }
    Ok(())
}

async fn run_backend(bench: &BenchDb, args: &Args) -> Result<BackendReport> {
    let backend = bench.backend;
    let tuned = bench.tuned().await;
    let default = bench.default_seaorm().await;
    let sqlx = bench.sqlx().await;
    let sql = Statements::new(backend);
    let server = setup::server_version(&tuned).await;
    let config = Config::from_values(HMAC_HEX, DATA_B64)?;
    let service = Sessions::load(&tuned, &config.hmac_key, SessionPolicy::default()).await?;
    let keys = SessionKeys {
        key: config.hmac_key.expose(),
        key_id: service.key_id(),
        policy: *service.policy(),
    };
    let role_id = async |name: &str| -> Result<uuid::Uuid> {
        Ok(roles::Entity::find_by_name(name)
            .one(&tuned)
            .await?
            .with_context(|| format!("seeded role {name}"))?
            .id)
    };
    let hasher = Argon2idHasher::default();
    let password_hash = tokio::task::spawn_blocking({
        let hasher = hasher.clone();
        move || hasher.hash(PASSWORD)
    })
    .await??;

    let mut rng = Rng::new(0x05EE_D0F6_A7E4_005E);
    println!(
        "{}: generating {} users, {} sessions, {} API keys",
        backend.label(),
        args.scale.users,
        args.scale.sessions,
        args.scale.api_keys
    );
    let fixture = fill::fill(
        &sqlx,
        backend,
        args.scale,
        role_id("user").await?,
        role_id("moderator").await?,
        (keys.key, keys.key_id),
        &password_hash,
        &mut rng,
    )
    .await?;
    analyze(&tuned, backend).await?;
    check_peers_agree(&tuned, &default, &sqlx, &sql, &service, &keys, &fixture).await?;

    let n = args.iterations;
    let warmup = (n / 10).max(20);
    let mut rows = Vec::new();

    touch_sessions(&service, &tuned, &fixture).await?;
    let stats = interleaved("W1 sessions", 3, warmup, n, async |peer| {
        let s = rng.pick(&fixture.sessions);
        let client = s.client();
        match peer {
            0 => drop(
                service
                    .validate(&tuned, &s.token, client, Utc::now())
                    .await?,
            ),
            1 => drop(
                handwritten::validate_session(
                    &sqlx,
                    &sql,
                    &keys,
                    &s.token,
                    client.ip,
                    client.user_agent,
                    Utc::now(),
                )
                .await?,
            ),
            _ => drop(
                service
                    .validate(&default, &s.token, client, Utc::now())
                    .await?,
            ),
        }
        Ok(())
    })
    .await?;
    rows.push(Row {
        id: "W1",
        name: "session validation",
        stats,
        goal_vs_sqlx: Some(1.15),
        goal_vs_default: Some(1.3),
    });

    let w1_tower = match tower::setup(backend, &bench.url, TOWER_SESSIONS).await? {
        Some(peer) => {
            touch_sessions(&service, &tuned, &fixture).await?;
            let stats = interleaved("W1 vs tower-sessions", 2, warmup, n, async |p| {
                match p {
                    0 => {
                        let s = rng.pick(&fixture.sessions);
                        let client = s.client();
                        drop(
                            service
                                .validate(&tuned, &s.token, client, Utc::now())
                                .await?,
                        );
                    }
                    _ => peer.load(rng.pick(&peer.ids)).await?,
                }
                Ok(())
            })
            .await?;
            Some([stats[0], stats[1]])
        }
        None => None,
    };

    let mut w1_throughput = Vec::new();
    for clients in CLIENTS {
        touch_sessions(&service, &tuned, &fixture).await?;
        let label = format!("W1 x{clients}");
        let rates = throughput(
            &label,
            2,
            clients,
            THROUGHPUT_RUN,
            async |peer, client, i| {
                let at = (client * 7919 + i as usize * 31) % fixture.sessions.len();
                let s = &fixture.sessions[at];
                let client = s.client();
                match peer {
                    0 => drop(
                        service
                            .validate(&tuned, &s.token, client, Utc::now())
                            .await?,
                    ),
                    _ => drop(
                        handwritten::validate_session(
                            &sqlx,
                            &sql,
                            &keys,
                            &s.token,
                            client.ip,
                            client.user_agent,
                            Utc::now(),
                        )
                        .await?,
                    ),
                }
                Ok(())
            },
        )
        .await?;
        w1_throughput.push((clients, rates));
    }

    let held_uses = handwritten::HeldUses::default();
    let stats = interleaved("W2 API keys", 3, warmup, n, async |peer| {
        let key = rng.pick(&fixture.api_keys);
        match peer {
            0 => drop(api_keys::verify(&tuned, key, Some(CLIENT_IP), Utc::now()).await?),
            1 => drop(
                handwritten::verify_key(&sqlx, &sql, &held_uses, key, Some(CLIENT_IP), Utc::now())
                    .await?,
            ),
            _ => drop(api_keys::verify(&default, key, Some(CLIENT_IP), Utc::now()).await?),
        }
        Ok(())
    })
    .await?;
    rows.push(Row {
        id: "W2",
        name: "API-key verification",
        stats,
        goal_vs_sqlx: Some(1.15),
        goal_vs_default: Some(1.3),
    });

    // The same keys without a per-minute limit: the use is written once a
    // minute (`KeyUsage`; the sqlx peer holds its uses the same way). Each
    // key is used once first, so that the timed calls are a key in use.
    tuned
        .execute_unprepared("UPDATE api_keys SET rate_limit_per_minute = NULL")
        .await?;
    let usage = api_keys::KeyUsage::default();
    let default_usage = api_keys::KeyUsage::default();
    for key in &fixture.api_keys {
        api_keys::verify_with(&tuned, &usage, key, Some(CLIENT_IP), Utc::now()).await?;
    }
    let stats = interleaved("W2 keys, no limit", 3, warmup, n, async |peer| {
        let key = rng.pick(&fixture.api_keys);
        match peer {
            0 => {
                drop(api_keys::verify_with(&tuned, &usage, key, Some(CLIENT_IP), Utc::now()).await?)
            }
            1 => drop(
                handwritten::verify_key(&sqlx, &sql, &held_uses, key, Some(CLIENT_IP), Utc::now())
                    .await?,
            ),
            _ => drop(
                api_keys::verify_with(&default, &default_usage, key, Some(CLIENT_IP), Utc::now())
                    .await?,
            ),
        }
        Ok(())
    })
    .await?;
    rows.push(Row {
        id: "W2u",
        name: "API-key verification, no per-minute limit",
        stats,
        goal_vs_sqlx: Some(1.15),
        goal_vs_default: Some(1.3),
    });

    let stats = interleaved("W3 permissions", 3, warmup, n, async |peer| {
        let user = *rng.pick(&fixture.users);
        // Half held (through the `user` role), half not.
        let permission = if rng.below(2) == 0 {
            "users.read"
        } else {
            "users.delete"
        };
        let _held: bool = match peer {
            0 => black_box(rbac::has_permission(&tuned, user, permission, Utc::now()).await?),
            1 => black_box(
                handwritten::has_permission(&sqlx, &sql, user, permission, Utc::now()).await?,
            ),
            _ => black_box(rbac::has_permission(&default, user, permission, Utc::now()).await?),
        };
        Ok(())
    })
    .await?;
    rows.push(Row {
        id: "W3",
        name: "permission check",
        stats,
        goal_vs_sqlx: Some(1.15),
        goal_vs_default: Some(1.3),
    });

    let standby = standby::run(bench, &tuned, &service, &fixture, &mut rng, n, warmup).await?;

    let list_n = args.list_iterations;
    let stats = interleaved("W7 list 10k", 3, 3, list_n, async |peer| {
        let listed = match peer {
            0 => list_typed(&tuned).await?.len(),
            1 => handwritten::list_users(&sqlx, &sql, LIST_ROWS as i64)
                .await?
                .len(),
            _ => list_typed(&default).await?.len(),
        };
        ensure!(listed as u64 == LIST_ROWS.min(args.scale.users as u64));
        Ok(())
    })
    .await?;
    rows.push(Row {
        id: "W7",
        name: "listing 10k users",
        stats,
        goal_vs_sqlx: Some(1.10),
        goal_vs_default: None,
    });

    let argon2 = argon2_times(&hasher, args.hashes).await?;
    let trivial = trivial_under_logins(&tuned, hasher, &fixture, n).await?;

    tuned.close().await?;
    default.close().await?;
    sqlx.close().await;
    Ok(BackendReport {
        backend,
        server,
        fixture_rows: fixture.rows.clone(),
        fill_seconds: fixture.seconds,
        rows,
        argon2,
        trivial,
        standby,
        w1_throughput,
        w1_tower,
    })
}

/// Validates every sampled session once, so that the timed validations
/// that follow within `SessionPolicy::activity_interval` (60 s) are the
/// steady state of a session in use: the read, with no activity to record.
async fn touch_sessions(
    service: &Sessions,
    db: &DatabaseConnection,
    fixture: &Fixture,
) -> Result<()> {
    for s in &fixture.sessions {
        let client = s.client();
        service.validate(db, &s.token, client, Utc::now()).await?;
    }
    Ok(())
}

/// W7 through the typed API: the first 10k accounts in order of creation.
async fn list_typed(db: &DatabaseConnection) -> Result<Vec<accounts::Account>> {
    Ok(accounts::list_users(db, true, LIST_ROWS, 0).await?)
}

/// Before timing anything: every peer accepts the generated data and gives
/// the same answers, so the peers do the same work.
async fn check_peers_agree(
    tuned: &DatabaseConnection,
    default: &DatabaseConnection,
    sqlx: &setup::SqlxPool,
    sql: &Statements,
    service: &Sessions,
    keys: &SessionKeys<'_>,
    fixture: &Fixture,
) -> Result<()> {
    let now = Utc::now();
    for s in fixture.sessions.iter().take(3) {
        let client = s.client();
        let a = service.validate(tuned, &s.token, client, now).await?;
        let b = handwritten::validate_session(
            sqlx,
            sql,
            keys,
            &s.token,
            client.ip,
            client.user_agent,
            now,
        )
        .await?;
        let c = service.validate(default, &s.token, client, now).await?;
        ensure!(a.id == b.id && b.id == c.id, "W1 peers disagree");
        ensure!(a.risk_score == b.risk_score && b.risk_score == c.risk_score);
    }
    for key in fixture.api_keys.iter().take(3) {
        let a = api_keys::verify(tuned, key, Some(CLIENT_IP), now).await?;
        let b = handwritten::verify_key(sqlx, sql, &Default::default(), key, Some(CLIENT_IP), now)
            .await?;
        let c = api_keys::verify(default, key, Some(CLIENT_IP), now).await?;
        ensure!(
            a.scopes == b && b == c.scopes,
            "W2 peers disagree: {a:?} {b:?}"
        );
        ensure!(a.scopes.len() == 2, "generated keys hold both scopes");
    }
    for &user in fixture.users.iter().take(3) {
        for (permission, held) in [("users.read", true), ("users.delete", false)] {
            let a = rbac::has_permission(tuned, user, permission, now).await?;
            let b = handwritten::has_permission(sqlx, sql, user, permission, now).await?;
            let c = rbac::has_permission(default, user, permission, now).await?;
            ensure!(
                a == held && b == held && c == held,
                "W3 peers disagree on {permission}"
            );
        }
    }
    let a = list_typed(tuned).await?;
    let b = handwritten::list_users(sqlx, sql, LIST_ROWS as i64).await?;
    ensure!(a.len() == b.len(), "W7 lengths differ");
    ensure!(
        a.iter()
            .zip(&b)
            .all(|(a, b)| a.id == b.id && a.created_at == b.created_at),
        "W7 rows differ"
    );
    Ok(())
}

async fn argon2_times(hasher: &Argon2idHasher, n: usize) -> Result<Argon2Report> {
    let costs = hasher.costs();
    let hasher = hasher.clone();
    let (hash, verify) = tokio::task::spawn_blocking(move || -> Result<_> {
        let phc = hasher.hash(PASSWORD)?;
        let (mut hash, mut verify) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let started = Instant::now();
            hasher.hash(PASSWORD)?;
            hash.push(started.elapsed());
            let started = Instant::now();
            ensure!(hasher.verify(PASSWORD, &phc)?);
            verify.push(started.elapsed());
        }
        Ok((Stats::of(hash), Stats::of(verify)))
    })
    .await??;
    Ok(Argon2Report {
        costs: format!(
            "m={} KiB, t={}, p={}",
            costs.m_cost, costs.t_cost, costs.p_cost
        ),
        hash,
        verify,
    })
}

/// `SELECT 1` on the multi-thread runtime, in alternating blocks: alone, then
/// while [`CONCURRENT_LOGINS`] tasks run `Accounts::authenticate` in a loop.
async fn trivial_under_logins(
    db: &DatabaseConnection,
    hasher: Argon2idHasher,
    fixture: &Fixture,
    n: usize,
) -> Result<TrivialReport> {
    let accounts = Arc::new(Accounts::new(hasher).await?);
    let select1 = Statement::from_string(db.get_database_backend(), "SELECT 1");
    let blocks = 4;
    let per_block = n.div_ceil(blocks / 2);
    let (mut idle, mut loaded) = (Vec::new(), Vec::new());
    let mut logins = 0;
    let mut login_seconds = 0.0;
    let progress = measure::bar("trivial query", blocks * per_block);
    for block in 0..blocks {
        let under_load = block % 2 == 1;
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        if under_load {
            for username in fixture.login_usernames.iter().take(CONCURRENT_LOGINS) {
                let (db, accounts, stop, done) =
                    (db.clone(), accounts.clone(), stop.clone(), done.clone());
                let username = username.clone();
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let credentials = Credentials {
                            identifier: &username,
                            password: PASSWORD,
                            client: ClientInfo {
                                ip: Some(CLIENT_IP),
                                user_agent: Some("bench"),
                            },
                        };
                        accounts.authenticate(&db, credentials, Utc::now()).await?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    anyhow::Ok(())
                }));
            }
            // Let every login reach its hash before timing.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let started = Instant::now();
        for _ in 0..per_block {
            let t = Instant::now();
            db.query_one_raw(select1.clone()).await?;
            let took = t.elapsed();
            (if under_load { &mut loaded } else { &mut idle }).push(took);
            progress.inc(1);
        }
        if under_load {
            stop.store(true, Ordering::Relaxed);
            login_seconds += started.elapsed().as_secs_f64();
            // Logins finished while the queries ran, not those ending after.
            logins += done.load(Ordering::Relaxed);
            for task in tasks {
                task.await??;
            }
        }
    }
    progress.finish_and_clear();
    Ok(TrivialReport {
        idle: Stats::of(idle),
        loaded: Stats::of(loaded),
        logins,
        login_seconds,
    })
}

fn ms(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn print_report(r: &BackendReport, args: &Args) {
    let rows: Vec<String> = r
        .fixture_rows
        .iter()
        .map(|(table, n)| format!("{table} {n}"))
        .collect();
    println!();
    println!("### {} ({})", r.backend.label(), r.server);
    println!();
    println!(
        "Scale {}: {}; generated and inserted in {:.1} s. W1–W3: {} calls per peer (+{} warm-up), \
         W7: {} per peer (+3), peers interleaved; latency per call, p50 / p99.",
        args.scale.name,
        rows.join(", "),
        r.fill_seconds,
        args.iterations,
        (args.iterations / 10).max(20),
        args.list_iterations,
    );
    println!();
    println!(
        "| workload | gatehouse p50 / p99 | hand-written sqlx p50 / p99 | default SeaORM p50 / p99 \
         | gatehouse ÷ sqlx p50 (p99) | default ÷ gatehouse p50 (p99) | goals |"
    );
    println!("|---|--:|--:|--:|--:|--:|---|");
    for row in &r.rows {
        let s = &row.stats;
        let (s50, s99) = row.vs_sqlx();
        let (d50, d99) = row.vs_default();
        println!(
            "| {} {} | {} / {} | {} / {} | {} / {} | {s50:.2}x ({s99:.2}x) | {d50:.2}x ({d99:.2}x) | {} |",
            row.id,
            row.name,
            ms(s[0].p50_us),
            ms(s[0].p99_us),
            ms(s[1].p50_us),
            ms(s[1].p99_us),
            ms(s[2].p50_us),
            ms(s[2].p99_us),
            row.verdicts().join("; ")
        );
    }
    println!();
    match &r.w1_tower {
        Some([g, t]) => {
            let ratio = g.p50_us / t.p50_us;
            println!(
                "- W1 against tower-sessions' sqlx store loading a session of the same content: \
                 gatehouse p50 {} / p99 {}, tower-sessions p50 {} / p99 {}: {ratio:.2}x ({:.2}x) \
                 (goal ≤ 1.1x: {}).",
                ms(g.p50_us),
                ms(g.p99_us),
                ms(t.p50_us),
                ms(t.p99_us),
                g.p99_us / t.p99_us,
                if ratio <= 1.1 { "met" } else { "MISSED" }
            );
        }
        None => println!(
            "- W1 against tower-sessions: no peer on {} (its SQLite store is on sqlx 0.8, whose \
             SQLite library cannot link beside sqlx 0.9's).",
            r.backend.label()
        ),
    }
    for (clients, rates) in &r.w1_throughput {
        let ratio = rates[0] / rates[1].max(1e-9);
        let verdict = match *clients {
            64 if ratio >= 0.9 => " (goal ≥ 0.9x at 64: met)",
            64 => " (goal ≥ 0.9x at 64: MISSED)",
            _ => "",
        };
        println!(
            "- W1 throughput, {clients} clients in flight: gatehouse {:.0} calls/s, hand-written \
             sqlx {:.0} calls/s: {ratio:.2}x{verdict}.",
            rates[0], rates[1]
        );
    }
    if let Some(st) = &r.standby {
        println!();
        println!(
            "From the hot standby (`Pool::with_standby`) against the primary, interleaved; \
             {} reads served by the standby, {} sent to the primary instead:",
            st.served, st.primary
        );
        println!();
        println!(
            "| workload | primary p50 / p99 | standby p50 / p99 | standby ÷ primary p50 (p99) | goal |"
        );
        println!("|---|--:|--:|--:|---|");
        for (id, name, [p, s]) in &st.rows {
            let (r50, r99) = (s.p50_us / p.p50_us, s.p99_us / p.p99_us);
            let verdict = if *id == "W1" {
                if r50 <= 1.2 {
                    "≤ 1.2x: met"
                } else {
                    "≤ 1.2x: MISSED"
                }
            } else {
                "—"
            };
            println!(
                "| {id} {name} | {} / {} | {} / {} | {r50:.2}x ({r99:.2}x) | {verdict} |",
                ms(p.p50_us),
                ms(p.p99_us),
                ms(s.p50_us),
                ms(s.p99_us),
            );
        }
    }
    let a = &r.argon2;
    println!();
    println!(
        "- Argon2id ({}): hash p50 {} / p99 {}, verify p50 {} / p99 {} ({} each, one thread).",
        a.costs,
        ms(a.hash.p50_us),
        ms(a.hash.p99_us),
        ms(a.verify.p50_us),
        ms(a.verify.p99_us),
        a.hash.n
    );
    let t = &r.trivial;
    let verdict = if t.loaded.p99_us < 5_000.0 {
        "met"
    } else {
        "MISSED"
    };
    println!(
        "- `SELECT 1` (tuned pool, multi-thread runtime): alone p50 {} / p99 {}; while {} logins \
         hash at once p50 {} / p99 {} (goal p99 < 5 ms: {verdict}); {:.1} logins/s meanwhile.",
        ms(t.idle.p50_us),
        ms(t.idle.p99_us),
        CONCURRENT_LOGINS,
        ms(t.loaded.p50_us),
        ms(t.loaded.p99_us),
        t.logins as f64 / t.login_seconds.max(1e-9),
    );
}

fn report_json(r: &BackendReport) -> serde_json::Value {
    json!({
        "backend": r.backend.key(),
        "server": r.server,
        "rows": r.fixture_rows.iter().map(|(t, n)| (t.to_string(), json!(n)))
            .collect::<serde_json::Map<_, _>>(),
        "fill_seconds": round1(r.fill_seconds),
        "workloads": r.rows.iter().map(Row::json).collect::<Vec<_>>(),
        "argon2id": {
            "costs": r.argon2.costs,
            "hash": r.argon2.hash.json(),
            "verify": r.argon2.verify.json(),
        },
        "trivial_query": {
            "concurrent_logins": CONCURRENT_LOGINS,
            "alone": r.trivial.idle.json(),
            "while_logins_hash": r.trivial.loaded.json(),
            "goal_p99_us_max": 5000,
            "goal_met": r.trivial.loaded.p99_us < 5_000.0,
            "logins_per_second": round1(r.trivial.logins as f64 / r.trivial.login_seconds.max(1e-9)),
        },
        "w1_vs_tower_sessions": r.w1_tower.as_ref().map(|[g, t]| json!({
            "gatehouse": g.json(), "tower_sessions": t.json(),
        })),
        "w1_throughput": r.w1_throughput.iter().map(|(clients, rates)| json!({
            "clients": clients,
            "gatehouse_per_s": round1(rates[0]),
            "sqlx_per_s": round1(rates[1]),
        })).collect::<Vec<_>>(),
        "standby": r.standby.as_ref().map(|st| json!({
            "served": st.served,
            "sent_to_primary": st.primary,
            "workloads": st.rows.iter().map(|(id, name, [p, s])| json!({
                "id": id, "name": name, "primary": p.json(), "standby": s.json(),
            })).collect::<Vec<_>>(),
        })),
    })
}

fn json_path() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench-services.json")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let mut reports = Vec::new();
    let mut skipped = Vec::new();
    for &backend in &args.backends {
        let bench = match setup::create(backend).await {
            Ok(bench) => bench,
            Err(why) => {
                println!("{}: skipped: {why}", backend.label());
                skipped.push(json!({"backend": backend.key(), "reason": why}));
                continue;
            }
        };
        let result = run_backend(&bench, &args).await;
        bench.drop().await;
        match result {
            Ok(report) => {
                print_report(&report, &args);
                reports.push(report);
            }
            Err(e) => {
                eprintln!("{}: failed: {e:#}", backend.label());
                std::process::exit(1);
            }
        }
    }
    let summary = json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "scale": args.scale.name,
        "iterations": args.iterations,
        "list_iterations": args.list_iterations,
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "backends": reports.iter().map(report_json).collect::<Vec<_>>(),
        "skipped": skipped,
    });
    let path = json_path();
    match std::fs::write(&path, serde_json::to_string_pretty(&summary).unwrap()) {
        Ok(()) => println!("\nsummary written to {}", path.display()),
        Err(e) => eprintln!("writing {}: {e}", path.display()),
    }
}
