//! `mfa_backup_codes`: hashed single-use recovery codes.

use crate::columns::*;
use crate::m20260115_000001_create_initial_schema::users::Users;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum MfaBackupCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    UsedAt,
    CreatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    let t = MfaBackupCodes::Table;
    manager
        .create_table(
            create_table(db, t.clone())
                .col(pk_uuid(MfaBackupCodes::Id))
                .col(ColumnDef::new(MfaBackupCodes::UserId).uuid().not_null())
                .col(string_len(MfaBackupCodes::CodeHash, 255))
                .col(timestamp_utc_null(db, MfaBackupCodes::UsedAt))
                .col(timestamp_utc_now(db, MfaBackupCodes::CreatedAt))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    MfaBackupCodes::UserId,
                    Users::Table,
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index(t, &[MfaBackupCodes::UserId, MfaBackupCodes::CodeHash])
                .unique()
                .to_owned(),
        )
        .await
}
