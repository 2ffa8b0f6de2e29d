//! `api_keys`: hashed keys with scopes, rate limit and usage tracking.

use super::users::Users;
use crate::columns::*;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum ApiKeys {
    Table,
    Id,
    UserId,
    Name,
    KeyPrefix,
    KeyHash,
    Scopes,
    RateLimitPerMinute,
    UsageCount,
    LastUsedAt,
    LastUsedIp,
    ExpiresAt,
    IsRevoked,
    RevokedAt,
    CreatedAt,
    UpdatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    let t = ApiKeys::Table;
    manager
        .create_table(
            create_table(db, t.clone())
                .col(pk_uuid(ApiKeys::Id))
                .col(ColumnDef::new(ApiKeys::UserId).uuid().not_null())
                .col(string_len(ApiKeys::Name, 100))
                .col(string_len(ApiKeys::KeyPrefix, 32))
                .col(string_len(ApiKeys::KeyHash, 64))
                .col(json_binary(ApiKeys::Scopes))
                .col(integer(ApiKeys::RateLimitPerMinute).default(60))
                .col(big_integer(ApiKeys::UsageCount).default(0))
                .col(timestamp_utc_null(db, ApiKeys::LastUsedAt))
                .col(string_len_null(ApiKeys::LastUsedIp, 45))
                .col(timestamp_utc_null(db, ApiKeys::ExpiresAt))
                .col(boolean(ApiKeys::IsRevoked).default(false))
                .col(timestamp_utc_null(db, ApiKeys::RevokedAt))
                .col(timestamp_utc_now(db, ApiKeys::CreatedAt))
                .col(timestamp_utc_now(db, ApiKeys::UpdatedAt))
                .check(Check::from((
                    "ck-api_keys-rate_limit_per_minute",
                    Expr::col(ApiKeys::RateLimitPerMinute).gt(0),
                )))
                .check(Check::from((
                    "ck-api_keys-usage_count",
                    Expr::col(ApiKeys::UsageCount).gte(0),
                )))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    ApiKeys::UserId,
                    Users::Table,
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(index(t.clone(), &[ApiKeys::KeyHash]).unique().to_owned())
        .await?;
    manager
        .create_index(index(t.clone(), &[ApiKeys::UserId]))
        .await?;
    manager.create_index(index(t, &[ApiKeys::KeyPrefix])).await
}
