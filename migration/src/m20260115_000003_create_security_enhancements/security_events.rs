//! `security_events`: incidents with severity, alerting and resolution.

use crate::columns::*;
use crate::m20260115_000001_create_initial_schema::users::Users;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum SecurityEvents {
    Table,
    Id,
    EventType,
    Severity,
    Status,
    UserId,
    IpAddress,
    Description,
    Details,
    AlertSent,
    ResolvedAt,
    ResolvedBy,
    ResolutionNotes,
    CreatedAt,
    UpdatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    let t = SecurityEvents::Table;
    manager
        .create_table(
            create_table(db, t.clone())
                .col(pk_uuid(SecurityEvents::Id))
                .col(string_len(SecurityEvents::EventType, 64))
                .col(string_len(SecurityEvents::Severity, 16))
                .col(string_len(SecurityEvents::Status, 16).default("open"))
                .col(ColumnDef::new(SecurityEvents::UserId).uuid().null())
                .col(string_len_null(SecurityEvents::IpAddress, 45))
                .col(text(SecurityEvents::Description))
                .col(json_binary_null(SecurityEvents::Details))
                .col(boolean(SecurityEvents::AlertSent).default(false))
                .col(timestamp_utc_null(db, SecurityEvents::ResolvedAt))
                .col(ColumnDef::new(SecurityEvents::ResolvedBy).uuid().null())
                .col(text_null(SecurityEvents::ResolutionNotes))
                .col(timestamp_utc_now(db, SecurityEvents::CreatedAt))
                .col(timestamp_utc_now(db, SecurityEvents::UpdatedAt))
                .check(Check::from(one_of(
                    "security_events",
                    SecurityEvents::Severity,
                    &["low", "medium", "high", "critical"],
                )))
                .check(Check::from(one_of(
                    "security_events",
                    SecurityEvents::Status,
                    &["open", "investigating", "resolved", "false_positive"],
                )))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    SecurityEvents::UserId,
                    Users::Table,
                    ForeignKeyAction::SetNull,
                ))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    SecurityEvents::ResolvedBy,
                    Users::Table,
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;
    for stmt in [
        index(
            t.clone(),
            &[SecurityEvents::Status, SecurityEvents::Severity],
        ),
        index(t.clone(), &[SecurityEvents::UserId]),
        index(t.clone(), &[SecurityEvents::ResolvedBy]),
        index(t, &[SecurityEvents::CreatedAt]),
    ] {
        manager.create_index(stmt).await?;
    }
    Ok(())
}
