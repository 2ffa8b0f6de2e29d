//! Audit ingest throughput: the typed [`gatehouse::audit::ingest`] against
//! sqlx `QueryBuilder::push_values` (split under the same bind limit, one
//! transaction) and, on PostgreSQL, binary `COPY ... FROM STDIN`, at batch
//! sizes 1 to 100,000, on a fresh database per backend.
//!
//! `cargo bench --bench ingest`; env `BENCH_BACKENDS` (default
//! `postgres,mysql,sqlite`), `BENCH_SIZES` (default `1,100,1000,10000,100000`),
//! `BENCH_ROUNDS` (default 5), `BENCH_SAMPLE_SECONDS` (default 2). Servers as for the tests: `TEST_POSTGRES_URL`,
//! `TEST_MYSQL_URL`. Writes `target/bench-ingest.json`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use gatehouse::audit::ingest::{columns_per_row, ingest, max_binds};
use gatehouse::audit::{AuditEntry, ingest_pooled};
use gatehouse_entity::audit_logs;
use gatehouse_entity::sea_orm_active_enums::{AuditOutcome, RiskLevel};
use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::{self, MySql, Postgres, QueryBuilder, Sqlite};
use sea_orm::{
    ActiveEnum, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    EntityTrait, QueryOrder, Statement,
};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// How long each timed sample repeats its batch at least (after one batch,
/// whatever it takes), so that small batches reach a stable rows/s.
const DEFAULT_SAMPLE_SECONDS: f64 = 2.0;

const COLUMNS: &str = "id, user_id, session_id, event_type, action, outcome, resource_type, \
    resource_id, request_id, http_method, request_path, status_code, ip_address, user_agent, \
    is_suspicious, risk_level, country_code, region, city, duration_ms, response_size_bytes, \
    retention_days, metadata, created_at";

/// One audit row as plain data, the input of every method.
#[derive(Clone)]
struct Row {
    user_id: Option<Uuid>,
    event_type: String,
    action: String,
    outcome: AuditOutcome,
    resource: Option<(String, String)>,
    request_id: Option<String>,
    http: Option<(String, String, i32)>,
    ip_address: Option<String>,
    user_agent: Option<String>,
    is_suspicious: bool,
    risk_level: RiskLevel,
    geo: Option<(String, String, String)>,
    timing: Option<(i32, i64)>,
    retention_days: i32,
    metadata: Option<Json>,
}

/// The `i`th row: three in four carry a full request context, the rest only
/// what a background job would log.
fn row(i: usize, user: Uuid) -> Row {
    if i % 4 == 3 {
        return Row {
            user_id: None,
            event_type: "job".into(),
            action: format!("retention_prune_{}", i % 7),
            outcome: AuditOutcome::Success,
            resource: None,
            request_id: None,
            http: None,
            ip_address: None,
            user_agent: None,
            is_suspicious: false,
            risk_level: RiskLevel::Low,
            geo: None,
            timing: None,
            retention_days: 30,
            metadata: None,
        };
    }
    let failed = i.is_multiple_of(10);
    Row {
        user_id: Some(user),
        event_type: "api_request".into(),
        action: ["read_document", "update_document", "list_keys"][i % 3].into(),
        outcome: if failed {
            AuditOutcome::Failure
        } else {
            AuditOutcome::Success
        },
        resource: Some(("document".into(), format!("doc-{}", i % 5_000))),
        request_id: Some(format!("req-{i:016x}")),
        http: Some((
            if i % 3 == 1 { "PUT" } else { "GET" }.into(),
            format!("/api/v1/documents/doc-{}?fields=title,owner", i % 5_000),
            if failed { 403 } else { 200 },
        )),
        ip_address: Some(format!("10.{}.{}.{}", i % 200, (i / 200) % 250, i % 250)),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".into()),
        is_suspicious: failed,
        risk_level: if failed {
            RiskLevel::Medium
        } else {
            RiskLevel::Low
        },
        geo: Some(("DE".into(), "Bayern".into(), "München".into())),
        timing: Some((
            i32::try_from(i % 900).unwrap(),
            512 + i64::try_from(i % 4096).unwrap(),
        )),
        retention_days: 90,
        metadata: Some(json!({"scope": "documents", "attempt": i % 3, "via": "api"})),
    }
}

impl Row {
    fn entry(&self) -> AuditEntry {
        let mut e = AuditEntry::new(&self.event_type, &self.action)
            .outcome(self.outcome)
            .risk(self.risk_level)
            .retention_days(self.retention_days)
            .client(self.ip_address.as_deref(), self.user_agent.as_deref());
        if let Some(user) = self.user_id {
            e = e.user(user);
        }
        if let Some((kind, id)) = &self.resource {
            e = e.resource(kind, id);
        }
        if let Some(id) = &self.request_id {
            e = e.request_id(id);
        }
        if let Some((method, path, status)) = &self.http {
            e = e.http(method, path, *status);
        }
        if self.is_suspicious {
            e = e.suspicious(self.risk_level);
        }
        if let Some((country, region, city)) = &self.geo {
            e = e.geo(Some(country), Some(region), Some(city));
        }
        if let Some((ms, bytes)) = self.timing {
            e = e.timing(ms, Some(bytes));
        }
        if let Some(metadata) = &self.metadata {
            e = e.metadata(metadata.clone());
        }
        e
    }
}

/// The row's 24 values in [`COLUMNS`] order, bound with the types sea-orm
/// binds (`Uuid`, `String`, `i32`, `i64`, `bool`, JSON, `DateTime<Utc>`).
macro_rules! push_row {
    ($b:ident, $r:ident, $now:ident) => {{
        $b.push_bind(Uuid::now_v7())
            .push_bind($r.user_id)
            .push_bind(None::<Uuid>)
            .push_bind(&$r.event_type)
            .push_bind(&$r.action)
            .push_bind($r.outcome.to_value())
            .push_bind($r.resource.as_ref().map(|r| &r.0))
            .push_bind($r.resource.as_ref().map(|r| &r.1))
            .push_bind(&$r.request_id)
            .push_bind($r.http.as_ref().map(|h| &h.0))
            .push_bind($r.http.as_ref().map(|h| &h.1))
            .push_bind($r.http.as_ref().map(|h| h.2))
            .push_bind(&$r.ip_address)
            .push_bind(&$r.user_agent)
            .push_bind($r.is_suspicious)
            .push_bind($r.risk_level.to_value())
            .push_bind($r.geo.as_ref().map(|g| &g.0))
            .push_bind($r.geo.as_ref().map(|g| &g.1))
            .push_bind($r.geo.as_ref().map(|g| &g.2))
            .push_bind($r.timing.map(|t| t.0))
            .push_bind($r.timing.map(|t| t.1))
            .push_bind($r.retention_days)
            .push_bind(&$r.metadata)
            .push_bind($now);
    }};
}

/// sqlx `push_values` on one backend: multi-row INSERTs of as many rows as
/// fit under the bind limit, in one transaction.
macro_rules! push_values_insert {
    ($db:ty, $pool:expr, $rows:expr, $now:expr, $per:expr) => {{
        let mut tx = $pool.begin().await.expect("begin");
        let now: DateTime<Utc> = $now;
        let mut written = 0;
        for chunk in $rows.chunks($per) {
            let mut q = QueryBuilder::<$db>::new(format!("INSERT INTO audit_logs ({COLUMNS}) "));
            q.push_values(chunk, |mut b, r| push_row!(b, r, now));
            written += q
                .build()
                .execute(&mut *tx)
                .await
                .expect("push_values insert")
                .rows_affected();
        }
        tx.commit().await.expect("commit");
        written
    }};
}

/// Binary COPY encoding (PostgreSQL's `COPY ... (FORMAT binary)`).
mod pg_binary {
    use super::*;

    pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
    pub const TRAILER: &[u8] = &(-1i16).to_be_bytes();
    /// Microseconds between the Unix epoch and PostgreSQL's, 2000-01-01.
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

    fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
        buf.extend_from_slice(&i32::try_from(bytes.len()).unwrap().to_be_bytes());
        buf.extend_from_slice(bytes);
    }
    fn null(buf: &mut Vec<u8>) {
        buf.extend_from_slice(&(-1i32).to_be_bytes());
    }
    fn opt_text(buf: &mut Vec<u8>, v: Option<&str>) {
        match v {
            Some(v) => field(buf, v.as_bytes()),
            None => null(buf),
        }
    }

    pub fn row(buf: &mut Vec<u8>, r: &Row, now: DateTime<Utc>) {
        buf.extend_from_slice(&24i16.to_be_bytes());
        field(buf, Uuid::now_v7().as_bytes());
        match r.user_id {
            Some(u) => field(buf, u.as_bytes()),
            None => null(buf),
        }
        null(buf); // session_id
        field(buf, r.event_type.as_bytes());
        field(buf, r.action.as_bytes());
        field(buf, r.outcome.to_value().as_bytes());
        opt_text(buf, r.resource.as_ref().map(|r| r.0.as_str()));
        opt_text(buf, r.resource.as_ref().map(|r| r.1.as_str()));
        opt_text(buf, r.request_id.as_deref());
        opt_text(buf, r.http.as_ref().map(|h| h.0.as_str()));
        opt_text(buf, r.http.as_ref().map(|h| h.1.as_str()));
        match &r.http {
            Some(h) => field(buf, &h.2.to_be_bytes()),
            None => null(buf),
        }
        opt_text(buf, r.ip_address.as_deref());
        opt_text(buf, r.user_agent.as_deref());
        field(buf, &[u8::from(r.is_suspicious)]);
        field(buf, r.risk_level.to_value().as_bytes());
        opt_text(buf, r.geo.as_ref().map(|g| g.0.as_str()));
        opt_text(buf, r.geo.as_ref().map(|g| g.1.as_str()));
        opt_text(buf, r.geo.as_ref().map(|g| g.2.as_str()));
        match r.timing {
            Some((ms, bytes)) => {
                field(buf, &ms.to_be_bytes());
                field(buf, &bytes.to_be_bytes());
            }
            None => {
                null(buf);
                null(buf);
            }
        }
        field(buf, &r.retention_days.to_be_bytes());
        match &r.metadata {
            Some(m) => {
                // jsonb: a version byte, then the JSON text.
                let mut jsonb = vec![1u8];
                serde_json::to_writer(&mut jsonb, m).unwrap();
                field(buf, &jsonb);
            }
            None => null(buf),
        }
        field(
            buf,
            &(now.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes(),
        );
    }
}

/// Binary COPY of `rows` in one transaction, sent in pieces of about 1 MiB
/// while the rest is encoded.
async fn copy_binary(pool: &sqlx::PgPool, rows: &[Row], now: DateTime<Utc>) -> u64 {
    const PIECE: usize = 1 << 20;
    let mut tx = pool.begin().await.expect("begin");
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY audit_logs ({COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await
        .expect("COPY starts");
    let mut buf = Vec::with_capacity(PIECE + 4096);
    buf.extend_from_slice(pg_binary::HEADER);
    for r in rows {
        pg_binary::row(&mut buf, r, now);
        if buf.len() >= PIECE {
            copy.send(buf.as_slice()).await.expect("COPY data");
            buf.clear();
        }
    }
    buf.extend_from_slice(pg_binary::TRAILER);
    copy.send(buf.as_slice()).await.expect("COPY data");
    let written = copy.finish().await.expect("COPY finishes");
    tx.commit().await.expect("commit");
    written
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    Typed,
    PushValues,
    Copy,
    /// `ingest_pooled`: the typed API streaming binary COPY.
    TypedCopy,
}

impl Method {
    fn label(self) -> &'static str {
        match self {
            Self::Typed => "typed ingest",
            Self::PushValues => "sqlx push_values",
            Self::Copy => "COPY binary",
            Self::TypedCopy => "typed ingest_pooled",
        }
    }
}

struct Bench {
    label: &'static str,
    db: DatabaseConnection,
    user: Uuid,
    /// The database's name, or the SQLite file's path.
    name: String,
}

impl Bench {
    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    fn methods(&self) -> Vec<Method> {
        let mut m = vec![Method::Typed, Method::PushValues];
        if self.backend() == DbBackend::Postgres {
            m.push(Method::Copy);
            m.push(Method::TypedCopy);
        }
        m
    }

    async fn clear(&self) {
        let sql = match self.backend() {
            DbBackend::Sqlite => "DELETE FROM audit_logs",
            _ => "TRUNCATE TABLE audit_logs",
        };
        self.db
            .execute_raw(Statement::from_string(self.backend(), sql))
            .await
            .expect("clear audit_logs");
    }

    /// Writes one batch with `method`; returns the rows written.
    async fn write(
        &self,
        method: Method,
        rows: &[Row],
        entries: &[AuditEntry],
        now: DateTime<Utc>,
    ) -> u64 {
        let per = max_binds(self.backend()) / columns_per_row();
        match (method, self.backend()) {
            (Method::Typed, _) => ingest(&self.db, entries, now).await.expect("ingest"),
            (Method::PushValues, DbBackend::Postgres) => {
                push_values_insert!(
                    Postgres,
                    self.db.get_postgres_connection_pool(),
                    rows,
                    now,
                    per
                )
            }
            (Method::PushValues, DbBackend::MySql) => {
                push_values_insert!(MySql, self.db.get_mysql_connection_pool(), rows, now, per)
            }
            (Method::PushValues, _) => {
                push_values_insert!(Sqlite, self.db.get_sqlite_connection_pool(), rows, now, per)
            }
            (Method::TypedCopy, _) => ingest_pooled(&self.db, entries, now)
                .await
                .expect("ingest_pooled"),
            (Method::Copy, _) => {
                copy_binary(self.db.get_postgres_connection_pool(), rows, now).await
            }
        }
    }

    /// One timed sample: batches of `size`, repeated for at least
    /// `min_time`; returns rows/s. Clears the table before.
    async fn sample(&self, method: Method, size: usize, min_time: Duration) -> f64 {
        let rows: Vec<Row> = (0..size).map(|i| row(i, self.user)).collect();
        let entries: Vec<AuditEntry> = rows.iter().map(Row::entry).collect();
        self.clear().await;
        let started = Instant::now();
        let (mut written, mut batches) = (0, 0);
        while batches == 0 || started.elapsed() < min_time {
            let now = Utc::now().trunc_subsecs(6);
            written += self.write(method, &rows, &entries, now).await;
            batches += 1;
        }
        let elapsed = started.elapsed();
        assert_eq!(
            written,
            (batches * size) as u64,
            "{method:?} wrote every row"
        );
        written as f64 / elapsed.as_secs_f64()
    }

    /// Every method writes the same 100 rows; their stored values (all but
    /// the id) must be identical.
    async fn check_same_rows(&self) {
        let rows: Vec<Row> = (0..100).map(|i| row(i, self.user)).collect();
        let entries: Vec<AuditEntry> = rows.iter().map(Row::entry).collect();
        let mut first: Option<Vec<audit_logs::Model>> = None;
        for method in self.methods() {
            self.clear().await;
            let now = Utc.timestamp_opt(1_700_000_000, 123_456_000).unwrap();
            let written = self.write(method, &rows, &entries, now).await;
            assert_eq!(written, 100);
            let mut stored = audit_logs::Entity::find()
                .order_by_asc(audit_logs::Column::Id)
                .all(&self.db)
                .await
                .unwrap();
            for m in &mut stored {
                m.id = Uuid::nil();
            }
            match &first {
                None => first = Some(stored),
                Some(expected) => assert!(
                    *expected == stored,
                    "{}: {} stores other values than the typed ingest",
                    self.label,
                    method.label()
                ),
            }
        }
        self.clear().await;
    }
}

async fn connect(url: &str) -> Option<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .max_connections(2)
        .connect_timeout(Duration::from_secs(3));
    Database::connect(options).await.ok()
}

/// A fresh, migrated database with one user; `None` when the server is unreachable.
async fn fresh(label: &'static str, admin_url: Option<&str>) -> Option<Bench> {
    let mut name = format!("gh_bench_ingest_{}", Uuid::now_v7().simple());
    let url = match admin_url {
        None => {
            name = std::env::temp_dir()
                .join(format!("{name}.db"))
                .display()
                .to_string();
            format!("sqlite://{name}?mode=rwc")
        }
        Some(admin_url) => {
            let admin = connect(admin_url).await?;
            admin
                .execute_raw(Statement::from_string(
                    admin.get_database_backend(),
                    format!("CREATE DATABASE {name}"),
                ))
                .await
                .expect("CREATE DATABASE");
            admin.close().await.unwrap();
            // Keep a query string such as `?host=/var/run/postgresql`.
            let (base, query) = admin_url.split_once('?').unwrap_or((admin_url, ""));
            let server = base.rsplit_once('/').unwrap().0;
            if query.is_empty() {
                format!("{server}/{name}")
            } else {
                format!("{server}/{name}?{query}")
            }
        }
    };
    let db = connect(&url).await.expect("connects to the fresh database");
    Migrator::up(&db, None).await.expect("Migrator::up");
    let user = Uuid::now_v7();
    let now = Utc::now();
    gatehouse_entity::users::Entity::insert(gatehouse_entity::users::ActiveModel {
        id: sea_orm::Set(user),
        email: sea_orm::Set("bench@example.com".into()),
        username: sea_orm::Set("bench".into()),
        email_folded: sea_orm::Set("bench@example.com".into()),
        username_folded: sea_orm::Set("bench".into()),
        password_hash: sea_orm::Set(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        ),
        is_active: sea_orm::Set(true),
        is_verified: sea_orm::Set(true),
        is_locked: sea_orm::Set(false),
        failed_login_count: sea_orm::Set(0),
        created_at: sea_orm::Set(now),
        updated_at: sea_orm::Set(now),
        ..Default::default()
    })
    .exec_without_returning(&db)
    .await
    .expect("bench user");
    Some(Bench {
        label,
        db,
        user,
        name,
    })
}

/// Drops what [`fresh`] created.
async fn drop_database(bench: Bench, admin_url: Option<&str>) {
    let backend = bench.backend();
    let name = bench.name;
    bench.db.close().await.unwrap();
    match admin_url {
        None => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{name}{suffix}"));
            }
        }
        Some(admin_url) => {
            let admin = connect(admin_url).await.expect("admin");
            let q = if backend == DbBackend::MySql {
                '`'
            } else {
                '"'
            };
            let _ = admin
                .execute_raw(Statement::from_string(
                    admin.get_database_backend(),
                    format!("DROP DATABASE IF EXISTS {q}{name}{q}"),
                ))
                .await;
            admin.close().await.unwrap();
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn env_list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let sizes: Vec<usize> = env_list("BENCH_SIZES", "1,100,1000,10000,100000")
        .iter()
        .map(|s| s.parse().expect("BENCH_SIZES: numbers"))
        .collect();
    let backends = env_list("BENCH_BACKENDS", "postgres,mysql,sqlite");
    let min_time = Duration::from_secs_f64(
        std::env::var("BENCH_SAMPLE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_SAMPLE_SECONDS),
    );
    let postgres_url = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mysql_url = std::env::var("TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".into());

    let mut json_backends = Vec::new();
    println!(
        "audit ingest: rows/s, median of {rounds} interleaved samples per cell; \
         each sample repeats its batch for at least {:.1} s (one batch at least)",
        min_time.as_secs_f64()
    );
    for backend in &backends {
        let (label, admin_url) = match backend.as_str() {
            "postgres" => ("PostgreSQL", Some(postgres_url.as_str())),
            "mysql" => ("MariaDB", Some(mysql_url.as_str())),
            "sqlite" => ("SQLite", None),
            other => panic!("BENCH_BACKENDS: unknown backend {other}"),
        };
        let Some(bench) = fresh(label, admin_url).await else {
            println!("\n{label}: skipped, server unreachable");
            continue;
        };
        bench.check_same_rows().await;
        let methods = bench.methods();
        let mut table = String::new();
        let mut json_sizes = Vec::new();
        let has_copy = methods.contains(&Method::Copy);
        let _ = writeln!(
            table,
            "\n{label} ({} rows per push_values statement, same values from every method checked)\n",
            max_binds(bench.backend()) / columns_per_row()
        );
        let _ = write!(table, "| batch | typed ingest | sqlx push_values |");
        if has_copy {
            let _ = write!(
                table,
                " COPY binary | typed / COPY | typed ingest_pooled | ingest_pooled / COPY |"
            );
        }
        let _ = writeln!(table, " typed / push_values |");
        let _ = writeln!(
            table,
            "|---:|---:|---:|{}---:|",
            if has_copy { "---:|---:|---:|---:|" } else { "" }
        );
        for &size in &sizes {
            let mut samples: Vec<Vec<f64>> = vec![Vec::new(); methods.len()];
            // Warm-up: statement caches, buffers, the table's first pages.
            for &m in &methods {
                bench.sample(m, size.min(1_000), Duration::ZERO).await;
            }
            for round in 0..rounds {
                // Rotate the order so drift and warm-up hit every method alike.
                for k in 0..methods.len() {
                    let idx = (k + round) % methods.len();
                    samples[idx].push(bench.sample(methods[idx], size, min_time).await);
                }
            }
            let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
            let (typed, push) = (medians[0], medians[1]);
            let _ = write!(table, "| {size} | {typed:.0} | {push:.0} |");
            if has_copy {
                let _ = write!(
                    table,
                    " {:.0} | {:.2}x | {:.0} | {:.2}x |",
                    medians[2],
                    typed / medians[2],
                    medians[3],
                    medians[3] / medians[2]
                );
            }
            let _ = writeln!(table, " {:.2}x |", typed / push);
            let spread = |s: &Vec<f64>| {
                let (lo, hi) = s
                    .iter()
                    .fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
                json!({"min": lo, "max": hi})
            };
            json_sizes.push(json!({
                "batch": size,
                "rows_per_second": methods.iter().zip(&medians).map(|(m, v)| (m.label().to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "spread": methods.iter().zip(&samples).map(|(m, s)| (m.label().to_owned(), spread(s))).collect::<serde_json::Map<_, _>>(),
                "typed_over_push_values": typed / push,
                "typed_over_copy": if has_copy { json!(typed / medians[2]) } else { Json::Null },
                "pooled_over_copy": if has_copy { json!(medians[3] / medians[2]) } else { Json::Null },
            }));
            eprintln!("{label}: batch {size} done");
        }
        print!("{table}");
        json_backends.push(json!({"backend": label, "sizes": json_sizes}));
        drop_database(bench, admin_url).await;
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = std::path::Path::new(&target).join("bench-ingest.json");
    let report = json!({
        "rounds": rounds,
        "sample_seconds": min_time.as_secs_f64(),
        "sizes": sizes,
        "load_average_at_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "backends": json_backends,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap())
        .expect("writes the report");
    println!("\nwritten: {}", path.display());
}
