//! MFA: enrollment and confirmation, TOTP windows and replay, concurrent
//! verification, backup codes, lockout per factor, encryption binding,
//! trusted devices, otpauth URIs and secret-free Debug output.

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use data_encoding::BASE32_NOPAD;
use gatehouse::ClientInfo;
use gatehouse::mfa::totp::{self, TotpSecret};
use gatehouse::mfa::{Mfa, devices};
use gatehouse::{Config, Error, keys, lockout};
use gatehouse_entity::sea_orm_active_enums::KeyType;
use gatehouse_entity::{mfa_configurations, users};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use crate::support::{TestDb, insert_user};

backend_tests!(run_migrated:
    enroll_confirm_and_the_step_window,
    replays_are_refused,
    concurrent_verifications_of_one_code_succeed_once,
    backup_codes_work_once_and_are_stored_hashed,
    otp_failures_lock_with_their_own_counter,
    secrets_are_bound_to_the_key_and_the_user,
    secrets_follow_a_new_data_key,
    trusted_devices_expire_and_revoke,
    enrollment_rules_and_hostile_input,
    otpauth_uri_and_debug_output,
);

const HMAC_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const DATA_HEX: &str = "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40";
const OTHER_DATA_HEX: &str = "4142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60";
const CLIENT: ClientInfo<'static> = ClientInfo {
    ip: Some("203.0.113.9"),
    user_agent: Some("TestAgent/1.0"),
};

fn config() -> Config {
    Config::from_values(HMAC_HEX, DATA_HEX).unwrap()
}

/// A time at the start of a TOTP step, near the real clock.
fn step_start() -> DateTime<Utc> {
    let now = Utc::now().timestamp();
    Utc.timestamp_opt(now - now.rem_euclid(totp::PERIOD_SECS), 0)
        .unwrap()
}

fn code(secret: &TotpSecret, step: i64) -> String {
    format!("{:06}", secret.code_at_step(step))
}

/// A code valid for none of the steps around `step`.
fn wrong_code(secret: &TotpSecret, step: i64) -> String {
    let valid: Vec<u32> = (step - 2..=step + 2)
        .map(|s| secret.code_at_step(s))
        .collect();
    let mut candidate = (valid[2] + 1) % 1_000_000;
    while valid.contains(&candidate) {
        candidate = (candidate + 1) % 1_000_000;
    }
    format!("{candidate:06}")
}

/// Enrolls and confirms `user` at `now`; returns the secret.
async fn enabled(t: &TestDb, mfa: &Mfa, user: &users::Model, now: DateTime<Utc>) -> TotpSecret {
    let enrollment = mfa
        .enroll(&t.db, user.id, "Gatehouse", &user.email, now)
        .await
        .unwrap();
    let secret = TotpSecret::from_bytes(*enrollment.secret().expose());
    mfa.confirm(
        &t.db,
        user.id,
        &code(&secret, totp::step_at(now)),
        None,
        now,
    )
    .await
    .unwrap();
    secret
}

async fn config_row(t: &TestDb, user_id: Uuid) -> mfa_configurations::Model {
    mfa_configurations::Entity::find()
        .filter(mfa_configurations::Column::UserId.eq(user_id))
        .one(&t.db)
        .await
        .unwrap()
        .expect("configuration exists")
}

async fn enroll_confirm_and_the_step_window(t: TestDb) {
    let config = config();
    let mfa = Mfa::new(&config);
    let user = insert_user(&t, "alice").await;
    let t0 = step_start();
    let s = totp::step_at(t0);

    let enrollment = mfa
        .enroll(&t.db, user.id, "Gatehouse", &user.email, t0)
        .await
        .unwrap();
    let secret = TotpSecret::from_bytes(*enrollment.secret().expose());
    let row = config_row(&t, user.id).await;
    assert!(!row.is_enabled && !row.is_verified && row.verified_at.is_none());
    assert!(!row.secret_encrypted.contains(&secret.expose_base32()));
    let key = keys::active(&t.db, KeyType::Data).await.unwrap().unwrap();
    assert_eq!(row.encryption_key_id, Some(key.id));
    assert_eq!(key.fingerprint, config.data_key.fingerprint());
    assert_eq!(key.algorithm, "AES-256-GCM");
    assert!(!mfa.is_enabled(&t.db, user.id).await.unwrap());
    // Not enabled yet: login verification refuses.
    assert!(matches!(
        mfa.verify_totp(&t.db, user.id, &code(&secret, s), CLIENT, t0)
            .await,
        Err(Error::NotFound(_))
    ));

    assert!(matches!(
        mfa.confirm(&t.db, user.id, &wrong_code(&secret, s), None, t0)
            .await,
        Err(Error::InvalidCredentials)
    ));
    let codes = mfa
        .confirm(&t.db, user.id, &code(&secret, s), None, t0)
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    let row = config_row(&t, user.id).await;
    assert!(row.is_enabled && row.is_verified);
    assert_eq!(row.verified_at, Some(t0));
    assert_eq!(row.last_used_step, Some(s));
    assert!(mfa.is_enabled(&t.db, user.id).await.unwrap());

    // Two steps later: one step back, the current one and one ahead pass...
    let t2 = t0 + Duration::seconds(2 * totp::PERIOD_SECS);
    for step in [s + 1, s + 2, s + 3] {
        mfa.verify_totp(&t.db, user.id, &code(&secret, step), CLIENT, t2)
            .await
            .unwrap_or_else(|e| panic!("step {step}: {e}"));
    }
    assert_eq!(config_row(&t, user.id).await.last_used_step, Some(s + 3));
    // ...two ahead or two back do not.
    assert!(matches!(
        mfa.verify_totp(&t.db, user.id, &code(&secret, s + 4), CLIENT, t2)
            .await,
        Err(Error::InvalidCredentials)
    ));
    let t5 = t0 + Duration::seconds(5 * totp::PERIOD_SECS);
    assert!(matches!(
        mfa.verify_totp(&t.db, user.id, &code(&secret, s + 3), CLIENT, t5)
            .await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(
        t.count("failed_login_attempts WHERE attempt_kind = 'otp'")
            .await,
        2
    );
}

async fn replays_are_refused(t: TestDb) {
    let config = config();
    let mfa = Mfa::new(&config);
    let user = insert_user(&t, "bob").await;
    let t0 = step_start();
    let s = totp::step_at(t0);
    let secret = enabled(&t, &mfa, &user, t0).await;
    // The confirmation code itself cannot be used again.
    assert!(matches!(
        mfa.verify_totp(&t.db, user.id, &code(&secret, s), CLIENT, t0)
            .await,
        Err(Error::Replayed)
    ));
    let t1 = t0 + Duration::seconds(totp::PERIOD_SECS);
    mfa.verify_totp(&t.db, user.id, &code(&secret, s + 2), CLIENT, t1)
        .await
        .unwrap();
    // The same code twice.
    assert!(matches!(
        mfa.verify_totp(&t.db, user.id, &code(&secret, s + 2), CLIENT, t1)
            .await,
        Err(Error::Replayed)
    ));
    // An older step after a newer one, though still inside the window.
    assert!(matches!(
        mfa.verify_totp(&t.db, user.id, &code(&secret, s + 1), CLIENT, t1)
            .await,
        Err(Error::Replayed)
    ));
    assert_eq!(config_row(&t, user.id).await.last_used_step, Some(s + 2));
    assert_eq!(
        t.count("failed_login_attempts").await,
        0,
        "replays are not guesses"
    );
}

async fn concurrent_verifications_of_one_code_succeed_once(t: TestDb) {
    let config = config();
    let mfa = Mfa::new(&config);
    let user = insert_user(&t, "carol").await;
    let t0 = step_start();
    let secret = enabled(&t, &mfa, &user, t0).await;
    for round in 1..=4 {
        let now = t0 + Duration::seconds(round * totp::PERIOD_SECS);
        let code = code(&secret, totp::step_at(now));
        let (a, b) = tokio::join!(
            mfa.verify_totp(&t.db, user.id, &code, CLIENT, now),
            mfa.verify_totp(&t.db, user.id, &code, CLIENT, now),
        );
        let successes = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(successes, 1, "round {round}: {a:?} {b:?}");
        assert!(
            matches!(a, Err(Error::Replayed)) || matches!(b, Err(Error::Replayed)),
            "round {round}: the loser sees a replay: {a:?} {b:?}"
        );
    }
}

async fn backup_codes_work_once_and_are_stored_hashed(t: TestDb) {
    let config = config();
    let mfa = Mfa::new(&config);
    let user = insert_user(&t, "dave").await;
    let t0 = step_start();
    let enrollment = mfa
        .enroll(&t.db, user.id, "Gatehouse", &user.email, t0)
        .await
        .unwrap();
    let codes = mfa
        .confirm(
            &t.db,
            user.id,
            &code(enrollment.secret(), totp::step_at(t0)),
            None,
            t0,
        )
        .await
        .unwrap();
    let codes: Vec<String> = codes.expose().iter().map(|c| c.to_string()).collect();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);
    assert_eq!(t.count("mfa_backup_codes WHERE used_at IS NULL").await, 10);
    // No code appears in the table, formatted or bare, in any case.
    let hashes: Vec<String> = gatehouse_entity::mfa_backup_codes::Entity::find()
        .select_only()
        .column(gatehouse_entity::mfa_backup_codes::Column::CodeHash)
        .into_tuple()
        .all(&t.db)
        .await
        .unwrap();
    for code in &codes {
        let bare = code.replace('-', "");
        for hash in &hashes {
            let hash = hash.to_uppercase();
            assert!(!hash.contains(code) && !hash.contains(&bare));
            assert_eq!(hash.len(), 64, "HMAC-SHA256 hex");
        }
    }

    let later = t0 + Duration::minutes(1);
    // Typed in lower case without the dash: the same code.
    let typed = codes[0].to_lowercase().replace('-', "");
    mfa.verify_backup_code(&t.db, user.id, &typed, CLIENT, later)
        .await
        .unwrap();
    assert!(matches!(
        mfa.verify_backup_code(&t.db, user.id, &codes[0], CLIENT, later)
            .await,
        Err(Error::Replayed)
    ));
    assert_eq!(
        gatehouse::mfa::backup::remaining(&t.db, user.id)
            .await
            .unwrap(),
        9
    );
    assert!(matches!(
        mfa.verify_backup_code(&t.db, user.id, "00000-00000", CLIENT, later)
            .await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(
        t.count("failed_login_attempts WHERE attempt_kind = 'backup_code'")
            .await,
        1
    );
    // Another user's code does not work for this one.
    let eve = insert_user(&t, "eve").await;
    let eve_secret = enabled(&t, &mfa, &eve, t0).await;
    drop(eve_secret);
    assert!(matches!(
        mfa.verify_backup_code(&t.db, eve.id, &codes[1], CLIENT, later)
            .await,
        Err(Error::InvalidCredentials)
    ));

    // Regeneration replaces the nine unused codes and keeps the used one.
    let fresh = mfa
        .regenerate_backup_codes(&t.db, user.id, later)
        .await
        .unwrap();
    assert_eq!(fresh.len(), 10);
    assert_eq!(
        gatehouse::mfa::backup::remaining(&t.db, user.id)
            .await
            .unwrap(),
        10
    );
    assert_eq!(
        gatehouse::mfa::backup::list(&t.db, user.id)
            .await
            .unwrap()
            .len(),
        11
    );
    assert!(matches!(
        mfa.verify_backup_code(&t.db, user.id, &codes[1], CLIENT, later)
            .await,
        Err(Error::InvalidCredentials)
    ));
    // Two wrong codes from one source: the next attempt waits the back-off.
    let backoff = lockout::LockoutPolicy::default().backoff(2);
    assert!(matches!(
        mfa.verify_backup_code(&t.db, user.id, fresh.expose()[3], CLIENT, later)
            .await,
        Err(Error::RateLimited { .. })
    ));
    mfa.verify_backup_code(&t.db, user.id, fresh.expose()[3], CLIENT, later + backoff)
        .await
        .unwrap();
}

async fn otp_failures_lock_with_their_own_counter(t: TestDb) {
    // Code guesses are throttled per account and source like passwords: the
    // source backs off, is shut out after the policy's fifth failure (even
    // the right code is refused, unverified, and its step stays unused),
    // while another source still gets in; after the window it may try again.
    let config = config();
    let mfa = Mfa::new(&config);
    let user = insert_user(&t, "frank").await;
    let t0 = step_start();
    let secret = enabled(&t, &mfa, &user, t0).await;
    let policy = lockout::LockoutPolicy::default();
    let mut at = t0 + Duration::seconds(totp::PERIOD_SECS);
    for k in 1..=policy.source_max_failures {
        let step = totp::step_at(at);
        assert!(matches!(
            mfa.verify_totp(&t.db, user.id, &wrong_code(&secret, step), CLIENT, at)
                .await,
            Err(Error::InvalidCredentials)
        ));
        // Too soon after a second failure: refused without a verification.
        if k >= 2 {
            assert!(matches!(
                mfa.verify_totp(&t.db, user.id, &code(&secret, step), CLIENT, at)
                    .await,
                Err(Error::RateLimited { .. })
            ));
        }
        at += policy.backoff(k);
    }
    let step = totp::step_at(at);
    let err = mfa
        .verify_totp(&t.db, user.id, &code(&secret, step), CLIENT, at)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after_secs } if retry_after_secs > 60),
        "{err}"
    );
    assert!(matches!(
        mfa.verify_backup_code(&t.db, user.id, "00000-00000", CLIENT, at)
            .await,
        Err(Error::RateLimited { .. })
    ));
    assert_eq!(
        t.count("failed_login_attempts WHERE attempt_kind = 'otp' AND identifier = 'frank@example.com' AND ip_address = '203.0.113.9'")
            .await,
        i64::from(policy.source_max_failures)
    );
    // The owner from another network is not locked out.
    let elsewhere = ClientInfo {
        ip: Some("198.51.100.20"),
        user_agent: None,
    };
    mfa.verify_totp(&t.db, user.id, &code(&secret, step), elsewhere, at)
        .await
        .unwrap();
    // After the window the first source gets in with the right code.
    let after = at + policy.source_window + Duration::seconds(totp::PERIOD_SECS);
    mfa.verify_totp(
        &t.db,
        user.id,
        &code(&secret, totp::step_at(after)),
        CLIENT,
        after,
    )
    .await
    .unwrap();
}

async fn secrets_are_bound_to_the_key_and_the_user(t: TestDb) {
    let config = config();
    let mfa = Mfa::new(&config);
    let t0 = step_start();
    let s = totp::step_at(t0);

    // Another DATA_ENCRYPTION_KEY cannot read the secret.
    let grace = insert_user(&t, "grace").await;
    let enrollment = mfa
        .enroll(&t.db, grace.id, "Gatehouse", &grace.email, t0)
        .await
        .unwrap();
    let other = Config::from_values(HMAC_HEX, OTHER_DATA_HEX).unwrap();
    let err = Mfa::new(&other)
        .confirm(&t.db, grace.id, &code(enrollment.secret(), s), None, t0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Integrity(_)), "{err}");
    assert!(
        !config_row(&t, grace.id).await.is_verified,
        "nothing changed"
    );
    mfa.confirm(&t.db, grace.id, &code(enrollment.secret(), s), None, t0)
        .await
        .unwrap();
    let err = Mfa::new(&other)
        .verify_totp(
            &t.db,
            grace.id,
            &code(enrollment.secret(), s + 1),
            CLIENT,
            t0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Integrity(_)), "{err}");

    // A ciphertext moved to another user's row does not decrypt there.
    let heidi = insert_user(&t, "heidi").await;
    enabled(&t, &mfa, &heidi, t0).await;
    let moved = config_row(&t, grace.id).await.secret_encrypted;
    let mut row: mfa_configurations::ActiveModel = config_row(&t, heidi.id).await.into();
    row.secret_encrypted = Set(moved);
    row.update(&t.db).await.unwrap();
    let err = mfa
        .verify_totp(
            &t.db,
            heidi.id,
            &code(enrollment.secret(), s + 1),
            CLIENT,
            t0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Integrity(_)), "{err}");
    assert_eq!(
        t.count("failed_login_attempts").await,
        0,
        "not a user's failure"
    );
}

async fn secrets_follow_a_new_data_key(t: TestDb) {
    let old_config = config();
    let old = Mfa::new(&old_config);
    let t0 = step_start();
    let s = totp::step_at(t0);
    let mut secrets = Vec::new();
    for name in ["mia", "noah", "olga"] {
        let user = insert_user(&t, name).await;
        secrets.push((user.id, enabled(&t, &old, &user, t0).await));
    }
    // One secret the old key cannot open (altered).
    let (broken, _) = &secrets[2];
    let mut row: mfa_configurations::ActiveModel = config_row(&t, *broken).await.into();
    row.secret_encrypted = Set(gatehouse::mfa::cipher::seal(
        &Config::from_values(HMAC_HEX, OTHER_DATA_HEX)
            .unwrap()
            .data_key,
        Uuid::now_v7(),
        &TotpSecret::generate(),
    ));
    row.update(&t.db).await.unwrap();

    let new_config = Config::from_values(HMAC_HEX, OTHER_DATA_HEX).unwrap();
    // Configuring the new key alone is refused: it does not rotate the old one out.
    let err = Mfa::new(&new_config)
        .reencrypt_secrets(&t.db, t0)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                var: "DATA_ENCRYPTION_KEY",
                ..
            }
        ),
        "{err}"
    );
    let v1 = keys::active(&t.db, KeyType::Data).await.unwrap().unwrap();
    keys::rotate(
        &t.db,
        KeyType::Data,
        &new_config.data_key.fingerprint(),
        keys::DATA_ALGORITHM,
        Some(v1.id),
        None,
        "test rotation",
    )
    .await
    .unwrap();
    // Without the old key in the ring the secrets do not open.
    let new = Mfa::new(&new_config);
    let (mia, mia_secret) = &secrets[0];
    assert!(matches!(
        new.verify_totp(&t.db, *mia, &code(mia_secret, s + 1), CLIENT, t0)
            .await,
        Err(Error::Integrity(_))
    ));
    let ring_config = Config::from_values(HMAC_HEX, OTHER_DATA_HEX)
        .unwrap()
        .with_previous("", DATA_HEX)
        .unwrap();
    let ring = Mfa::new(&ring_config);
    let report = ring.reencrypt_secrets(&t.db, t0).await.unwrap();
    assert_eq!(report.reencrypted, 2);
    assert_eq!(report.undecryptable, [*broken]);
    let active = keys::active(&t.db, KeyType::Data).await.unwrap().unwrap();
    assert_eq!(
        (active.version, active.fingerprint.clone()),
        (2, new_config.data_key.fingerprint())
    );
    for (user_id, secret) in &secrets[..2] {
        assert_eq!(
            config_row(&t, *user_id).await.encryption_key_id,
            Some(active.id)
        );
        new.verify_totp(&t.db, *user_id, &code(secret, s + 1), CLIENT, t0)
            .await
            .unwrap();
    }
    // The old key no longer opens them; a second run has nothing left but the broken row.
    assert!(matches!(
        old.verify_totp(
            &t.db,
            *mia,
            &code(mia_secret, s + 2),
            CLIENT,
            t0 + Duration::seconds(30)
        )
        .await,
        Err(Error::Integrity(_))
    ));
    let again = ring.reencrypt_secrets(&t.db, t0).await.unwrap();
    assert_eq!((again.reencrypted, again.undecryptable.len()), (0, 1));
}

async fn trusted_devices_expire_and_revoke(t: TestDb) {
    let ivan = insert_user(&t, "ivan").await;
    let judy = insert_user(&t, "judy").await;
    // Timestamps are stored with microseconds.
    let t0 = Utc::now().trunc_subsecs(6);
    let ttl = Duration::days(devices::DEFAULT_TRUST_DAYS);
    let laptop = devices::trust(&t.db, ivan.id, Some("laptop"), CLIENT, ttl, t0)
        .await
        .unwrap();
    assert_eq!(laptop.expires_at, t0 + Duration::days(30));
    let token = laptop.expose().to_owned();
    assert_eq!(token.len(), 43);
    // Only the SHA-256 of the token is stored.
    assert_eq!(
        t.count(&format!(
            "mfa_trusted_devices WHERE device_token_hash = '{}'",
            crate::support::sha256_hex(token.as_bytes())
        ))
        .await,
        1
    );
    assert_eq!(
        t.count(&format!(
            "mfa_trusted_devices WHERE device_token_hash = '{token}'"
        ))
        .await,
        0
    );

    let day = t0 + Duration::days(1);
    let checked = devices::check(&t.db, ivan.id, &token, day).await.unwrap();
    assert_eq!(checked.id, laptop.device_id);
    assert_eq!(checked.last_used_at, Some(day));
    assert!(matches!(
        devices::check(&t.db, judy.id, &token, day).await,
        Err(Error::InvalidCredentials)
    ));
    assert!(matches!(
        devices::check(&t.db, ivan.id, "not-a-token", day).await,
        Err(Error::InvalidInput { .. })
    ));
    let unknown = data_encoding::BASE64URL_NOPAD.encode(&[7u8; 32]);
    assert!(matches!(
        devices::check(&t.db, ivan.id, &unknown, day).await,
        Err(Error::InvalidCredentials)
    ));
    // Accepted until the expiry, refused from it on.
    devices::check(
        &t.db,
        ivan.id,
        &token,
        laptop.expires_at - Duration::seconds(1),
    )
    .await
    .unwrap();
    assert!(matches!(
        devices::check(&t.db, ivan.id, &token, laptop.expires_at).await,
        Err(Error::Expired)
    ));

    let phone = devices::trust(
        &t.db,
        ivan.id,
        Some("phone"),
        ClientInfo::default(),
        ttl,
        t0,
    )
    .await
    .unwrap();
    let listed = devices::list(&t.db, ivan.id, day).await.unwrap();
    assert_eq!(listed.len(), 2);
    devices::revoke(&t.db, ivan.id, phone.device_id, day)
        .await
        .unwrap();
    devices::revoke(&t.db, ivan.id, phone.device_id, day)
        .await
        .unwrap();
    assert!(matches!(
        devices::check(&t.db, ivan.id, phone.expose(), day).await,
        Err(Error::Revoked)
    ));
    let listed = devices::list(&t.db, ivan.id, day).await.unwrap();
    assert_eq!(
        listed.iter().map(|d| d.id).collect::<Vec<_>>(),
        [laptop.device_id]
    );
    assert!(matches!(
        devices::revoke(&t.db, judy.id, laptop.device_id, day).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(devices::revoke_all(&t.db, ivan.id, day).await.unwrap(), 1);
    assert!(devices::list(&t.db, ivan.id, day).await.unwrap().is_empty());

    // Hostile input writes nothing.
    for (name, client) in [
        (Some("x\u{0}y"), ClientInfo::default()),
        (Some(&*"n".repeat(10_000)), ClientInfo::default()),
        (
            None,
            ClientInfo {
                ip: Some("1.2.3.4'; DROP TABLE users; --"),
                user_agent: None,
            },
        ),
    ] {
        assert!(matches!(
            devices::trust(&t.db, judy.id, name, client, ttl, t0).await,
            Err(Error::InvalidInput { .. })
        ));
    }
    assert_eq!(t.count("mfa_trusted_devices").await, 2);
}

async fn enrollment_rules_and_hostile_input(t: TestDb) {
    let config = config();
    let mfa = Mfa::new(&config);
    let user = insert_user(&t, "kim").await;
    let t0 = step_start();
    // Enrolling again before confirming replaces the pending enrollment.
    let first = mfa
        .enroll(&t.db, user.id, "Gatehouse", &user.email, t0)
        .await
        .unwrap();
    let second = mfa
        .enroll(&t.db, user.id, "Gatehouse", &user.email, t0)
        .await
        .unwrap();
    assert_ne!(first.config_id, second.config_id);
    assert_eq!(t.count("mfa_configurations").await, 1);
    assert!(matches!(
        mfa.confirm(
            &t.db,
            user.id,
            &code(first.secret(), totp::step_at(t0)),
            None,
            t0
        )
        .await,
        Err(Error::InvalidCredentials)
    ));
    mfa.confirm(
        &t.db,
        user.id,
        &code(second.secret(), totp::step_at(t0)),
        None,
        t0,
    )
    .await
    .unwrap();
    assert!(matches!(
        mfa.confirm(&t.db, user.id, "123456", None, t0).await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        mfa.enroll(&t.db, user.id, "Gatehouse", &user.email, t0)
            .await,
        Err(Error::Conflict { .. })
    ));
    devices::trust(
        &t.db,
        user.id,
        None,
        CLIENT,
        Duration::days(devices::DEFAULT_TRUST_DAYS),
        t0,
    )
    .await
    .unwrap();

    // Malformed codes are typed errors and record nothing.
    for bad in ["", "12345", "1234567", "12a456", "1' OR '1'='1", "\u{0}"] {
        assert!(matches!(
            mfa.verify_totp(&t.db, user.id, bad, CLIENT, t0).await,
            Err(Error::InvalidInput { field: "code", .. })
        ));
    }
    assert!(matches!(
        mfa.verify_totp(&t.db, user.id, &"9".repeat(10_000), CLIENT, t0)
            .await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        mfa.verify_backup_code(&t.db, user.id, "abcde-fghju", CLIENT, t0)
            .await,
        Err(Error::InvalidInput {
            field: "backup_code",
            ..
        })
    ));
    assert_eq!(t.count("failed_login_attempts").await, 0);

    // Disabling removes configuration, codes and devices together.
    mfa.disable(&t.db, user.id, None, Utc::now()).await.unwrap();
    for table in [
        "mfa_configurations",
        "mfa_backup_codes",
        "mfa_trusted_devices",
    ] {
        assert_eq!(t.count(table).await, 0, "{table}");
    }
    assert!(matches!(
        mfa.disable(&t.db, user.id, None, Utc::now()).await,
        Err(Error::NotFound(_))
    ));
    assert!(!mfa.is_enabled(&t.db, user.id).await.unwrap());

    // Hostile issuer and account names, unknown users: typed errors, nothing written.
    let long = "a".repeat(10_000);
    for (issuer, account) in [
        ("Gate\u{0}house", "kim"),
        ("Gatehouse", long.as_str()),
        ("Evil:Issuer", "kim"),
        ("Gatehouse", ""),
        ("Gatehouse", "kim\r\nX-Injected: 1"),
    ] {
        assert!(matches!(
            mfa.enroll(&t.db, user.id, issuer, account, t0).await,
            Err(Error::InvalidInput { .. })
        ));
    }
    assert!(matches!(
        mfa.enroll(&t.db, Uuid::now_v7(), "Gatehouse", "ghost", t0)
            .await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(t.count("mfa_configurations").await, 0);
    // Mixed Unicode forms are percent-encoded as given.
    let enrollment = mfa
        .enroll(&t.db, user.id, "Gäte\u{301}house", "kim", t0)
        .await
        .unwrap();
    assert!(
        enrollment
            .otpauth_uri()
            .starts_with("otpauth://totp/G%C3%A4te%CC%81house:kim?secret=")
    );
}

async fn otpauth_uri_and_debug_output(t: TestDb) {
    let known = TotpSecret::from_bytes(*b"12345678901234567890");
    assert_eq!(
        totp::otpauth_uri("ACME Co", "john.doe@email.com", &known).unwrap(),
        "otpauth://totp/ACME%20Co:john.doe%40email.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30"
    );

    let config = config();
    let mfa = Mfa::new(&config);
    let user = insert_user(&t, "leo").await;
    let t0 = step_start();
    let enrollment = mfa
        .enroll(&t.db, user.id, "Gatehouse", &user.email, t0)
        .await
        .unwrap();
    let uri = enrollment.otpauth_uri().to_owned();
    let (path, query) = uri.split_once('?').unwrap();
    assert_eq!(path, "otpauth://totp/Gatehouse:leo%40example.com");
    let params: Vec<(&str, &str)> = query
        .split('&')
        .map(|p| p.split_once('=').unwrap())
        .collect();
    let secret_b32 = params.iter().find(|(k, _)| *k == "secret").unwrap().1;
    assert_eq!(
        BASE32_NOPAD.decode(secret_b32.as_bytes()).unwrap(),
        enrollment.secret().expose()
    );
    assert_eq!(
        params[1..],
        [
            ("issuer", "Gatehouse"),
            ("algorithm", "SHA1"),
            ("digits", "6"),
            ("period", "30")
        ]
    );

    let codes = mfa
        .confirm(
            &t.db,
            user.id,
            &code(enrollment.secret(), totp::step_at(t0)),
            None,
            t0,
        )
        .await
        .unwrap();
    let device = devices::trust(&t.db, user.id, None, CLIENT, Duration::days(1), t0)
        .await
        .unwrap();
    let debug = format!(
        "{enrollment:?} {:?} {codes:?} {device:?} {mfa:?} {config:?}",
        enrollment.secret()
    );
    assert!(!debug.contains(secret_b32), "{debug}");
    assert!(!debug.contains(device.expose()), "{debug}");
    for code in codes.expose() {
        assert!(
            !debug.contains(code) && !debug.contains(&code[..5]),
            "{debug}"
        );
    }
    assert!(debug.contains("redacted"));
}
