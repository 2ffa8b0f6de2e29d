//! `audit_logs` partitioned by month on PostgreSQL: the migration keeps every
//! row (both ways), `ensure` creates months ahead and rescues rows from the
//! default partition, prune drops wholly expired months and deletes the rest
//! row by row. Elsewhere the table stays plain and the partition commands
//! say so.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Utc};
use gatehouse::Error;
use gatehouse::audit::partitions::{self, DEFAULT_PARTITION, partition_name};
use gatehouse::audit::{AuditEntry, retention};
use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use crate::support::{Backend, TestDb, run_empty, run_migrated};

const PARTITIONING: &str = "m20261121_000003_partition_audit_logs";

fn this_month() -> NaiveDate {
    let now = Utc::now();
    NaiveDate::from_ymd_opt(now.year(), now.month(), 1).unwrap()
}

fn start(month: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&month.and_hms_opt(0, 0, 0).unwrap())
}

async fn row(t: &TestDb, retention_days: i32, at: DateTime<Utc>) -> Uuid {
    AuditEntry::new("test", "partitions")
        .retention_days(retention_days)
        .record(&t.db, at)
        .await
        .unwrap()
        .id
}

async fn text(t: &TestDb, sql: &str) -> String {
    let row =
        t.db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
            .await
            .unwrap()
            .unwrap();
    row.try_get_by_index(0).unwrap()
}

/// The partition holding row `id`.
async fn home(t: &TestDb, id: Uuid) -> String {
    text(
        t,
        &format!("SELECT tableoid::regclass::text FROM audit_logs WHERE id = '{id}'"),
    )
    .await
}

async fn ids(t: &TestDb) -> Vec<Uuid> {
    let rows =
        t.db.query_all_raw(Statement::from_string(
            t.db_backend(),
            "SELECT id FROM audit_logs ORDER BY id".to_owned(),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get_by_index::<Uuid>(0).unwrap())
        .collect()
}

async fn kind(t: &TestDb) -> String {
    text(
        t,
        "SELECT relkind::text FROM pg_class WHERE oid = 'audit_logs'::regclass",
    )
    .await
}

async fn migration_keeps_every_row_both_ways(t: TestDb) {
    let steps = Migrator::migrations()
        .iter()
        .position(|m| m.name() == PARTITIONING)
        .unwrap();
    Migrator::up(&t.db, Some(steps as u32)).await.unwrap();
    let month = this_month();
    // Older than the 36 months the migration creates: the default partition.
    let ancient = row(&t, 90, start(month - Months::new(60))).await;
    let mut written = vec![ancient];
    for at in [
        start(month - Months::new(2)) + Duration::days(3),
        start(month - Months::new(1)),
        Utc::now(),
    ] {
        written.push(row(&t, 90, at).await);
    }
    written.sort();

    Migrator::up(&t.db, Some(1)).await.unwrap();
    assert_eq!(kind(&t).await, "p");
    assert_eq!(ids(&t).await, written);
    let names: Vec<String> = partitions::list(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    let mut expected: Vec<String> = (0..=39)
        .map(|i| partition_name(month - Months::new(36) + Months::new(i)))
        .collect();
    expected.push(DEFAULT_PARTITION.to_owned());
    assert_eq!(names, expected);
    assert_eq!(home(&t, ancient).await, DEFAULT_PARTITION);
    // The later migrations too, so the whole schema can be held to the entities.
    let later = Migrator::migrations().len() - steps - 1;
    Migrator::up(&t.db, None).await.unwrap();
    let drift = gatehouse::schema::drift(
        DbBackend::Postgres,
        &gatehouse::schema::introspect(&t.db).await.unwrap(),
    );
    assert!(drift.is_empty(), "{drift:#?}");
    Migrator::down(&t.db, Some(later as u32)).await.unwrap();

    Migrator::down(&t.db, Some(1)).await.unwrap();
    assert_eq!(kind(&t).await, "r");
    assert_eq!(ids(&t).await, written);
    assert!(partitions::list(&t.db).await.is_err());
    Migrator::up(&t.db, None).await.unwrap();
    assert_eq!(ids(&t).await, written);
}

async fn ensure_creates_months_ahead_and_moves_stranded_rows(t: TestDb) {
    let month = this_month();
    let later = start(month + Months::new(6));
    // Months 0 to 3 exist after the migration; month 7 does not yet.
    let stranded = row(&t, 90, later + Months::new(1) + Duration::hours(5)).await;
    assert_eq!(home(&t, stranded).await, DEFAULT_PARTITION);

    let ensured = partitions::ensure(&t.db, later, 2).await.unwrap();
    let created: Vec<String> = (6..=8)
        .map(|i| partition_name(month + Months::new(i)))
        .collect();
    assert_eq!(ensured.created, created);
    assert_eq!(ensured.moved_rows, 1);
    assert_eq!(home(&t, stranded).await, created[1]);
    assert_eq!(
        t.count("audit_logs_default").await,
        0,
        "the default partition keeps nothing it should not"
    );
    // Again: nothing to do. Too far ahead: refused, nothing created.
    assert_eq!(
        partitions::ensure(&t.db, later, 2).await.unwrap(),
        Default::default()
    );
    assert!(matches!(
        partitions::ensure(&t.db, later, 121).await,
        Err(Error::InvalidInput {
            field: "months_ahead",
            ..
        })
    ));
    assert_eq!(partitions::list(&t.db).await.unwrap().len(), 4 + 3 + 1);
}

async fn prune_drops_wholly_expired_months(t: TestDb) {
    let now = Utc::now();
    let month = this_month();
    let m = |back: u32| start(month - Months::new(back));
    partitions::ensure(&t.db, m(4), 4).await.unwrap();
    for i in 0..3 {
        row(&t, 30, m(4) + Duration::days(i)).await;
    }
    // Month -3 keeps one long-lived row, so only its expired rows go, one by one.
    let deleted = [
        row(&t, 30, m(3)).await,
        row(&t, 30, m(3) + Duration::days(9)).await,
    ];
    let kept = row(&t, 365, m(3) + Duration::days(2)).await;
    row(&t, 10, m(2) + Duration::days(1)).await;
    let last_month = row(&t, 90, m(1) + Duration::days(1)).await;
    let recent = row(&t, 90, now - Duration::hours(1)).await;

    let pruned = retention::prune_audit_logs(&t.db, 1, now).await.unwrap();
    assert_eq!(pruned.partitions_dropped, 2, "{pruned:?}");
    assert_eq!(pruned.deleted, deleted.len() as u64, "{pruned:?}");
    assert_eq!(pruned.batches, 2, "{pruned:?}");
    let mut left = vec![kept, last_month, recent];
    left.sort();
    assert_eq!(ids(&t).await, left);
    let names: Vec<String> = partitions::list(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert!(
        !names.contains(&partition_name(month - Months::new(4))),
        "{names:?}"
    );
    assert!(
        !names.contains(&partition_name(month - Months::new(2))),
        "{names:?}"
    );
    assert!(
        names.contains(&partition_name(month - Months::new(3))),
        "{names:?}"
    );
    assert!(
        names.contains(&partition_name(month - Months::new(1))),
        "{names:?}"
    );
    // Nothing more to do.
    let again = retention::prune_audit_logs(&t.db, 1, now).await.unwrap();
    assert_eq!((again.partitions_dropped, again.deleted), (0, 0));
}

async fn elsewhere_the_table_stays_plain(t: TestDb) {
    assert!(!partitions::is_partitioned(&t.db).await.unwrap());
    assert!(matches!(
        partitions::list(&t.db).await,
        Err(Error::Config {
            var: "DATABASE_URL",
            ..
        })
    ));
    assert!(matches!(
        partitions::ensure(&t.db, Utc::now(), 3).await,
        Err(Error::Config { .. })
    ));
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migration_keeps_every_row_both_ways() {
        run_empty(
            Backend::Postgres,
            super::migration_keeps_every_row_both_ways,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ensure_creates_months_ahead_and_moves_stranded_rows() {
        run_migrated(
            Backend::Postgres,
            super::ensure_creates_months_ahead_and_moves_stranded_rows,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prune_drops_wholly_expired_months() {
        run_migrated(Backend::Postgres, super::prune_drops_wholly_expired_months).await;
    }
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn elsewhere_the_table_stays_plain() {
        crate::support::run_migrated(
            crate::support::Backend::Sqlite,
            super::elsewhere_the_table_stays_plain,
        )
        .await;
    }
}

mod mysql {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn elsewhere_the_table_stays_plain() {
        crate::support::run_migrated(
            crate::support::Backend::MySql,
            super::elsewhere_the_table_stays_plain,
        )
        .await;
    }
}
