//! `login_throttles`: how many attempts one source has made against one
//! account, so that a source that keeps failing is slowed and then shut out
//! of that account while its owner signs in from elsewhere.
//!
//! One row per (subject, source): `subject` is the account's id, or for an
//! identifier that matches no account a stable id derived from it, so that
//! unknown and known identifiers are throttled alike; `source` is the
//! client's normalized address (an IPv4 address, an IPv6 /64 prefix, or empty
//! when unknown). An attempt takes its place with one conditional `UPDATE`
//! before any password is verified. No foreign key: most subjects of an
//! attack are no account at all. The primary key makes the table fit for
//! Galera, and `last_attempt_at` is indexed for pruning.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveIden, Clone)]
enum LoginThrottles {
    Table,
    Subject,
    Source,
    Failures,
    LastAttemptAt,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use LoginThrottles as T;
        let db = manager.get_database_backend();
        manager
            .create_table(
                create_table(db, T::Table)
                    .col(ColumnDef::new(T::Subject).uuid().not_null())
                    .col(ColumnDef::new(T::Source).string_len(64).not_null())
                    .col(
                        ColumnDef::new(T::Failures)
                            .integer()
                            .not_null()
                            .default(0)
                            .check(Expr::col(T::Failures).gte(0)),
                    )
                    .col(timestamp_utc(db, T::LastAttemptAt))
                    .primary_key(
                        Index::create()
                            .name("pk-login_throttles")
                            .col(T::Subject)
                            .col(T::Source),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(T::Table, &[T::LastAttemptAt]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginThrottles::Table).to_owned())
            .await
    }
}
