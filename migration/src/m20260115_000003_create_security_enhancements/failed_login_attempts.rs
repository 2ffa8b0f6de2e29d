//! `failed_login_attempts`: failures by account, identifier and IP, per factor.

use crate::columns::*;
use crate::m20260115_000001_create_initial_schema::users::Users;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum FailedLoginAttempts {
    Table,
    Id,
    UserId,
    Identifier,
    AttemptKind,
    IpAddress,
    UserAgent,
    FailureReason,
    CountryCode,
    CreatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    let t = FailedLoginAttempts::Table;
    manager
        .create_table(
            create_table(db, t.clone())
                .col(pk_uuid(FailedLoginAttempts::Id))
                .col(ColumnDef::new(FailedLoginAttempts::UserId).uuid().null())
                .col(string_len(FailedLoginAttempts::Identifier, 255))
                .col(string_len(FailedLoginAttempts::AttemptKind, 16).default("password"))
                .col(string_len_null(FailedLoginAttempts::IpAddress, 45))
                .col(string_len_null(FailedLoginAttempts::UserAgent, 512))
                .col(string_len_null(FailedLoginAttempts::FailureReason, 64))
                .col(string_len_null(FailedLoginAttempts::CountryCode, 2))
                .col(timestamp_utc_now(db, FailedLoginAttempts::CreatedAt))
                .check(Check::from(one_of(
                    "failed_login_attempts",
                    FailedLoginAttempts::AttemptKind,
                    &["password", "otp", "backup_code"],
                )))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    FailedLoginAttempts::UserId,
                    Users::Table,
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;
    for stmt in [
        index(
            t.clone(),
            &[
                FailedLoginAttempts::UserId,
                FailedLoginAttempts::AttemptKind,
                FailedLoginAttempts::CreatedAt,
            ],
        ),
        index(
            t.clone(),
            &[
                FailedLoginAttempts::Identifier,
                FailedLoginAttempts::CreatedAt,
            ],
        ),
        index(
            t.clone(),
            &[
                FailedLoginAttempts::IpAddress,
                FailedLoginAttempts::CreatedAt,
            ],
        ),
        index(t, &[FailedLoginAttempts::CreatedAt]),
    ] {
        manager.create_index(stmt).await?;
    }
    Ok(())
}
