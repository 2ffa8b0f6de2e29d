//! Keys that change only on purpose: a process with the wrong key refuses
//! to start and changes nothing; `gatehouse keys rotate` is explicit,
//! audited and race-free; the key ring (`*_PREVIOUS`) keeps sessions,
//! backup codes and TOTP secrets under a rotated key working, and without
//! it they are refused; `gatehouse doctor` reports the ring.

use std::process::{Command, Output, Stdio};

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use gatehouse::ClientInfo;
use gatehouse::mfa::Mfa;
use gatehouse::mfa::totp::{self, TotpSecret};
use gatehouse::sessions::{SessionPolicy, Sessions};
use gatehouse::{Config, Error, keys};
use gatehouse_entity::sea_orm_active_enums::KeyType;
use serde_json::Value;

use crate::operator::{expect, json, run_cmd, stderr, text};
use crate::support::{TestDb, insert_user};

backend_tests!(run_empty: existing_backup_codes_are_backfilled_with_the_session_key);
backend_tests!(run_migrated:
    rotation_with_the_ring_keeps_sessions_codes_and_secrets,
    a_wrong_key_refuses_to_start_and_changes_nothing,
    cli_rotation_is_audited_and_the_ring_keeps_working,
    concurrent_cli_rotations_one_wins,
);

const H1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const H2: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f";
const D1: &str = "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40";
const D2: &str = "4142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60";
const IP: &str = "198.51.100.7";
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0";
const CLIENT: ClientInfo<'static> = ClientInfo {
    ip: Some("203.0.113.9"),
    user_agent: Some("TestAgent/1.0"),
};
const PASSWORD: &str = "operator test passphrase, long enough";

fn client() -> ClientInfo<'static> {
    ClientInfo {
        ip: Some(IP),
        user_agent: Some(UA),
    }
}

/// A time at the start of a TOTP step, near the real clock.
fn step_start() -> DateTime<Utc> {
    let now = Utc::now().timestamp();
    Utc.timestamp_opt(now - now.rem_euclid(totp::PERIOD_SECS), 0)
        .unwrap()
        .trunc_subsecs(6)
}

fn code(secret: &TotpSecret, step: i64) -> String {
    format!("{:06}", secret.code_at_step(step))
}

/// Enrolls and confirms `user_id`; returns the secret and the backup codes.
async fn enable(
    t: &TestDb,
    mfa: &Mfa,
    user_id: uuid::Uuid,
    now: DateTime<Utc>,
) -> (TotpSecret, Vec<String>) {
    let enrollment = mfa
        .enroll(&t.db, user_id, "Gatehouse", "someone@example.com", now)
        .await
        .unwrap();
    let secret = TotpSecret::from_bytes(*enrollment.secret().expose());
    let codes = mfa
        .confirm(
            &t.db,
            user_id,
            &code(&secret, totp::step_at(now)),
            None,
            now,
        )
        .await
        .unwrap();
    (
        secret,
        codes.expose().into_iter().map(str::to_owned).collect(),
    )
}

async fn rotation_with_the_ring_keeps_sessions_codes_and_secrets(t: TestDb) {
    let t0 = step_start();
    let s = totp::step_at(t0);
    let c1 = Config::from_values(H1, D1).unwrap();
    let s1 = Sessions::load(&t.db, &c1.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let m1 = Mfa::new(&c1);
    let alice = insert_user(&t, "alice").await;
    let bob = insert_user(&t, "bob").await;
    // MFA first: enabling it ends the sessions opened before.
    let (secret_a, codes_a) = enable(&t, &m1, alice.id, t0).await;
    let (secret_b, codes_b) = enable(&t, &m1, bob.id, t0).await;
    let session_a = s1.create(&t.db, alice.id, client(), t0).await.unwrap();
    let session_b = s1.create(&t.db, bob.id, client(), t0).await.unwrap();
    let hmac_v1 = keys::active(&t.db, KeyType::Session)
        .await
        .unwrap()
        .unwrap();
    let data_v1 = keys::active(&t.db, KeyType::Data).await.unwrap().unwrap();
    let recorded: Vec<Option<uuid::Uuid>> = {
        use sea_orm::EntityTrait;
        gatehouse_entity::mfa_backup_codes::Entity::find()
            .all(&t.db)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.encryption_key_id)
            .collect()
    };
    assert_eq!(
        recorded,
        vec![Some(hmac_v1.id); 20],
        "new codes record the key they were digested with"
    );

    // The operator rotates both keys on purpose.
    let c2 = Config::from_values(H2, D2).unwrap();
    let hmac_v2 = keys::rotate(
        &t.db,
        KeyType::Session,
        &c2.hmac_key.fingerprint(),
        keys::HMAC_ALGORITHM,
        Some(hmac_v1.id),
        None,
        "test",
    )
    .await
    .unwrap();
    keys::rotate(
        &t.db,
        KeyType::Data,
        &c2.data_key.fingerprint(),
        keys::DATA_ALGORITHM,
        Some(data_v1.id),
        None,
        "test",
    )
    .await
    .unwrap();

    // With the ring: the old session, unused backup codes and the secret still work.
    let ring = Config::from_values(H2, D2)
        .unwrap()
        .with_previous(H1, D1)
        .unwrap();
    let s2 = Sessions::load_with_previous(
        &t.db,
        &ring.hmac_key,
        &ring.hmac_previous,
        SessionPolicy::default(),
    )
    .await
    .unwrap();
    assert_eq!(s2.key_id(), hmac_v2.id);
    assert_eq!(s2.previous_key_ids(), [hmac_v1.id]);
    let validated = s2
        .validate(&t.db, session_a.token.expose(), client(), t0)
        .await
        .unwrap();
    assert_eq!(
        validated.risk_score, 0,
        "the creating IP's hash is checked with the session's own key"
    );
    let fresh = s2.create(&t.db, alice.id, client(), t0).await.unwrap();
    assert_eq!(fresh.session.encryption_key_id, Some(hmac_v2.id));
    s2.validate(&t.db, fresh.token.expose(), client(), t0)
        .await
        .unwrap();
    let m2 = Mfa::new(&ring);
    m2.verify_backup_code(&t.db, alice.id, &codes_a[0], CLIENT, t0)
        .await
        .unwrap();
    assert!(matches!(
        m2.verify_backup_code(&t.db, alice.id, &codes_a[0], CLIENT, t0)
            .await,
        Err(Error::Replayed)
    ));
    m2.verify_totp(&t.db, alice.id, &code(&secret_a, s + 1), CLIENT, t0)
        .await
        .unwrap();
    let renewed = m2
        .regenerate_backup_codes(&t.db, alice.id, t0)
        .await
        .unwrap();
    assert_eq!(renewed.len(), 10);

    // Without the ring: refused (the session revoked as key_retired).
    let bare = Config::from_values(H2, D2).unwrap();
    let s3 = Sessions::load(&t.db, &bare.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let err = s3
        .validate(&t.db, session_b.token.expose(), client(), t0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Integrity(_)), "{err}");
    assert_eq!(
        t.count(&format!(
            "sessions WHERE revoked_reason = 'key_retired' AND token_hash = '{}'",
            session_b.token.hash()
        ))
        .await,
        1
    );
    let m3 = Mfa::new(&bare);
    assert!(matches!(
        m3.verify_backup_code(&t.db, bob.id, &codes_b[0], CLIENT, t0)
            .await,
        Err(Error::InvalidCredentials)
    ));
    assert!(matches!(
        m3.verify_totp(&t.db, bob.id, &code(&secret_b, s + 1), CLIENT, t0)
            .await,
        Err(Error::Integrity(_))
    ));
    // Re-encrypting with the ring moves the secrets; then no ring is needed.
    let report = m2.reencrypt_secrets(&t.db, t0).await.unwrap();
    assert_eq!((report.reencrypted, report.undecryptable.len()), (2, 0));
    m3.verify_totp(&t.db, bob.id, &code(&secret_b, s + 1), CLIENT, t0)
        .await
        .unwrap();

    // A ring key marked compromised verifies nothing any more.
    keys::mark_compromised(&t.db, hmac_v1.id, None, "leaked")
        .await
        .unwrap();
    let err = s2
        .validate(&t.db, session_a.token.expose(), client(), t0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Integrity(_)), "{err}");
    assert!(matches!(
        m2.verify_backup_code(&t.db, bob.id, &codes_b[1], CLIENT, t0)
            .await,
        Err(Error::InvalidCredentials)
    ));
}

async fn existing_backup_codes_are_backfilled_with_the_session_key(t: TestDb) {
    use gatehouse_migration::{Migrator, MigratorTrait};
    use sea_orm::{ActiveValue::NotSet, ActiveValue::Set, EntityTrait};
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261201_000003_record_backup_code_keys")
        .expect("the migration is registered");
    Migrator::up(&t.db, Some(u32::try_from(before).unwrap()))
        .await
        .unwrap();
    let user = insert_user(&t, "alice").await;
    let key = keys::ensure_configured(&t.db, KeyType::Session, &"a".repeat(64), "HMAC-SHA256")
        .await
        .unwrap();
    for i in 0..3 {
        gatehouse_entity::mfa_backup_codes::Entity::insert(
            gatehouse_entity::mfa_backup_codes::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                user_id: Set(user.id),
                code_hash: Set(format!("{i:064}")),
                encryption_key_id: NotSet,
                used_at: Set(None),
                created_at: Set(Utc::now()),
            },
        )
        .exec_without_returning(&t.db)
        .await
        .unwrap();
    }
    Migrator::up(&t.db, None).await.unwrap();
    let recorded: Vec<Option<uuid::Uuid>> = gatehouse_entity::mfa_backup_codes::Entity::find()
        .all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.encryption_key_id)
        .collect();
    assert_eq!(recorded, vec![Some(key.id); 3]);
    // The key record cannot be deleted while codes depend on it.
    assert!(
        gatehouse_entity::encryption_keys::Entity::delete_by_id(key.id)
            .exec(&t.db)
            .await
            .is_err()
    );
    // A complete down, and up again.
    Migrator::down(&t.db, Some(1)).await.unwrap();
    assert_eq!(t.count("mfa_backup_codes").await, 3);
    Migrator::up(&t.db, None).await.unwrap();
    assert_eq!(
        t.count("mfa_backup_codes WHERE encryption_key_id IS NOT NULL")
            .await,
        3
    );
}

// ---- the built binary ----

/// The binary pointed at `t` with the keys H1/D1 and no ring, outside the repository.
fn gatehouse(t: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.current_dir(std::env::temp_dir())
        .env_remove("RUST_LOG")
        .env_remove("HMAC_KEY_PREVIOUS")
        .env_remove("DATA_ENCRYPTION_KEY_PREVIOUS")
        .env("DATABASE_URL", &t.url)
        .env("HMAC_KEY", H1)
        .env("DATA_ENCRYPTION_KEY", D1);
    cmd
}

/// `encryption_keys` as text, to compare before and after.
async fn key_rows(t: &TestDb) -> Vec<String> {
    keys::list(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|k| format!("{k:?}"))
        .collect()
}

/// Creates `alice` and signs her in; returns the session token.
fn alice_session(t: &TestDb) -> String {
    let created = run_cmd(
        gatehouse(t).args([
            "user",
            "create",
            "--email",
            "alice@example.com",
            "--username",
            "alice",
        ]),
        &format!("{PASSWORD}\n"),
    );
    expect(&created, 0);
    let login = json(&run_cmd(
        gatehouse(t).args(["login", "alice", "--ip", IP, "--format", "json"]),
        &format!("{PASSWORD}\n"),
    ));
    login["token"].as_str().unwrap().to_owned()
}

async fn a_wrong_key_refuses_to_start_and_changes_nothing(t: TestDb) {
    let token = alice_session(&t);
    let before = key_rows(&t).await;
    assert_eq!(before.len(), 2, "login recorded both keys as version 1");

    let wrong = run_cmd(
        gatehouse(&t)
            .args(["session", "cleanup"])
            .env("HMAC_KEY", H2),
        "",
    );
    expect(&wrong, 2);
    let err = stderr(&wrong);
    assert!(err.contains("HMAC_KEY"), "{}", text(&wrong));
    assert!(err.contains("version 1"), "{}", text(&wrong));
    assert!(
        err.contains("gatehouse keys rotate hmac"),
        "{}",
        text(&wrong)
    );
    assert!(!err.contains(H2) && !err.contains(H1), "no key material");
    assert_eq!(key_rows(&t).await, before, "encryption_keys unchanged");

    let wrong_data = run_cmd(
        gatehouse(&t)
            .args(["login", "alice"])
            .env("DATA_ENCRYPTION_KEY", D2),
        &format!("{PASSWORD}\n"),
    );
    expect(&wrong_data, 2);
    assert!(
        stderr(&wrong_data).contains("DATA_ENCRYPTION_KEY")
            && stderr(&wrong_data).contains("gatehouse keys rotate data"),
        "{}",
        text(&wrong_data)
    );
    assert_eq!(key_rows(&t).await, before, "encryption_keys unchanged");

    // doctor says so too, and changes nothing either.
    let doctor = run_cmd(
        gatehouse(&t)
            .args(["doctor", "--format", "json"])
            .env("HMAC_KEY", H2),
        "",
    );
    let report: Value = serde_json::from_str(&expect(&doctor, 1)).unwrap();
    let keys_check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "keys")
        .cloned()
        .unwrap();
    assert_eq!(keys_check["status"], "fail", "{report}");
    assert!(
        keys_check["detail"]
            .as_str()
            .unwrap()
            .contains("gatehouse keys rotate hmac"),
        "{report}"
    );
    assert_eq!(key_rows(&t).await, before, "encryption_keys unchanged");

    // The real key still validates the session made before.
    let valid = json(&run_cmd(
        gatehouse(&t).args(["session", "validate", "--ip", IP, "--format", "json"]),
        &format!("{token}\n"),
    ));
    assert_eq!(valid["valid"], true);
}

async fn cli_rotation_is_audited_and_the_ring_keeps_working(t: TestDb) {
    alice_session(&t);
    let enrolled = json(&run_cmd(
        gatehouse(&t).args(["mfa", "enroll", "alice", "--format", "json"]),
        "",
    ));
    let secret = TotpSecret::from_base32(enrolled["secret"].as_str().unwrap()).unwrap();
    let confirmed = json(&run_cmd(
        gatehouse(&t).args(["mfa", "verify", "alice", "--format", "json"]),
        &format!("{:06}\n", secret.code_at(Utc::now())),
    ));
    let backup: Vec<String> = confirmed["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    // Enabling MFA ended the session opened before: sign in with the code.
    let login = json(&run_cmd(
        gatehouse(&t).args(["login", "alice", "--ip", IP, "--format", "json"]),
        &format!(
            "{PASSWORD}\n{:06}\n",
            secret.code_at(Utc::now() + chrono::Duration::seconds(totp::PERIOD_SECS))
        ),
    ));
    let token = login["token"].as_str().unwrap().to_owned();
    let before = key_rows(&t).await;

    // Without the active key in the ring the rotation is refused.
    let refused = run_cmd(
        gatehouse(&t)
            .args(["keys", "rotate", "hmac"])
            .env("HMAC_KEY", H2),
        "",
    );
    expect(&refused, 2);
    assert!(
        stderr(&refused).contains("HMAC_KEY_PREVIOUS")
            && stderr(&refused).contains("--retire-previous"),
        "{}",
        text(&refused)
    );
    assert_eq!(key_rows(&t).await, before);

    let ring = |cmd: &mut Command| {
        cmd.env("HMAC_KEY", H2)
            .env("HMAC_KEY_PREVIOUS", H1)
            .env("DATA_ENCRYPTION_KEY", D2)
            .env("DATA_ENCRYPTION_KEY_PREVIOUS", D1);
    };
    let mut cmd = gatehouse(&t);
    ring(&mut cmd);
    let rotated = json(&run_cmd(
        cmd.args([
            "keys",
            "rotate",
            "hmac",
            "--reason",
            "yearly rotation",
            "--format",
            "json",
        ])
        .env("DATA_ENCRYPTION_KEY", D1)
        .env_remove("DATA_ENCRYPTION_KEY_PREVIOUS"),
        "",
    ));
    assert_eq!(rotated["version"], 2, "{rotated}");
    assert_eq!(rotated["replaced_version"], 1, "{rotated}");
    assert_eq!(
        t.count("audit_logs WHERE event_type = 'admin' AND action = 'keys.rotate'")
            .await,
        1
    );
    let mut cmd = gatehouse(&t);
    ring(&mut cmd);
    let data = json(&run_cmd(
        cmd.args(["keys", "rotate", "data", "--format", "json"]),
        "",
    ));
    assert_eq!(
        (data["version"].clone(), data["reencrypted"].clone()),
        (2.into(), 1.into()),
        "{data}"
    );
    assert_eq!(
        t.count("audit_logs WHERE event_type = 'admin' AND action = 'keys.rotate'")
            .await,
        2
    );

    // With the ring: the old session and an unused backup code still work.
    let mut cmd = gatehouse(&t);
    ring(&mut cmd);
    let valid = json(&run_cmd(
        cmd.args(["session", "validate", "--ip", IP, "--format", "json"]),
        &format!("{token}\n"),
    ));
    assert_eq!(valid["valid"], true);
    let mut cmd = gatehouse(&t);
    ring(&mut cmd);
    let login = json(&run_cmd(
        cmd.args(["login", "alice", "--format", "json"]),
        &format!("{PASSWORD}\n{}\n", backup[0]),
    ));
    assert_eq!(login["second_factor"], "backupcode");

    // keys list and doctor show the ring.
    let mut cmd = gatehouse(&t);
    ring(&mut cmd);
    let list = json(&run_cmd(cmd.args(["keys", "list", "--format", "json"]), ""));
    let described: Vec<(String, i64, String, String)> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key_type"].as_str().unwrap().to_owned(),
                k["version"].as_i64().unwrap(),
                k["status"].as_str().unwrap().to_owned(),
                k["configured"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want =
        |ty: &str, v: i64, st: &str, cf: &str| (ty.to_owned(), v, st.to_owned(), cf.to_owned());
    assert_eq!(
        described,
        vec![
            want("data", 1, "rotated", "previous"),
            want("data", 2, "active", "current"),
            want("hmac", 1, "rotated", "previous"),
            want("hmac", 2, "active", "current"),
        ],
        "{list}"
    );
    let mut cmd = gatehouse(&t);
    ring(&mut cmd);
    let doctor: Value = serde_json::from_str(&String::from_utf8_lossy(
        &run_cmd(cmd.args(["doctor", "--format", "json"]), "").stdout,
    ))
    .unwrap();
    let keys_check = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "keys")
        .cloned()
        .unwrap_or_else(|| panic!("no keys check: {doctor}"));
    assert_eq!(keys_check["status"], "ok", "{keys_check}");
    let previous_hmac = keys_check["ring"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["variable"] == "HMAC_KEY_PREVIOUS")
        .cloned()
        .unwrap_or_else(|| panic!("{keys_check}"));
    assert_eq!(previous_hmac["version"], 1, "{keys_check}");
    assert_eq!(previous_hmac["status"], "rotated", "{keys_check}");
    // alice's first session and nine unused backup codes depend on it.
    assert_eq!(previous_hmac["dependents"], 10, "{keys_check}");
    let detail = keys_check["detail"].as_str().unwrap();
    assert!(
        detail.contains("1 live session(s), 9 unused backup code(s)"),
        "{detail}"
    );

    // Without the ring the old session is refused.
    let bare = run_cmd(
        gatehouse(&t)
            .args(["session", "validate", "--ip", IP])
            .env("HMAC_KEY", H2)
            .env("DATA_ENCRYPTION_KEY", D2),
        &format!("{token}\n"),
    );
    expect(&bare, 1);
    let mut cmd = gatehouse(&t);
    ring(&mut cmd);
    let doctor: Value = serde_json::from_str(&String::from_utf8_lossy(
        &run_cmd(cmd.args(["doctor", "--format", "json"]), "").stdout,
    ))
    .unwrap();
    assert!(
        doctor
            .to_string()
            .contains("0 live session(s), 9 unused backup code(s)"),
        "{doctor}"
    );
}

async fn concurrent_cli_rotations_one_wins(t: TestDb) {
    // Record version 1 of the HMAC key.
    expect(&run_cmd(gatehouse(&t).args(["session", "cleanup"]), ""), 0);
    let children: Vec<_> = (0..4)
        .map(|_| {
            gatehouse(&t)
                .args(["keys", "rotate", "hmac", "--format", "json"])
                .env("HMAC_KEY", H2)
                .env("HMAC_KEY_PREVIOUS", H1)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the binary starts")
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won: Vec<&Output> = outputs.iter().filter(|o| o.status.success()).collect();
    assert_eq!(
        won.len(),
        1,
        "{}",
        outputs.iter().map(text).collect::<Vec<_>>().join("\n")
    );
    for lost in outputs.iter().filter(|o| !o.status.success()) {
        assert_eq!(lost.status.code(), Some(1), "{}", text(lost));
        let err = stderr(lost);
        assert!(
            err.contains("active session key") && !err.contains("Query Error"),
            "{}",
            text(lost)
        );
    }
    assert_eq!(t.count("encryption_keys").await, 2);
    assert_eq!(t.count("encryption_keys WHERE status = 'active'").await, 1);
    assert_eq!(
        t.count("audit_logs WHERE event_type = 'admin' AND action = 'keys.rotate'")
            .await,
        1,
        "only the winner is audited"
    );
}
