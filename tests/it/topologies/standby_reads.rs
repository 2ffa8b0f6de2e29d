//! Reads from the streaming hot standby (`DATABASE_READ_URL`): session
//! validation, permission checks and API-key lookups served there (counted
//! by the pool and visible in the standby's `pg_stat_database`), while every
//! revocation, role revocation and lock made through another handle (another
//! process, as far as the standby knows) is refused at once, a new session
//! validates at once, and a standby whose replay is paused never lets a
//! revoked session through.

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use gatehouse::api_keys::{self, NewApiKey};
use gatehouse::db::Pool;
use gatehouse::db::standby::DEFAULT_WAIT;
use gatehouse::rbac::{self, Actor};
use gatehouse::{ClientInfo, Config, Error, Gatehouse, LoginRequest, NewAccount};
use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::Standby;
use crate::accounts::PASSPHRASE;
use crate::support::connect;

const HMAC_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const DATA_HEX: &str = "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40";
const CLIENT: ClientInfo<'static> = ClientInfo {
    ip: Some("192.0.2.10"),
    user_agent: Some("standby tests"),
};

/// A handle on the primary at `primary` reading from `read_url`, each write
/// waiting at most `wait` for the standby.
async fn handle(primary: &str, read_url: String, wait: Duration) -> Result<Gatehouse, Error> {
    Gatehouse::builder(connect(primary).await.unwrap())
        .config(&Config::from_values(HMAC_HEX, DATA_HEX).unwrap())
        .read_url(read_url)
        .standby_wait(wait)
        .build()
        .await
}

/// The migrated database and two handles on it that read from the standby:
/// two processes of one application, as far as the standby can tell.
async fn two_handles(wait: Duration) -> Option<(Standby, Gatehouse, Gatehouse)> {
    let s = Standby::start().await?;
    Migrator::up(&s.primary.db, None).await.unwrap();
    s.caught_up().await;
    let a = handle(&s.primary.url, s.url.clone(), wait).await.unwrap();
    let b = handle(&s.primary.url, s.url.clone(), wait).await.unwrap();
    assert!(a.db().has_standby() && b.db().has_standby());
    Some((s, a, b))
}

async fn sign_in(gate: &Gatehouse, name: &str) -> (uuid::Uuid, String) {
    let account = gate
        .register(NewAccount {
            email: &format!("{name}@example.com"),
            username: name,
            password: PASSPHRASE,
        })
        .await
        .unwrap();
    let done = gate
        .login(LoginRequest {
            identifier: name,
            password: PASSPHRASE,
            second_factor: None,
            client: CLIENT,
        })
        .await
        .unwrap();
    (account.id, done.session.token.expose().to_owned())
}

fn served(pool: &Pool) -> u64 {
    pool.standby_stats().expect("a standby").served
}

/// Transactions committed in the test database, as the standby counts them.
async fn standby_commits(s: &Standby) -> i64 {
    let db = connect(&s.url).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        ))
        .await
        .unwrap()
        .unwrap();
    let commits: i64 = row.try_get_by_index(0).unwrap();
    db.close().await.unwrap();
    commits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validations_permission_checks_and_key_lookups_are_served_by_the_standby() {
    let Some((s, a, b)) = two_handles(Duration::from_secs(5)).await else {
        return;
    };
    let (user, token) = sign_in(&a, "reader").await;
    let issued = api_keys::issue(
        a.db(),
        NewApiKey {
            user_id: user,
            name: "reads",
            scopes: &["users.read"],
            rate_limit_per_minute: None,
            expires_at: None,
        },
        Utc::now(),
    )
    .await
    .unwrap();
    let key = issued.key.expose().to_owned();
    let commits_before = standby_commits(&s).await;
    let served_before = served(b.db());
    const CALLS: u64 = 20;
    for _ in 0..CALLS {
        assert_eq!(
            b.validate_session(&token, CLIENT).await.unwrap().user_id,
            user
        );
        assert!(b.has_permission(user, "users.read").await.unwrap());
        assert_eq!(b.verify_api_key(&key, None).await.unwrap().user_id, user);
    }
    let served_now = served(b.db()) - served_before;
    // Each validation is one read, each permission check one, each key
    // verification two; the first validation and verification also write
    // (their first use), on the primary.
    assert!(
        served_now >= 4 * CALLS,
        "the standby served {served_now} of {} reads: {:?}",
        4 * CALLS,
        b.db().standby_stats()
    );
    // The standby's own statistics show the reads (it reports them within
    // a few seconds).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let commits = standby_commits(&s).await - commits_before;
        if commits >= i64::try_from(4 * CALLS).unwrap() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pg_stat_database on the standby counts {commits} transactions"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    s.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_process_revokes_another_refuses_at_once() {
    let Some((s, a, b)) = two_handles(Duration::from_secs(5)).await else {
        return;
    };
    // A session created by A validates at B at once.
    let (user, token) = sign_in(&a, "revoked").await;
    b.validate_session(&token, CLIENT).await.unwrap();

    // Logged out at A: refused at B by the standby's next read.
    let before = served(b.db());
    a.logout(&token).await.unwrap();
    assert!(matches!(
        b.validate_session(&token, CLIENT).await,
        Err(Error::Revoked)
    ));
    assert!(served(b.db()) > before, "the standby answered the refusal");

    // A role revoked at A: the permission is gone at B at once.
    let admin = rbac::find_role(a.db(), "admin").await.unwrap();
    rbac::grant_role(a.db(), Actor::System, user, admin.id, None, Utc::now())
        .await
        .unwrap();
    assert!(b.has_permission(user, "audit.read").await.unwrap());
    rbac::revoke_role(a.db(), Actor::System, user, admin.id, Utc::now())
        .await
        .unwrap();
    assert!(!b.has_permission(user, "audit.read").await.unwrap());

    // A key revoked, and an account locked, at A: refused at B at once.
    let key = |name: &'static str| {
        let db = a.db().clone();
        async move {
            let issued = api_keys::issue(
                &db,
                NewApiKey {
                    user_id: user,
                    name,
                    scopes: &["users.read"],
                    rate_limit_per_minute: None,
                    expires_at: None,
                },
                Utc::now(),
            )
            .await
            .unwrap();
            (issued.record.id, issued.key.expose().to_owned())
        }
    };
    let (revoked_id, revoked_key) = key("to revoke").await;
    let (_, other_key) = key("kept").await;
    b.verify_api_key(&revoked_key, None).await.unwrap();
    api_keys::revoke(a.db(), revoked_id, Utc::now())
        .await
        .unwrap();
    assert!(matches!(
        b.verify_api_key(&revoked_key, None).await,
        Err(Error::Revoked)
    ));
    b.verify_api_key(&other_key, None).await.unwrap();
    gatehouse::accounts::lock(a.db(), Actor::System, user, Utc::now())
        .await
        .unwrap();
    assert!(matches!(
        b.verify_api_key(&other_key, None).await,
        Err(Error::Locked { .. })
    ));
    s.drop().await;
}

/// Resumes the standby's replay when dropped, even when the test failed.
struct ResumeReplay(String);

impl Drop for ResumeReplay {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&self.0, "-qtAc", "SELECT pg_wal_replay_resume()"])
            .output();
    }
}

/// Polls `sql`, one boolean, on `db` until it is true (at most 10 s).
async fn until(db: &sea_orm::DatabaseConnection, sql: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = db
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap()
            .unwrap();
        if row.try_get_by_index::<bool>(0).unwrap() {
            return;
        }
        assert!(Instant::now() < deadline, "waited 10 s for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn replay_paused(url: &str, paused: bool) {
    let db = connect(url).await.unwrap();
    let call = if paused {
        "SELECT pg_wal_replay_pause()"
    } else {
        "SELECT pg_wal_replay_resume()"
    };
    db.execute_unprepared(call).await.unwrap();
    if paused {
        until(
            &db,
            "SELECT pg_get_wal_replay_pause_state() = 'paused'",
            "replay is paused",
        )
        .await;
    }
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_standby_never_lets_a_revoked_session_through() {
    let Some((s, a, b)) = two_handles(Duration::from_millis(300)).await else {
        return;
    };
    let (_, token) = sign_in(&a, "paused").await;
    b.validate_session(&token, CLIENT).await.unwrap();

    let _resume = ResumeReplay(s.url.clone());
    replay_paused(&s.url, true).await;
    let to_primary = b.db().standby_stats().unwrap().primary;
    // A's wait for the standby runs out; the logout is committed anyway.
    a.logout(&token).await.unwrap();
    assert!(matches!(
        b.validate_session(&token, CLIENT).await,
        Err(Error::Revoked)
    ));
    assert!(matches!(
        a.validate_session(&token, CLIENT).await,
        Err(Error::Revoked)
    ));
    assert!(
        b.db().standby_stats().unwrap().primary > to_primary,
        "the primary answered while the standby was paused"
    );
    // A session created meanwhile validates too (the standby has no row).
    let (_, fresh) = sign_in(&a, "meanwhile").await;
    b.validate_session(&fresh, CLIENT).await.unwrap();

    replay_paused(&s.url, false).await;
    s.caught_up().await;
    let before = served(b.db());
    b.validate_session(&fresh, CLIENT).await.unwrap();
    assert!(
        served(b.db()) > before,
        "the standby serves again once it caught up"
    );
    assert!(matches!(
        b.validate_session(&token, CLIENT).await,
        Err(Error::Revoked)
    ));
    s.drop().await;
}

#[tokio::test]
async fn a_read_url_beside_a_database_other_than_postgres_is_refused() {
    let sqlite = connect("sqlite::memory:").await.unwrap();
    let err = Gatehouse::builder(sqlite)
        .config(&Config::from_values(HMAC_HEX, DATA_HEX).unwrap())
        .read_url("postgres://127.0.0.1:5433/app")
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                var: "DATABASE_READ_URL",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_from_the_standby_and_names_a_read_url_it_cannot_reach() {
    use crate::operator::{create_user, expect, json, run_cmd, stderr};
    let Some(s) = Standby::start().await else {
        return;
    };
    Migrator::up(&s.primary.db, None).await.unwrap();
    create_user(&s.primary, "listed", &[]);
    s.caught_up().await;
    let mut list = crate::operator::gatehouse(&s.primary);
    list.env("DATABASE_READ_URL", &s.url)
        .args(["user", "list", "--format", "json"]);
    let listed = json(&run_cmd(&mut list, ""));
    assert_eq!(listed["users"][0]["username"], "listed", "{listed}");

    let mut unreachable = crate::operator::gatehouse(&s.primary);
    unreachable
        .env(
            "DATABASE_READ_URL",
            "postgres://postgres:hunter2@127.0.0.1:1/none",
        )
        .args(["user", "list"]);
    let out = run_cmd(&mut unreachable, "");
    expect(&out, 2);
    let message = stderr(&out);
    assert!(message.contains("DATABASE_READ_URL"), "{message}");
    assert!(
        !message.contains("hunter2"),
        "the password stays hidden: {message}"
    );
    s.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_url_that_is_not_a_standby_is_refused() {
    let Some(s) = Standby::start().await else {
        return;
    };
    Migrator::up(&s.primary.db, None).await.unwrap();
    let err = handle(&s.primary.url, s.primary.url.clone(), DEFAULT_WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config { var: "DATABASE_READ_URL", reason } if reason.contains("not in recovery")),
        "{err}"
    );
    s.drop().await;
}

/// Stops the standby's walreceiver and returns once the standby shows none
/// streaming. Its walsender on the primary is ended twice: the standby
/// reconnects at once after the first loss, and only after
/// `wal_retrieve_retry_interval` (5 s) after the second.
async fn cut_the_stream(s: &Standby) {
    for _ in 0..2 {
        s.primary
            .db
            .execute_unprepared("SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let standby = connect(&s.url).await.unwrap();
    until(
        &standby,
        "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')",
        "the walreceiver stopped streaming",
    )
    .await;
    standby.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_cut_off_from_the_primary_never_lets_a_revoked_session_through() {
    let Some((s, a, b)) = two_handles(Duration::from_millis(300)).await else {
        return;
    };
    let (_, token) = sign_in(&a, "cut").await;
    b.validate_session(&token, CLIENT).await.unwrap();
    cut_the_stream(&s).await;
    // The standby cannot receive the logout; A's wait runs out.
    a.logout(&token).await.unwrap();
    assert!(matches!(
        b.validate_session(&token, CLIENT).await,
        Err(Error::Revoked)
    ));
    s.caught_up().await;
    s.drop().await;
}

/// A TCP proxy to `target` that can be cut: every connection through it,
/// open or new, ends.
struct Proxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                links.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { port, task }
    }

    /// Ends the listener and, with it, every connection it carries.
    fn cut(&self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_that_goes_away_costs_a_bounded_wait_then_the_primary_answers() {
    let Some(s) = Standby::start().await else {
        return;
    };
    Migrator::up(&s.primary.db, None).await.unwrap();
    s.caught_up().await;
    let proxy = Proxy::start("127.0.0.1:5433").await;
    let name = s.url.rsplit('/').next().unwrap();
    let gate = handle(
        &s.primary.url,
        format!("postgres://postgres@127.0.0.1:{}/{name}", proxy.port),
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    let (_, token) = sign_in(&gate, "away").await;
    gate.validate_session(&token, CLIENT).await.unwrap();
    proxy.cut();
    // The first call finds the standby gone (within the pool's bounded
    // connect); the next ones leave it alone and ask the primary.
    let started = Instant::now();
    gate.logout(&token).await.unwrap();
    assert!(matches!(
        gate.validate_session(&token, CLIENT).await,
        Err(Error::Revoked)
    ));
    let (_, other) = sign_in(&gate, "after").await;
    gate.validate_session(&other, CLIENT).await.unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the calls after the standby went away took {took:?}"
    );
    s.drop().await;
}
