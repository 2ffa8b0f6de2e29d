//! Seed 000's "Verification" section and seed 004's validation queries, as
//! assertions on a database built by `Migrator::up`.

use gatehouse::schema::introspect;
use sea_orm::{EntityTrait, QueryOrder};

use crate::support::TestDb;

backend_tests!(run_migrated: seed_000_verification, seed_004_session_columns);

const MIGRATION_001_TABLES: [&str; 8] = [
    "api_keys",
    "audit_log_basic",
    "permissions",
    "role_permissions",
    "roles",
    "sessions",
    "user_roles",
    "users",
];

const MIGRATION_002_TABLES: [&str; 10] = [
    "audit_logs",
    "data_classification",
    "encryption_keys",
    "failed_login_attempts",
    "mfa_backup_codes",
    "mfa_configurations",
    "mfa_trusted_devices",
    "password_history",
    "security_events",
    "security_metrics",
];

async fn seed_000_verification(t: TestDb) {
    let schema = introspect(&t.db).await.unwrap();
    for table in MIGRATION_001_TABLES.iter().chain(&MIGRATION_002_TABLES) {
        assert!(
            schema.tables.contains_key(*table),
            "table {table} was not created"
        );
    }

    let roles = gatehouse_entity::roles::Entity::find()
        .order_by_desc(gatehouse_entity::roles::Column::Level)
        .all(&t.db)
        .await
        .unwrap();
    let levels: Vec<(&str, i32, bool)> = roles
        .iter()
        .map(|r| (r.name.as_str(), r.level, r.is_system))
        .collect();
    assert_eq!(
        levels,
        [
            ("superadmin", 100, true),
            ("admin", 50, true),
            ("moderator", 10, true),
            ("user", 0, true)
        ]
    );

    assert_eq!(t.count("permissions").await, 10);
    for resource in ["users", "roles", "api_keys", "audit", "system"] {
        let n = t
            .count(&format!(
                "permissions WHERE resource = '{resource}' AND name LIKE '{resource}.%'"
            ))
            .await;
        assert!(n >= 1, "no {resource}.* permission");
    }

    for (role, expected) in [
        ("superadmin", 10),
        ("admin", 9),
        ("moderator", 2),
        ("user", 3),
    ] {
        let n = t
            .count(&format!(
                "roles r LEFT JOIN role_permissions rp ON r.id = rp.role_id \
                 LEFT JOIN permissions p ON rp.permission_id = p.id WHERE r.name = '{role}' AND p.id IS NOT NULL"
            ))
            .await;
        assert_eq!(
            n, expected,
            "role {role} should have {expected} permissions"
        );
    }

    let audit_indexes = schema.tables["audit_logs"]
        .indexes
        .iter()
        .filter(|i| !i.primary)
        .count();
    assert!(
        audit_indexes >= 6,
        "audit_logs has {audit_indexes} indexes, seed 000 expects 6+"
    );
}

async fn seed_004_session_columns(t: TestDb) {
    let schema = introspect(&t.db).await.unwrap();
    let sessions = &schema.tables["sessions"];
    for column in [
        "security_hash",
        "encryption_key_id",
        "created_ip_hash",
        "security_version",
        "last_validated_at",
        "risk_score",
    ] {
        assert!(
            sessions.column(column).is_some(),
            "sessions.{column} is missing"
        );
        assert!(
            sessions.is_indexed(column) || column == "security_version",
            "sessions.{column} has no index"
        );
    }
    assert!(schema.tables.contains_key("session_audit_log"));
}
