//! `audit_logs`: request context, security flags, geography, timings and a
//! per-row retention period; indexed for the audit queries.

use crate::columns::*;
use crate::m20260115_000001_create_initial_schema::{sessions::Sessions, users::Users};
use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum AuditLogs {
    Table,
    Id,
    UserId,
    SessionId,
    EventType,
    Action,
    Outcome,
    ResourceType,
    ResourceId,
    RequestId,
    HttpMethod,
    RequestPath,
    StatusCode,
    IpAddress,
    UserAgent,
    IsSuspicious,
    RiskLevel,
    CountryCode,
    Region,
    City,
    DurationMs,
    ResponseSizeBytes,
    RetentionDays,
    Metadata,
    CreatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    manager
        .create_table(definition(db, pk_uuid(AuditLogs::Id)))
        .await?;
    for stmt in indexes(db) {
        manager.create_index(stmt).await?;
    }
    Ok(())
}

/// The table, with `id` declared by the caller: the primary key here, a
/// plain column where the table's key also holds the partition column.
pub fn definition(db: DbBackend, id: ColumnDef) -> TableCreateStatement {
    let t = AuditLogs::Table;
    create_table(db, t.clone())
        .col(id)
        .col(ColumnDef::new(AuditLogs::UserId).uuid().null())
        .col(ColumnDef::new(AuditLogs::SessionId).uuid().null())
        .col(string_len(AuditLogs::EventType, 64))
        .col(string_len(AuditLogs::Action, 100))
        .col(string_len(AuditLogs::Outcome, 16).default("success"))
        .col(string_len_null(AuditLogs::ResourceType, 64))
        .col(string_len_null(AuditLogs::ResourceId, 64))
        .col(string_len_null(AuditLogs::RequestId, 64))
        .col(string_len_null(AuditLogs::HttpMethod, 10))
        .col(string_len_null(AuditLogs::RequestPath, 2048))
        .col(integer_null(AuditLogs::StatusCode))
        .col(string_len_null(AuditLogs::IpAddress, 45))
        .col(string_len_null(AuditLogs::UserAgent, 512))
        .col(boolean(AuditLogs::IsSuspicious).default(false))
        .col(string_len(AuditLogs::RiskLevel, 16).default("low"))
        .col(string_len_null(AuditLogs::CountryCode, 2))
        .col(string_len_null(AuditLogs::Region, 100))
        .col(string_len_null(AuditLogs::City, 100))
        .col(integer_null(AuditLogs::DurationMs))
        .col(big_integer_null(AuditLogs::ResponseSizeBytes))
        .col(integer(AuditLogs::RetentionDays).default(90))
        .col(json_binary_null(AuditLogs::Metadata))
        .col(timestamp_utc_now(db, AuditLogs::CreatedAt))
        .check(Check::from(one_of(
            "audit_logs",
            AuditLogs::Outcome,
            &["success", "failure", "error"],
        )))
        .check(Check::from(one_of(
            "audit_logs",
            AuditLogs::RiskLevel,
            &["low", "medium", "high", "critical"],
        )))
        .check(Check::from(between(
            "audit_logs",
            AuditLogs::RetentionDays,
            1,
            36500,
        )))
        .foreign_key(&mut foreign_key(
            t.clone(),
            AuditLogs::UserId,
            Users::Table,
            ForeignKeyAction::SetNull,
        ))
        .foreign_key(&mut foreign_key(
            t.clone(),
            AuditLogs::SessionId,
            Sessions::Table,
            ForeignKeyAction::SetNull,
        ))
        .to_owned()
}

/// The indexes the audit queries use.
pub fn indexes(db: DbBackend) -> Vec<IndexCreateStatement> {
    let t = AuditLogs::Table;
    vec![
        index(t.clone(), &[AuditLogs::UserId, AuditLogs::CreatedAt]),
        index(t.clone(), &[AuditLogs::SessionId]),
        index(t.clone(), &[AuditLogs::CreatedAt]),
        index(t.clone(), &[AuditLogs::EventType, AuditLogs::CreatedAt]),
        index(t.clone(), &[AuditLogs::ResourceType, AuditLogs::ResourceId]),
        index(t.clone(), &[AuditLogs::IpAddress, AuditLogs::CreatedAt]),
        index(t.clone(), &[AuditLogs::RequestId]),
        partial(
            db,
            index(t.clone(), &[AuditLogs::RiskLevel, AuditLogs::CreatedAt]),
            Expr::col(AuditLogs::IsSuspicious).eq(true),
        ),
    ]
}
