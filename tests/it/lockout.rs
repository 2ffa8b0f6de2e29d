//! The login state machine attacked: second factors guessed after a right
//! password, parallel guesses, lockout as a denial-of-service lever and as an
//! oracle, and the audit trail of failures.

use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use gatehouse::accounts::{Accounts, AccountsPolicy, Argon2idHasher, Credentials, NewAccount};
use gatehouse::lockout::LockoutPolicy;
use gatehouse::login::{LoginRequest, login};
use gatehouse::mfa::{Mfa, TotpSecret, totp};
use gatehouse::sessions::{SessionPolicy, Sessions};
use gatehouse::{ClientInfo, Config, Error};
use gatehouse_entity::{audit_logs, users};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::accounts::{Counting, PASSPHRASE};
use crate::counting::{Call, Counting as CountingDb};
use crate::support::TestDb;

backend_tests!(run_migrated:
    wrong_codes_after_a_right_password_are_throttled_and_change_nothing,
    parallel_wrong_guesses_verify_at_most_the_limit,
    a_failing_source_cannot_lock_the_owner_out,
    the_account_ceiling_locks_every_source,
    locked_unknown_disabled_and_wrong_answer_alike,
    failed_logins_are_audited_with_user_factor_and_identifier,
);

const HMAC_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const DATA_HEX: &str = "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40";
const ATTACKER: &str = "203.0.113.66";
const OWNER: &str = "198.51.100.7";

type Service = Accounts<Counting<Argon2idHasher>>;

async fn service(policy: LockoutPolicy) -> Service {
    Accounts::with_policy(
        Counting::new(Argon2idHasher::default()),
        AccountsPolicy {
            lockout: policy,
            ..AccountsPolicy::default()
        },
    )
    .await
    .unwrap()
}

/// Whole seconds, so that every backend stores the instant exactly.
fn start() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

async fn register(t: &TestDb, accounts: &Service, name: &str) -> users::Model {
    let account = accounts
        .register(
            &t.db,
            NewAccount {
                email: &format!("{name}@example.com"),
                username: name,
                password: PASSPHRASE,
            },
            start(),
        )
        .await
        .unwrap();
    users::Entity::find_by_id(account.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap()
}

fn credentials<'a>(identifier: &'a str, password: &'a str, ip: &'a str) -> Credentials<'a> {
    Credentials {
        identifier,
        password,
        client: ClientInfo {
            ip: Some(ip),
            user_agent: Some("tests"),
        },
    }
}

async fn user_row(t: &TestDb, id: uuid::Uuid) -> users::Model {
    users::Entity::find_by_id(id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap()
}

/// Enrolls and confirms TOTP for `user`; returns the secret.
async fn enable_mfa(t: &TestDb, mfa: &Mfa, user: &users::Model, now: DateTime<Utc>) -> TotpSecret {
    let enrollment = mfa
        .enroll(&t.db, user.id, "gatehouse", &user.username, now)
        .await
        .unwrap();
    let secret = TotpSecret::from_bytes(*enrollment.secret().expose());
    mfa.confirm(
        &t.db,
        user.id,
        &format!("{:06}", secret.code_at(now)),
        None,
        now,
    )
    .await
    .unwrap();
    secret
}

fn wrong(secret: &TotpSecret, step: i64) -> String {
    format!("{:06}", (secret.code_at_step(step) + 1) % 1_000_000)
}

async fn wrong_codes_after_a_right_password_are_throttled_and_change_nothing(t: TestDb) {
    let config = Config::from_values(HMAC_HEX, DATA_HEX).unwrap();
    let mfa = Mfa::new(&config);
    let sessions = Sessions::load(&t.db, &config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let policy = LockoutPolicy::default();
    let accounts = service(policy).await;
    let user = register(&t, &accounts, "ivy").await;
    let t0 = start();
    let secret = enable_mfa(&t, &mfa, &user, t0).await;
    let before = user_row(&t, user.id).await;

    // With the phished password, twelve guesses at the code, each as soon as
    // the back-off allows: only the policy's five are checked.
    let mut at = t0 + Duration::seconds(totp::PERIOD_SECS);
    let (mut refused_wrong, mut throttled) = (0, 0);
    for k in 1..=12u32 {
        let code = wrong(&secret, totp::step_at(at));
        let request = LoginRequest {
            identifier: "ivy",
            password: PASSPHRASE,
            second_factor: Some(&code),
            client: ClientInfo {
                ip: Some(ATTACKER),
                user_agent: None,
            },
        };
        match login(&t.db, &accounts, &sessions, Some(&mfa), request, at).await {
            Err(Error::InvalidCredentials) => refused_wrong += 1,
            Err(Error::RateLimited { .. }) => throttled += 1,
            other => panic!("guess {k}: {other:?}"),
        }
        at += policy.backoff(k.min(policy.source_max_failures));
    }
    assert_eq!(refused_wrong, policy.source_max_failures);
    assert_eq!(throttled, 12 - policy.source_max_failures);
    // The right code from the attacker's source is refused too now.
    let right = format!("{:06}", secret.code_at(at));
    let request = LoginRequest {
        identifier: "ivy",
        password: PASSPHRASE,
        second_factor: Some(&right),
        client: ClientInfo {
            ip: Some(ATTACKER),
            user_agent: None,
        },
    };
    assert!(matches!(
        login(&t.db, &accounts, &sessions, Some(&mfa), request, at).await,
        Err(Error::RateLimited { .. })
    ));
    let after = user_row(&t, user.id).await;
    assert_eq!(
        after.last_login_at, before.last_login_at,
        "no login completed"
    );
    assert_eq!(after.last_login_ip, before.last_login_ip);
    assert_eq!(t.count("sessions").await, 0);
    assert_eq!(
        t.count("failed_login_attempts WHERE attempt_kind = 'otp'")
            .await,
        i64::from(policy.source_max_failures)
    );
    // Without a code the right password asks for one and counts nothing.
    let owner_at = at;
    let ask = LoginRequest {
        identifier: "ivy",
        password: PASSPHRASE,
        second_factor: None,
        client: ClientInfo {
            ip: Some(OWNER),
            user_agent: None,
        },
    };
    for i in 0..3 {
        assert!(matches!(
            login(
                &t.db,
                &accounts,
                &sessions,
                Some(&mfa),
                ask,
                owner_at + Duration::seconds(i)
            )
            .await,
            Err(Error::MfaRequired)
        ));
    }
    // The owner, from elsewhere, completes the login; only then do the
    // account's last-login fields move.
    let request = LoginRequest {
        second_factor: Some(&right),
        ..ask
    };
    let done = login(&t.db, &accounts, &sessions, Some(&mfa), request, owner_at)
        .await
        .unwrap();
    let after = user_row(&t, user.id).await;
    assert_eq!(after.last_login_at, Some(owner_at));
    assert_eq!(after.last_login_ip.as_deref(), Some(OWNER));
    assert_eq!(after.failed_login_count, 0);
    assert!(done.second_factor.is_some());
}

async fn parallel_wrong_guesses_verify_at_most_the_limit(t: TestDb) {
    let policy = LockoutPolicy::default();
    let accounts = Arc::new(service(policy).await);
    register(&t, &accounts, "jack").await;
    let before = accounts.hasher().verifies();
    let now = start();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let (accounts, db) = (Arc::clone(&accounts), t.db.clone());
        tasks.push(tokio::spawn(async move {
            let password = format!("wrong guess number {i:02} here");
            accounts
                .authenticate(&db, credentials("jack", &password, ATTACKER), now)
                .await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let verified = accounts.hasher().verifies() - before;
    assert!(answers.iter().all(|a| matches!(
        a,
        Err(Error::InvalidCredentials | Error::RateLimited { .. })
    )));
    let wrong = answers
        .iter()
        .filter(|a| matches!(a, Err(Error::InvalidCredentials)))
        .count();
    assert_eq!(
        verified, wrong,
        "each refusal for a wrong password verified once"
    );
    assert!(
        (1..=policy.source_max_failures as usize).contains(&verified),
        "30 concurrent guesses verified {verified} passwords"
    );
    // Spread over time as fast as the back-off allows, the source still gets
    // only the policy's attempts in total.
    let mut at = now;
    for _ in 0..30 {
        at += Duration::seconds(9);
        let _ = accounts
            .authenticate(
                &t.db,
                credentials("jack", "wrong guess, later", ATTACKER),
                at,
            )
            .await;
    }
    assert_eq!(
        accounts.hasher().verifies() - before,
        policy.source_max_failures as usize
    );
}

async fn a_failing_source_cannot_lock_the_owner_out(t: TestDb) {
    let policy = LockoutPolicy::default();
    let accounts = service(policy).await;
    let user = register(&t, &accounts, "kim").await;
    let mut at = start();
    // Five guesses every 15 minutes, for two hours: the old lever that kept
    // anyone's account locked.
    for round in 0..8 {
        for k in 1..=policy.source_max_failures {
            let _ = accounts
                .authenticate(
                    &t.db,
                    credentials("kim", "not the passphrase", ATTACKER),
                    at,
                )
                .await;
            at += policy.backoff(k);
        }
        // The owner signs in from home between the attacker's rounds.
        let account = accounts
            .authenticate(&t.db, credentials("kim", PASSPHRASE, OWNER), at)
            .await
            .unwrap_or_else(|e| panic!("round {round}: the owner is refused: {e}"));
        assert_eq!(account.id, user.id);
        assert!(matches!(
            accounts
                .authenticate(&t.db, credentials("kim", PASSPHRASE, ATTACKER), at)
                .await,
            Err(Error::RateLimited { .. })
        ));
        at += policy.source_window + Duration::seconds(1);
    }
    let row = user_row(&t, user.id).await;
    assert!(row.locked_until.is_none(), "never locked: {row:?}");
    assert!(!row.is_locked);
}

async fn the_account_ceiling_locks_every_source(t: TestDb) {
    let policy = LockoutPolicy {
        source_max_failures: 2,
        account_max_failures: 6,
        ..LockoutPolicy::default()
    };
    let accounts = service(policy).await;
    let user = register(&t, &accounts, "lee").await;
    let at = start();
    // Three sources, two failures each: the ceiling.
    for source in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        for k in 0..2 {
            let err = accounts
                .authenticate(
                    &t.db,
                    credentials("lee", "not the passphrase", source),
                    at + Duration::seconds(2 * k),
                )
                .await
                .unwrap_err();
            assert!(matches!(err, Error::InvalidCredentials), "{err}");
        }
    }
    let row = user_row(&t, user.id).await;
    assert_eq!(
        row.locked_until,
        Some(at + Duration::seconds(2) + policy.account_lock)
    );
    // Locked: the right password from a fresh source fails like a wrong one,
    // after the same one verification.
    let verifies = accounts.hasher().verifies();
    let err = accounts
        .authenticate(
            &t.db,
            credentials("lee", PASSPHRASE, OWNER),
            at + Duration::seconds(5),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err}");
    assert_eq!(accounts.hasher().verifies(), verifies + 1);
    // After the lock the owner gets in and the count starts afresh.
    let later = at + Duration::seconds(3) + policy.account_lock;
    accounts
        .authenticate(&t.db, credentials("lee", PASSPHRASE, OWNER), later)
        .await
        .unwrap();
    let row = user_row(&t, user.id).await;
    assert_eq!(row.failed_login_count, 0);
    assert_eq!(row.locked_until, None);
}

async fn locked_unknown_disabled_and_wrong_answer_alike(t: TestDb) {
    let policy = LockoutPolicy::default();
    let accounts = service(policy).await;
    let now = start();
    register(&t, &accounts, "wrongpw").await;
    let locked = register(&t, &accounts, "adminlocked").await;
    let ceiling = register(&t, &accounts, "ceiling").await;
    let disabled = register(&t, &accounts, "disabled").await;
    let mut row: users::ActiveModel = locked.into();
    row.is_locked = Set(true);
    row.update(&t.db).await.unwrap();
    let mut row: users::ActiveModel = ceiling.into();
    row.locked_until = Set(Some(now + Duration::minutes(10)));
    row.update(&t.db).await.unwrap();
    let mut row: users::ActiveModel = disabled.into();
    row.is_active = Set(false);
    row.update(&t.db).await.unwrap();

    let counting = CountingDb::new(t.db.clone());
    let mut traces = Vec::new();
    for (identifier, password) in [
        ("wrongpw", "not the passphrase"),
        ("adminlocked", PASSPHRASE),
        ("ceiling", PASSPHRASE),
        ("disabled", PASSPHRASE),
        ("nobody-here", PASSPHRASE),
    ] {
        let verifies = accounts.hasher().verifies();
        let err = accounts
            .authenticate(&counting, credentials(identifier, password, ATTACKER), now)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidCredentials),
            "{identifier}: {err}"
        );
        assert_eq!(err.to_string(), Error::InvalidCredentials.to_string());
        assert_eq!(
            accounts.hasher().verifies(),
            verifies + 1,
            "{identifier}: one verification"
        );
        let calls = counting.take();
        assert!(calls.contains(&Call::Begin), "{identifier}: {calls:?}");
        traces.push((identifier, calls));
    }
    let (first, expected) = &traces[0];
    for (identifier, calls) in &traces[1..] {
        assert_eq!(
            calls, expected,
            "{identifier} runs other statements than {first}"
        );
    }
}

async fn failed_logins_are_audited_with_user_factor_and_identifier(t: TestDb) {
    let config = Config::from_values(HMAC_HEX, DATA_HEX).unwrap();
    let mfa = Mfa::new(&config);
    let sessions = Sessions::load(&t.db, &config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let accounts = service(LockoutPolicy::default()).await;
    let user = register(&t, &accounts, "mia").await;
    let t0 = start();
    let secret = enable_mfa(&t, &mfa, &user, t0).await;
    let at = t0 + Duration::seconds(totp::PERIOD_SECS);
    let (db, accounts, sessions, mfa) = (&t.db, &accounts, &sessions, &mfa);
    let attempt = |password: &'static str, code: Option<String>, ip: &'static str| async move {
        let request = LoginRequest {
            identifier: "MIA@Example.com",
            password,
            second_factor: code.as_deref(),
            client: ClientInfo {
                ip: Some(ip),
                user_agent: None,
            },
        };
        login(db, accounts, sessions, Some(mfa), request, at).await
    };
    assert!(matches!(
        attempt("not the passphrase", None, "203.0.113.1").await,
        Err(Error::InvalidCredentials)
    ));
    assert!(matches!(
        attempt(
            PASSPHRASE,
            Some(wrong(&secret, totp::step_at(at))),
            "203.0.113.2"
        )
        .await,
        Err(Error::InvalidCredentials)
    ));
    let failures = audit_logs::Entity::find()
        .filter(
            audit_logs::Column::Outcome
                .eq(gatehouse_entity::sea_orm_active_enums::AuditOutcome::Failure),
        )
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(failures.len(), 2);
    let find = |factor: &str| {
        failures
            .iter()
            .find(|row| row.metadata.as_ref().is_some_and(|m| m["factor"] == factor))
            .unwrap_or_else(|| panic!("no {factor} failure: {failures:?}"))
    };
    let password = find("password");
    assert_eq!(password.user_id, Some(user.id));
    assert_eq!(password.action, gatehouse::login::ACTION_PASSWORD);
    assert_eq!(
        password.metadata.as_ref().unwrap()["identifier"],
        "mia@example.com"
    );
    let otp = find("otp");
    assert_eq!(otp.user_id, Some(user.id));
    assert_eq!(otp.action, gatehouse::login::ACTION_TOTP);
    assert_eq!(
        t.count("failed_login_attempts WHERE attempt_kind = 'otp'")
            .await,
        1
    );
}
