//! Key records: one active key per type, rotation, compromised keys refused.

use entity::sea_orm_active_enums::{KeyStatus, KeyType};
use gatehouse::{Error, keys};

use crate::support::TestDb;

backend_tests!(run_migrated: configured_key_is_recorded_once, new_key_rotates_the_old_one_out, retired_keys_are_refused);

async fn configured_key_is_recorded_once(t: TestDb) {
    let first = keys::ensure_active(&t.db, KeyType::Session, &"a".repeat(64), "HMAC-SHA256")
        .await
        .unwrap();
    let again = keys::ensure_active(&t.db, KeyType::Session, &"a".repeat(64), "HMAC-SHA256")
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!((first.version, first.status), (1, KeyStatus::Active));
    // Another type has its own versions.
    let data = keys::ensure_active(&t.db, KeyType::Data, &"a".repeat(64), "AES-256-GCM")
        .await
        .unwrap();
    assert_eq!(data.version, 1);
    assert_eq!(t.count("encryption_keys").await, 2);
}

async fn new_key_rotates_the_old_one_out(t: TestDb) {
    let v1 = keys::ensure_active(&t.db, KeyType::Session, &"a".repeat(64), "HMAC-SHA256")
        .await
        .unwrap();
    let v2 = keys::ensure_active(&t.db, KeyType::Session, &"b".repeat(64), "HMAC-SHA256")
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_ne!(v1.id, v2.id);
    assert_eq!(
        t.count("encryption_keys WHERE key_type = 'session' AND status = 'active'")
            .await,
        1
    );
    assert_eq!(
        t.count("encryption_keys WHERE key_type = 'session' AND status = 'rotated' AND rotated_at IS NOT NULL AND version = 1").await,
        1
    );
    assert_eq!(
        keys::active(&t.db, KeyType::Session)
            .await
            .unwrap()
            .unwrap()
            .id,
        v2.id
    );
}

async fn retired_keys_are_refused(t: TestDb) {
    keys::ensure_active(&t.db, KeyType::Data, &"a".repeat(64), "AES-256-GCM")
        .await
        .unwrap();
    let v2 = keys::ensure_active(&t.db, KeyType::Data, &"b".repeat(64), "AES-256-GCM")
        .await
        .unwrap();
    let back = keys::ensure_active(&t.db, KeyType::Data, &"a".repeat(64), "AES-256-GCM")
        .await
        .unwrap_err();
    assert!(
        matches!(back, Error::Integrity(ref m) if m.contains("rotated out")),
        "{back}"
    );
    keys::mark_compromised(&t.db, v2.id, None, "leaked in a log")
        .await
        .unwrap();
    let err = keys::ensure_active(&t.db, KeyType::Data, &"b".repeat(64), "AES-256-GCM")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Integrity(ref m) if m.contains("compromised")),
        "{err}"
    );
    assert_eq!(t.count("encryption_keys WHERE status = 'active'").await, 0);
}
