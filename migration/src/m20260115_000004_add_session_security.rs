//! Seed 004: session integrity columns on the live `sessions` table, their
//! indexes, and `session_audit_log`.
//!
//! Existing rows are kept and backfilled: `security_version` 0 marks a
//! session that predates sealing (its `security_hash` is NULL until the
//! sessions service seals it; the HMAC key is not the migration's to know),
//! `risk_score` starts at 0 and `last_validated_at` at the last activity.
//! `down` removes only what `up` added; session rows stay. Seed 004's
//! trigger and cleanup procedures are Rust code in `gatehouse::sessions`.
//!
//! `sessions` is large and written to while this runs, so nothing here
//! rewrites it or blocks its writers for longer than a catalog change: the
//! migration runs without a transaction, the backfill commits in batches
//! and PostgreSQL builds the indexes concurrently.

use crate::columns::*;
use crate::m20260115_000001_create_initial_schema::{sessions::Sessions, users::Users};
use crate::m20260115_000003_create_security_enhancements::encryption_keys::EncryptionKeys;
use crate::render::{RETRY_WITH_NEXT, repeat_while_full};
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

/// PostgreSQL's name for the inline CHECK seed 004 declared; kept so the
/// schema is the same however it was built.
const CK_RISK_SCORE: &str = "sessions_risk_score_check";

/// At most this many rows per backfill statement, each batch its own commit.
const BACKFILL_BATCH: u64 = 10_000;

/// One batch of the `last_validated_at` backfill, repeated while a batch is
/// full. Sessions that the running application inserts meanwhile (with a
/// NULL `last_validated_at`, as it did before) do not keep it going: the
/// first short batch ends it.
fn backfill_batch(db: DbBackend) -> String {
    match db {
        DbBackend::Postgres => format!(
            r#"UPDATE "sessions" SET "last_validated_at" = "last_activity_at" WHERE "id" IN (SELECT "id" FROM "sessions" WHERE "last_validated_at" IS NULL LIMIT {BACKFILL_BATCH})"#
        ),
        DbBackend::MySql => format!(
            "UPDATE `sessions` SET `last_validated_at` = `last_activity_at` WHERE `last_validated_at` IS NULL LIMIT {BACKFILL_BATCH}"
        ),
        _ => format!(
            r#"UPDATE "sessions" SET "last_validated_at" = "last_activity_at" WHERE "rowid" IN (SELECT "rowid" FROM "sessions" WHERE "last_validated_at" IS NULL LIMIT {BACKFILL_BATCH})"#
        ),
    }
}

async fn raw(manager: &SchemaManager<'_>, sql: String) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    manager
        .get_connection()
        .execute_raw(Statement::from_string(db, sql))
        .await
        .map(|_| ())
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// Runs outside a transaction, statement by statement: on a live table
    /// the backfill commits in batches and PostgreSQL builds the indexes
    /// `CONCURRENTLY`, which a transaction does not allow.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    /// Every step keeps `sessions` writable. PostgreSQL: columns with
    /// constant defaults are catalog-only (no rewrite); the CHECK and the
    /// foreign key are added `NOT VALID` and validated under SHARE UPDATE
    /// EXCLUSIVE; indexes are built `CONCURRENTLY`. MariaDB: each ADD COLUMN
    /// is instant and each index is built in place without blocking writes.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use NewColumns as N;
        let db = manager.get_database_backend();
        manager
            .alter_table(add_column(string_len_null(N::SecurityHash, 64)))
            .await?;
        // SQLite can add a referencing column only with the reference inline.
        match db {
            DbBackend::Sqlite => {
                raw(
                    manager,
                    format!(
                        r#"ALTER TABLE "sessions" ADD COLUMN "encryption_key_id" uuid_text NULL CONSTRAINT "{FK_ENCRYPTION_KEY}" REFERENCES "encryption_keys" ("id") ON DELETE SET NULL ON UPDATE CASCADE"#
                    ),
                )
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
        let risk_score = integer(N::RiskScore).default(0).take();
        if db == DbBackend::Postgres {
            // An inline CHECK would scan the table under ACCESS EXCLUSIVE.
            manager.alter_table(add_column(risk_score)).await?;
            raw(
                manager,
                format!(
                    r#"ALTER TABLE "sessions" ADD CONSTRAINT "{CK_RISK_SCORE}" CHECK ("risk_score" BETWEEN 0 AND 100) NOT VALID"#
                ),
            )
            .await?;
            raw(
                manager,
                format!(r#"ALTER TABLE "sessions" VALIDATE CONSTRAINT "{CK_RISK_SCORE}""#),
            )
            .await?;
        } else {
            // MariaDB adds a column with an inline CHECK instantly: the
            // default (0) is all existing rows hold, and it is in range.
            manager
                .alter_table(add_column(
                    risk_score
                        .clone()
                        .check(Expr::col(N::RiskScore).between(0, 100))
                        .take(),
                ))
                .await?;
        }
        repeat_while_full(
            manager.get_connection(),
            &backfill_batch(db),
            BACKFILL_BATCH,
        )
        .await?;
        for stmt in session_indexes(db) {
            if db == DbBackend::Postgres {
                // A failed concurrent build leaves an INVALID index behind;
                // a retry drops it first (the runner re-runs this drop).
                let name = stmt.get_index_spec().get_name().expect("indexes are named");
                let drop = db.build(
                    Index::drop()
                        .name(name)
                        .table(Sessions::Table)
                        .concurrently()
                        .if_exists(),
                );
                raw(manager, format!("{RETRY_WITH_NEXT} {}", drop.sql)).await?;
                manager
                    .create_index(stmt.clone().concurrently().if_not_exists().take())
                    .await?;
            } else {
                manager.create_index(stmt).await?;
            }
        }
        // After its index exists, so MySQL/MariaDB add no implicit one.
        let fk = foreign_key(
            Sessions::Table,
            N::EncryptionKeyId,
            EncryptionKeys::Table,
            ForeignKeyAction::SetNull,
        );
        match db {
            DbBackend::Postgres => {
                raw(manager, format!("{} NOT VALID", db.build(&fk).sql)).await?;
                raw(
                    manager,
                    format!(r#"ALTER TABLE "sessions" VALIDATE CONSTRAINT "{FK_ENCRYPTION_KEY}""#),
                )
                .await?;
            }
            DbBackend::MySql => {
                // With foreign_key_checks on, InnoDB adds a foreign key by
                // copying the table, blocking writes; off, in place. The
                // column is new and NULL in every row, so there is nothing
                // to check. `/*M! */` is read by MariaDB only (MySQL copies).
                raw(
                    manager,
                    format!(
                        "/*M! SET STATEMENT foreign_key_checks = 0 FOR */ {}",
                        db.build(&fk).sql
                    ),
                )
                .await?;
            }
            _ => {}
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
