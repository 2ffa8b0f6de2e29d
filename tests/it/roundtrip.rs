//! Every migration's `down` undoes its `up` exactly: rolling back to zero and
//! migrating again, or stepping back and forth one migration at a time, gives
//! the identical schema; `up` twice changes nothing.

use gatehouse::schema::{MIGRATIONS_TABLE, introspect};
use gatehouse_migration::{Migrator, MigratorTrait};

use crate::support::TestDb;

backend_tests!(run_migrated: down_to_zero_and_up_again, each_down_restores_previous_schema, up_twice_is_a_no_op);

async fn describe(t: &TestDb) -> String {
    introspect(&t.db).await.unwrap().describe()
}

async fn down_to_zero_and_up_again(t: TestDb) {
    let before = describe(&t).await;
    Migrator::down(&t.db, None).await.unwrap();
    let empty = introspect(&t.db).await.unwrap();
    let left: Vec<&String> = empty
        .tables
        .keys()
        .filter(|n| *n != MIGRATIONS_TABLE)
        .collect();
    assert!(
        left.is_empty(),
        "tables left after rolling everything back: {left:?}"
    );
    Migrator::up(&t.db, None).await.unwrap();
    assert_eq!(describe(&t).await, before);
}

async fn each_down_restores_previous_schema(t: TestDb) {
    Migrator::down(&t.db, None).await.unwrap();
    let mut states = vec![describe(&t).await];
    let total = Migrator::migrations().len();
    for _ in 0..total {
        Migrator::up(&t.db, Some(1)).await.unwrap();
        states.push(describe(&t).await);
    }
    for step in (0..total).rev() {
        Migrator::down(&t.db, Some(1)).await.unwrap();
        let name = Migrator::migrations()[step].name().to_owned();
        assert_eq!(
            describe(&t).await,
            states[step],
            "down of {name} did not restore the schema before it"
        );
        Migrator::up(&t.db, Some(1)).await.unwrap();
        assert_eq!(
            describe(&t).await,
            states[step + 1],
            "re-applying {name} gave another schema"
        );
        Migrator::down(&t.db, Some(1)).await.unwrap();
    }
}

async fn up_twice_is_a_no_op(t: TestDb) {
    let schema = describe(&t).await;
    let rows = (
        t.count("roles").await,
        t.count("role_permissions").await,
        t.count(MIGRATIONS_TABLE).await,
    );
    Migrator::up(&t.db, None).await.unwrap();
    assert_eq!(describe(&t).await, schema);
    let again = (
        t.count("roles").await,
        t.count("role_permissions").await,
        t.count(MIGRATIONS_TABLE).await,
    );
    assert_eq!(again, rows);
    assert_eq!(rows.2, Migrator::migrations().len() as i64);
}
