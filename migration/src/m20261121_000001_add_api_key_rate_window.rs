//! The per-key rate-limit window on `api_keys`: the unix minute of the current
//! fixed window and how many verifications it has counted.
//!
//! Two plain integer columns let one conditional `UPDATE` count a use and
//! enforce `rate_limit_per_minute` atomically on every backend, across
//! processes, with no extra table. Existing keys start with an empty window.

use crate::m20260115_000001_create_initial_schema::api_keys::ApiKeys;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
enum NewColumns {
    RateWindowMinute,
    RateWindowCount,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use NewColumns as N;
        for col in [
            big_integer(N::RateWindowMinute).default(0).take(),
            integer(N::RateWindowCount)
                .default(0)
                .check(Expr::col(N::RateWindowCount).gte(0))
                .take(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKeys::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use NewColumns as N;
        for col in [N::RateWindowCount, N::RateWindowMinute] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKeys::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
