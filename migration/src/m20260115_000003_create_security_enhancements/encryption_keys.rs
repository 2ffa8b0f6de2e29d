//! `encryption_keys`: key metadata and rotation audit; at most one active key
//! per type where partial unique indexes exist (PostgreSQL, SQLite).

use crate::columns::*;
use crate::m20260115_000001_create_initial_schema::users::Users;
use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum EncryptionKeys {
    Table,
    Id,
    KeyType,
    Version,
    Status,
    Algorithm,
    Fingerprint,
    ActivatedAt,
    RotatedAt,
    ExpiresAt,
    RotatedBy,
    RotationReason,
    CreatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    let t = EncryptionKeys::Table;
    manager
        .create_table(
            create_table(db, t.clone())
                .col(pk_uuid(EncryptionKeys::Id))
                .col(string_len(EncryptionKeys::KeyType, 16))
                .col(integer(EncryptionKeys::Version))
                .col(string_len(EncryptionKeys::Status, 16).default("active"))
                .col(string_len(EncryptionKeys::Algorithm, 32))
                .col(string_len(EncryptionKeys::Fingerprint, 64))
                .col(timestamp_utc_now(db, EncryptionKeys::ActivatedAt))
                .col(timestamp_utc_null(db, EncryptionKeys::RotatedAt))
                .col(timestamp_utc_null(db, EncryptionKeys::ExpiresAt))
                .col(ColumnDef::new(EncryptionKeys::RotatedBy).uuid().null())
                .col(string_len_null(EncryptionKeys::RotationReason, 255))
                .col(timestamp_utc_now(db, EncryptionKeys::CreatedAt))
                .check(Check::from(one_of(
                    "encryption_keys",
                    EncryptionKeys::KeyType,
                    &["jwt", "session", "data", "api"],
                )))
                .check(Check::from(one_of(
                    "encryption_keys",
                    EncryptionKeys::Status,
                    &["active", "rotated", "compromised"],
                )))
                .check(Check::from((
                    "ck-encryption_keys-version",
                    Expr::col(EncryptionKeys::Version).gte(1),
                )))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    EncryptionKeys::RotatedBy,
                    Users::Table,
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index(
                t.clone(),
                &[EncryptionKeys::KeyType, EncryptionKeys::Version],
            )
            .unique()
            .to_owned(),
        )
        .await?;
    manager
        .create_index(index(t.clone(), &[EncryptionKeys::RotatedBy]))
        .await?;
    // One active key per type. MySQL/MariaDB lack partial indexes; there the
    // rotation service enforces it inside its transaction.
    if db != DbBackend::MySql {
        manager
            .create_index(
                Index::create()
                    .name("uq-encryption_keys-key_type-active")
                    .table(t)
                    .col(EncryptionKeys::KeyType)
                    .unique()
                    .and_where(Expr::col(EncryptionKeys::Status).eq("active"))
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}
