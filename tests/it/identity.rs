//! Identities mean the same on every backend: email and username equality is
//! `validate::fold` (NFKC and Unicode lower case, computed in Rust), stored in
//! `email_folded`/`username_folded` and compared byte for byte. `josé`/`jose`
//! and `straße`/`strasse` are different people everywhere (MySQL/MariaDB's
//! `utf8mb4_unicode_ci` used to equate them); `Bob`/`bob`, `Émile`/`émile`
//! and fullwidth `ｂｏｂ`/`bob` are one account everywhere. Rows that exist
//! before the fold-identities migration are backfilled; rows other tools
//! wrote in another form are refolded in Rust.

use std::process::{Command, Stdio};

use chrono::{DateTime, SubsecRound, Utc};
use gatehouse::ClientInfo;
use gatehouse::Error;
use gatehouse::accounts::{
    self, Accounts, Argon2idHasher, Credentials, Identifier, NewAccount, PasswordHasher, validate,
};
use gatehouse_entity::users;
use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, EntityTrait};
use uuid::Uuid;

use crate::support::{Backend, TestDb};

backend_tests!(run_migrated:
    identity_accents_and_sharp_s_are_different_accounts,
    identity_case_accents_case_and_width_are_one_account,
    identity_operator_commands_name_the_account_byte_for_byte,
    identity_rows_written_in_another_form_are_refolded,
);
backend_tests!(run_empty: identity_rows_before_the_migration_are_backfilled);

const MIGRATION: &str = "m20261201_000001_fold_identities";

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

async fn service() -> Accounts<Argon2idHasher> {
    Accounts::new(Argon2idHasher::default())
        .await
        .expect("the service starts")
}

fn password(n: usize) -> String {
    format!("plum orchard under winter light {n}")
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

/// Registers `email`/`username` with `password(n)`.
async fn register(
    accounts: &Accounts<Argon2idHasher>,
    t: &TestDb,
    email: &str,
    username: &str,
    n: usize,
) -> Result<accounts::Account, Error> {
    let password = password(n);
    accounts
        .register(
            &t.db,
            NewAccount {
                email,
                username,
                password: &password,
            },
            now(),
        )
        .await
}

async fn signs_in_as(
    accounts: &Accounts<Argon2idHasher>,
    t: &TestDb,
    identifier: &str,
    n: usize,
) -> Uuid {
    accounts
        .authenticate(&t.db, login(identifier, &password(n)), now())
        .await
        .unwrap_or_else(|e| panic!("{identifier} signs in on {}: {e}", t.backend.name()))
        .id
}

async fn row(t: &TestDb, id: Uuid) -> users::Model {
    users::Entity::find_by_id(id)
        .one(&t.db)
        .await
        .unwrap()
        .expect("the account exists")
}

async fn identity_accents_and_sharp_s_are_different_accounts(t: TestDb) {
    let accounts = service().await;
    let pairs = [
        (("josé@example.com", "josé"), ("jose@example.com", "jose")),
        (
            ("straße@example.com", "straße"),
            ("strasse@example.com", "strasse"),
        ),
    ];
    let mut n = 0;
    for ((email_a, name_a), (email_b, name_b)) in pairs {
        let a = register(&accounts, &t, email_a, name_a, n).await.unwrap();
        let b = register(&accounts, &t, email_b, name_b, n + 1)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{email_b} is another person than {email_a} on {}: {e}",
                    t.backend.name()
                )
            });
        assert_ne!(a.id, b.id);
        // Each signs in to its own account, by email and by username, and
        // not with the other's password.
        for (account, email, name, own) in [(&a, email_a, name_a, n), (&b, email_b, name_b, n + 1)]
        {
            assert_eq!(signs_in_as(&accounts, &t, email, own).await, account.id);
            assert_eq!(signs_in_as(&accounts, &t, name, own).await, account.id);
            let other = if own == n { n + 1 } else { n };
            let err = accounts
                .authenticate(&t.db, login(email, &password(other)), now())
                .await
                .unwrap_err();
            assert!(matches!(err, Error::InvalidCredentials), "{err}");
            let found = accounts::find_by_identifier(&t.db, &Identifier::Email(email.into()))
                .await
                .unwrap()
                .expect("found by its email");
            assert_eq!(found.id, account.id);
            assert_eq!(found.email_folded, email);
            assert_eq!(found.username_folded, name);
        }
        n += 2;
    }
    assert_eq!(t.count("users").await, 4);
}

async fn identity_case_accents_case_and_width_are_one_account(t: TestDb) {
    let accounts = service().await;
    // (first spelling, second spelling, the field the second collides on)
    let cases = [
        (
            ("bob@example.com", "Bob"),
            ("bob.two@example.com", "bob"),
            "username",
        ),
        (
            ("émile@example.com", "emile1"),
            ("Émile@example.com", "emile2"),
            "email",
        ),
        (
            ("wide@example.com", "ｂｏｂ_w"),
            ("wide.two@example.com", "bob_w"),
            "username",
        ),
    ];
    for (n, ((email_a, name_a), (email_b, name_b), field)) in cases.into_iter().enumerate() {
        let first = register(&accounts, &t, email_a, name_a, n).await.unwrap();
        let err = register(&accounts, &t, email_b, name_b, 10 + n)
            .await
            .unwrap_err();
        match &err {
            Error::Conflict { field: got, .. } => assert_eq!(*got, field, "{err}"),
            other => panic!("{email_b}/{name_b} after {email_a}/{name_a}: {other}"),
        }
        // The stored folded form is Rust's fold, byte for byte.
        let stored = row(&t, first.id).await;
        assert_eq!(stored.email_folded, validate::fold(email_a));
        assert_eq!(stored.username_folded, validate::fold(name_a));
        // Either spelling signs in to the one account.
        let (spelling_a, spelling_b) = if field == "email" {
            (email_a, email_b)
        } else {
            (name_a, name_b)
        };
        for spelling in [spelling_a, spelling_b] {
            assert_eq!(signs_in_as(&accounts, &t, spelling, n).await, first.id);
        }
        // The lookup folds an identifier built by hand, too.
        let by_hand = if field == "email" {
            Identifier::Email(spelling_b.to_uppercase())
        } else {
            Identifier::Username(spelling_b.to_uppercase())
        };
        let found = accounts::find_by_identifier(&t.db, &by_hand)
            .await
            .unwrap()
            .expect("found by the other spelling");
        assert_eq!(found.id, first.id);
    }
    assert_eq!(t.count("users").await, 3);
}

/// `gatehouse user lock <email>` locks the account the email names and no
/// other: on MySQL/MariaDB it used to pick josé's account for `jose@…`.
async fn identity_operator_commands_name_the_account_byte_for_byte(t: TestDb) {
    let accounts = service().await;
    let jose_accent = register(&accounts, &t, "josé@example.com", "josé", 0)
        .await
        .unwrap();
    let jose = register(&accounts, &t, "jose@example.com", "jose", 1)
        .await
        .unwrap();
    for (target, locked) in [("JOSE@example.com", &jose), ("ｊｏｓé", &jose_accent)] {
        let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .current_dir(std::env::temp_dir())
            .env_remove("RUST_LOG")
            .env("DATABASE_URL", &t.url)
            .args(["user", "lock", target, "--format", "json"])
            .stdin(Stdio::null())
            .output()
            .expect("the binary runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "user lock {target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(row(&t, locked.id).await.is_locked, "{target}");
        if locked.id == jose.id {
            assert!(
                !row(&t, jose_accent.id).await.is_locked,
                "locking {target} locked josé on {}",
                t.backend.name()
            );
        }
    }
}

/// Inserts a user row as another tool would, with the given folded values.
async fn insert_raw(
    t: &TestDb,
    email: &str,
    username: &str,
    folded: Option<(&str, &str)>,
    hash: &str,
) -> Uuid {
    let id = Uuid::now_v7();
    let now = now();
    let mut columns = vec![
        "id",
        "email",
        "username",
        "password_hash",
        "is_active",
        "is_verified",
        "is_locked",
        "failed_login_count",
        "created_at",
        "updated_at",
    ];
    let mut values: Vec<sea_orm::sea_query::SimpleExpr> = vec![
        id.into(),
        email.into(),
        username.into(),
        hash.into(),
        true.into(),
        true.into(),
        false.into(),
        0.into(),
        now.into(),
        now.into(),
    ];
    if let Some((email_folded, username_folded)) = folded {
        columns.extend(["email_folded", "username_folded"]);
        values.extend([email_folded.into(), username_folded.into()]);
    }
    let stmt = Query::insert()
        .into_table(Alias::new("users"))
        .columns(columns.into_iter().map(Alias::new))
        .values_panic(values)
        .to_owned();
    t.db.execute(&stmt).await.expect("raw user inserts");
    id
}

async fn identity_rows_before_the_migration_are_backfilled(t: TestDb) {
    let position = Migrator::migrations()
        .iter()
        .position(|m| m.name() == MIGRATION)
        .expect("the migration is registered");
    Migrator::up(&t.db, Some(position as u32)).await.unwrap();
    let accounts = service().await;
    // As gatehouse wrote them before: email and username already folded.
    let mut before = Vec::new();
    for (n, (email, name)) in [
        ("josé@example.com", "josé"),
        ("straße@example.com", "straße"),
        ("bob@example.com", "bob"),
    ]
    .into_iter()
    .enumerate()
    {
        let hash = accounts.hasher().hash(&password(n)).unwrap();
        before.push((insert_raw(&t, email, name, None, &hash).await, email, name));
    }
    Migrator::up(&t.db, None).await.unwrap();

    for (n, (id, email, name)) in before.iter().enumerate() {
        let stored = row(&t, *id).await;
        assert_eq!(stored.email_folded, *email);
        assert_eq!(stored.username_folded, *name);
        assert_eq!(
            signs_in_as(&accounts, &t, &email.to_ascii_uppercase(), n).await,
            *id
        );
        assert_eq!(signs_in_as(&accounts, &t, name, n).await, *id);
    }
    // The old case-insensitive indexes are gone: jose and strasse are free
    // (MySQL/MariaDB refused them before), ｂｏｂ is still taken.
    let jose = register(&accounts, &t, "jose@example.com", "jose", 7)
        .await
        .unwrap();
    assert_eq!(
        signs_in_as(&accounts, &t, "jose@example.com", 7).await,
        jose.id
    );
    register(&accounts, &t, "strasse@example.com", "strasse", 8)
        .await
        .unwrap();
    let err = register(&accounts, &t, "ｂｏｂ@example.com", "bob2", 9)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict { field: "email", .. }),
        "{err}"
    );
    // A writer that leaves the folded columns out is refused where the
    // backend can add NOT NULL without a default (PostgreSQL, MySQL/MariaDB).
    if t.backend != Backend::Sqlite {
        let stmt = Query::insert()
            .into_table(Alias::new("users"))
            .columns(["id", "email", "username", "password_hash"].map(Alias::new))
            .values_panic([
                Uuid::now_v7().into(),
                "late@example.com".into(),
                "late".into(),
                "x".into(),
            ])
            .to_owned();
        assert!(t.db.execute(&stmt).await.is_err());
    }
    assert_eq!(t.count("users").await, 5);
}

async fn identity_rows_written_in_another_form_are_refolded(t: TestDb) {
    let accounts = service().await;
    let hash = accounts.hasher().hash(&password(0)).unwrap();
    // What a database built by hand-written SQL and adopted with `migrate
    // baseline` holds after the fold-identities migration copied it: the
    // form the other tool wrote, not gatehouse's folded one.
    let legacy = insert_raw(
        &t,
        "Émile.Legacy@Example.com",
        "ＥＭＩＬＥ_L",
        Some(("Émile.Legacy@Example.com", "ＥＭＩＬＥ_L")),
        &hash,
    )
    .await;
    let ours = register(&accounts, &t, "ours@example.com", "ours", 1)
        .await
        .unwrap();
    let err = accounts
        .authenticate(
            &t.db,
            login("émile.legacy@example.com", &password(0)),
            now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err}");

    assert_eq!(accounts::refold_identities(&t.db).await.unwrap(), 1);
    let stored = row(&t, legacy).await;
    assert_eq!(stored.email_folded, "émile.legacy@example.com");
    assert_eq!(stored.username_folded, "emile_l");
    assert_eq!(
        stored.email, "Émile.Legacy@Example.com",
        "the address stays as written"
    );
    assert_eq!(
        signs_in_as(&accounts, &t, "ÉMILE.legacy@example.com", 0).await,
        legacy
    );
    assert_eq!(signs_in_as(&accounts, &t, "emile_l", 0).await, legacy);
    assert_eq!(signs_in_as(&accounts, &t, "ours", 1).await, ours.id);
    assert_eq!(accounts::refold_identities(&t.db).await.unwrap(), 0);

    // Two rows that fold to one email: refused, and nothing changes.
    let twin = insert_raw(
        &t,
        "OURS@example.com",
        "ours_twin",
        Some(("OURS@example.com", "ours_twin")),
        &hash,
    )
    .await;
    let fresh = insert_raw(
        &t,
        "Fresh@Example.com",
        "fresh",
        Some(("Fresh@Example.com", "fresh")),
        &hash,
    )
    .await;
    let err = accounts::refold_identities(&t.db).await.unwrap_err();
    match &err {
        Error::Conflict { field, message } => {
            assert_eq!(*field, "email", "{err}");
            assert!(message.contains(&twin.to_string()), "{message}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(row(&t, twin).await.email_folded, "OURS@example.com");
    assert_eq!(row(&t, fresh).await.email_folded, "Fresh@Example.com");
}
