//! Audit and monitoring: audit entries and their validation, the security
//! event workflow, the daily metrics rollup, retention pruning in batches and
//! data classification lookups.

use chrono::{DateTime, Duration, NaiveDate, SubsecRound, TimeZone, Utc};
use gatehouse::Error;
use gatehouse::audit::{
    AuditEntry, AuditQuery, BasicEntry, NewSecurityEvent, Resolution, classification, find_entries,
    log_basic, retention, rollup, security_events,
};
use gatehouse::lockout::LockoutPolicy;
use gatehouse_entity::sea_orm_active_enums::{
    AttemptKind, AuditOutcome, EventStatus, RiskLevel, SessionEvent, Severity,
};
use gatehouse_entity::{
    api_keys, audit_logs, failed_login_attempts, session_audit_log, sessions, users,
};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde_json::json;
use uuid::Uuid;

use crate::support::{TestDb, insert_user};

backend_tests!(run_migrated:
    entries_insert_and_query_by_user_and_time,
    entries_are_validated_against_the_columns,
    basic_log,
    security_event_workflow,
    metrics_rollup_is_exact_and_idempotent,
    retention_prunes_rows_past_their_own_period_in_batches,
    retention_prunes_failed_logins_and_session_audit_by_age,
    classification_lookup_and_access_counting,
);

/// Now, at the microsecond precision the databases keep.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

async fn entries_insert_and_query_by_user_and_time(t: TestDb) {
    let alice = insert_user(&t, "alice").await;
    let bob = insert_user(&t, "bob").await;
    let t0 = now() - Duration::hours(3);
    let full = AuditEntry::new("login", "password_login")
        .outcome(AuditOutcome::Failure)
        .user(alice.id)
        .resource("user", alice.id.to_string())
        .request_id("req-42")
        .http("POST", "/api/login?next=%2F", 401)
        .client(Some("2001:db8::1"), Some("Mozilla/5.0"))
        .suspicious(RiskLevel::High)
        .geo(Some("DE"), Some("Berlin"), Some("Berlin"))
        .timing(35, Some(512))
        .retention_days(365)
        .metadata(json!({"reason": "wrong password", "attempt": 3}))
        .record(&t.db, t0)
        .await
        .unwrap();
    let stored = audit_logs::Entity::find_by_id(full.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, full);
    assert_eq!(stored.created_at, t0);
    assert_eq!(stored.outcome, AuditOutcome::Failure);
    assert_eq!(stored.risk_level, RiskLevel::High);
    assert!(stored.is_suspicious);
    assert_eq!(stored.status_code, Some(401));
    assert_eq!(stored.response_size_bytes, Some(512));
    assert_eq!(stored.retention_days, 365);
    assert_eq!(
        stored.metadata,
        Some(json!({"reason": "wrong password", "attempt": 3}))
    );
    // Defaults.
    let plain = AuditEntry::new("login", "password_login")
        .record(&t.db, t0)
        .await
        .unwrap();
    assert_eq!(
        (
            plain.outcome,
            plain.risk_level,
            plain.is_suspicious,
            plain.retention_days
        ),
        (AuditOutcome::Success, RiskLevel::Low, false, 90)
    );

    for (user, minutes) in [(&alice, 10), (&alice, 20), (&alice, 30), (&bob, 20)] {
        AuditEntry::new("profile", "update")
            .user(user.id)
            .record(&t.db, t0 + Duration::minutes(minutes))
            .await
            .unwrap();
    }
    let window = AuditQuery {
        user_id: Some(alice.id),
        since: Some(t0 + Duration::minutes(10)),
        until: Some(t0 + Duration::minutes(30)),
        ..AuditQuery::default()
    };
    let found = find_entries(&t.db, &window).await.unwrap();
    let times: Vec<_> = found.iter().map(|e| e.created_at).collect();
    assert_eq!(
        times,
        [t0 + Duration::minutes(20), t0 + Duration::minutes(10)],
        "since inclusive, until exclusive, newest first"
    );
    assert!(found.iter().all(|e| e.user_id == Some(alice.id)));
    let all_alice = AuditQuery {
        user_id: Some(alice.id),
        ..AuditQuery::default()
    };
    assert_eq!(find_entries(&t.db, &all_alice).await.unwrap().len(), 4);
    let limited = AuditQuery {
        limit: 2,
        ..all_alice.clone()
    };
    let newest = find_entries(&t.db, &limited).await.unwrap();
    assert_eq!(newest.len(), 2);
    assert_eq!(newest[0].created_at, t0 + Duration::minutes(30));
    let suspicious = AuditQuery {
        suspicious_only: true,
        ..AuditQuery::default()
    };
    assert_eq!(
        find_entries(&t.db, &suspicious)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        [full.id]
    );
    let by_type = AuditQuery {
        event_type: Some("login".into()),
        ..AuditQuery::default()
    };
    assert_eq!(find_entries(&t.db, &by_type).await.unwrap().len(), 2);
    let backwards = AuditQuery {
        since: Some(t0),
        until: Some(t0 - Duration::minutes(1)),
        ..AuditQuery::default()
    };
    assert!(matches!(
        find_entries(&t.db, &backwards).await,
        Err(Error::InvalidInput { field: "since", .. })
    ));
    // An unknown user is a reference error, not a silent orphan.
    assert!(matches!(
        AuditEntry::new("login", "x")
            .user(Uuid::now_v7())
            .record(&t.db, t0)
            .await,
        Err(Error::Reference(_))
    ));
}

async fn entries_are_validated_against_the_columns(t: TestDb) {
    let t0 = now();
    let base = || AuditEntry::new("login", "password_login");
    let long = |n: usize| "x".repeat(n);
    let cases: Vec<(AuditEntry, &str)> = vec![
        (AuditEntry::new("", "a"), "event_type"),
        (AuditEntry::new(long(65), "a"), "event_type"),
        (AuditEntry::new("login", long(101)), "action"),
        (AuditEntry::new("login", "pass\u{0}word"), "action"),
        (base().resource(long(65), "1"), "resource_type"),
        (base().resource("user", long(65)), "resource_id"),
        (base().request_id(long(65)), "request_id"),
        (base().http("DELETEEVERY", "/", 200), "http_method"),
        (base().http("get", "/", 200), "http_method"),
        (base().http("GET", long(2049), 200), "request_path"),
        (base().http("GET", "/a\u{0}b", 200), "request_path"),
        (base().http("GET", "/", 99), "status_code"),
        (base().http("GET", "/", 600), "status_code"),
        (
            base().client(Some("1.2.3.4'; DROP TABLE users; --"), None),
            "ip_address",
        ),
        (base().client(Some("999.1.1.1"), None), "ip_address"),
        (base().client(None, Some(&long(513))), "user_agent"),
        (base().client(None, Some("")), "user_agent"),
        (base().geo(Some("DEU"), None, None), "country_code"),
        (base().geo(Some("de"), None, None), "country_code"),
        (base().geo(None, Some(&long(101)), None), "region"),
        (base().geo(None, None, Some(&long(101))), "city"),
        (base().timing(-1, None), "duration_ms"),
        (base().timing(1, Some(-1)), "response_size_bytes"),
        (base().retention_days(0), "retention_days"),
        (base().retention_days(36_501), "retention_days"),
        (base().metadata(json!({"a": "b\u{0}c"})), "metadata"),
        (base().metadata(json!({"k\u{0}": 1})), "metadata"),
        (base().metadata(json!({"big": long(70_000)})), "metadata"),
        (AuditEntry::new("login", long(10_000)), "action"),
    ];
    for (entry, field) in cases {
        let err = entry.clone().record(&t.db, t0).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { field: f, .. } if f == field),
            "{entry:?}: {err}"
        );
    }
    assert_eq!(t.count("audit_logs").await, 0, "nothing was written");

    // Values exactly at the column sizes fit on every backend, counted in
    // characters (two bytes each here), not bytes.
    let wide = |n: usize| "é".repeat(n);
    let at_limit = AuditEntry::new(wide(64), wide(100))
        .resource(wide(64), wide(64))
        .request_id(wide(64))
        .http("OPTIONS", format!("/{}", wide(2047)), 599)
        .client(
            Some("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"),
            Some(&wide(512)),
        )
        .geo(Some("ZZ"), Some(&wide(100)), Some(&wide(100)))
        .retention_days(36_500)
        .record(&t.db, t0)
        .await
        .unwrap();
    let stored = audit_logs::Entity::find_by_id(at_limit.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.action, wide(100));
    assert_eq!(stored.request_path.unwrap().chars().count(), 2048);
    assert_eq!(stored.user_agent, Some(wide(512)));
}

async fn basic_log(t: TestDb) {
    let user = insert_user(&t, "carol").await;
    let t0 = now();
    let row = log_basic(
        &t.db,
        &BasicEntry {
            user_id: Some(user.id),
            action: "role.grant",
            resource_type: Some("role"),
            resource_id: Some("admin"),
            ip_address: Some("198.51.100.1"),
            user_agent: Some("cli"),
            details: Some(json!({"granted_by": "root"})),
        },
        t0,
    )
    .await
    .unwrap();
    assert_eq!(row.created_at, t0);
    assert_eq!(row.details, Some(json!({"granted_by": "root"})));
    assert_eq!(
        t.count("audit_log_basic WHERE action = 'role.grant'").await,
        1
    );
    for entry in [
        BasicEntry::default(),
        BasicEntry {
            action: "x\u{0}",
            ..BasicEntry::default()
        },
        BasicEntry {
            action: "ok",
            ip_address: Some("not an ip"),
            ..BasicEntry::default()
        },
        BasicEntry {
            action: "ok",
            resource_id: Some(&"9".repeat(65)),
            ..BasicEntry::default()
        },
    ] {
        assert!(matches!(
            log_basic(&t.db, &entry, t0).await,
            Err(Error::InvalidInput { .. })
        ));
    }
    assert_eq!(t.count("audit_log_basic").await, 1);
}

fn event<'a>(severity: Severity, description: &'a str) -> NewSecurityEvent<'a> {
    NewSecurityEvent {
        event_type: "credential_stuffing",
        severity,
        user_id: None,
        ip_address: Some("203.0.113.50"),
        description,
        details: Some(json!({"attempts": 250})),
    }
}

async fn security_event_workflow(t: TestDb) {
    let admin = insert_user(&t, "admin").await;
    let t0 = now();
    let high = security_events::open(
        &t.db,
        event(Severity::High, "250 failures\nfrom one IP"),
        t0,
    )
    .await
    .unwrap();
    assert_eq!(high.status, EventStatus::Open);
    assert!(!high.alert_sent);

    // Alerting: only the first marker wins.
    assert!(
        security_events::mark_alerted(&t.db, high.id, t0)
            .await
            .unwrap()
    );
    assert!(
        !security_events::mark_alerted(&t.db, high.id, t0)
            .await
            .unwrap()
    );
    assert!(
        security_events::get(&t.db, high.id)
            .await
            .unwrap()
            .alert_sent
    );

    let t1 = t0 + Duration::minutes(5);
    let investigating = security_events::investigate(&t.db, high.id, t1)
        .await
        .unwrap();
    assert_eq!(investigating.status, EventStatus::Investigating);
    assert_eq!(investigating.updated_at, t1);
    // investigating -> investigating is no transition.
    assert!(matches!(
        security_events::investigate(&t.db, high.id, t1).await,
        Err(Error::InvalidInput {
            field: "status",
            ..
        })
    ));
    // Notes are required, and the resolver must exist.
    assert!(matches!(
        security_events::resolve(&t.db, high.id, Resolution::Resolved, admin.id, "", t1).await,
        Err(Error::InvalidInput {
            field: "resolution_notes",
            ..
        })
    ));
    assert!(matches!(
        security_events::resolve(
            &t.db,
            high.id,
            Resolution::Resolved,
            Uuid::now_v7(),
            "done",
            t1
        )
        .await,
        Err(Error::Reference(_))
    ));
    let t2 = t0 + Duration::hours(1);
    let resolved = security_events::resolve(
        &t.db,
        high.id,
        Resolution::Resolved,
        admin.id,
        "Blocked the range at the edge.",
        t2,
    )
    .await
    .unwrap();
    assert_eq!(resolved.status, EventStatus::Resolved);
    assert_eq!(resolved.resolved_by, Some(admin.id));
    assert_eq!(resolved.resolved_at, Some(t2));
    assert_eq!(
        resolved.resolution_notes.as_deref(),
        Some("Blocked the range at the edge.")
    );
    // Closed stays closed.
    for result in [
        security_events::investigate(&t.db, high.id, t2).await,
        security_events::resolve(
            &t.db,
            high.id,
            Resolution::FalsePositive,
            admin.id,
            "again",
            t2,
        )
        .await,
    ] {
        assert!(
            matches!(
                result,
                Err(Error::InvalidInput {
                    field: "status",
                    ..
                })
            ),
            "{result:?}"
        );
    }
    assert_eq!(
        security_events::get(&t.db, high.id).await.unwrap().status,
        EventStatus::Resolved
    );

    // open -> false_positive directly.
    let low = security_events::open(&t.db, event(Severity::Low, "one odd request"), t0)
        .await
        .unwrap();
    let dismissed = security_events::resolve(
        &t.db,
        low.id,
        Resolution::FalsePositive,
        admin.id,
        "A load test.",
        t2,
    )
    .await
    .unwrap();
    assert_eq!(dismissed.status, EventStatus::FalsePositive);
    assert_eq!(dismissed.resolved_by, Some(admin.id));

    // Listing by severity.
    let critical = security_events::open(&t.db, event(Severity::Critical, "key leaked"), t1)
        .await
        .unwrap();
    let medium = security_events::open(&t.db, event(Severity::Medium, "odd geo"), t1)
        .await
        .unwrap();
    let listed: Vec<Uuid> = security_events::list_unresolved(&t.db, Severity::High, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(listed, [critical.id]);
    assert_eq!(
        security_events::list_unresolved(&t.db, Severity::Low, 100)
            .await
            .unwrap()
            .len(),
        2
    );
    let _ = medium;

    // Unknown ids and hostile input.
    assert!(matches!(
        security_events::investigate(&t.db, Uuid::now_v7(), t2).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        security_events::mark_alerted(&t.db, Uuid::now_v7(), t2).await,
        Err(Error::NotFound(_))
    ));
    let before = t.count("security_events").await;
    let long = "d".repeat(10_001);
    for bad in [
        NewSecurityEvent {
            description: "",
            ..event(Severity::Low, "")
        },
        event(Severity::Low, &long),
        NewSecurityEvent {
            event_type: "x\u{0}",
            ..event(Severity::Low, "ok")
        },
        NewSecurityEvent {
            ip_address: Some("localhost"),
            ..event(Severity::Low, "ok")
        },
    ] {
        assert!(matches!(
            security_events::open(&t.db, bad, t2).await,
            Err(Error::InvalidInput { .. })
        ));
    }
    assert_eq!(t.count("security_events").await, before);
}

/// Fixture rows for the metrics day.
async fn user_created(t: &TestDb, name: &str, at: DateTime<Utc>) -> users::Model {
    let user = insert_user(t, name).await;
    let mut row: users::ActiveModel = user.into();
    row.created_at = Set(at);
    row.update(&t.db).await.unwrap()
}

async fn lock_until(t: &TestDb, user: users::Model, until: DateTime<Utc>) {
    let mut row: users::ActiveModel = user.into();
    row.locked_until = Set(Some(until));
    row.update(&t.db).await.unwrap();
}

async fn failure(t: &TestDb, kind: AttemptKind, ip: &str, at: DateTime<Utc>) {
    failed_login_attempts::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(None),
        identifier: Set("someone".into()),
        attempt_kind: Set(kind),
        ip_address: Set(Some(ip.into())),
        user_agent: Set(None),
        failure_reason: Set(None),
        country_code: Set(None),
        created_at: Set(at),
    }
    .insert(&t.db)
    .await
    .unwrap();
}

async fn session(
    t: &TestDb,
    user_id: Uuid,
    created: DateTime<Utc>,
    revoked: Option<DateTime<Utc>>,
) {
    sessions::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        token_hash: Set(crate::support::sha256_hex(Uuid::now_v7().as_bytes())),
        created_at: Set(created),
        last_activity_at: Set(created),
        expires_at: Set(created + Duration::days(7)),
        is_revoked: Set(revoked.is_some()),
        revoked_at: Set(revoked),
        security_version: Set(1),
        risk_score: Set(0),
        ..Default::default()
    }
    .insert(&t.db)
    .await
    .unwrap();
}

async fn api_key(t: &TestDb, user_id: Uuid, last_used: DateTime<Utc>) {
    let id = Uuid::now_v7();
    api_keys::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        name: Set(format!("key {id}")),
        key_prefix: Set("gh_test".into()),
        key_hash: Set(crate::support::sha256_hex(id.as_bytes())),
        scopes: Set(json!([])),
        rate_limit_per_minute: Set(Some(60)),
        usage_count: Set(3),
        last_used_at: Set(Some(last_used)),
        is_revoked: Set(false),
        created_at: Set(last_used - Duration::days(30)),
        updated_at: Set(last_used),
        ..Default::default()
    }
    .insert(&t.db)
    .await
    .unwrap();
}

async fn metrics_rollup_is_exact_and_idempotent(t: TestDb) {
    let day = NaiveDate::from_ymd_opt(2026, 1, 10).unwrap();
    let start = Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap();
    let end = start + Duration::days(1);
    let before = start - Duration::microseconds(1);
    let inside = |h: i64| start + Duration::hours(h);
    let policy = LockoutPolicy::default();

    // Users: two created that day, one the day before, one at the next midnight.
    let u1 = user_created(&t, "u1", inside(1)).await;
    let u2 = user_created(&t, "u2", inside(23)).await;
    let old = user_created(&t, "old", before).await;
    let next = user_created(&t, "next", end).await;
    // Lockouts: u1's lock began that day at 10:00; old's began the day before.
    lock_until(&t, u1.clone(), inside(10) + policy.account_lock).await;
    lock_until(&t, old.clone(), start + Duration::minutes(5)).await;
    lock_until(&t, next.clone(), end + policy.account_lock).await;

    // Audit: 3 successful logins, 1 failed, 2 suspicious rows, boundaries outside.
    for (h, outcome, ip) in [
        (2, AuditOutcome::Success, "198.51.100.1"),
        (3, AuditOutcome::Success, "198.51.100.2"),
        (4, AuditOutcome::Success, "198.51.100.2"),
        (5, AuditOutcome::Failure, "198.51.100.3"),
    ] {
        AuditEntry::new("login", "password_login")
            .outcome(outcome)
            .client(Some(ip), None)
            .record(&t.db, inside(h))
            .await
            .unwrap();
    }
    for at in [before, end] {
        AuditEntry::new("login", "password_login")
            .client(Some("192.0.2.99"), None)
            .suspicious(RiskLevel::High)
            .record(&t.db, at)
            .await
            .unwrap();
    }
    for h in [6, 7] {
        AuditEntry::new("api", "export")
            .suspicious(RiskLevel::Medium)
            .record(&t.db, inside(h))
            .await
            .unwrap();
    }
    // Failures: 2 passwords, 1 OTP and 1 backup code that day; one password the day before.
    failure(&t, AttemptKind::Password, "198.51.100.3", inside(8)).await;
    failure(&t, AttemptKind::Password, "198.51.100.4", inside(8)).await;
    failure(&t, AttemptKind::Otp, "198.51.100.4", inside(9)).await;
    failure(&t, AttemptKind::BackupCode, "198.51.100.5", inside(9)).await;
    failure(&t, AttemptKind::Password, "192.0.2.98", before).await;
    // Sessions: 2 created that day, 1 created before and revoked that day.
    session(&t, u2.id, inside(11), None).await;
    session(&t, u2.id, inside(12), None).await;
    session(&t, old.id, before, Some(inside(13))).await;
    session(&t, old.id, before, Some(end)).await;
    // API keys: one used that day, one used the next day.
    api_key(&t, u2.id, inside(14)).await;
    api_key(&t, u2.id, end + Duration::hours(1)).await;
    // Security events: 2 opened that day; one opened before and resolved that day.
    let admin = insert_user(&t, "admin").await;
    for h in [15, 16] {
        security_events::open(&t.db, event(Severity::Medium, "seen"), inside(h))
            .await
            .unwrap();
    }
    let earlier = security_events::open(&t.db, event(Severity::Low, "earlier"), before)
        .await
        .unwrap();
    security_events::resolve(
        &t.db,
        earlier.id,
        Resolution::FalsePositive,
        admin.id,
        "benign",
        inside(17),
    )
    .await
    .unwrap();

    let computed_at = Utc::now().trunc_subsecs(6);
    let first = rollup(&t.db, day, &policy, computed_at).await.unwrap();
    let counters = |m: &gatehouse_entity::security_metrics::Model| {
        [
            m.successful_logins,
            m.failed_logins,
            m.failed_otp_attempts,
            m.lockouts,
            m.new_users,
            m.sessions_created,
            m.sessions_revoked,
            m.api_key_uses,
            m.suspicious_events,
            m.security_events_opened,
            m.security_events_resolved,
            m.unique_ips,
        ]
    };
    // unique IPs: .1 .2 .3 (audit) ∪ .3 .4 .5 (failures) = 5.
    assert_eq!(counters(&first), [3, 2, 2, 1, 2, 2, 1, 1, 2, 2, 1, 5]);
    assert_eq!(first.metric_date, day);
    assert_eq!(first.computed_at, computed_at);

    let again = rollup(&t.db, day, &policy, computed_at + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(again.id, first.id, "one row per day");
    assert_eq!(counters(&again), counters(&first));
    assert_eq!(again.computed_at, computed_at + Duration::hours(1));
    assert_eq!(t.count("security_metrics").await, 1);

    // A late row for that day: the next run updates the same row.
    failure(&t, AttemptKind::Password, "198.51.100.6", inside(20)).await;
    let updated = rollup(&t.db, day, &policy, computed_at + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(updated.id, first.id);
    assert_eq!((updated.failed_logins, updated.unique_ips), (3, 6));

    // Another day is another row; an empty day counts zeros.
    let empty = rollup(
        &t.db,
        NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
        &policy,
        computed_at,
    )
    .await
    .unwrap();
    assert_eq!(counters(&empty), [0; 12]);
    assert_eq!(t.count("security_metrics").await, 2);
}

async fn audit_row(t: &TestDb, retention_days: i32, at: DateTime<Utc>) -> Uuid {
    AuditEntry::new("test", "retention")
        .retention_days(retention_days)
        .record(&t.db, at)
        .await
        .unwrap()
        .id
}

async fn retention_prunes_rows_past_their_own_period_in_batches(t: TestDb) {
    let t0 = now();
    let ago = |hours: i64| t0 - Duration::hours(hours);
    let day = 24;
    let mut expired = Vec::new();
    let mut kept = Vec::new();
    for (days, age, expires) in [
        (1, 2 * day, true),
        (1, 3 * day, true),
        (1, 10 * day, true),
        (1, 12, false),
        (1, day - 1, false),
        (30, 31 * day, true),
        (30, 29 * day, false),
        (90, 91 * day, true),
        (90, 100 * day, true),
        (90, 89 * day, false),
        (90, 10 * day, false),
        (365, 200 * day, false),
    ] {
        let id = audit_row(&t, days, ago(age)).await;
        if expires {
            expired.push(id);
        } else {
            kept.push(id);
        }
    }
    assert!(matches!(
        retention::prune_audit_logs(&t.db, 0, t0).await,
        Err(Error::InvalidInput {
            field: "batch_size",
            ..
        })
    ));
    let pruned = retention::prune_audit_logs(&t.db, 2, t0).await.unwrap();
    assert_eq!(pruned.deleted, expired.len() as u64);
    assert!(pruned.batches >= 4, "{pruned:?}");
    let mut left: Vec<Uuid> = audit_logs::Entity::find()
        .all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    left.sort();
    kept.sort();
    assert_eq!(left, kept);
    // Nothing left to prune now; a day later the 23-hour-old row of retention 1 goes.
    assert_eq!(
        retention::prune_audit_logs(&t.db, 2, t0)
            .await
            .unwrap()
            .deleted,
        0
    );
    assert_eq!(
        retention::prune_audit_logs(&t.db, 1000, t0 + Duration::hours(2))
            .await
            .unwrap()
            .deleted,
        1
    );
}

async fn retention_prunes_failed_logins_and_session_audit_by_age(t: TestDb) {
    let t0 = now();
    for days in [91, 92, 120, 365, 400, 89, 1] {
        failure(
            &t,
            AttemptKind::Password,
            "198.51.100.9",
            t0 - Duration::days(days),
        )
        .await;
    }
    for days in [31, 45, 60, 29, 0] {
        session_audit_log::ActiveModel {
            id: Set(Uuid::now_v7()),
            session_id: Set(None),
            user_id: Set(None),
            event: Set(SessionEvent::Expired),
            reason: Set(None),
            risk_score: Set(None),
            ip_hash: Set(None),
            details: Set(None),
            created_at: Set(t0 - Duration::days(days)),
        }
        .insert(&t.db)
        .await
        .unwrap();
    }
    let policy = retention::RetentionPolicy {
        batch_size: 2,
        ..retention::RetentionPolicy::default()
    };
    let report = retention::prune_all(&t.db, &policy, t0).await.unwrap();
    assert_eq!(report.audit_logs.deleted, 0);
    assert_eq!(report.failed_login_attempts.deleted, 5);
    assert_eq!(report.failed_login_attempts.batches, 3);
    assert_eq!(report.session_audit_log.deleted, 3);
    assert_eq!(report.session_audit_log.batches, 2);
    assert_eq!(t.count("failed_login_attempts").await, 2);
    assert_eq!(t.count("session_audit_log").await, 2);
    assert!(matches!(
        retention::prune_failed_logins(&t.db, Duration::zero(), 10, t0).await,
        Err(Error::InvalidInput {
            field: "max_age",
            ..
        })
    ));
    assert!(matches!(
        retention::prune_session_audit(&t.db, Duration::days(1), 10_001, t0).await,
        Err(Error::InvalidInput {
            field: "batch_size",
            ..
        })
    ));
}

async fn classification_lookup_and_access_counting(t: TestDb) {
    use gatehouse_entity::sea_orm_active_enums::Sensitivity;
    let found = classification::classification(&t.db, "users", "password_hash")
        .await
        .unwrap()
        .expect("the seed classifies users.password_hash");
    assert_eq!(found.sensitivity, Sensitivity::Restricted);
    assert_eq!(found.data_category, "credential");
    assert_eq!(found.access_count, 0);
    assert!(found.last_accessed_at.is_none());
    assert!(
        classification::classification(&t.db, "users", "is_active")
            .await
            .unwrap()
            .is_none()
    );

    let restricted = classification::list_by_sensitivity(&t.db, Sensitivity::Restricted)
        .await
        .unwrap();
    assert!(
        restricted
            .iter()
            .all(|c| c.sensitivity == Sensitivity::Restricted)
    );
    assert!(
        restricted
            .iter()
            .any(|c| (c.table_name.as_str(), c.column_name.as_str()) == ("users", "password_hash"))
    );
    let keys: Vec<(String, String)> = restricted
        .iter()
        .map(|c| (c.table_name.clone(), c.column_name.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "ordered by table, then column");
    let restricted_rows = t
        .count("data_classification WHERE sensitivity = 'restricted'")
        .await;
    assert_eq!(restricted.len() as i64, restricted_rows);

    // Concurrent accesses all count.
    let at = now();
    let (a, b, c) = tokio::join!(
        classification::record_access(&t.db, "users", "password_hash", at),
        classification::record_access(&t.db, "users", "password_hash", at),
        classification::record_access(&t.db, "users", "password_hash", at),
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    let after = classification::classification(&t.db, "users", "password_hash")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.access_count, 3);
    assert_eq!(after.last_accessed_at, Some(at));
    assert_eq!(
        after.updated_at, found.updated_at,
        "the classification itself is unchanged"
    );

    assert!(matches!(
        classification::record_access(&t.db, "users", "is_active", at).await,
        Err(Error::NotFound(_))
    ));
    for (table, column) in [
        ("users; DROP TABLE users", "email"),
        ("users", ""),
        ("users", &*"c".repeat(65)),
        ("1users", "email"),
        ("users", "emäil"),
    ] {
        assert!(matches!(
            classification::classification(&t.db, table, column).await,
            Err(Error::InvalidInput { .. })
        ));
        assert!(matches!(
            classification::record_access(&t.db, table, column, at).await,
            Err(Error::InvalidInput { .. })
        ));
    }
}
