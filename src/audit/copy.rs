//! Bulk audit ingest over a connection pool: on PostgreSQL the validated
//! entries stream into `audit_logs` by binary `COPY` in a transaction of
//! their own, which the database writes about twice as fast as the `UNNEST`
//! statements [`super::ingest()`] sends. Elsewhere it is [`super::ingest()`].
//!
//! `COPY` needs a connection of its own, so this takes the pool (a
//! `DatabaseConnection` or a [`crate::db::Pool`]); inside a caller's
//! transaction use [`super::ingest()`].

#![cfg_attr(not(feature = "postgres"), allow(dead_code, unused_imports))]

use chrono::{DateTime, Utc};
use sea_orm::{ActiveEnum, DbBackend, DbErr, RuntimeErr, sqlx};
use std::sync::Arc;
use uuid::Uuid;

use super::AuditEntry;
use super::ingest::{ingest, validate_all};
use crate::Error;
use crate::db::PoolSource;

/// The columns in the order each row is encoded.
const COPY_SQL: &str = r#"COPY "audit_logs" ("id", "user_id", "session_id", "event_type", "action", "outcome", "resource_type", "resource_id", "request_id", "http_method", "request_path", "status_code", "ip_address", "user_agent", "is_suspicious", "risk_level", "country_code", "region", "city", "duration_ms", "response_size_bytes", "retention_days", "metadata", "created_at") FROM STDIN (FORMAT binary)"#;
/// Fewer entries go through [`super::ingest()`]: a `COPY` costs an extra round
/// trip, and over TCP its small messages wait on delayed ACKs (sqlx 0.9 leaves
/// Nagle's algorithm on), ~40 ms per call.
pub const COPY_MIN_ROWS: usize = 1_000;
/// Bytes encoded before they are sent.
const PIECE: usize = 1 << 20;
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
const TRAILER: [u8; 2] = (-1i16).to_be_bytes();
/// Microseconds between the Unix epoch and PostgreSQL's, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Validates every entry, then writes them all or none, each with a fresh
/// UUID v7 id and dated `now` unless it has its own `created_at`; returns the
/// rows written. PostgreSQL: one binary `COPY` in its own transaction from
/// [`COPY_MIN_ROWS`] entries on; fewer, and MySQL/MariaDB and SQLite: as
/// [`super::ingest()`].
///
/// # Errors
/// As [`super::ingest()`]: [`Error::InvalidInput`] naming the first invalid
/// entry, [`Error::Reference`] for an unknown user or session, a database
/// error; any error leaves nothing written.
pub async fn ingest_pooled<P: PoolSource>(
    db: &P,
    entries: &[AuditEntry],
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    if db.get_database_backend() != DbBackend::Postgres || entries.len() < COPY_MIN_ROWS {
        return ingest(db, entries, now).await;
    }
    #[cfg(feature = "postgres")]
    {
        validate_all(entries)?;
        // BEGIN, COPY and COMMIT are simple queries: safe under transaction pooling too.
        copy(db.connection().get_postgres_connection_pool(), entries, now)
            .await
            .map_err(|err| Error::from(DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err)))))
    }
    #[cfg(not(feature = "postgres"))]
    ingest(db, entries, now).await
}

#[cfg(feature = "postgres")]
/// The `COPY`, sent in pieces of about [`PIECE`] bytes as they are encoded.
/// Dropping the transaction on an error rolls it back.
async fn copy(
    pool: &sqlx::PgPool,
    entries: &[AuditEntry],
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let mut txn = pool.begin().await?;
    let mut copy = txn.copy_in_raw(COPY_SQL).await?;
    let mut buf = Vec::with_capacity(PIECE + 64 * 1024);
    buf.extend_from_slice(HEADER);
    for entry in entries {
        encode(&mut buf, entry, now);
        if buf.len() >= PIECE {
            copy.send(buf.as_slice()).await?;
            buf.clear();
        }
    }
    buf.extend_from_slice(&TRAILER);
    copy.send(buf.as_slice()).await?;
    let written = copy.finish().await?;
    txn.commit().await?;
    Ok(written)
}

fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
    let len = i32::try_from(bytes.len()).expect("validated values are far below 2 GiB");
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
}

fn null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

fn text(buf: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(v) => field(buf, v.as_bytes()),
        None => null(buf),
    }
}

fn uuid(buf: &mut Vec<u8>, value: Option<Uuid>) {
    match value {
        Some(v) => field(buf, v.as_bytes()),
        None => null(buf),
    }
}

fn int4(buf: &mut Vec<u8>, value: Option<i32>) {
    match value {
        Some(v) => field(buf, &v.to_be_bytes()),
        None => null(buf),
    }
}

/// One row in PostgreSQL's binary `COPY` format, columns as in [`COPY_SQL`].
fn encode(buf: &mut Vec<u8>, e: &AuditEntry, now: DateTime<Utc>) {
    buf.extend_from_slice(&24i16.to_be_bytes());
    uuid(buf, Some(Uuid::now_v7()));
    uuid(buf, e.user_id);
    uuid(buf, e.session_id);
    text(buf, Some(&e.event_type));
    text(buf, Some(&e.action));
    text(buf, Some(&e.outcome.to_value()));
    text(buf, e.resource_type.as_deref());
    text(buf, e.resource_id.as_deref());
    text(buf, e.request_id.as_deref());
    text(buf, e.http_method.as_deref());
    text(buf, e.request_path.as_deref());
    int4(buf, e.status_code);
    text(buf, e.ip_address.as_deref());
    text(buf, e.user_agent.as_deref());
    field(buf, &[u8::from(e.is_suspicious)]);
    text(buf, Some(&e.risk_level.to_value()));
    text(buf, e.country_code.as_deref());
    text(buf, e.region.as_deref());
    text(buf, e.city.as_deref());
    int4(buf, e.duration_ms);
    match e.response_size_bytes {
        Some(v) => field(buf, &v.to_be_bytes()),
        None => null(buf),
    }
    int4(buf, Some(e.retention_days));
    match &e.metadata {
        Some(json) => {
            // jsonb: a version byte, then the JSON text.
            let mut jsonb = vec![1u8];
            serde_json::to_writer(&mut jsonb, json).expect("a JSON value serializes");
            field(buf, &jsonb);
        }
        None => null(buf),
    }
    let at = e.created_at.unwrap_or(now);
    field(
        buf,
        &(at.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes(),
    );
}
