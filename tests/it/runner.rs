//! The safe-deploy runner with test migrators: a migration that fails part
//! way and is then fixed, a migration whose SQL changed after it was applied,
//! repair after a human fix, and statement timeouts.

use std::time::Duration;

use migration::runner::{Options, Runner, State, Target};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Index, Query, Table};
use sea_orm_migration::prelude::{
    DbErr, MigrationName, MigrationTrait, MigratorTrait, SchemaManager, async_trait,
};

use crate::support::{Backend, TestDb};

backend_tests!(
    run_empty: failed_migration_completes_after_the_fix_without_manual_sql,
    changed_migration_is_reported_and_refused,
    repair_clears_a_failure_after_a_human_fix,
    statement_timeout_stops_a_slow_statement,
);

fn id() -> Alias {
    Alias::new("id")
}

/// Creates `widgets`; the changed variant adds a column.
struct CreateWidgets {
    changed: bool,
}

impl MigrationName for CreateWidgets {
    fn name(&self) -> &str {
        "m20990101_000001_create_widgets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWidgets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(Alias::new("widgets"))
            .col(
                sea_orm::sea_query::ColumnDef::new(id())
                    .integer()
                    .not_null()
                    .primary_key(),
            )
            .col(
                sea_orm::sea_query::ColumnDef::new(Alias::new("name"))
                    .string_len(32)
                    .not_null(),
            );
        if self.changed {
            table.col(
                sea_orm::sea_query::ColumnDef::new(Alias::new("color"))
                    .string_len(16)
                    .null(),
            );
        }
        manager.create_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("widgets")).to_owned())
            .await
    }
}

/// Creates `gadgets`, loads two rows, indexes them and creates `gizmos`. The
/// broken variant indexes a table that does not exist (a misspelt name), so
/// it fails at its third statement after the first two ran.
struct LoadGadgets {
    broken: bool,
}

impl MigrationName for LoadGadgets {
    fn name(&self) -> &str {
        "m20990101_000002_load_gadgets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LoadGadgets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("gadgets"))
                    .col(
                        sea_orm::sea_query::ColumnDef::new(id())
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        sea_orm::sea_query::ColumnDef::new(Alias::new("label"))
                            .string_len(32)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Alias::new("gadgets"))
                    .columns([id(), Alias::new("label")])
                    .values_panic([1.into(), "lever".into()])
                    .values_panic([2.into(), "pulley".into()])
                    .to_owned(),
            )
            .await?;
        let table = if self.broken { "gadgetz" } else { "gadgets" };
        manager
            .create_index(
                Index::create()
                    .name("idx-gadgets-label")
                    .table(Alias::new(table))
                    .col(Alias::new("label"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("gizmos"))
                    .col(
                        sea_orm::sea_query::ColumnDef::new(id())
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("gizmos")).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Alias::new("gadgets")).to_owned())
            .await
    }
}

/// A statement that takes seconds.
struct Slow;

impl MigrationName for Slow {
    fn name(&self) -> &str {
        "m20990101_000003_slow"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Slow {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            sea_orm::DbBackend::Postgres => "SELECT pg_sleep(5)",
            _ => "SELECT SLEEP(5)",
        };
        manager
            .get_connection()
            .execute_unprepared(sql)
            .await
            .map(|_| ())
    }
}

/// The broken release.
struct Broken;
/// The fixed release.
struct Fixed;
/// A release whose first migration changed after it was applied.
struct Edited;
struct Sleepy;

impl MigratorTrait for Broken {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateWidgets { changed: false }),
            Box::new(LoadGadgets { broken: true }),
        ]
    }
}

impl MigratorTrait for Fixed {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateWidgets { changed: false }),
            Box::new(LoadGadgets { broken: false }),
        ]
    }
}

impl MigratorTrait for Edited {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateWidgets { changed: true }),
            Box::new(LoadGadgets { broken: false }),
        ]
    }
}

impl MigratorTrait for Sleepy {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(Slow)]
    }
}

async fn runner<M: MigratorTrait>(t: &TestDb, options: Options) -> Runner<M> {
    Runner::<M>::connect(&t.url, None, options)
        .await
        .expect("the runner connects")
}

async fn failed_migration_completes_after_the_fix_without_manual_sql(t: TestDb) {
    let broken = runner::<Broken>(&t, Options::default()).await;
    let err = broken.up(&Target::All).await.unwrap_err().to_string();
    assert!(
        err.contains("m20990101_000002_load_gadgets") && err.contains("statement 3 of 4"),
        "{err}"
    );
    let status = broken.status().await.unwrap();
    assert_eq!(status[0].state, State::Applied);
    assert_eq!(status[1].state, State::Failed);
    let failure = status[1].failure.as_ref().expect("the failure is recorded");
    assert_eq!((failure.statements_done, failure.statements_total), (2, 4));
    broken.close().await;

    // What the failure left: PostgreSQL and SQLite rolled the migration back;
    // MySQL committed the first two statements.
    let schema = gatehouse::schema::introspect(&t.db).await.unwrap();
    if t.backend == Backend::MySql {
        assert_eq!(t.count("gadgets").await, 2);
    } else {
        assert!(
            !schema.tables.contains_key("gadgets"),
            "the failed migration was rolled back"
        );
    }
    // Data written meanwhile must survive the fixed run.
    t.db.execute_unprepared("INSERT INTO widgets (id, name) VALUES (7, 'sprocket')")
        .await
        .unwrap();

    let fixed = runner::<Fixed>(&t, Options::default()).await;
    assert_eq!(
        fixed.up(&Target::All).await.unwrap(),
        ["m20990101_000002_load_gadgets"]
    );
    assert!(
        fixed
            .status()
            .await
            .unwrap()
            .iter()
            .all(|e| e.state == State::Applied)
    );
    fixed.close().await;
    assert_eq!(t.count("gadgets").await, 2, "rows loaded once, not twice");
    assert_eq!(t.count("gizmos").await, 0);
    assert_eq!(
        t.count("widgets WHERE id = 7 AND name = 'sprocket'").await,
        1
    );
    assert_eq!(
        t.count("gatehouse_migrations WHERE status = 'failed'")
            .await,
        1,
        "the failure stays in the history"
    );
}

async fn changed_migration_is_reported_and_refused(t: TestDb) {
    let fixed = runner::<Fixed>(&t, Options::default()).await;
    fixed.up(&Target::All).await.unwrap();
    fixed.close().await;

    let edited = runner::<Edited>(&t, Options::default()).await;
    let problems = edited.verify().await.unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        (problems[0].name.as_str(), problems[0].state),
        ("m20990101_000001_create_widgets", State::Changed)
    );
    let err = edited.up(&Target::All).await.unwrap_err().to_string();
    assert!(
        err.contains("m20990101_000001_create_widgets") && err.contains("--allow-changed"),
        "{err}"
    );
    edited.close().await;

    let allowed = runner::<Edited>(
        &t,
        Options {
            allow_changed: true,
            ..Options::default()
        },
    )
    .await;
    assert!(allowed.up(&Target::All).await.unwrap().is_empty());
    allowed.close().await;
}

async fn repair_clears_a_failure_after_a_human_fix(t: TestDb) {
    let broken = runner::<Broken>(&t, Options::default()).await;
    broken.up(&Target::All).await.unwrap_err();
    let err = broken
        .repair("m20990101_000001_create_widgets")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no failed run"), "{err}");
    // The human fix: undo what the failed run left behind.
    t.db.execute_unprepared("DROP TABLE IF EXISTS gadgets")
        .await
        .unwrap();
    assert_eq!(
        broken
            .repair("m20990101_000002_load_gadgets")
            .await
            .unwrap(),
        1
    );
    assert_eq!(broken.status().await.unwrap()[1].state, State::Pending);
    broken.close().await;

    let fixed = runner::<Fixed>(&t, Options::default()).await;
    fixed.up(&Target::All).await.unwrap();
    fixed.close().await;
    assert_eq!(t.count("gadgets").await, 2);
    assert_eq!(
        t.count("gatehouse_migrations WHERE status = 'repaired'")
            .await,
        1
    );
}

async fn statement_timeout_stops_a_slow_statement(t: TestDb) {
    if t.backend == Backend::Sqlite {
        // SQLite has no server to bound a statement; --statement-timeout does not apply (README).
        return;
    }
    let options = Options {
        statement_timeout: Some(Duration::from_millis(300)),
        ..Options::default()
    };
    let sleepy = runner::<Sleepy>(&t, options).await;
    let result = sleepy.up(&Target::All).await;
    let status = sleepy.status().await.unwrap();
    sleepy.close().await;
    let err = result
        .expect_err("the statement timeout stops the migration")
        .to_string()
        .to_lowercase();
    assert!(
        err.contains("timeout") || err.contains("interrupted") || err.contains("cancel"),
        "{err}"
    );
    assert_eq!(status[0].state, State::Failed);
}
