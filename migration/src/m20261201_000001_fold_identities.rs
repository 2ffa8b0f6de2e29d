//! `users.email_folded` and `users.username_folded`: the folded form of each
//! identity (NFKC and Unicode lower case, computed in Rust by
//! `gatehouse::accounts::validate::fold`), compared byte for byte, each with
//! its own unique index. They replace the case-insensitive unique indexes
//! `uq-users-email` and `uq-users-username`, which meant different things on
//! different backends: on MySQL/MariaDB `utf8mb4_unicode_ci` also equates
//! accents and `ß` (`josé` = `jose`, `straße` = `strasse`), so two people
//! collided there and nowhere else. Byte-for-byte comparison:
//! `utf8mb4_bin` on MySQL/MariaDB, the default (deterministic) collation on
//! PostgreSQL, BINARY on SQLite. Equality is then whatever `fold` says, the
//! same on every backend.
//!
//! Each column is added `NOT NULL DEFAULT ''` (SQLite can add a NOT NULL
//! column only with a default, and cannot add the constraint later without
//! rebuilding `users`, which its foreign keys forbid inside a migration),
//! backfilled, and on PostgreSQL and MySQL/MariaDB its default dropped, so
//! that a writer that leaves it out is refused. On SQLite the empty default
//! stays; an empty folded value is never looked up (every identifier is
//! validated non-empty) and a second one is a unique violation.
//!
//! `down` puts the old indexes back and removes the columns. On MySQL/MariaDB
//! it fails, changing nothing that `up` cannot redo, while two accounts exist
//! that the old collation equates (`josé` and `jose`): the old schema cannot
//! hold them both.

use crate::columns::create_unique_ci;
use crate::m20260115_000001_create_initial_schema::users::Users;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

#[derive(DeriveIden, Clone, Copy)]
enum Folded {
    EmailFolded,
    UsernameFolded,
}

/// Each folded column, the column it is backfilled from, and its length
/// (the same as its source column's).
const COLUMNS: [(Folded, Users, u32); 2] = [
    (Folded::EmailFolded, Users::Email, 255),
    (Folded::UsernameFolded, Users::Username, 64),
];

/// The old case-insensitive unique indexes this migration replaces.
const OLD_INDEXES: [&str; 2] = ["uq-users-email", "uq-users-username"];

fn unique_name(col: Folded) -> String {
    format!("uq-users-{}", col.into_iden())
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        for (col, _, len) in COLUMNS {
            let mut def = ColumnDef::new(col);
            match backend {
                DbBackend::MySql => def.custom(Alias::new(format!(
                    "varchar({len}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                ))),
                _ => def.string_len(len),
            };
            def.not_null().default("");
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(def)
                        .to_owned(),
                )
                .await?;
        }
        // The backfill copies the stored value unchanged, and that is its
        // folded form: gatehouse has always stored `email` and `username`
        // normalized by `validate::fold` (`validate::email` and
        // `validate::username` return `fold(input)`, and registration stores
        // what they return), so for every row it wrote, `email == fold(email)`
        // byte for byte. Copying keeps the folding in Rust; a database's
        // `lower()` would not (ASCII-only on SQLite, locale-dependent on
        // PostgreSQL). Rows written by other tools in another form are
        // refolded in Rust afterwards by `gatehouse::accounts::refold_identities`.
        let mut backfill = Query::update();
        backfill.table(Users::Table);
        for (col, source, _) in COLUMNS {
            backfill.value(col, Expr::col(source));
        }
        manager.exec_stmt(backfill).await?;
        if backend != DbBackend::Sqlite {
            for (col, _, _) in COLUMNS {
                let quote = |name: &str| match backend {
                    DbBackend::MySql => format!("`{name}`"),
                    _ => format!("\"{name}\""),
                };
                let sql = format!(
                    "ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT",
                    quote("users"),
                    quote(&col.into_iden().to_string())
                );
                manager
                    .get_connection()
                    .execute_raw(Statement::from_string(backend, sql))
                    .await?;
            }
        }
        for (col, _, _) in COLUMNS {
            manager
                .create_index(
                    Index::create()
                        .name(unique_name(col))
                        .table(Users::Table)
                        .col(col)
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        for name in OLD_INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(Users::Table).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_unique_ci(manager, Users::Table, Users::Email).await?;
        create_unique_ci(manager, Users::Table, Users::Username).await?;
        for (col, _, _) in COLUMNS {
            manager
                .drop_index(
                    Index::drop()
                        .name(unique_name(col))
                        .table(Users::Table)
                        .to_owned(),
                )
                .await?;
        }
        for (col, _, _) in COLUMNS.into_iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
