//! Bulk audit ingest: [`ingest`] validates many [`AuditEntry`] values and
//! writes them in one transaction, in as few statements as each backend allows.
//!
//! PostgreSQL gets one `INSERT ... SELECT ... FROM UNNEST(...)` per chunk with
//! one array bind per column, so the binds do not grow with the rows.
//! MySQL/MariaDB and SQLite get multi-row `INSERT`s split so that each stays
//! under the backend's bind-parameter limit (sea-orm's `insert_many` does not
//! split and fails past it).

use chrono::{DateTime, Utc};
use gatehouse_entity::audit_logs;
#[cfg(feature = "postgres")]
use sea_orm::{ActiveEnum, Value};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbBackend, IdenStatic, Iterable, Statement,
    TransactionSession, TransactionTrait,
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
pub const POSTGRES_ROWS_PER_STATEMENT: usize = 2_500;
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
    validate_all(entries)?;
    if entries.is_empty() {
        return Ok(0);
    }
    let txn = db.begin().await?;
    let written = match txn.get_database_backend() {
        #[cfg(feature = "postgres")]
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

/// Checks every entry; the first invalid one's error names its index.
pub(super) fn validate_all(entries: &[AuditEntry]) -> Result<(), Error> {
    for (index, entry) in entries.iter().enumerate() {
        entry.validate().map_err(|err| match err {
            Error::InvalidInput { field, reason } => Error::InvalidInput {
                field,
                reason: format!("entry {index}: {reason}"),
            },
            other => other,
        })?;
    }
    Ok(())
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

#[cfg(feature = "postgres")]
/// Separates the values of a text column in its one bind parameter: a
/// control character, which validation refuses in every text value, and
/// which serialized JSON never contains unescaped.
const SEPARATOR: char = '\u{1f}';

#[cfg(feature = "postgres")]
/// The PostgreSQL statement: one bind per column, unnested into rows.
///
/// Text, UUID-as-text and JSON columns each travel as one string, their
/// values joined by [`SEPARATOR`], split by `string_to_array` with `''` read
/// as NULL (validation refuses empty text). One string per column instead of
/// one per value keeps the client's allocations per chunk constant, which is
/// most of its cost. (A column whose only value is NULL arrives as `''`, an
/// empty array; `UNNEST` pads it with NULL, which is the value.) sea-query
/// binds arrays without NULL elements only, so the nullable integers use a
/// value validation refuses, turned back into NULL: `0` for `status_code`
/// (must be 100 to 599), `-1` for `duration_ms` and `response_size_bytes`
/// (must not be negative).
const UNNEST_INSERT: &str = r#"INSERT INTO "audit_logs" ("id", "user_id", "session_id", "event_type", "action", "outcome", "resource_type", "resource_id", "request_id", "http_method", "request_path", "status_code", "ip_address", "user_agent", "is_suspicious", "risk_level", "country_code", "region", "city", "duration_ms", "response_size_bytes", "retention_days", "metadata", "created_at")
SELECT "id", "user_id", "session_id", "event_type", "action", "outcome", "resource_type", "resource_id", "request_id", "http_method", "request_path", NULLIF("status_code", 0), "ip_address", "user_agent", "is_suspicious", "risk_level", "country_code", "region", "city", NULLIF("duration_ms", -1), NULLIF("response_size_bytes", -1), "retention_days", "metadata", "created_at"
FROM UNNEST($1::uuid[], string_to_array($2, E'\x1f', '')::uuid[], string_to_array($3, E'\x1f', '')::uuid[], string_to_array($4, E'\x1f', ''), string_to_array($5, E'\x1f', ''), string_to_array($6, E'\x1f', ''), string_to_array($7, E'\x1f', ''), string_to_array($8, E'\x1f', ''), string_to_array($9, E'\x1f', ''), string_to_array($10, E'\x1f', ''), string_to_array($11, E'\x1f', ''), $12::int4[], string_to_array($13, E'\x1f', ''), string_to_array($14, E'\x1f', ''), $15::bool[], string_to_array($16, E'\x1f', ''), string_to_array($17, E'\x1f', ''), string_to_array($18, E'\x1f', ''), string_to_array($19, E'\x1f', ''), $20::int4[], $21::int8[], $22::int4[], string_to_array($23, E'\x1f', '')::jsonb[], $24::timestamptz[])
AS "u" ("id", "user_id", "session_id", "event_type", "action", "outcome", "resource_type", "resource_id", "request_id", "http_method", "request_path", "status_code", "ip_address", "user_agent", "is_suspicious", "risk_level", "country_code", "region", "city", "duration_ms", "response_size_bytes", "retention_days", "metadata", "created_at")"#;

#[cfg(feature = "postgres")]
/// `UNNEST` inserts of at most [`POSTGRES_ROWS_PER_STATEMENT`] rows and about
/// [`POSTGRES_BYTES_PER_STATEMENT`] bytes each. The next chunk's arrays are
/// built while the database works on the previous statement.
async fn insert_unnest<C: ConnectionTrait>(
    db: &C,
    entries: &[AuditEntry],
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    let mut written = 0;
    let (mut chunk, mut rest) = UnnestColumns::build(entries, now);
    while !rest.is_empty() {
        let (done, (next, after)) =
            tokio::join!(chunk.execute(db), async { UnnestColumns::build(rest, now) });
        written += done?;
        (chunk, rest) = (next, after);
    }
    written += chunk.execute(db).await?;
    Ok(written)
}

#[cfg(feature = "postgres")]
/// The values of a chunk of rows, column by column (see [`UNNEST_INSERT`]).
struct UnnestColumns {
    rows: usize,
    id: Vec<Uuid>,
    user_id: String,
    session_id: String,
    event_type: String,
    action: String,
    outcome: String,
    resource_type: String,
    resource_id: String,
    request_id: String,
    http_method: String,
    request_path: String,
    status_code: Vec<i32>,
    ip_address: String,
    user_agent: String,
    is_suspicious: Vec<bool>,
    risk_level: String,
    country_code: String,
    region: String,
    city: String,
    duration_ms: Vec<i32>,
    response_size_bytes: Vec<i64>,
    retention_days: Vec<i32>,
    metadata: String,
    created_at: Vec<DateTime<Utc>>,
}

#[cfg(feature = "postgres")]
impl UnnestColumns {
    fn with_capacity(rows: usize) -> Self {
        Self {
            rows: 0,
            id: Vec::with_capacity(rows),
            user_id: String::with_capacity(rows * 37),
            session_id: String::new(),
            event_type: String::with_capacity(rows * 16),
            action: String::with_capacity(rows * 24),
            outcome: String::with_capacity(rows * 8),
            resource_type: String::new(),
            resource_id: String::new(),
            request_id: String::new(),
            http_method: String::new(),
            request_path: String::new(),
            status_code: Vec::with_capacity(rows),
            ip_address: String::new(),
            user_agent: String::new(),
            is_suspicious: Vec::with_capacity(rows),
            risk_level: String::with_capacity(rows * 5),
            country_code: String::new(),
            region: String::new(),
            city: String::new(),
            duration_ms: Vec::with_capacity(rows),
            response_size_bytes: Vec::with_capacity(rows),
            retention_days: Vec::with_capacity(rows),
            metadata: String::new(),
            created_at: Vec::with_capacity(rows),
        }
    }

    /// Bytes of values collected so far, roughly.
    fn bytes(&self) -> usize {
        self.rows * 64
            + [
                &self.user_id,
                &self.session_id,
                &self.event_type,
                &self.action,
                &self.resource_type,
                &self.resource_id,
                &self.request_id,
                &self.request_path,
                &self.ip_address,
                &self.user_agent,
                &self.region,
                &self.city,
                &self.metadata,
            ]
            .iter()
            .map(|s| s.len())
            .sum::<usize>()
    }

    fn push(&mut self, e: &AuditEntry, now: DateTime<Utc>) {
        use std::fmt::Write as _;
        let first = self.rows == 0;
        // Appends one value (nothing for NULL) after the separator.
        let text = |column: &mut String, value: Option<&str>| {
            if !first {
                column.push(SEPARATOR);
            }
            column.push_str(value.unwrap_or_default());
        };
        let uuid = |column: &mut String, value: Option<Uuid>| {
            if !first {
                column.push(SEPARATOR);
            }
            if let Some(id) = value {
                let _ = write!(column, "{}", id.hyphenated());
            }
        };
        self.rows += 1;
        self.id.push(Uuid::now_v7());
        uuid(&mut self.user_id, e.user_id);
        uuid(&mut self.session_id, e.session_id);
        text(&mut self.event_type, Some(&e.event_type));
        text(&mut self.action, Some(&e.action));
        text(&mut self.outcome, Some(&e.outcome.to_value()));
        text(&mut self.resource_type, e.resource_type.as_deref());
        text(&mut self.resource_id, e.resource_id.as_deref());
        text(&mut self.request_id, e.request_id.as_deref());
        text(&mut self.http_method, e.http_method.as_deref());
        text(&mut self.request_path, e.request_path.as_deref());
        self.status_code.push(e.status_code.unwrap_or(0));
        text(&mut self.ip_address, e.ip_address.as_deref());
        text(&mut self.user_agent, e.user_agent.as_deref());
        self.is_suspicious.push(e.is_suspicious);
        text(&mut self.risk_level, Some(&e.risk_level.to_value()));
        text(&mut self.country_code, e.country_code.as_deref());
        text(&mut self.region, e.region.as_deref());
        text(&mut self.city, e.city.as_deref());
        self.duration_ms.push(e.duration_ms.unwrap_or(-1));
        self.response_size_bytes
            .push(e.response_size_bytes.unwrap_or(-1));
        self.retention_days.push(e.retention_days);
        if !first {
            self.metadata.push(SEPARATOR);
        }
        if let Some(metadata) = &e.metadata {
            let _ = write!(self.metadata, "{metadata}");
        }
        self.created_at.push(e.created_at.unwrap_or(now));
    }

    /// The columns of the first chunk of `entries`, and the entries after it.
    fn build(entries: &[AuditEntry], now: DateTime<Utc>) -> (Self, &[AuditEntry]) {
        let mut columns = Self::with_capacity(entries.len().min(POSTGRES_ROWS_PER_STATEMENT));
        for entry in entries {
            columns.push(entry, now);
            if columns.rows == POSTGRES_ROWS_PER_STATEMENT
                || columns.bytes() >= POSTGRES_BYTES_PER_STATEMENT
            {
                break;
            }
        }
        let rows = columns.rows;
        (columns, &entries[rows..])
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
