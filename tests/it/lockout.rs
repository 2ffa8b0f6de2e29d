//! Lockout triggers at the N-th failure of one factor within the window,
//! expires, and keeps separate counters per factor.

use chrono::{Duration, Utc};
use entity::sea_orm_active_enums::AttemptKind;
use gatehouse::Error;
use gatehouse::lockout::{
    Failure, LockoutPolicy, ensure_not_locked, record_failure, record_success,
};
use sea_orm::EntityTrait;

use crate::support::{TestDb, insert_user};

backend_tests!(run_migrated: locks_at_the_fifth_failure_and_expires, factors_count_separately, unknown_identifiers_are_recorded_without_a_user);

fn failure(user_id: uuid::Uuid, kind: AttemptKind) -> Failure<'static> {
    Failure {
        user_id: Some(user_id),
        identifier: "someone",
        kind,
        ip_address: Some("198.51.100.7"),
        user_agent: None,
        reason: "bad secret",
    }
}

async fn reload(t: &TestDb, id: uuid::Uuid) -> entity::users::Model {
    entity::users::Entity::find_by_id(id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap()
}

async fn locks_at_the_fifth_failure_and_expires(t: TestDb) {
    let policy = LockoutPolicy::default();
    let user = insert_user(&t, "mallory").await;
    let start = Utc::now();
    for i in 0..4 {
        let locked = record_failure(
            &t.db,
            &policy,
            failure(user.id, AttemptKind::Password),
            start + Duration::seconds(i),
        )
        .await
        .unwrap();
        assert_eq!(locked, None, "locked after {} failures", i + 1);
    }
    assert_eq!(reload(&t, user.id).await.failed_login_count, 4);
    let at = start + Duration::seconds(4);
    let until = record_failure(&t.db, &policy, failure(user.id, AttemptKind::Password), at)
        .await
        .unwrap();
    assert_eq!(until, Some(at + Duration::minutes(15)));
    let user = reload(&t, user.id).await;
    assert!(matches!(
        ensure_not_locked(&user, at + Duration::minutes(14)),
        Err(Error::Locked { until: Some(_) })
    ));
    assert!(
        ensure_not_locked(&user, at + Duration::minutes(16)).is_ok(),
        "the lock expires"
    );
    // After the lock ends the count starts afresh: one more failure does not relock.
    let after = at + Duration::minutes(16);
    assert_eq!(
        record_failure(
            &t.db,
            &policy,
            failure(user.id, AttemptKind::Password),
            after
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(t.count("failed_login_attempts").await, 6);
}

async fn factors_count_separately(t: TestDb) {
    let policy = LockoutPolicy::default();
    let user = insert_user(&t, "eve").await;
    let now = Utc::now();
    for i in 0..4 {
        for kind in [AttemptKind::Password, AttemptKind::Otp] {
            assert_eq!(
                record_failure(
                    &t.db,
                    &policy,
                    failure(user.id, kind),
                    now + Duration::seconds(i)
                )
                .await
                .unwrap(),
                None
            );
        }
    }
    assert!(
        ensure_not_locked(&reload(&t, user.id).await, now + Duration::seconds(5)).is_ok(),
        "8 failures over two factors do not lock"
    );
    let locked = record_failure(
        &t.db,
        &policy,
        failure(user.id, AttemptKind::Otp),
        now + Duration::seconds(5),
    )
    .await
    .unwrap();
    assert!(locked.is_some(), "the fifth OTP failure locks");
    // A successful login clears the password counter.
    record_success(
        &t.db,
        user.id,
        Some("198.51.100.7"),
        now + Duration::minutes(30),
    )
    .await
    .unwrap();
    let user = reload(&t, user.id).await;
    assert_eq!(user.failed_login_count, 0);
    assert_eq!(user.last_login_ip.as_deref(), Some("198.51.100.7"));
}

async fn unknown_identifiers_are_recorded_without_a_user(t: TestDb) {
    let policy = LockoutPolicy::default();
    let unknown = Failure {
        user_id: None,
        identifier: "nobody@example.com",
        kind: AttemptKind::Password,
        ip_address: None,
        user_agent: None,
        reason: "unknown identifier",
    };
    assert_eq!(
        record_failure(&t.db, &policy, unknown, Utc::now())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        t.count(
            "failed_login_attempts WHERE user_id IS NULL AND identifier = 'nobody@example.com'"
        )
        .await,
        1
    );
}
