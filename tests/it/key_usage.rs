//! API keys without a per-minute limit: verification is two reads and writes
//! the use at most once per interval, every rule still checked on every call,
//! usage counts that add up across processes; keys with a limit keep their
//! exact window; the migration that makes the limit optional keeps every key.

use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use gatehouse::Error;
use gatehouse::api_keys::{self, KeyUsage, NewApiKey};
use gatehouse_entity::{api_keys as keys, users};
use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use uuid::Uuid;

use crate::counting::{Call, Counting};
use crate::support::{TestDb, insert_user};

backend_tests!(run_migrated:
    unlimited_keys_write_their_use_once_per_interval,
    every_rule_holds_between_writes,
    uses_from_several_processes_add_up,
    keys_with_a_limit_count_every_use_whatever_the_interval,
);
backend_tests!(run_empty: the_optional_limit_migration_keeps_every_key);

const IP: &str = "203.0.113.9";
const MIGRATION: &str = "m20261207_000001_allow_unlimited_api_keys";

fn start() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// An owner holding `users.read` and a key for it without a per-minute limit.
async fn unlimited_key(t: &TestDb, now: DateTime<Utc>) -> (Uuid, String) {
    let owner = insert_user(t, "owner").await;
    crate::api_keys::grant(t, owner.id, "user", None).await;
    let issued = api_keys::issue(
        &t.db,
        NewApiKey {
            user_id: owner.id,
            name: "ingest",
            scopes: &["users.read"],
            rate_limit_per_minute: None,
            expires_at: None,
        },
        now,
    )
    .await
    .unwrap();
    assert_eq!(issued.record.rate_limit_per_minute, None);
    (issued.record.id, issued.key.expose().to_owned())
}

async fn stored(t: &TestDb, id: Uuid) -> keys::Model {
    keys::Entity::find_by_id(id)
        .one(&t.db)
        .await
        .unwrap()
        .expect("the key row exists")
}

fn writes(calls: &[Call]) -> usize {
    calls
        .iter()
        .filter(|c| !matches!(c, Call::Query(_)))
        .count()
}

async fn unlimited_keys_write_their_use_once_per_interval(t: TestDb) {
    let t0 = start();
    let (id, key) = unlimited_key(&t, t0).await;
    let usage = KeyUsage::at_most_every(Duration::seconds(60));
    let counted = Counting::new(t.db.clone());

    // The first use is due: one UPDATE after the two reads.
    api_keys::verify_with(&counted, &usage, &key, Some(IP), t0)
        .await
        .unwrap();
    let calls = counted.take();
    assert_eq!(writes(&calls), 1, "{calls:?}");
    let row = stored(&t, id).await;
    assert_eq!((row.usage_count, row.last_used_at), (1, Some(t0)));
    assert_eq!(row.last_used_ip.as_deref(), Some(IP));

    // Within the interval: reads only, the uses counted in memory.
    for s in 1..=10 {
        api_keys::verify_with(
            &counted,
            &usage,
            &key,
            Some("198.51.100.7"),
            t0 + Duration::seconds(s * 5),
        )
        .await
        .unwrap();
    }
    let calls = counted.take();
    assert_eq!(writes(&calls), 0, "{calls:?}");
    assert_eq!(calls.len(), 20, "two reads per verification: {calls:?}");
    assert_eq!(stored(&t, id).await.usage_count, 1);
    assert_eq!(usage.unwritten(), 10);

    // Due again: the use and the ten before it are written at once.
    let t1 = t0 + Duration::seconds(60);
    api_keys::verify_with(&counted, &usage, &key, Some("198.51.100.7"), t1)
        .await
        .unwrap();
    assert_eq!(writes(&counted.take()), 1);
    let row = stored(&t, id).await;
    assert_eq!((row.usage_count, row.last_used_at), (12, Some(t1)));
    assert_eq!(row.last_used_ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(usage.unwritten(), 0);

    // A flush writes what is left; nothing is counted twice.
    for s in 1..=3 {
        api_keys::verify_with(&t.db, &usage, &key, None, t1 + Duration::seconds(s))
            .await
            .unwrap();
    }
    assert_eq!(usage.flush(&t.db).await.unwrap(), 3);
    assert_eq!(usage.flush(&t.db).await.unwrap(), 0);
    let row = stored(&t, id).await;
    assert_eq!((row.usage_count, row.last_used_at), (15, Some(t1)));

    // The plain `verify` writes every use.
    api_keys::verify(&counted, &key, None, t1 + Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(writes(&counted.take()), 1);
    assert_eq!(stored(&t, id).await.usage_count, 16);
}

async fn every_rule_holds_between_writes(t: TestDb) {
    let t0 = start();
    let (id, key) = unlimited_key(&t, t0).await;
    let usage = KeyUsage::at_most_every(Duration::hours(1));
    let at = |s: i64| t0 + Duration::seconds(s);
    api_keys::verify_with(&t.db, &usage, &key, None, at(0))
        .await
        .unwrap();

    // An operator lock, then its release, each seen by the next call.
    let owner = stored(&t, id).await.user_id;
    let set_locked = |locked: bool| {
        let db = t.db.clone();
        async move {
            users::ActiveModel {
                id: Set(owner),
                is_locked: Set(locked),
                ..Default::default()
            }
            .update(&db)
            .await
            .unwrap();
        }
    };
    set_locked(true).await;
    let err = api_keys::verify_with(&t.db, &usage, &key, None, at(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Locked { until: None }), "{err}");
    set_locked(false).await;
    api_keys::verify_with(&t.db, &usage, &key, None, at(2))
        .await
        .unwrap();

    // The owner losing the permission narrows the key at once.
    crate::api_keys::revoke_grant(&t, owner, "user").await;
    let narrowed = api_keys::verify_with(&t.db, &usage, &key, None, at(3))
        .await
        .unwrap();
    assert!(narrowed.scopes.is_empty(), "{narrowed:?}");

    // Revocation is refused on the very next call, inside the interval.
    assert!(api_keys::revoke(&t.db, id, at(4)).await.unwrap());
    let err = api_keys::verify_with(&t.db, &usage, &key, None, at(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err}");
    // Refusals count no use.
    assert_eq!(usage.unwritten(), 2);
    assert_eq!(usage.flush(&t.db).await.unwrap(), 2);
    assert_eq!(stored(&t, id).await.usage_count, 3);

    // An expired key, also inside the interval.
    let t1 = start();
    let owner2 = insert_user(&t, "owner2").await;
    crate::api_keys::grant(&t, owner2.id, "user", None).await;
    let expiring = api_keys::issue(
        &t.db,
        NewApiKey {
            user_id: owner2.id,
            name: "short",
            scopes: &["users.read"],
            rate_limit_per_minute: None,
            expires_at: Some(t1 + Duration::seconds(30)),
        },
        t1,
    )
    .await
    .unwrap();
    let expiring = expiring.key.expose().to_owned();
    api_keys::verify_with(&t.db, &usage, &expiring, None, t1 + Duration::seconds(29))
        .await
        .unwrap();
    let err = api_keys::verify_with(&t.db, &usage, &expiring, None, t1 + Duration::seconds(30))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Expired), "{err}");
}

async fn uses_from_several_processes_add_up(t: TestDb) {
    const PROCESSES: usize = 3;
    const PER_PROCESS: i64 = 40;
    let t0 = start();
    let (id, key) = unlimited_key(&t, t0).await;
    let key = Arc::new(key);
    let mut tasks = Vec::new();
    for _ in 0..PROCESSES {
        let usage = KeyUsage::at_most_every(Duration::seconds(10));
        let db = t.db.clone();
        let key = Arc::clone(&key);
        tasks.push(tokio::spawn(async move {
            // Four concurrent requests per process over 80 s of clock time.
            let mut requests = Vec::new();
            for lane in 0..4 {
                let (db, key, usage) = (db.clone(), Arc::clone(&key), usage.clone());
                requests.push(tokio::spawn(async move {
                    for n in 0..PER_PROCESS / 4 {
                        let now = t0 + Duration::seconds(n * 8 + lane);
                        api_keys::verify_with(&db, &usage, &key, Some(IP), now)
                            .await
                            .unwrap();
                    }
                }));
            }
            for request in requests {
                request.await.unwrap();
            }
            usage
        }));
    }
    let mut usages = Vec::new();
    for task in tasks {
        usages.push(task.await.unwrap());
    }
    let written_before_flush = stored(&t, id).await.usage_count;
    assert!(
        written_before_flush < PROCESSES as i64 * PER_PROCESS,
        "some uses were held back: {written_before_flush}"
    );
    for usage in &usages {
        usage.flush(&t.db).await.unwrap();
    }
    assert_eq!(
        stored(&t, id).await.usage_count,
        PROCESSES as i64 * PER_PROCESS,
        "every use counted exactly once"
    );
}

async fn keys_with_a_limit_count_every_use_whatever_the_interval(t: TestDb) {
    let t0 = start();
    let owner = insert_user(&t, "owner").await;
    crate::api_keys::grant(&t, owner.id, "user", None).await;
    let issued = api_keys::issue(
        &t.db,
        NewApiKey {
            user_id: owner.id,
            name: "limited",
            scopes: &["users.read"],
            rate_limit_per_minute: Some(3),
            expires_at: None,
        },
        t0,
    )
    .await
    .unwrap();
    let key = issued.key.expose();
    let usage = KeyUsage::at_most_every(Duration::hours(1));
    let window = t0 - Duration::seconds(t0.timestamp().rem_euclid(60));
    for s in 0..3 {
        api_keys::verify_with(&t.db, &usage, key, None, window + Duration::seconds(s))
            .await
            .unwrap();
    }
    let err = api_keys::verify_with(&t.db, &usage, key, None, window + Duration::seconds(3))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err}");
    assert_eq!(stored(&t, issued.record.id).await.usage_count, 3);
    assert_eq!(usage.unwritten(), 0, "limited keys never wait in memory");
}

async fn the_optional_limit_migration_keeps_every_key(t: TestDb) {
    let position = Migrator::migrations()
        .iter()
        .position(|m| m.name() == MIGRATION)
        .expect("the migration is registered");
    Migrator::up(&t.db, Some(u32::try_from(position).unwrap()))
        .await
        .unwrap();
    let owner = insert_user(&t, "owner").await;
    let insert = |limit: Option<i32>| {
        let id = Uuid::now_v7();
        let row = keys::ActiveModel {
            id: Set(id),
            user_id: Set(owner.id),
            name: Set("k".into()),
            key_prefix: Set("ghk_abcdefgh".into()),
            key_hash: Set(format!("{:064}", id.as_u128())),
            scopes: Set(serde_json::json!(["users.read"])),
            rate_limit_per_minute: Set(limit),
            usage_count: Set(7),
            last_used_at: Set(None),
            last_used_ip: Set(None),
            expires_at: Set(None),
            is_revoked: Set(false),
            revoked_at: Set(None),
            created_at: Set(Utc::now()),
            updated_at: Set(Utc::now()),
            rate_window_minute: Set(29_000_000),
            rate_window_count: Set(2),
        };
        let db = t.db.clone();
        async move {
            keys::Entity::insert(row)
                .exec_without_returning(&db)
                .await
                .map(|_| id)
        }
    };
    let limited = insert(Some(5)).await.unwrap();
    assert!(
        insert(None).await.is_err(),
        "before the migration every key has a limit"
    );

    if t.backend == crate::support::Backend::Sqlite {
        // SQLite rebuilds the table: an application's table that refers to
        // it stops the migration before anything changes.
        use sea_orm::ConnectionTrait;
        t.db.execute_unprepared(
            "CREATE TABLE app_key_notes (id INTEGER PRIMARY KEY, \
             key_id TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE)",
        )
        .await
        .unwrap();
        t.db.execute_unprepared("INSERT INTO app_key_notes (key_id) SELECT id FROM api_keys")
            .await
            .unwrap();
        let refused = Migrator::up(&t.db, None).await.unwrap_err().to_string();
        assert!(refused.contains("refers to api_keys"), "{refused}");
        assert_eq!(t.count("app_key_notes").await, 1, "the note is kept");
        assert!(insert(None).await.is_err(), "nothing changed");
        t.db.execute_unprepared("DROP TABLE app_key_notes")
            .await
            .unwrap();
    }

    Migrator::up(&t.db, None).await.unwrap();
    let row = stored(&t, limited).await;
    assert_eq!(
        (
            row.rate_limit_per_minute,
            row.usage_count,
            row.rate_window_minute,
            row.rate_window_count
        ),
        (Some(5), 7, 29_000_000, 2),
        "the key kept every value"
    );
    let unlimited = insert(None).await.unwrap();
    assert!(
        insert(Some(0)).await.is_err(),
        "a limit, when set, is still positive"
    );
    let live = gatehouse::schema::introspect(&t.db).await.unwrap();
    assert!(live.tables["api_keys"].is_indexed("key_hash"));
    assert!(live.tables["api_keys"].is_indexed("user_id"));
    let drift = gatehouse::schema::drift(t.db_backend(), &live);
    assert!(drift.is_empty(), "{drift:?}");

    Migrator::down(&t.db, Some(1)).await.unwrap();
    assert_eq!(stored(&t, unlimited).await.rate_limit_per_minute, Some(60));
    assert_eq!(stored(&t, limited).await.rate_limit_per_minute, Some(5));
    assert!(insert(None).await.is_err(), "down puts the NOT NULL back");
    Migrator::up(&t.db, None).await.unwrap();
    assert!(insert(None).await.is_ok(), "and up takes it away again");
}
