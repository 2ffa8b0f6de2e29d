//! PostgreSQL's monthly partitions of `audit_logs` (migration
//! `m20261121_000003_partition_audit_logs`): creating months ahead of time,
//! listing them, and dropping the months whose rows have all expired.
//!
//! A managed partition is named `audit_logs_yYYYYmMM` and holds
//! `[first of month, first of next month)` in UTC; `audit_logs_default` takes
//! rows outside every month. Partitions under other names are listed but
//! never created or dropped here.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionSession, TransactionTrait};

use crate::Error;

/// The partitioned table.
const TABLE: &str = "audit_logs";
/// The partition for rows outside every month.
pub const DEFAULT_PARTITION: &str = "audit_logs_default";
/// Months created ahead of the current one by default.
pub const DEFAULT_MONTHS_AHEAD: u32 = 3;
/// Most months ahead `ensure` creates at once.
pub const MAX_MONTHS_AHEAD: u32 = 120;
/// How long detaching or creating a partition waits for the table's lock
/// before giving up, so it never queues writers behind a long reader.
const LOCK_TIMEOUT: &str = "5s";

/// One partition of `audit_logs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The table's name (e.g. `audit_logs_y2026m11`, `audit_logs_default`).
    pub name: String,
    /// The month it holds, for a managed partition; `None` for the default
    /// partition and partitions under other names.
    pub month: Option<NaiveDate>,
    /// The planner's row estimate (`pg_class.reltuples`); `None` before the
    /// partition was first analyzed.
    pub estimated_rows: Option<i64>,
}

impl Partition {
    /// `[from, to)` of a managed partition.
    pub fn range(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.month.map(month_range)
    }
}

/// What [`ensure`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ensured {
    /// Partitions created, oldest first.
    pub created: Vec<String>,
    /// Rows moved out of the default partition into a created one.
    pub moved_rows: u64,
}

/// The partition name for the month starting on `month` (its first day).
pub fn partition_name(month: NaiveDate) -> String {
    format!("{TABLE}_y{:04}m{:02}", month.year(), month.month())
}

/// The month a managed partition name stands for.
pub fn parse_partition_name(name: &str) -> Option<NaiveDate> {
    let rest = name.strip_prefix("audit_logs_y")?;
    let (year, month) = rest.split_once('m')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
}

fn month_of(at: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(at.year(), at.month(), 1).expect("the first of a month exists")
}

fn month_range(month: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"));
    (start(month), start(month + Months::new(1)))
}

fn bound(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn stmt(sql: String) -> Statement {
    Statement::from_string(DbBackend::Postgres, sql)
}

/// Whether `audit_logs` is partitioned here (PostgreSQL after the
/// partitioning migration).
///
/// # Errors
/// A database error.
pub async fn is_partitioned<C: ConnectionTrait>(db: &C) -> Result<bool, Error> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(false);
    }
    let row = db
        .query_one_raw(stmt(format!(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p \
             JOIN pg_class c ON c.oid = p.partrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = '{TABLE}' AND n.nspname = current_schema()) AS partitioned"
        )))
        .await?;
    Ok(match row {
        Some(row) => row.try_get("", "partitioned")?,
        None => false,
    })
}

fn not_partitioned() -> Error {
    Error::Config {
        var: "DATABASE_URL",
        reason: "audit_logs is not partitioned on this database: partitions exist on PostgreSQL \
                 only, after migration m20261121_000003_partition_audit_logs (run `gatehouse \
                 migrate up`)"
            .into(),
    }
}

/// Every partition of `audit_logs`, managed months first (oldest first),
/// then the others by name.
///
/// # Errors
/// [`Error::Config`] where `audit_logs` is not partitioned; a database error.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<Partition>, Error> {
    if !is_partitioned(db).await? {
        return Err(not_partitioned());
    }
    let rows = db
        .query_all_raw(stmt(format!(
            "SELECT c.relname::text AS name, c.reltuples::bigint AS estimate \
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = '{TABLE}'::regclass"
        )))
        .await?;
    let mut partitions = rows
        .iter()
        .map(|row| {
            let name: String = row.try_get("", "name")?;
            let estimate: i64 = row.try_get("", "estimate")?;
            Ok(Partition {
                month: parse_partition_name(&name),
                estimated_rows: (estimate >= 0).then_some(estimate),
                name,
            })
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
    partitions.sort_by(|a, b| {
        (a.month.is_none(), a.month, &a.name).cmp(&(b.month.is_none(), b.month, &b.name))
    });
    Ok(partitions)
}

/// Creates the partitions for `now`'s month and the `months_ahead` after it
/// that do not exist yet. Rows the default partition holds for a created
/// month move into it in the same transaction.
///
/// # Errors
/// [`Error::InvalidInput`] for more than [`MAX_MONTHS_AHEAD`] months;
/// [`Error::Config`] where `audit_logs` is not partitioned; a database error
/// (partitions created before it stay).
pub async fn ensure<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    now: DateTime<Utc>,
    months_ahead: u32,
) -> Result<Ensured, Error> {
    if months_ahead > MAX_MONTHS_AHEAD {
        return Err(Error::InvalidInput {
            field: "months_ahead",
            reason: format!("at most {MAX_MONTHS_AHEAD}"),
        });
    }
    let existing = list(db).await?;
    let mut ensured = Ensured::default();
    for ahead in 0..=months_ahead {
        let month = month_of(now) + Months::new(ahead);
        if existing.iter().any(|p| p.month == Some(month)) {
            continue;
        }
        ensured.moved_rows += create_partition(db, month).await?;
        ensured.created.push(partition_name(month));
    }
    Ok(ensured)
}

/// Creates one month's partition; returns how many rows it took over from
/// the default partition.
async fn create_partition<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    month: NaiveDate,
) -> Result<u64, Error> {
    let name = partition_name(month);
    let (from, to) = month_range(month);
    let (from, to) = (bound(from), bound(to));
    let in_month = format!("created_at >= '{from}' AND created_at < '{to}'");
    let create = format!(
        r#"CREATE TABLE "{name}" PARTITION OF "{TABLE}" FOR VALUES FROM ('{from}') TO ('{to}')"#
    );
    let txn = db.begin().await?;
    txn.execute_raw(stmt(format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")))
        .await?;
    let stranded: i64 = txn
        .query_one_raw(stmt(format!(
            r#"SELECT count(*) AS n FROM "{DEFAULT_PARTITION}" WHERE {in_month}"#
        )))
        .await?
        .map(|row| row.try_get("", "n"))
        .transpose()?
        .unwrap_or(0);
    if stranded == 0 {
        txn.execute_raw(stmt(create)).await?;
    } else {
        // A new month may not overlap rows the default partition holds:
        // take the default out, create the month, move its rows, put it back.
        for sql in [
            format!(r#"ALTER TABLE "{TABLE}" DETACH PARTITION "{DEFAULT_PARTITION}""#),
            create,
            format!(
                r#"INSERT INTO "{TABLE}" SELECT * FROM "{DEFAULT_PARTITION}" WHERE {in_month}"#
            ),
            format!(r#"DELETE FROM "{DEFAULT_PARTITION}" WHERE {in_month}"#),
            format!(r#"ALTER TABLE "{TABLE}" ATTACH PARTITION "{DEFAULT_PARTITION}" DEFAULT"#),
        ] {
            txn.execute_raw(stmt(sql)).await?;
        }
    }
    txn.commit().await?;
    Ok(stranded as u64)
}

/// Detaches and drops every managed partition whose rows have all expired:
/// its month ended and even its longest `retention_days` has passed since.
/// Reads only each partition's `retention_days` index, so the time and WAL
/// do not grow with the rows dropped. Returns the names dropped.
///
/// # Errors
/// [`Error::Config`] where `audit_logs` is not partitioned; a database error
/// (partitions dropped before it stay dropped).
pub async fn drop_expired<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    now: DateTime<Utc>,
) -> Result<Vec<String>, Error> {
    let mut dropped = Vec::new();
    for partition in list(db).await? {
        let Some((_, to)) = partition.range() else {
            continue;
        };
        if to > now {
            break;
        }
        let name = &partition.name;
        let longest: Option<i32> = db
            .query_one_raw(stmt(format!(
                r#"SELECT max(retention_days) AS days FROM "{name}""#
            )))
            .await?
            .map(|row| row.try_get("", "days"))
            .transpose()?
            .flatten();
        if longest.is_some_and(|days| to + Duration::days(i64::from(days)) > now) {
            continue;
        }
        let txn = db.begin().await?;
        for sql in [
            format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"),
            format!(r#"ALTER TABLE "{TABLE}" DETACH PARTITION "{name}""#),
            format!(r#"DROP TABLE "{name}""#),
        ] {
            txn.execute_raw(stmt(sql)).await?;
        }
        txn.commit().await?;
        dropped.push(partition.name);
    }
    Ok(dropped)
}

/// The shortest `retention_days` of any row (through the index), or `None`
/// for an empty table.
pub(super) async fn shortest_retention<C: ConnectionTrait>(db: &C) -> Result<Option<i32>, Error> {
    Ok(db
        .query_one_raw(stmt(format!(
            r#"SELECT min(retention_days) AS days FROM "{TABLE}""#
        )))
        .await?
        .map(|row| row.try_get("", "days"))
        .transpose()?
        .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let month = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
        assert_eq!(partition_name(month), "audit_logs_y2026m09");
        assert_eq!(parse_partition_name("audit_logs_y2026m09"), Some(month));
        assert_eq!(parse_partition_name("audit_logs_default"), None);
        assert_eq!(parse_partition_name("audit_logs_y2026m13"), None);
        assert_eq!(parse_partition_name("audit_logs_y26m09"), None);
    }

    #[test]
    fn a_month_is_its_utc_calendar_month() {
        let (from, to) = month_range(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert_eq!(bound(from), "2026-12-01T00:00:00Z");
        assert_eq!(bound(to), "2027-01-01T00:00:00Z");
    }
}
