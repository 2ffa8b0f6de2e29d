//! `security_metrics`: one row of counters per day.

use crate::columns::*;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum SecurityMetrics {
    Table,
    Id,
    MetricDate,
    SuccessfulLogins,
    FailedLogins,
    FailedOtpAttempts,
    Lockouts,
    NewUsers,
    SessionsCreated,
    SessionsRevoked,
    ApiKeyUses,
    SuspiciousEvents,
    SecurityEventsOpened,
    SecurityEventsResolved,
    UniqueIps,
    ComputedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use SecurityMetrics as M;
    let db = manager.get_database_backend();
    let mut table = create_table(db, M::Table);
    table.col(pk_uuid(M::Id)).col(date(M::MetricDate));
    for counter in [
        M::SuccessfulLogins,
        M::FailedLogins,
        M::FailedOtpAttempts,
        M::Lockouts,
        M::NewUsers,
        M::SessionsCreated,
        M::SessionsRevoked,
        M::ApiKeyUses,
        M::SuspiciousEvents,
        M::SecurityEventsOpened,
        M::SecurityEventsResolved,
        M::UniqueIps,
    ] {
        table.col(big_integer(counter).default(0));
    }
    table.col(timestamp_utc_now(db, M::ComputedAt));
    manager.create_table(table).await?;
    manager
        .create_index(index(M::Table, &[M::MetricDate]).unique().to_owned())
        .await
}
