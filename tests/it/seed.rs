//! `gatehouse::seed` gives the same default RBAC as the seed migration, and
//! running it twice leaves the same state.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, EntityTrait, Statement};

use crate::support::TestDb;

backend_tests!(run_migrated: seed_is_idempotent, seed_restores_what_the_migration_seeded);

async fn rbac_state(
    t: &TestDb,
) -> (
    BTreeSet<(String, i32, bool)>,
    BTreeSet<String>,
    BTreeSet<(String, String)>,
) {
    let roles = gatehouse_entity::roles::Entity::find()
        .all(&t.db)
        .await
        .unwrap();
    let permissions = gatehouse_entity::permissions::Entity::find()
        .all(&t.db)
        .await
        .unwrap();
    let grants = gatehouse_entity::role_permissions::Entity::find()
        .all(&t.db)
        .await
        .unwrap();
    let role_name = |id| roles.iter().find(|r| r.id == id).unwrap().name.clone();
    let permission_name = |id| {
        permissions
            .iter()
            .find(|p| p.id == id)
            .unwrap()
            .name
            .clone()
    };
    (
        roles
            .iter()
            .map(|r| (r.name.clone(), r.level, r.is_system))
            .collect(),
        permissions.iter().map(|p| p.name.clone()).collect(),
        grants
            .iter()
            .map(|g| (role_name(g.role_id), permission_name(g.permission_id)))
            .collect(),
    )
}

async fn seed_is_idempotent(t: TestDb) {
    let ids_before: BTreeSet<_> = gatehouse_entity::roles::Entity::find()
        .all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    let before = rbac_state(&t).await;
    gatehouse::seed(&t.db).await.unwrap();
    gatehouse::seed(&t.db).await.unwrap();
    assert_eq!(rbac_state(&t).await, before);
    let ids_after: BTreeSet<_> = gatehouse_entity::roles::Entity::find()
        .all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        ids_after, ids_before,
        "seed must not replace existing roles"
    );
    assert_eq!(t.count("role_permissions").await, 24);
}

async fn seed_restores_what_the_migration_seeded(t: TestDb) {
    let migrated = rbac_state(&t).await;
    for table in ["role_permissions", "roles", "permissions"] {
        t.db.execute_raw(Statement::from_string(
            t.db_backend(),
            format!("DELETE FROM {table}"),
        ))
        .await
        .unwrap();
    }
    assert_eq!(t.count("roles").await, 0);
    gatehouse::seed(&t.db).await.unwrap();
    assert_eq!(
        rbac_state(&t).await,
        migrated,
        "gatehouse::seed and the seed migration disagree"
    );
}
