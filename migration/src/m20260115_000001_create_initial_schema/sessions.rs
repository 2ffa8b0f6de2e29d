//! `sessions`: bearer sessions stored by token hash.

use super::users::Users;
use crate::columns::*;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum Sessions {
    Table,
    Id,
    UserId,
    TokenHash,
    IpAddress,
    UserAgent,
    CreatedAt,
    LastActivityAt,
    ExpiresAt,
    IsRevoked,
    RevokedAt,
    RevokedReason,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    let t = Sessions::Table;
    manager
        .create_table(
            create_table(db, t.clone())
                .col(pk_uuid(Sessions::Id))
                .col(ColumnDef::new(Sessions::UserId).uuid().not_null())
                .col(string_len(Sessions::TokenHash, 64))
                .col(string_len_null(Sessions::IpAddress, 45))
                .col(string_len_null(Sessions::UserAgent, 512))
                .col(timestamp_utc_now(db, Sessions::CreatedAt))
                .col(timestamp_utc_now(db, Sessions::LastActivityAt))
                .col(timestamp_utc(db, Sessions::ExpiresAt))
                .col(boolean(Sessions::IsRevoked).default(false))
                .col(timestamp_utc_null(db, Sessions::RevokedAt))
                .col(string_len_null(Sessions::RevokedReason, 64))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    Sessions::UserId,
                    Users::Table,
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(index(t.clone(), &[Sessions::TokenHash]).unique().to_owned())
        .await?;
    manager
        .create_index(index(t.clone(), &[Sessions::UserId]))
        .await?;
    manager.create_index(index(t, &[Sessions::ExpiresAt])).await
}
