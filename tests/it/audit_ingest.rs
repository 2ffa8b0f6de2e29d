//! Bulk audit ingest: 100,000 rows in one call with values read back intact,
//! all-or-nothing on invalid input and on database errors, the statement split
//! at each backend's bind limit, and nesting in a caller's transaction.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use gatehouse::Error;
use gatehouse::audit::ingest::{columns_per_row, max_binds, rows_per_statement};
use gatehouse::audit::{AuditEntry, ingest, ingest_pooled};
use gatehouse_entity::audit_logs;
use gatehouse_entity::sea_orm_active_enums::{AuditOutcome, RiskLevel};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use crate::support::{TestDb, insert_user};

backend_tests!(run_migrated:
    hundred_thousand_rows_in_one_call_read_back_intact,
    an_invalid_entry_writes_nothing,
    a_database_error_in_a_later_statement_writes_nothing,
    statements_split_at_the_bind_limit,
    ingest_nests_in_the_callers_transaction,
    pooled_ingest_reads_back_intact,
    pooled_ingest_is_all_or_nothing,
);

/// Now, at the microsecond precision the databases keep.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The `i`th generated entry: every third one has every column set (unicode
/// text, nested JSON, its own time), every third one only the required
/// columns, the rest a mix. `action` is unique per entry.
fn entry(i: usize, user: Uuid, t0: DateTime<Utc>) -> AuditEntry {
    let base = AuditEntry::new("import", format!("action-{i}"));
    match i % 3 {
        0 => base
            .outcome(AuditOutcome::Failure)
            .user(user)
            .resource("document", format!("doc-{i}"))
            .request_id(format!("req-{i}"))
            .http("POST", format!("/api/ünïcode/{i}?q=日本語"), 403)
            .client(Some("2001:db8::7"), Some("Mozilla/5.0 (Ærø; 🦀)"))
            .suspicious(RiskLevel::Critical)
            .geo(Some("DE"), Some("Bayern"), Some("München"))
            .timing(i32::try_from(i).unwrap(), Some(1 << 40))
            .retention_days(36_500)
            .metadata(json!({"i": i, "tags": ["ä", "🦀", "\"quoted\""], "nested": {"ok": true, "none": null}}))
            .created_at(t0 - Duration::seconds(i64::try_from(i).unwrap())),
        1 => base,
        _ => base
            .outcome(AuditOutcome::Error)
            .risk(RiskLevel::Medium)
            .timing(0, None)
            .metadata(json!([i, "Ωmega"])),
    }
}

/// Checks a stored row against [`entry`]`(i, ...)`.
fn assert_row(
    row: &audit_logs::Model,
    i: usize,
    user: Uuid,
    t0: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    assert_eq!(row.event_type, "import");
    assert_eq!(row.action, format!("action-{i}"));
    assert_eq!(row.id.get_version_num(), 7, "row {i}: id is a UUID v7");
    assert_eq!(row.session_id, None);
    match i % 3 {
        0 => {
            assert_eq!(row.outcome, AuditOutcome::Failure);
            assert_eq!(row.user_id, Some(user));
            assert_eq!(row.resource_type.as_deref(), Some("document"));
            assert_eq!(row.resource_id, Some(format!("doc-{i}")));
            assert_eq!(row.request_id, Some(format!("req-{i}")));
            assert_eq!(row.http_method.as_deref(), Some("POST"));
            assert_eq!(row.request_path, Some(format!("/api/ünïcode/{i}?q=日本語")));
            assert_eq!(row.status_code, Some(403));
            assert_eq!(row.ip_address.as_deref(), Some("2001:db8::7"));
            assert_eq!(row.user_agent.as_deref(), Some("Mozilla/5.0 (Ærø; 🦀)"));
            assert!(row.is_suspicious);
            assert_eq!(row.risk_level, RiskLevel::Critical);
            assert_eq!(row.country_code.as_deref(), Some("DE"));
            assert_eq!(row.region.as_deref(), Some("Bayern"));
            assert_eq!(row.city.as_deref(), Some("München"));
            assert_eq!(row.duration_ms, Some(i32::try_from(i).unwrap()));
            assert_eq!(row.response_size_bytes, Some(1 << 40));
            assert_eq!(row.retention_days, 36_500);
            assert_eq!(
                row.metadata,
                Some(
                    json!({"i": i, "tags": ["ä", "🦀", "\"quoted\""], "nested": {"ok": true, "none": null}})
                )
            );
            assert_eq!(
                row.created_at,
                t0 - Duration::seconds(i64::try_from(i).unwrap())
            );
        }
        1 => {
            let expected = audit_logs::Model {
                id: row.id,
                user_id: None,
                session_id: None,
                event_type: "import".into(),
                action: format!("action-{i}"),
                outcome: AuditOutcome::Success,
                resource_type: None,
                resource_id: None,
                request_id: None,
                http_method: None,
                request_path: None,
                status_code: None,
                ip_address: None,
                user_agent: None,
                is_suspicious: false,
                risk_level: RiskLevel::Low,
                country_code: None,
                region: None,
                city: None,
                duration_ms: None,
                response_size_bytes: None,
                retention_days: 90,
                metadata: None,
                created_at: now,
            };
            assert_eq!(row, &expected, "row {i}: only the required columns");
        }
        _ => {
            assert_eq!(row.outcome, AuditOutcome::Error);
            assert_eq!(row.risk_level, RiskLevel::Medium);
            assert!(!row.is_suspicious);
            assert_eq!(row.duration_ms, Some(0));
            assert_eq!(row.response_size_bytes, None);
            assert_eq!(row.status_code, None);
            assert_eq!(row.metadata, Some(json!([i, "Ωmega"])));
            assert_eq!(row.created_at, now);
        }
    }
}

async fn hundred_thousand_rows_in_one_call_read_back_intact(t: TestDb) {
    const ROWS: usize = 100_000;
    let user = insert_user(&t, "importer").await.id;
    let (t0, now) = (now() - Duration::days(30), now());
    let entries: Vec<AuditEntry> = (0..ROWS).map(|i| entry(i, user, t0)).collect();

    let written = ingest(&t.db, &entries, now)
        .await
        .expect("100,000 rows ingest");

    assert_eq!(written, ROWS as u64);
    assert_eq!(t.count("audit_logs").await, ROWS as i64);
    let third = |r: usize| i64::try_from((0..ROWS).filter(|i| i % 3 == r).count()).unwrap();
    assert_eq!(t.count("audit_logs WHERE metadata IS NULL").await, third(1));
    assert_eq!(
        t.count("audit_logs WHERE user_id IS NULL").await,
        ROWS as i64 - third(0)
    );
    assert_eq!(
        t.count("audit_logs WHERE status_code IS NULL").await,
        ROWS as i64 - third(0)
    );
    assert_eq!(
        t.count("audit_logs WHERE duration_ms IS NULL").await,
        third(1)
    );
    assert_eq!(t.count("audit_logs WHERE city = 'München'").await, third(0));
    // Distinct ids, one per row.
    assert_eq!(
        t.count("(SELECT DISTINCT id FROM audit_logs) AS d").await,
        ROWS as i64
    );

    // A sample across every chunk boundary and residue class, read back whole.
    let mut sample: Vec<usize> = (0..ROWS).step_by(997).collect();
    let per = rows_per_statement(t.db_backend());
    for boundary in (per..ROWS).step_by(per) {
        sample.extend([boundary - 1, boundary, boundary + 1]);
    }
    sample.extend([1, 2, ROWS - 1]);
    sample.sort_unstable();
    sample.dedup();
    for chunk in sample.chunks(200) {
        let actions: Vec<String> = chunk.iter().map(|i| format!("action-{i}")).collect();
        let rows = audit_logs::Entity::find()
            .filter(audit_logs::Column::Action.is_in(actions))
            .all(&t.db)
            .await
            .unwrap();
        assert_eq!(rows.len(), chunk.len());
        for row in &rows {
            let i: usize = row.action["action-".len()..].parse().unwrap();
            assert_row(row, i, user, t0, now);
        }
    }
}

async fn an_invalid_entry_writes_nothing(t: TestDb) {
    let now = now();
    let user = insert_user(&t, "importer").await.id;
    let mut entries: Vec<AuditEntry> = (0..500).map(|i| entry(i, user, now)).collect();
    entries[317] = AuditEntry::new("import", "bad").http("GET", "/", 42);

    let err = ingest(&t.db, &entries, now).await.unwrap_err();

    assert!(
        matches!(&err, Error::InvalidInput { field: "status_code", reason } if reason.starts_with("entry 317:")),
        "{err:?}"
    );
    assert_eq!(t.count("audit_logs").await, 0);
    assert_eq!(ingest(&t.db, &[], now).await.unwrap(), 0);
}

async fn a_database_error_in_a_later_statement_writes_nothing(t: TestDb) {
    let now = now();
    let user = insert_user(&t, "importer").await.id;
    // Valid input the database refuses, in the last statement: the ones
    // before it have run and must be rolled back.
    let rows = rows_per_statement(t.db_backend()) + 5;
    let mut entries: Vec<AuditEntry> = (0..rows).map(|i| entry(i, user, now)).collect();
    entries[rows - 1] = AuditEntry::new("import", "ghost").user(Uuid::now_v7());

    let err = ingest(&t.db, &entries, now).await.unwrap_err();

    assert!(matches!(err, Error::Reference(_)), "{err:?}");
    assert_eq!(t.count("audit_logs").await, 0);
}

/// A row for sea-orm's own `insert_many`, which does not split.
fn active_model(i: usize, now: DateTime<Utc>) -> audit_logs::ActiveModel {
    audit_logs::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(None),
        session_id: Set(None),
        event_type: Set("raw".into()),
        action: Set(format!("raw-{i}")),
        outcome: Set(AuditOutcome::Success),
        resource_type: Set(None),
        resource_id: Set(None),
        request_id: Set(None),
        http_method: Set(None),
        request_path: Set(None),
        status_code: Set(None),
        ip_address: Set(None),
        user_agent: Set(None),
        is_suspicious: Set(false),
        risk_level: Set(RiskLevel::Low),
        country_code: Set(None),
        region: Set(None),
        city: Set(None),
        duration_ms: Set(None),
        response_size_bytes: Set(None),
        retention_days: Set(1),
        metadata: Set(None),
        created_at: Set(now),
    }
}

async fn statements_split_at_the_bind_limit(t: TestDb) {
    let now = now();
    let backend = t.db_backend();
    assert_eq!(columns_per_row(), 24);
    // The limit is real: one multi-row INSERT of as many rows as fit under it
    // succeeds, one row more fails.
    let fit = max_binds(backend) / columns_per_row();
    let raw = |n: usize| audit_logs::Entity::insert_many((0..n).map(|i| active_model(i, now)));
    assert_eq!(
        raw(fit).exec_without_returning(&t.db).await.unwrap(),
        fit as u64
    );
    assert!(raw(fit + 1).exec_without_returning(&t.db).await.is_err());
    assert_eq!(t.count("audit_logs").await, fit as i64);

    // ingest splits at its statement size, one below, at and above it.
    let per = rows_per_statement(backend);
    if backend != DbBackend::Postgres {
        assert_eq!(per, fit);
    }
    let mut total = fit;
    for rows in [per - 1, per, per + 1, 2 * per + 1] {
        let entries: Vec<AuditEntry> = (0..rows)
            .map(|i| AuditEntry::new("split", format!("{rows}-{i}")))
            .collect();
        assert_eq!(ingest(&t.db, &entries, now).await.unwrap(), rows as u64);
        total += rows;
        assert_eq!(
            t.count(&format!("audit_logs WHERE action LIKE '{rows}-%'"))
                .await,
            rows as i64
        );
    }
    assert_eq!(t.count("audit_logs").await, total as i64);
}

async fn ingest_nests_in_the_callers_transaction(t: TestDb) {
    let now = now();
    let user = insert_user(&t, "importer").await.id;
    let entries: Vec<AuditEntry> = (0..100).map(|i| entry(i, user, now)).collect();

    // Rolled back by the caller: nothing stays.
    let txn = t.db.begin().await.unwrap();
    assert_eq!(ingest(&txn, &entries, now).await.unwrap(), 100);
    let inside = txn
        .query_one_raw(sea_orm::Statement::from_string(
            t.db_backend(),
            "SELECT COUNT(*) AS n FROM audit_logs",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(inside, 100, "visible inside the caller's transaction");
    txn.rollback().await.unwrap();
    assert_eq!(t.count("audit_logs").await, 0);

    // A failed ingest undoes only its own rows: the caller's transaction
    // goes on and commits what it wrote before.
    let txn = t.db.begin().await.unwrap();
    AuditEntry::new("caller", "before")
        .record(&txn, now)
        .await
        .unwrap();
    let mut refused = entries.clone();
    refused.push(AuditEntry::new("import", "ghost").session(Uuid::now_v7()));
    let err = ingest(&txn, &refused, now).await.unwrap_err();
    assert!(matches!(err, Error::Reference(_)), "{err:?}");
    assert_eq!(ingest(&txn, &entries[..10], now).await.unwrap(), 10);
    txn.commit().await.unwrap();
    assert_eq!(t.count("audit_logs").await, 11);
    assert_eq!(t.count("audit_logs WHERE event_type = 'caller'").await, 1);
}

/// `ingest_pooled` (binary COPY on PostgreSQL, `ingest` elsewhere): every
/// value of every row read back as written.
async fn pooled_ingest_reads_back_intact(t: TestDb) {
    const ROWS: usize = 3_000;
    let user = insert_user(&t, "importer").await.id;
    let (t0, now) = (now() - Duration::days(30), now());
    let entries: Vec<AuditEntry> = (0..ROWS).map(|i| entry(i, user, t0)).collect();

    assert_eq!(
        ingest_pooled(&t.db, &entries, now).await.unwrap(),
        ROWS as u64
    );

    let rows = audit_logs::Entity::find().all(&t.db).await.unwrap();
    assert_eq!(rows.len(), ROWS);
    let mut seen = vec![false; ROWS];
    for row in &rows {
        let i: usize = row.action["action-".len()..].parse().unwrap();
        assert_row(row, i, user, t0, now);
        seen[i] = true;
    }
    assert!(seen.iter().all(|s| *s));
    assert_eq!(
        t.count("(SELECT DISTINCT id FROM audit_logs) AS d").await,
        ROWS as i64
    );
    assert_eq!(ingest_pooled(&t.db, &[], now).await.unwrap(), 0);
}

async fn pooled_ingest_is_all_or_nothing(t: TestDb) {
    let now = now();
    let user = insert_user(&t, "importer").await.id;
    let mut entries: Vec<AuditEntry> = (0..5_000).map(|i| entry(i, user, now)).collect();
    entries[4_321] = AuditEntry::new("import", "bad").http("GET", "/", 42);
    let err = ingest_pooled(&t.db, &entries, now).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field: "status_code", reason } if reason.starts_with("entry 4321:")),
        "{err:?}"
    );
    // Valid input the database refuses, in the last row.
    entries[4_321] = entry(4_321, user, now);
    entries[4_999] = AuditEntry::new("import", "ghost").user(Uuid::now_v7());
    let err = ingest_pooled(&t.db, &entries, now).await.unwrap_err();
    assert!(matches!(err, Error::Reference(_)), "{err:?}");
    assert_eq!(t.count("audit_logs").await, 0);
}
