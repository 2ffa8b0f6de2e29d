//! A database server restarted in the middle of `gatehouse migrate up`, as
//! a crash does (SIGKILL of MariaDB, an immediate stop of PostgreSQL), on a
//! server of the test's own (`scripts/scratch-server.sh`), so the shared
//! servers are not disturbed: the migrator fails, and a plain rerun once the
//! server is back finishes with the uninterrupted schema, `verify` passing.

use std::process::{Command, Stdio};
use std::time::Instant;

use sea_orm::ConnectionTrait;

use super::unavailable;
use crate::deploy::{ok, text};
use crate::recovery::{deployed, left_at, migrate, rerun_succeeds};
use crate::support::connect;

/// A server of the test's own, removed when dropped.
struct Scratch {
    kind: &'static str,
    dir: String,
    port: u16,
}

impl Scratch {
    fn script(&self, action: &str) -> bool {
        Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/scratch-server.sh"
            ))
            .args([action, self.kind, &self.dir, &self.port.to_string()])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn start(kind: &'static str, port: u16) -> Option<Self> {
        let scratch = Self {
            kind,
            dir: format!("/var/tmp/gatehouse-scratch-{kind}-{port}"),
            port,
        };
        let _ = scratch.script("stop");
        if scratch.script("start") {
            Some(scratch)
        } else {
            unavailable(
                &format!("scratch {kind} server"),
                &scratch.dir,
                "it did not start",
            )
        }
    }

    fn url(&self, database: &str) -> String {
        match self.kind {
            "mariadb" => format!("mysql://root@127.0.0.1:{}/{database}", self.port),
            _ => format!("postgres://postgres@127.0.0.1:{}/{database}", self.port),
        }
    }

    async fn create(&self, database: &str) -> String {
        let admin = self.url(if self.kind == "mariadb" {
            "mysql"
        } else {
            "postgres"
        });
        let db = connect(&admin).await.expect("the scratch server answers");
        db.execute_unprepared(&format!("CREATE DATABASE {database}"))
            .await
            .expect("create database");
        let _ = db.close().await;
        self.url(database)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}

async fn restart_mid_run(kind: &'static str, port: u16) {
    let Some(server) = Scratch::start(kind, port) else {
        return;
    };
    let reference = server.create("reference").await;
    let started = Instant::now();
    ok(migrate(&reference).arg("up"));
    let whole = started.elapsed();
    let expected = deployed(&connect(&reference).await.unwrap()).await;
    let mut seen = Vec::new();
    for (i, fraction) in [0.2, 0.45].into_iter().enumerate() {
        let url = server.create(&format!("restarted_{i}")).await;
        let child = migrate(&url)
            .arg("up")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gatehouse starts");
        std::thread::sleep(whole.mul_f64(fraction));
        assert!(server.script("crash"), "the server crashes");
        let out = child.wait_with_output().expect("gatehouse runs");
        assert!(server.script("start"), "the server comes back");
        let db = connect(&url).await.expect("the server is back");
        let left = left_at(&db).await;
        rerun_succeeds(&url);
        let differences = deployed(&db).await.differences(&expected);
        assert!(
            differences.is_empty(),
            "{kind} restarted at {:.0}% of a run (migrator {}: {}; applied {}, unfinished run {}): \
             the rerun left another schema: {differences:#?}",
            fraction * 100.0,
            out.status,
            text(&out.stderr).trim(),
            left.0,
            left.1
        );
        seen.push((fraction, out.status.success(), left));
        let _ = db.close().await;
    }
    println!(
        "{kind}: a whole run took {} ms; restarted at (fraction, migrator exit 0, (applied, unfinished run)): {seen:?}",
        whole.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_restarted_mid_run_is_recovered_by_a_plain_rerun() {
    restart_mid_run("mariadb", 3391).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restarted_mid_run_is_recovered_by_a_plain_rerun() {
    restart_mid_run("postgres", 5491).await;
}
