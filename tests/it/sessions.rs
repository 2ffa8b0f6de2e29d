//! Sessions: sealed rows whose tampering is caught and audited, idle and
//! absolute timeouts, revocation, risk scoring and batched cleanup.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use gatehouse::ClientInfo;
use gatehouse::lockout::{Failure, LockoutPolicy, record_failure};
use gatehouse::sessions::{SessionPolicy, SessionToken, Sessions};
use gatehouse::{Config, Error};
use gatehouse_entity::sea_orm_active_enums::{AttemptKind, SessionEvent};
use gatehouse_entity::{session_audit_log, sessions};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::counting::{Call, Counting};
use crate::support::{TestDb, insert_user};

backend_tests!(run_migrated:
    valid_sessions_validate_and_record_use,
    tampered_rows_fail_integrity_and_are_revoked,
    idle_and_absolute_timeouts_expire_sessions,
    revoked_and_unknown_tokens_fail,
    revoke_all_ends_every_session_of_a_user,
    risk_rises_with_changes_and_failures_and_revokes,
    cleanup_removes_stale_sessions_in_batches,
    legacy_sessions_are_refused,
    sessions_under_a_retired_key_fail,
    hostile_input_is_refused_and_writes_nothing,
    validation_is_one_query_and_one_update,
    activity_is_recorded_once_per_interval_and_idle_is_exact_to_within_it,
);

const HMAC_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OTHER_HMAC_HEX: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f";
const DATA_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

const IP: &str = "198.51.100.7";
const OTHER_IP: &str = "203.0.113.50";
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0";
const OTHER_UA: &str = "curl/8.5.0";

fn config() -> Config {
    Config::from_values(HMAC_HEX, DATA_B64).unwrap()
}

fn client<'a>(ip: &'a str, user_agent: &'a str) -> ClientInfo<'a> {
    ClientInfo {
        ip: Some(ip),
        user_agent: Some(user_agent),
    }
}

fn start() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

async fn row(t: &TestDb, id: Uuid) -> sessions::Model {
    sessions::Entity::find_by_id(id)
        .one(&t.db)
        .await
        .unwrap()
        .expect("session row exists")
}

async fn audit_rows(t: &TestDb, event: SessionEvent) -> Vec<session_audit_log::Model> {
    session_audit_log::Entity::find()
        .filter(session_audit_log::Column::Event.eq(event))
        .order_by_asc(session_audit_log::Column::Id)
        .all(&t.db)
        .await
        .unwrap()
}

async fn valid_sessions_validate_and_record_use(t: TestDb) {
    let config = config();
    let service = Sessions::load(&t.db, &config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let alice = insert_user(&t, "alice").await;
    let now = start();
    let created = service
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();
    let token = created.token.expose().to_owned();
    assert!(token.len() >= 43, "at least 256 bits in base64url");
    assert!(
        !format!("{created:?}").contains(&token),
        "Debug shows the token"
    );

    let stored = row(&t, created.session.id).await;
    assert_eq!(
        stored, created.session,
        "the returned row is what was stored"
    );
    assert_eq!(
        stored.token_hash,
        crate::support::sha256_hex(token.as_bytes())
    );
    assert_eq!(stored.security_version, 1);
    assert_eq!(stored.encryption_key_id, Some(service.key_id()));
    assert_eq!(stored.expires_at, now + Duration::hours(12));
    assert_eq!(stored.security_hash.as_deref().map(str::len), Some(64));
    assert_eq!(stored.created_ip_hash.as_deref().map(str::len), Some(64));
    assert_ne!(stored.created_ip_hash.as_deref(), Some(IP));
    assert_eq!(
        t.count(&format!("sessions WHERE token_hash = '{token}'"))
            .await,
        0,
        "the token itself is not stored"
    );
    let created_audit = audit_rows(&t, SessionEvent::Created).await;
    assert_eq!(created_audit.len(), 1);
    assert_eq!(created_audit[0].user_id, Some(alice.id));

    let later = now + Duration::minutes(10);
    let valid = service
        .validate(&t.db, &token, client(IP, UA), later)
        .await
        .unwrap();
    assert_eq!(valid.id, created.session.id);
    assert_eq!(valid.risk_score, 0);
    let stored = row(&t, created.session.id).await;
    assert_eq!(stored.last_activity_at, later);
    assert_eq!(stored.last_validated_at, Some(later));
    assert_eq!(stored, valid);
    // The IPv4-mapped IPv6 form is the same client.
    service
        .validate(
            &t.db,
            &token,
            client(&format!("::ffff:{IP}"), UA),
            later + Duration::minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(row(&t, created.session.id).await.risk_score, 0);
}

async fn tampered_rows_fail_integrity_and_are_revoked(t: TestDb) {
    let config = config();
    let service = Sessions::load(&t.db, &config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let alice = insert_user(&t, "alice").await;
    let mallory = insert_user(&t, "mallory").await;
    let now = start();
    let moved = service
        .create(&t.db, mallory.id, client(IP, UA), now)
        .await
        .unwrap();
    let extended = service
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();
    let unrevoked = service
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();

    // Mallory's session is moved to Alice; Alice's expiry is pushed out a year.
    sessions::Entity::update_many()
        .col_expr(sessions::Column::UserId, Expr::value(alice.id))
        .filter(sessions::Column::Id.eq(moved.session.id))
        .exec(&t.db)
        .await
        .unwrap();
    sessions::Entity::update_many()
        .col_expr(
            sessions::Column::ExpiresAt,
            Expr::value(now + Duration::days(365)),
        )
        .filter(sessions::Column::Id.eq(extended.session.id))
        .exec(&t.db)
        .await
        .unwrap();
    // A revoked session is switched back on.
    assert!(
        service
            .revoke(&t.db, unrevoked.session.id, "user_request", now)
            .await
            .unwrap()
    );
    sessions::Entity::update_many()
        .col_expr(sessions::Column::IsRevoked, Expr::value(false))
        .filter(sessions::Column::Id.eq(unrevoked.session.id))
        .exec(&t.db)
        .await
        .unwrap();

    let at = now + Duration::minutes(1);
    for created in [&moved, &extended, &unrevoked] {
        let err = service
            .validate(&t.db, created.token.expose(), client(IP, UA), at)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Integrity(_)), "{err}");
        let stored = row(&t, created.session.id).await;
        assert!(stored.is_revoked);
        assert_eq!(stored.revoked_reason.as_deref(), Some("tampered"));
        assert_eq!(stored.security_hash, None, "revocation clears the seal");
        // Once revoked it stays refused.
        let again = service
            .validate(&t.db, created.token.expose(), client(IP, UA), at)
            .await
            .unwrap_err();
        assert!(matches!(again, Error::Revoked), "{again}");
    }
    let tampered = audit_rows(&t, SessionEvent::TamperDetected).await;
    assert_eq!(tampered.len(), 3);
    let sessions: Vec<_> = tampered.iter().map(|a| a.session_id).collect();
    assert_eq!(
        sessions,
        vec![
            Some(moved.session.id),
            Some(extended.session.id),
            Some(unrevoked.session.id)
        ]
    );
}

async fn idle_and_absolute_timeouts_expire_sessions(t: TestDb) {
    let config = config();
    let policy = SessionPolicy {
        idle_timeout: Duration::minutes(10),
        absolute_timeout: Duration::hours(1),
        ..SessionPolicy::default()
    };
    let service = Sessions::load(&t.db, &config.hmac_key, policy)
        .await
        .unwrap();
    let alice = insert_user(&t, "alice").await;
    let now = start();
    let at = |m: i64| now + Duration::minutes(m);

    let idle = service
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();
    let token = idle.token.expose();
    // Each use moves the idle deadline: 9 + 10, then 18 + 10.
    for m in [9, 18] {
        service
            .validate(&t.db, token, client(IP, UA), at(m))
            .await
            .unwrap();
    }
    let err = service
        .validate(&t.db, token, client(IP, UA), at(28))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Expired), "idle: {err}");

    let busy = service
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();
    let token = busy.token.expose();
    for m in [9, 18, 27, 36, 45, 54, 59] {
        service
            .validate(&t.db, token, client(IP, UA), at(m))
            .await
            .unwrap();
    }
    let err = service
        .validate(&t.db, token, client(IP, UA), at(60))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Expired), "absolute: {err}");
    let stored = row(&t, busy.session.id).await;
    assert_eq!(
        stored.last_activity_at,
        at(59),
        "a refused validation records no use"
    );
    assert!(!stored.is_revoked);
}

async fn revoked_and_unknown_tokens_fail(t: TestDb) {
    let config = config();
    let service = Sessions::load(&t.db, &config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let alice = insert_user(&t, "alice").await;
    let now = start();
    let created = service
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();
    assert!(
        service
            .revoke(&t.db, created.session.id, "user_request", now)
            .await
            .unwrap()
    );
    assert!(
        !service
            .revoke(&t.db, created.session.id, "user_request", now)
            .await
            .unwrap(),
        "revoking twice changes nothing"
    );
    let err = service
        .validate(&t.db, created.token.expose(), client(IP, UA), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err}");
    let revoked = audit_rows(&t, SessionEvent::Revoked).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].reason.as_deref(), Some("user_request"));

    let unknown = SessionToken::generate();
    let err = service
        .validate(&t.db, unknown.expose(), client(IP, UA), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err}");
    let err = service
        .validate(&t.db, "not a token", client(IP, UA), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err}");
    let err = service
        .revoke(&t.db, Uuid::now_v7(), "user_request", now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");

    // Logout revokes by token.
    let other = service
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();
    service
        .logout(&t.db, other.token.expose(), now)
        .await
        .unwrap();
    assert_eq!(
        row(&t, other.session.id).await.revoked_reason.as_deref(),
        Some("logout")
    );
    let err = service
        .logout(&t.db, unknown.expose(), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err}");
}

async fn revoke_all_ends_every_session_of_a_user(t: TestDb) {
    let config = config();
    let service = Sessions::load(&t.db, &config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let alice = insert_user(&t, "alice").await;
    let bob = insert_user(&t, "bob").await;
    let now = start();
    let mut alices = Vec::new();
    for _ in 0..3 {
        alices.push(
            service
                .create(&t.db, alice.id, client(IP, UA), now)
                .await
                .unwrap(),
        );
    }
    let bobs = service
        .create(&t.db, bob.id, client(IP, UA), now)
        .await
        .unwrap();

    let kept = alices[0].session.id;
    let n = service
        .revoke_all(&t.db, alice.id, Some(kept), "signed_out_elsewhere", now)
        .await
        .unwrap();
    assert_eq!(n, 2);
    service
        .validate(&t.db, alices[0].token.expose(), client(IP, UA), now)
        .await
        .expect("the kept session stays valid");
    let n = service
        .revoke_all(&t.db, alice.id, None, "password_changed", now)
        .await
        .unwrap();
    assert_eq!(n, 1);
    for created in &alices {
        let err = service
            .validate(&t.db, created.token.expose(), client(IP, UA), now)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Revoked), "{err}");
    }
    service
        .validate(&t.db, bobs.token.expose(), client(IP, UA), now)
        .await
        .expect("another user's session is untouched");
    assert_eq!(audit_rows(&t, SessionEvent::Revoked).await.len(), 3);
    assert_eq!(
        t.count("sessions WHERE revoked_reason = 'password_changed'")
            .await,
        1
    );
}

fn failure(user_id: Uuid) -> Failure<'static> {
    Failure {
        user_id: Some(user_id),
        identifier: "alice",
        kind: AttemptKind::Password,
        ip_address: Some(OTHER_IP),
        user_agent: None,
        reason: "bad password",
    }
}

async fn risk_rises_with_changes_and_failures_and_revokes(t: TestDb) {
    let config = config();
    let service = Sessions::load(&t.db, &config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let lockout = LockoutPolicy::default();
    let alice = insert_user(&t, "alice").await;
    let now = start();
    // A failure before the session began does not count against it.
    record_failure(
        &t.db,
        &lockout,
        failure(alice.id),
        now - Duration::minutes(1),
    )
    .await
    .unwrap();
    let created = service
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();
    let token = created.token.expose();
    let at = |m: i64| now + Duration::minutes(m);

    let score = |s: sessions::Model| s.risk_score;
    assert_eq!(
        score(
            service
                .validate(&t.db, token, client(IP, UA), at(1))
                .await
                .unwrap()
        ),
        0
    );
    assert_eq!(
        score(
            service
                .validate(&t.db, token, client(OTHER_IP, UA), at(2))
                .await
                .unwrap()
        ),
        40,
        "IP change"
    );
    assert_eq!(
        score(
            service
                .validate(&t.db, token, client(IP, OTHER_UA), at(3))
                .await
                .unwrap()
        ),
        30,
        "user-agent change"
    );
    for m in [4, 5] {
        record_failure(&t.db, &lockout, failure(alice.id), at(m))
            .await
            .unwrap();
    }
    assert_eq!(
        score(
            service
                .validate(&t.db, token, client(IP, UA), at(6))
                .await
                .unwrap()
        ),
        20,
        "two recent failures"
    );
    assert_eq!(row(&t, created.session.id).await.risk_score, 20);
    // Failures older than the window stop counting.
    assert_eq!(
        score(
            service
                .validate(&t.db, token, client(IP, UA), at(21))
                .await
                .unwrap()
        ),
        0
    );
    // New IP and new user agent: 70, at the threshold.
    let err = service
        .validate(&t.db, token, client(OTHER_IP, OTHER_UA), at(22))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err}");
    let stored = row(&t, created.session.id).await;
    assert!(stored.is_revoked);
    assert_eq!(stored.revoked_reason.as_deref(), Some("risk"));
    let risky = audit_rows(&t, SessionEvent::RiskRevoked).await;
    assert_eq!(risky.len(), 1);
    assert_eq!(risky[0].risk_score, Some(70));
    assert_eq!(risky[0].session_id, Some(created.session.id));
    let err = service
        .validate(&t.db, token, client(IP, UA), at(23))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err}");
}

async fn cleanup_removes_stale_sessions_in_batches(t: TestDb) {
    let config = config();
    let policy = SessionPolicy {
        cleanup_batch: 2,
        ..SessionPolicy::default()
    };
    let service = Sessions::load(&t.db, &config.hmac_key, policy)
        .await
        .unwrap();
    let alice = insert_user(&t, "alice").await;
    let now = start();
    let create = |at: DateTime<Utc>| service.create(&t.db, alice.id, client(IP, UA), at);

    let valid = [create(now).await.unwrap(), create(now).await.unwrap()];
    // Past the absolute timeout.
    let old = [
        create(now - Duration::hours(13)).await.unwrap(),
        create(now - Duration::hours(12)).await.unwrap(),
    ];
    // Past the idle timeout only.
    let idle = create(now - Duration::minutes(31)).await.unwrap();
    let revoked = create(now).await.unwrap();
    service
        .revoke(&t.db, revoked.session.id, "user_request", now)
        .await
        .unwrap();
    let risky = create(now).await.unwrap();
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RiskScore, Expr::value(80))
        .filter(sessions::Column::Id.eq(risky.session.id))
        .exec(&t.db)
        .await
        .unwrap();
    let legacy = insert_legacy(&t, alice.id, now).await;
    let audit_before = t.count("session_audit_log").await;

    let report = service.cleanup(&t.db, now).await.unwrap();
    assert_eq!(
        (report.expired, report.revoked, report.risky),
        (3, 2, 1),
        "{report:?}"
    );
    assert_eq!(report.batches, 3, "6 sessions in batches of 2");
    assert_eq!(
        t.count("session_audit_log").await - audit_before,
        6,
        "one audit row per removed session"
    );
    let mut remaining: Vec<Uuid> = sessions::Entity::find()
        .all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    remaining.sort();
    let mut expected = vec![valid[0].session.id, valid[1].session.id];
    expected.sort();
    assert_eq!(remaining, expected);

    let tr = &t;
    let audited = |event| async move {
        let mut ids: Vec<String> = audit_rows(tr, event)
            .await
            .into_iter()
            .filter(|a| a.created_at == now)
            .map(|a| {
                assert_eq!(a.session_id, None, "the deleted session's id is set NULL");
                assert_eq!(a.risk_score, Some(0));
                a.details.unwrap()["session_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        ids.sort();
        ids
    };
    let ids = |list: &[Uuid]| {
        let mut ids: Vec<String> = list.iter().map(Uuid::to_string).collect();
        ids.sort();
        ids
    };
    assert_eq!(
        audited(SessionEvent::Expired).await,
        ids(&[old[0].session.id, old[1].session.id, idle.session.id])
    );
    assert_eq!(
        audited(SessionEvent::CleanedUp).await,
        ids(&[revoked.session.id, legacy])
    );
    let risk_rows = audit_rows(&t, SessionEvent::RiskRevoked).await;
    assert_eq!(risk_rows.len(), 1);
    assert_eq!(risk_rows[0].risk_score, Some(80));
    assert!(risk_rows[0].reason.as_deref().unwrap().contains("80"));

    for created in &valid {
        service
            .validate(&t.db, created.token.expose(), client(IP, UA), now)
            .await
            .expect("valid sessions survive cleanup");
    }
    let again = service.cleanup(&t.db, now).await.unwrap();
    assert_eq!(again.total(), 0);
}

/// A session as it was before the session-security migration: version 0, no seal.
async fn insert_legacy(t: &TestDb, user_id: Uuid, now: DateTime<Utc>) -> Uuid {
    insert_legacy_with(t, user_id, &SessionToken::generate(), now).await
}

async fn insert_legacy_with(
    t: &TestDb,
    user_id: Uuid,
    token: &SessionToken,
    now: DateTime<Utc>,
) -> Uuid {
    let id = Uuid::now_v7();
    sessions::Entity::insert(sessions::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        token_hash: Set(token.hash()),
        ip_address: Set(Some(IP.into())),
        user_agent: Set(Some(UA.into())),
        created_at: Set(now),
        last_activity_at: Set(now),
        expires_at: Set(now + Duration::hours(1)),
        is_revoked: Set(false),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        security_hash: Set(None),
        encryption_key_id: Set(None),
        created_ip_hash: Set(None),
        security_version: Set(0),
        last_validated_at: Set(Some(now)),
        risk_score: Set(0),
    })
    .exec_without_returning(&t.db)
    .await
    .unwrap();
    id
}

async fn legacy_sessions_are_refused(t: TestDb) {
    let config = config();
    let service = Sessions::load(&t.db, &config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let alice = insert_user(&t, "alice").await;
    let now = start();
    let token = SessionToken::generate();
    let id = insert_legacy_with(&t, alice.id, &token, now).await;
    let err = service
        .validate(&t.db, token.expose(), client(IP, UA), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err}");
    let stored = row(&t, id).await;
    assert!(stored.is_revoked);
    assert_eq!(stored.revoked_reason.as_deref(), Some("unsealed"));
    let revoked = audit_rows(&t, SessionEvent::Revoked).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].reason.as_deref(), Some("unsealed"));
}

async fn sessions_under_a_retired_key_fail(t: TestDb) {
    let old_config = config();
    let new_config = Config::from_values(OTHER_HMAC_HEX, DATA_B64).unwrap();
    let old = Sessions::load(&t.db, &old_config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let alice = insert_user(&t, "alice").await;
    let now = start();
    let before = old
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();

    // A new HMAC key alone is refused at start: it does not rotate the old one out.
    let err = Sessions::load(&t.db, &new_config.hmac_key, SessionPolicy::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                var: "HMAC_KEY",
                ..
            }
        ),
        "{err}"
    );
    // The operator rotates to it (without keeping the old key in the ring).
    gatehouse::keys::rotate(
        &t.db,
        gatehouse_entity::sea_orm_active_enums::KeyType::Session,
        &new_config.hmac_key.fingerprint(),
        gatehouse::keys::HMAC_ALGORITHM,
        Some(old.key_id()),
        None,
        "test rotation",
    )
    .await
    .unwrap();
    let new = Sessions::load(&t.db, &new_config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    assert_ne!(new.key_id(), old.key_id());
    let after = new
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();
    new.validate(&t.db, after.token.expose(), client(IP, UA), now)
        .await
        .unwrap();

    // A process still on the old key cannot check the new seal: refused, not revoked.
    let err = old
        .validate(&t.db, after.token.expose(), client(IP, UA), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Integrity(_)), "{err}");
    assert!(!row(&t, after.session.id).await.is_revoked);

    // The session sealed under the rotated key is refused and revoked.
    let err = new
        .validate(&t.db, before.token.expose(), client(IP, UA), now)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Integrity(ref m) if m.contains("no longer active")),
        "{err}"
    );
    let stored = row(&t, before.session.id).await;
    assert_eq!(stored.revoked_reason.as_deref(), Some("key_retired"));
    assert_eq!(
        audit_rows(&t, SessionEvent::TamperDetected).await.len(),
        0,
        "a retired key is not tampering"
    );
}

async fn hostile_input_is_refused_and_writes_nothing(t: TestDb) {
    let config = config();
    let service = Sessions::load(&t.db, &config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let alice = insert_user(&t, "alice").await;
    let now = start();
    let long = "A".repeat(10 * 1024);
    for (bad, field) in [
        (
            client("1.2.3.4'; DROP TABLE sessions; --", UA),
            "ip_address",
        ),
        (client(&long, UA), "ip_address"),
        (client(IP, "Mozilla\0/5.0"), "user_agent"),
        (client(IP, &long), "user_agent"),
    ] {
        let err = service.create(&t.db, alice.id, bad, now).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { field: f, .. } if f == field),
            "{err}"
        );
    }
    assert_eq!(t.count("sessions").await, 0);
    assert_eq!(t.count("session_audit_log").await, 0);

    let created = service
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();
    for token in [long.as_str(), "' OR '1'='1", "\0", ""] {
        let err = service
            .validate(&t.db, token, client(IP, UA), now)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials), "{err}");
    }
    for reason in [long.as_str(), "", "a\nb"] {
        let err = service
            .revoke(&t.db, created.session.id, reason, now)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidInput {
                    field: "reason",
                    ..
                }
            ),
            "{err}"
        );
    }
    // Unknown user: the foreign key refuses it.
    let err = service
        .create(&t.db, Uuid::now_v7(), client(IP, UA), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Reference(_)), "{err}");
    assert_eq!(t.count("sessions").await, 1);
    assert_eq!(t.count("session_audit_log").await, 1);
    assert!(!row(&t, created.session.id).await.is_revoked);
}

async fn validation_is_one_query_and_one_update(t: TestDb) {
    let config = config();
    let service = Sessions::load(&t.db, &config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let alice = insert_user(&t, "alice").await;
    let now = start();
    let created = service
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();
    let counting = Counting::new(t.db.clone());
    service
        .validate(&counting, created.token.expose(), client(OTHER_IP, UA), now)
        .await
        .unwrap();
    let calls = counting.take();
    assert!(
        matches!(
            calls.as_slice(),
            [Call::Query(select), Call::Execute(update)]
                if select.starts_with("SELECT") && update.starts_with("UPDATE")
        ),
        "{calls:#?}"
    );
    // Within the activity interval, with the same risk, validation only reads.
    for seconds in [1, 30, 59] {
        service
            .validate(
                &counting,
                created.token.expose(),
                client(OTHER_IP, UA),
                now + Duration::seconds(seconds),
            )
            .await
            .unwrap();
        let calls = counting.take();
        assert!(
            matches!(calls.as_slice(), [Call::Query(select)] if select.starts_with("SELECT")),
            "{seconds} s later: {calls:#?}"
        );
    }
    // Once the interval passed, it records the use again.
    service
        .validate(
            &counting,
            created.token.expose(),
            client(OTHER_IP, UA),
            now + Duration::seconds(60),
        )
        .await
        .unwrap();
    assert!(
        matches!(counting.take().as_slice(), [Call::Query(_), Call::Execute(update)] if update.starts_with("UPDATE"))
    );
    // A malformed token is refused before any statement.
    let err = service
        .validate(&counting, "x", client(IP, UA), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err}");
    assert_eq!(counting.take(), Vec::new());
}

async fn activity_is_recorded_once_per_interval_and_idle_is_exact_to_within_it(t: TestDb) {
    let config = config();
    let policy = SessionPolicy {
        idle_timeout: Duration::minutes(30),
        activity_interval: Duration::seconds(60),
        ..SessionPolicy::default()
    };
    let interval = Duration::seconds(60);
    let service = Sessions::load(&t.db, &config.hmac_key, policy)
        .await
        .unwrap();
    let alice = insert_user(&t, "alice").await;
    let now = start();
    let second = |s: i64| now + Duration::seconds(s);

    // Twenty validations within the interval leave the row as created.
    let busy = service
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();
    for s in 0..20 {
        let valid = service
            .validate(&t.db, busy.token.expose(), client(IP, UA), second(s * 2))
            .await
            .unwrap();
        assert_eq!(valid.last_activity_at, now);
    }
    assert_eq!(row(&t, busy.session.id).await.last_activity_at, now);

    // Used 50 s after creation (not recorded), then idle for the idle timeout
    // minus the interval, less a second: still valid.
    let used = 50;
    let last_valid = used + (Duration::minutes(30) - interval).num_seconds() - 1;
    service
        .validate(&t.db, busy.token.expose(), client(IP, UA), second(used))
        .await
        .unwrap();
    service
        .validate(
            &t.db,
            busy.token.expose(),
            client(IP, UA),
            second(last_valid),
        )
        .await
        .expect("idle for less than idle_timeout - activity_interval: valid");
    assert_eq!(
        row(&t, busy.session.id).await.last_activity_at,
        second(last_valid),
        "a due validation records the use"
    );

    // Idle for the idle timeout: expired, whatever the interval.
    let quiet = service
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();
    let err = service
        .validate(
            &t.db,
            quiet.token.expose(),
            client(IP, UA),
            now + Duration::minutes(30),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Expired), "{err}");

    // A revocation within the interval is refused at once.
    let revoked = service
        .create(&t.db, alice.id, client(IP, UA), now)
        .await
        .unwrap();
    service
        .validate(&t.db, revoked.token.expose(), client(IP, UA), second(1))
        .await
        .unwrap();
    service
        .revoke(&t.db, revoked.session.id, "test", second(2))
        .await
        .unwrap();
    let err = service
        .validate(&t.db, revoked.token.expose(), client(IP, UA), second(3))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err}");

    // A risk change is recorded at once.
    let moved = service
        .validate(
            &t.db,
            busy.token.expose(),
            client(OTHER_IP, UA),
            second(last_valid + 1),
        )
        .await
        .unwrap();
    assert!(moved.risk_score > 0);
    assert_eq!(row(&t, busy.session.id).await.risk_score, moved.risk_score);
}
