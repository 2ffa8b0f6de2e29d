//! API keys: checksummed format refused before any query, scopes bounded by
//! the owner's permissions at issue and at use, expiry, revocation, exact
//! usage counts under concurrency and the per-minute rate limit.

use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, SubsecRound, Utc};
use gatehouse::Error;
use gatehouse::api_keys::{self, ApiKey, NewApiKey};
use gatehouse_entity::{roles, user_roles, users};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Database, EntityTrait, QueryFilter,
};
use uuid::Uuid;

use crate::counting::Counting;
use crate::support::{TestDb, insert_user};

backend_tests!(run_migrated:
    issued_keys_verify_and_record_use,
    scopes_beyond_the_owner_are_refused_at_issue,
    an_owner_losing_a_permission_narrows_the_key,
    revoked_and_expired_keys_fail,
    malformed_keys_are_refused_without_a_query,
    concurrent_verifications_count_exactly,
    rate_limit_allows_n_per_minute,
    hostile_input_is_refused_and_writes_nothing,
    automatic_locks_leave_keys_working_and_operator_locks_stop_them,
);

const IP: &str = "203.0.113.9";

fn start() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Grants the seeded role `role` to `user_id`, until `expires_at`.
pub(crate) async fn grant(
    t: &TestDb,
    user_id: Uuid,
    role: &str,
    expires_at: Option<DateTime<Utc>>,
) {
    let role = roles::Entity::find_by_name(role)
        .one(&t.db)
        .await
        .unwrap()
        .expect("seeded role");
    user_roles::ActiveModel {
        user_id: Set(user_id),
        role_id: Set(role.id),
        granted_by: Set(None),
        granted_at: Set(Utc::now()),
        expires_at: Set(expires_at),
    }
    .insert(&t.db)
    .await
    .unwrap();
}

pub(crate) async fn revoke_grant(t: &TestDb, user_id: Uuid, role: &str) {
    let role = roles::Entity::find_by_name(role)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    user_roles::Entity::delete_by_id((user_id, role.id))
        .exec(&t.db)
        .await
        .unwrap();
}

fn new_key<'a>(user_id: Uuid, scopes: &'a [&'a str]) -> NewApiKey<'a> {
    NewApiKey {
        user_id,
        name: "deploy bot",
        scopes,
        rate_limit_per_minute: Some(api_keys::DEFAULT_RATE_LIMIT_PER_MINUTE),
        expires_at: None,
    }
}

async fn record(t: &TestDb, id: Uuid) -> gatehouse_entity::api_keys::Model {
    gatehouse_entity::api_keys::Entity::find_by_id(id)
        .one(&t.db)
        .await
        .unwrap()
        .expect("key row exists")
}

async fn issued_keys_verify_and_record_use(t: TestDb) {
    let alice = insert_user(&t, "alice").await;
    grant(&t, alice.id, "user", None).await;
    let now = start();
    let issued = api_keys::issue(
        &t.db,
        new_key(alice.id, &["users.read", "api_keys.create"]),
        now,
    )
    .await
    .unwrap();
    let key = issued.key.expose().to_owned();
    assert!(key.starts_with("ghk_") && key.len() == 40, "{key}");
    let debug = format!("{issued:?}");
    assert!(!debug.contains(&key), "Debug shows the key: {debug}");

    let stored = record(&t, issued.record.id).await;
    assert_eq!(
        stored, issued.record,
        "the returned record is what was stored"
    );
    assert_eq!(stored.key_hash, crate::support::sha256_hex(key.as_bytes()));
    assert_eq!(stored.key_prefix, key[..12]);
    assert_eq!(
        stored.scopes,
        serde_json::json!(["api_keys.create", "users.read"])
    );
    assert_eq!(
        t.count(&format!(
            "api_keys WHERE key_hash = '{key}' OR key_prefix = '{key}'"
        ))
        .await,
        0,
        "the key itself is not stored"
    );

    let at = now + Duration::seconds(5);
    let verified = api_keys::verify(&t.db, &key, Some("::ffff:203.0.113.9"), at)
        .await
        .unwrap();
    assert_eq!(verified.key_id, issued.record.id);
    assert_eq!(verified.user_id, alice.id);
    assert_eq!(verified.scopes, vec!["api_keys.create", "users.read"]);
    verified.require("users.read").unwrap();
    assert!(matches!(
        verified.require("users.delete"),
        Err(Error::Forbidden(_))
    ));
    let stored = record(&t, issued.record.id).await;
    assert_eq!(stored.usage_count, 1);
    assert_eq!(stored.last_used_at, Some(at));
    assert_eq!(
        stored.last_used_ip.as_deref(),
        Some(IP),
        "normalized to IPv4"
    );
    assert_eq!(api_keys::list(&t.db, alice.id).await.unwrap(), vec![stored]);
}

async fn scopes_beyond_the_owner_are_refused_at_issue(t: TestDb) {
    let alice = insert_user(&t, "alice").await;
    grant(&t, alice.id, "user", None).await;
    let now = start();
    // The `user` role holds users.read, api_keys.create and api_keys.revoke only.
    let err = api_keys::issue(
        &t.db,
        new_key(alice.id, &["users.read", "users.delete"]),
        now,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::Forbidden(ref m) if m.contains("users.delete")),
        "{err}"
    );
    // An expired role grant gives nothing.
    let bob = insert_user(&t, "bob").await;
    grant(&t, bob.id, "moderator", Some(now - Duration::minutes(1))).await;
    let err = api_keys::issue(&t.db, new_key(bob.id, &["audit.read"]), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err}");
    // Neither does an owner an operator has locked.
    users::Entity::update_many()
        .col_expr(users::Column::IsLocked, Expr::value(true))
        .filter(users::Column::Id.eq(alice.id))
        .exec(&t.db)
        .await
        .unwrap();
    let err = api_keys::issue(&t.db, new_key(alice.id, &["users.read"]), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err}");
    assert_eq!(t.count("api_keys").await, 0);
    // Once unlocked the same request is granted.
    users::Entity::update_many()
        .col_expr(users::Column::IsLocked, Expr::value(false))
        .filter(users::Column::Id.eq(alice.id))
        .exec(&t.db)
        .await
        .unwrap();
    api_keys::issue(&t.db, new_key(alice.id, &["users.read"]), now)
        .await
        .unwrap();
}

/// Failed logins set `locked_until`; that must not switch off the owner's
/// keys (anyone can fail logins on someone else's account). The operator's
/// lock still does.
async fn automatic_locks_leave_keys_working_and_operator_locks_stop_them(t: TestDb) {
    let alice = insert_user(&t, "alice").await;
    grant(&t, alice.id, "user", None).await;
    let now = start();
    let issued = api_keys::issue(&t.db, new_key(alice.id, &["users.read"]), now)
        .await
        .unwrap();
    let key = issued.key.expose();
    users::Entity::update_many()
        .col_expr(
            users::Column::LockedUntil,
            Expr::value(now + Duration::minutes(15)),
        )
        .filter(users::Column::Id.eq(alice.id))
        .exec(&t.db)
        .await
        .unwrap();
    let verified = api_keys::verify(&t.db, key, None, now).await.unwrap();
    assert_eq!(
        verified.scopes,
        vec!["users.read"],
        "the scope is still held"
    );
    api_keys::issue(&t.db, new_key(alice.id, &["users.read"]), now)
        .await
        .unwrap();
    assert_eq!(record(&t, issued.record.id).await.usage_count, 1);

    users::Entity::update_many()
        .col_expr(users::Column::IsLocked, Expr::value(true))
        .filter(users::Column::Id.eq(alice.id))
        .exec(&t.db)
        .await
        .unwrap();
    let err = api_keys::verify(&t.db, key, None, now).await.unwrap_err();
    assert!(matches!(err, Error::Locked { until: None }), "{err}");
    assert_eq!(
        record(&t, issued.record.id).await.usage_count,
        1,
        "refused uses are not counted"
    );
}

async fn an_owner_losing_a_permission_narrows_the_key(t: TestDb) {
    let alice = insert_user(&t, "alice").await;
    grant(&t, alice.id, "user", None).await;
    grant(&t, alice.id, "moderator", None).await;
    let now = start();
    let issued = api_keys::issue(&t.db, new_key(alice.id, &["users.read", "audit.read"]), now)
        .await
        .unwrap();
    let key = issued.key.expose();
    let verified = api_keys::verify(&t.db, key, None, now).await.unwrap();
    assert_eq!(verified.scopes, vec!["audit.read", "users.read"]);

    revoke_grant(&t, alice.id, "moderator").await;
    let verified = api_keys::verify(&t.db, key, None, now).await.unwrap();
    assert_eq!(verified.scopes, vec!["users.read"]);
    assert!(matches!(
        verified.require("audit.read"),
        Err(Error::Forbidden(_))
    ));

    // A deactivated owner's keys stop working.
    users::Entity::update_many()
        .col_expr(users::Column::IsActive, Expr::value(false))
        .filter(users::Column::Id.eq(alice.id))
        .exec(&t.db)
        .await
        .unwrap();
    let err = api_keys::verify(&t.db, key, None, now).await.unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err}");
    assert_eq!(record(&t, issued.record.id).await.usage_count, 2);
}

async fn revoked_and_expired_keys_fail(t: TestDb) {
    let alice = insert_user(&t, "alice").await;
    grant(&t, alice.id, "user", None).await;
    let now = start();
    let expiring = api_keys::issue(
        &t.db,
        NewApiKey {
            expires_at: Some(now + Duration::hours(1)),
            ..new_key(alice.id, &["users.read"])
        },
        now,
    )
    .await
    .unwrap();
    api_keys::verify(
        &t.db,
        expiring.key.expose(),
        None,
        now + Duration::minutes(59),
    )
    .await
    .unwrap();
    let err = api_keys::verify(&t.db, expiring.key.expose(), None, now + Duration::hours(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Expired), "{err}");

    let revoked = api_keys::issue(&t.db, new_key(alice.id, &["users.read"]), now)
        .await
        .unwrap();
    assert!(
        api_keys::revoke(&t.db, revoked.record.id, now)
            .await
            .unwrap()
    );
    assert!(
        !api_keys::revoke(&t.db, revoked.record.id, now)
            .await
            .unwrap()
    );
    let err = api_keys::verify(&t.db, revoked.key.expose(), None, now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err}");
    let stored = record(&t, revoked.record.id).await;
    assert!(stored.is_revoked);
    assert_eq!(stored.revoked_at, Some(now));
    assert_eq!(stored.usage_count, 0, "refused uses are not counted");

    let unknown = ApiKey::generate();
    let err = api_keys::verify(&t.db, unknown.expose(), None, now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err}");
    let err = api_keys::revoke(&t.db, Uuid::now_v7(), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

/// Changes one character of the random part to another base62 character.
fn mistype(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

async fn malformed_keys_are_refused_without_a_query(t: TestDb) {
    let alice = insert_user(&t, "alice").await;
    grant(&t, alice.id, "user", None).await;
    let now = start();
    let issued = api_keys::issue(&t.db, new_key(alice.id, &["users.read"]), now)
        .await
        .unwrap();
    let typo = mistype(issued.key.expose());

    // Counted: a malformed key runs no statement, a well-formed one does.
    let counting = Counting::new(t.db.clone());
    let huge = "ghk_".repeat(2_500);
    for bad in [typo.as_str(), "ghk_", "", "' OR 1=1 --", huge.as_str()] {
        let err = api_keys::verify(&counting, bad, Some(IP), now)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials), "{err}");
    }
    assert_eq!(
        counting.take(),
        Vec::new(),
        "no statement for malformed keys"
    );
    api_keys::verify(&counting, issued.key.expose(), Some(IP), now)
        .await
        .unwrap();
    assert_eq!(counting.take().len(), 3, "lookup, scopes, usage update");

    // On a closed connection: a malformed key is still refused as invalid,
    // while a well-formed one reaches the database and fails there.
    let closed = Database::connect(t.url.as_str()).await.unwrap();
    closed.close_by_ref().await.unwrap();
    let err = api_keys::verify(&closed, &typo, Some(IP), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err}");
    let err = api_keys::verify(&closed, issued.key.expose(), Some(IP), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Db(_)), "{err}");

    assert_eq!(record(&t, issued.record.id).await.usage_count, 1);
}

async fn concurrent_verifications_count_exactly(t: TestDb) {
    const N: usize = 24;
    let alice = insert_user(&t, "alice").await;
    grant(&t, alice.id, "user", None).await;
    let now = start();
    let issued = api_keys::issue(
        &t.db,
        NewApiKey {
            rate_limit_per_minute: Some(1_000),
            ..new_key(alice.id, &["users.read"])
        },
        now,
    )
    .await
    .unwrap();
    let key = Arc::new(issued.key.expose().to_owned());
    let mut tasks = Vec::new();
    for _ in 0..N {
        let db = t.db.clone();
        let key = Arc::clone(&key);
        tasks.push(tokio::spawn(async move {
            api_keys::verify(&db, &key, Some(IP), now).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let stored = record(&t, issued.record.id).await;
    assert_eq!(stored.usage_count, N as i64);
    assert_eq!(stored.rate_window_count, N as i32);
}

async fn rate_limit_allows_n_per_minute(t: TestDb) {
    const LIMIT: i32 = 3;
    let alice = insert_user(&t, "alice").await;
    grant(&t, alice.id, "user", None).await;
    let minute = Utc::now().duration_trunc(Duration::minutes(1)).unwrap();
    let now = minute + Duration::seconds(10);
    let issued = api_keys::issue(
        &t.db,
        NewApiKey {
            rate_limit_per_minute: Some(LIMIT),
            ..new_key(alice.id, &["users.read"])
        },
        now,
    )
    .await
    .unwrap();
    let key = issued.key.expose();
    for i in 0..LIMIT {
        api_keys::verify(&t.db, key, None, now + Duration::seconds(i.into()))
            .await
            .unwrap();
    }
    let err = api_keys::verify(&t.db, key, None, now + Duration::seconds(20))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RateLimited {
                retry_after_secs: 30
            }
        ),
        "{err}"
    );
    assert_eq!(record(&t, issued.record.id).await.usage_count, 3);

    // The next minute is a new window.
    let next = minute + Duration::minutes(1);
    for i in 0..LIMIT {
        api_keys::verify(&t.db, key, None, next + Duration::seconds(i.into()))
            .await
            .unwrap();
    }
    let err = api_keys::verify(&t.db, key, None, next + Duration::seconds(59))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RateLimited {
                retry_after_secs: 1
            }
        ),
        "{err}"
    );
    // A process whose clock is a minute behind cannot reopen the old window.
    let err = api_keys::verify(&t.db, key, None, now + Duration::seconds(30))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err}");
    assert_eq!(record(&t, issued.record.id).await.usage_count, 6);
}

async fn hostile_input_is_refused_and_writes_nothing(t: TestDb) {
    let alice = insert_user(&t, "alice").await;
    grant(&t, alice.id, "user", None).await;
    let now = start();
    let long = "x".repeat(10 * 1024);
    let nfd = ["cafe\u{301}.read"];
    let long_scope = [long.as_str()];
    let cases: Vec<(NewApiKey<'_>, &str)> = vec![
        (
            NewApiKey {
                name: "bot\0",
                ..new_key(alice.id, &["users.read"])
            },
            "name",
        ),
        (
            NewApiKey {
                name: &long,
                ..new_key(alice.id, &["users.read"])
            },
            "name",
        ),
        (
            NewApiKey {
                name: " ",
                ..new_key(alice.id, &["users.read"])
            },
            "name",
        ),
        (
            new_key(alice.id, &["users.read'); DROP TABLE api_keys; --"]),
            "scopes",
        ),
        (new_key(alice.id, &nfd), "scopes"),
        (new_key(alice.id, &long_scope), "scopes"),
        (new_key(alice.id, &[]), "scopes"),
        (
            NewApiKey {
                rate_limit_per_minute: Some(0),
                ..new_key(alice.id, &["users.read"])
            },
            "rate_limit_per_minute",
        ),
        (
            NewApiKey {
                expires_at: Some(now - Duration::seconds(1)),
                ..new_key(alice.id, &["users.read"])
            },
            "expires_at",
        ),
    ];
    for (bad, field) in cases {
        let err = api_keys::issue(&t.db, bad, now).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { field: f, .. } if f == field),
            "{field}: {err}"
        );
    }
    assert_eq!(t.count("api_keys").await, 0);

    let issued = api_keys::issue(&t.db, new_key(alice.id, &["users.read"]), now)
        .await
        .unwrap();
    let err = api_keys::verify(&t.db, issued.key.expose(), Some("not-an-ip"), now)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "ip_address",
                ..
            }
        ),
        "{err}"
    );
    let err = api_keys::verify(&t.db, &long, None, now).await.unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err}");
    assert_eq!(record(&t, issued.record.id).await.usage_count, 0);
}
