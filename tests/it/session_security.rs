//! The session-security migration (seed 004) keeps existing `sessions` rows
//! and backfills its new columns; its `down` keeps the rows too.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use uuid::Uuid;

use crate::support::TestDb;

backend_tests!(run_empty: sessions_survive_session_security_up_and_down);

/// Migrations before the session-security one.
const BEFORE_SESSION_SECURITY: u32 = 3;

type SessionRow = (
    Uuid,
    Uuid,
    String,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
    bool,
);

async fn original_columns(t: &TestDb) -> Vec<SessionRow> {
    let stmt = Query::select()
        .columns(
            [
                "id",
                "user_id",
                "token_hash",
                "ip_address",
                "last_activity_at",
                "expires_at",
                "is_revoked",
            ]
            .map(Alias::new),
        )
        .from(Alias::new("sessions"))
        .order_by(Alias::new("token_hash"), Order::Asc)
        .to_owned();
    t.db.query_all(&stmt)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get("", "id").unwrap(),
                r.try_get("", "user_id").unwrap(),
                r.try_get("", "token_hash").unwrap(),
                r.try_get("", "ip_address").unwrap(),
                r.try_get("", "last_activity_at").unwrap(),
                r.try_get("", "expires_at").unwrap(),
                r.try_get("", "is_revoked").unwrap(),
            )
        })
        .collect()
}

async fn sessions_survive_session_security_up_and_down(t: TestDb) {
    Migrator::up(&t.db, Some(BEFORE_SESSION_SECURITY))
        .await
        .unwrap();
    let now = Utc::now().trunc_subsecs(6);
    // Inserted without reading the row back: the entity declares columns
    // that later migrations add.
    let user_id = Uuid::now_v7();
    gatehouse_entity::users::Entity::insert(gatehouse_entity::users::ActiveModel {
        id: Set(user_id),
        email: Set("ada@example.com".into()),
        username: Set("ada".into()),
        password_hash: Set("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into()),
        is_active: Set(true),
        is_verified: Set(true),
        is_locked: Set(false),
        failed_login_count: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_without_returning(&t.db)
    .await
    .unwrap();
    for i in 0..3 {
        let stmt = Query::insert()
            .into_table(Alias::new("sessions"))
            .columns(
                [
                    "id",
                    "user_id",
                    "token_hash",
                    "ip_address",
                    "last_activity_at",
                    "expires_at",
                    "is_revoked",
                ]
                .map(Alias::new),
            )
            .values_panic([
                Uuid::now_v7().into(),
                user_id.into(),
                format!("{i:064x}").into(),
                (i != 1).then(|| format!("192.0.2.{i}")).into(),
                (now - Duration::minutes(i)).into(),
                (now + Duration::hours(1 + i)).into(),
                (i == 2).into(),
            ])
            .to_owned();
        t.db.execute(&stmt).await.unwrap();
    }
    let before = original_columns(&t).await;
    assert_eq!(before.len(), 3);

    Migrator::up(&t.db, Some(1)).await.unwrap();
    assert_eq!(
        original_columns(&t).await,
        before,
        "session-security up changed existing rows"
    );
    let backfilled = t
        .count(
            "sessions WHERE security_version = 0 AND risk_score = 0 AND security_hash IS NULL \
             AND last_validated_at = last_activity_at",
        )
        .await;
    assert_eq!(backfilled, 3, "every existing session is backfilled");

    // New values in the new columns must not stand in the way of the rollback.
    let update = Query::update()
        .table(Alias::new("sessions"))
        .value(Alias::new("risk_score"), 40)
        .value(Alias::new("security_hash"), "ab".repeat(32))
        .and_where(Expr::col(Alias::new("is_revoked")).eq(true))
        .to_owned();
    t.db.execute(&update).await.unwrap();

    Migrator::down(&t.db, Some(1)).await.unwrap();
    assert_eq!(
        original_columns(&t).await,
        before,
        "session-security down changed existing rows"
    );
    let schema = gatehouse::schema::introspect(&t.db).await.unwrap();
    assert!(schema.tables["sessions"].column("risk_score").is_none());
    assert!(!schema.tables.contains_key("session_audit_log"));

    Migrator::up(&t.db, None).await.unwrap();
    assert_eq!(original_columns(&t).await, before);
}
