//! Indexes that let session cleanup find stale sessions without reading the
//! whole `sessions` table: every reason a session is stale gets an index the
//! cleanup query's `OR` branches can each use (PostgreSQL's BitmapOr,
//! SQLite's multi-index OR, MySQL's index merge).
//!
//! - `last_activity_at`, for the idle timeout (`expires_at` is indexed already);
//! - `is_revoked`, for revoked sessions;
//! - `security_version`, for sessions that predate sealing (version 0).
//!
//! Risky sessions use seed 004's partial `risk_score` index.

use crate::columns::*;
use crate::m20260115_000001_create_initial_schema::sessions::Sessions;
use sea_orm_migration::prelude::*;

#[derive(DeriveIden, Clone)]
enum SecurityColumns {
    SecurityVersion,
}

fn indexes() -> Vec<IndexCreateStatement> {
    let t = Sessions::Table;
    vec![
        index(t.clone(), &[Sessions::LastActivityAt]),
        index(t.clone(), &[Sessions::IsRevoked]),
        index(t, &[SecurityColumns::SecurityVersion]),
    ]
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in indexes() {
            manager.create_index(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in indexes().into_iter().rev() {
            let name = stmt
                .get_index_spec()
                .get_name()
                .expect("every index is named");
            manager
                .drop_index(Index::drop().name(name).table(Sessions::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}
