//! The built `gatehouse` operator binary end to end: secrets on stdin, exit
//! codes 0/1/2, `--format json`, and what each command leaves in the database.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use gatehouse::mfa::totp::TotpSecret;
use serde_json::Value;

use crate::support::TestDb;

backend_tests!(run_migrated: users_roles_and_permissions, login_sessions_and_metrics, api_keys_issue_verify_revoke, mfa_enroll_confirm_and_login, prune_and_doctor, audit_partitions);
backend_tests!(run_empty: doctor_reports_pending_migrations);
backend_tests!(run_migrated: custom_roles_from_the_command_line);

pub(crate) const HMAC_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
pub(crate) const DATA_KEY: &str =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
pub(crate) const PASSWORD: &str = "operator test passphrase, long enough";

/// The binary, pointed at `t`, with test keys, run outside the repository so no `.env` is read.
pub(crate) fn gatehouse(t: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.current_dir(std::env::temp_dir())
        .env_remove("RUST_LOG")
        .env("DATABASE_URL", &t.url)
        .env("HMAC_KEY", HMAC_KEY)
        .env("DATA_ENCRYPTION_KEY", DATA_KEY);
    cmd
}

/// Runs `args` with `stdin` piped in.
pub(crate) fn run(t: &TestDb, args: &[&str], stdin: &str) -> Output {
    run_cmd(gatehouse(t).args(args), stdin)
}

pub(crate) fn run_cmd(cmd: &mut Command, stdin: impl AsRef<[u8]>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_ref())
        .expect("stdin accepts the input");
    child.wait_with_output().expect("the binary finishes")
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the exit code and returns stdout.
pub(crate) fn expect(out: &Output, code: i32) -> String {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts exit 0 and parses stdout as JSON.
pub(crate) fn json(out: &Output) -> Value {
    let stdout = expect(out, 0);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn create_user(t: &TestDb, name: &str, roles: &[&str]) -> Value {
    let email = format!("{name}@example.com");
    let mut args = vec![
        "user",
        "create",
        "--email",
        &email,
        "--username",
        name,
        "--format",
        "json",
    ];
    for role in roles {
        args.extend(["--role", role]);
    }
    json(&run(t, &args, &format!("{PASSWORD}\n")))
}

async fn users_roles_and_permissions(t: TestDb) {
    // Seed 000's "Create First User", without SQL: mixed-case email, superadmin.
    let admin = create_user(&t, "Root", &["superadmin"]);
    assert_eq!(admin["email"], "root@example.com");
    let roles: Vec<&str> = admin["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(roles, ["superadmin", "user"]);
    let stored: String = {
        use sea_orm::EntityTrait;
        let id = uuid::Uuid::parse_str(admin["id"].as_str().unwrap()).unwrap();
        gatehouse_entity::users::Entity::find_by_id(id)
            .one(&t.db)
            .await
            .unwrap()
            .unwrap()
            .password_hash
    };
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(!stored.contains(PASSWORD));

    expect(&run(&t, &["perm", "check", "root", "system.admin"], ""), 0);
    create_user(&t, "bob", &[]);
    // The default role grants users.read, not users.delete.
    assert!(expect(&run(&t, &["perm", "check", "bob", "users.read"], ""), 0).contains("allowed"));
    assert!(expect(&run(&t, &["perm", "check", "bob", "users.delete"], ""), 1).contains("denied"));

    expect(
        &run(
            &t,
            &["role", "grant", "bob", "moderator", "--expires-in", "1d"],
            "",
        ),
        0,
    );
    expect(&run(&t, &["perm", "check", "bob", "audit.read"], ""), 0);
    let listed = json(&run(
        &t,
        &["role", "list", "--user", "bob", "--format", "json"],
        "",
    ));
    assert_eq!(listed["roles"], serde_json::json!(["moderator", "user"]));
    expect(&run(&t, &["role", "revoke", "bob", "moderator"], ""), 0);
    expect(&run(&t, &["perm", "check", "bob", "audit.read"], ""), 1);

    // An administrator's lock takes every permission until unlocked.
    expect(&run(&t, &["user", "lock", "bob@example.com"], ""), 0);
    expect(&run(&t, &["perm", "check", "bob", "users.read"], ""), 1);
    expect(&run(&t, &["user", "unlock", "bob"], ""), 0);
    expect(&run(&t, &["perm", "check", "bob", "users.read"], ""), 0);

    let list = json(&run(&t, &["user", "list", "--format", "json"], ""));
    assert_eq!(list["users"].as_array().unwrap().len(), 2);
    let human = expect(&run(&t, &["user", "list"], ""), 0);
    assert!(human.lines().next().unwrap().starts_with("id"), "{human}");
    assert!(human.trim_end().ends_with("2 account(s)"), "{human}");

    // Every operator action is in the audit trail: two accounts created, the
    // superadmin grant that came with the first, grant, revoke, lock, unlock.
    assert_eq!(t.count("audit_logs WHERE event_type = 'admin'").await, 7);

    // Refusals write nothing: weak password, duplicate in another case, unknown role.
    let users_before = t.count("users").await;
    let weak = run(
        &t,
        &[
            "user",
            "create",
            "--email",
            "c@example.com",
            "--username",
            "carol",
        ],
        "password\n",
    );
    expect(&weak, 1);
    assert!(
        stderr(&weak).contains("policy violation"),
        "{}",
        text(&weak)
    );
    let dup = run(
        &t,
        &[
            "user",
            "create",
            "--email",
            "BOB@Example.COM",
            "--username",
            "bob2",
        ],
        &format!("{PASSWORD}\n"),
    );
    expect(&dup, 1);
    assert!(
        stderr(&dup).contains("an account with this email already exists"),
        "{}",
        text(&dup)
    );
    let unknown = run(
        &t,
        &[
            "user",
            "create",
            "--email",
            "d@example.com",
            "--username",
            "dan",
            "--role",
            "wizard",
        ],
        "",
    );
    expect(&unknown, 1);
    assert!(
        stderr(&unknown).contains("gatehouse role list"),
        "{}",
        text(&unknown)
    );
    assert_eq!(t.count("users").await, users_before);

    // Secrets never come from argv; bad arguments are one line and exit 2.
    let argv = run(
        &t,
        &[
            "user",
            "create",
            "--email",
            "e@example.com",
            "--username",
            "eve",
            "--password",
            "x",
        ],
        "",
    );
    expect(&argv, 2);
    assert_eq!(stderr(&argv).trim().lines().count(), 1, "{}", text(&argv));
    let no_stdin = run(
        &t,
        &[
            "user",
            "create",
            "--email",
            "e@example.com",
            "--username",
            "eve",
        ],
        "",
    );
    expect(&no_stdin, 2);
    assert!(stderr(&no_stdin).contains("stdin"), "{}", text(&no_stdin));
    expect(
        &run(&t, &["perm", "check", "bob", "not a permission"], ""),
        2,
    );
    let bad_url = run_cmd(
        gatehouse(&t)
            .args(["user", "list"])
            .env("DATABASE_URL", "redis://127.0.0.1/0"),
        "",
    );
    expect(&bad_url, 2);
    assert!(
        stderr(&bad_url).contains("DATABASE_URL"),
        "{}",
        text(&bad_url)
    );
    assert_eq!(t.count("users").await, users_before);
}

async fn login_sessions_and_metrics(t: TestDb) {
    let alice = create_user(&t, "alice", &[]);
    let wrong = run(&t, &["login", "alice"], "not the password at all, sorry\n");
    expect(&wrong, 1);
    assert!(
        stderr(&wrong).contains("invalid credentials"),
        "{}",
        text(&wrong)
    );

    let login = json(&run(
        &t,
        &[
            "login",
            "alice@example.com",
            "--ip",
            "203.0.113.7",
            "--format",
            "json",
        ],
        &format!("{PASSWORD}\n"),
    ));
    assert_eq!(login["user_id"], alice["id"]);
    let token = login["token"].as_str().unwrap().to_owned();
    assert_eq!(t.count("sessions").await, 1);
    assert_eq!(
        t.count(&format!(
            "sessions WHERE token_hash = '{}'",
            crate::support::sha256_hex(token.as_bytes())
        ))
        .await,
        1
    );

    let valid = json(&run(
        &t,
        &[
            "session",
            "validate",
            "--ip",
            "203.0.113.7",
            "--format",
            "json",
        ],
        &format!("{token}\n"),
    ));
    assert_eq!(valid["session_id"], login["session_id"]);
    assert_eq!(valid["user_id"], alice["id"]);
    let forged = run(
        &t,
        &["session", "validate"],
        &format!("{}x\n", &token[..token.len() - 1]),
    );
    expect(&forged, 1);

    // The login and the failure reach the daily metrics.
    let today = chrono::Utc::now().date_naive().to_string();
    let metrics = json(&run(
        &t,
        &["metrics", "rollup", "--date", &today, "--format", "json"],
        "",
    ));
    assert_eq!(metrics["successful_logins"], 1, "{metrics}");
    assert_eq!(metrics["failed_logins"], 1, "{metrics}");
    assert_eq!(metrics["sessions_created"], 1, "{metrics}");

    let revoked = json(&run(
        &t,
        &["session", "revoke", "--user", "alice", "--format", "json"],
        "",
    ));
    assert_eq!(revoked["revoked"], 1);
    let after = run(&t, &["session", "validate"], &format!("{token}\n"));
    expect(&after, 1);
    assert!(stderr(&after).contains("revoked"), "{}", text(&after));
    let cleanup = json(&run(&t, &["session", "cleanup", "--format", "json"], ""));
    assert_eq!(cleanup["total"], 1, "{cleanup}");
    assert_eq!(t.count("sessions").await, 0);

    // Without keys, commands that need them refuse with the variable's name.
    let no_key = run_cmd(
        gatehouse(&t)
            .args(["login", "alice"])
            .env_remove("HMAC_KEY"),
        format!("{PASSWORD}\n"),
    );
    expect(&no_key, 2);
    assert!(stderr(&no_key).contains("HMAC_KEY"), "{}", text(&no_key));
}

async fn api_keys_issue_verify_revoke(t: TestDb) {
    create_user(&t, "alice", &[]);
    let issued = json(&run(
        &t,
        &[
            "apikey",
            "issue",
            "alice",
            "--name",
            "ci",
            "--scope",
            "users.read",
            "--expires-in",
            "30d",
            "--format",
            "json",
        ],
        "",
    ));
    let key = issued["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ghk_"), "{key}");
    assert_eq!(
        t.count(&format!(
            "api_keys WHERE key_hash = '{}'",
            crate::support::sha256_hex(key.as_bytes())
        ))
        .await,
        1
    );

    let verified = json(&run(
        &t,
        &[
            "apikey",
            "verify",
            "--scope",
            "users.read",
            "--format",
            "json",
        ],
        &format!("{key}\n"),
    ));
    assert_eq!(verified["scopes"], serde_json::json!(["users.read"]));
    let scope = run(
        &t,
        &["apikey", "verify", "--scope", "users.delete"],
        &format!("{key}\n"),
    );
    expect(&scope, 1);
    assert!(stderr(&scope).contains("users.delete"), "{}", text(&scope));
    // A typo fails the checksum: refused before any query.
    let mut typo: Vec<char> = key.chars().collect();
    typo[10] = if typo[10] == 'a' { 'b' } else { 'a' };
    let typo: String = typo.into_iter().collect();
    expect(&run(&t, &["apikey", "verify"], &format!("{typo}\n")), 1);
    // A scope the owner does not hold cannot be issued.
    expect(
        &run(
            &t,
            &[
                "apikey",
                "issue",
                "alice",
                "--name",
                "x",
                "--scope",
                "system.admin",
            ],
            "",
        ),
        1,
    );

    let listed = json(&run(
        &t,
        &["apikey", "list", "alice", "--format", "json"],
        "",
    ));
    assert_eq!(listed["keys"][0]["usage_count"], 2, "{listed}");
    let id = issued["id"].as_str().unwrap();
    expect(&run(&t, &["apikey", "revoke", id], ""), 0);
    let after = run(&t, &["apikey", "verify"], &format!("{key}\n"));
    expect(&after, 1);
    assert!(stderr(&after).contains("revoked"), "{}", text(&after));
}

async fn mfa_enroll_confirm_and_login(t: TestDb) {
    create_user(&t, "alice", &[]);
    let human = expect(&run(&t, &["mfa", "enroll", "alice"], ""), 0);
    assert!(
        human.contains('█') || human.contains('▀'),
        "no QR code drawn:\n{human}"
    );
    let enrolled = json(&run(
        &t,
        &[
            "mfa",
            "enroll",
            "alice",
            "--issuer",
            "Acme Corp",
            "--format",
            "json",
        ],
        "",
    ));
    let uri = enrolled["otpauth_uri"].as_str().unwrap();
    let secret = enrolled["secret"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Acme%20Corp:alice%40example.com?"),
        "{uri}"
    );
    assert!(
        uri.contains(&format!("secret={secret}")) && uri.contains("issuer=Acme%20Corp"),
        "{uri}"
    );
    assert!(
        !t.count(&format!(
            "mfa_configurations WHERE secret_encrypted LIKE '%{secret}%'"
        ))
        .await
        .is_positive()
    );

    let code = TotpSecret::from_base32(secret)
        .unwrap()
        .code_at(chrono::Utc::now());
    let confirmed = json(&run(
        &t,
        &["mfa", "verify", "alice", "--format", "json"],
        &format!("{code:06}\n"),
    ));
    let backup: Vec<String> = confirmed["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(backup.len(), 10);
    expect(&run(&t, &["mfa", "verify", "alice"], "000000\n"), 1);

    // Login now asks for a second factor after the password.
    let missing = run(&t, &["login", "alice"], &format!("{PASSWORD}\n"));
    expect(&missing, 2);
    let login = json(&run(
        &t,
        &["login", "alice", "--format", "json"],
        &format!("{PASSWORD}\n{}\n", backup[0]),
    ));
    assert_eq!(login["second_factor"], "backupcode");
    let reused = run(
        &t,
        &["login", "alice"],
        &format!("{PASSWORD}\n{}\n", backup[0]),
    );
    expect(&reused, 1);
    assert!(
        stderr(&reused).contains("already used"),
        "{}",
        text(&reused)
    );
    assert_eq!(
        t.count("audit_logs WHERE event_type = 'login' AND outcome = 'success'")
            .await,
        1
    );
    assert_eq!(
        t.count("audit_logs WHERE event_type = 'login' AND outcome = 'failure'")
            .await,
        1
    );
}

async fn prune_and_doctor(t: TestDb) {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait};
    let old = chrono::Utc::now() - chrono::Duration::days(100);
    for (days, action) in [(90, "old"), (365, "kept")] {
        gatehouse_entity::audit_logs::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            event_type: Set("test".into()),
            action: Set(action.into()),
            outcome: Set(gatehouse_entity::sea_orm_active_enums::AuditOutcome::Success),
            is_suspicious: Set(false),
            risk_level: Set(gatehouse_entity::sea_orm_active_enums::RiskLevel::Low),
            retention_days: Set(days),
            created_at: Set(old),
            ..Default::default()
        }
        .insert(&t.db)
        .await
        .unwrap();
    }
    let pruned = json(&run(
        &t,
        &["audit", "prune", "--batch-size", "10", "--format", "json"],
        "",
    ));
    assert_eq!(pruned["audit_logs"]["deleted"], 1, "{pruned}");
    assert_eq!(t.count("audit_logs WHERE action = 'kept'").await, 1);
    expect(&run(&t, &["audit", "prune", "--batch-size", "0"], ""), 2);

    // Applied by plain `Migrator::up`: a warning that says how to record checksums.
    let doctor = json(&run(&t, &["doctor", "--format", "json"], ""));
    assert_eq!(doctor["ok"], true, "{doctor}");
    let migrations = &doctor["checks"][2];
    assert_eq!(migrations["status"], "warn", "{doctor}");
    assert!(
        migrations["detail"]
            .as_str()
            .unwrap()
            .contains("migrate baseline"),
        "{doctor}"
    );
    let human = expect(&run(&t, &["doctor"], ""), 0);
    assert!(
        human.trim_end().ends_with("0 failed, 1 warning(s)"),
        "{human}"
    );
    // Deployed by our own runner (ledger table and all): everything ok.
    expect(&run(&t, &["migrate", "baseline"], ""), 0);
    let doctor = json(&run(&t, &["doctor", "--format", "json"], ""));
    let statuses: Vec<&str> = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    // PostgreSQL adds the audit_logs partitions check.
    let checks = if t.db_backend() == sea_orm::DbBackend::Postgres {
        6
    } else {
        5
    };
    assert_eq!(statuses, vec!["ok"; checks], "{doctor}");

    // Drift from the entities fails the check and says where.
    let alter = "ALTER TABLE security_metrics ADD COLUMN stray_counter INTEGER";
    t.db.execute_unprepared(alter).await.unwrap();
    let drifted = run(&t, &["doctor"], "");
    assert!(
        expect(&drifted, 1).contains("security_metrics.stray_counter"),
        "{}",
        text(&drifted)
    );

    let no_config = run_cmd(
        gatehouse(&t)
            .arg("doctor")
            .env_remove("DATA_ENCRYPTION_KEY"),
        "",
    );
    assert!(
        expect(&no_config, 2).contains("DATA_ENCRYPTION_KEY"),
        "{}",
        text(&no_config)
    );
}

async fn doctor_reports_pending_migrations(t: TestDb) {
    let out = run(&t, &["doctor", "--format", "json"], "");
    let stdout = expect(&out, 1);
    let doctor: Value = serde_json::from_str(&stdout).unwrap();
    let migrations = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "migrations")
        .unwrap()
        .clone();
    assert_eq!(migrations["status"], "fail", "{doctor}");
    assert!(
        migrations["detail"]
            .as_str()
            .unwrap()
            .contains("gatehouse migrate up"),
        "{doctor}"
    );
}

async fn audit_partitions(t: TestDb) {
    if t.db_backend() != sea_orm::DbBackend::Postgres {
        let out = run(&t, &["audit", "partitions", "list"], "");
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(stderr(&out).contains("PostgreSQL only"), "{}", text(&out));
        return;
    }
    // The migration made this month and three ahead; ask for five.
    let ensured = json(&run(
        &t,
        &[
            "audit",
            "partitions",
            "ensure",
            "--months-ahead",
            "5",
            "--format",
            "json",
        ],
        "",
    ));
    assert_eq!(ensured["created"].as_array().unwrap().len(), 2, "{ensured}");
    assert_eq!(ensured["moved_rows"], 0, "{ensured}");
    let again = expect(
        &run(
            &t,
            &["audit", "partitions", "ensure", "--months-ahead", "5"],
            "",
        ),
        0,
    );
    assert!(again.contains("exists already"), "{again}");
    let listed = json(&run(
        &t,
        &["audit", "partitions", "list", "--format", "json"],
        "",
    ));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 6 + 1, "{listed:?}");
    assert!(listed[0]["from"].as_str().unwrap() < listed[1]["from"].as_str().unwrap());
    assert_eq!(listed[6]["name"], "audit_logs_default");
    assert!(listed[6]["from"].is_null());
    let human = expect(&run(&t, &["audit", "partitions", "list"], ""), 0);
    assert!(human.starts_with("partition"), "{human}");
    let out = run(
        &t,
        &["audit", "partitions", "ensure", "--months-ahead", "121"],
        "",
    );
    assert!(expect(&out, 2).is_empty());
    assert!(stderr(&out).contains("--months-ahead"), "{}", text(&out));
    assert_eq!(
        json(&run(
            &t,
            &["audit", "partitions", "list", "--format", "json"],
            ""
        ))
        .as_array()
        .unwrap()
        .len(),
        7
    );
}

/// `role create|update|delete` and `role permission add|remove` as the
/// operator: each change is audited once, refusals change nothing.
async fn custom_roles_from_the_command_line(t: TestDb) {
    let created = json(&run(
        &t,
        &[
            "role",
            "create",
            "Auditor",
            "--level",
            "20",
            "--description",
            "Reads the audit trail",
            "--format",
            "json",
        ],
        "",
    ));
    assert_eq!(created["name"], "auditor");
    assert_eq!(created["level"], 20);
    assert_eq!(created["description"], "Reads the audit trail");
    let audited = "audit_logs WHERE event_type = 'admin' AND action LIKE 'role.%'";
    let rows = || t.count(audited);
    assert_eq!(rows().await, 1);

    // Refused before any change: taken name, level out of range, malformed
    // permission, system roles, nothing to update.
    let taken = run(&t, &["role", "create", "AUDITOR", "--level", "5"], "");
    expect(&taken, 1);
    assert!(
        stderr(&taken).contains("a role with this name already exists"),
        "{}",
        text(&taken)
    );
    expect(
        &run(&t, &["role", "create", "ranked", "--level", "101"], ""),
        2,
    );
    expect(&run(&t, &["role", "create", "ranked"], ""), 2);
    expect(
        &run(&t, &["role", "permission", "add", "auditor", "audit"], ""),
        2,
    );
    let system = run(
        &t,
        &["role", "permission", "add", "admin", "system.admin"],
        "",
    );
    expect(&system, 1);
    assert!(stderr(&system).contains("system role"), "{}", text(&system));
    let system = run(&t, &["role", "delete", "admin"], "");
    expect(&system, 1);
    assert!(stderr(&system).contains("system role"), "{}", text(&system));
    expect(&run(&t, &["role", "update", "auditor"], ""), 2);
    expect(&run(&t, &["role", "delete", "wizard"], ""), 1);
    assert_eq!(rows().await, 1, "refusals are not audited");
    assert_eq!(t.count("roles").await, 5);

    expect(
        &run(
            &t,
            &["role", "permission", "add", "auditor", "Audit.Read"],
            "",
        ),
        0,
    );
    create_user(&t, "bob", &[]);
    expect(&run(&t, &["role", "grant", "bob", "auditor"], ""), 0);
    expect(&run(&t, &["perm", "check", "bob", "audit.read"], ""), 0);
    let updated = json(&run(
        &t,
        &[
            "role",
            "update",
            "auditor",
            "--level",
            "30",
            "--clear-description",
            "--format",
            "json",
        ],
        "",
    ));
    assert_eq!(updated["level"], 30);
    assert_eq!(updated["description"], Value::Null);
    let listed = json(&run(&t, &["role", "list", "--format", "json"], ""));
    let auditor = listed["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "auditor")
        .expect("auditor is listed")
        .clone();
    assert_eq!(auditor["level"], 30);
    assert_eq!(auditor["permissions"], serde_json::json!(["audit.read"]));

    expect(
        &run(
            &t,
            &["role", "permission", "remove", "auditor", "audit.read"],
            "",
        ),
        0,
    );
    expect(&run(&t, &["perm", "check", "bob", "audit.read"], ""), 1);
    expect(
        &run(
            &t,
            &["role", "permission", "remove", "auditor", "audit.read"],
            "",
        ),
        1,
    );
    let deleted = json(&run(
        &t,
        &["role", "delete", "auditor", "--format", "json"],
        "",
    ));
    assert_eq!(deleted["deleted"], true);
    expect(&run(&t, &["role", "list", "--user", "bob"], ""), 0);
    assert_eq!(t.count("roles").await, 4);

    // create, permission add, grant, update, permission remove, delete.
    assert_eq!(rows().await, 6);
    for action in [
        "role.create",
        "role.permission.add",
        "role.grant",
        "role.update",
        "role.permission.remove",
        "role.delete",
    ] {
        assert_eq!(
            t.count(&format!(
                "audit_logs WHERE event_type = 'admin' AND action = '{action}' AND user_id IS NULL"
            ))
            .await,
            1,
            "{action}"
        );
    }
}
