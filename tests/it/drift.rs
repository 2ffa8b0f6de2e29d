//! The live schema after all migrations matches the entities column by column
//! (type family, nullability), and every table has an entity.

use gatehouse::schema::{drift, introspect};

use crate::support::TestDb;

backend_tests!(run_migrated: live_schema_matches_entities);

async fn live_schema_matches_entities(t: TestDb) {
    let live = introspect(&t.db).await.unwrap();
    assert_eq!(
        live.tables.len(),
        21,
        "20 tables and seaql_migrations: {:?}",
        live.tables.keys()
    );
    let problems = drift(t.db_backend(), &live);
    assert!(
        problems.is_empty(),
        "schema drift on {}:\n{}",
        t.backend.name(),
        problems.join("\n")
    );
}
