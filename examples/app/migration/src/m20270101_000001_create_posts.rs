//! `posts`, each owned by a gatehouse user (`fk-posts-user_id`, ON DELETE
//! CASCADE), indexed by author.

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum Posts {
    Table,
    Id,
    UserId,
    Title,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

/// A UTC timestamp with microseconds, as gatehouse's own columns store it
/// (`datetime(6)` on MySQL/MariaDB).
fn timestamp_utc(backend: DbBackend, col: Posts) -> ColumnDef {
    let mut def = ColumnDef::new(col);
    match backend {
        DbBackend::MySql => def.custom(Alias::new("datetime(6)")),
        _ => def.timestamp_with_time_zone(),
    };
    def.not_null().take()
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(Posts::Table)
                    .col(uuid(Posts::Id).primary_key())
                    .col(uuid(Posts::UserId))
                    .col(string_len(Posts::Title, 200))
                    .col(text(Posts::Body))
                    .col(timestamp_utc(backend, Posts::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk-posts-user_id")
                            .from(Posts::Table, Posts::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx-posts-user_id")
                    .table(Posts::Table)
                    .col(Posts::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Posts::Table).to_owned())
            .await
    }
}
