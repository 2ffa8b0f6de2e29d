//! `audit_log_basic`: the minimal audit trail; entries outlive their user.

use super::users::Users;
use crate::columns::*;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum AuditLogBasic {
    Table,
    Id,
    UserId,
    Action,
    ResourceType,
    ResourceId,
    IpAddress,
    UserAgent,
    Details,
    CreatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    let t = AuditLogBasic::Table;
    manager
        .create_table(
            create_table(db, t.clone())
                .col(pk_uuid(AuditLogBasic::Id))
                .col(ColumnDef::new(AuditLogBasic::UserId).uuid().null())
                .col(string_len(AuditLogBasic::Action, 100))
                .col(string_len_null(AuditLogBasic::ResourceType, 64))
                .col(string_len_null(AuditLogBasic::ResourceId, 64))
                .col(string_len_null(AuditLogBasic::IpAddress, 45))
                .col(string_len_null(AuditLogBasic::UserAgent, 512))
                .col(json_binary_null(AuditLogBasic::Details))
                .col(timestamp_utc_now(db, AuditLogBasic::CreatedAt))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    AuditLogBasic::UserId,
                    Users::Table,
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(index(t.clone(), &[AuditLogBasic::UserId]))
        .await?;
    manager
        .create_index(index(t.clone(), &[AuditLogBasic::CreatedAt]))
        .await?;
    manager
        .create_index(index(
            t,
            &[AuditLogBasic::ResourceType, AuditLogBasic::ResourceId],
        ))
        .await
}
