//! Migrations on the 3-node Galera cluster: migrators on every node at once
//! apply each migration exactly once and all succeed; a run held by a live
//! migrator on another node is waited for, never taken for an interrupted
//! one; a migrator killed at any point is recovered by a plain rerun on its
//! own node or another.

use std::process::Child;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::Galera;
use crate::deploy::{ok, text};
use crate::recovery::{KILL_POINTS, deployed, kill_after, left_at, migrate, rerun_succeeds};

async fn scalar(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(DbBackend::MySql, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("a row")
        .try_get_by_index::<i64>(0)
        .expect("an integer")
}

fn gatehouse_migrations() -> usize {
    use gatehouse_migration::MigratorTrait;
    gatehouse_migration::Migrator::migrations().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_migrators_on_three_nodes_apply_each_migration_once() {
    let Some(g) = Galera::start().await else {
        return;
    };
    let children: Vec<(usize, Child)> = (0..6)
        .map(|i| {
            let node = i % 3;
            let child = migrate(&g.urls[node])
                .arg("up")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("gatehouse starts");
            (node, child)
        })
        .collect();
    for (node, child) in children {
        let out = child.wait_with_output().expect("gatehouse runs");
        assert!(
            out.status.success(),
            "a migrator on node {} failed:\n{}\n{}",
            node + 1,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let n = gatehouse_migrations() as i64;
    for i in 0..3 {
        let node = &g.causal(i).await;
        assert_eq!(
            scalar(node, "SELECT COUNT(*) FROM seaql_migrations").await,
            n
        );
        assert_eq!(
            scalar(
                node,
                "SELECT COUNT(*) FROM gatehouse_migrations WHERE direction = 'up' AND status = 'succeeded'"
            )
            .await,
            n,
            "node {}: each migration ran exactly once",
            i + 1
        );
        assert_eq!(
            scalar(
                node,
                "SELECT COUNT(*) FROM gatehouse_migrations WHERE status <> 'succeeded'"
            )
            .await,
            0
        );
        assert_eq!(
            scalar(node, "SELECT COUNT(*) FROM gatehouse_migration_lock").await,
            0
        );
        ok(migrate(&g.urls[i]).arg("verify"));
    }
    g.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_holder_on_another_node_is_waited_for_until_its_lease_runs_out() {
    let Some(g) = Galera::start().await else {
        return;
    };
    // Apply the first migration, so the lease's table exists.
    ok(migrate(&g.urls[0]).args(["up", "--to", "m20260115_000001_create_initial_schema"]));
    // A holder on node 2 with an open connection, that stops renewing: as a
    // migrator that hangs, or whose node got cut off from the cluster.
    let holder = &g.nodes[1];
    // One statement: waits until node 2 applied the first run's release, then inserts.
    holder
        .execute_unprepared(
            "SET STATEMENT wsrep_sync_wait = 15 FOR INSERT INTO gatehouse_migration_lock (id, holder, node, connection_id, acquired_at, expires_at) \
             VALUES (1, 'a-live-holder', (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
             WHERE VARIABLE_NAME = 'WSREP_GCOMM_UUID'), CONNECTION_ID(), UTC_TIMESTAMP(6), \
             UTC_TIMESTAMP(6) + INTERVAL 8 SECOND)",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let waited = migrate(&g.urls[0])
        .args(["up", "--lock-timeout", "2s"])
        .output()
        .unwrap();
    assert!(!waited.status.success());
    let err = text(&waited.stderr);
    assert!(
        err.contains("--lock-timeout") && !err.contains("did not finish"),
        "a live holder is waited for: {err}"
    );
    // Once its lease ran out, a plain run on node 3 takes over and finishes.
    let out = ok(migrate(&g.urls[2]).arg("up"));
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "the lease was taken over before it ran out"
    );
    let _ = text(&out.stdout);
    let n = gatehouse_migrations() as i64;
    assert_eq!(
        scalar(&g.causal(2).await, "SELECT COUNT(*) FROM seaql_migrations").await,
        n
    );
    g.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrator_killed_on_a_node_is_recovered_by_a_plain_rerun() {
    let Some(reference) = Galera::start().await else {
        return;
    };
    let started = Instant::now();
    ok(migrate(&reference.urls[0]).arg("up"));
    let whole = started.elapsed();
    let expected = deployed(&reference.causal(0).await).await;
    reference.drop().await;
    let mut seen = Vec::new();
    for point in 1..=KILL_POINTS {
        let g = Galera::start().await.expect("the cluster is up");
        let after = whole * point / (KILL_POINTS + 1);
        let was_running = kill_after(&g.urls[0], after);
        let left = left_at(&g.causal(0).await).await;
        // Every other rerun runs on another node, which waits out the killed run's lease.
        let node = if point % 2 == 0 { 1 } else { 0 };
        let rerun = Instant::now();
        rerun_succeeds(&g.urls[node]);
        let differences = deployed(&g.causal(0).await).await.differences(&expected);
        assert!(
            differences.is_empty(),
            "killed after {after:?} (applied {}, unfinished run {}), the rerun on node {} left another schema: {differences:#?}",
            left.0,
            left.1,
            node + 1
        );
        seen.push((
            after.as_millis(),
            was_running,
            left,
            node + 1,
            rerun.elapsed().as_millis(),
        ));
        g.drop().await;
    }
    println!(
        "galera: a whole run took {} ms; killed at (ms, still running, (applied, unfinished run), rerun node, rerun ms): {seen:?}",
        whole.as_millis()
    );
    let distinct: std::collections::BTreeSet<_> = seen.iter().map(|s| s.2).collect();
    assert!(
        distinct.len() >= 2,
        "the kills all landed at one point: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_has_a_primary_key() {
    // Galera replicates row changes by key: a table without one replicates
    // badly (and is refused with innodb_force_primary_key).
    let Some(g) = Galera::start().await else {
        return;
    };
    ok(migrate(&g.urls[0]).arg("up"));
    let db = g.causal(0).await;
    let tables = scalar(
        &db,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
    )
    .await;
    assert!(tables >= 20, "the schema is there ({tables} tables)");
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::MySql,
            "SELECT t.TABLE_NAME FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = DATABASE() \
             AND NOT EXISTS (SELECT 1 FROM information_schema.TABLE_CONSTRAINTS c \
             WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME \
             AND c.CONSTRAINT_TYPE = 'PRIMARY KEY')",
        ))
        .await
        .unwrap();
    let without: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect();
    assert!(
        without.is_empty(),
        "tables without a primary key: {without:?}"
    );
    let _ = db.close().await;
    g.drop().await;
}
