//! `password_history`: former password hashes, newest first per user.

use crate::columns::*;
use crate::m20260115_000001_create_initial_schema::users::Users;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum PasswordHistory {
    Table,
    Id,
    UserId,
    PasswordHash,
    ChangedBy,
    ChangeReason,
    CreatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    let t = PasswordHistory::Table;
    manager
        .create_table(
            create_table(db, t.clone())
                .col(pk_uuid(PasswordHistory::Id))
                .col(ColumnDef::new(PasswordHistory::UserId).uuid().not_null())
                .col(string_len(PasswordHistory::PasswordHash, 255))
                .col(ColumnDef::new(PasswordHistory::ChangedBy).uuid().null())
                .col(string_len_null(PasswordHistory::ChangeReason, 32))
                .col(timestamp_utc_now(db, PasswordHistory::CreatedAt))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    PasswordHistory::UserId,
                    Users::Table,
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    PasswordHistory::ChangedBy,
                    Users::Table,
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(index(
            t.clone(),
            &[PasswordHistory::UserId, PasswordHistory::CreatedAt],
        ))
        .await?;
    manager
        .create_index(index(t, &[PasswordHistory::ChangedBy]))
        .await
}
