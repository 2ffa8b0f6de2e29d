//! Bulk audit ingest: [`ingest`] validates many [`AuditEntry`] values and
//! writes them in one transaction, in as few statements as each backend allows.
//!
//! PostgreSQL gets one `INSERT ... SELECT ... FROM UNNEST(...)` per chunk with
//! one array bind per column, so the binds do not grow with the rows.
//! MySQL/MariaDB and SQLite get multi-row `INSERT`s split so that each stays
//! under the backend's bind-parameter limit (sea-orm's `insert_many` does not
//! split and fails past it).

use chrono::{DateTime, Utc};
use entity::audit_logs;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ConnectionTrait, DbBackend, IdenStatic, Iterable, Statement,
    TransactionSession, TransactionTrait, Value,
};
use uuid::Uuid;

use super::AuditEntry;
use crate::Error;

/// Most bind parameters in one PostgreSQL statement (a 16-bit count in the protocol).
pub const POSTGRES_MAX_BINDS: usize = 65_535;
/// Most bind parameters in one MySQL/MariaDB prepared statement.
pub const MYSQL_MAX_BINDS: usize = 65_535;
/// Most bind parameters in one statement of the bundled SQLite
/// (`SQLITE_MAX_VARIABLE_NUMBER`, 32,766 since SQLite 3.32).
pub const SQLITE_MAX_BINDS: usize = 32_766;
/// Most rows in one PostgreSQL `UNNEST` statement: bounds the memory a
/// statement's arrays take on both sides.
pub const POSTGRES_ROWS_PER_STATEMENT: usize = 10_000;
/// Roughly the most bytes of values in one PostgreSQL statement, so a batch of
/// large metadata documents is split before it nears the protocol's 1 GiB limit.
pub const POSTGRES_BYTES_PER_STATEMENT: usize = 16 << 20;

/// Columns of `audit_logs`: bind parameters per row of a multi-row `INSERT`.
pub fn columns_per_row() -> usize {
    audit_logs::Column::iter().count()
}

/// Most bind parameters in one statement on `backend`.
pub fn max_binds(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Postgres => POSTGRES_MAX_BINDS,
        DbBackend::Sqlite => SQLITE_MAX_BINDS,
        _ => MYSQL_MAX_BINDS,
    }
}

/// Rows [`ingest`] writes per statement on `backend`: on PostgreSQL
/// [`POSTGRES_ROWS_PER_STATEMENT`] (or fewer for large rows), elsewhere as
/// many as fit under [`max_binds`].
pub fn rows_per_statement(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Postgres => POSTGRES_ROWS_PER_STATEMENT,
        _ => max_binds(backend) / columns_per_row(),
    }
}

/// Validates every entry, then writes them all to `audit_logs` in one
/// transaction (a savepoint when `db` is a transaction already), each with a
/// fresh UUID v7 id and dated `now` unless it has its own
/// [`created_at`](AuditEntry::created_at). Returns the rows written.
///
/// # Errors
/// [`Error::InvalidInput`] for the first entry that does not fit its columns,
/// its index in `entries` in the reason (nothing written);
/// [`Error::Reference`] for an unknown user or session; a database error.
/// Any error leaves nothing written.
pub async fn ingest<C>(db: &C, entries: &[AuditEntry], now: DateTime<Utc>) -> Result<u64, Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    for (index, entry) in entries.iter().enumerate() {
        entry.validate().map_err(|err| match err {
            Error::InvalidInput { field, reason } => Error::InvalidInput {
                field,
                reason: format!("entry {index}: {reason}"),
            },
            other => other,
        })?;
    }
    if entries.is_empty() {
        return Ok(0);
    }
    let txn = db.begin().await?;
    let written = match txn.get_database_backend() {
        DbBackend::Postgres => insert_unnest(&txn, entries, now).await,
        backend => insert_multi_row(&txn, entries, now, rows_per_statement(backend)).await,
    };
    match written {
        Ok(written) => {
            txn.commit().await?;
            Ok(written)
        }
        Err(err) => {
            // The statement's error is the one to report, not a failed rollback's.
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

/// Multi-row `INSERT`s of at most `rows` rows each. The values come from the
/// same row mapping as [`AuditEntry::record`]; the statement text is built
/// once per call rather than by sea-query per statement, which costs as much
/// as the database's work at these sizes.
async fn insert_multi_row<C: ConnectionTrait>(
    db: &C,
    entries: &[AuditEntry],
    now: DateTime<Utc>,
    rows: usize,
) -> Result<u64, Error> {
    let backend = db.get_database_backend();
    let full_chunk_sql = multi_row_insert(backend, rows.min(entries.len()));
    let mut written = 0;
    for chunk in entries.chunks(rows) {
        let mut values = Vec::with_capacity(chunk.len() * columns_per_row());
        for entry in chunk {
            let mut model = entry.clone().into_active_model(Uuid::now_v7(), now);
            values.extend(audit_logs::Column::iter().map(|column| {
                model
                    .take(column)
                    .into_value()
                    .expect("every column is set")
            }));
        }
        let sql = if chunk.len() == rows.min(entries.len()) {
            full_chunk_sql.clone()
        } else {
            multi_row_insert(backend, chunk.len())
        };
        let statement = Statement::from_sql_and_values(backend, sql, values);
        written += db.execute_raw(statement).await?.rows_affected();
    }
    Ok(written)
}

/// `INSERT INTO audit_logs (...) VALUES (?, ...), ...` for `rows` rows.
fn multi_row_insert(backend: DbBackend, rows: usize) -> String {
    let quote = if backend == DbBackend::MySql {
        '`'
    } else {
        '"'
    };
    let columns: Vec<String> = audit_logs::Column::iter()
        .map(|c| format!("{quote}{}{quote}", c.as_str()))
        .collect();
    let placeholders = format!("({})", vec!["?"; columns.len()].join(", "));
    let mut sql = format!(
        "INSERT INTO {quote}audit_logs{quote} ({}) VALUES ",
        columns.join(", ")
    );
    sql.reserve(rows * (placeholders.len() + 2));
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&placeholders);
    }
    sql
}

/// The PostgreSQL statement: one array per column, unnested into rows.
///
/// sea-query binds arrays without NULL elements only, so nullable columns
/// travel as a value validation never lets through, turned back into NULL:
/// `''` for text (empty text is refused) and for UUIDs and JSON sent as text,
/// `0` for `status_code` (must be 100 to 599), `-1` for `duration_ms` and
/// `response_size_bytes` (must not be negative).
const UNNEST_INSERT: &str = r#"INSERT INTO "audit_logs" ("id", "user_id", "session_id", "event_type", "action", "outcome", "resource_type", "resource_id", "request_id", "http_method", "request_path", "status_code", "ip_address", "user_agent", "is_suspicious", "risk_level", "country_code", "region", "city", "duration_ms", "response_size_bytes", "retention_days", "metadata", "created_at")
SELECT "id", NULLIF("user_id", '')::uuid, NULLIF("session_id", '')::uuid, "event_type", "action", "outcome", NULLIF("resource_type", ''), NULLIF("resource_id", ''), NULLIF("request_id", ''), NULLIF("http_method", ''), NULLIF("request_path", ''), NULLIF("status_code", 0), NULLIF("ip_address", ''), NULLIF("user_agent", ''), "is_suspicious", "risk_level", NULLIF("country_code", ''), NULLIF("region", ''), NULLIF("city", ''), NULLIF("duration_ms", -1), NULLIF("response_size_bytes", -1), "retention_days", NULLIF("metadata", '')::jsonb, "created_at"
FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int4[], $13::text[], $14::text[], $15::bool[], $16::text[], $17::text[], $18::text[], $19::text[], $20::int4[], $21::int8[], $22::int4[], $23::text[], $24::timestamptz[])
AS "u" ("id", "user_id", "session_id", "event_type", "action", "outcome", "resource_type", "resource_id", "request_id", "http_method", "request_path", "status_code", "ip_address", "user_agent", "is_suspicious", "risk_level", "country_code", "region", "city", "duration_ms", "response_size_bytes", "retention_days", "metadata", "created_at")"#;

/// `UNNEST` inserts of at most [`POSTGRES_ROWS_PER_STATEMENT`] rows and about
/// [`POSTGRES_BYTES_PER_STATEMENT`] bytes each.
async fn insert_unnest<C: ConnectionTrait>(
    db: &C,
    entries: &[AuditEntry],
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    let mut written = 0;
    let mut columns = UnnestColumns::with_capacity(entries.len().min(POSTGRES_ROWS_PER_STATEMENT));
    for entry in entries {
        columns.push(entry, now);
        if columns.rows == POSTGRES_ROWS_PER_STATEMENT
            || columns.bytes >= POSTGRES_BYTES_PER_STATEMENT
        {
            written += columns.take().execute(db).await?;
        }
    }
    if columns.rows > 0 {
        written += columns.execute(db).await?;
    }
    Ok(written)
}

/// The values of a chunk of rows, column by column (see [`UNNEST_INSERT`]).
struct UnnestColumns {
    rows: usize,
    bytes: usize,
    id: Vec<Uuid>,
    user_id: Vec<String>,
    session_id: Vec<String>,
    event_type: Vec<String>,
    action: Vec<String>,
    outcome: Vec<String>,
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    request_id: Vec<String>,
    http_method: Vec<String>,
    request_path: Vec<String>,
    status_code: Vec<i32>,
    ip_address: Vec<String>,
    user_agent: Vec<String>,
    is_suspicious: Vec<bool>,
    risk_level: Vec<String>,
    country_code: Vec<String>,
    region: Vec<String>,
    city: Vec<String>,
    duration_ms: Vec<i32>,
    response_size_bytes: Vec<i64>,
    retention_days: Vec<i32>,
    metadata: Vec<String>,
    created_at: Vec<DateTime<Utc>>,
}

/// Fixed-size values of a row, in bytes, for the statement size estimate.
const FIXED_ROW_BYTES: usize = 16 + 4 + 1 + 4 + 4 + 8 + 4 + 8 + 24 * 4;

impl UnnestColumns {
    fn with_capacity(rows: usize) -> Self {
        let text = || Vec::with_capacity(rows);
        Self {
            rows: 0,
            bytes: 0,
            id: Vec::with_capacity(rows),
            user_id: text(),
            session_id: text(),
            event_type: text(),
            action: text(),
            outcome: text(),
            resource_type: text(),
            resource_id: text(),
            request_id: text(),
            http_method: text(),
            request_path: text(),
            status_code: Vec::with_capacity(rows),
            ip_address: text(),
            user_agent: text(),
            is_suspicious: Vec::with_capacity(rows),
            risk_level: text(),
            country_code: text(),
            region: text(),
            city: text(),
            duration_ms: Vec::with_capacity(rows),
            response_size_bytes: Vec::with_capacity(rows),
            retention_days: Vec::with_capacity(rows),
            metadata: text(),
            created_at: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, e: &AuditEntry, now: DateTime<Utc>) {
        fn text(value: Option<&String>) -> String {
            value.cloned().unwrap_or_default()
        }
        fn uuid(value: Option<Uuid>) -> String {
            value.map(|u| u.to_string()).unwrap_or_default()
        }
        let metadata = e
            .metadata
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let len = |value: &Option<String>| value.as_ref().map_or(0, String::len);
        self.bytes += FIXED_ROW_BYTES
            + e.event_type.len()
            + e.action.len()
            + len(&e.resource_type)
            + len(&e.resource_id)
            + len(&e.request_id)
            + len(&e.request_path)
            + len(&e.user_agent)
            + metadata.len();
        self.rows += 1;
        self.id.push(Uuid::now_v7());
        self.user_id.push(uuid(e.user_id));
        self.session_id.push(uuid(e.session_id));
        self.event_type.push(e.event_type.clone());
        self.action.push(e.action.clone());
        self.outcome.push(e.outcome.to_value());
        self.resource_type.push(text(e.resource_type.as_ref()));
        self.resource_id.push(text(e.resource_id.as_ref()));
        self.request_id.push(text(e.request_id.as_ref()));
        self.http_method.push(text(e.http_method.as_ref()));
        self.request_path.push(text(e.request_path.as_ref()));
        self.status_code.push(e.status_code.unwrap_or(0));
        self.ip_address.push(text(e.ip_address.as_ref()));
        self.user_agent.push(text(e.user_agent.as_ref()));
        self.is_suspicious.push(e.is_suspicious);
        self.risk_level.push(e.risk_level.to_value());
        self.country_code.push(text(e.country_code.as_ref()));
        self.region.push(text(e.region.as_ref()));
        self.city.push(text(e.city.as_ref()));
        self.duration_ms.push(e.duration_ms.unwrap_or(-1));
        self.response_size_bytes
            .push(e.response_size_bytes.unwrap_or(-1));
        self.retention_days.push(e.retention_days);
        self.metadata.push(metadata);
        self.created_at.push(e.created_at.unwrap_or(now));
    }

    /// The collected chunk, leaving an empty one of the same capacity behind.
    fn take(&mut self) -> Self {
        let fresh = Self::with_capacity(self.rows);
        std::mem::replace(self, fresh)
    }

    async fn execute<C: ConnectionTrait>(self, db: &C) -> Result<u64, Error> {
        let values: [Value; 24] = [
            self.id.into(),
            self.user_id.into(),
            self.session_id.into(),
            self.event_type.into(),
            self.action.into(),
            self.outcome.into(),
            self.resource_type.into(),
            self.resource_id.into(),
            self.request_id.into(),
            self.http_method.into(),
            self.request_path.into(),
            self.status_code.into(),
            self.ip_address.into(),
            self.user_agent.into(),
            self.is_suspicious.into(),
            self.risk_level.into(),
            self.country_code.into(),
            self.region.into(),
            self.city.into(),
            self.duration_ms.into(),
            self.response_size_bytes.into(),
            self.retention_days.into(),
            self.metadata.into(),
            self.created_at.into(),
        ];
        let statement = Statement::from_sql_and_values(DbBackend::Postgres, UNNEST_INSERT, values);
        Ok(db.execute_raw(statement).await?.rows_affected())
    }
}
