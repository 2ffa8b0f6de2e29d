//! Constraint violations come back as typed errors on every backend.

use chrono::Utc;
use gatehouse::{Constraint, Error, constraint_violation};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DbErr, SqlErr};
use uuid::Uuid;

use crate::support::TestDb;

backend_tests!(
    run_migrated: email_differing_only_in_case_is_a_unique_violation,
    username_differing_only_in_case_is_a_unique_violation,
    role_level_above_100_is_a_check_violation,
    orphan_foreign_key_is_a_foreign_key_violation,
    unknown_enum_value_is_a_check_violation,
);

fn user(email: &str, username: &str) -> gatehouse_entity::users::ActiveModel {
    let now = Utc::now();
    gatehouse_entity::users::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.into()),
        username: Set(username.into()),
        email_folded: Set(gatehouse::accounts::validate::fold(email)),
        username_folded: Set(gatehouse::accounts::validate::fold(username)),
        password_hash: Set("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into()),
        is_active: Set(true),
        is_verified: Set(false),
        is_locked: Set(false),
        failed_login_count: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}

fn assert_unique(err: DbErr) {
    assert!(
        matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
        "{err}"
    );
    assert!(matches!(Error::from(err), Error::Conflict { .. }));
}

async fn email_differing_only_in_case_is_a_unique_violation(t: TestDb) {
    user("grace@example.com", "grace")
        .insert(&t.db)
        .await
        .unwrap();
    let err = user("Grace@Example.COM", "grace2")
        .insert(&t.db)
        .await
        .unwrap_err();
    assert_unique(err);
    assert_eq!(t.count("users").await, 1);
}

async fn username_differing_only_in_case_is_a_unique_violation(t: TestDb) {
    user("a@example.com", "Linus").insert(&t.db).await.unwrap();
    let err = user("b@example.com", "lINUS")
        .insert(&t.db)
        .await
        .unwrap_err();
    assert_unique(err);
}

async fn role_level_above_100_is_a_check_violation(t: TestDb) {
    let now = Utc::now();
    let role = |name: &str, level: i32| gatehouse_entity::roles::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name.into()),
        description: Set(None),
        level: Set(level),
        is_system: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    };
    for level in [101, -1] {
        let err = role(&format!("level{level}"), level)
            .insert(&t.db)
            .await
            .unwrap_err();
        assert_eq!(constraint_violation(&err), Some(Constraint::Check), "{err}");
        assert!(matches!(Error::from(err), Error::Invalid(_)));
    }
    role("auditor", 100).insert(&t.db).await.unwrap();
    assert_eq!(t.count("roles WHERE name = 'auditor'").await, 1);
}

async fn orphan_foreign_key_is_a_foreign_key_violation(t: TestDb) {
    let now = Utc::now();
    let err = gatehouse_entity::sessions::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(Uuid::now_v7()),
        token_hash: Set("0".repeat(64)),
        ip_address: Set(None),
        user_agent: Set(None),
        created_at: Set(now),
        last_activity_at: Set(now),
        expires_at: Set(now),
        is_revoked: Set(false),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        security_hash: Set(None),
        encryption_key_id: Set(None),
        created_ip_hash: Set(None),
        security_version: Set(1),
        last_validated_at: Set(None),
        risk_score: Set(0),
    }
    .insert(&t.db)
    .await
    .unwrap_err();
    assert!(
        matches!(
            err.sql_err(),
            Some(SqlErr::ForeignKeyConstraintViolation(_))
        ),
        "{err}"
    );
    assert!(matches!(Error::from(err), Error::Reference(_)));
    assert_eq!(t.count("sessions").await, 0);
}

async fn unknown_enum_value_is_a_check_violation(t: TestDb) {
    // The entity cannot express a bad value, so write it as another client would.
    let quote = if t.backend == crate::support::Backend::MySql {
        '`'
    } else {
        '"'
    };
    let id = match t.backend {
        crate::support::Backend::Postgres => format!("'{}'", Uuid::now_v7()),
        crate::support::Backend::MySql => format!("UNHEX('{}')", Uuid::now_v7().simple()),
        crate::support::Backend::Sqlite => format!("X'{}'", Uuid::now_v7().simple()),
    };
    let sql = format!(
        "INSERT INTO {q}security_events{q} ({q}id{q}, {q}event_type{q}, {q}severity{q}, {q}description{q}) \
         VALUES ({id}, 'brute_force', 'catastrophic', 'x')",
        q = quote
    );
    let err = sea_orm::ConnectionTrait::execute_raw(
        &t.db,
        sea_orm::Statement::from_string(t.db_backend(), sql),
    )
    .await
    .unwrap_err();
    assert_eq!(constraint_violation(&err), Some(Constraint::Check), "{err}");
}
