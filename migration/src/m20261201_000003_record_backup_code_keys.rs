//! `mfa_backup_codes.encryption_key_id`: the HMAC (`session`) key each
//! backup code's digest was made with, so that after `HMAC_KEY` is rotated
//! the codes still verify under the previous key of the key ring.
//!
//! Nullable, a foreign key to `encryption_keys` (RESTRICT: a key record that
//! codes depend on stays) with its index. Existing codes are backfilled with
//! the active `session` key's id: the key they were digested under, since
//! keys changed only by rotating at start before this. Where no session key
//! is recorded they stay NULL (read as "the current key"). The backfill is
//! one `UPDATE` with a subquery, so the migration renders the same SQL
//! whatever the database holds.

use crate::columns::*;
use crate::m20260115_000003_create_security_enhancements::encryption_keys::EncryptionKeys;
use crate::m20260115_000003_create_security_enhancements::mfa_backup_codes::MfaBackupCodes;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

#[derive(DeriveIden, Clone)]
enum NewColumns {
    EncryptionKeyId,
}

const FK_ENCRYPTION_KEY: &str = "fk-mfa_backup_codes-encryption_key_id";

fn key_index() -> IndexCreateStatement {
    index(MfaBackupCodes::Table, &[NewColumns::EncryptionKeyId])
}

async fn raw(manager: &SchemaManager<'_>, sql: String) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    manager
        .get_connection()
        .execute_raw(Statement::from_string(db, sql))
        .await
        .map(|_| ())
}

/// Sets every code without a key to the active session key's id.
fn backfill(db: DbBackend) -> String {
    let q = |name: &str| match db {
        DbBackend::MySql => format!("`{name}`"),
        _ => format!("\"{name}\""),
    };
    format!(
        "UPDATE {codes} SET {key_id} = (SELECT {id} FROM {keys} WHERE {key_type} = 'session' \
         AND {status} = 'active' ORDER BY {version} DESC LIMIT 1) WHERE {key_id} IS NULL",
        codes = q("mfa_backup_codes"),
        key_id = q("encryption_key_id"),
        id = q("id"),
        keys = q("encryption_keys"),
        key_type = q("key_type"),
        status = q("status"),
        version = q("version"),
    )
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        match db {
            // SQLite can add a referencing column only with the reference inline.
            DbBackend::Sqlite => {
                raw(
                    manager,
                    format!(
                        r#"ALTER TABLE "mfa_backup_codes" ADD COLUMN "encryption_key_id" uuid_text NULL CONSTRAINT "{FK_ENCRYPTION_KEY}" REFERENCES "encryption_keys" ("id") ON DELETE RESTRICT ON UPDATE CASCADE"#
                    ),
                )
                .await?;
            }
            _ => {
                manager
                    .alter_table(
                        Table::alter()
                            .table(MfaBackupCodes::Table)
                            .add_column(
                                ColumnDef::new(NewColumns::EncryptionKeyId)
                                    .uuid()
                                    .null()
                                    .take(),
                            )
                            .to_owned(),
                    )
                    .await?;
            }
        }
        raw(manager, backfill(db)).await?;
        manager.create_index(key_index()).await?;
        // After its index exists, so MySQL/MariaDB add no implicit one.
        if db != DbBackend::Sqlite {
            manager
                .create_foreign_key(foreign_key(
                    MfaBackupCodes::Table,
                    NewColumns::EncryptionKeyId,
                    EncryptionKeys::Table,
                    ForeignKeyAction::Restrict,
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        if db != DbBackend::Sqlite {
            manager
                .drop_foreign_key(
                    ForeignKey::drop()
                        .name(FK_ENCRYPTION_KEY)
                        .table(MfaBackupCodes::Table)
                        .to_owned(),
                )
                .await?;
        }
        let name = key_index()
            .get_index_spec()
            .get_name()
            .expect("the index is named")
            .to_owned();
        manager
            .drop_index(
                Index::drop()
                    .name(name)
                    .table(MfaBackupCodes::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(MfaBackupCodes::Table)
                    .drop_column(NewColumns::EncryptionKeyId)
                    .to_owned(),
            )
            .await
    }
}
