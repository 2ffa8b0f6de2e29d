//! `mfa_configurations`: one encrypted TOTP secret per user with a replay guard.

use super::encryption_keys::EncryptionKeys;
use crate::columns::*;
use crate::m20260115_000001_create_initial_schema::users::Users;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum MfaConfigurations {
    Table,
    Id,
    UserId,
    Method,
    SecretEncrypted,
    EncryptionKeyId,
    IsEnabled,
    IsVerified,
    VerifiedAt,
    LastUsedStep,
    LastUsedAt,
    CreatedAt,
    UpdatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    let t = MfaConfigurations::Table;
    manager
        .create_table(
            create_table(db, t.clone())
                .col(pk_uuid(MfaConfigurations::Id))
                .col(ColumnDef::new(MfaConfigurations::UserId).uuid().not_null())
                .col(string_len(MfaConfigurations::Method, 16).default("totp"))
                .col(text(MfaConfigurations::SecretEncrypted))
                .col(
                    ColumnDef::new(MfaConfigurations::EncryptionKeyId)
                        .uuid()
                        .null(),
                )
                .col(boolean(MfaConfigurations::IsEnabled).default(false))
                .col(boolean(MfaConfigurations::IsVerified).default(false))
                .col(timestamp_utc_null(db, MfaConfigurations::VerifiedAt))
                .col(big_integer_null(MfaConfigurations::LastUsedStep))
                .col(timestamp_utc_null(db, MfaConfigurations::LastUsedAt))
                .col(timestamp_utc_now(db, MfaConfigurations::CreatedAt))
                .col(timestamp_utc_now(db, MfaConfigurations::UpdatedAt))
                .check(Check::from(one_of(
                    "mfa_configurations",
                    MfaConfigurations::Method,
                    &["totp"],
                )))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    MfaConfigurations::UserId,
                    Users::Table,
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    MfaConfigurations::EncryptionKeyId,
                    EncryptionKeys::Table,
                    ForeignKeyAction::Restrict,
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index(t.clone(), &[MfaConfigurations::UserId])
                .unique()
                .to_owned(),
        )
        .await?;
    manager
        .create_index(index(t, &[MfaConfigurations::EncryptionKeyId]))
        .await
}
