//! Accounts on every backend: registration and its uniqueness under
//! concurrency, authentication with lockout and rehashing, password history,
//! resets, administration, hostile input and secrets kept out of `Debug`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, SubsecRound, Utc};
use gatehouse::ClientInfo;
use gatehouse::Error;
use gatehouse::accounts::{
    self, Accounts, AccountsPolicy, Argon2Costs, Argon2idHasher, Credentials, NewAccount,
    PasswordHasher,
};
use gatehouse::rbac::Actor;
use gatehouse_entity::sea_orm_active_enums::MfaMethod;
use gatehouse_entity::{mfa_configurations, sessions, users};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::support::TestDb;

backend_tests!(run_migrated:
    unknown_accounts_cost_one_verification_against_a_dummy_made_once,
    stored_hashes_are_standard_phc_strings,
    hashes_are_renewed_when_parameters_change_and_never_on_a_wrong_password,
    the_last_twelve_passwords_cannot_be_reused,
    changing_a_password_checks_the_current_one_and_revokes_sessions,
    accounts_with_mfa_may_choose_shorter_passwords,
    concurrent_registrations_of_one_email_make_one_account,
    unicode_forms_of_one_name_are_one_account,
    failures_lock_the_account_until_the_lock_ends,
    reset_tokens_work_once_expire_and_revoke_sessions,
    administrators_lock_unlock_list_and_delete,
    hostile_input_gets_typed_errors_and_writes_nothing,
    debug_output_shows_no_secret,
    hashing_is_bounded_by_the_policy,
    listing_reads_what_the_entity_reads,
);

pub(crate) const PASSPHRASE: &str = "plum orchard under winter light";

/// A real hasher that counts its calls.
#[derive(Debug, Default)]
pub(crate) struct Counting<H> {
    inner: H,
    hashes: AtomicUsize,
    verifies: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl<H> Counting<H> {
    pub(crate) fn new(inner: H) -> Self {
        Self {
            inner,
            hashes: AtomicUsize::new(0),
            verifies: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Most hashes or verifications that ran at the same moment.
    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    fn running<T>(&self, work: impl FnOnce() -> T) -> T {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let out = work();
        self.running.fetch_sub(1, Ordering::SeqCst);
        out
    }

    fn hashes(&self) -> usize {
        self.hashes.load(Ordering::SeqCst)
    }

    pub(crate) fn verifies(&self) -> usize {
        self.verifies.load(Ordering::SeqCst)
    }
}

impl<H: PasswordHasher> PasswordHasher for Counting<H> {
    fn hash(&self, password: &str) -> Result<String, Error> {
        self.hashes.fetch_add(1, Ordering::SeqCst);
        self.running(|| self.inner.hash(password))
    }

    fn verify(&self, password: &str, phc: &str) -> Result<bool, Error> {
        self.verifies.fetch_add(1, Ordering::SeqCst);
        self.running(|| self.inner.verify(password, phc))
    }

    fn needs_rehash(&self, phc: &str) -> bool {
        self.inner.needs_rehash(phc)
    }
}

/// Whole seconds, so that every backend stores the instant exactly.
fn start() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

async fn service() -> Accounts<Counting<Argon2idHasher>> {
    Accounts::new(Counting::new(Argon2idHasher::default()))
        .await
        .expect("the service starts")
}

fn new_account<'a>(name: &'a str, email: &'a str) -> NewAccount<'a> {
    NewAccount {
        email,
        username: name,
        password: PASSPHRASE,
    }
}

fn login<'a>(identifier: &'a str, password: &'a str) -> Credentials<'a> {
    Credentials {
        identifier,
        password,
        client: ClientInfo {
            ip: Some("203.0.113.9"),
            user_agent: Some("tests"),
        },
    }
}

async fn user_row(t: &TestDb, id: Uuid) -> users::Model {
    users::Entity::find_by_id(id)
        .one(&t.db)
        .await
        .unwrap()
        .expect("user exists")
}

async fn insert_session(t: &TestDb, user_id: Uuid, now: DateTime<Utc>) -> Uuid {
    let id = Uuid::now_v7();
    sessions::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        token_hash: Set(crate::support::sha256_hex(id.as_bytes())),
        created_at: Set(now),
        last_activity_at: Set(now),
        expires_at: Set(now + Duration::hours(8)),
        is_revoked: Set(false),
        security_version: Set(1),
        risk_score: Set(0),
        ..Default::default()
    }
    .insert(&t.db)
    .await
    .expect("session inserts");
    id
}

async fn live_sessions(t: &TestDb, user_id: Uuid) -> usize {
    sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::IsRevoked.eq(false))
        .all(&t.db)
        .await
        .unwrap()
        .len()
}

async fn unknown_accounts_cost_one_verification_against_a_dummy_made_once(t: TestDb) {
    let now = start();
    let accounts = service().await;
    assert_eq!(
        accounts.hasher().hashes(),
        1,
        "the dummy hash is made at start"
    );
    let alice = accounts
        .register(&t.db, new_account("alice", "alice@example.com"), now)
        .await
        .unwrap();
    let hasher = accounts.hasher();
    let (hashes, verifies) = (hasher.hashes(), hasher.verifies());
    assert_eq!(hashes, 2);

    for (i, who) in ["nobody@example.com", "nobody", "nobody@example.com"]
        .into_iter()
        .enumerate()
    {
        let err = accounts
            .authenticate(&t.db, login(who, PASSPHRASE), now)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials), "{err}");
        assert_eq!(hasher.verifies(), verifies + i + 1, "one verification each");
    }
    assert_eq!(
        hasher.hashes(),
        hashes,
        "the dummy hash is never made again"
    );

    // A known account with a wrong password costs the same one verification.
    let err = accounts
        .authenticate(&t.db, login("alice", "not the right passphrase"), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials));
    assert_eq!(hasher.verifies(), verifies + 4);
    assert_eq!(hasher.hashes(), hashes);

    // Every failure is recorded, the unknown ones without an account.
    assert_eq!(
        t.count("failed_login_attempts WHERE user_id IS NULL").await,
        3
    );
    assert_eq!(
        t.count("failed_login_attempts WHERE user_id IS NOT NULL AND identifier = 'alice'")
            .await,
        1
    );
    let ok = accounts
        .authenticate(&t.db, login("ALICE@example.com", PASSPHRASE), now)
        .await
        .unwrap();
    assert_eq!(ok.id, alice.id);
    assert_eq!(ok.last_login_ip.as_deref(), Some("203.0.113.9"));
}

async fn stored_hashes_are_standard_phc_strings(t: TestDb) {
    let accounts = service().await;
    let bob = accounts
        .register(&t.db, new_account("bob", "bob@example.com"), start())
        .await
        .unwrap();
    let stored = user_row(&t, bob.id).await.password_hash;
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    let parsed = argon2::PasswordHash::new(&stored).expect("argon2 parses the stored hash");
    assert_eq!(parsed.algorithm.as_str(), "argon2id");
    assert_eq!(parsed.version, Some(19));
    let params = argon2::Params::try_from(&parsed).unwrap();
    assert_eq!(
        (params.m_cost(), params.t_cost(), params.p_cost()),
        (19_456, 2, 1)
    );
    assert_eq!(parsed.salt.expect("a salt").as_ref().len(), 16);
    assert_eq!(parsed.hash.expect("an output").len(), 32);
    use argon2::PasswordVerifier;
    assert!(
        argon2::Argon2::default()
            .verify_password(PASSPHRASE.as_bytes(), &parsed)
            .is_ok(),
        "any Argon2 implementation verifies it"
    );
}

async fn hashes_are_renewed_when_parameters_change_and_never_on_a_wrong_password(t: TestDb) {
    let now = start();
    let old = Accounts::new(Argon2idHasher::default()).await.unwrap();
    let carol = old
        .register(&t.db, new_account("carol", "carol@example.com"), now)
        .await
        .unwrap();
    let original = user_row(&t, carol.id).await.password_hash;

    let stronger = Argon2idHasher::new(Argon2Costs {
        t_cost: 3,
        ..Argon2Costs::OWASP_MIN
    })
    .unwrap();
    let accounts = Accounts::new(Counting::new(stronger)).await.unwrap();
    let made = accounts.hasher().hashes();

    let err = accounts
        .authenticate(&t.db, login("carol", "a wrong passphrase here"), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials));
    assert_eq!(accounts.hasher().hashes(), made, "no rehash on failure");
    assert_eq!(user_row(&t, carol.id).await.password_hash, original);

    accounts
        .authenticate(&t.db, login("carol", PASSPHRASE), now)
        .await
        .unwrap();
    assert_eq!(accounts.hasher().hashes(), made + 1, "rehashed once");
    let renewed = user_row(&t, carol.id).await.password_hash;
    assert!(
        renewed.starts_with("$argon2id$v=19$m=19456,t=3,p=1$"),
        "{renewed}"
    );

    accounts
        .authenticate(&t.db, login("carol", PASSPHRASE), now)
        .await
        .unwrap();
    assert_eq!(
        accounts.hasher().hashes(),
        made + 1,
        "current parameters: no rehash"
    );
    // The hash carries its parameters: the old service still verifies it.
    old.authenticate(&t.db, login("carol", PASSPHRASE), now)
        .await
        .unwrap();
}

fn nth_passphrase(i: usize) -> String {
    format!("history passphrase number {i:02} of many")
}

async fn the_last_twelve_passwords_cannot_be_reused(t: TestDb) {
    let now = start();
    let accounts = Accounts::new(Argon2idHasher::default()).await.unwrap();
    let current = nth_passphrase(12);
    let dave = accounts
        .register(
            &t.db,
            NewAccount {
                email: "dave@example.com",
                username: "dave",
                password: &current,
            },
            now,
        )
        .await
        .unwrap();
    // Twelve former passwords, 0 (oldest) to 11, hashed concurrently by the real hasher.
    let hashing: Vec<_> = (0..12)
        .map(|i| {
            tokio::task::spawn_blocking(move || {
                Argon2idHasher::default().hash(&nth_passphrase(i)).unwrap()
            })
        })
        .collect();
    let mut oldest = None;
    for (i, task) in hashing.into_iter().enumerate() {
        let id = Uuid::now_v7();
        oldest.get_or_insert(id);
        gatehouse_entity::password_history::ActiveModel {
            id: Set(id),
            user_id: Set(dave.id),
            password_hash: Set(task.await.unwrap()),
            changed_by: Set(Some(dave.id)),
            change_reason: Set(Some("change".into())),
            created_at: Set(now - Duration::minutes(60 - i as i64)),
        }
        .insert(&t.db)
        .await
        .unwrap();
    }
    // A change through the service keeps 12 archived in the history and
    // drops the oldest, 0.
    accounts
        .change_password(&t.db, dave.id, &current, &nth_passphrase(13), now)
        .await
        .unwrap();
    let kept = gatehouse_entity::password_history::Entity::find()
        .filter(gatehouse_entity::password_history::Column::UserId.eq(dave.id))
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(kept.len(), 12);
    assert!(
        kept.iter().all(|row| Some(row.id) != oldest),
        "0 was pruned"
    );

    let later = now + Duration::hours(1);
    // The current password (13) and the twelve before it (1 to 12) are refused.
    for i in 1..=13 {
        let err = accounts
            .change_password(
                &t.db,
                dave.id,
                &nth_passphrase(13),
                &nth_passphrase(i),
                later,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::PolicyViolation(_)),
            "password {i} was accepted again: {err}"
        );
    }
    assert_eq!(
        t.count("password_history").await,
        12,
        "refusals write nothing"
    );
    // The thirteenth former password is allowed again.
    accounts
        .change_password(
            &t.db,
            dave.id,
            &nth_passphrase(13),
            &nth_passphrase(0),
            later,
        )
        .await
        .unwrap();
    accounts
        .authenticate(&t.db, login("dave", &nth_passphrase(0)), later)
        .await
        .unwrap();
}

async fn changing_a_password_checks_the_current_one_and_revokes_sessions(t: TestDb) {
    let now = start();
    let accounts = service().await;
    let erin = accounts
        .register(&t.db, new_account("erin", "erin@example.com"), now)
        .await
        .unwrap();
    insert_session(&t, erin.id, now).await;
    insert_session(&t, erin.id, now).await;
    let other = accounts
        .register(&t.db, new_account("frank", "frank@example.com"), now)
        .await
        .unwrap();
    insert_session(&t, other.id, now).await;

    let new = "a fresh passphrase for erin today";
    let err = accounts
        .change_password(&t.db, erin.id, "not her current passphrase", new, now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err}");
    assert_eq!(live_sessions(&t, erin.id).await, 2);
    let err = accounts
        .change_password(&t.db, erin.id, PASSPHRASE, "too short", now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PolicyViolation(_)), "{err}");
    let err = accounts
        .change_password(&t.db, erin.id, PASSPHRASE, "Erin@Example.com", now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PolicyViolation(_)), "{err}");

    accounts
        .change_password(&t.db, erin.id, PASSPHRASE, new, now)
        .await
        .unwrap();
    assert_eq!(live_sessions(&t, erin.id).await, 0, "every session revoked");
    assert_eq!(
        live_sessions(&t, other.id).await,
        1,
        "other accounts keep theirs"
    );
    let revoked = sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(erin.id))
        .all(&t.db)
        .await
        .unwrap();
    assert!(
        revoked.iter().all(|s| s.revoked_at == Some(now)
            && s.revoked_reason.as_deref() == Some("password changed"))
    );
    let history = gatehouse_entity::password_history::Entity::find()
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].changed_by, Some(erin.id));
    assert_eq!(user_row(&t, erin.id).await.password_changed_at, Some(now));

    let err = accounts
        .authenticate(&t.db, login("erin", PASSPHRASE), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials));
    accounts
        .authenticate(&t.db, login("erin", new), now)
        .await
        .unwrap();
}

async fn accounts_with_mfa_may_choose_shorter_passwords(t: TestDb) {
    let now = start();
    let accounts = service().await;
    let gina = accounts
        .register(&t.db, new_account("gina", "gina@example.com"), now)
        .await
        .unwrap();
    let short = "Kq7!vRz2pL"; // ten characters, on no list
    let err = accounts
        .change_password(&t.db, gina.id, PASSPHRASE, short, now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PolicyViolation(_)), "{err}");
    mfa_configurations::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(gina.id),
        method: Set(MfaMethod::Totp),
        secret_encrypted: Set("not used here".into()),
        is_enabled: Set(true),
        is_verified: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&t.db)
    .await
    .unwrap();
    let err = accounts
        .change_password(&t.db, gina.id, PASSPHRASE, "password1", now)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::PolicyViolation(_)),
        "common passwords stay refused"
    );
    accounts
        .change_password(&t.db, gina.id, PASSPHRASE, short, now)
        .await
        .unwrap();
}

async fn concurrent_registrations_of_one_email_make_one_account(t: TestDb) {
    let accounts = Arc::new(service().await);
    let now = start();
    // Sixteen spellings of one address: case, fullwidth letters (NFKC), the Kelvin sign.
    let emails = [
        "kim@example.com",
        "KIM@example.com",
        "Kim@Example.com",
        "kIm@EXAMPLE.COM",
        "ｋｉｍ@example.com",
        "ＫＩＭ@example.com",
        "kim@ｅｘａｍｐｌｅ.ｃｏｍ",
        "ＫＩＭ@ＥＸＡＭＰＬＥ.ＣＯＭ",
        "\u{212A}im@example.com",
        "\u{212A}IM@example.COM",
        "kim＠example.com",
        "Ｋim@example.com",
        "kiＭ@example.com",
        "kim@Ｅxample.com",
        "KiM@eXaMpLe.CoM",
        "kim@example.ＣＯＭ",
    ];
    let mut tasks = Vec::new();
    for (i, email) in emails.into_iter().enumerate() {
        let accounts = Arc::clone(&accounts);
        let db = t.db.clone();
        tasks.push(tokio::spawn(async move {
            let username = format!("kim{i:02}");
            accounts
                .register(
                    &db,
                    NewAccount {
                        email,
                        username: &username,
                        password: PASSPHRASE,
                    },
                    now,
                )
                .await
        }));
    }
    let mut created = 0;
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(account) => {
                assert_eq!(account.email, "kim@example.com");
                created += 1;
            }
            Err(Error::Conflict { .. }) => conflicts += 1,
            Err(other) => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!((created, conflicts), (1, 15));
    assert_eq!(t.count("users").await, 1);
}

async fn unicode_forms_of_one_name_are_one_account(t: TestDb) {
    let now = start();
    let accounts = service().await;
    // Precomposed ë, then e + combining diaeresis: one username after NFKC.
    accounts
        .register(&t.db, new_account("zo\u{eb}", "zoe.one@example.com"), now)
        .await
        .unwrap();
    let err = accounts
        .register(&t.db, new_account("ZOE\u{308}", "zoe.two@example.com"), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    // A legitimate quote is stored literally, and logs in.
    let quoted = accounts
        .register(&t.db, new_account("obrien", "O'Brien@example.com"), now)
        .await
        .unwrap();
    assert_eq!(quoted.email, "o'brien@example.com");
    accounts
        .authenticate(&t.db, login("o'brien@example.com", PASSPHRASE), now)
        .await
        .unwrap();
    accounts
        .authenticate(&t.db, login("ZOE\u{308}", PASSPHRASE), now)
        .await
        .unwrap();
    assert_eq!(t.count("users").await, 2);
}

async fn failures_lock_the_account_until_the_lock_ends(t: TestDb) {
    // A source that keeps failing backs off and is then shut out of the
    // account (refused unverified) until the window passes; a completed login
    // then clears the counts.
    let now = start();
    let accounts = service().await;
    let policy = accounts.policy().lockout;
    let hank = accounts
        .register(&t.db, new_account("hank", "hank@example.com"), now)
        .await
        .unwrap();
    let mut at = now;
    for k in 1..=policy.source_max_failures {
        let err = accounts
            .authenticate(&t.db, login("hank", "wrong passphrase, again"), at)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidCredentials),
            "failure {k}: {err}"
        );
        at += policy.backoff(k);
    }
    let verifies = accounts.hasher().verifies();
    let err = accounts
        .authenticate(&t.db, login("hank", PASSPHRASE), at + Duration::minutes(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err}");
    assert_eq!(
        accounts.hasher().verifies(),
        verifies,
        "a shut-out source is not verified"
    );
    let later = at + policy.source_window + Duration::seconds(1);
    let account = accounts
        .authenticate(&t.db, login("hank", PASSPHRASE), later)
        .await
        .unwrap();
    assert_eq!(account.id, hank.id);
    assert_eq!(account.failed_login_count, 0);
    assert_eq!(account.last_login_at, Some(later));
    assert_eq!(user_row(&t, hank.id).await.failed_login_count, 0);
}

async fn reset_tokens_work_once_expire_and_revoke_sessions(t: TestDb) {
    let now = start();
    let accounts = service().await;
    let ivy = accounts
        .register(&t.db, new_account("ivy", "ivy@example.com"), now)
        .await
        .unwrap();
    insert_session(&t, ivy.id, now).await;
    insert_session(&t, ivy.id, now).await;

    assert!(
        accounts
            .request_password_reset(&t.db, "nobody@example.com", now)
            .await
            .unwrap()
            .is_none()
    );
    let reset = accounts
        .request_password_reset(&t.db, "IVY@example.com", now)
        .await
        .unwrap()
        .expect("a token for a live account");
    assert_eq!(reset.account.id, ivy.id);
    assert_eq!(reset.expires_at, now + Duration::minutes(30));
    let token = reset.token.expose().to_owned();
    assert_eq!(token.len(), 43);
    let row = user_row(&t, ivy.id).await;
    assert_eq!(
        row.password_reset_token_hash.as_deref(),
        Some(crate::support::sha256_hex(token.as_bytes()).as_str()),
        "only the SHA-256 of the token is stored"
    );

    // A refused password leaves the token usable.
    let err = accounts
        .reset_password(&t.db, &token, "short", now + Duration::minutes(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PolicyViolation(_)));
    let err = accounts
        .reset_password(&t.db, &token, PASSPHRASE, now + Duration::minutes(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::PolicyViolation(_)),
        "the current password is not a new one"
    );

    let new = "ivy chose a brand new passphrase";
    let account = accounts
        .reset_password(&t.db, &token, new, now + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(account.id, ivy.id);
    assert_eq!(live_sessions(&t, ivy.id).await, 0, "sessions revoked");
    let err = accounts
        .reset_password(
            &t.db,
            &token,
            "and yet another passphrase",
            now + Duration::minutes(2),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Replayed), "single use: {err}");
    accounts
        .authenticate(&t.db, login("ivy", new), now + Duration::minutes(2))
        .await
        .unwrap();
    let err = accounts
        .authenticate(&t.db, login("ivy", PASSPHRASE), now + Duration::minutes(2))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials));
    let history = gatehouse_entity::password_history::Entity::find()
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].changed_by, None);
    assert_eq!(history[0].change_reason.as_deref(), Some("reset"));

    // A token expires.
    let later = now + Duration::hours(1);
    let reset = accounts
        .request_password_reset(&t.db, "ivy@example.com", later)
        .await
        .unwrap()
        .unwrap();
    let err = accounts
        .reset_password(
            &t.db,
            reset.token.expose(),
            "too late for this passphrase",
            later + Duration::minutes(31),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Expired), "{err}");
    accounts
        .authenticate(&t.db, login("ivy", new), later + Duration::minutes(32))
        .await
        .expect("the password did not change");

    // Unknown and malformed tokens.
    let unknown = data_encoding::BASE64URL_NOPAD.encode(&[7u8; 32]);
    let err = accounts
        .reset_password(&t.db, &unknown, "whatever passphrase it is", later)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err}");
    let err = accounts
        .reset_password(&t.db, "' OR 1=1 --", "whatever passphrase it is", later)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { field: "token", .. }));
}

async fn administrators_lock_unlock_list_and_delete(t: TestDb) {
    let now = start();
    let accounts = service().await;
    let jack = accounts
        .register(&t.db, new_account("jack", "jack@example.com"), now)
        .await
        .unwrap();
    let kate = accounts
        .register(
            &t.db,
            new_account("kate", "kate@example.com"),
            now + Duration::seconds(1),
        )
        .await
        .unwrap();
    insert_session(&t, jack.id, now).await;

    accounts::lock(&t.db, Actor::System, jack.id, now)
        .await
        .unwrap();
    assert_eq!(
        live_sessions(&t, jack.id).await,
        0,
        "locking revokes sessions"
    );
    let err = accounts
        .authenticate(&t.db, login("jack", PASSPHRASE), now)
        .await
        .unwrap_err();
    // An operator's lock answers like a wrong password: no oracle.
    assert!(matches!(err, Error::InvalidCredentials), "{err}");
    accounts::unlock(&t.db, Actor::System, jack.id, now)
        .await
        .unwrap();
    accounts
        .authenticate(&t.db, login("jack", PASSPHRASE), now)
        .await
        .unwrap();
    assert!(matches!(
        accounts::lock(&t.db, Actor::System, Uuid::now_v7(), now).await,
        Err(Error::NotFound(_))
    ));

    let listed = accounts::list_users(&t.db, false, 10, 0).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|a| a.username.as_str())
            .collect::<Vec<_>>(),
        ["jack", "kate"]
    );
    assert_eq!(
        accounts::list_users(&t.db, false, 1, 1).await.unwrap()[0].id,
        kate.id
    );
    assert!(matches!(
        accounts::list_users(&t.db, false, 0, 0).await,
        Err(Error::InvalidInput { field: "limit", .. })
    ));

    accounts::soft_delete(&t.db, Actor::System, kate.id, now)
        .await
        .unwrap();
    let err = accounts
        .authenticate(&t.db, login("kate", PASSPHRASE), now)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidCredentials),
        "deleted accounts cannot log in: {err}"
    );
    assert!(
        accounts
            .request_password_reset(&t.db, "kate@example.com", now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        accounts::soft_delete(&t.db, Actor::System, kate.id, now).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        accounts::list_users(&t.db, false, 10, 0)
            .await
            .unwrap()
            .len(),
        1
    );
    let all = accounts::list_users(&t.db, true, 10, 0).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].deleted_at, Some(now));

    // Inactive accounts cannot log in either.
    users::Entity::update_many()
        .col_expr(
            users::Column::IsActive,
            sea_orm::sea_query::Expr::value(false),
        )
        .filter(users::Column::Id.eq(jack.id))
        .exec(&t.db)
        .await
        .unwrap();
    let err = accounts
        .authenticate(&t.db, login("jack", PASSPHRASE), now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err}");
}

async fn row_counts(t: &TestDb) -> [i64; 4] {
    [
        t.count("users").await,
        t.count("failed_login_attempts").await,
        t.count("password_history").await,
        t.count("sessions").await,
    ]
}

/// Asserts `result` is [`Error::InvalidInput`] for `expected`.
#[track_caller]
fn invalid<T>(result: Result<T, Error>, expected: &str) {
    match result {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, expected),
        Err(other) => panic!("expected invalid {expected}, got {other:?}"),
        Ok(_) => panic!("expected invalid {expected}, got success"),
    }
}

async fn hostile_input_gets_typed_errors_and_writes_nothing(t: TestDb) {
    let now = start();
    let accounts = service().await;
    let lena = accounts
        .register(&t.db, new_account("lena", "lena@example.com"), now)
        .await
        .unwrap();
    let before = row_counts(&t).await;
    let hashes = accounts.hasher().hashes();
    let verifies = accounts.hasher().verifies();
    let huge = "A".repeat(10 * 1024);
    let huge_email = format!("{huge}@example.com");

    for email in [
        "x'; DROP TABLE users; --@example.com",
        "robert@example.com'); DELETE FROM users; --",
        "nul\0@example.com",
        huge_email.as_str(),
        "\u{202E}moc.elpmaxe@evil",
        "a@b",
    ] {
        invalid(
            accounts
                .register(&t.db, new_account("mallory", email), now)
                .await,
            "email",
        );
    }
    for username in [
        "bob'--",
        "nul\0byte",
        huge.as_str(),
        "zero\u{200B}width",
        "x",
    ] {
        invalid(
            accounts
                .register(&t.db, new_account(username, "mallory@example.com"), now)
                .await,
            "username",
        );
    }
    let nul_password = format!("{PASSPHRASE}\0");
    for password in [nul_password.as_str(), huge.as_str()] {
        invalid(
            accounts
                .register(
                    &t.db,
                    NewAccount {
                        email: "mallory@example.com",
                        username: "mallory",
                        password,
                    },
                    now,
                )
                .await,
            "password",
        );
    }
    for identifier in ["' OR '1'='1", "lena\0", huge.as_str(), huge_email.as_str()] {
        invalid(
            accounts
                .authenticate(&t.db, login(identifier, PASSPHRASE), now)
                .await,
            "identifier",
        );
    }
    invalid(
        accounts
            .authenticate(&t.db, login("lena", &huge), now)
            .await,
        "password",
    );
    invalid(
        accounts
            .authenticate(&t.db, login("lena", &nul_password), now)
            .await,
        "password",
    );
    invalid(
        accounts
            .change_password(&t.db, lena.id, PASSPHRASE, &huge, now)
            .await,
        "password",
    );
    invalid(
        accounts
            .request_password_reset(&t.db, "lena@example.com' --", now)
            .await,
        "email",
    );
    invalid(
        accounts.reset_password(&t.db, &huge, PASSPHRASE, now).await,
        "token",
    );

    assert_eq!(row_counts(&t).await, before, "nothing was written");
    assert_eq!(accounts.hasher().hashes(), hashes, "nothing was hashed");
    assert_eq!(
        accounts.hasher().verifies(),
        verifies,
        "nothing was verified"
    );
    assert_eq!(user_row(&t, lena.id).await.failed_login_count, 0);
}

async fn debug_output_shows_no_secret(t: TestDb) {
    let now = start();
    let accounts = service().await;
    let new = new_account("mona", "mona@example.com");
    let account = accounts.register(&t.db, new, now).await.unwrap();
    let reset = accounts
        .request_password_reset(&t.db, "mona@example.com", now)
        .await
        .unwrap()
        .unwrap();
    let token = reset.token.expose().to_owned();
    let stored = user_row(&t, account.id).await;
    let outputs = [
        format!("{new:?}"),
        format!("{:?}", login("mona", PASSPHRASE)),
        format!("{reset:?}"),
        format!("{:?}", reset.token),
        format!("{account:?}"),
        format!("{accounts:?}"),
    ];
    for output in outputs {
        assert!(!output.contains(PASSPHRASE), "{output}");
        assert!(!output.contains(&token), "{output}");
        assert!(!output.contains(&token[..12]), "{output}");
        assert!(!output.contains("$argon2"), "{output}");
        assert!(
            !output.contains(stored.password_reset_token_hash.as_deref().unwrap()),
            "{output}"
        );
    }
}

async fn hashing_is_bounded_by_the_policy(t: TestDb) {
    let policy = AccountsPolicy {
        hash_concurrency: 2,
        ..AccountsPolicy::default()
    };
    let accounts = std::sync::Arc::new(
        Accounts::with_policy(Counting::new(Argon2idHasher::default()), policy)
            .await
            .unwrap(),
    );
    let now = start();
    let logins: Vec<_> = (0..6)
        .map(|i| {
            let accounts = std::sync::Arc::clone(&accounts);
            let db = t.db.clone();
            tokio::spawn(async move {
                let name = format!("nobody{i}");
                accounts
                    .authenticate(&db, login(&name, PASSPHRASE), now)
                    .await
            })
        })
        .collect();
    for login in logins {
        assert!(matches!(
            login.await.unwrap(),
            Err(Error::InvalidCredentials)
        ));
    }
    assert_eq!(accounts.hasher().verifies(), 6);
    assert!(
        accounts.hasher().peak() <= 2,
        "{} hashes ran at once, the policy allows 2",
        accounts.hasher().peak()
    );
    let zero = AccountsPolicy {
        hash_concurrency: 0,
        ..AccountsPolicy::default()
    };
    assert!(matches!(
        Accounts::with_policy(Argon2idHasher::default(), zero).await,
        Err(Error::Config {
            var: "hash_concurrency",
            ..
        })
    ));
}

/// The listing decodes rows itself (see `accounts::listing`): every column,
/// NULL or not, must come out as sea-orm's entity decoding gives it.
async fn listing_reads_what_the_entity_reads(t: TestDb) {
    use sea_orm::QueryOrder;
    let now = Utc::now().trunc_subsecs(6);
    for i in 0..40 {
        let user = crate::support::insert_user(&t, &format!("lister{i:02}")).await;
        let mut row: users::ActiveModel = user.into();
        // Each nullable column is set on some rows and NULL on others.
        if i % 2 == 0 {
            row.locked_until = Set(Some(now + Duration::minutes(i)));
        }
        if i % 3 == 0 {
            row.last_login_at = Set(Some(now - Duration::hours(i)));
            row.last_login_ip = Set(Some(format!("203.0.113.{i}")));
        }
        if i % 4 == 0 {
            row.password_changed_at = Set(Some(now - Duration::days(i)));
            row.password_expires_at = Set(Some(now + Duration::days(i)));
        }
        if i % 5 == 0 {
            row.deleted_at = Set(Some(now));
            row.is_active = Set(false);
        }
        row.failed_login_count = Set(i as i32);
        row.created_at = Set(now - Duration::seconds(100 - i));
        row.update(&t.db).await.unwrap();
    }
    let expected: Vec<accounts::Account> = users::Entity::find()
        .order_by_asc(users::Column::CreatedAt)
        .order_by_asc(users::Column::Id)
        .all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(accounts::Account::from)
        .collect();
    assert_eq!(expected.len(), 40);
    assert_eq!(
        accounts::list_users(&t.db, true, 10_000, 0).await.unwrap(),
        expected
    );
    let live: Vec<_> = expected
        .iter()
        .filter(|a| a.deleted_at.is_none())
        .cloned()
        .collect();
    assert_eq!(
        accounts::list_users(&t.db, false, 100, 0).await.unwrap(),
        live
    );
    assert_eq!(
        accounts::list_users(&t.db, true, 5, 10).await.unwrap(),
        expected[10..15]
    );
    assert!(matches!(
        accounts::list_users(&t.db, true, 10_001, 0).await,
        Err(Error::InvalidInput { field: "limit", .. })
    ));
}
