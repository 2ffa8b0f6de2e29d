//! Key records: one active key per type, recorded at the first start and
//! never rotated in by a start; explicit, race-free rotation; retired keys
//! refused.

use std::sync::Arc;

use gatehouse::sessions::{SessionPolicy, Sessions};
use gatehouse::{Config, Error, keys};
use gatehouse_entity::sea_orm_active_enums::{KeyStatus, KeyType};

use crate::support::TestDb;

backend_tests!(run_migrated:
    configured_key_is_recorded_once,
    a_different_key_is_refused_and_nothing_changes,
    retired_keys_are_refused,
    thirty_concurrent_first_starts_record_one_version,
    concurrent_rotations_one_wins,
);

const HMAC: &str = "HMAC-SHA256";
const AES: &str = "AES-256-GCM";

async fn configured_key_is_recorded_once(t: TestDb) {
    let first = keys::ensure_configured(&t.db, KeyType::Session, &"a".repeat(64), HMAC)
        .await
        .unwrap();
    let again = keys::ensure_configured(&t.db, KeyType::Session, &"a".repeat(64), HMAC)
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!((first.version, first.status), (1, KeyStatus::Active));
    // Another type has its own versions.
    let data = keys::ensure_configured(&t.db, KeyType::Data, &"a".repeat(64), AES)
        .await
        .unwrap();
    assert_eq!(data.version, 1);
    assert_eq!(t.count("encryption_keys").await, 2);
}

/// All of `encryption_keys`, as text, to compare before and after.
async fn key_rows(t: &TestDb) -> Vec<String> {
    keys::list(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|k| format!("{k:?}"))
        .collect()
}

async fn a_different_key_is_refused_and_nothing_changes(t: TestDb) {
    let v1 = keys::ensure_configured(&t.db, KeyType::Session, &"a".repeat(64), HMAC)
        .await
        .unwrap();
    let before = key_rows(&t).await;
    let err = keys::ensure_configured(&t.db, KeyType::Session, &"b".repeat(64), HMAC)
        .await
        .unwrap_err();
    let Error::Config { var, ref reason } = err else {
        panic!("expected a configuration error, got {err}");
    };
    assert_eq!(var, "HMAC_KEY");
    assert!(reason.contains("version 1"), "{reason}");
    assert!(
        reason.contains(&v1.activated_at.format("%Y-%m-%d").to_string()),
        "{reason}"
    );
    assert!(reason.contains("gatehouse keys rotate hmac"), "{reason}");
    assert!(
        !reason.contains(&"b".repeat(16)),
        "no fingerprint: {reason}"
    );
    assert_eq!(key_rows(&t).await, before, "nothing was rotated");

    let data_err = keys::ensure_configured(&t.db, KeyType::Data, &"c".repeat(64), AES)
        .await
        .unwrap();
    assert_eq!(data_err.version, 1);
    let err = keys::ensure_configured(&t.db, KeyType::Data, &"d".repeat(64), AES)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config { var: "DATA_ENCRYPTION_KEY", ref reason } if reason.contains("gatehouse keys rotate data")),
        "{err}"
    );
    assert_eq!(
        keys::active(&t.db, KeyType::Session)
            .await
            .unwrap()
            .unwrap()
            .id,
        v1.id
    );
}

async fn retired_keys_are_refused(t: TestDb) {
    let v1 = keys::ensure_configured(&t.db, KeyType::Data, &"a".repeat(64), AES)
        .await
        .unwrap();
    let v2 = keys::rotate(
        &t.db,
        KeyType::Data,
        &"b".repeat(64),
        AES,
        Some(v1.id),
        None,
        "scheduled",
    )
    .await
    .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(
        t.count("encryption_keys WHERE key_type = 'data' AND status = 'rotated' AND rotated_at IS NOT NULL AND version = 1").await,
        1
    );
    // The rotated-out key neither starts nor comes back by rotation.
    let back = keys::ensure_configured(&t.db, KeyType::Data, &"a".repeat(64), AES)
        .await
        .unwrap_err();
    assert!(
        matches!(back, Error::Config { var: "DATA_ENCRYPTION_KEY", ref reason } if reason.contains("rotated out") && reason.contains("version 2")),
        "{back}"
    );
    let again = keys::rotate(
        &t.db,
        KeyType::Data,
        &"a".repeat(64),
        AES,
        Some(v2.id),
        None,
        "back",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            again,
            Error::Conflict {
                field: "key_version",
                ..
            }
        ),
        "{again}"
    );
    keys::mark_compromised(&t.db, v2.id, None, "leaked in a log")
        .await
        .unwrap();
    let err = keys::ensure_configured(&t.db, KeyType::Data, &"b".repeat(64), AES)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config { ref reason, .. } if reason.contains("compromised") && reason.contains("--retire-previous")),
        "{err}"
    );
    // A start never records a new key once keys of the type exist.
    let err = keys::ensure_configured(&t.db, KeyType::Data, &"c".repeat(64), AES)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
    assert_eq!(t.count("encryption_keys WHERE status = 'active'").await, 0);
    assert_eq!(t.count("encryption_keys").await, 2);
}

async fn thirty_concurrent_first_starts_record_one_version(t: TestDb) {
    const HMAC_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const DATA_HEX: &str = "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40";
    let config = Arc::new(Config::from_values(HMAC_HEX, DATA_HEX).unwrap());
    let barrier = Arc::new(tokio::sync::Barrier::new(30));
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (db, config, barrier) = (t.db.clone(), config.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            Sessions::load(&db, &config.hmac_key, SessionPolicy::default())
                .await
                .map(|s| s.key_id())
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(
            task.await
                .unwrap()
                .unwrap_or_else(|e| panic!("a start failed: {e}")),
        );
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every start found the same record");
    assert_eq!(t.count("encryption_keys").await, 1);
    assert_eq!(
        t.count("encryption_keys WHERE version = 1 AND status = 'active'")
            .await,
        1
    );
}

async fn concurrent_rotations_one_wins(t: TestDb) {
    let v1 = keys::ensure_configured(&t.db, KeyType::Session, &"a".repeat(64), HMAC)
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let (db, barrier) = (t.db.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let fingerprint = format!("{:02x}", 0xb0 + i).repeat(32);
            barrier.wait().await;
            keys::rotate(
                &db,
                KeyType::Session,
                &fingerprint,
                HMAC,
                Some(v1.id),
                None,
                "race",
            )
            .await
        }));
    }
    let mut won = Vec::new();
    let mut lost = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(key) => won.push(key),
            Err(err) => lost.push(err),
        }
    }
    assert_eq!(won.len(), 1, "exactly one rotation wins: {lost:?}");
    assert_eq!(won[0].version, 2);
    for err in &lost {
        assert!(
            matches!(err, Error::Conflict { field: "key_version", message } if message.contains("gatehouse keys list")),
            "{err:?}"
        );
    }
    assert_eq!(t.count("encryption_keys").await, 2);
    assert_eq!(t.count("encryption_keys WHERE status = 'active'").await, 1);
    assert_eq!(
        keys::active(&t.db, KeyType::Session)
            .await
            .unwrap()
            .unwrap()
            .id,
        won[0].id
    );
}
