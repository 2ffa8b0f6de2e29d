//! The safe-deploy runner with test migrators: a migration that fails part
//! way and is then fixed, a migration whose SQL changed after it was applied,
//! repair after a human fix, a run that dies part way, and statement timeouts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_migration::runner::{Options, Runner, State, Target};
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
    a_run_that_dies_part_way_is_refused_until_a_person_says_where_it_stopped,
    a_connection_lost_mid_statement_is_recorded_and_refused_until_a_person_says_where,
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

/// Creates `levers`, waits at a gate the test holds, then creates `cranks`:
/// the test can stop the run while it waits at its second statement.
struct Gated;

impl MigrationName for Gated {
    fn name(&self) -> &str {
        "m20990101_000004_gated"
    }
}

/// Blocks until the gate is free; advisory and user locks are per database here.
fn gate_sql(backend: sea_orm::DbBackend) -> &'static str {
    match backend {
        sea_orm::DbBackend::Postgres => "SELECT pg_advisory_lock(4242)",
        _ => "SELECT GET_LOCK(CONCAT('gh_gate:', DATABASE()), 600)",
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Gated {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, gate) in [("levers", true), ("cranks", false)] {
            manager
                .create_table(
                    Table::create()
                        .table(Alias::new(table))
                        .col(
                            sea_orm::sea_query::ColumnDef::new(id())
                                .integer()
                                .not_null()
                                .primary_key(),
                        )
                        .to_owned(),
                )
                .await?;
            if gate {
                manager
                    .get_connection()
                    .execute_unprepared(gate_sql(manager.get_database_backend()))
                    .await?;
            }
        }
        Ok(())
    }
}

/// The broken release.
struct Broken;
/// The fixed release.
struct Fixed;
/// A release whose first migration changed after it was applied.
struct Edited;
struct Sleepy;
struct WithGate;

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

impl MigratorTrait for WithGate {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateWidgets { changed: false }), Box::new(Gated)]
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

/// A connection of its own holding the gate `Gated` waits at.
async fn hold_gate(t: &TestDb) -> sea_orm::DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(t.url.clone());
    options.max_connections(1).sqlx_logging(false);
    let gate = sea_orm::Database::connect(options).await.unwrap();
    let sql = match t.backend {
        Backend::Postgres => "SELECT pg_advisory_lock(4242)",
        _ => "SELECT GET_LOCK(CONCAT('gh_gate:', DATABASE()), 0)",
    };
    gate.execute_unprepared(sql).await.unwrap();
    gate
}

/// The server session of the migrator waiting at the gate, once it waits there.
async fn session_waiting_at_gate(t: &TestDb) -> i64 {
    let sql = match t.backend {
        Backend::Postgres => {
            "SELECT pid::bigint AS n FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND query LIKE 'SELECT pg_advisory_lock(4242)%' \
             AND wait_event_type = 'Lock'"
        }
        _ => {
            "SELECT CAST(ID AS SIGNED) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() \
             AND ID <> CONNECTION_ID() AND INFO LIKE 'SELECT GET_LOCK(CONCAT(''gh_gate:''%'"
        }
    };
    for _ in 0..1500 {
        let row =
            t.db.query_one_raw(sea_orm::Statement::from_string(t.db_backend(), sql))
                .await
                .unwrap();
        if let Some(row) = row {
            return row.try_get::<i64>("", "n").unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the migrator never reached the gate");
}

async fn a_run_that_dies_part_way_is_refused_until_a_person_says_where_it_stopped(t: TestDb) {
    if t.backend == Backend::Sqlite {
        // The whole run is one write transaction; there is no server session to stop part way.
        return;
    }
    const GATED: &str = "m20990101_000004_gated";
    let gate = hold_gate(&t).await;
    let dying = runner::<WithGate>(&t, Options::default()).await;
    let run = tokio::spawn(async move { dying.up(&Target::All).await });
    let session = session_waiting_at_gate(&t).await;

    // While it runs, another process sees it running (MySQL records the run as it starts).
    let observer = runner::<WithGate>(&t, Options::default()).await;
    let expected = if t.backend == Backend::MySql {
        State::Running
    } else {
        State::Pending
    };
    assert_eq!(observer.status().await.unwrap()[1].state, expected);

    // The migrator dies at its second statement: nothing of it runs on, and
    // its server session goes with it.
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    let kill = match t.backend {
        Backend::Postgres => format!("SELECT pg_terminate_backend({session})"),
        _ => format!("KILL {session}"),
    };
    t.db.execute_unprepared(&kill).await.unwrap();
    gate.close().await.unwrap();

    if t.backend == Backend::Postgres {
        // The migration's transaction died with the session: the next run starts it afresh.
        assert!(observer.repair_at(GATED, 1).await.is_err());
        assert_eq!(observer.up(&Target::All).await.unwrap(), [GATED]);
        observer.close().await;
        assert_eq!(t.count("cranks").await, 0);
        return;
    }

    // MySQL committed `levers`; where the run stopped is unknown, so the next run refuses.
    let err = observer.up(&Target::All).await.unwrap_err().to_string();
    assert!(
        err.contains(GATED)
            && err.contains("did not finish")
            && err.contains(&format!("migrate repair {GATED} --statements-done N")),
        "{err}"
    );
    let status = observer.status().await.unwrap();
    assert_eq!(status[1].state, State::Interrupted);
    let run = status[1].failure.as_ref().expect("the run is recorded");
    assert_eq!((run.statements_done, run.statements_total), (0, 3));
    assert_eq!(t.count("levers").await, 0, "statement 1 took effect");

    // A person compares the database with `migrate sql` and records that two statements ran.
    let err = observer.repair_at(GATED, 4).await.unwrap_err().to_string();
    assert!(err.contains("has 3 statements"), "{err}");
    observer.repair_at(GATED, 2).await.unwrap();
    assert_eq!(observer.status().await.unwrap()[1].state, State::Failed);
    assert_eq!(observer.up(&Target::All).await.unwrap(), [GATED]);
    assert!(
        observer
            .status()
            .await
            .unwrap()
            .iter()
            .all(|e| e.state == State::Applied)
    );
    observer.close().await;
    assert_eq!(t.count("cranks").await, 0);
    assert_eq!(
        t.count(&format!(
            "gatehouse_migrations WHERE name = '{GATED}' AND status = 'failed' AND statements_done = 2"
        ))
        .await,
        1,
        "the interrupted run stays in the history with the position the person gave"
    );
}

/// A TCP relay between a migrator and the server that can cut every
/// connection open through it, as a network failure does.
struct Relay {
    url: String,
    pipes: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays to the server `url` names; `Relay::url` reaches it through the relay.
    async fn to(url: &str) -> Self {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_once('/').unwrap();
        let (user, server) = authority.rsplit_once('@').unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_url = format!(
            "{scheme}://{user}@{}/{path}",
            listener.local_addr().unwrap()
        );
        let pipes = Arc::new(Mutex::new(Vec::new()));
        let server = server.to_owned();
        let accept = tokio::spawn({
            let pipes = Arc::clone(&pipes);
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let server = server.clone();
                    let pipe = tokio::spawn(async move {
                        if let Ok(mut upstream) = tokio::net::TcpStream::connect(server).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                    });
                    pipes.lock().unwrap().push(pipe.abort_handle());
                }
            }
        });
        Self {
            url: relay_url,
            pipes,
            accept,
        }
    }

    /// Drops every connection open through the relay; new ones still connect.
    fn cut(&self) {
        for pipe in self.pipes.lock().unwrap().drain(..) {
            pipe.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn a_connection_lost_mid_statement_is_recorded_and_refused_until_a_person_says_where(
    t: TestDb,
) {
    if t.backend == Backend::Sqlite {
        // A file has no connection to lose.
        return;
    }
    const GATED: &str = "m20990101_000004_gated";
    let gate = hold_gate(&t).await;
    let relay = Relay::to(&t.url).await;
    let cut_off = Runner::<WithGate>::connect(&relay.url, None, Options::default())
        .await
        .unwrap();
    let run = tokio::spawn(async move {
        let result = cut_off.up(&Target::All).await;
        cut_off.close().await;
        result
    });
    session_waiting_at_gate(&t).await;
    relay.cut();
    let err = run.await.unwrap().unwrap_err().to_string();
    // The server session ends once it finishes the statement it was running.
    gate.close().await.unwrap();

    let next = runner::<WithGate>(&t, Options::default()).await;
    if t.backend == Backend::Postgres {
        assert!(err.contains("rolled back"), "{err}");
        assert_eq!(next.status().await.unwrap()[1].state, State::Failed);
        assert_eq!(next.up(&Target::All).await.unwrap(), [GATED]);
        next.close().await;
        assert_eq!(t.count("cranks").await, 0);
        return;
    }

    // MySQL: statement 1 committed; statement 2's outcome is unknown, and the run says so.
    assert!(
        err.contains("whether statement 2 took effect is unknown"),
        "{err}"
    );
    let status = next.status().await.unwrap();
    assert_eq!(status[1].state, State::Interrupted);
    let run = status[1].failure.as_ref().expect("the run is recorded");
    assert_eq!(
        (run.status.as_str(), run.statements_done),
        ("interrupted", 1)
    );
    let err = next.up(&Target::All).await.unwrap_err().to_string();
    assert!(
        err.contains("its connection failed at statement 2")
            && err
                .contains("statement 1 of 3 took effect and statement 2 may have taken effect too"),
        "{err}"
    );
    next.repair_at(GATED, 2).await.unwrap();
    assert_eq!(next.up(&Target::All).await.unwrap(), [GATED]);
    next.close().await;
    assert_eq!(t.count("levers").await + t.count("cranks").await, 0);
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
