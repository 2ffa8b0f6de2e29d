//! `users`: email and username unique regardless of case.

use crate::columns::*;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum Users {
    Table,
    Id,
    Email,
    Username,
    PasswordHash,
    IsActive,
    IsVerified,
    IsLocked,
    LockedUntil,
    FailedLoginCount,
    LastLoginAt,
    LastLoginIp,
    PasswordResetTokenHash,
    PasswordResetExpiresAt,
    PasswordChangedAt,
    PasswordExpiresAt,
    DeletedAt,
    CreatedAt,
    UpdatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    manager
        .create_table(
            create_table(db, Users::Table)
                .col(pk_uuid(Users::Id))
                .col(string_len(Users::Email, 255))
                .col(string_len(Users::Username, 64))
                .col(string_len(Users::PasswordHash, 255))
                .col(boolean(Users::IsActive).default(true))
                .col(boolean(Users::IsVerified).default(false))
                .col(boolean(Users::IsLocked).default(false))
                .col(timestamp_utc_null(db, Users::LockedUntil))
                .col(integer(Users::FailedLoginCount).default(0))
                .col(timestamp_utc_null(db, Users::LastLoginAt))
                .col(string_len_null(Users::LastLoginIp, 45))
                .col(string_len_null(Users::PasswordResetTokenHash, 64))
                .col(timestamp_utc_null(db, Users::PasswordResetExpiresAt))
                .col(timestamp_utc_null(db, Users::PasswordChangedAt))
                .col(timestamp_utc_null(db, Users::PasswordExpiresAt))
                .col(timestamp_utc_null(db, Users::DeletedAt))
                .col(timestamp_utc_now(db, Users::CreatedAt))
                .col(timestamp_utc_now(db, Users::UpdatedAt))
                .check(Check::from((
                    "ck-users-failed_login_count",
                    Expr::col(Users::FailedLoginCount).gte(0),
                )))
                .to_owned(),
        )
        .await?;
    create_unique_ci(manager, Users::Table, Users::Email).await?;
    create_unique_ci(manager, Users::Table, Users::Username).await?;
    manager
        .create_index(
            index(Users::Table, &[Users::PasswordResetTokenHash])
                .unique()
                .to_owned(),
        )
        .await
}
