//! Seed 004: session integrity columns on the live `sessions` table, their
//! indexes, and `session_audit_log`.
//!
//! Existing rows are kept and backfilled: `security_version` 0 marks a
//! session that predates sealing (its `security_hash` is NULL until the
//! sessions service seals it; the HMAC key is not the migration's to know),
//! `risk_score` starts at 0 and `last_validated_at` at the last activity.
//! `down` removes only what `up` added; session rows stay. Seed 004's
//! trigger and cleanup procedures are Rust code in `gatehouse::sessions`.

use crate::columns::*;
use crate::m20260115_000001_create_initial_schema::{sessions::Sessions, users::Users};
use crate::m20260115_000003_create_security_enhancements::encryption_keys::EncryptionKeys;
use sea_orm_migration::sea_orm::{DbBackend, Statement};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
enum NewColumns {
    SecurityHash,
    EncryptionKeyId,
    CreatedIpHash,
    SecurityVersion,
    LastValidatedAt,
    RiskScore,
}

#[derive(DeriveIden, Clone)]
pub enum SessionAuditLog {
    Table,
    Id,
    SessionId,
    UserId,
    Event,
    Reason,
    RiskScore,
    IpHash,
    Details,
    CreatedAt,
}

const FK_ENCRYPTION_KEY: &str = "fk-sessions-encryption_key_id";

fn session_indexes(db: DbBackend) -> Vec<IndexCreateStatement> {
    use NewColumns as N;
    let t = Sessions::Table;
    vec![
        index(t.clone(), &[N::SecurityHash]),
        index(t.clone(), &[N::EncryptionKeyId]),
        partial(
            db,
            index(t.clone(), &[N::CreatedIpHash]),
            Expr::col(N::CreatedIpHash).is_not_null(),
        ),
        partial(
            db,
            index(t.clone(), &[N::RiskScore]),
            Expr::col(Sessions::IsRevoked).eq(false),
        ),
        index(t, &[N::LastValidatedAt]),
    ]
}

fn add_column(col: ColumnDef) -> TableAlterStatement {
    Table::alter()
        .table(Sessions::Table)
        .add_column(col)
        .to_owned()
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use NewColumns as N;
        let db = manager.get_database_backend();
        manager
            .alter_table(add_column(string_len_null(N::SecurityHash, 64)))
            .await?;
        // SQLite can add a referencing column only with the reference inline.
        match db {
            DbBackend::Sqlite => {
                manager
                    .get_connection()
                    .execute_raw(Statement::from_string(
                        db,
                        format!(
                            r#"ALTER TABLE "sessions" ADD COLUMN "encryption_key_id" uuid_text NULL CONSTRAINT "{FK_ENCRYPTION_KEY}" REFERENCES "encryption_keys" ("id") ON DELETE SET NULL ON UPDATE CASCADE"#
                        ),
                    ))
                    .await?;
            }
            _ => {
                manager
                    .alter_table(add_column(
                        ColumnDef::new(N::EncryptionKeyId).uuid().null().take(),
                    ))
                    .await?;
            }
        }
        manager
            .alter_table(add_column(string_len_null(N::CreatedIpHash, 64)))
            .await?;
        manager
            .alter_table(add_column(integer(N::SecurityVersion).default(0).take()))
            .await?;
        manager
            .alter_table(add_column(timestamp_utc_null(db, N::LastValidatedAt)))
            .await?;
        manager
            .alter_table(add_column(
                integer(N::RiskScore)
                    .default(0)
                    .check(Expr::col(N::RiskScore).between(0, 100))
                    .take(),
            ))
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Sessions::Table)
                    .value(N::LastValidatedAt, Expr::col(Sessions::LastActivityAt))
                    .and_where(Expr::col(N::LastValidatedAt).is_null())
                    .to_owned(),
            )
            .await?;
        for stmt in session_indexes(db) {
            manager.create_index(stmt).await?;
        }
        // After its index exists, so MySQL/MariaDB add no implicit one.
        if db != DbBackend::Sqlite {
            manager
                .create_foreign_key(foreign_key(
                    Sessions::Table,
                    N::EncryptionKeyId,
                    EncryptionKeys::Table,
                    ForeignKeyAction::SetNull,
                ))
                .await?;
        }
        create_session_audit_log(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use NewColumns as N;
        let db = manager.get_database_backend();
        manager
            .drop_table(Table::drop().table(SessionAuditLog::Table).to_owned())
            .await?;
        if db != DbBackend::Sqlite {
            manager
                .drop_foreign_key(
                    ForeignKey::drop()
                        .name(FK_ENCRYPTION_KEY)
                        .table(Sessions::Table)
                        .to_owned(),
                )
                .await?;
        }
        for stmt in session_indexes(db) {
            let name = stmt
                .get_index_spec()
                .get_name()
                .expect("indexes are named")
                .to_owned();
            manager
                .drop_index(Index::drop().name(name).table(Sessions::Table).to_owned())
                .await?;
        }
        for col in [
            N::RiskScore,
            N::LastValidatedAt,
            N::SecurityVersion,
            N::CreatedIpHash,
            N::EncryptionKeyId,
            N::SecurityHash,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

async fn create_session_audit_log(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use SessionAuditLog as L;
    let db = manager.get_database_backend();
    manager
        .create_table(
            create_table(db, L::Table)
                .col(pk_uuid(L::Id))
                .col(ColumnDef::new(L::SessionId).uuid().null())
                .col(ColumnDef::new(L::UserId).uuid().null())
                .col(string_len(L::Event, 32))
                .col(string_len_null(L::Reason, 255))
                .col(integer_null(L::RiskScore))
                .col(string_len_null(L::IpHash, 64))
                .col(json_binary_null(L::Details))
                .col(timestamp_utc_now(db, L::CreatedAt))
                .check(Check::from(one_of(
                    "session_audit_log",
                    L::Event,
                    &[
                        "created",
                        "validated",
                        "revoked",
                        "expired",
                        "risk_revoked",
                        "tamper_detected",
                        "cleaned_up",
                    ],
                )))
                .foreign_key(&mut foreign_key(
                    L::Table,
                    L::SessionId,
                    Sessions::Table,
                    ForeignKeyAction::SetNull,
                ))
                .foreign_key(&mut foreign_key(
                    L::Table,
                    L::UserId,
                    Users::Table,
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;
    for stmt in [
        index(L::Table, &[L::SessionId]),
        index(L::Table, &[L::UserId, L::CreatedAt]),
        index(L::Table, &[L::CreatedAt]),
    ] {
        manager.create_index(stmt).await?;
    }
    Ok(())
}
